"""race(): identical starting weights and batches for every racer; identical configs give identical curves."""
import dataclasses
import threading
import time

import numpy as np
import pytest

from engine.train.config import TrainConfig
from engine.data.dataset import Dataset
from engine.train.race import (RaceError, learning_rate_race_configs, optimizer_race_configs, race)
from engine.train.loop import TrainControl, TrainSettings, train


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    protos = np.random.default_rng(1).random((10, 784)).astype(np.float32)
    t = rng.integers(0, 10, 700)
    x = np.clip(protos[t] + rng.normal(0, 0.4, (700, 784)), 0, 1).astype(np.float32)
    return Dataset("blobs", x[:500], t[:500], x[500:], t[500:])


def test_one_curve_per_optimizer_from_identical_weights(data):
    configs = optimizer_race_configs(hidden=(20,), batch_size=50)
    assert [label for label, _ in configs] == ["SGD lr 0.01", "Momentum lr 0.01", "AdaGrad lr 0.01",
                                               "Adam lr 0.001"]
    result = race(configs, data, iterations=25)
    assert result.status == "finished" and result.iterations == 25
    assert len(result.racers) == 4
    first = [r.losses[0] for r in result.racers]
    assert first == [first[0]] * 4  # same weights, same first batch -> the same first loss
    assert len({tuple(r.losses) for r in result.racers}) == 4  # then they part ways
    for r in result.racers:
        assert len(r.losses) == 25 and r.status == "finished"
        assert [e["epoch"] for e in r.epochs] == [1, 2, 3]  # 10 batches per epoch, 25 iterations
        assert 0 <= r.epochs[-1]["test_accuracy"] <= 1
    records = result.records()
    assert [rec.name for rec in records] == [label for label, _ in configs]
    assert records[3].settings["optimizer"] == "adam" and records[3].settings["race_iterations"] == 25


def test_same_config_twice_gives_identical_curves(data):
    cfg = TrainConfig(hidden=[20], optimizer="momentum", lr=0.05, batch_size=32)
    result = race([("a", cfg), ("b", cfg)], data, iterations=40)
    np.testing.assert_array_equal(result.racers[0].losses, result.racers[1].losses)
    for name, arr in result.racers[0].network.params.items():
        np.testing.assert_array_equal(arr, result.racers[1].network.params[name])


def test_a_racer_matches_plain_training_with_the_same_seed(data):
    """Same seed -> same data order and weights as engine.train.loop.train (bit for bit)."""
    cfg = TrainConfig(hidden=[20], optimizer="adam", lr=0.001, batch_size=50, seed=3)
    result = race([cfg], data, iterations=20, evaluate_every_epoch=False)
    net = cfg.make_network()
    res = train(net, cfg.make_optimizer(), data.x_train, data.t_train,
                settings=TrainSettings(batch_size=50, epochs=2, seed=3, eval_train_limit=0))
    np.testing.assert_array_equal(result.racers[0].losses, res.losses)


def test_learning_rate_race_and_divergence(data):
    base = TrainConfig(hidden=[20], optimizer="sgd", batch_size=50)
    configs = learning_rate_race_configs(base, [0.1, 1e6])
    assert [c.lr for _, c in configs] == [0.1, 1e6]
    result = race(configs, data, iterations=15)
    ok, blown = result.racers
    assert ok.status == "finished" and len(ok.losses) == 15
    assert blown.status == "diverged" and len(blown.losses) < 15 and "learning rate" in blown.message


def test_progress_reports_add_up_and_stop_works(data):
    got = {}
    stop = threading.Event()

    def callback(p):
        for label, losses in p.losses.items():
            assert p.start[label] == len(got.get(label, []))
            got.setdefault(label, []).extend(losses.tolist())
        if p.iteration >= 12:
            stop.set()

    configs = optimizer_race_configs(hidden=(10,), batch_size=20)
    result = race(configs, data, iterations=1000, control=stop, callback=callback, report_every=1)
    assert result.status == "stopped" and 12 <= result.iterations < 1000
    for r in result.racers:
        assert got[r.label] == r.losses.tolist() and r.status == "stopped"


def test_bad_races_are_refused(data):
    cfg = TrainConfig(hidden=[5])
    with pytest.raises(RaceError, match="at least one"):
        race([], data, 5)
    with pytest.raises(RaceError, match="repeated: x"):
        race([("x", cfg), ("x", cfg)], data, 5)
    with pytest.raises(RaceError, match="at least 1 iteration"):
        race([cfg], data, 0)
    with pytest.raises(RaceError, match="TrainConfig"):
        race(["adam"], data, 5)
    with pytest.raises(ValueError, match="only test files"):
        race([cfg], dataclasses.replace(data, x_train=None, t_train=None), 5)


def _without_seconds(epochs):
    return [{k: v for k, v in e.items() if k != "seconds"} for e in epochs]


