"""Learning-rate schedules: one-cycle as PyTorch's OneCycleLR computes it, and the Stepper applying them."""
from __future__ import annotations

import math

import numpy as np
import pytest

from engine.nn.network import make_mlp
from engine.nn.optimizers import SGD, Adam
from engine.train.config import ConfigError, TrainConfig
from engine.train.schedule import SCHEDULES, cosine_factor, one_cycle_factor, schedule_factor
from engine.train.stepper import Stepper, TrainSettings


def test_one_cycle_warms_up_from_a_25th_to_the_peak_then_anneals_to_a_250000th():
    total = 1000
    factors = [one_cycle_factor(i, total) for i in range(total)]
    assert factors[0] == pytest.approx(1 / 25)
    peak = int(np.argmax(factors))
    assert peak == 299  # OneCycleLR reaches max_lr at step pct_start·total − 1
    assert factors[peak] == pytest.approx(1.0)
    assert factors[-1] == pytest.approx(1 / 25 / 1e4)
    assert np.all(np.diff(factors[:peak + 1]) > 0) and np.all(np.diff(factors[peak:]) < 0)


def test_one_cycle_matches_pytorchs_cosine_formula_halfway_through_each_phase():
    # OneCycleLR: lr = end + (start − end)/2 · (cos(π·pct) + 1), pct the fraction of the phase done
    total = 201
    warm_end, last = 0.3 * total - 1, total - 1
    i = 30  # inside the warm-up
    pct = i / warm_end
    expected = 1.0 + (1 / 25 - 1.0) / 2 * (math.cos(math.pi * pct) + 1)
    assert one_cycle_factor(i, total) == pytest.approx(expected, rel=1e-12)
    i = 150  # inside the annealing
    pct = (i - warm_end) / (last - warm_end)
    expected = 1 / 25 / 1e4 + (1.0 - 1 / 25 / 1e4) / 2 * (math.cos(math.pi * pct) + 1)
    assert one_cycle_factor(i, total) == pytest.approx(expected, rel=1e-12)


def test_cosine_falls_from_one_towards_zero_and_constant_stays_one():
    assert cosine_factor(0, 100) == 1.0
    assert cosine_factor(50, 100) == pytest.approx(0.5)
    assert 0 < cosine_factor(99, 100) < 0.001
    assert schedule_factor("constant")(57, 100) == 1.0
    assert set(SCHEDULES) == {"constant", "one-cycle", "cosine"}


def test_unknown_schedules_are_refused_by_name():
    with pytest.raises(ValueError, match="choose one of constant, one-cycle, cosine"):
        TrainSettings(schedule="triangle")
    with pytest.raises(ConfigError, match="learning-rate schedule 'step'"):
        TrainConfig(schedule="step")


def _data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 784), dtype=np.float32), rng.integers(0, 10, n)


def test_the_stepper_scales_each_sgd_step_by_the_schedule_and_leaves_the_chosen_rate_alone():
    x, t = _data()
    net = make_mlp([784, 5, 10], seed=1)
    opt = SGD(0.5)
    settings = TrainSettings(batch_size=10, epochs=2, schedule="one-cycle")
    stepper = Stepper(net, opt, x, t, settings=settings, evaluate_epochs=False)
    total = stepper.total_iterations
    for i in range(total):
        before = net.params["W2"].copy()
        assert stepper.current_lr == pytest.approx(0.5 * one_cycle_factor(i, total))
        stepper.step()
        step = before - net.params["W2"]
        grad = net.grads["W2"]
        # SGD moved W2 by exactly (lr × factor) × gradient
        np.testing.assert_allclose(step, 0.5 * one_cycle_factor(i, total) * grad, rtol=1e-4, atol=1e-7)
        assert opt.lr == 0.5
    assert stepper.status == "finished"


def test_a_constant_schedule_trains_exactly_as_before_and_one_cycle_differently():
    x, t = _data()
    results = {}
    for schedule in ("constant", "one-cycle"):
        net = make_mlp([784, 5, 10], seed=1)
        stepper = Stepper(net, Adam(0.01), x, t, settings=TrainSettings(batch_size=10, epochs=1, schedule=schedule),
                          evaluate_epochs=False)
        while stepper.running:
            stepper.step()
        results[schedule] = net.params["W1"].copy()
    plain = make_mlp([784, 5, 10], seed=1)
    opt = Adam(0.01)
    order = np.random.default_rng(0).permutation(len(x))
    for b in range(4):
        idx = order[b * 10:(b + 1) * 10]
        plain.gradient(x[idx], t[idx])
        opt.update(plain.params, plain.grads)
    np.testing.assert_array_equal(results["constant"], plain.params["W1"])
    assert not np.allclose(results["one-cycle"], plain.params["W1"])


def test_the_training_description_names_a_schedule_other_than_constant():
    assert "one-cycle" in TrainConfig(schedule="one-cycle").describe_training()
    assert "constant" not in TrainConfig().describe_training()


def test_each_racer_trains_with_its_own_schedule():
    from engine.data.dataset import Dataset
    from engine.train.race import race

    x, t = _data()
    configs = [(s, TrainConfig(hidden=[5], optimizer="sgd", lr=0.5, batch_size=10, schedule=s))
               for s in ("constant", "one-cycle")]
    result = race(configs, Dataset("t", x, t, x[:0], t[:0]), 8, evaluate_every_epoch=False)
    constant, cycled = (r.stepper.losses for r in result.racers)
    assert constant[0] == cycled[0]  # same start, same first batch
    assert not np.allclose(constant[1:], cycled[1:])  # then the one-cycle racer's steps are 25× smaller at first
    assert [r.stepper.lr_factor(0) for r in result.racers] == [1.0, pytest.approx(1 / 25)]


def test_run_titles_and_histories_tell_the_schedule():
    from engine.train.run_names import run_history, unique_titles

    runs = [({"optimizer": "adam", "lr": 0.003, "schedule": s}, "Adam lr 0.003", 100) for s in ("constant", "one-cycle")]
    assert unique_titles(runs) == ["Adam lr 0.003 · lr constant", "Adam lr 0.003 · lr one-cycle"]
    assert any("one-cycle schedule" in line for line in run_history(runs[1][0], "run 2", 100, "finished", None))
    assert not any("schedule" in line for line in run_history(runs[0][0], "run 1", 100, "finished", None))

