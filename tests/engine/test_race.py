"""race(): identical starting weights and batches for every racer; identical configs give identical curves."""
import dataclasses
import threading

import numpy as np
import pytest

from engine.config import TrainConfig
from engine.dataset import Dataset
from engine.race import (RaceError, learning_rate_race_configs, optimizer_race_configs, race)
from engine.training import TrainSettings, train


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    protos = np.random.default_rng(1).random((10, 784)).astype(np.float32)
    t = rng.integers(0, 10, 700)
    x = np.clip(protos[t] + rng.normal(0, 0.4, (700, 784)), 0, 1).astype(np.float32)
    return Dataset("blobs", x[:500], t[:500], x[500:], t[500:])


def test_one_curve_per_optimizer_from_identical_weights(data):
    configs = optimizer_race_configs(hidden=(20,), batch_size=50)
    assert [label for label, _ in configs] == ["sgd lr=0.01", "momentum lr=0.01", "adagrad lr=0.01",
                                               "adam lr=0.001"]
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
    """Same seed -> same data order and weights as engine.training.train (bit for bit)."""
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
    result = race(configs, data, iterations=1000, control=stop, callback=callback, report_interval=0)
    assert result.status == "stopped" and 12 <= result.iterations < 1000
    for r in result.racers:
        assert got[r.label] == r.losses and r.status == "stopped"


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
