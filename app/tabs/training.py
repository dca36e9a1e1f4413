"""The "Train" page: a message banner, the run's progress and speed, the loss plot, the first-layer weights.

It only shows: the training controller (``app.controllers.training``) pushes each merged progress
report into ``show_progress`` and says when a run begins and ends and when its learning rate changed.
The weights view follows the session by itself: it remembers the weights each new network started
from ("change since the start") and redraws a copy of the units it shows whenever the session says
they changed (once a second while training runs fast, every step of a slowly paced run), but only
while it can be seen: a hidden page redraws once when it is shown again.
"""
from __future__ import annotations

from collections import deque

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QProgressBar, QSplitter, QVBoxLayout, QWidget

from app.coalescer import VIEWS_INTERVAL
from app.session import Session
from app.training_task import every_step_shows
from engine.train.loop import counted
from widgets.loss_plot import LossPlot
from widgets.plain_text import block, help_line, line, plain_label
from widgets.weight_grid import MAX_TILES, WeightGrid

RATE_WINDOW = 3.0  # seconds of training the speed shown is measured over
MIN_RATE_SPAN = 0.5  # seconds of training (between two reports at least) before a speed is shown at all
RATE_MARGIN = 12  # pixels beside the speed line's text
BANNER_STYLES = {
    "error": "QLabel { background: #fde2e1; color: #8a1c14; border: 1px solid #e8a39d; padding: 6px; }",
    "info": "QLabel { background: #e6f0fb; color: #123e6b; border: 1px solid #a9c6e8; padding: 6px; }",
}
LOSS_HELP = ("How to read it: thin line, each mini-batch's loss; bold, their {window}; ○ train and □ test, each "
             "epoch's loss (top) and accuracy (bottom). A falling loss is learning; test far above train is "
             "overfitting.")
WEIGHTS_HELP = ("How to read it: one tile per hidden unit, its 784 input weights as a 28×28 picture. Red: ink there "
                "makes the unit fire; blue: ink there holds it back. Strokes appear as the unit learns.")
