"""Backprop vs numerical gradients: per-parameter error and the time each took.

A 784-100-10 network has ~80,000 weights, and the numerical gradient needs two forward
passes per weight: minutes. ``per_param`` checks a random subset of each parameter's
elements instead, which says nearly as much in a second; the full numerical time is then
estimated from the time per element.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from engine.nn.network import Network

REPORT_EVERY = 50  # elements between progress calls


@dataclass
class ParamCheck:
    name: str
    shape: tuple
    max_rel_error: float
    max_abs_error: float
    checked: int  # elements compared (all of them unless a subset was asked for)


@dataclass
class GradCheck:
    params: list[ParamCheck]
    backprop_seconds: float
    numerical_seconds: float
    cancelled: bool = False
    sizes: dict = field(default_factory=dict)  # parameter name -> elements in it
    elements_done: int = 0  # numerical derivatives computed (also of a parameter cut short by cancel)

    @property
    def max_rel_error(self) -> float:
        return max((p.max_rel_error for p in self.params), default=0.0)

    @property
    def checked(self) -> dict:
        return {p.name: p.checked for p in self.params}

    @property
    def complete(self) -> bool:
        """Every element of every parameter was compared."""
        return not self.cancelled and all(self.checked.get(k, 0) == n for k, n in self.sizes.items())

    @property
    def estimated_full_numerical_seconds(self) -> float:
        """What the numerical gradient of every element takes (measured when complete, else estimated)."""
        if self.complete:
            return self.numerical_seconds
        return self.numerical_seconds / max(self.elements_done, 1) * sum(self.sizes.values())

    @property
    def speedup(self) -> float:
        """How many times faster backprop was than the (full) numerical gradient."""
        return self.estimated_full_numerical_seconds / max(self.backprop_seconds, 1e-12)

    def to_dict(self) -> dict:
        return {
            "params": [
                {"name": p.name, "shape": list(p.shape), "max_rel_error": p.max_rel_error,
                 "max_abs_error": p.max_abs_error, "checked": p.checked, "size": self.sizes.get(p.name)}
                for p in self.params
            ],
            "backprop_seconds": self.backprop_seconds,
            "numerical_seconds": self.numerical_seconds,
            "estimated_full_numerical_seconds": self.estimated_full_numerical_seconds,
            "speedup": self.speedup,
            "max_rel_error": self.max_rel_error,
            "complete": self.complete,
            "cancelled": self.cancelled,
        }


def relative_error(a: np.ndarray, b: np.ndarray, floor: float = 1e-8) -> float:
    """max |a-b| / max(|a|+|b|, floor): the floor keeps near-zero gradients from dominating."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), floor))) if a.size else 0.0


def check_gradients(
    network: Network,
    x: np.ndarray,
    t: np.ndarray,
    h: float = 1e-4,
    progress: Callable[[int, int], bool | None] | None = None,
    per_param: int | None = None,
    seed: int = 0,
) -> GradCheck:
    """Compare backprop with central differences on a float64 copy of ``network``.

    All elements by default, or ``per_param`` randomly chosen elements of each parameter.
    ``progress(done, total)`` is called every few elements; returning False cancels (the
    result then has ``cancelled=True`` and the parameters finished so far).
    """
    if per_param is not None and int(per_param) < 1:
        raise ValueError(f"per_param must be at least 1 element (or None for all), got {per_param}")
    net = network.copy(dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    start = time.perf_counter()
    net.gradient(x, t)
    backprop = {k: v.copy() for k, v in net.grads.items()}
    backprop_seconds = time.perf_counter() - start

    sizes = {k: int(v.size) for k, v in net.params.items()}
    rng = np.random.default_rng(seed)
    picks = {k: (np.arange(n) if per_param is None or per_param >= n else rng.choice(n, int(per_param), replace=False))
             for k, n in sizes.items()}
    total = sum(len(p) for p in picks.values())
    done = 0
    results: list[ParamCheck] = []
    numerical_seconds = 0.0
    cancelled = False
    for name, param in net.params.items():
        flat = param.reshape(-1)  # a view: perturbing it perturbs the network
        idx = picks[name]
        num = np.empty(len(idx))
        begin = time.perf_counter()
        for j, i in enumerate(idx):
            old = flat[i]
            flat[i] = old + h
            f1 = net.loss(x, t)
            flat[i] = old - h
            f2 = net.loss(x, t)
            flat[i] = old
            num[j] = (f1 - f2) / (2 * h)
            done += 1
            if progress is not None and (done % REPORT_EVERY == 0 or done == total) and progress(done, total) is False:
                cancelled = True
                break
        numerical_seconds += time.perf_counter() - begin
        if cancelled:
            break
        bp = backprop[name].reshape(-1)[idx]
        results.append(ParamCheck(name, param.shape, relative_error(num, bp), float(np.max(np.abs(num - bp))), len(idx)))
    return GradCheck(results, backprop_seconds, numerical_seconds, cancelled, sizes, done)
