"""Gradients: backprop checked against numerical differentiation, and central vs forward differences.

The network check can take minutes, so it runs on a background task made by the
``task_factory`` the main window hands in (``app.threads.TaskRegistry.create``: the registry
keeps the task and waits for its thread at shutdown), and never blocks the GUI thread. The
factory is called as ``task_factory(fn, name)`` and returns a started or startable task with
``progress(object)``, ``succeeded(object)``, ``failed(exception)`` and ``finished()`` signals and
``start``/``cancel``/``is_running``; ``fn(ctx)`` gets ``ctx.report(value)`` and ``ctx.cancelled``.
"""
from __future__ import annotations

import math
import threading
import time
from typing import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine import registry
from engine.nn.functions import forward_diff, numerical_diff
from engine.nn.network import make_mlp
from engine.train.gradcheck import GradCheck, check_gradients
from widgets.compact_combo import compact_combo_box
from widgets.lab_controls import PALETTE, make_plot, value_label
from widgets.plain_text import line, plain_label

SMALL_NETWORKS = {"new-10": [784, 10, 10], "new-50": [784, 50, 10], "new-100": [784, 100, 10]}
SMALL_ACTIVATION = "sigmoid"  # the book's: smooth everywhere, so the numerical gradient has no kinks to trip on
CURRENT = "current"
BATCH = 3
FULL_CHECK_LIMIT = 20_000  # above this many parameters a subset is checked unless asked otherwise
GOOD_ERROR = 1e-6
STEP_SIZES = [1e-4, 1e-2, 1e-8, 1e-12, 1e-50]
DEMO_POINTS = (5.0, 10.0)
GIL_PAUSE = 0.002  # seconds the worker sleeps at each progress report so the GUI thread gets the GIL


def demo_function(x):
    """The book's example y = 0.01x² + 0.1x (exact slope 0.02x + 0.1)."""
    return 0.01 * x**2 + 0.1 * x


def demo_exact(x: float) -> float:
    return 0.02 * x + 0.1


