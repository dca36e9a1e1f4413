"""Pause / resume / step / stop a running training loop or race, and change its settings, from any thread."""
from __future__ import annotations

import threading
from typing import Callable

from engine.nn.optimizers import Optimizer


class TrainControl:
    """Pause / resume / step / stop / change settings of a running loop, from any thread."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._paused = False
        self._stop = False
        self._step_budget = 0  # iterations allowed while paused
        self._to_epoch_end = False  # run while paused until the current epoch ends
        self._pending: dict = {}
        self._optimizer: Optimizer | None = None
        self.waiting = False  # true while the loop sits paused

    # ----- caller side -----
    def pause(self) -> None:
        with self._cond:
            self._paused = True
            self._step_budget = 0
            self._to_epoch_end = False
            self._cond.notify_all()

    def resume(self) -> None:
        with self._cond:
            self._paused = False
            self._step_budget = 0
            self._to_epoch_end = False
            self._cond.notify_all()

    def step(self, iterations: int = 1) -> None:
        """Run ``iterations`` more, then (stay) paused."""
        with self._cond:
            self._paused = True
            self._step_budget += max(1, int(iterations))
            self._cond.notify_all()

    def step_epoch(self) -> None:
        """Run to the end of the current epoch, then (stay) paused."""
        with self._cond:
            self._paused = True
            self._to_epoch_end = True
            self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()

    def set_hyperparameters(self, **values) -> None:
        """Queue new values (e.g. ``lr=0.01``); they apply before the next iteration."""
        with self._cond:
            self._pending.update(values)

    def set_optimizer(self, optimizer: Optimizer) -> None:
        """Swap the optimizer itself before the next iteration (its state starts fresh).

        Hyper-parameters queued for the old optimizer are dropped: the new one comes with its own.
        """
        with self._cond:
            self._optimizer = optimizer
            self._pending = {}

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def stopped(self) -> bool:
        return self._stop

    # ----- loop side -----
    def _checkpoint(self, before_wait: Callable[[], None]) -> tuple[bool, dict, Optimizer | None]:
        """Block while paused; returns (go on?, pending hyper-parameters, new optimizer)."""
        with self._cond:
            flushed = False
            while self._paused and not self._stop and self._step_budget == 0 and not self._to_epoch_end:
                if not flushed:
                    self._cond.release()
                    try:
                        before_wait()
                    finally:
                        self._cond.acquire()
                    flushed = True
                    continue
                self.waiting = True
                self._cond.wait(0.2)
            self.waiting = False
            if self._stop:
                return False, {}, None
            if self._paused and self._step_budget > 0:
                self._step_budget -= 1
            pending, self._pending = self._pending, {}
            optimizer, self._optimizer = self._optimizer, None
            return True, pending, optimizer

    def _epoch_ended(self) -> None:
        with self._cond:
            self._to_epoch_end = False
