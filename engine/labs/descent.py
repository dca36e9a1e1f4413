"""Plain gradient descent on small textbook problems (least squares, a line through two points),
and the line-fitting examples the descent lab opens on."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

# The book's four points x=1,3,5,7 -> t=1,4,4,8, with a column of ones for the intercept.
BOOK_X = np.array([[1.0, 1.0], [3.0, 1.0], [5.0, 1.0], [7.0, 1.0]])
BOOK_T = np.array([1.0, 4.0, 4.0, 8.0])
BOOK_W0 = np.array([1.0, 1.0])
BOOK_LR = 0.0229


@dataclass(frozen=True)
class LineExample:
    """Points to fit a line t ≈ w₁x + w₀ to, where descent starts, and three telling learning rates."""

    title: str
    xs: tuple
    ts: tuple
    start: tuple  # (w₁, w₀): slope, intercept
    lr: float  # a good rate
    too_small: float  # one that crawls
    too_large: float  # one that diverges
    note: str


EXAMPLES = {
    "book": LineExample(
        "Four points x=1,3,5,7 → t=1,4,4,8 (the book)", (1.0, 3.0, 5.0, 7.0), (1.0, 4.0, 4.0, 8.0), (1.0, 1.0),
        BOOK_LR, 0.001, 0.024,
        "From (w₁, w₀) = (1, 1) with η = 0.0229 the loss stops falling at iteration 1174: "
        "E = 1.35000079 at (w₁, w₀) ≈ (1.04986813, 0.0499746).",
    ),
    "two-points": LineExample(
        "Two points (3 → 7), (9 → 13)", (3.0, 9.0), (7.0, 13.0), (3.0, -8.0), 0.02, 0.001, 0.0225,
        "The line y = 3x − 8 misses both points: E = ½(4² + 4²) = 36 at the start. "
        "Descent heads for w = 1, b = 4, the line through both points.",
    ),
}


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


def line_design(xs) -> np.ndarray:
    """The design matrix [x 1] for a line y = w₁x + w₀, so that y = X @ (w₁, w₀)."""
    xs = np.asarray(xs, float)
    return np.column_stack([xs, np.ones_like(xs)])


def line_descent(xs, ts, start, lr: float, max_iter: int = 20_000, diverge_steps: int = 400) -> DescentResult:
    """Fit a line to the points (xs, ts) from ``start`` = (w₁, w₀), stopping as the book does.

    A run whose rounded loss rose is run again for ``diverge_steps`` steps without the
    stopping rule, so the growing oscillation can be seen; its status stays "diverged".
    """
    X, t = line_design(xs), np.asarray(ts, float)

    def loss(w):
        return squared_error(X, t, w)

    def grad(w):
        return squared_error_grad(X, t, w)

    path = gradient_descent(loss, grad, start, lr, max_iter=max_iter, decimals=8)
    if path.status == "diverged":
        path = gradient_descent(loss, grad, start, lr, max_iter=diverge_steps, decimals=None)
        path.status = "diverged"
    return path


def line_learning_rates(xs) -> tuple[float, float, float]:
    """(too small, good, too large) learning rates for fitting a line to points at ``xs``, to 3 digits.

    For E = ½|t − Xw|² descent is stable for η < 2/λmax of XᵀX and fastest at η = 2/(λmax + λmin):
    that is "good"; "too small" is a twentieth of it and "too large" 2.1/λmax, just past stable.
    """
    X = line_design(xs)
    lam = np.linalg.eigvalsh(X.T @ X)
    good = float(f"{2.0 / (lam[-1] + max(lam[0], 0.0)):.3g}")
    return float(f"{good / 20:.3g}"), good, float(f"{2.1 / lam[-1]:.3g}")
