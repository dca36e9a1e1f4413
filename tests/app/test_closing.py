"""Leaving the window: from any state it closes within 2 s, every background task is stopped or left
alone (never destroyed while it runs), and the real app exits cleanly on close and on Ctrl+C."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import app.controllers.weightfiles as weightfiles_module
from app.main_window import MainWindow
from app.tabs.compare import ComparePage
from app.tabs.evaluation import EvaluationPage
from app.tabs.gradients_lab import GradientLab
from app.tabs.landscape_lab import LandscapeLab
from app.threads import SHUTDOWN_MS, stragglers
from engine.nn.network import Network
from engine.train.config import TrainConfig

ROOT = Path(__file__).resolve().parents[2]
CLOSE_LIMIT = 2.0  # seconds: the bound for leaving from any state


class StallingServer:
    """An HTTP server that promises a whole file, sends its first ``first`` bytes, then sends nothing more
    until ``release`` is set (as a mirror that stalls mid-download does)."""

    def __init__(self, size: int = 9_912_422, first: int = 1_000) -> None:
        self.release = threading.Event()
        self.requested = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                owner.requested.set()
                self.send_response(200)
                self.send_header("Content-Length", str(size))
                self.end_headers()
                self.wfile.write(b"\x1f" * first)
                self.wfile.flush()
                owner.release.wait(60)
                self.close_connection = True

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/"

    def __enter__(self) -> "StallingServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def stalling_mirror(monkeypatch):
    with StallingServer() as server:
        monkeypatch.setenv("DIGITLAB_MIRRORS", server.url)
        yield server


@pytest.fixture
def window(quiet_window):
    """The window without its pages (fast to build); a test adds the page whose work it needs."""
    quiet_window.show()
    return quiet_window


def close_and_time(window) -> float:
    start = time.perf_counter()
    window.close()
    elapsed = time.perf_counter() - start
    assert elapsed < CLOSE_LIMIT, f"closing took {elapsed:.2f} s"
    assert window.tasks.closed
    return elapsed


def test_the_shutdown_bound_leaves_room_within_two_seconds():
    assert SHUTDOWN_MS <= 1_500


def test_closing_while_training(qtbot, window, small_dataset):
    window.datasets.use(small_dataset)
    window.panel.set_config(TrainConfig(hidden=[50], batch_size=20, epochs=1000))
    assert window.training.start()
    qtbot.waitUntil(lambda: window.training.iteration > 0, timeout=5000)
    thread = window.training.task.thread
    close_and_time(window)
    assert thread.isFinished() and not stragglers()


def test_closing_during_a_stalled_download(qtbot, window, stalling_mirror):
    window.datasets.load("mnist", interactive=True)
    assert stalling_mirror.requested.wait(10)
    dialog = window.datasets.download_dialog
    qtbot.waitUntil(lambda: "Downloading" in dialog.labelText(), timeout=5000)  # bytes came, then nothing
    thread = window.datasets.task.thread
    close_and_time(window)
    assert thread.isFinished(), "the download did not notice the cancel while the server stalled"
    assert not stragglers()
    assert not list((Path(os.environ["DIGITLAB_CACHE_DIR"])).rglob("*.part"))


def test_closing_during_an_evaluation(qtbot, window, small_dataset, monkeypatch):
    scores = Network.scores

    def slow_scores(self, x):  # a big network on a big test set: each batch takes a while
        time.sleep(0.1)
        return scores(self, x)

    monkeypatch.setattr(Network, "scores", slow_scores)
    window.datasets.use(small_dataset)
    page = EvaluationPage(window.session, window.tasks)
    window.add_tab(page, "Evaluation")
    page.evaluate()
    qtbot.waitUntil(lambda: page.is_busy() and bool(window.tasks.running()), timeout=5000)
    threads = [t.thread for t in window.tasks.running()]
    close_and_time(window)
    assert all(t.isFinished() for t in threads) and not stragglers()


def test_closing_during_a_gradient_check(qtbot, window, trained):
    dataset, net = trained
    window.datasets.use(dataset)
    window.session.set_network(net.copy(), "trained 784-30-10")
    lab = GradientLab(task_factory=window.tasks.create)  # as app.tabs.labs wires it
    window.add_tab(lab, "Gradients")
    lab.set_network(window.session.network, window.session.network_label)
    lab.set_dataset(dataset)
    lab.select_network("current")
    lab.subset_check.setChecked(False)  # every one of 23,860 parameters: many seconds of work
    lab.start_check()
    qtbot.waitUntil(lambda: lab.progress_bar.value() > 0, timeout=10_000)
    thread = lab._task.thread
    close_and_time(window)
    assert thread.isFinished() and not stragglers()


def test_the_landscape_lab_never_holds_the_window_up(qtbot, window):
    """Its paths are computed on the GUI thread: even the longest run plus closing stays within the bound."""
    lab = LandscapeLab()
    window.add_tab(lab, "Loss landscape")
    lab.set_surface("saddle")  # the slowest surface per step
    start = time.perf_counter()
    lab.set_steps(5000)  # the most steps it allows
    window.close()
    assert time.perf_counter() - start < CLOSE_LIMIT


def test_closing_during_a_race(qtbot, window, small_dataset):
    window.datasets.use(small_dataset)
    compare = ComparePage(window.session, window.tasks)
    window.add_tab(compare, "Compare")
    compare.iterations_spin.setValue(100_000)
    compare.start_race()
    qtbot.waitUntil(lambda: compare.is_racing() and bool(window.tasks.running()), timeout=5000)
    threads = [t.thread for t in window.tasks.running()]
    close_and_time(window)
    assert all(t.isFinished() for t in threads) and not stragglers()


def test_a_task_that_ignores_cancel_is_left_running_not_destroyed(qtbot, tmp_path, monkeypatch):
    """Reading a weight file cannot be interrupted: closing waits its bound, then keeps the thread alive."""
    window = MainWindow(load_dataset_on_start=False, with_tabs=False)  # deleted below, so not qtbot's
    window.show_error = lambda title, text: None
    release, reading = threading.Event(), threading.Event()

    def stuck(path, probe=None):
        reading.set()
        release.wait(30)
        raise ValueError("released")

    monkeypatch.setattr(weightfiles_module, "load_weights", stuck)
    (tmp_path / "slow.npz").write_bytes(b"")
    window.weightfiles.load(tmp_path / "slow.npz")
    assert reading.wait(5)
    elapsed = close_and_time(window)
    assert elapsed >= SHUTDOWN_MS / 1000 * 0.9  # it did wait for the task first
    [left] = stragglers()
    assert left.name == "open slow.npz" and left.parent() is None  # deleting the window cannot take it along
    window.deleteLater()
    qtbot.wait(10)  # the window and its controllers are gone; the task and its thread are not
    release.set()
    assert left.wait(5000)
    qtbot.wait(10)  # its failure reaches no one: a slot on the deleted window would raise here
    assert stragglers() == []


# ----- the real app, in its own process -----
DRIVER = r"""
import sys, time
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
import app.gui as gui
import app.controllers.weightfiles as weightfiles
from app.main_window import MainWindow
from app.tabs.compare import ComparePage
from app.tabs.evaluation import EvaluationPage
from app.tabs.gradients_lab import GradientLab
from app.tabs.landscape_lab import LandscapeLab
from engine.data.dataset import Dataset
from engine.train.config import TrainConfig
import numpy as np

