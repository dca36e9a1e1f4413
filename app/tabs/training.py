"""The "Train" page: a message banner, the run's progress and speed, the loss plot, the first-layer weights.

It only shows: the training controller (``app.controllers.training``) pushes each merged progress
report into ``show_progress`` and says when a run begins and ends and when its learning rate changed.
The weights view follows the session by itself: it remembers the weights each new network started
from ("change since the start") and redraws a copy whenever a training report says they changed
(a few times a second, or every step of a slowly paced run).
"""
from __future__ import annotations

from collections import deque

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QProgressBar, QSplitter, QVBoxLayout, QWidget

from app.session import Session
from engine.train.loop import counted
from widgets.loss_plot import LossPlot
from widgets.plain_text import block, help_line, line, plain_label
from widgets.weight_grid import WeightGrid

RATE_WINDOW = 3.0  # seconds of training the speed shown is measured over
MIN_RATE_SPAN = 0.5  # seconds of training (between two reports at least) before a speed is shown at all
BANNER_STYLES = {
    "error": "QLabel { background: #fde2e1; color: #8a1c14; border: 1px solid #e8a39d; padding: 6px; }",
    "info": "QLabel { background: #e6f0fb; color: #123e6b; border: 1px solid #a9c6e8; padding: 6px; }",
}
LOSS_HELP = ("How to read it: thin line, each mini-batch's loss; bold, their {window}; ○ train and □ test, each "
             "epoch's loss (top) and accuracy (bottom). A falling loss is learning; test far above train is "
             "overfitting.")
WEIGHTS_HELP = ("How to read it: one tile per hidden unit, its 784 input weights as a 28×28 picture. Red: ink there "
                "makes the unit fire; blue: ink there holds it back. Strokes appear as the unit learns.")


def format_seconds(seconds: float | None) -> str:
    """'1:05', '1:02:03', or '–' when unknown."""
    if seconds is None or not np.isfinite(seconds):
        return "–"
    seconds = int(round(seconds))
    minutes, s = divmod(seconds, 60)
    hours, m = divmod(minutes, 60)
    return f"{hours}:{m:02d}:{s:02d}" if hours else f"{m}:{s:02d}"


