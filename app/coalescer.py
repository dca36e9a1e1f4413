"""Progress reports cut down to the screen's pace: the app's one place that throttles what a worker sends.

The engine reports every N iterations (``TrainSettings.report_every``, ``race(report_every=)``), far
more often than a person can see; each report that crossed to the GUI thread would also take the
GIL from the worker. A ``ReportCoalescer`` sits on the worker's side of the signal, merges reports
with their own ``merge(later)`` (losses and epochs concatenated, scalars from the later one) and
passes one on at most every ``interval`` seconds. Reports that must show at once (``urgent``, e.g.
a pause) go out immediately, with everything merged before them.
"""
from __future__ import annotations

import time
from typing import Any, Callable

SCREEN_INTERVAL = 0.25  # seconds: progress and speed follow 4 times a second (each update takes the GIL)
# seconds: the costlier views follow a fast run more slowly: each update runs Python on the GUI thread, time the
# training thread waits for the GIL (a slowly paced run shows every step). The loss plot redraws at most twice a
# second, less often when its redraws would take over 1 % of the time (widgets.redraw_budget) …
VIEWS_INTERVAL = 0.5
# … the weights view and the live predictions (the costliest: an image per unit, a prediction and its check) once a second
WEIGHTS_INTERVAL = 1.0


class ReportCoalescer:
    """Call it with each report; ``emit`` receives merged reports. Call ``flush()`` when the work ends."""

    def __init__(self, emit: Callable[[Any], None], interval: float = SCREEN_INTERVAL,
                 urgent: Callable[[Any], bool] | None = None, clock: Callable[[], float] = time.perf_counter) -> None:
        self._emit = emit
        self.interval = float(interval)
        self._urgent = urgent
        self._clock = clock
        self._pending = None
        self._last = float("-inf")  # the first report goes out at once

    def __call__(self, report) -> None:
        self._pending = report if self._pending is None else self._pending.merge(report)
        now = self._clock()
        if (self._urgent is not None and self._urgent(report)) or now - self._last >= self.interval:
            self._send(now)

    def flush(self) -> None:
        """Pass on whatever is held back (at the end of the work)."""
        self._send(self._clock())

    def _send(self, now: float) -> None:
        if self._pending is None:
            return
        report, self._pending = self._pending, None
        self._last = now
        self._emit(report)
