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


class RedrawBudget:
    """The running CPU cost of one redraw of a view (its data handed over, and the paints until the next
    one), and the interval between redraws that keeps that cost to ``share`` of the time."""

    def __init__(self, share: float = SHARE, clock: Callable[[], float] = time.thread_time) -> None:
        if not 0.0 < share <= 1.0:
            raise ValueError(f"share must be in (0, 1], got {share!r}")
        self.share = float(share)
        self._clock = clock
        self._spent = 0.0  # seconds spent since the last redraw began (that redraw and its paints)
        self._redraws = 0
        self.cost = 0.0  # seconds per redraw, running average

    @contextmanager
    def measure(self) -> Iterator[None]:
        """Count the time of the block (a redraw's data or its paint) against the current redraw."""
        start = self._clock()
        try:
            yield
        finally:
            self._spent += max(0.0, self._clock() - start)

    def redraw_begins(self) -> None:
        """A new redraw starts: the time spent since the last one began is that redraw's cost."""
        if self._redraws:
            sample = self._spent
            self.cost = sample if self._redraws == 1 else WEIGHT * sample + (1.0 - WEIGHT) * self.cost
        self._redraws += 1
        self._spent = 0.0

    def interval_ms(self, least_ms: float) -> float:
        """Milliseconds to leave between redraws: ``least_ms``, or longer when a redraw costs more than ``share``
        of that."""
        return max(float(least_ms), 1000.0 * self.cost / self.share)


class BudgetedGraphicsLayout(pg.GraphicsLayoutWidget):
    """A ``GraphicsLayoutWidget`` whose paints count against ``budget``."""

    def __init__(self, budget: RedrawBudget, **kwargs) -> None:
        super().__init__(**kwargs)
        self._budget = budget

    def paintEvent(self, event) -> None:
        with self._budget.measure():
            super().paintEvent(event)