class TrainingPage(QWidget):
    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self._banner_topic = ""
        self._w1_start: np.ndarray | None = None  # what "change since the start" is measured from
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        self.banner = plain_label(word_wrap=True)  # may quote a file's name or an error about it: text, never HTML
        self.banner.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.banner.hide()
        layout.addWidget(self.banner)
        row = QHBoxLayout()
        self.progress_bar = QProgressBar()
        self.progress_bar.setFormat("%p%")
        self.progress_bar.setToolTip("Iterations done out of all iterations of this run")
        self.rate_label = QLabel()
        self.rate_label.setToolTip("Training speed and the time left at that speed")
        # A minimum width that fits the usual text: text that changes length several times a second must not
        # re-layout (and so repaint) the plot each time; a rare longer text just widens it once.
        self.rate_label.setMinimumWidth(self.rate_label.fontMetrics().horizontalAdvance(
            "epoch 10/10 · iteration 6,000/6,000 · 1,000 it/s, 10:00 left") + 12)
        row.addWidget(self.progress_bar, 1)
        row.addWidget(self.rate_label)
        layout.addLayout(row)
        self.history_label = plain_label()  # one line, always there: a change during the run moves nothing
        self.history_label.setMinimumHeight(self.history_label.fontMetrics().height())
        self.history_label.setToolTip("Settings changed during this run, and from which iteration they applied; "
                                      "the loss plot marks each learning-rate change with a dotted line")
        layout.addWidget(self.history_label)
        split = QSplitter(Qt.Vertical)
        loss_box = QWidget()
        loss_layout = QVBoxLayout(loss_box)
        loss_layout.setContentsMargins(0, 0, 0, 0)
        self.loss_plot = LossPlot()
        self.loss_plot.setToolTip("Loss of every mini-batch (thin), its moving average (bold), and per-epoch "
                                  "train/test loss and accuracy; dashed lines mark epoch ends, dotted lines "
                                  "learning-rate changes")
        loss_layout.addWidget(self.loss_plot, 1)
        self.loss_help = help_line(LOSS_HELP.format(window=self.loss_plot.smoothing_text()))
        loss_layout.addWidget(self.loss_help)
        split.addWidget(loss_box)
        split.addWidget(self._weights_box())
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        layout.addWidget(split, 1)
        self._history: list[str] = []
        session.networkChanged.connect(self._network_changed)
        session.weightsUpdated.connect(self.refresh_weights)
        session.trainingStateChanged.connect(self._state_changed)
        self.clear_run()
        self._network_changed(session.network)

    def _weights_box(self) -> QWidget:
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 4, 0, 0)
        title = QLabel("<b>First-layer weights</b> — what each hidden unit looks for "
                       "(red: ink helps, blue: ink hurts)")
        title.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(title, 1)
        self.weight_change_check = QCheckBox("change since the start")
        self.weight_change_check.setChecked(True)
        self.weight_change_check.setToolTip(
            "Show how much each weight moved since this network was created or loaded. Random initial weights\n"
            "hide what a short training run learned; the change shows the strokes each unit has come to look for.")
        self.weight_change_check.toggled.connect(lambda _on: self.refresh_weights())
        row.addWidget(self.weight_change_check)
        layout.addLayout(row)
        self.weight_grid = WeightGrid()
        self.weight_grid.setToolTip("Each tile is one hidden unit's 784 input weights drawn as a 28×28 image, "
                                    "redrawn with every training report (every step when the pace is slow)")
        layout.addWidget(self.weight_grid, 1)
        self.weights_help = help_line(WEIGHTS_HELP)
        layout.addWidget(self.weights_help)
        return box

    # ----- banner -----
    def show_banner(self, text: str, kind: str = "info", topic: str = "") -> None:
        """A message above the plot until cleared; ``topic`` lets its sender clear only its own message."""
        self._banner_topic = topic
        self.banner.setStyleSheet(BANNER_STYLES[kind])
        self.banner.setText(block(text, max_lines=8))
        self.banner.show()

    def clear_banner(self, topic: str | None = None) -> None:
        """Hide the banner (only if it is about ``topic``, when one is given)."""
        if topic is None or topic == self._banner_topic:
            self.banner.hide()
            self._banner_topic = ""

    # ----- the run -----
    def clear_run(self, text: str = "Not training") -> None:
        """No run: an empty plot, an idle progress bar, no history; ``text`` says why."""
        self.loss_plot.reset()
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.rate_label.setText(text)
        self._history = []
        self.history_label.setText("")
        self._recent: deque[tuple[float, int]] = deque()  # (seconds trained, iterations done) of recent reports
        self._pace: float | None = None  # steps per second the run is held to (None: as fast as possible)

    def show_reset(self) -> None:
        """Reset made a new network: nothing trained yet."""
        self.clear_run("New untrained network: Start (F5) trains it")

    def begin_run(self, total_iterations: int, pace: float | None = None) -> None:
        """A run of ``total_iterations`` is starting: the plot's iteration axis and the bar cover all of it.

        ``pace``: the steps per second it is held to (None: as fast as possible); the speed shown never exceeds it.
        """
        self.clear_run()
        self._pace = pace
        self.progress_bar.setRange(0, max(1, total_iterations))
        self.loss_plot.set_x_extent(total_iterations)
        self.rate_label.setText("Starting…")
        self.history_label.setText("No setting changed during this run yet")

    def show_progress(self, p) -> None:
        """One merged ``engine.train.loop.Progress``: losses and epochs to the plot, position and speed below."""
        self.loss_plot.append_losses(p.losses)
        for m in p.epochs:
            self.loss_plot.add_epoch(m.epoch, m.iteration, m.train_loss, m.train_accuracy, m.test_loss,
                                     m.test_accuracy)
        self.progress_bar.setValue(p.iteration)
        epochs_total = max(1, p.total_iterations // max(1, p.iterations_per_epoch))
        rate = self._recent_rate(p.elapsed, p.iteration)
        if p.paused:
            state = "paused"
        elif rate is None:
            state = "measuring the speed…"
        else:
            state = f"{rate:,.0f} it/s, {format_seconds((p.total_iterations - p.iteration) / rate)} left"
        self.rate_label.setText(f"epoch {p.epoch}/{epochs_total} · iteration {p.iteration:,}/{p.total_iterations:,}"
                                f" · {state}")

    def _recent_rate(self, elapsed: float, iteration: int) -> float | None:
        """Iterations per second over the last few seconds of training (None until there are two reports at least
        ``MIN_RATE_SPAN`` apart): a new pace shows within seconds, and a paced run never seems faster than its pace."""
        recent = self._recent
        recent.append((elapsed, iteration))
        while len(recent) > 2 and elapsed - recent[1][0] >= RATE_WINDOW:
            recent.popleft()
        (t0, i0), (t1, i1) = recent[0], recent[-1]
        if len(recent) < 2 or t1 - t0 < MIN_RATE_SPAN or i1 <= i0:
            return None
        rate = (i1 - i0) / (t1 - t0)
        return rate if self._pace is None else min(rate, self._pace)

    def restart_speed(self, pace: float | None) -> None:
        """The run's pace changed (or it resumed): measure the speed afresh from the last report on."""
        self._pace = pace
        last = self._recent[-1] if self._recent else None
        self._recent = deque([] if last is None else [last])

    def show_result(self, status: str, iterations: int, elapsed: float | None = None) -> None:
        """How the run ended: "finished after 400 iterations in 0:13" (the same count the plot and banner use)."""
        took = "" if elapsed is None else f" in {format_seconds(elapsed)}"
        self.rate_label.setText(f"{status} after {counted(iterations, 'iteration')}{took}")
        if not self._history:
            self.history_label.setText("No setting changed during this run")  # it has ended: no "yet"

    def add_change(self, iteration: int, text: str) -> None:
        """A setting changed during the run (e.g. "lr 0.001 → 0.05" from ``iteration`` on): a marker and a line."""
        self.loss_plot.add_marker(iteration, text)
        self._history.append(f"{text} at iteration {iteration:,}")
        self.history_label.setText(line("Changes in this run: " + "; ".join(self._history), 300))

    def history(self) -> list[str]:
        """The changes shown for this run, e.g. ["lr 0.001 → 0.05 at iteration 812"]."""
        return list(self._history)

    # ----- weights -----
    def _network_changed(self, network) -> None:
        w1 = None if network is None else network.params.get("W1")
        self._w1_start = None if w1 is None else np.array(w1, copy=True)
        self.refresh_weights()

    def _state_changed(self, state: str) -> None:
        if state not in ("running", "paused"):
            self.refresh_weights()

    def refresh_weights(self) -> None:
        """Redraw the first-layer weights of the current network (a copy: the worker may be updating them)."""
        network = self.session.network
        w1 = None if network is None else network.params.get("W1")
        if w1 is None:
            self.weight_grid.set_weights(None)
            return
        w1 = np.array(w1, copy=True)
        start = self._w1_start
        if self.weight_change_check.isChecked() and start is not None and start.shape == w1.shape:
            change = w1 - start
            if np.any(change):  # before the first step there is no change to show: show the weights
                w1 = change
        self.weight_grid.set_weights(w1)
