"""The thread plumbing: work runs off the GUI thread, errors and results come back as signals,
one registry keeps tasks alive and stops them all, and reports are merged to the screen's pace."""
import gc
import logging
import threading
import time

import numpy as np

from app.coalescer import ReportCoalescer
from app.threads import BackgroundTask, TaskRegistry, describe_error
from app.training_task import TrainingTask, shows_at_once
from engine.nn.network import make_mlp
from engine.nn.optimizers import SGD
from engine.train.loop import EpochMetrics, Progress, TrainSettings
from engine.train.race import RaceProgress


class ShapeError(ValueError):
    """An exception type of the caller's own, to see that the type survives the trip."""


def test_function_runs_on_another_thread_and_returns(qtbot):
    gui = threading.get_ident()
    task = BackgroundTask(lambda ctx: threading.get_ident())
    with qtbot.waitSignal(task.succeeded, timeout=5000) as blocker:
        task.start()
    assert blocker.args[0] != gui
    qtbot.waitUntil(lambda: not task.is_running())


def test_a_failure_delivers_the_exception_object_and_logs_its_traceback(qtbot, caplog):
    def boom(ctx):
        raise ShapeError("bad shape (3, 4)")

    task = BackgroundTask(boom, "shape check")
    with caplog.at_level(logging.WARNING, logger="app.threads"):
        with qtbot.waitSignal(task.failed, timeout=5000) as blocker:
            task.start()
        assert task.wait(5000)
    exc = blocker.args[0]
    assert type(exc) is ShapeError and str(exc) == "bad shape (3, 4)"
    assert describe_error(exc) == "bad shape (3, 4)"
    assert describe_error(KeyError("W3")) == "KeyError: 'W3'"
    [record] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "shape check" in record.getMessage()
    assert record.exc_info and record.exc_info[0] is ShapeError  # the traceback goes to the log
    assert "in boom" in caplog.text


def test_bad_input_and_stopping_on_cancel_are_logged_without_a_traceback(qtbot, caplog):
    from engine.errors import WeightFileError

    def refuse(ctx):
        raise WeightFileError("w.pkl: not a weight file")

    def stop(ctx):
        ctx.cancelled.wait(5)
        raise RuntimeError("stopped because it was asked to")

    with caplog.at_level(logging.DEBUG, logger="app.threads"):
        refused = BackgroundTask(refuse, "open w.pkl")
        with qtbot.waitSignal(refused.failed, timeout=5000) as blocker:
            refused.start()
        assert describe_error(blocker.args[0]) == "w.pkl: not a weight file" and refused.wait(5000)
        task = BackgroundTask(stop, "stoppable").start()
        with qtbot.waitSignal(task.failed, timeout=5000):
            task.cancel()
        assert task.wait(5000)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert "not a weight file" in caplog.text and "stopped because it was asked to" in caplog.text


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


def test_a_task_cancelled_before_it_starts_never_runs(qtbot):
    ran = []
    task = BackgroundTask(lambda ctx: ran.append(1))
    task.cancel()
    task.start()
    qtbot.wait(50)
    assert ran == [] and not task.is_running() and task.wait(0)


def test_wait_from_the_gui_thread_returns_when_the_work_ends(qtbot):
    """quit() must reach the thread without the (blocked) GUI event loop."""
    task = BackgroundTask(lambda ctx: time.sleep(0.05)).start()
    start = time.monotonic()
    assert task.wait(5000)
    assert time.monotonic() - start < 2.0


# ----- the registry -----
def test_the_registry_keeps_a_task_alive_until_its_thread_ends(qtbot):
    registry = TaskRegistry()
    release = threading.Event()
    results = []
    task = registry.run(lambda ctx: release.wait(5) and "done", "held only by the registry")
    task.succeeded.connect(results.append)
    del task
    gc.collect()  # nobody but the registry refers to the task now
    assert len(registry.running()) == 1
    release.set()
    qtbot.waitUntil(lambda: results == ["done"], timeout=5000)
    qtbot.waitUntil(lambda: registry.tasks() == [], timeout=5000)  # forgotten once its thread ended


def test_shutdown_cancels_every_task_and_waits_for_each(qtbot):
    registry = TaskRegistry()
    ended = []

    def obedient(ctx):
        ctx.cancelled.wait(30)
        time.sleep(0.2)  # takes a moment to wind down: shutdown must wait for it
        ended.append(threading.get_ident())

    tasks = [registry.run(obedient, f"worker {i}") for i in range(3)]
    unstarted = registry.create(obedient, "never started")
    qtbot.waitUntil(lambda: all(t.thread.isRunning() for t in tasks), timeout=5000)
    start = time.monotonic()
    assert registry.shutdown(10_000)
    assert len(ended) == 3 and all(t.thread.isFinished() for t in tasks)
    assert time.monotonic() - start < 5
    assert registry.closed and unstarted.context.is_cancelled()
    late = registry.run(obedient, "after shutdown")  # the window is closing: new work never runs
    assert not late.is_running() and late.context.is_cancelled()


