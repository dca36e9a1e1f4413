"""The "Compare" page: loss and accuracy curves of past runs overlaid, and one-click races (app.tabs.race_panel).

Every finished run, raced or trained on the Train page, lands in session.runs and in the list here
under a title that tells it apart from the others (optimizer, learning rate and its changes, batch,
seed; then whatever else differs; then #2, #3). Ticked runs are drawn; selected runs are focused:
drawn bold with the others dimmed and the axes fitted to them, and Export saves exactly them (JSON +
CSV per run and a PNG of only their curves). A saved run can be imported again.
"""
from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QCheckBox, QFileDialog, QHBoxLayout, QLabel, QMessageBox, QPushButton, QSplitter,
                               QVBoxLayout, QWidget)

from app.session import Session
from app.tabs.compare_plot import ComparePlot
from app.tabs.race_panel import RacePanel
from app.threads import TaskRegistry
from engine.train.run_names import run_events, unique_titles
from engine.train.runs import RunFileError, RunRecord
from widgets.fitted_label import FittedLabel
from widgets.plain_text import help_line, message_box, plain_tooltip
from widgets.run_list import RunList

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")
SMOOTH_WINDOW = 21  # iterations averaged by the "smooth" view (a Kaiser window, like the book's smooth_curve)
DETAIL_LINES = 5
NO_SELECTION = "Select a run to see its history and focus it: the others are dimmed and the axes fit it. " \
               "Ctrl-click to focus several."
RUNS_HELP = "Tick to draw, select to focus and export."


def smooth_losses(losses: np.ndarray, window: int = SMOOTH_WINDOW) -> np.ndarray:
    """A centred weighted moving average of the same length; the edges use the part of the window that exists."""
    y = np.asarray(losses, dtype=np.float64)
    if len(y) < 3 or window < 3:
        return y.copy()
    w = np.kaiser(min(window, len(y) - (1 - len(y) % 2)), 2.0)
    # dividing by the convolved weights (not by w.sum()) keeps the ends unbiased instead of pulled to zero
    return np.convolve(y, w, mode="same") / np.convolve(np.ones_like(y), w, mode="same")


def accuracy_points(record: RunRecord) -> tuple[np.ndarray, np.ndarray]:
    """(iterations, test accuracy in %) of a run's epochs that have both."""
    points = [(e.get("iteration"), e.get("test_accuracy")) for e in record.epochs]
    points = [(i, a * 100) for i, a in points if isinstance(i, (int, float)) and isinstance(a, (int, float))]
    arr = np.array(points, dtype=np.float64).reshape(-1, 2)
    return arr[:, 0], arr[:, 1]


def lr_markers(record: RunRecord) -> list[tuple[int, str]]:
    """'lr → 0.05' at each iteration where the run's learning rate was changed."""
    return [(c["iteration"], f"lr → {c['to']:g}") for c in record.lr_changes]


