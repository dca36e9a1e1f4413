"""Small 2-D loss surfaces and the paths optimizers take over them (for the loss-landscape lab).

Each surface has a value and an analytic gradient at a point p = (x, y) (or (w, b)), a range
to draw and a textbook start. ``optimizer_path`` runs one of ``engine.nn.optimizers`` on it with
params ``{"p": array([x, y])}``, exactly as the optimizer would update a network's weights.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from engine.errors import DigitLabError

from engine.nn.functions import sigmoid
from engine.nn.optimizers import OPTIMIZERS, Optimizer, make_optimizer


class LandscapeError(DigitLabError):
    """A bad surface name, start point, step count or learning rate."""


@dataclass(frozen=True)
class Surface:
    """f(x, y) with its gradient, where to look at it, where to start and which learning rates suit it."""

    key: str
    title: str
    formula: str
    value: Callable[[np.ndarray, np.ndarray], np.ndarray]  # vectorised over grids
    gradient: Callable[[np.ndarray, np.ndarray], tuple]  # (df/dx, df/dy)
    x_range: tuple[float, float]
    y_range: tuple[float, float]
    start: tuple[float, float]
    minimum: tuple[float, float] | None  # where the lowest point is (None: no minimum, e.g. a saddle)
    learning_rates: dict  # optimizer name -> learning rate that shows its character here
    steps: int = 30
    axis_labels: tuple[str, str] = ("x", "y")

    def at(self, p) -> float:
        p = np.asarray(p, float)
        return float(self.value(p[0], p[1]))

    def grad(self, p) -> np.ndarray:
        p = np.asarray(p, float)
        gx, gy = self.gradient(p[0], p[1])
        return np.array([gx, gy], float)


# --- a single sigmoid neuron y = σ(w·x + b) with x = 1, target 0.5, squared error ½(y − t)² ---
NEURON_X = 1.0
NEURON_TARGET = 0.5


def _neuron_value(w, b):
    y = sigmoid(np.asarray(NEURON_X * w + b, float))
    return 0.5 * (y - NEURON_TARGET) ** 2


def _neuron_gradient(w, b):
    y = sigmoid(np.asarray(NEURON_X * w + b, float))
    d = (y - NEURON_TARGET) * y * (1.0 - y)  # chain rule through σ' = y(1 − y)
    return d * NEURON_X, d


def _bowl_value(x, y):
    return x**2 / 20.0 + y**2


def _bowl_gradient(x, y):
    return x / 10.0, 2.0 * y


def _saddle_value(x, y):
    return x**2 - y**2


def _saddle_gradient(x, y):
    return 2.0 * x, -2.0 * y


def _rosenbrock_value(x, y):
    return (1.0 - x) ** 2 + 100.0 * (y - x**2) ** 2


def _rosenbrock_gradient(x, y):
    return -2.0 * (1.0 - x) - 400.0 * x * (y - x**2), 200.0 * (y - x**2)


SURFACES: dict[str, Surface] = {
    s.key: s
    for s in (
        Surface(
            "neuron", "One sigmoid neuron", "E(w, b) = ½(σ(w·1 + b) − 0.5)²",
            _neuron_value, _neuron_gradient, (-2.0, 2.0), (-2.0, 2.0), (-1.8, -1.5), None,
            {"sgd": 20.0, "momentum": 5.0, "adagrad": 0.5, "rmsprop": 0.05, "adam": 0.1}, steps=60,
            axis_labels=("w", "b"),
        ),
        Surface(
            "bowl", "Elongated bowl (the book's)", "f(x, y) = x²/20 + y²",
            _bowl_value, _bowl_gradient, (-10.0, 10.0), (-5.0, 5.0), (-7.0, 2.0), (0.0, 0.0),
            {"sgd": 0.95, "momentum": 0.1, "adagrad": 1.5, "rmsprop": 0.1, "adam": 0.3}, steps=30,
        ),
        Surface(
            "saddle", "Saddle", "f(x, y) = x² − y²",
            _saddle_value, _saddle_gradient, (-2.0, 2.0), (-2.0, 2.0), (-1.8, 0.05), None,
            {"sgd": 0.05, "momentum": 0.02, "adagrad": 0.1, "rmsprop": 0.02, "adam": 0.05}, steps=40,
        ),
        Surface(
            "rosenbrock", "Rosenbrock's banana valley", "f(x, y) = (1 − x)² + 100(y − x²)²",
            _rosenbrock_value, _rosenbrock_gradient, (-2.0, 2.0), (-1.0, 3.0), (-1.5, 2.0), (1.0, 1.0),
            {"sgd": 0.001, "momentum": 0.0005, "adagrad": 0.5, "rmsprop": 0.01, "adam": 0.1}, steps=1000,
        ),
    )
}

# The optimizers the lab compares, in legend order.
LANDSCAPE_OPTIMIZERS = ("sgd", "momentum", "adagrad", "rmsprop", "adam")
# A path that wanders this far outside the drawn range (in range widths) has diverged.
DIVERGED_RANGES = 1e3


def get_surface(key: str) -> Surface:
    try:
        return SURFACES[key]
    except KeyError:
        raise LandscapeError(f"unknown surface {key!r}; choose one of {', '.join(SURFACES)}") from None


def surface_grid(surface: Surface, n: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(xs, ys, Z) with Z[i, j] = f(xs[i], ys[j]) — x along the first axis, as pyqtgraph's ImageItem expects."""
    if int(n) < 2:
        raise LandscapeError(f"a grid needs at least 2 points per side, got n={n}")
    xs = np.linspace(*surface.x_range, int(n))
    ys = np.linspace(*surface.y_range, int(n))
    X, Y = np.meshgrid(xs, ys, indexing="ij")
    return xs, ys, np.asarray(surface.value(X, Y), float)


