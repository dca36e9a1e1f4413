"""Fixtures shared by the GUI tests: a small dataset and a network trained on it, made once per run."""
import numpy as np
import pytest

import engine.data.catalog as catalog
from app.main_window import MainWindow
from app.threads import TaskRegistry
from engine.data.dataset import Dataset
from engine.nn.network import make_mlp
from engine.nn.optimizers import Adam
from engine.train.loop import TrainSettings, train


def _small_dataset() -> Dataset:
    """The 5,000-digit MNIST sample if it is installed, else separable synthetic 'digits'."""
    if catalog.sample_available():
        return catalog.load_dataset("mnist-sample")
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
    w.ask_choice = lambda title, text, choices: None  # a question nobody answers is cancelled, never a modal wait
    yield w
    w.close()


class RecordingHost:
    """Stands in for the window's dialogs and status line (``app.controllers.Host``): records, never blocks."""

    def __init__(self) -> None:
        self.errors: list[tuple[str, str]] = []
        self.infos: list[tuple[str, str]] = []
        self.statuses: list[str] = []
        self.open_path: str | None = None  # what ask_open_path answers
        self.image_path: str | None = None  # what ask_image_path answers
        self.save_path: tuple[str | None, str] = (None, "")
        self.yes = False
        self.choice: int | None = None

    def show_error(self, title, text):
        self.errors.append((title, text))

    def show_info(self, title, text):
        self.infos.append((title, text))

    def ask_yes_no(self, title, text):
        return self.yes

    def ask_choice(self, title, text, choices):
        return self.choice  # an index into choices, or None for cancelled

    def ask_open_path(self):
        return self.open_path

    def ask_image_path(self):
        return self.image_path

    def ask_save_path(self):
        return self.save_path

    def show_status(self, text, timeout_ms=0):
        self.statuses.append(text)


@pytest.fixture
def host() -> RecordingHost:
    return RecordingHost()


@pytest.fixture
def tasks(qtbot):
    """A task registry like the window's; at the end of the test every task it ran must stop within 10 s."""
    registry = TaskRegistry()
    yield registry
    assert registry.shutdown(10_000), "a background task did not stop"
