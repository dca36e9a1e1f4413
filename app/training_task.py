"""Training on a worker thread: the engine's loop with its progress coalesced to a few dozen updates a second."""
from __future__ import annotations

import time
from typing import Callable

import numpy as np
from PySide6.QtCore import QObject

from app.threads import BackgroundTask, TaskContext
from engine.network import Network
from engine.optimizers import Optimizer
from engine.training import Progress, TrainControl, TrainResult, TrainSettings, train


class ProgressCoalescer:
    """Merges the engine's frequent ``Progress`` reports and passes one on at most every ``interval`` seconds.

    Epoch ends and pauses are passed on at once, so the plot and buttons never lag behind them.
    """

    def __init__(self, emit: Callable[[Progress], None], interval: float = 1 / 30) -> None:
        self._emit = emit
        self.interval = interval
        self._pending: Progress | None = None
        self._losses: list[np.ndarray] = []
        self._last = float("-inf")  # the first report goes out at once

    def __call__(self, p: Progress) -> None:
        self._losses.append(p.losses)
        if self._pending is None:
            self._pending = p
        else:
            self._pending = Progress(p.iteration, p.epoch, p.iterations_per_epoch, p.total_iterations, p.losses,
                                     self._pending.epochs + p.epochs, p.elapsed, p.paused)
        now = time.perf_counter()
        if p.epochs or p.paused or now - self._last >= self.interval:
            self.flush()
            self._last = now

    def flush(self) -> None:
        if self._pending is None:
            return
        p = self._pending
        losses = np.concatenate(self._losses) if len(self._losses) > 1 else self._losses[0]
        self._pending, self._losses = None, []
        self._emit(Progress(p.iteration, p.epoch, p.iterations_per_epoch, p.total_iterations, losses,
                            p.epochs, p.elapsed, p.paused))


class TrainingTask(BackgroundTask):
    """``train(...)`` on its own thread. ``progress`` carries coalesced ``Progress``; ``succeeded`` a ``TrainResult``.

    The ``control`` is the engine's ``TrainControl``: call pause/resume/step/stop or
    set_hyperparameters on it from the GUI thread; ``cancel()`` also stops training.
    """

    def __init__(self, network: Network, optimizer: Optimizer, x_train, t_train, x_test=None, t_test=None,
                 settings: TrainSettings | None = None, control: TrainControl | None = None,
                 interval: float = 1 / 30, name: str = "training", parent: QObject | None = None) -> None:
        self.control = control or TrainControl()
        self.network = network

        def run(ctx: TaskContext) -> TrainResult:
            coalescer = ProgressCoalescer(ctx.report, interval)
            try:
                return train(network, optimizer, x_train, t_train, x_test, t_test, settings, self.control, coalescer)
            finally:
                coalescer.flush()

        super().__init__(run, name, parent)

    def cancel(self) -> None:
        super().cancel()
        self.control.stop()