def test_shutdown_gives_up_after_its_overall_bound(qtbot):
    registry = TaskRegistry()
    release = threading.Event()
    stubborn = [registry.run(lambda ctx: release.wait(30), f"stubborn {i}") for i in range(5)]
    qtbot.waitUntil(lambda: all(t.thread.isRunning() for t in stubborn), timeout=5000)
    start = time.monotonic()
    assert registry.shutdown(300) is False  # they ignore cancel: not all ended in time
    elapsed = time.monotonic() - start
    assert 0.25 < elapsed < 1.0  # one bound for all five together, not 300 ms each... nor forever
    release.set()
    assert all(t.wait(5000) for t in stubborn)


def test_the_closing_signal_comes_once(qtbot):
    registry = TaskRegistry()
    seen = []
    registry.closing.connect(lambda: seen.append(1))
    registry.shutdown()
    registry.shutdown()
    assert seen == [1]


# ----- merging reports -----
class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def progress(iteration, losses, epochs=(), paused=False):
    losses = np.asarray(losses, dtype=np.float64)
    return Progress(iteration, 1, 10, 100, losses, list(epochs), iteration / 10, paused)


def test_the_coalescer_merges_reports_between_screen_updates():
    out, clock = [], Clock()
    c = ReportCoalescer(out.append, interval=0.1, urgent=shows_at_once, clock=clock)
    c(progress(2, [1.0, 2.0]))  # the first report goes out at once
    clock.now = 0.03
    c(progress(4, [3.0, 4.0]))
    clock.now = 0.06
    epoch = EpochMetrics(1, 6, 0.5, 0.8, None, None, 0.6)
    c(progress(6, [5.0, 6.0], [epoch]))
    clock.now = 0.09
    c(progress(8, [7.0, 8.0]))
    assert [p.iteration for p in out] == [2]  # within the interval: held back, epoch end included
    clock.now = 0.15
    c(progress(9, [9.0]))
    assert [p.iteration for p in out] == [2, 9]
    np.testing.assert_array_equal(out[1].losses, [3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0])  # in order
    assert out[1].epochs == [epoch]  # kept
    clock.now = 0.2
    c(progress(10, [10.0]))
    assert len(out) == 2  # the interval counts from the last report sent
    clock.now = 0.3
    c(progress(11, [11.0]))
    assert len(out) == 3 and out[2].iteration == 11
    np.testing.assert_array_equal(np.concatenate([p.losses for p in out]), np.arange(1.0, 12.0))


def test_a_pause_is_flushed_at_once_and_flush_sends_the_rest():
    out, clock = [], Clock()
    c = ReportCoalescer(out.append, interval=3600, urgent=shows_at_once, clock=clock)
    c(progress(1, [1.0]))
    c(progress(2, [2.0]))
    c(progress(2, [], paused=True))
    assert len(out) == 2 and out[1].paused and out[1].iteration == 2
    np.testing.assert_array_equal(out[1].losses, [2.0])
    c(progress(3, [3.0]))
    c.flush()
    c.flush()  # nothing left: nothing sent
    assert len(out) == 3 and out[2].iteration == 3


def test_the_coalescer_merges_race_reports_too():
    out, clock = [], Clock()
    c = ReportCoalescer(out.append, interval=1.0, clock=clock)

    def report(it, new):
        start = {k: it - len(v) for k, v in new.items()}
        return RaceProgress(it, 100, start, {k: np.asarray(v, float) for k, v in new.items()},
                            {k: "running" for k in new}, {k: [] for k in new}, it / 10)

    c(report(1, {"a": [1.0], "b": [10.0]}))
    c(report(2, {"a": [2.0], "b": [20.0]}))
    c(report(3, {"a": [3.0], "b": [30.0]}))
    c.flush()
    assert len(out) == 2
    np.testing.assert_array_equal(out[1].losses["a"], [2.0, 3.0])
    np.testing.assert_array_equal(out[1].losses["b"], [20.0, 30.0])
    assert out[1].iteration == 3 and out[1].start == {"a": 1, "b": 1}


def test_training_task_trains_off_the_gui_thread_and_stops(qtbot):
    rng = np.random.default_rng(0)
    x = rng.random((400, 784), dtype=np.float32)
    t = rng.integers(0, 10, 400)
    net = make_mlp([784, 20, 10])
    task = TrainingTask(net, SGD(0.1), x, t, settings=TrainSettings(batch_size=10, epochs=1000, report_every=1),
                        interval=0.02)
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
    assert len(seen) < total  # ... merged into fewer reports than iterations


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
