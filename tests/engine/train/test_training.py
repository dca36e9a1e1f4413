"""The training loop: determinism, control from another thread, divergence, progress."""
import threading
import time

import numpy as np
import pytest

from engine.nn.network import make_mlp
from engine.nn.optimizers import SGD, Adam
from engine.train.loop import TrainControl, TrainSettings, train


def test_training_learns_and_reports_epochs(blobs):
    x, t = blobs()
    progress = []
    net = make_mlp([784, 30, 10])
    result = train(net, Adam(0.001), x[:500], t[:500], x[500:], t[500:], TrainSettings(batch_size=50, epochs=3),
                   callback=progress.append)
    assert result.status == "finished"
    assert result.iterations == 30 and len(result.losses) == 30
    assert [e.epoch for e in result.epochs] == [1, 2, 3]
    assert result.epochs[-1].test_accuracy > 0.9
    assert result.losses[-1] < result.losses[0]
    # every iteration's loss was reported exactly once, and each epoch once
    np.testing.assert_array_equal(np.concatenate([p.losses for p in progress]), result.losses)
    assert [e.epoch for p in progress for e in p.epochs] == [1, 2, 3]


def test_same_seed_same_curve_bit_for_bit(blobs):
    x, t = blobs()
    runs = []
    for _ in range(2):
        net = make_mlp([784, 20, 10], seed=7)
        runs.append(train(net, Adam(0.01), x, t, settings=TrainSettings(batch_size=32, epochs=2, seed=7)).losses)
    np.testing.assert_array_equal(runs[0], runs[1])
    net = make_mlp([784, 20, 10], seed=7)
    other = train(net, Adam(0.01), x, t, settings=TrainSettings(batch_size=32, epochs=2, seed=8)).losses
    assert not np.array_equal(runs[0], other)


def test_labels_as_one_hot_train_the_same_as_indices(blobs):
    x, t = blobs(200)
    a = train(make_mlp([784, 10, 10]), SGD(0.1), x, t, settings=TrainSettings(batch_size=20, epochs=1)).losses
    b = train(make_mlp([784, 10, 10]), SGD(0.1), x, np.eye(10)[t], settings=TrainSettings(batch_size=20, epochs=1)).losses
    np.testing.assert_array_equal(a, b)


def test_divergence_stops_with_a_clear_result_and_restores_weights(blobs):
    x, t = blobs(200)
    net = make_mlp([784, 50, 10])
    start = {k: v.copy() for k, v in net.params.items()}
    result = train(net, SGD(1e6), x, t, settings=TrainSettings(batch_size=20, epochs=5))
    assert result.status == "diverged"
    assert "learning rate" in result.message and "smaller" in result.message
    assert result.iterations < 10
    assert np.all(np.isfinite(result.losses))
    for k, v in net.params.items():
        assert np.all(np.isfinite(v))
        np.testing.assert_array_equal(v, start[k])  # diverged in epoch 1: the initial weights are back


def _run_in_thread(net, x, t, control, settings, optimizer=None):
    out = {}
    th = threading.Thread(target=lambda: out.setdefault("r", train(net, optimizer or SGD(0.05), x, t,
                                                                   settings=settings, control=control)))
    th.start()
    return th, out


def test_stop_from_another_thread(blobs):
    x, t = blobs(400)
    control = TrainControl()
    th, out = _run_in_thread(make_mlp([784, 10, 10]), x, t, control, TrainSettings(batch_size=10, epochs=10_000))
    time.sleep(0.05)
    control.stop()
    th.join(5)
    assert not th.is_alive()
    assert out["r"].status == "stopped" and 0 < out["r"].iterations < 400_000


def test_pause_holds_step_advances_resume_finishes(blobs, wait_until):
    x, t = blobs(400)
    control = TrainControl()
    control.pause()  # paused before the first iteration
    settings = TrainSettings(batch_size=10, epochs=2, report_every=1)  # 40 iterations per epoch
    th, out = _run_in_thread(make_mlp([784, 10, 10]), x, t, control, settings)
    wait_until(lambda: control.waiting)
    net_iters = lambda: len(out["r"].losses) if "r" in out else None  # noqa: E731
    time.sleep(0.1)
    assert "r" not in out  # nothing ran while paused
    control.step(3)
    wait_until(lambda: control.waiting)
    control.step_epoch()  # runs to the end of epoch 1: 37 more
    wait_until(lambda: control.waiting and control._step_budget == 0 and not control._to_epoch_end)
    control.resume()
    th.join(5)
    assert net_iters() == 80
    assert out["r"].status == "finished"


def test_step_counts_iterations_exactly(blobs, wait_until):
    x, t = blobs(400)
    control = TrainControl()
    control.pause()
    reports = []
    settings = TrainSettings(batch_size=10, epochs=2, report_every=1)
    out = {}
    th = threading.Thread(target=lambda: out.setdefault("r", train(
        make_mlp([784, 10, 10]), SGD(0.05), x, t, settings=settings, control=control, callback=reports.append)))
    th.start()
    wait_until(lambda: control.waiting)
    control.step(5)
    wait_until(lambda: control.waiting and reports and reports[-1].iteration == 5)
    time.sleep(0.05)
    assert reports[-1].iteration == 5 and reports[-1].paused
    control.step_epoch()
    wait_until(lambda: control.waiting and reports[-1].iteration == 40)
    assert reports[-1].epochs == [] or reports[-1].epochs[-1].epoch == 1
    control.stop()
    th.join(5)
    assert out["r"].status == "stopped" and out["r"].iterations == 40


def test_learning_rate_change_takes_effect_from_the_next_iteration(blobs, wait_until):
    x, t = blobs(200)
    control = TrainControl()
    control.pause()
    opt = SGD(0.01)
    th, out = _run_in_thread(make_mlp([784, 10, 10]), x, t, control, TrainSettings(batch_size=10, epochs=1), opt)
    wait_until(lambda: control.waiting)
    control.set_hyperparameters(lr=0.5)
    assert opt.lr == 0.01  # not yet: applied by the loop before its next iteration
    control.step(1)
    wait_until(lambda: control.waiting and opt.lr == 0.5)
    control.stop()
    th.join(5)


def test_bad_hyper_parameter_change_raises_in_the_loop(blobs):
    x, t = blobs(100)
    control = TrainControl()
    control.set_hyperparameters(lr=-1)
    with pytest.raises(ValueError, match="-1"):
        train(make_mlp([784, 10, 10]), SGD(0.1), x, t, settings=TrainSettings(batch_size=10, epochs=1), control=control)


@pytest.mark.parametrize("bad", [{"batch_size": 0}, {"epochs": 0}])
def test_bad_settings_are_refused(bad):
    with pytest.raises(ValueError):
        TrainSettings(**bad)


def test_nan_in_training_data_is_refused_up_front(blobs):
    x, t = blobs(100)
    x[3, 5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        train(make_mlp([784, 10, 10]), SGD(0.1), x, t)


def test_swapping_the_optimizer_drops_values_queued_for_the_old_one(blobs):
    x, t = blobs(100)
    control = TrainControl()
    control.set_hyperparameters(momentum=0.5)  # meant for a Momentum optimizer…
    new = Adam(0.01)
    control.set_optimizer(new)  # …then the user switched to Adam
    result = train(make_mlp([784, 10, 10]), SGD(0.1), x, t, settings=TrainSettings(batch_size=10, epochs=1),
                   control=control)
    assert result.status == "finished" and new.iter == 10
