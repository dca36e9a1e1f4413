"""Helpers the training tests share: learnable synthetic digits, and waiting on a training thread."""
from __future__ import annotations

import time

import numpy as np
import pytest


def make_blobs(n: int = 600, seed: int = 0, noise: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Ten noisy 784-pixel prototypes and their labels: learnable in a few iterations (more noise: mistakes)."""
    rng = np.random.default_rng(seed)
    centres = rng.random((10, 784), dtype=np.float32)
    t = rng.integers(0, 10, n)
    x = np.clip(centres[t] + noise * rng.standard_normal((n, 784)).astype(np.float32), 0, 1)
    return x, t


def wait_for(condition, timeout: float = 5.0) -> None:
    """Poll ``condition`` from the test's thread until it holds; fail after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError("condition not reached in time")
        time.sleep(0.005)


@pytest.fixture
def blobs():
    return make_blobs


@pytest.fixture
def wait_until():
    return wait_for
