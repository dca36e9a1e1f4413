"""Training on a worker thread: the engine's loop, its reports coalesced to the screen's pace."""
from __future__ import annotations

from PySide6.QtCore import QObject

from app.coalescer import SCREEN_INTERVAL, ReportCoalescer
from app.threads import BackgroundTask, TaskContext
from engine.nn.network import Network
from engine.nn.optimizers import Optimizer
from engine.train.loop import Progress, TrainControl, TrainResult, TrainSettings, train


EVERY_STEP_PACE = 30.0  # steps per second up to which every step reaches the screen on its own


def every_step_shows(pace: float | None) -> bool:
    """True for a run paced at ``EVERY_STEP_PACE`` or slower: a person watches each step's update."""
    return pace is not None and pace <= EVERY_STEP_PACE


def shows_at_once(p: Progress, pace: float | None = None) -> bool:
    """A pause reaches the screen without waiting for the next screen update (the buttons must match it), and
    so does every step of a run paced at ``EVERY_STEP_PACE`` or slower (a person watches each update).

    Epoch ends of a fast run wait like the rest: on a small dataset they come many times a second.
    """
    return p.paused or every_step_shows(pace)


class TrainingTask(BackgroundTask):
    """``train(...)`` on its own thread. ``progress`` carries merged ``Progress``; ``succeeded`` a ``TrainResult``.

    The ``control`` is the engine's ``TrainControl``: call pause/resume/step/stop, set_pace or
    set_hyperparameters on it from the GUI thread; ``cancel()`` also stops training.
    """

    def __init__(self, network: Network, optimizer: Optimizer, x_train, t_train, x_test=None, t_test=None,
                 settings: TrainSettings | None = None, control: TrainControl | None = None,
                 interval: float = SCREEN_INTERVAL, name: str = "training", parent: QObject | None = None) -> None:
        self.control = control or TrainControl()
        self.network = network

        def run(ctx: TaskContext) -> TrainResult:
            coalescer = ReportCoalescer(ctx.report, interval, urgent=lambda p: shows_at_once(p, self.control.pace))
            try:
                return train(network, optimizer, x_train, t_train, x_test, t_test, settings, self.control, coalescer)
            finally:
                coalescer.flush()

        super().__init__(run, name, parent)

    def cancel(self) -> None:
        super().cancel()
        self.control.stop()
