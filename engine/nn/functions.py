"""Numerically stable primitives and numerical differentiation (the book's ``common/functions.py``)."""
from __future__ import annotations

from typing import Callable

import numpy as np

LOG_EPS = 1e-7  # added inside log so that a probability of exactly 0 gives a large finite loss, not inf


def sigmoid(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    # exp of a non-positive argument only, so nothing overflows: with e = exp(-|x|),
    # sigmoid is 1/(1+e) for x >= 0 and e/(1+e) below 0
    e = np.exp(-np.abs(x))
    out = np.where(x >= 0, 1.0, e)
    out /= 1.0 + e
    return out


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0)


def step_function(x: np.ndarray) -> np.ndarray:
    return (np.asarray(x) > 0).astype(np.int64)


def softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis; works for one vector or a batch."""
    x = np.asarray(x)
    if x.dtype.kind != "f":
        x = x.astype(np.float64)
    # subtracting the max leaves the result unchanged and keeps exp() from overflowing
    e = x - np.max(x, axis=-1, keepdims=True)
    np.exp(e, out=e)
    e /= np.sum(e, axis=-1, keepdims=True)
    return e


def to_indices(t: np.ndarray) -> np.ndarray:
    """Class indices from labels given either as indices (N,) or one-hot (N, C)."""
    t = np.asarray(t)
    if t.ndim == 2:
        return t.argmax(axis=1)
    return t.astype(np.int64, copy=False)


def one_hot(t: np.ndarray, num_classes: int, dtype=np.float32) -> np.ndarray:
    """One-hot rows from labels given as indices or already one-hot."""
    t = np.asarray(t)
    if t.ndim == 2 and t.shape[1] == num_classes:
        return t.astype(dtype, copy=False)
    t = t.reshape(-1).astype(np.int64)
    out = np.zeros((t.size, num_classes), dtype=dtype)
    out[np.arange(t.size), t] = 1
    return out


def _as_batch(y: np.ndarray, t: np.ndarray):
    y = np.asarray(y)
    t = np.asarray(t)
    if y.ndim == 1:
        y = y.reshape(1, -1)
        t = t.reshape(1, -1) if t.size == y.size else t.reshape(1)
    return y, t


def cross_entropy_error(y: np.ndarray, t: np.ndarray) -> float:
    """The book's mean cross-entropy of probabilities ``y`` (indices or one-hot labels), with +1e-7 in the log.

    Kept for the loss-function lab, which teaches this formula; a loss caps at -log(1e-7) ≈ 16.1 per
    sample, so networks are trained and evaluated with ``softmax_cross_entropy`` on their scores instead.
    """
    y, t = _as_batch(y, t)
    if t.size == y.size:
        t = t.argmax(axis=1)
    n = y.shape[0]
    return float(-np.sum(np.log(y[np.arange(n), t.astype(np.int64)] + LOG_EPS)) / n)


def sum_squared_error(y: np.ndarray, t: np.ndarray) -> float:
    """Sum of squares 0.5*Σ(y-t)², averaged over the batch (a single sample is a batch of one)."""
    y, t = _as_batch(y, t)
    t = one_hot(t, y.shape[1], dtype=y.dtype) if t.size != y.size else t
    return float(0.5 * np.sum((y - t) ** 2) / y.shape[0])


def softmax_cross_entropy(scores: np.ndarray, t: np.ndarray) -> float:
    """Mean cross-entropy of softmax(``scores``) against labels (indices or one-hot), exact, from the logits.

    ``Network.evaluate`` and ``evaluate_model`` compute the cross-entropy loss here, in float64; training
    (the loss layer, through ``softmax_and_cross_entropy``) the same log-softmax in the scores' precision.
    """
    s, t = _as_batch(scores, t)
    return _mean_log_softmax_loss(s, _row_max(s), to_indices(t).reshape(-1))


def softmax_and_cross_entropy(scores: np.ndarray, idx: np.ndarray,
                              out: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """(``softmax(scores)``, mean cross-entropy against ``idx``) of a batch (N, C), in as few steps as possible.

    The softmax is bit for bit ``softmax(scores)``; the loss is ``softmax_cross_entropy``'s log-softmax
    computed in the scores' precision (they agree to float32 rounding for float32 scores). The
    softmax goes into ``out`` when given (an (N, C) array of the scores' dtype).
    """
    rows = np.arange(len(idx))
    # subtracting the max leaves the result unchanged and keeps exp() from overflowing
    y = np.subtract(scores, scores[rows, scores.argmax(axis=1)].reshape(-1, 1), out=out)
    picked = y[rows, idx]  # the true class's shifted score: its log-softmax is picked - log(sum)
    np.exp(y, out=y)
    sums = np.add.reduce(y, axis=1, keepdims=True)  # ≥ 1 (the max's exp is 1): the log is finite
    y /= sums
    loss = np.add.reduce(np.log(sums, dtype=np.float64), axis=None) - np.add.reduce(picked, dtype=np.float64)
    return y, float(loss / len(idx))


def _row_max(x: np.ndarray) -> np.ndarray:
    """Each row's maximum, as a column: argmax and a pick are several times faster than np.max along short rows."""
    return x[np.arange(len(x)), x.argmax(axis=1)].reshape(-1, 1)


def _mean_log_softmax_loss(scores: np.ndarray, top: np.ndarray, idx: np.ndarray) -> float:
    """Mean of -log softmax(scores)[idx] (``top``: each row's max), in float64 whatever the scores' dtype."""
    s = scores.astype(np.float64, copy=False)
    # log-softmax with the max subtracted: exp() cannot overflow and a probability that underflows to 0
    # still gives its exact (large, finite) loss instead of needing the +1e-7 of cross_entropy_error
    shifted = s - top
    log_sums = np.log(np.add.reduce(np.exp(shifted), axis=1))
    return float(np.add.reduce(log_sums - shifted[np.arange(len(idx)), idx]) / len(idx))


def softmax_squared_error(scores: np.ndarray, t: np.ndarray) -> float:
    """Sum of squares 0.5*Σ(softmax(``scores``) - t)², averaged over the batch (the book squares probabilities)."""
    s, t = _as_batch(scores, t)
    y = softmax(s.astype(np.float64, copy=False))
    return sum_squared_error(y, t)


def numerical_diff(f: Callable[[float], float], x: float, h: float = 1e-4) -> float:
    """Central difference (f(x+h) - f(x-h)) / 2h: error O(h²), not O(h) like the forward difference."""
    return (f(x + h) - f(x - h)) / (2 * h)


def forward_diff(f: Callable[[float], float], x: float, h: float = 1e-4) -> float:
    """Forward difference, kept to show why the central one is better (and what h=1e-50 does)."""
    return (f(x + h) - f(x)) / h


def numerical_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-4) -> np.ndarray:
    """Gradient of ``f`` at ``x`` by central differences, one element at a time.

    ``x`` is perturbed in place and restored, so ``f`` may ignore its argument
    and read ``x`` through a closure (the book's ``lambda W: net.loss(x, t)``).
    """
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"numerical_gradient needs a float array, got dtype {x.dtype}")
    grad = np.zeros_like(x, dtype=np.float64)
    flat = x.reshape(-1)  # a view: writes go to x
    if not np.shares_memory(flat, x):
        raise ValueError("numerical_gradient needs a contiguous array it can perturb in place")
    gflat = grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        fxh1 = f(x)
        flat[i] = old - h
        fxh2 = f(x)
        flat[i] = old
        gflat[i] = (fxh1 - fxh2) / (2 * h)
    return grad.astype(x.dtype, copy=False)
