"""The thread plumbing: work runs off the GUI thread, errors and results come back as signals."""
import threading

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from app.threads import BackgroundTask  # noqa: E402
from app.training_task import ProgressCoalescer, TrainingTask  # noqa: E402
from engine.network import make_mlp  # noqa: E402
from engine.optimizers import SGD  # noqa: E402
from engine.training import Progress, TrainSettings  # noqa: E402


def test_function_runs_on_another_thread_and_returns(qtbot):
    gui = threading.get_ident()
    task = BackgroundTask(lambda ctx: threading.get_ident())
    with qtbot.waitSignal(task.succeeded, timeout=5000) as blocker:
        task.start()
    assert blocker.args[0] != gui
    qtbot.waitUntil(lambda: not task.is_running())


def test_error_comes_back_as_signal(qtbot):
    def boom(ctx):
        raise ValueError("bad shape (3, 4)")

    task = BackgroundTask(boom)
    with qtbot.waitSignal(task.failed, timeout=5000) as blocker:
        task.start()
    assert blocker.args == ["bad shape (3, 4)"]
    assert task.wait(5000)


def test_cancel_reaches_the_function(qtbot):
    started = threading.Event()

    def spin(ctx):
        started.set()
        while not ctx.cancelled.wait(0.01):
            pass
        return "cancelled"

    task = BackgroundTask(spin).start()
    assert started.wait(5)
    with qtbot.waitSignal(task.succeeded, timeout=5000) as blocker:
        task.cancel()
    assert blocker.args == ["cancelled"]
    assert task.wait(5000)


def test_coalescer_merges_losses_and_passes_epochs_at_once():
    out = []
    c = ProgressCoalescer(out.append, interval=3600)
    c(Progress(1, 1, 10, 20, np.array([1.0]), [], 0.1))  # first report goes out immediately (interval from t=0)
    c(Progress(2, 1, 10, 20, np.array([2.0]), [], 0.2))
    c(Progress(3, 1, 10, 20, np.array([3.0]), [], 0.3))
    assert len(out) == 1
    c.flush()
    assert len(out) == 2 and out[1].iteration == 3
    np.testing.assert_array_equal(np.concatenate([p.losses for p in out]), [1.0, 2.0, 3.0])
    c(Progress(4, 1, 10, 20, np.array([4.0]), ["epoch-1"], 0.4))
    assert len(out) == 3 and out[2].epochs == ["epoch-1"]


def test_training_task_trains_off_the_gui_thread_and_stops(qtbot):
    rng = np.random.default_rng(0)
    x = rng.random((400, 784), dtype=np.float32)
    t = rng.integers(0, 10, 400)
    net = make_mlp([784, 20, 10])
    task = TrainingTask(net, SGD(0.1), x, t, settings=TrainSettings(batch_size=10, epochs=1000, report_every=1))
    seen = []
    task.progress.connect(seen.append)
    task.start()
    qtbot.waitUntil(lambda: len(seen) >= 2, timeout=5000)
    with qtbot.waitSignal(task.succeeded, timeout=5000) as blocker:
        task.control.stop()
    assert blocker.args[0].status == "stopped"
    assert task.wait(5000)
    total = sum(len(p.losses) for p in seen)
    assert total == blocker.args[0].iterations  # every iteration's loss reached the GUI exactly once


def test_wait_from_the_gui_thread_returns_when_the_work_ends(qtbot):
    """quit() must reach the thread without the (blocked) GUI event loop."""
    import time

    task = BackgroundTask(lambda ctx: time.sleep(0.05)).start()
    start = time.monotonic()
    assert task.wait(5000)
    assert time.monotonic() - start < 2.0


def test_many_signal_emits_do_not_crash_the_interpreter(qtbot):
    """PySide6 6.12.0 lost a reference to True per emit and aborted Python 3.11 after ~600 emits."""
    from PySide6.QtCore import QObject, Signal

    class Emitter(QObject):
        ping = Signal()

    e = Emitter()
    count = []
    e.ping.connect(lambda: count.append(1))
    for _ in range(3000):
        e.ping.emit()
    assert len(count) == 3000
