"""A run held to a pace a person can watch, and the record of settings changed while it runs."""
import threading
import time

import numpy as np
import pytest

from engine.nn.network import make_mlp
from engine.nn.optimizers import SGD, Adam
from engine.train.loop import Progress, TrainControl, TrainSettings, train


def start(x, t, control, epochs=1000, optimizer=None, batch_size=10):
    """train() on a thread; returns (thread, reports list, result holder)."""
    reports, out = [], {}
    settings = TrainSettings(batch_size=batch_size, epochs=epochs, eval_train_limit=0)
    thread = threading.Thread(target=lambda: out.setdefault("r", train(
        make_mlp([784, 10, 10]), optimizer or SGD(0.05), x, t, settings=settings, control=control,
        callback=reports.append)))
    thread.start()
    return thread, reports, out


def iterations(reports) -> int:
    return reports[-1].iteration if reports else 0


def test_a_pace_holds_the_run_to_that_many_steps_a_second_and_reports_every_step(blobs, wait_until):
    x, t = blobs(200)
    control = TrainControl(pace=20)
    thread, reports, _ = start(x, t, control)
    time.sleep(1.0)
    control.stop()
    thread.join(5)
    done = iterations(reports)
    assert 10 <= done <= 30  # about 20 in one second; loose, the machine may be busy
    stepped = [len(r.losses) for r in reports if len(r.losses)]
    assert set(stepped) == {1}  # each paced step was reported on its own


def test_without_a_pace_it_runs_as_fast_as_it_can():
    control = TrainControl()
    assert control.pace is None
    x = np.random.default_rng(0).random((200, 784), dtype=np.float32)
    result = train(make_mlp([784, 10, 10]), SGD(0.05), x, np.arange(200) % 10,
                   settings=TrainSettings(batch_size=10, epochs=5, eval_train_limit=0), control=control)
    assert result.status == "finished" and result.iterations == 100 and result.elapsed < 5


def test_a_new_pace_applies_to_the_running_loop_at_once(blobs, wait_until):
    x, t = blobs(200)
    control = TrainControl(pace=0.2)  # one step every five seconds
    thread, reports, out = start(x, t, control, epochs=3)
    wait_until(lambda: iterations(reports) == 1, timeout=5)
    control.set_pace(None)  # the five-second wait ends now
    thread.join(10)
    assert out["r"].status == "finished" and out["r"].iterations == 60


def test_stop_and_pause_end_a_pace_wait_at_once(blobs, wait_until):
    x, t = blobs(200)
    control = TrainControl(pace=0.1)  # ten seconds between steps
    thread, reports, out = start(x, t, control)
    wait_until(lambda: iterations(reports) == 1, timeout=5)
    control.pause()
    wait_until(lambda: control.waiting, timeout=2)  # paused, not still waiting for the pace
    assert reports[-1].paused
    began = time.monotonic()
    control.stop()
    thread.join(5)
    assert time.monotonic() - began < 1.0
    assert out["r"].status == "stopped" and out["r"].iterations == 1


def test_single_steps_ignore_the_pace_but_a_step_epoch_follows_it(blobs, wait_until):
    x, t = blobs(200)
    control = TrainControl(pace=0.1)
    control.step(3)
    thread, reports, _ = start(x, t, control)
    wait_until(lambda: iterations(reports) == 3 and control.waiting, timeout=3)  # three steps, no ten-second waits
    control.set_pace(50)
    control.step_epoch()  # 20 iterations per epoch: the rest of epoch 1 at 50 a second
    wait_until(lambda: iterations(reports) == 20 and control.waiting, timeout=5)
    control.stop()
    thread.join(5)


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf")])
def test_a_pace_must_be_a_positive_number(bad):
    with pytest.raises(ValueError, match="positive number of steps per second"):
        TrainControl().set_pace(bad)


def test_changes_made_during_a_run_are_recorded_with_the_iteration_they_apply_from(blobs, wait_until):
    x, t = blobs(200)
    control = TrainControl()
    control.step(5)
    thread, reports, out = start(x, t, control, epochs=1, optimizer=SGD(0.05))
    wait_until(lambda: control.waiting and iterations(reports) == 5, timeout=5)
    control.set_hyperparameters(lr=0.01)
    control.step(1)
    wait_until(lambda: iterations(reports) == 6, timeout=5)
    control.set_hyperparameters(lr=0.01)  # the same value again: not a change
    control.step(2)
    wait_until(lambda: iterations(reports) == 8, timeout=5)
    control.set_optimizer(Adam(0.001))
    control.resume()
    thread.join(10)
    result = out["r"]
    assert result.changes == [
        {"iteration": 6, "name": "lr", "from": 0.05, "to": 0.01},
        {"iteration": 9, "name": "optimizer", "from": "sgd", "to": "adam"},
        {"iteration": 9, "name": "lr", "from": 0.01, "to": 0.001},
    ]
    assert [c for r in reports for c in r.changes] == result.changes  # each reported once, when it happened
    assert result.to_dict()["changes"] == result.changes


def test_merged_reports_keep_every_change():
    change = {"iteration": 3, "name": "lr", "from": 0.1, "to": 0.2}
    first = Progress(2, 1, 10, 10, np.ones(2), [], 0.1)
    later = Progress(4, 1, 10, 10, np.ones(2), [], 0.2, changes=[change])
    assert first.merge(later).changes == [change]
    assert later.merge(Progress(5, 1, 10, 10, np.ones(1), [], 0.3)).changes == [change]