@dataclass
class OptimizerPath:
    """Where an optimizer went: ``points[i]`` and ``values[i]`` after i steps (index 0 = the start)."""

    name: str
    lr: float
    points: np.ndarray  # (steps + 1, 2)
    values: np.ndarray  # (steps + 1,)
    status: str  # "ran" (all steps), "flat" (the gradient vanished: a minimum or a plateau) or "diverged"

    @property
    def steps(self) -> int:
        return len(self.points) - 1

    @property
    def final_value(self) -> float:
        return float(self.values[-1])


def optimizer_path(surface: Surface, optimizer: Optimizer, start, steps: int, name: str | None = None,
                   tol: float = 1e-10) -> OptimizerPath:
    """Run ``optimizer`` from ``start`` for at most ``steps`` updates on ``surface``.

    Stops early when the gradient vanishes (``flat``: a minimum or a saturated plateau) or the point runs off to
    infinity or far outside the drawn range (``diverged``).
    """
    start = np.asarray(start, float).reshape(-1)
    if start.shape != (2,) or not np.all(np.isfinite(start)):
        raise LandscapeError(f"start must be two finite numbers (x, y), got {start.tolist()}")
    if int(steps) < 0:
        raise LandscapeError(f"steps must be ≥ 0, got {steps}")
    span = max(surface.x_range[1] - surface.x_range[0], surface.y_range[1] - surface.y_range[0])
    params = {"p": start.copy()}
    points = [start.copy()]
    values = [surface.at(start)]
    status = "ran"
    for _ in range(int(steps)):
        g = surface.grad(params["p"])
        if np.linalg.norm(g) < tol:
            status = "flat"
            break
        optimizer.update(params, {"p": g})
        p = params["p"]
        if not np.all(np.isfinite(p)) or np.max(np.abs(p)) > DIVERGED_RANGES * span:
            status = "diverged"
            break
        v = surface.at(p)
        if not np.isfinite(v):
            status = "diverged"
            break
        points.append(p.copy())
        values.append(v)
    lr = float(getattr(optimizer, "lr", float("nan")))
    return OptimizerPath(name or getattr(optimizer, "name", "optimizer"), lr, np.array(points), np.array(values), status)


def compare_optimizers(surface: Surface, start=None, steps: int | None = None, lr_scale: float = 1.0,
                       names=LANDSCAPE_OPTIMIZERS) -> dict[str, OptimizerPath]:
    """Each optimizer's path from the same start, with the surface's learning rate for it × ``lr_scale``."""
    if not np.isfinite(lr_scale) or lr_scale <= 0:
        raise LandscapeError(f"learning-rate scale must be a positive number, got {lr_scale!r}")
    start = surface.start if start is None else start
    steps = surface.steps if steps is None else steps
    paths = {}
    for name in names:
        if name not in OPTIMIZERS:
            raise LandscapeError(f"unknown optimizer {name!r}; choose from {', '.join(OPTIMIZERS)}")
        opt = make_optimizer(name, lr=surface.learning_rates[name] * lr_scale)
        paths[name] = optimizer_path(surface, opt, start, steps, name)
    return paths