class ComparePage(QWidget):
    raceFinished = Signal(object)  # engine.train.race.RaceResult (from the race panel)

    def __init__(self, session: Session, tasks: TaskRegistry, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self._records: dict[str, RunRecord] = {}  # list key -> record
        self._colors: dict[str, str] = {}
        self._titles: dict[str, str] = {}
        self._counter = itertools.count(1)

        self.plot = ComparePlot()
        self.plot.set_overlay_transform(smooth_losses, f"smoothed over {SMOOTH_WINDOW} iterations")
        self.race = RacePanel(session, tasks, self.plot, self._free_color)
        self.race.raceStarted.connect(self._on_race_started)
        self.race.runsRecorded.connect(lambda records: self.runs.set_selected([self.key_of(r) for r in records]))
        self.race.raceFinished.connect(self.raceFinished)
        self.iterations_spin = self.race.iterations_spin  # for docs/make_pictures.py

        self.runs = RunList()
        self.runs.runToggled.connect(self._on_toggled)
        self.runs.selectedRunsChanged.connect(self._on_selection)
        self.detail = FittedLabel(DETAIL_LINES, NO_SELECTION, "The selected run's history: its network, settings, "
                                  "learning-rate changes and how it ended.")
        self.smooth_box = QCheckBox("Smooth curves")
        self.smooth_box.setChecked(True)
        self.smooth_box.setToolTip(f"Show a moving average over {SMOOTH_WINDOW} iterations instead of the raw "
                                   "per-batch loss (exports always hold the raw values).")
        self.smooth_box.toggled.connect(self._on_smooth)
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip("Save the selected runs as JSON and CSV (settings, loss per iteration, "
                                      "metrics per epoch) and a PNG of only their curves.")
        self.export_button.clicked.connect(self._export_clicked)
        self.import_button = QPushButton("Import…")
        self.import_button.setToolTip("Open a run saved earlier (.json) to compare it with new runs.")
        self.import_button.clicked.connect(self._import_clicked)
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Take the selected runs off the list and the plot.")
        self.remove_button.clicked.connect(self.remove_selected)
        self.status = FittedLabel(2, tooltip="What the last export or import did.")  # plain text: files are quoted

        buttons = QHBoxLayout()
        for b in (self.export_button, self.import_button, self.remove_button):
            buttons.addWidget(b)
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 0, 0)
        side_layout.addWidget(QLabel("Runs"))
        side_layout.addWidget(help_line(RUNS_HELP))
        side_layout.addWidget(self.runs, 1)
        side_layout.addWidget(self.detail)
        side_layout.addWidget(self.smooth_box)
        side_layout.addLayout(buttons)
        side_layout.addWidget(self.status)
        self.split = QSplitter()
        self.split.setChildrenCollapsible(False)
        for widget, stretch in ((side, 0), (self.plot, 1), (self.race, 0)):
            self.split.addWidget(widget)
            self.split.setStretchFactor(self.split.count() - 1, stretch)
        self.split.setSizes([300, 670, 270])
        layout = QVBoxLayout(self)
        layout.addWidget(self.split)

        session.runAdded.connect(self._on_run_added)
        for record in session.runs:
            self._on_run_added(record)
        self._update_buttons()

    # ----- the race (its panel does the work) -----
    def start_race(self) -> None:
        self.race.start_race()

    def is_racing(self) -> bool:
        return self.race.is_racing()

    def _on_race_started(self, live_keys: list) -> None:
        self.runs.set_selected([])
        self.plot.set_focus(live_keys)  # the axes fit the race, not older and longer runs

    def _free_color(self) -> str:
        """The palette colour fewest listed runs and live curves use (the first of those)."""
        used = Counter(self._colors.values())
        used.update(self.plot.overlay_color(k) for k in self.plot.overlay_keys() if k not in self._records)
        return min(PALETTE, key=lambda c: (used[c], PALETTE.index(c)))

    # ----- runs -----
    def _on_run_added(self, record: RunRecord) -> None:
        key = f"run{next(self._counter)}"
        self._records[key] = record
        self._colors[key] = self.race.take_color(record.name) or self._free_color()  # a racer keeps its colour
        self.runs.add_run(key, record.name, self._colors[key], checked=True)
        self._retitle()
        self._show(key)
        self._update_buttons()

    def _retitle(self) -> None:
        """Titles that tell the listed runs apart (recomputed when one comes or goes: a twin gets a #2)."""
        keys = self.runs.keys()
        records = [self._records[k] for k in keys]
        titles = unique_titles([(r.settings, r.name, len(r.losses)) for r in records])
        for key, record, title in zip(keys, records, titles):
            if self._titles.get(key) == title:
                continue
            self._titles[key] = title
            self.runs.set_label(key, title, plain_tooltip("\n".join([title, *record.history()])))
            if key in self.plot.overlay_keys():
                self.plot.set_label(key, title)
        self._update_detail()

    def title(self, key: str) -> str:
        return self._titles[key]

    def _show(self, key: str) -> None:
        rec = self._records[key]
        self.plot.add_overlay(key, self._titles[key], rec.iterations, rec.losses, color=self._colors[key],
                              accuracy=accuracy_points(rec), markers=lr_markers(rec))
        if key in self.runs.selected_keys():  # ticked again while selected: focused again
            self.plot.set_focus(self.runs.selected_keys())

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
            self.plot.remove_overlay(key)

    def _on_selection(self, keys: list) -> None:
        self.plot.set_focus(keys)
        self._update_detail()
        self._update_buttons()

    def _on_smooth(self, on: bool) -> None:
        if on:
            self.plot.set_overlay_transform(smooth_losses, f"smoothed over {SMOOTH_WINDOW} iterations")
        else:
            self.plot.set_overlay_transform(None)

    def _update_detail(self) -> None:
        keys = self.runs.selected_keys()
        if len(keys) == 1:
            rec = self._records[keys[0]]
            history = rec.history()[1:]  # the name is the record's; the title says more
            events = run_events(rec.settings)
            rest = [h for h in history if h not in events]
            # what a 5-line label must not cut: the title, each change made during the run, how the run ended
            lines = [self._titles[keys[0]], *events, rest[-1], *rest[:-1]]
        elif keys:
            lines = [f"{len(keys)} runs focused: the others are dimmed and the axes fit these. "
                     "Export saves them and a picture of only their curves."]
        else:
            lines = [NO_SELECTION]
        self.detail.set_full_text("\n".join(lines))

    def remove_selected(self) -> None:
        for key in self.runs.selected_keys():
            self.remove_run(key)

    def remove_run(self, key: str) -> None:
        """Off the list and the plot (session.runs keeps its history)."""
        if key not in self._records:
            return
        if key in self.plot.overlay_keys():
            self.plot.remove_overlay(key)
        self.runs.remove_run(key)
        del self._records[key], self._colors[key]
        self._titles.pop(key, None)
        self._retitle()
        self._update_buttons()

    # ----- files -----
    def export_run(self, key: str, path) -> list[Path]:
        """Writes <path>.json, <path>-losses.csv, <path>-epochs.csv and <path>.png (a picture of this run)."""
        return self.export_runs([key], path)

    def export_runs(self, keys, path) -> list[Path]:
        """Each run as JSON and CSV (<path>.json…, or <path>-1.json, <path>-2.json… for several) and one
        <path>.png of exactly these runs' curves, fitted to them, with their legend."""
        keys = [k for k in keys if k in self._records]
        path = Path(path)
        if path.suffix.lower() != ".json":
            path = path.with_name(path.name + ".json")
        prefix = path.with_suffix("")
        written: list[Path] = []
        for i, key in enumerate(keys, 1):
            one = prefix if len(keys) == 1 else prefix.with_name(f"{prefix.name}-{i}")
            written += [self._records[key].to_json(one.with_suffix(".json")), *self._records[key].to_csv(one)]
        png = prefix.with_suffix(".png")
        self.picture(keys, png)
        written.append(png)
        return written

    def picture(self, keys, path) -> None:
        """A PNG of only these runs (ticked or not), as drawn here: same titles, colours and smoothing."""
        curves = []
        for key in keys:
            rec = self._records[key]
            curves.append((key, self._titles[key], rec.iterations, rec.losses, self._colors[key],
                           accuracy_points(rec), lr_markers(rec)))
        self.plot.export_png(path, curves=curves)

    def import_run(self, path) -> RunRecord:
        """Reads a run file and adds it to the session (and so to this list); RunFileError if broken."""
        record = RunRecord.from_json(path)
        self.session.add_run(record)
        return record

    def _export_clicked(self) -> None:
        keys = self.runs.selected_keys()
        if not keys:
            return
        stem = self._titles[keys[0]] if len(keys) == 1 else f"{len(keys)} runs"
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem)
        path, _ = QFileDialog.getSaveFileName(self, "Export runs", f"{safe}.json", "Run files (*.json)")
        if path:
            try:
                written = self.export_runs(keys, path)
            except (OSError, ValueError) as exc:
                self.show_error("Could not export the runs", str(exc))
            else:
                self.set_status("Exported " + ", ".join(p.name for p in written))

    def _import_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import run", "", "Run files (*.json);;All files (*)")
        if path:
            try:
                rec = self.import_run(path)
            except RunFileError as exc:
                self.show_error("Could not import the run", str(exc))
            else:
                self.set_status(f"Imported {rec.summary()}")

    def set_status(self, text: str) -> None:
        self.status.set_full_text(text)

    def show_error(self, title: str, text: str) -> None:
        """A modal message; tests replace it to record instead."""
        message_box(self, QMessageBox.Icon.Warning, title, text).exec()

    def _update_buttons(self) -> None:
        has = bool(self.runs.selected_keys())
        self.export_button.setEnabled(has)
        self.remove_button.setEnabled(has)