def test_a_race_of_one_is_a_training_run_bit_for_bit(data):
    """Same seed: identical per-iteration losses, final weights and epoch metrics (bar the clock) as train()."""
    cfg = TrainConfig(hidden=[16], optimizer="adam", lr=0.003, batch_size=48, seed=5)  # 10 batches, 20 samples dropped
    result = race([cfg], data, iterations=30, eval_train_limit=300)
    net = cfg.make_network()
    res = train(net, cfg.make_optimizer(), data.x_train, data.t_train, data.x_test, data.t_test,
                TrainSettings(batch_size=48, epochs=3, seed=5, eval_train_limit=300))
    racer = result.racers[0]
    assert racer.status == res.status == "finished"
    assert isinstance(racer.losses, np.ndarray) and np.array_equal(racer.losses, res.losses)
    for name, arr in net.params.items():
        assert np.array_equal(racer.network.params[name], arr), name
    assert _without_seconds(racer.epochs) == _without_seconds([e.to_dict() for e in res.epochs])
    assert [e["epoch"] for e in racer.epochs] == [1, 2, 3] and racer.epochs[-1]["iteration"] == 30
    assert np.isfinite(racer.epochs[-1]["train_accuracy"])  # train metrics as in training, not a stand-in
    assert result.records()[0].epochs == racer.epochs


def test_every_racer_sees_the_same_batches_in_the_seeded_order(data, monkeypatch):
    """Each racer has its own stepper, yet all get the batches of one permutation per epoch from the seed."""
    from engine.nn.network import Network

    seen = {}
    original = Network.gradient

    def recording(self, x, t):
        seen.setdefault(id(self), []).append((x.copy(), np.array(t)))
        return original(self, x, t)

    monkeypatch.setattr(Network, "gradient", recording)
    configs = optimizer_race_configs(hidden=(8,), batch_size=48, seed=9)
    result = race(configs, data, iterations=23, evaluate_every_epoch=False)
    assert result.status == "finished" and len(seen) == 4
    rng = np.random.default_rng(9)
    expected = []
    for it in range(23):
        if it % 10 == 0:
            order = rng.permutation(500)
        idx = order[(it % 10) * 48:(it % 10 + 1) * 48]
        expected.append((data.x_train[idx], data.t_train[idx]))
    for batches in seen.values():
        assert len(batches) == 23
        for (x, t), (ex, et) in zip(batches, expected):
            assert np.array_equal(x, ex) and np.array_equal(t, et)


def test_a_diverging_racer_drops_out_with_its_weights_put_back(data):
    base = TrainConfig(hidden=[20], optimizer="sgd", batch_size=50)
    result = race(learning_rate_race_configs(base, [0.1, 1e6]), data, iterations=25)
    ok, blown = result.racers
    assert ok.status == "finished" and len(ok.losses) == 25 and len(ok.epochs) == 3
    assert blown.status == "diverged" and blown.message.startswith("SGD lr 1e+06: training diverged")
    start = base.make_network().params
    for name, arr in blown.network.params.items():
        assert np.array_equal(arr, start[name])  # diverged in epoch 1: the initial weights are back


def test_reports_come_every_report_every_iterations_epoch_ends_and_at_the_end(data):
    cfg = TrainConfig(hidden=[8], batch_size=50)  # 10 iterations per epoch
    reports = []
    result = race([cfg], data, iterations=23, callback=reports.append, report_every=6)
    assert [p.iteration for p in reports] == [6, 10, 12, 18, 20, 23]
    assert [len(e) for p in reports for e in p.epochs.values()] == [0, 1, 0, 0, 1, 1]
    assert reports[-1].epochs["Adam lr 0.001"][0]["iteration"] == 23  # the partial last epoch got a test score
    assert reports[-1].epochs["Adam lr 0.001"][0]["test_accuracy"] is not None
    assert reports[-1].statuses == {"Adam lr 0.001": "finished"} and result.iterations == 23
    with pytest.raises(RaceError, match="report_every"):
        race([cfg], data, 5, report_every=0)


def test_merging_race_reports_gives_one_report_of_everything(data):
    reports = []
    configs = optimizer_race_configs(hidden=(8,), batch_size=50)[:2]
    result = race(configs, data, iterations=25, callback=reports.append, report_every=3)
    assert len(reports) > 3
    merged = reports[0]
    for p in reports[1:]:
        merged = merged.merge(p)
    assert merged.iteration == 25 and merged.elapsed == reports[-1].elapsed
    for r in result.racers:
        assert merged.start[r.label] == 0
        assert np.array_equal(merged.losses[r.label], r.losses)
        assert merged.epochs[r.label] == r.epochs and merged.statuses[r.label] == "finished"
    with pytest.raises(ValueError, match="cannot merge"):
        reports[0].merge(reports[2])  # reports[1] is missing in between


def test_a_train_control_pauses_steps_and_stops_a_race(wait_until, data):
    control = TrainControl()
    control.pause()
    reports = []
    out = {}
    configs = optimizer_race_configs(hidden=(8,), batch_size=50)[:2]
    th = threading.Thread(target=lambda: out.setdefault("r", race(configs, data, 10_000, control=control,
                                                                   callback=reports.append, report_every=1)))
    th.start()
    wait_until(lambda: control.waiting)
    time.sleep(0.1)
    assert reports and reports[-1].iteration == 0 and reports[-1].paused  # held before the first iteration
    control.step(4)
    wait_until(lambda: control.waiting and reports[-1].iteration == 4)
    time.sleep(0.05)
    assert reports[-1].iteration == 4 and reports[-1].paused
    control.resume()
    wait_until(lambda: reports[-1].iteration > 20)
    control.stop()
    th.join(5)
    result = out["r"]
    assert result.status == "stopped" and 20 < result.iterations < 10_000
    assert all(r.status == "stopped" and len(r.losses) == result.iterations for r in result.racers)

