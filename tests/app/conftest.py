"""Fixtures shared by the GUI tests: a small dataset and a network trained on it, made once per run."""
import importlib.util
import itertools
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.data.idx import write_idx

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
        self.dataset_path: str | None = None  # what ask_dataset_path answers
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

    def ask_dataset_path(self):
        return self.dataset_path

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


class XRun:
    """A Python script started under ``xvfb-run`` (a real X server with OpenGL) in the background."""

    _numbers = itertools.count()

    def __init__(self, script: str, args: list[str], screen: tuple[int, int], cwd: Path, folder: Path) -> None:
        env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
        # away from :99, where every other `xvfb-run -a` starts (and races), and from each other's numbers
        first = 500 + os.getpid() % 300 + 400 * (next(self._numbers) % 4)
        self.out, self.err = folder / "stdout.txt", folder / "stderr.txt"
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.proc = subprocess.Popen(["xvfb-run", "-a", "-n", str(first), "-s",
                                          f"-screen 0 {screen[0]}x{screen[1]}x24", sys.executable, "-c", script,
                                          *args], stdout=out, stderr=err, env=env, cwd=cwd,
                                         start_new_session=True)  # its own process group: xvfb-run, Xvfb, Python

    def result(self, timeout: float = 120) -> subprocess.CompletedProcess:
        """Waits for the script (killed after ``timeout`` s): its exit code, stdout and stderr."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
        out, err = (path.read_text(encoding="utf-8", errors="replace") for path in (self.out, self.err))
        return subprocess.CompletedProcess(self.proc.args, self.proc.returncode, out, err)

    def stop(self) -> None:
        """Ends the script and its X server if they still run."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


@pytest.fixture(scope="session")
def under_x(tmp_path_factory):
    """``under_x(script, args, screen, cwd)``: the script started under a real X server at once, in the background.

    The 3-D checks each need a new process and X server (several seconds, mostly starting up): started
    as their module starts, they run beside the offscreen tests instead of after them. None when
    ``xvfb-run`` or PyOpenGL is missing (the tests then skip, saying which).
    """
    runs = []

    def start(script: str, args: list[str], screen: tuple[int, int], cwd: Path) -> XRun | None:
        if shutil.which("xvfb-run") is None or importlib.util.find_spec("OpenGL") is None:
            return None
        runs.append(XRun(script, [str(a) for a in args], screen, cwd, tmp_path_factory.mktemp("xvfb")))
        return runs[-1]

    yield start
    for run in runs:
        run.stop()


@pytest.fixture
def tiny_data(tmp_path):
    """A folder of MNIST-style IDX files: 60 train and 40 test images of random pixels."""
    folder = tmp_path / "idx"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for split, n in (("train", 60), ("t10k", 40)):
        write_idx(folder / f"{split}-images-idx3-ubyte.gz", (rng.random((n, 28, 28)) * 255).astype(np.uint8))
        write_idx(folder / f"{split}-labels-idx1-ubyte.gz", rng.integers(0, 10, n).astype(np.uint8))
    return folder
