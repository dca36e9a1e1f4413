"""Weight initialisation: the book's fixed std 0.01, Xavier (sigmoid/tanh) and He (ReLU)."""
from __future__ import annotations

import numpy as np

INITS = ("fixed", "xavier", "he")
FIXED_STD = 0.01


def init_std(method: str, fan_in: int) -> float:
    """Standard deviation of the normal distribution weights are drawn from."""
    if method == "fixed":
        return FIXED_STD
    if method == "xavier":
        return float(np.sqrt(1.0 / fan_in))
    if method == "he":
        return float(np.sqrt(2.0 / fan_in))
    raise ValueError(f"unknown weight init {method!r}; choose one of {', '.join(INITS)}")


def init_weight(shape: tuple, fan_in: int, method: str, rng: np.random.Generator, dtype=np.float32) -> np.ndarray:
    std = init_std(method, fan_in)
    return (rng.standard_normal(shape) * std).astype(dtype)


def default_init(activation: str) -> str:
    """He for ReLU, Xavier for the S-shaped activations."""
    return "he" if activation == "relu" else "xavier"
