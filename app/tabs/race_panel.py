"""The Compare page's race: train the book's optimizers, or one optimizer at several learning rates, side by side.

A race trains several networks from the same starting weights on the same batches
(engine.train.race) on one worker thread; their curves grow live on the compare plot, focused so
the axes fit the race and not older, longer runs. When it ends, every racer becomes a run in the
session (and so in the run list), keeping its colour.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFormLayout, QGroupBox, QHBoxLayout, QLineEdit, QPushButton, QSpinBox, QWidget

from app.coalescer import ReportCoalescer
from app.session import Session
from app.tabs.compare_plot import ComparePlot
from app.threads import BackgroundTask, TaskRegistry, describe_error
from engine.registry import OPTIMIZER_CHOICES, label
from engine.train.config import TrainConfig, parse_hidden
from engine.train.race import (BOOK_OPTIMIZERS, RaceProgress, RaceResult, learning_rate_race_configs,
                               optimizer_race_configs, race)
from engine.train.run_names import run_title
from widgets.compact_combo import compact_combo_box
from widgets.fitted_label import FittedLabel
from widgets.plain_text import help_line

BOOK_NAMES = ", ".join(f"{label(OPTIMIZER_CHOICES, n)} (lr {lr:g})" for n, lr in BOOK_OPTIMIZERS)
RACE_MODES = (("optimizers", "The book's optimizers", f"{BOOK_NAMES}, as in the book's chapter 6"),
              ("rates", "Learning rates", "One optimizer at each of the learning rates below"))
RACE_REPORT_EVERY = 5  # iterations between the race's reports (merged to the screen's pace on the worker)
STATUS_LINES = 7  # the status line's fixed height: a longer message never pushes the buttons around
HELP = "Trains several networks from the same starting weights on the same batches: only the optimizer or " \
       "the learning rate differs."


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


def race_line(racer) -> str:
    """'Adam lr 0.001: loss 0.123, test 91.0%' for the status line."""
    if racer.status == "diverged":
        return f"{racer.label}: diverged"
    text = f"{racer.label}: loss {racer.losses[-1]:.3f}" if len(racer.losses) else f"{racer.label}: -"
    acc = racer.epochs[-1].get("test_accuracy") if racer.epochs else None
    return text + (f", test {acc:.1%}" if acc is not None else "")


class RacePanel(QGroupBox):
    raceStarted = Signal(list)  # plot keys of the live curves
    runsRecorded = Signal(list)  # the RunRecords the finished race added to the session
    raceFinished = Signal(object)  # engine.train.race.RaceResult
    raceFailed = Signal(object)  # the exception
    raceEnded = Signal()  # after any of the three above

    def __init__(self, session: Session, tasks: TaskRegistry, plot: ComparePlot, next_color: Callable[[], str],
                 parent: QWidget | None = None) -> None:
        super().__init__("Race", parent)
        self.session, self.tasks, self.plot, self._next_color = session, tasks, plot, next_color
        self._task: BackgroundTask | None = None  # the race running now, for the buttons
        self._live_keys: dict[str, str] = {}  # racer label -> plot key of its growing curve
        self._colors: dict[str, str] = {}  # racer label -> colour, handed on to its run

        self.mode_box = compact_combo_box()
        for key, text, tip in RACE_MODES:
            self.mode_box.addItem(text, key)
            self.mode_box.setItemData(self.mode_box.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        self.mode_box.setToolTip(f"Race the book's optimizers: {BOOK_NAMES}; or one optimizer at several "
                                 "learning rates.")
        self.mode_box.currentIndexChanged.connect(self.update_buttons)
        self.hidden_edit = QLineEdit("100")
        self.hidden_edit.setToolTip("Hidden layer sizes, e.g. 100 or 100,100,100,100 (the book's network).")
        self.optimizer_box = compact_combo_box()
        for choice in OPTIMIZER_CHOICES:
            self.optimizer_box.addItem(choice.label, choice.name)
            self.optimizer_box.setItemData(self.optimizer_box.count() - 1, choice.help, Qt.ItemDataRole.ToolTipRole)
        self.optimizer_box.setToolTip("The optimizer every racer uses in a learning-rate race.")
        self.rates_edit = QLineEdit("0.1, 0.01, 0.001")
        self.rates_edit.setToolTip("The learning rates to race (learning-rate race), separated by commas.")
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
        self.race_button.setToolTip("Train all racers side by side on the current dataset; their curves grow live.")
        self.race_button.clicked.connect(self.start_race)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("End the race now; what has been run so far is kept as runs.")
        self.stop_button.clicked.connect(self.stop_race)
        self.status = FittedLabel(STATUS_LINES, tooltip="How the race goes, and how each racer ended.")

        form = QFormLayout(self)
        form.addRow(help_line(HELP))
        form.addRow("Race", self.mode_box)
        form.addRow("Hidden layers", self.hidden_edit)
        form.addRow("Optimizer", self.optimizer_box)
        form.addRow("Learning rates", self.rates_edit)
        form.addRow("Iterations", self.iterations_spin)
        form.addRow("Batch size", self.batch_spin)
        form.addRow("Seed", self.seed_spin)
        buttons = QHBoxLayout()
        buttons.addWidget(self.race_button)
        buttons.addWidget(self.stop_button)
        form.addRow(buttons)
        form.addRow(self.status)

        session.datasetChanged.connect(lambda _d: self.update_buttons())
        self.update_buttons()

    def set_status(self, text: str) -> None:
        self.status.set_full_text(text)

    # ----- the race -----
    def race_configs(self) -> list[tuple[str, TrainConfig]]:
        hidden = parse_hidden(self.hidden_edit.text())
        batch, seed = self.batch_spin.value(), self.seed_spin.value()
        if self.mode_box.currentData() == "optimizers":
            return optimizer_race_configs(hidden, batch, seed)
        base = TrainConfig(hidden=hidden, optimizer=self.optimizer_box.currentData(), batch_size=batch, seed=seed)
        return learning_rate_race_configs(base, parse_rates(self.rates_edit.text()))

    def is_racing(self) -> bool:
        return self._task is not None

    def take_color(self, racer: str) -> str | None:
        """The colour a racer's live curve had (once), for the run it became."""
        return self._colors.pop(racer, None)

    def start_race(self) -> None:
        if self._task is not None:
            return
        dataset = self.session.dataset
        if dataset is None or not dataset.has_train:
            self.set_status("A race needs a dataset with training images: choose one in the Dataset list.")
            return
        try:
            configs = self.race_configs()
        except ValueError as exc:
            self.set_status(f"Cannot race: {exc}")
            return
        iterations = self.iterations_spin.value()
        self._live_keys, self._colors = {}, {}
        for name, config in configs:
            key = f"race:{name}"
            self._live_keys[name] = key
            self._colors[name] = self._next_color()
            settings = {**config.to_dict(), "dataset": dataset.name}
            self.plot.add_overlay(key, run_title(settings, name), color=self._colors[name])

        def work(ctx):
            coalescer = ReportCoalescer(ctx.report, urgent=lambda p: p.paused)
            try:
                return race(configs, dataset, iterations, control=ctx.cancelled, callback=coalescer,
                            report_every=RACE_REPORT_EVERY)
            finally:
                coalescer.flush()

        task = self.tasks.create(work, "race")
        task.progress.connect(self._on_progress)
        task.succeeded.connect(self._on_done)
        task.failed.connect(self._on_failed)
        task.finished.connect(self._on_finished)
        self._task = task
        self.set_status(f"Racing {len(configs)} networks for {iterations:,} iterations on {dataset.name}…")
        self.raceStarted.emit(list(self._live_keys.values()))
        self.tasks.start(task)
        self.update_buttons()

    def stop_race(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def live_keys(self) -> list[str]:
        return list(self._live_keys.values())

    def _on_progress(self, p: RaceProgress) -> None:
        """New losses grow each live curve in place; the plot redraws (and smooths) them on its own timer."""
        for name, new in p.losses.items():
            if len(new) and name in self._live_keys:
                self.plot.append_overlay(self._live_keys[name], new)
        for name, epochs in p.epochs.items():
            points = [(e.get("iteration"), e.get("test_accuracy")) for e in epochs]
            points = [(i, a * 100) for i, a in points if i is not None and a is not None]
            if points and name in self._live_keys:
                x, y = np.array(points, dtype=np.float64).T
                self.plot.append_accuracy(self._live_keys[name], x, y)
        self.set_status(f"Race: iteration {p.iteration:,} of {p.total:,} ({p.elapsed:.1f} s)")

    def _remove_live_curves(self) -> None:
        for key in self._live_keys.values():
            if key in self.plot.overlay_keys():
                self.plot.remove_overlay(key)
        self._live_keys = {}

    def _on_done(self, result: RaceResult) -> None:
        self._remove_live_curves()
        records = result.records()
        for record in records:
            self.session.add_run(record)  # -> the page lists it and draws it, in its racer's colour
        self.set_status("\n".join([f"Race {result.status} after {result.iterations:,} iterations "
                                    f"({result.elapsed:.1f} s).", *(race_line(r) for r in result.racers)]))
        self.runsRecorded.emit(records)
        self.raceFinished.emit(result)

    def _on_failed(self, exc: BaseException) -> None:
        self._remove_live_curves()
        self._colors = {}
        self.set_status(f"Race failed: {describe_error(exc)}")
        self.raceFailed.emit(exc)

    def _on_finished(self) -> None:
        self._task = None
        self.update_buttons()
        self.raceEnded.emit()

    def update_buttons(self) -> None:
        racing = self._task is not None
        ds = self.session.dataset
        self.race_button.setEnabled(not racing and ds is not None and ds.has_train)
        self.stop_button.setEnabled(racing)
        rates = self.mode_box.currentData() == "rates"
        self.rates_edit.setEnabled(rates)
        self.optimizer_box.setEnabled(rates)
