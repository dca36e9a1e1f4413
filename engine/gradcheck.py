"""Backprop vs numerical gradients: per-parameter error and the time each took."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from engine.functions import numerical_gradient
from engine.network import Network


@dataclass
class ParamCheck:
    name: str
    shape: tuple
    max_rel_error: float
    max_abs_error: float


@dataclass
class GradCheck:
    params: list[ParamCheck]
    backprop_seconds: float
    numerical_seconds: float
    cancelled: bool = False

    @property
    def max_rel_error(self) -> float:
        return max((p.max_rel_error for p in self.params), default=0.0)

    @property
    def speedup(self) -> float:
        """How many times faster backprop was than the numerical gradient."""
        return self.numerical_seconds / max(self.backprop_seconds, 1e-12)

    def to_dict(self) -> dict:
        return {
            "params": [
                {"name": p.name, "shape": list(p.shape), "max_rel_error": p.max_rel_error, "max_abs_error": p.max_abs_error}
                for p in self.params
            ],
            "backprop_seconds": self.backprop_seconds,
            "numerical_seconds": self.numerical_seconds,
            "speedup": self.speedup,
            "max_rel_error": self.max_rel_error,
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
) -> GradCheck:
    """Compare backprop with central differences on a float64 copy of ``network``.

    ``progress(done, total)`` is called after each parameter element block; returning
    False cancels (the result then has ``cancelled=True`` and the parameters done so far).
    """
    net = network.copy(dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    start = time.perf_counter()
    net.gradient(x, t)
    backprop = {k: v.copy() for k, v in net.grads.items()}
    backprop_seconds = time.perf_counter() - start

    total = sum(p.size for p in net.params.values())
    done = 0
    results: list[ParamCheck] = []
    numerical_seconds = 0.0
    cancelled = False
    for name, param in net.params.items():
        start = time.perf_counter()
        if progress is None:
            num = numerical_gradient(lambda _: net.loss(x, t), param, h)
        else:
            num, cancelled = _numerical_with_progress(net, x, t, param, h, progress, done, total)
        numerical_seconds += time.perf_counter() - start
        done += param.size
        if cancelled:
            break
        diff = np.abs(num - backprop[name])
        results.append(ParamCheck(name, param.shape, relative_error(num, backprop[name]), float(diff.max())))
    return GradCheck(results, backprop_seconds, numerical_seconds, cancelled)


def _numerical_with_progress(net, x, t, param, h, progress, done, total):
    """Like ``numerical_gradient`` but reports every few hundred elements and can be cancelled."""
    grad = np.zeros_like(param)
    flat, gflat = param.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        f1 = net.loss(x, t)
        flat[i] = old - h
        f2 = net.loss(x, t)
        flat[i] = old
        gflat[i] = (f1 - f2) / (2 * h)
        if (i + 1) % 200 == 0 or i + 1 == flat.size:
            if progress(done + i + 1, total) is False:
                return grad, True
    return grad, False
