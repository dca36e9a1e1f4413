"""Numerical-vs-backprop check on a random subset of each parameter's elements (no Qt).

A 784-100-10 network has ~80,000 weights: two forward passes each take minutes in all.
Checking a few hundred randomly chosen elements per parameter says nearly as much in a second,
and the full numerical time is then estimated from the time per element.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from engine.gradcheck import GradCheck, ParamCheck, check_gradients, relative_error
from engine.network import Network

REPORT_EVERY = 50  # elements between progress calls


@dataclass
class GradientReport:
    """A GradCheck plus how many elements of each parameter were compared."""

    check: GradCheck
    checked: dict  # parameter name -> elements compared
    sizes: dict  # parameter name -> elements in the parameter
    seconds_per_element: float

    @property
    def complete(self) -> bool:
        return all(self.checked.get(k, 0) == n for k, n in self.sizes.items()) and not self.check.cancelled

    @property
    def estimated_full_numerical_seconds(self) -> float:
        """What the numerical gradient of every element would take, from the time per element measured."""
        return self.seconds_per_element * sum(self.sizes.values())

    @property
    def speedup(self) -> float:
        """Backprop vs the full numerical gradient (estimated when only a subset was checked)."""
        return self.estimated_full_numerical_seconds / max(self.check.backprop_seconds, 1e-12)


def check_gradient_report(network: Network, x: np.ndarray, t: np.ndarray, per_param: int | None = None,
                          seed: int = 0, h: float = 1e-4,
                          progress: Callable[[int, int], bool | None] | None = None) -> GradientReport:
    """Compare backprop with central differences on all elements (``per_param=None``) or a random subset.

    ``progress(done, total)`` returning False cancels; the report then holds the parameters finished so far.
    """
    if per_param is not None and int(per_param) < 1:
        raise ValueError(f"per_param must be at least 1 element (or None for all), got {per_param}")
    sizes = {k: int(v.size) for k, v in network.params.items()}
    if per_param is None:
        check = check_gradients(network, x, t, h=h, progress=progress)
        checked = {p.name: sizes[p.name] for p in check.params}
        done = sum(checked.values())
        return GradientReport(check, checked, sizes, check.numerical_seconds / max(done, 1))

    net = network.copy(dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    net.gradient(x, t)
    backprop = {k: v.copy() for k, v in net.grads.items()}
    backprop_seconds = time.perf_counter() - start

    picks = {k: rng.choice(n, size=min(int(per_param), n), replace=False) for k, n in sizes.items()}
    total = sum(len(p) for p in picks.values())
    done = 0
    results: list[ParamCheck] = []
    checked: dict = {}
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
            if progress is not None and (done % REPORT_EVERY == 0 or done == total):
                if progress(done, total) is False:
                    cancelled = True
                    break
        numerical_seconds += time.perf_counter() - begin
        if cancelled:
            break
        bp = backprop[name].reshape(-1)[idx]
        results.append(ParamCheck(name, param.shape, relative_error(num, bp), float(np.max(np.abs(num - bp)))))
        checked[name] = len(idx)
    check = GradCheck(results, backprop_seconds, numerical_seconds, cancelled)
    return GradientReport(check, checked, sizes, numerical_seconds / max(done, 1))