class GradientLab(QWidget):
    """Per-parameter error and timing of backprop vs numerical gradients; the difference-quotient demo."""

    checkStarted = Signal()
    checkFinished = Signal(object)  # engine.train.gradcheck.GradCheck
    checkFailed = Signal(str)

    def __init__(self, task_factory: Callable | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._task_factory = task_factory
        self._task = None
        self._network = None
        self._network_label = ""
        self._dataset = None
        self.last_report: GradCheck | None = None
        self.last_worker_thread: int | None = None
        self.differences: dict = {}  # x -> (central, forward) for the chosen h
        self._build()
        self._update_sources()
        self.set_step_size(1e-4)

    # ----- layout -----
    def _build(self) -> None:
        self.network_box = compact_combo_box()
        self.network_box.addItem("The current network", CURRENT)
        for key, sizes in SMALL_NETWORKS.items():
            activation = registry.label(registry.ACTIVATION_CHOICES, SMALL_ACTIVATION)
            self.network_box.addItem(f"A new {'-'.join(map(str, sizes))} network ({activation})", key)
        self.network_box.currentIndexChanged.connect(lambda _: self._suggest_subset())
        self.data_label = plain_label(word_wrap=True)  # names the dataset (a folder's name): text, never HTML
        self.subset_check = QCheckBox("check only")
        self.subset_box = QSpinBox()
        self.subset_box.setRange(1, 1_000_000)
        self.subset_box.setValue(300)
        self.subset_box.setSuffix(" per parameter")
        self.subset_box.setToolTip("How many randomly chosen elements of each parameter the numerical gradient checks")
        self.check_button = QPushButton("Compare gradients")
        self.check_button.clicked.connect(self.start_check)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["parameter", "shape", "elements checked", "max relative error",
                                              "max absolute error"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setMaximumHeight(160)
        self.timing_label = value_label()
        self.timing_label.setWordWrap(True)
        self.summary_label = plain_label("Compare the gradient backprop computes with the one numerical "
                                         "differentiation gives, on a mini-batch of 3 images.", word_wrap=True)

        check_box = QGroupBox("Numerical gradient vs backprop")
        outer = QVBoxLayout(check_box)
        form = QFormLayout()
        form.addRow("Network", self.network_box)
        form.addRow("Data", self.data_label)
        row = QHBoxLayout()
        row.addWidget(self.subset_check)
        row.addWidget(self.subset_box, 1)
        form.addRow(row)
        buttons = QHBoxLayout()
        buttons.addWidget(self.check_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.progress_bar, 1)
        form.addRow(buttons)
        outer.addLayout(form)
        outer.addWidget(self.table)
        outer.addWidget(self.timing_label)
        outer.addWidget(self.summary_label)
        outer.addStretch(1)

        # central vs forward difference on the book's 0.01x² + 0.1x
        self.h_box = compact_combo_box()
        for h in STEP_SIZES:
            self.h_box.addItem(f"h = {h:g}" + ("  (the book)" if h == 1e-4 else ""), h)
        self.h_box.currentIndexChanged.connect(lambda _: self.set_step_size(self.h_box.currentData()))
        self.diff_table = QTableWidget(len(DEMO_POINTS), 4)
        self.diff_table.setHorizontalHeaderLabels(["x", "central (f(x+h) − f(x−h)) / 2h", "forward (f(x+h) − f(x)) / h",
                                                   "exact 0.02x + 0.1"])
        self.diff_table.verticalHeader().setVisible(False)
        self.diff_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.diff_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.diff_table.horizontalHeader().setStretchLastSection(True)
        self.diff_table.setMaximumHeight(90)
        self.diff_explain = QLabel()
        self.diff_explain.setWordWrap(True)
        self.diff_plot = make_plot("y = 0.01x² + 0.1x and its tangents from the central difference", "x", "y")
        self.diff_plot.setMouseEnabled(x=False, y=False)
        self.diff_plot.hideButtons()
        self.diff_plot.getPlotItem().addLegend(offset=(10, 10), labelTextColor="#111")
        xs = np.linspace(0.0, 20.0, 201)
        self.diff_plot.plot(xs, demo_function(xs), pen=pg.mkPen("#333", width=2), name="f(x)")
        self.tangents = [
            self.diff_plot.plot([], [], pen=pg.mkPen(PALETTE[i + 1], width=2, style=Qt.PenStyle.DashLine),
                                name=f"tangent at x = {x:g}")
            for i, x in enumerate(DEMO_POINTS)
        ]
        self.tangent_points = pg.ScatterPlotItem(size=9, brush=pg.mkBrush(PALETTE[3]), pen=None)
        self.diff_plot.addItem(self.tangent_points)
        self.diff_plot.setXRange(0, 20, padding=0.02)
        self.diff_plot.setYRange(-1, 6, padding=0)

        diff_box = QGroupBox("Central vs forward difference")
        dlayout = QVBoxLayout(diff_box)
        hrow = QHBoxLayout()
        hrow.addWidget(QLabel("Step size"))
        hrow.addWidget(self.h_box)
        hrow.addStretch(1)
        dlayout.addLayout(hrow)
        dlayout.addWidget(self.diff_table)
        dlayout.addWidget(self.diff_explain)
        dlayout.addWidget(self.diff_plot, 1)

        layout = QHBoxLayout(self)
        layout.addWidget(check_box, 1)
        layout.addWidget(diff_box, 1)

    # ----- inputs from the app -----
    def set_network(self, network, label: str = "") -> None:
        self._network = network
        self._network_label = label
        self._update_sources()

    def set_dataset(self, dataset) -> None:
        self._dataset = dataset
        self._update_sources()

    def _update_sources(self) -> None:
        index = self.network_box.findData(CURRENT)
        item = self.network_box.model().item(index)
        if self._network is None:
            item.setEnabled(False)
            item.setText("The current network (none yet)")
            if self.network_box.currentData() == CURRENT:
                self.network_box.setCurrentIndex(self.network_box.findData("new-10"))
        else:
            item.setEnabled(True)
            item.setText(f"The current network ({line(self._network_label or self._network.describe(), 80)})")
        if self._dataset is not None and getattr(self._dataset, "x_test", None) is not None:
            self.data_label.setText(f"the first {BATCH} test images of {line(self._dataset.name, 80)}")
        else:
            self.data_label.setText(f"{BATCH} random images (no dataset loaded)")
        self._suggest_subset()

    def _suggest_subset(self) -> None:
        self.subset_check.setChecked(self._parameter_count() > FULL_CHECK_LIMIT)

    def _parameter_count(self) -> int:
        key = self.network_box.currentData()
        if key == CURRENT and self._network is not None:
            return sum(int(p.size) for p in self._network.params.values())
        sizes = SMALL_NETWORKS.get(key, [784, 10, 10])
        return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))

    def select_network(self, key: str) -> None:
        index = self.network_box.findData(key)
        if index < 0:
            raise ValueError(f"unknown network choice {key!r}; choose {CURRENT!r} or one of {', '.join(SMALL_NETWORKS)}")
        self.network_box.setCurrentIndex(index)

    # ----- the check -----
    def _batch(self, network):
        if self._dataset is not None and getattr(self._dataset, "x_test", None) is not None:
            x = np.asarray(self._dataset.x_test[:BATCH])
            t = np.asarray(self._dataset.t_test[:BATCH])
        else:
            rng = np.random.default_rng(0)
            x = rng.random((BATCH, int(np.prod(network.input_shape))))
            t = rng.integers(0, network.num_classes, BATCH)
        return x, t

    def is_running(self) -> bool:
        return self._task is not None and self._task.is_running()

    def start_check(self) -> None:
        if self.is_running():
            return
        if self._task_factory is None:
            self.summary_label.setText("This window cannot run background work, so the check is unavailable.")
            return
        key = self.network_box.currentData()
        if key == CURRENT and self._network is not None:
            network = self._network.copy(dtype=np.float64)  # a snapshot: training may go on meanwhile
            name = self._network_label or network.describe()
        else:
            sizes = SMALL_NETWORKS.get(key, [784, 10, 10])
            network = make_mlp(sizes, SMALL_ACTIVATION, dtype=np.float64)
            name = "-".join(map(str, sizes))
        x, t = self._batch(network)
        per_param = self.subset_box.value() if self.subset_check.isChecked() else None

        def work(ctx):
            def progress(done, total):
                ctx.report((done, total))
                # NumPy drops and retakes the GIL on every call, so a waiting GUI thread can starve
                # (it never sees the 5 ms switch interval pass); sleeping hands it the GIL for sure
                time.sleep(GIL_PAUSE)
                return not ctx.cancelled.is_set()

            report = check_gradients(network, x, t, progress=progress, per_param=per_param)
            return report, threading.get_ident()

        task = self._task = self._task_factory(work, "gradient check")
        # a task's signals reach this (GUI) thread queued, so connecting right after a factory that
        # already started it misses nothing: none is delivered before control returns to the event loop
        task.progress.connect(self._on_progress)
        task.succeeded.connect(self._on_done)
        task.failed.connect(self._on_failed)
        task.finished.connect(self._on_finished)
        self.check_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress_bar.setRange(0, 0)  # busy until the first report
        self.summary_label.setText(f"Checking {line(name)} …")
        self.checkStarted.emit()
        if not task.is_running():
            task.start()
        if not task.is_running():  # cancelled before it could start: the window is closing
            self.summary_label.setText("The window is closing, so the check did not start.")
            self._on_finished()

    def cancel(self) -> None:
        """Ask the running check to stop; it reports the parameters it finished."""
        if self._task is not None:
            self._task.cancel()

    def _on_progress(self, value) -> None:
        done, total = value
        self.progress_bar.setRange(0, max(int(total), 1))
        self.progress_bar.setValue(int(done))

    def _on_done(self, result) -> None:
        report, thread_id = result
        self.last_report = report
        self.last_worker_thread = thread_id
        self._show_report(report)
        self.checkFinished.emit(report)

    def _on_failed(self, exc) -> None:
        message = str(exc) or type(exc).__name__
        self.summary_label.setText(f"The check failed: {line(message)}")
        self.checkFailed.emit(message)

    def _on_finished(self) -> None:
        self.check_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        if self.progress_bar.maximum() == 0:
            self.progress_bar.setRange(0, 1)

    def _show_report(self, report: GradCheck) -> None:
        check = report
        self.table.setRowCount(len(check.params))
        for row, p in enumerate(check.params):
            cells = [line(p.name, 40), "×".join(map(str, p.shape)), f"{report.checked[p.name]:,} of {report.sizes[p.name]:,}",
                     f"{p.max_rel_error:.2e}", f"{p.max_abs_error:.2e}"]
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if col == 3:
                    item.setForeground(pg.mkColor("#1B5E20" if p.max_rel_error < GOOD_ERROR else "#B71C1C"))
                self.table.setItem(row, col, item)
        checked = sum(report.checked.values())
        numerical = f"numerical: {check.numerical_seconds:.2f} s for {checked:,}"
        if not report.complete:
            numerical += f"; about {report.estimated_full_numerical_seconds:.1f} s for all (estimated)"
        self.timing_label.setText(
            f"backprop:  {check.backprop_seconds * 1000:.2f} ms for all {sum(report.sizes.values()):,} elements\n"
            f"{numerical}\nratio:     backprop is {report.speedup:,.0f}× faster"
        )
        if check.cancelled:
            self.summary_label.setText(f"Cancelled after {checked:,} elements; the table shows the parameters finished.")
            return
        worst = check.max_rel_error
        if worst < GOOD_ERROR:
            verdict = (f"The largest relative error is {worst:.1e}: below {GOOD_ERROR:g}, so the two agree to about "
                       f"{max(0, -int(math.floor(math.log10(max(worst, 1e-16))))) } digits and backprop is right.")
        elif worst < 1e-3:
            verdict = (f"The largest relative error is {worst:.1e}: close, but not tight. Kinks (ReLU at 0, max "
                       "pooling) or float32 weights can cause this; a real bug usually gives errors near 1.")
        else:
            verdict = f"The largest relative error is {worst:.1e}: the gradients disagree — backprop looks wrong here."
        self.summary_label.setText(
            f"{verdict} Backprop gets every gradient in one backward pass; the numerical way needs two forward passes "
            f"per weight, which is why backprop was {report.speedup:,.0f}× faster."
        )

    # ----- central vs forward difference -----
    def set_step_size(self, h: float) -> None:
        h = float(h)
        index = self.h_box.findData(h)
        if index < 0:
            raise ValueError(f"step size {h:g} is not offered; choose one of {', '.join(f'{s:g}' for s in STEP_SIZES)}")
        if index != self.h_box.currentIndex():
            self.h_box.blockSignals(True)
            self.h_box.setCurrentIndex(index)
            self.h_box.blockSignals(False)
        self.differences = {}
        for row, x in enumerate(DEMO_POINTS):
            central = numerical_diff(demo_function, x, h)
            forward = forward_diff(demo_function, x, h)
            self.differences[x] = (central, forward)
            cells = [f"{x:g}", repr(float(central)), repr(float(forward)), f"{demo_exact(x):g}"]
            for col, text in enumerate(cells):
                self.diff_table.setItem(row, col, QTableWidgetItem(text))
        xs = np.array(DEMO_POINTS)
        self.tangent_points.setData(xs, demo_function(xs))
        for tangent, x in zip(self.tangents, DEMO_POINTS):
            slope = self.differences[x][0]
            span = np.array([x - 5.0, x + 5.0])
            tangent.setData(span, demo_function(x) + slope * (span - x))
        if all(p + h == p for p in DEMO_POINTS):
            spacing = np.spacing(max(DEMO_POINTS))
            self.diff_explain.setText(
                f"h = {h:g} is far below the spacing between neighbouring doubles near x (about {spacing:.1e} "
                f"at x = {max(DEMO_POINTS):g}), so x + h rounds to x itself: f(x + h) − f(x) is exactly 0 and "
                "both differences give 0.0. The tangents lie flat — a step that small is no step at all."
            )
        else:
            self.diff_explain.setText(
                "The exact slopes are 0.2 and 0.3. The central difference's error shrinks like h² (for this "
                "parabola only rounding is left), the forward difference's like h: it is off by 0.01·h. "
                "Too small an h loses digits to rounding (try 1e-12), too large a one to the curve."
            )
