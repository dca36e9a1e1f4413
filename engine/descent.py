"""Plain gradient descent on small textbook problems (least squares, a line through two points)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

# The book's four points x=1,3,5,7 -> t=1,4,4,8, with a column of ones for the intercept.
BOOK_X = np.array([[1.0, 1.0], [3.0, 1.0], [5.0, 1.0], [7.0, 1.0]])
BOOK_T = np.array([1.0, 4.0, 4.0, 8.0])
BOOK_W0 = np.array([1.0, 1.0])
BOOK_LR = 0.0229


def squared_error(X: np.ndarray, t: np.ndarray, w: np.ndarray) -> float:
    """E = ½ Σ (t - Xw)²."""
    r = t - X @ w
    return float(0.5 * r @ r)


def squared_error_grad(X: np.ndarray, t: np.ndarray, w: np.ndarray) -> np.ndarray:
    """∂E/∂w = -Xᵀ (t - Xw)."""
    return -X.T @ (t - X @ w)


def line_error(xs, ts, w: float, b: float) -> float:
    """E = ½ Σ (t - (w x + b))² for the line y = w x + b."""
    xs, ts = np.asarray(xs, float), np.asarray(ts, float)
    return squared_error(np.column_stack([xs, np.ones_like(xs)]), ts, np.array([w, b], float))


@dataclass
class DescentResult:
    """The path of a descent: ``weights[i]`` and ``losses[i]`` after i steps (index 0 = start)."""

    weights: np.ndarray
    losses: np.ndarray
    status: str  # "converged" (loss stopped falling), "diverged", or "max-iterations"
    stop_iteration: int | None = None  # 0-based index of the step at which the loss stopped falling
    notes: list = field(default_factory=list)

    @property
    def w(self) -> np.ndarray:
        return self.weights[-1]

    @property
    def loss(self) -> float:
        return float(self.losses[-1])


def gradient_descent(
    loss: Callable[[np.ndarray], float],
    grad: Callable[[np.ndarray], np.ndarray],
    w0,
    lr: float,
    max_iter: int = 100_000,
    decimals: int | None = 8,
) -> DescentResult:
    """Step ``w -= lr * grad(w)`` until the loss, rounded to ``decimals``, stops falling.

    The book prints the loss to 8 decimals and stops the first time the printed
    value does not fall ("converged" when it stayed, "diverged" when it rose: the
    step overshot the valley); with ``decimals=None`` it runs ``max_iter`` steps,
    stopping only on non-finite or exploding losses ("diverged").
    """
    if not np.isfinite(lr) or lr <= 0:
        raise ValueError(f"learning rate must be a positive number, got {lr!r}")
    w = np.array(w0, dtype=np.float64)
    weights = [w.copy()]
    losses = [loss(w)]
    prev = losses[0]
    for i in range(max_iter):
        w = w - lr * grad(w)
        e = loss(w)
        weights.append(w.copy())
        losses.append(e)
        if not np.isfinite(e) or e > 1e12 * max(1.0, losses[0]):
            return DescentResult(np.array(weights), np.array(losses), "diverged", i)
        if decimals is not None and round(e, decimals) > round(prev, decimals):
            return DescentResult(np.array(weights), np.array(losses), "diverged", i)  # the step overshot
        if decimals is not None and round(e, decimals) == round(prev, decimals):
            return DescentResult(np.array(weights), np.array(losses), "converged", i)
        prev = e
    return DescentResult(np.array(weights), np.array(losses), "max-iterations", None)


def least_squares_descent(X=BOOK_X, t=BOOK_T, w0=BOOK_W0, lr: float = BOOK_LR, **kw) -> DescentResult:
    """The book's least-squares fit by gradient descent (defaults: its four points, η=0.0229)."""
    X = np.asarray(X, float)
    t = np.asarray(t, float)
    return gradient_descent(lambda w: squared_error(X, t, w), lambda w: squared_error_grad(X, t, w), w0, lr, **kw)
