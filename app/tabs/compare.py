"""The "Compare" tab: loss curves of past runs overlaid, and one-click races between optimizers or learning rates.

A race trains several networks from the same starting weights on the same batches
(engine.train.race) on one worker thread; their curves grow live in distinct colours. Every
finished run, raced or trained on the Training tab, lands in session.runs and in the list here,
where it can be exported (JSON + CSV + PNG of the plot) or a saved run imported again.
"""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QCheckBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit,
                               QMessageBox, QPushButton, QSpinBox, QSplitter, QVBoxLayout, QWidget)

from app.coalescer import ReportCoalescer
from app.session import Session
from app.threads import BackgroundTask, TaskRegistry, describe_error
from engine.registry import OPTIMIZER_CHOICES, label
from engine.train.config import TrainConfig, parse_hidden
from engine.train.race import (BOOK_OPTIMIZERS, RaceProgress, RaceResult, learning_rate_race_configs,
                               optimizer_race_configs, race)
from engine.train.runs import RunFileError, RunRecord
from widgets.compact_combo import compact_combo_box
from widgets.loss_plot import LossPlot
from widgets.plain_text import block, line, message_box, plain_label, plain_tooltip
from widgets.run_list import RunList

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")
RACE_MODES = (("optimizers", f"Optimizers ({', '.join(label(OPTIMIZER_CHOICES, n) for n, _ in BOOK_OPTIMIZERS)})"),
              ("rates", "Learning rates"))
RACE_REPORT_EVERY = 5  # iterations between the race's reports (merged to the screen's pace on the worker)
SMOOTH_WINDOW = 21  # iterations averaged by the "smooth" view (a Kaiser window, like the book's smooth_curve)


def smooth_losses(losses: np.ndarray, window: int = SMOOTH_WINDOW) -> np.ndarray:
    """A centred weighted moving average of the same length; the edges use the part of the window that exists."""
    y = np.asarray(losses, dtype=np.float64)
    if len(y) < 3 or window < 3:
        return y.copy()
    w = np.kaiser(min(window, len(y) - (1 - len(y) % 2)), 2.0)
    # dividing by the convolved weights (not by w.sum()) keeps the ends unbiased instead of pulled to zero
    return np.convolve(y, w, mode="same") / np.convolve(np.ones_like(y), w, mode="same")


class ComparePageError(ValueError):
    """Race settings that cannot be used (unparsable or repeated learning rates)."""


def parse_rates(text: str) -> list[float]:
    """'0.1, 0.01 0.001' -> [0.1, 0.01, 0.001]; a clear error names the bad piece."""
    parts = text.replace(",", " ").split()
    if not parts:
        raise ComparePageError("enter at least one learning rate")
    rates = []
    for p in parts:
        try:
            rate = float(p)
        except ValueError:
            raise ComparePageError(f"learning rates: {p!r} is not a number") from None
        if not rate > 0:
            raise ComparePageError(f"learning rates: {p!r} must be positive")
        rates.append(rate)
    if len(set(rates)) != len(rates):
        raise ComparePageError("learning rates: each rate may appear only once")
    return rates


def _race_line(racer) -> str:
    """'adam lr=0.001: loss 0.123, test 91.0%' for the status line."""
    if racer.status == "diverged":
        return f"{racer.label}: diverged"
    text = f"{racer.label}: loss {racer.losses[-1]:.3f}" if len(racer.losses) else f"{racer.label}: -"
    acc = racer.epochs[-1].get("test_accuracy") if racer.epochs else None
    return text + (f", test {acc:.1%}" if acc is not None else "")


