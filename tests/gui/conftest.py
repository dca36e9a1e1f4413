"""Fixtures shared by the GUI tests: a small dataset and a network trained on it, made once per run."""
import numpy as np
import pytest

from app.main_window import MainWindow
from engine.dataset import Dataset
from engine.network import make_mlp
from engine.optimizers import Adam
from engine.training import TrainSettings, train


def _small_dataset() -> Dataset:
    """The 5,000-digit MNIST sample if it is installed, else separable synthetic 'digits'."""
    try:
        from engine.datasets import load_dataset

        return load_dataset("mnist-sample")
    except (ImportError, ValueError, OSError):
        rng = np.random.default_rng(0)
        protos = np.random.default_rng(1).random((10, 784)).astype(np.float32)
        t = rng.integers(0, 10, 3000)
        x = np.clip(protos[t] + rng.normal(0, 0.5, (3000, 784)), 0, 1).astype(np.float32)
        return Dataset("synthetic", x[:2000], t[:2000], x[2000:], t[2000:])


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory) -> Dataset:
    with pytest.MonkeyPatch.context() as mp:  # session-scoped: keep the sample's cache out of the user's home
        mp.setenv("DIGITLAB_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        return _small_dataset()


@pytest.fixture(scope="session")
def trained(small_dataset):
    """(dataset, a 784-30-10 network trained on it for two epochs). Tests must not change the network."""
    net = make_mlp([784, 30, 10], seed=0)
    train(net, Adam(lr=0.001), small_dataset.x_train, small_dataset.t_train,
          settings=TrainSettings(batch_size=100, epochs=2, eval_train_limit=0))
    return small_dataset, net


@pytest.fixture
def quiet_window(qtbot):
    """A main window with no dataset and no extra tabs; error boxes are recorded in ``w.errors``, not shown."""
    w = MainWindow(load_dataset_on_start=False, with_tabs=False)
    qtbot.addWidget(w)
    w.errors = []
    w.show_error = lambda title, text: w.errors.append((title, text))
    yield w
    w.close()
