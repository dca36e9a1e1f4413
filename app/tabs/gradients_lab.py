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
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.tabs.difference_demo import DifferenceDemo
from engine import registry
from engine.nn.network import make_mlp
from engine.train.gradcheck import GradCheck, check_gradients
from widgets.compact_combo import compact_combo_box
from widgets.lab_controls import value_label
from widgets.plain_text import line, plain_label, plain_tooltip

SMALL_NETWORKS = {"new-10": [784, 10, 10], "new-50": [784, 50, 10], "new-100": [784, 100, 10]}
SMALL_ACTIVATION = "sigmoid"  # the book's: smooth everywhere, so the numerical gradient has no kinks to trip on
CURRENT = "current"
BATCH = 3
FULL_CHECK_LIMIT = 20_000  # above this many parameters a subset is checked unless asked otherwise
GOOD_ERROR = 1e-6
GIL_PAUSE = 0.002  # seconds the worker sleeps at each progress report so the GUI thread gets the GIL


def timing_text(report: GradCheck) -> str:
    """Backprop's time, the numerical gradient's time for what it finished, and their ratio when it means something."""
    total = sum(report.sizes.values())
    done = report.elements_done
    lines = [f"backprop:  {report.backprop_seconds * 1000:.2f} ms for all {total:,} elements"]
    if done == 0:
        lines.append("numerical: cancelled before the first element, so nothing to time")
        lines.append("ratio:     not measured")
        return "\n".join(lines)
    numerical = f"numerical: {report.numerical_seconds:.2f} s for {done:,} element{'s' if done != 1 else ''}"
    if report.cancelled:
        numerical += " before it was cancelled"
    if not report.complete:
        numerical += f"; all {total:,} would take about {report.estimated_full_numerical_seconds:.1f} s (estimated)"
    lines.append(numerical)
    if report.complete:
        lines.append(f"ratio:     backprop is {report.speedup:,.0f}× faster")
    else:
        lines.append(f"ratio:     backprop is about {report.speedup:,.0f}× faster (estimated from {done:,} elements)")
    return "\n".join(lines)


def cancelled_text(report: GradCheck, per_param: int | None) -> str:
    """What a cancelled check did and did not compare."""
    planned = sum(n if per_param is None else min(per_param, n) for n in report.sizes.values())
    share = f" ({report.elements_done / planned:.0%} of the check)" if planned else ""
    if not report.params:
        return (f"Cancelled after {report.elements_done:,} numerical derivatives{share}, before the first parameter "
                "was finished: nothing was compared, so the check says nothing about backprop yet.")
    names = ", ".join(line(p.name, 40) for p in report.params)
    return (f"Cancelled after {report.elements_done:,} numerical derivatives{share}. Compared: {names} "
            f"(largest relative error {report.max_rel_error:.1e}); the other parameters were not checked.")


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
        self._per_param: int | None = None  # the running or last check's sample size per parameter (None: all)
        self.last_report: GradCheck | None = None
        self.last_worker_thread: int | None = None
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
        self.network_box.setToolTip("The network whose gradients are checked: the one the Train page made or "
                                    "opened (a copy taken when the check starts), or a small new one")
        self.network_box.currentIndexChanged.connect(lambda _: self._update_sources())
        self.network_info = plain_label(word_wrap=True)  # the current network's label: file text, never HTML
        self.network_info.setStyleSheet("color: #555")
        self.data_label = plain_label(word_wrap=True)  # names the dataset (a folder's name): text, never HTML
        self.data_label.setToolTip("The mini-batch both gradients are computed on")
        self.subset_check = QCheckBox("check only")
        self.subset_check.setToolTip("Check a random sample of each parameter's elements instead of all of them: "
                                     "a big network's full check takes minutes")
        self.subset_box = QSpinBox()
        self.subset_box.setRange(1, 1_000_000)
        self.subset_box.setValue(300)
        self.subset_box.setSuffix(" per parameter")
        self.subset_box.setToolTip("How many randomly chosen elements of each parameter the numerical gradient checks")
        self.check_button = QPushButton("Compare gradients")
        self.check_button.setToolTip("Compute the gradient both ways on a background thread and compare them")
        self.check_button.clicked.connect(self.start_check)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the check; the parameters it finished are still compared")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.progress_bar.setToolTip("Numerical derivatives computed, of those the check needs")
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["parameter", "shape", "elements checked", "max relative error",
                                              "max absolute error"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setMaximumHeight(160)
        self.table.setToolTip("Per parameter: how many elements were compared and the largest difference "
                              "between the two gradients (relative error below 1e-6 in green: they agree)")
        self.timing_label = value_label()
        self.timing_label.setToolTip("How long each way took; one backward pass gives every gradient at once")
        self.timing_label.setWordWrap(True)
        self.summary_label = plain_label("Compare the gradient backprop computes with the one numerical "
                                         "differentiation gives, on a mini-batch of 3 images.", word_wrap=True)

        check_box = QGroupBox("Numerical gradient vs backprop")
        outer = QVBoxLayout(check_box)
        form = QFormLayout()
        form.addRow("Network", self.network_box)
        form.addRow("", self.network_info)
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

        self.demo = DifferenceDemo()
        # the demo's parts, by the names the tests use
        self.h_box, self.diff_table, self.diff_explain, self.diff_plot = (
            self.demo.h_box, self.demo.table, self.demo.explain, self.demo.plot)

        layout = QHBoxLayout(self)
        layout.addWidget(check_box, 1)
        layout.addWidget(self.demo, 1)

    # ----- inputs from the app -----
    def set_network(self, network, label: str = "") -> None:
        self._network = network
        self._network_label = label
        self._update_sources()

    def set_dataset(self, dataset) -> None:
        self._dataset = dataset
        self._update_sources()

    def _update_sources(self) -> None:
        """The choices and the lines under them say what a check would use now."""
        index = self.network_box.findData(CURRENT)
        item = self.network_box.model().item(index)
        if self._network is None:
            item.setEnabled(False)
            item.setText("The current network (none yet)")
            if self.network_box.currentData() == CURRENT:
                self.network_box.setCurrentIndex(self.network_box.findData("new-10"))
        else:
            item.setEnabled(True)
            item.setText("The current network")
        if self.network_box.currentData() == CURRENT and self._network is not None:
            label = line(self._network_label or self._network.describe())
            self.network_info.setText(label)
            self.network_info.setToolTip(plain_tooltip(label))
        else:
            self.network_info.setText("A new network with random weights, made for the check")
            self.network_info.setToolTip("")
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
        self._per_param = per_param

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
        self.timing_label.setText(timing_text(report))
        if check.cancelled:
            self.summary_label.setText(cancelled_text(report, self._per_param))
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
        faster = (f"backprop was {report.speedup:,.0f}× faster" if report.complete
                  else f"backprop would be about {report.speedup:,.0f}× faster over every weight")
        self.summary_label.setText(
            f"{verdict} Backprop gets every gradient in one backward pass; the numerical way needs two forward passes "
            f"per weight, which is why {faster}."
        )

    # ----- central vs forward difference -----
    @property
    def differences(self) -> dict:
        """x -> (central, forward) difference for the chosen step size."""
        return self.demo.differences

    def set_step_size(self, h: float) -> None:
        self.demo.set_step_size(h)
