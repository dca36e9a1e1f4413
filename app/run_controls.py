"""The settings panel's "Run" group: Start, Pause, Resume, Step, Step epoch, Stop, Reset, and the pace.

The actions carry the keyboard shortcuts (the main window also puts them in its Training menu). The
pace holds a run to a few steps a second so a person can watch each update in the loss plot, the
weights and the live prediction; it changes a running run at once (``paceChanged``).
"""
from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QComboBox, QGridLayout, QGroupBox, QLabel, QSizePolicy, QToolButton, QWidget

# (steps per second or None for "as fast as possible", what the list shows)
PACES: tuple[tuple[float | None, str], ...] = (
    (None, "As fast as possible"), (100.0, "100 steps/s"), (30.0, "30 steps/s"), (10.0, "10 steps/s"),
    (3.0, "3 steps/s"), (1.0, "1 step/s"),
)
# A first run that can be watched: every step reaches the plot, the weights and the prediction, and
# the default run on the offline sample takes tens of seconds instead of about one.
DEFAULT_PACE = 30.0
PACE_TIP = ("How fast training goes. At 30 steps a second or slower every mini-batch shows in the loss plot, the "
            "weights and the live prediction; 1 step/s lets you follow each update. Changes a running run at once; "
            "Step (F10) always trains exactly one mini-batch.")


class RunControls(QGroupBox):
    """The run buttons and the pace; ``update_enabled(state, dataset_ready)`` keeps them truthful."""

    paceChanged = Signal(object)  # steps per second (float) or None

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Run", parent)

        def action(text: str, shortcut: str, tip: str) -> QAction:
            a = QAction(text, self)
            a.setShortcut(QKeySequence(shortcut))
            a.setToolTip(f"{tip} ({QKeySequence(shortcut).toString(QKeySequence.NativeText)})")
            a.setStatusTip(tip)
            return a

        self.action_start = action("Start", "F5", "Start training with these settings")
        self.action_pause = action("Pause", "F6", "Pause training after the current mini-batch")
        self.action_resume = action("Resume", "F8", "Carry on training from where it was paused")
        self.action_step = action("Step", "F10", "Train exactly one mini-batch, then pause")
        self.action_step_epoch = action("Step epoch", "Shift+F10", "Train until the current epoch ends, then pause")
        self.action_stop = action("Stop", "Shift+F5", "Stop training; the network keeps what it has learned so far")
        self.action_reset = action("Reset", "Ctrl+Shift+R",
                                   "Throw the current network away: a new, untrained one from these settings")
        self.actions = [self.action_start, self.action_pause, self.action_resume, self.action_step,
                        self.action_step_epoch, self.action_stop, self.action_reset]

        grid = QGridLayout(self)
        self.buttons: dict[str, QToolButton] = {}
        for i, a in enumerate(self.actions):
            b = QToolButton()
            b.setDefaultAction(a)
            b.setMinimumWidth(80)
            b.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
            self.buttons[a.text()] = b
            grid.addWidget(b, i // 2, i % 2)
        row = (len(self.actions) + 1) // 2
        pace_label = QLabel("Pace")
        pace_label.setToolTip(PACE_TIP)
        self.pace_combo = QComboBox()
        for value, text in PACES:
            self.pace_combo.addItem(text, value)
        self.pace_combo.setToolTip(PACE_TIP)
        pace_label.setBuddy(self.pace_combo)
        grid.addWidget(pace_label, row, 0)
        grid.addWidget(self.pace_combo, row, 1)
        self.set_pace(DEFAULT_PACE)
        self.pace_combo.currentIndexChanged.connect(lambda _i: self.paceChanged.emit(self.pace()))

    # ----- pace -----
    def pace(self) -> float | None:
        """Steps per second, or None for as fast as possible."""
        return self.pace_combo.currentData()

    def set_pace(self, steps_per_second: float | None) -> None:
        """Choose the listed pace nearest to ``steps_per_second`` (None: as fast as possible); emits paceChanged."""
        if steps_per_second is None:
            index = 0
        else:
            index = min(range(1, len(PACES)), key=lambda i: abs(PACES[i][0] - float(steps_per_second)))
        self.pace_combo.setCurrentIndex(index)

    # ----- state -----
    def update_enabled(self, state: str, dataset_ready: bool, running: bool) -> None:
        can_start = not running and dataset_ready
        self.action_start.setEnabled(can_start)
        self.action_pause.setEnabled(state == "running")
        self.action_resume.setEnabled(state == "paused")
        self.action_step.setEnabled(running or can_start)
        self.action_step_epoch.setEnabled(running or can_start)
        self.action_stop.setEnabled(running)
        self.action_reset.setEnabled(not running)
        if not dataset_ready:
            self.action_start.setToolTip("Start training (waiting for the dataset to load)")
        else:
            self.action_start.setToolTip("Start training with these settings (F5); if there is a trained or opened "
                                         "network, you choose whether to continue training it or start a new one")
