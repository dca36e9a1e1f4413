"""The "Training" page: a message banner, the run's progress and speed, the loss plot, the first-layer weights.

It only shows: the training controller (``app.controllers.training``) pushes each merged progress
report into ``show_progress`` and says when a run begins and ends. The weights view follows the
session by itself: it remembers the weights each new network started from ("change since the
start") and redraws a copy a few times a second while a run is going.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QProgressBar, QSplitter, QVBoxLayout, QWidget

from app.session import Session
from widgets.loss_plot import LossPlot
from widgets.plain_text import block, plain_label
from widgets.weight_grid import WeightGrid

WEIGHT_REFRESH_MS = 500  # the first-layer weights are redrawn twice a second while training
RUNNING_STATES = ("running", "paused")
BANNER_STYLES = {
    "error": "QLabel { background: #fde2e1; color: #8a1c14; border: 1px solid #e8a39d; padding: 6px; }",
    "info": "QLabel { background: #e6f0fb; color: #123e6b; border: 1px solid #a9c6e8; padding: 6px; }",
}


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
        split = QSplitter(Qt.Vertical)
        self.loss_plot = LossPlot()
        self.loss_plot.setToolTip("Loss of every mini-batch (thin), its moving average (bold), and per-epoch "
                                  "train/test loss and accuracy; vertical lines mark epoch ends")
        split.addWidget(self.loss_plot)
        split.addWidget(self._weights_box())
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        layout.addWidget(split, 1)
        self.weight_timer = QTimer(self)
        self.weight_timer.setInterval(WEIGHT_REFRESH_MS)
        self.weight_timer.timeout.connect(self.refresh_weights)
        session.networkChanged.connect(self._network_changed)
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
                                    "refreshed a few times a second while training")
        layout.addWidget(self.weight_grid, 1)
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
    def clear_run(self) -> None:
        """No run: an empty plot and an idle progress bar."""
        self.loss_plot.reset()
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.rate_label.setText("Not training")

    def begin_run(self, total_iterations: int) -> None:
        """A run of ``total_iterations`` is starting: the plot's iteration axis and the bar cover all of it."""
        self.clear_run()
        self.progress_bar.setRange(0, max(1, total_iterations))
        self.loss_plot.set_x_extent(total_iterations)
        self.rate_label.setText("Starting…")

    def show_progress(self, p) -> None:
        """One merged ``engine.train.loop.Progress``: losses and epochs to the plot, position and speed below."""
        self.loss_plot.append_losses(p.losses)
        for m in p.epochs:
            self.loss_plot.add_epoch(m.epoch, m.iteration, m.train_loss, m.train_accuracy, m.test_loss,
                                     m.test_accuracy)
        self.progress_bar.setValue(p.iteration)
        epochs_total = max(1, p.total_iterations // max(1, p.iterations_per_epoch))
        state = "paused" if p.paused else f"{p.iterations_per_second:,.0f} it/s, {format_seconds(p.seconds_left)} left"
        self.rate_label.setText(f"epoch {p.epoch}/{epochs_total} · iteration {p.iteration:,}/{p.total_iterations:,}"
                                f" · {state}")

    def show_result(self, status: str, iterations: int, elapsed: float) -> None:
        self.rate_label.setText(f"{status}: {iterations:,} iterations in {format_seconds(elapsed)}")

    # ----- weights -----
    def _network_changed(self, network) -> None:
        w1 = None if network is None else network.params.get("W1")
        self._w1_start = None if w1 is None else np.array(w1, copy=True)
        self.refresh_weights()

    def _state_changed(self, state: str) -> None:
        if state in RUNNING_STATES:
            self.weight_timer.start()
        else:
            self.weight_timer.stop()
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