mode = sys.argv[1]
qapp = gui.create_application([])

def stuck(path, probe=None):
    time.sleep(60)  # reading a file that ignores cancel

weightfiles.load_weights = stuck

def window():
    return next(w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow))

queued = []

def begin():
    w = window()
    if not queued:  # the window queues its start-up dataset load when built: let that start first…
        queued.append(True)
        QTimer.singleShot(0, begin)
        return
    if w.datasets.task is not None:  # …and finish, or it would replace the download asked for below
        QTimer.singleShot(20, begin)
        return
    if mode == "download":
        w.datasets.load("mnist", interactive=True)
        w.weightfiles.load(sys.argv[2])
        ready = lambda: "Downloading" in w.datasets.download_dialog.labelText()
    else:
        rng = np.random.default_rng(0)
        x = rng.random((2000, 784), dtype=np.float32)
        w.datasets.use(Dataset("noise", x, rng.integers(0, 10, 2000), x[:200], rng.integers(0, 10, 200)))
        w.panel.set_config(TrainConfig(hidden=[64], batch_size=10, epochs=1000))
        w.training.start()
        ready = lambda: w.training.iteration > 0
    def poll():
        if not ready():
            QTimer.singleShot(20, poll)
            return
        print("READY", flush=True)
        if mode == "download":
            print("CLOSING", time.monotonic(), flush=True)
            w.close()
    poll()

QTimer.singleShot(0, begin)
sys.exit(gui.main([]))
"""


@contextlib.contextmanager
def running_app(mode: str, tmp_path, extra_env: dict, *args: str):
    """The real app (``gui.main``) in its own process, driven by DRIVER; killed and reaped whatever happens."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "DIGITLAB_CACHE_DIR": str(tmp_path / "cache"),
           "DIGITLAB_CONFIG_DIR": str(tmp_path / "config"), **extra_env}
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, mode, *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def test_the_app_exits_at_once_when_closed_during_a_stalled_download(tmp_path):
    """A stalled download and a weight file that ignores cancel: exit code 0 within 2 s of the close."""
    (tmp_path / "slow.npz").write_bytes(b"")
    with StallingServer() as server:
        with running_app("download", tmp_path, {"DIGITLAB_MIRRORS": server.url}, str(tmp_path / "slow.npz")) as proc:
            out, err = proc.communicate(timeout=60)
            ended = time.monotonic()
    assert proc.returncode == 0, err[-3000:]
    closing = float(next(s for s in out.splitlines() if s.startswith("CLOSING")).split()[1])
    assert ended - closing < CLOSE_LIMIT, f"exited {ended - closing:.2f} s after the close"
    assert "QThread" not in err and "Traceback" not in err, err[-3000:]


def test_ctrl_c_in_the_terminal_quits_the_app_cleanly(tmp_path):
    with running_app("train", tmp_path, {}) as proc:
        assert proc.stdout.readline().strip() == "READY"
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
        ended = time.monotonic()
    assert proc.returncode == 128 + signal.SIGINT, err[-3000:]
    assert ended - sent < CLOSE_LIMIT, f"exited {ended - sent:.2f} s after Ctrl+C"
    assert "Traceback" not in err and "KeyboardInterrupt" not in err and "QThread" not in err, err[-3000:]
