"""Helpers the training GUI tests share: a small learnable dataset, quick run settings, waiting for a pause."""
import numpy as np

from engine.data.dataset import Dataset
from engine.train.config import TrainConfig


def synthetic_dataset(n_train=600, n_test=200, seed=0) -> Dataset:
    """Ten noisy prototypes: learnable in a few iterations, so tests stay short."""
    rng = np.random.default_rng(seed)
    protos = (rng.random((10, 784)) < 0.2).astype(np.float32)

    def make(n):
        t = rng.integers(0, 10, n)
        x = np.clip(protos[t] + rng.normal(0, 0.2, (n, 784)), 0, 1).astype(np.float32)
        return x, t.astype(np.int64)

    x_train, t_train = make(n_train)
    x_test, t_test = make(n_test)
    return Dataset("synthetic", x_train, t_train, x_test, t_test, source="tests")


def configure(w, pace=None, **changes) -> TrainConfig:
    """Settings for a quick run; as fast as possible unless ``pace`` (steps per second) says otherwise."""
    values = dict(hidden=[20], batch_size=10, epochs=200, optimizer="sgd", lr=0.1)
    values.update(changes)
    config = TrainConfig(**values)
    w.panel.set_config(config)
    w.panel.set_pace(pace)
    return config


def wait_paused(qtbot, w):
    qtbot.waitUntil(lambda: w.training.task.control.waiting, timeout=5000)
    qtbot.wait(50)  # the paused report crosses to the GUI thread
