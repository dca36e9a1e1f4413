"""A view's redraws held to a share of the GUI thread's time, for plots that follow a fast training run.

Every redraw of a pyqtgraph plot runs Python on the GUI thread (handing the data over, then painting), and
all that time the training thread waits for Python's GIL. A fixed redraw rate costs training more as the
redraws get dearer (more curves, a new epoch's points and lines on each). A ``RedrawBudget`` measures what
the redraws actually cost, in CPU time of the GUI thread (not wall time: waiting for the GIL is not
cost), and stretches the interval between them so that they take at most ``share`` of the time.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Callable, Iterator

import pyqtgraph as pg

SHARE = 0.01  # a view that follows a fast run spends at most this share of the time redrawing (1 %)
WEIGHT = 0.5  # of the newest redraw in the running cost: it follows a dearer redraw within a few of them
PAINT_WINDOW = 0.25  # seconds after a redraw in which paints are its own (later ones: a resize, another window)
LONGEST_MS = 3000.0  # however dear the redraws, a fast run's view shows its progress at least this often


class RedrawBudget:
    """The running CPU cost of one redraw of a view (its data handed over, and the paints right after it), and
    the interval between redraws that keeps that cost to ``share`` of the time."""

    def __init__(self, share: float = SHARE, clock: Callable[[], float] = time.thread_time,
                 wall: Callable[[], float] = time.monotonic) -> None:
        if not 0.0 < share <= 1.0:
            raise ValueError(f"share must be in (0, 1], got {share!r}")
        self.share = float(share)
        self._clock, self._wall = clock, wall
        self._spent = 0.0  # seconds spent on the current redraw so far
        self._began = -float("inf")  # when it began (wall clock)
        self._redraws = 0
        self.cost = 0.0  # seconds per redraw, running average

    @contextmanager
    def measure(self) -> Iterator[None]:
        """Count the time of the block (a redraw handing its data over) against the current redraw."""
        start = self._clock()
        try:
            yield
        finally:
            self._spent += max(0.0, self._clock() - start)

    @contextmanager
    def paint(self) -> Iterator[None]:
        """Count a paint against the current redraw if it comes within ``PAINT_WINDOW`` of it (else it is not
        the redraw's: the person resized the window, or it was covered and shown again)."""
        if self._wall() - self._began > PAINT_WINDOW:
            yield
            return
        with self.measure():
            yield

    def redraw_begins(self) -> None:
        """A new redraw starts: what the last one cost becomes part of the running cost."""
        if self._redraws:
            sample = self._spent
            self.cost = sample if self._redraws == 1 else WEIGHT * sample + (1.0 - WEIGHT) * self.cost
        self._redraws += 1
        self._spent, self._began = 0.0, self._wall()

    def interval_ms(self, least_ms: float) -> float:
        """Milliseconds to leave between redraws: ``least_ms``, or longer (up to ``LONGEST_MS``) when a redraw
        costs more than ``share`` of that."""
        return max(float(least_ms), min(LONGEST_MS, 1000.0 * self.cost / self.share))


class BudgetedGraphicsLayout(pg.GraphicsLayoutWidget):
    """A ``GraphicsLayoutWidget`` whose paints count against ``budget``."""

    def __init__(self, budget: RedrawBudget, **kwargs) -> None:
        super().__init__(**kwargs)
        self._budget = budget

    def paintEvent(self, event) -> None:
        with self._budget.paint():
            super().paintEvent(event)