class ComparePage(QWidget):
    raceFinished = Signal(object)  # engine.train.race.RaceResult
    raceFailed = Signal(object)  # the exception

    def __init__(self, session: Session, tasks: TaskRegistry, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.tasks = tasks
        self._records: dict[str, RunRecord] = {}  # list key -> record
        self._colors: dict[str, str] = {}
        self._counter = itertools.count(1)
        self._color_cycle = itertools.cycle(PALETTE)
        self._task: BackgroundTask | None = None  # the race running now, for the buttons
        self._live_keys: dict[str, str] = {}  # race label -> overlay key of its growing curve
        self._race_colors: dict[str, str] = {}  # race label -> colour of its live curve

        self.plot = LossPlot()
        for legend in (self.plot.loss_plot.legend, self.plot.accuracy_plot.legend):
            for sample, _label in list(getattr(legend, "items", [])):  # only the runs belong in this legend
                legend.removeItem(sample.item)
        self.plot.accuracy_plot.legend.setVisible(False)  # the loss legend above names every run
        self.plot.accuracy_plot.setLabel("left", "test accuracy (%)")
        self.plot.set_overlay_transform(smooth_losses)
        self._acc_items: dict = {}  # key -> per-epoch test accuracy curve on the lower plot
        self.smooth_box = QCheckBox("Smooth curves")
        self.smooth_box.setChecked(True)
        self.smooth_box.setToolTip(f"Show a moving average over {SMOOTH_WINDOW} iterations instead of the raw "
                                   "per-batch loss (exports always hold the raw values).")
        self.smooth_box.toggled.connect(lambda on: self.plot.set_overlay_transform(smooth_losses if on else None))
        self.runs = RunList()
        self.runs.runToggled.connect(self._on_toggled)
        self.runs.currentRunChanged.connect(lambda _key: self._update_buttons())

        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip("Save the selected run as JSON and CSV (settings, loss per iteration, "
                                      "metrics per epoch) and the plot as PNG.")
        self.export_button.clicked.connect(self._export_clicked)
        self.import_button = QPushButton("Import…")
        self.import_button.setToolTip("Open a run saved earlier (.json) to compare it with new runs.")
        self.import_button.clicked.connect(self._import_clicked)
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Take the selected run off the list and the plot.")
        self.remove_button.clicked.connect(lambda: self.remove_run(self.runs.current_key()))
        buttons = QHBoxLayout()
        for b in (self.export_button, self.import_button, self.remove_button):
            buttons.addWidget(b)

        self.mode_box = compact_combo_box()
        for key, text in RACE_MODES:
            self.mode_box.addItem(text, key)
        self.mode_box.setToolTip("Race the book's four optimizers (ch06) or one optimizer at several learning rates.")
        self.mode_box.currentIndexChanged.connect(self._update_buttons)
        self.hidden_edit = QLineEdit("100")
        self.hidden_edit.setToolTip("Hidden layer sizes, e.g. 100 or 100,100,100,100 (the book's network).")
        self.rates_edit = QLineEdit("0.1, 0.01, 0.001")
        self.rates_edit.setToolTip("Learning rates to race (learning-rate mode), separated by commas.")
        self.optimizer_box = compact_combo_box()
        for choice in OPTIMIZER_CHOICES:
            self.optimizer_box.addItem(choice.label, choice.name)
        self.optimizer_box.setToolTip("The optimizer used by every racer in learning-rate mode.")
        self.iterations_spin = QSpinBox()
        self.iterations_spin.setRange(10, 100_000)
        self.iterations_spin.setSingleStep(100)
        self.iterations_spin.setValue(500)
        self.iterations_spin.setToolTip("Mini-batch steps per racer (the book runs 2000).")
        self.batch_spin = QSpinBox()
        self.batch_spin.setRange(1, 10_000)
        self.batch_spin.setValue(128)
        self.batch_spin.setToolTip("Mini-batch size, the same for every racer (the book uses 128).")
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.seed_spin.setToolTip("Same seed: every racer starts from identical weights and sees the same batches.")
        self.race_button = QPushButton("Race")
        self.race_button.setToolTip("Train all racers side by side on the current dataset.")
        self.race_button.clicked.connect(self.start_race)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("End the race now; what has been run so far is kept.")
        self.stop_button.clicked.connect(self.stop_race)
        self.status = plain_label(word_wrap=True)  # quotes imported run files: text, never HTML

        form = QFormLayout()
        form.addRow("Race", self.mode_box)
        form.addRow("Hidden layers", self.hidden_edit)
        form.addRow("Optimizer", self.optimizer_box)
        form.addRow("Learning rates", self.rates_edit)
        form.addRow("Iterations", self.iterations_spin)
        form.addRow("Batch size", self.batch_spin)
        form.addRow("Seed", self.seed_spin)
        race_buttons = QHBoxLayout()
        race_buttons.addWidget(self.race_button)
        race_buttons.addWidget(self.stop_button)
        form.addRow(race_buttons)
        race_group = QGroupBox("Race")
        race_group.setLayout(form)

        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 0, 0)
        side_layout.addWidget(QLabel("Runs"))
        side_layout.addWidget(self.runs, 1)
        side_layout.addWidget(self.smooth_box)
        side_layout.addLayout(buttons)
        side_layout.addWidget(race_group)
        side_layout.addWidget(self.status)
        split = QSplitter()
        split.addWidget(side)
        split.addWidget(self.plot)
        split.setStretchFactor(1, 3)
        layout = QVBoxLayout(self)
        layout.addWidget(split)

        session.runAdded.connect(self._on_run_added)
        session.datasetChanged.connect(lambda _d: self._update_buttons())
        for record in session.runs:
            self._on_run_added(record)
        self._update_buttons()

    # ----- runs -----
    def _on_run_added(self, record: RunRecord) -> None:
        key = f"run{next(self._counter)}"
        color = self._race_colors.pop(record.name, None) or next(self._color_cycle)  # a racer keeps its colour
        self._records[key] = record
        self._colors[key] = color
        self.runs.add_run(key, line(record.name, 80), color, checked=True, tooltip=plain_tooltip(record.summary()))
        self._show(key)
        self._update_buttons()

    def _show(self, key: str) -> None:
        rec, color = self._records[key], self._colors[key]
        self.plot.add_overlay(key, rec.name, rec.iterations, rec.losses, color=color)
        points = [(e.get("iteration"), e.get("test_accuracy")) for e in rec.epochs]
        points = [(i, a * 100) for i, a in points if i is not None and a is not None]
        if points:
            x, y = np.array(points, dtype=np.float64).T
            self._acc_items[key] = self.plot.accuracy_plot.plot(
                x, y, pen=pg.mkPen(color, width=2), symbol="o", symbolSize=6, symbolBrush=color,
                symbolPen=pg.mkPen("w"))

    def _hide(self, key: str) -> None:
        if key in self.plot.overlay_keys():
            self.plot.remove_overlay(key)
        item = self._acc_items.pop(key, None)
        if item is not None:
            self.plot.accuracy_plot.removeItem(item)

    def run_keys(self) -> list[str]:
        return self.runs.keys()

    def record(self, key: str) -> RunRecord:
        return self._records[key]

    def key_of(self, record: RunRecord) -> str:
        for key, rec in self._records.items():
            if rec is record:
                return key
        raise KeyError(record.name)

    def _on_toggled(self, key: str, checked: bool) -> None:
        shown = key in self.plot.overlay_keys()
        if checked and not shown:
            self._show(key)
        elif not checked and shown:
            self._hide(key)

    def remove_run(self, key: str) -> None:
        """Off the list and the plot (session.runs keeps its history)."""
        if key not in self._records:
            return
        self._hide(key)
        self.runs.remove_run(key)
        del self._records[key]
        self._update_buttons()

    def export_run(self, key: str, path) -> list[Path]:
        """Writes <path>.json, <path>-losses.csv, <path>-epochs.csv and <path>.png (the plot as shown)."""
        rec = self._records[key]
        path = Path(path)
        if path.suffix.lower() != ".json":
            path = path.with_name(path.name + ".json")
        prefix = path.with_suffix("")
        written = [rec.to_json(path), *rec.to_csv(prefix)]
        png = prefix.with_suffix(".png")
        self.plot.export_png(str(png))
        written.append(png)
        return written

    def import_run(self, path) -> RunRecord:
        """Reads a run file and adds it to the session (and so to this list); RunFileError if broken."""
        record = RunRecord.from_json(path)
        self.session.add_run(record)
        return record

    def _export_clicked(self) -> None:
        key = self.runs.current_key()
        if not key:
            return
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in self._records[key].name)
        path, _ = QFileDialog.getSaveFileName(self, "Export run", f"{safe}.json", "Run files (*.json)")
        if path:
            try:
                written = self.export_run(key, path)
            except OSError as exc:
                self.show_error("Could not export the run", str(exc))
            else:
                self.status.setText("Exported " + ", ".join(p.name for p in written))

    def _import_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import run", "", "Run files (*.json);;All files (*)")
        if path:
            try:
                rec = self.import_run(path)
            except RunFileError as exc:
                self.show_error("Could not import the run", str(exc))
            else:
                self.status.setText(block(f"Imported {rec.summary()}", max_lines=8))

    def show_error(self, title: str, text: str) -> None:
        """A modal message; tests replace it to record instead."""
        message_box(self, QMessageBox.Icon.Warning, title, text).exec()

    # ----- race -----
    def race_configs(self) -> list[tuple[str, TrainConfig]]:
        hidden = parse_hidden(self.hidden_edit.text())
        batch, seed = self.batch_spin.value(), self.seed_spin.value()
        if self.mode_box.currentData() == "optimizers":
            return optimizer_race_configs(hidden, batch, seed)
        base = TrainConfig(hidden=hidden, optimizer=self.optimizer_box.currentData(), batch_size=batch, seed=seed)
        return learning_rate_race_configs(base, parse_rates(self.rates_edit.text()))

    def is_racing(self) -> bool:
        return self._task is not None

    def start_race(self) -> None:
        if self._task is not None:
            return
        dataset = self.session.dataset
        if dataset is None or not dataset.has_train:
            self.status.setText("A race needs a dataset with training images: choose one in the Dataset list.")
            return
        try:
            configs = self.race_configs()
        except ValueError as exc:
            self.status.setText(f"Cannot race: {exc}")
            return
        iterations = self.iterations_spin.value()
        self._live_keys = {}
        for name, _ in configs:
            key = f"race:{name}"
            self._live_keys[name] = key
            self._race_colors[name] = next(self._color_cycle)
            self.plot.add_overlay(key, name, color=self._race_colors[name])  # replaces one of an earlier race

        def work(ctx):
            coalescer = ReportCoalescer(ctx.report, urgent=lambda p: p.paused)
            try:
                return race(configs, dataset, iterations, control=ctx.cancelled, callback=coalescer,
                            report_every=RACE_REPORT_EVERY)
            finally:
                coalescer.flush()

        task = self.tasks.create(work, "race")
        task.progress.connect(self._on_race_progress)
        task.succeeded.connect(self._on_race_done)
        task.failed.connect(self._on_race_failed)
        task.finished.connect(self._on_race_finished)
        self._task = task
        self.status.setText(f"Racing {len(configs)} networks for {iterations} iterations on {dataset.name}…")
        self.tasks.start(task)
        self._update_buttons()

    def stop_race(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def _on_race_progress(self, p: RaceProgress) -> None:
        """New losses grow each live curve in place; the plot redraws (and smooths) them on its own timer."""
        for name, new in p.losses.items():
            if len(new) and name in self._live_keys:
                self.plot.append_overlay(self._live_keys[name], new)
        self.status.setText(f"Race: iteration {p.iteration} of {p.total} ({p.elapsed:.1f} s)")

    def _on_race_done(self, result: RaceResult) -> None:
        for key in self._live_keys.values():
            if key in self.plot.overlay_keys():
                self.plot.remove_overlay(key)
        self._live_keys = {}
        for record in result.records():
            self.session.add_run(record)  # -> _on_run_added: list entry and overlay
        parts = [_race_line(r) for r in result.racers]
        self.status.setText(f"Race {result.status} after {result.iterations} iterations ({result.elapsed:.1f} s). "
                            + "; ".join(parts))
        self.raceFinished.emit(result)

    def _on_race_failed(self, exc: BaseException) -> None:
        self._race_colors = {}
        self.status.setText(f"Race failed: {describe_error(exc)}")
        self.raceFailed.emit(exc)

    def _on_race_finished(self) -> None:
        self._task = None
        self._update_buttons()

    def _update_buttons(self) -> None:
        racing = self._task is not None
        ds = self.session.dataset
        self.race_button.setEnabled(not racing and ds is not None and ds.has_train)
        self.stop_button.setEnabled(racing)
        rates = self.mode_box.currentData() == "rates"
        self.rates_edit.setEnabled(rates)
        self.optimizer_box.setEnabled(rates)
        has = bool(self.runs.current_key())
        self.export_button.setEnabled(has)
        self.remove_button.setEnabled(has)