# (title, help line, tooltip) of the weights view for an MLP's first layer and for a CNN's first convolution
WEIGHTS_TEXTS = {
    "units": ("<b>First-layer weights</b> — what each hidden unit looks for (red: ink helps, blue: ink hurts)",
              WEIGHTS_HELP,
              "Each tile is one hidden unit's 784 input weights drawn as a 28×28 image, redrawn once a second "
              "while training runs fast, every step when the pace is slow"),
    "filters": ("<b>First-layer filters</b> — what each convolution filter looks for, anywhere in the image "
                "(red: ink helps, blue: ink hurts)",
                "How to read it: one tile per filter of the first convolution, its small window of weights, slid "
                "over every place in the digit. Red: ink there makes the filter respond; blue: ink there holds it "
                "back. Edges and pieces of strokes appear as the filters learn.",
                "Each tile is one filter's weights (e.g. 5×5), redrawn once a second while training runs fast, "
                "every step when the pace is slow"),
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
        self._w1_start: np.ndarray | None = None  # what "change since the start" is measured from (units shown)
        self._weights_stale = False  # the weights changed while the view was hidden: redraw when shown
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
        # A fixed size that fits the usual text: a label whose size may change asks for a re-layout with every
        # new text, and that repainted the whole page (plot, weights, tabs) with every report; a rare longer
        # text just widens it once (_show_rate).
        usual = max(self.rate_label.fontMetrics().horizontalAdvance(f"epoch 10/10 · iteration 6,000/6,000 · {state}")
                    for state in ("1,000 it/s, 10:00 left", "measuring the speed…"))
        self.rate_label.setFixedSize(usual + RATE_MARGIN, self.rate_label.sizeHint().height())
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
        self.weights_title = title = QLabel(WEIGHTS_TEXTS["units"][0])
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
        self.weight_grid.setToolTip(WEIGHTS_TEXTS["units"][2])
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
        self._show_rate(text)
        self._history = []
        self.history_label.setText("")
        self._recent: deque[tuple[float, int]] = deque()  # (seconds trained, iterations done) of recent reports
        self._pace: float | None = None  # steps per second the run is held to (None: as fast as possible)
        self.loss_plot.set_redraw_interval(None)

    def show_reset(self) -> None:
        """Reset made a new network: nothing trained yet."""
        self.clear_run("New untrained network: Start (F5) trains it")

    def begin_run(self, total_iterations: int, pace: float | None = None) -> None:
        """A run of ``total_iterations`` is starting: the plot's iteration axis and the bar cover all of it.

        ``pace``: the steps per second it is held to (None: as fast as possible); the speed shown never exceeds it.
        """
        self.clear_run()
        self._follow_pace(pace)
        self.progress_bar.setRange(0, max(1, total_iterations))
        self.loss_plot.set_x_extent(total_iterations)
        self.loss_plot.draw_now()  # before the worker starts: drawn while it does not need the GIL
        self._show_rate("Starting…")
        self.history_label.setText("No setting changed during this run yet")

    def show_progress(self, p) -> None:
        """One merged ``engine.train.loop.Progress``: losses and epochs to the plot, position and speed below."""
        self.loss_plot.append_losses(p.losses)
        for m in p.epochs:
            self.loss_plot.add_epoch(m.epoch, m.iteration, m.train_loss, m.train_accuracy, m.test_loss,
                                     m.test_accuracy)
        set_value_later(self.progress_bar, p.iteration)
        epochs_total = max(1, p.total_iterations // max(1, p.iterations_per_epoch))
        rate = self._recent_rate(p.elapsed, p.iteration)
        if p.paused:
            state = "paused"
        elif rate is None:
            state = "measuring the speed…"
        else:
            state = f"{rate:,.0f} it/s, {format_seconds((p.total_iterations - p.iteration) / rate)} left"
        self._show_rate(f"epoch {p.epoch}/{epochs_total} · iteration {p.iteration:,}/{p.total_iterations:,}"
                        f" · {state}")

    def _follow_pace(self, pace: float | None) -> None:
        """The run is held to ``pace`` steps per second (None: as fast as possible, or no run). The loss plot
        redraws with every step of a slowly paced run, and at most twice a second (VIEWS_INTERVAL) when it runs fast
        (less often when its redraws are dear: see ``LossPlot.set_redraw_interval``)."""
        self._pace = pace
        self.loss_plot.set_redraw_interval(None if every_step_shows(pace) else round(VIEWS_INTERVAL * 1000))

    def _show_rate(self, text: str) -> None:
        """The speed line: only the label repaints, unless the text needs more room (then it widens, once)."""
        needed = self.rate_label.fontMetrics().horizontalAdvance(text) + RATE_MARGIN
        if needed > self.rate_label.width():
            self.rate_label.setFixedWidth(needed)
        self.rate_label.setText(text)

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
        self._follow_pace(pace)
        last = self._recent[-1] if self._recent else None
        self._recent = deque([] if last is None else [last])

    def show_result(self, status: str, iterations: int, elapsed: float | None = None) -> None:
        """How the run ended: "finished after 400 iterations in 0:13" (the same count the plot and banner use)."""
        took = "" if elapsed is None else f" in {format_seconds(elapsed)}"
        self._show_rate(f"{status} after {counted(iterations, 'iteration')}{took}")
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
        self._w1_start = None if w1 is None else shown_weights(w1)
        title, help_text, tip = WEIGHTS_TEXTS["filters" if w1 is not None and w1.ndim == 4 else "units"]
        self.weights_title.setText(title)
        self.weights_help.setText(help_text)
        self.weights_help.setToolTip(help_text)  # a help line's tooltip is its text (widgets.plain_text.help_line)
        self.weight_grid.setToolTip(tip)
        self.refresh_weights()

    def _state_changed(self, state: str) -> None:
        if state not in ("running", "paused"):
            self.refresh_weights()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._weights_stale:
            self.refresh_weights()

    def refresh_weights(self) -> None:
        """Redraw the first-layer weights of the current network (a copy: the worker may be updating them).

        Only while the view can be seen; otherwise it is marked stale and redrawn when the page is shown.
        """
        if not self.weight_grid.isVisible() and self.window().isVisible():
            self._weights_stale = True  # another page shows: no copy, no drawing until this one is back
            return
        self._weights_stale = False
        network = self.session.network
        w1 = None if network is None else network.params.get("W1")
        if w1 is None:
            self.weight_grid.set_weights(None)
            return
        total = w1.shape[1] if w1.ndim == 2 else w1.shape[0]
        shown = shown_weights(w1)
        start = self._w1_start
        if self.weight_change_check.isChecked() and start is not None and start.shape == shown.shape:
            change = shown - start
            if np.any(change):  # before the first step there is no change to show: show the weights
                shown = change
        self.weight_grid.set_weights(shown, MAX_TILES, total=total)


def set_value_later(bar: QProgressBar, value: int) -> None:
    """``bar.setValue(value)``, painted with the window's next update instead of at once.

    QProgressBar.setValue repaints synchronously whenever its text changes: on a real screen (X11) that
    is a paint and a flush to the display server of its own with every training report.
    """
    bar.setUpdatesEnabled(False)
    try:
        bar.setValue(value)
    finally:
        bar.setUpdatesEnabled(True)  # schedules an ordinary update


def shown_weights(w1: np.ndarray) -> np.ndarray:
    """A copy of the part of a first layer the weights view draws: its first ``MAX_TILES`` units or filters.

    Copying only those keeps a wide layer's redraw cheap (784×64 of a 784×1000 layer).
    """
    w1 = np.asarray(w1)
    return np.array(w1[:, :MAX_TILES] if w1.ndim == 2 else w1[:MAX_TILES], copy=True)
