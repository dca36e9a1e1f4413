"""Learning-rate schedules: the factor by which a run's learning rate is multiplied at each iteration.

The optimizer's ``lr`` stays the number a person chose (the peak, for one-cycle); the ``Stepper``
multiplies it by ``factor(iteration, total)`` for each update. So changing the learning rate during
a run rescales the whole schedule from then on, and a constant schedule changes nothing.

``one-cycle`` is Smith's one-cycle policy exactly as PyTorch's ``OneCycleLR`` computes it (cosine
annealing, defaults ``pct_start=0.3``, ``div_factor=25``, ``final_div_factor=1e4``): the rate climbs
from lr/25 to lr over the first 30% of the run, then falls to lr/250,000 at its last iteration.
``cosine`` falls from lr to 0 along half a cosine.
"""
from __future__ import annotations

import math

SCHEDULES = ("constant", "one-cycle", "cosine")

PCT_START = 0.3  # share of the run spent warming up (OneCycleLR's pct_start)
DIV_FACTOR = 25.0  # the warm-up starts at lr / DIV_FACTOR
FINAL_DIV_FACTOR = 1e4  # ... and the run ends at lr / DIV_FACTOR / FINAL_DIV_FACTOR


def _cos_between(start: float, end: float, pct: float) -> float:
    """From ``start`` at pct 0 to ``end`` at pct 1 along half a cosine."""
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1.0)


def one_cycle_factor(iteration: int, total: int) -> float:
    """OneCycleLR's rate at 0-based ``iteration`` of ``total``, as a fraction of the peak rate."""
    if total <= 1:
        return 1.0
    initial = 1.0 / DIV_FACTOR
    final = initial / FINAL_DIV_FACTOR
    peak_at = float(PCT_START * total) - 1  # the iteration at which the warm-up reaches the peak
    last = total - 1
    step = min(max(int(iteration), 0), last)
    if step <= peak_at:
        return _cos_between(initial, 1.0, step / peak_at if peak_at > 0 else 1.0)
    return _cos_between(1.0, final, (step - peak_at) / (last - peak_at))


def cosine_factor(iteration: int, total: int) -> float:
    """Half a cosine from 1 at the first iteration down to 0 after the last."""
    if total <= 1:
        return 1.0
    return _cos_between(1.0, 0.0, min(max(int(iteration), 0), total) / total)


def constant_factor(iteration: int, total: int) -> float:
    return 1.0


FACTORS = {"constant": constant_factor, "one-cycle": one_cycle_factor, "cosine": cosine_factor}


def schedule_factor(name: str):
    """The factor function of schedule ``name``; ValueError naming the choices for an unknown one."""
    try:
        return FACTORS[name]
    except KeyError:
        raise ValueError(f"unknown learning-rate schedule {name!r}; choose one of {', '.join(SCHEDULES)}") from None
