"""Loss series for the learning-curve plot: checked input, growing buffers, and the debiased moving average.

Pure NumPy (no Qt), so the smoothing can be checked by hand; the Compare page's curves grow with ``grown`` too.
"""
from __future__ import annotations

import math

import numpy as np


class LossPlotError(ValueError):
    """Bad data given to the loss plot."""


def as_series(values, what: str) -> np.ndarray:
    try:
        return np.atleast_1d(np.asarray(values, dtype=np.float64)).reshape(-1)
    except (TypeError, ValueError):
        raise LossPlotError(f"LossPlot: {what} must be numbers, got {type(values).__name__}") from None


def finite_or_nan(arr: np.ndarray) -> np.ndarray:
    # infinities would stretch the axes to nothing; NaN shows as a gap in the curve
    out = np.array(arr, dtype=np.float64, copy=True)
    out[~np.isfinite(out)] = np.nan
    return out


def grown(buffer: np.ndarray, n: int, needed: int) -> np.ndarray:
    """``buffer`` if it holds ``needed`` values, else a copy of its first ``n`` in one at least twice as big."""
    if needed <= buffer.size:
        return buffer
    out = np.empty(max(buffer.size * 2, needed), dtype=np.float64)
    out[:n] = buffer[:n]
    return out


def smoothing_window(beta: float) -> float:
    """How many recent values an exponential moving average with weight ``beta`` roughly averages: 1 / (1 - beta)."""
    return 1.0 / (1.0 - float(beta))


class DebiasedAverage:
    """An exponential moving average without start-up lag, as Adam corrects its moments.

    m_t = beta * m_{t-1} + (1 - beta) * x_t from m_0 = 0, shown as m_t / (1 - beta^t): the first value is
    the first loss itself and early values are weighted means of the losses so far, not pulled towards 0 or
    towards the first loss. NaN values are skipped (t counts the values used).
    """

    def __init__(self, beta: float) -> None:
        self.beta = float(beta)
        self.reset()

    def reset(self) -> None:
        self._m = 0.0
        self._weight = 1.0  # beta ** t
        self.count = 0

    def extend(self, values, out: np.ndarray) -> None:
        """Take ``values`` in order, writing the average after each into ``out`` (NaN until the first number)."""
        beta, m, weight, count = self.beta, self._m, self._weight, self.count
        for i, v in enumerate(np.asarray(values, dtype=np.float64).tolist()):
            if not math.isnan(v):
                m = beta * m + (1.0 - beta) * v
                weight *= beta
                count += 1
            out[i] = m / (1.0 - weight) if count else math.nan
        self._m, self._weight, self.count = m, weight, count


def debiased_average(values, beta: float) -> np.ndarray:
    """The debiased moving average of a whole series (e.g. another run's losses)."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    out = np.empty(values.size)
    DebiasedAverage(beta).extend(values, out)
    return out


class LossRange:
    """The lowest and highest finite loss so far, and the lowest positive one (for a log axis), kept as losses arrive.

    Fitting the axis then costs the same at iteration 100 as at iteration 100,000.
    """

    def __init__(self) -> None:
        self.low = self.positive_low = math.inf
        self.high = -math.inf

    def include(self, values: np.ndarray) -> None:
        v = np.asarray(values, dtype=np.float64)
        v = v[np.isfinite(v)]
        if v.size:
            self.low, self.high = min(self.low, float(v.min())), max(self.high, float(v.max()))
            positive = v[v > 0]
            if positive.size:
                self.positive_low = min(self.positive_low, float(positive.min()))

    @property
    def has_values(self) -> bool:
        return self.high >= self.low

    @property
    def has_positive(self) -> bool:
        return math.isfinite(self.positive_low)
