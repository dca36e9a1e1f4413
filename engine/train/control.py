"""Pause / resume / step / stop a running training loop or race, set its pace, change its settings, from any thread."""
from __future__ import annotations

import math
import threading
import time
from typing import Callable

from engine.nn.optimizers import Optimizer


class TrainControl:
    """Pause / resume / step / stop / pace / change settings of a running loop, from any thread.

    A pace (``set_pace(steps_per_second)``) makes the loop wait between iterations so that a person can
    watch each one; the wait is cut short at once by a stop, a pause or a new pace. Single steps
    (``step()``) run at once whatever the pace; ``step_epoch()`` and a resumed run follow it.
    """

    def __init__(self, pace: float | None = None) -> None:
        self._cond = threading.Condition()
        self._paused = False
        self._stop = False
        self._step_budget = 0  # iterations allowed while paused
        self._to_epoch_end = False  # run while paused until the current epoch ends
        self._pending: dict = {}
        self._optimizer: Optimizer | None = None
        self.waiting = False  # true while the loop sits paused
        self._pace: float | None = None
        self._last_go: float | None = None  # when the loop last went on to an iteration (time.monotonic)
        self.set_pace(pace)

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

    def set_pace(self, steps_per_second: float | None) -> None:
        """At most this many iterations a second (None: as fast as possible); applies to a running loop at once."""
        if steps_per_second is not None:
            steps_per_second = float(steps_per_second)
            if not (math.isfinite(steps_per_second) and steps_per_second > 0):
                raise ValueError(f"a pace is a positive number of steps per second (or None), got {steps_per_second}")
        with self._cond:
            self._pace = steps_per_second
            self._cond.notify_all()

    @property
    def pace(self) -> float | None:
        """Iterations per second the loop is held to, or None (as fast as it can)."""
        return self._pace

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def stopped(self) -> bool:
        return self._stop

    # ----- loop side -----
    def _checkpoint(self, before_wait: Callable[[], None],
                    before_pace: Callable[[], None] | None = None) -> tuple[bool, dict, Optimizer | None]:
        """Block while paused or until the pace allows the next iteration.

        ``before_wait`` runs (without the lock) once before a pause, ``before_pace`` once before a wait for the
        pace: both let the loop report what it has done, so a person sees every paced step.
        Returns (go on?, pending hyper-parameters, new optimizer).
        """
        with self._cond:
            flushed = paced = False
            while not self._stop:
                if self._paused and self._step_budget == 0 and not self._to_epoch_end:
                    if not flushed:
                        self._call_unlocked(before_wait)
                        flushed = True
                        continue
                    self.waiting = True
                    self._cond.wait(0.2)
                    continue
                self.waiting = False
                wait = self._pace_wait()
                if wait <= 0:
                    break
                if not paced and before_pace is not None:
                    self._call_unlocked(before_pace)
                    paced = True
                    continue
                self._cond.wait(min(wait, 0.2))  # set_pace, pause and stop notify: the wait ends at once
            self.waiting = False
            if self._stop:
                return False, {}, None
            self._last_go = time.monotonic()
            if self._paused and self._step_budget > 0:
                self._step_budget -= 1
            pending, self._pending = self._pending, {}
            optimizer, self._optimizer = self._optimizer, None
            return True, pending, optimizer

    def _pace_wait(self) -> float:
        """Seconds until the pace allows the next iteration (0 for a single step, or with no pace)."""
        if self._pace is None or self._last_go is None or (self._paused and self._step_budget > 0):
            return 0.0
        return self._last_go + 1.0 / self._pace - time.monotonic()

    def _call_unlocked(self, callback: Callable[[], None]) -> None:
        self._cond.release()
        try:
            callback()
        finally:
            self._cond.acquire()

    def _epoch_ended(self) -> None:
        with self._cond:
            self._to_epoch_end = False
