"""Several networks trained side by side on the same batches, to compare optimizers or learning rates fairly.

Every racer starts from identical weights (same seed) and sees the same mini-batches in the same
order; the only difference is its own configuration. They take turns on one thread, one iteration
each, so their curves grow together (like the book's ch06 ``optimizer_compare_mnist.py``).
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from engine.config import TrainConfig
from engine.dataset import Dataset
from engine.functions import to_indices
from engine.network import Network
from engine.optimizers import Optimizer
from engine.runs import RunRecord
from engine.training import EXPLODE_FACTOR

BOOK_OPTIMIZERS = (("sgd", 0.01), ("momentum", 0.01), ("adagrad", 0.01), ("adam", 0.001))  # ch06 settings


class RaceError(ValueError):
    """A race that cannot start (no racers, duplicate names, no training data...)."""


def optimizer_race_configs(hidden: Sequence[int] = (100,), batch_size: int = 128, seed: int = 0,
                           optimizers: Sequence[tuple[str, float]] = BOOK_OPTIMIZERS,
                           activation: str = "relu") -> list[tuple[str, TrainConfig]]:
    """The book's optimizer comparison: (label, config) per optimizer, everything else equal.

    The book uses ``hidden=(100, 100, 100, 100)``; the lighter default (100,) finishes in seconds.
    """
    return [(f"{name} lr={lr:g}", TrainConfig(hidden=list(hidden), activation=activation, optimizer=name, lr=lr,
                                              batch_size=batch_size, seed=seed))
            for name, lr in optimizers]


def learning_rate_race_configs(base: TrainConfig, rates: Sequence[float]) -> list[tuple[str, TrainConfig]]:
    """One racer per learning rate, everything else as in ``base``."""
    return [(f"{base.optimizer} lr={lr:g}", dataclasses.replace(base, lr=float(lr))) for lr in rates]


@dataclass
class Racer:
    """One contestant: its network, optimizer and what happened to it so far."""

    label: str
    config: TrainConfig
    network: Network
    optimizer: Optimizer
    losses: list = field(default_factory=list)
    epochs: list = field(default_factory=list)  # dicts like EpochMetrics.to_dict()
    status: str = "running"  # running -> finished | stopped | diverged
    message: str = ""
    explode_at: float = math.inf

    def to_record(self, race_settings: dict) -> RunRecord:
        settings = {**self.config.to_dict(), **race_settings, "label": self.label}
        return RunRecord(self.label, settings, np.asarray(self.losses, dtype=np.float64), self.epochs,
                         self.status)


@dataclass
class RaceProgress:
    """New losses of every racer since the previous report (``start`` is the 0-based iteration they begin at)."""

    iteration: int  # iterations done so far
    total: int
    start: dict  # label -> first iteration index of ``losses[label]``
    losses: dict  # label -> np.ndarray of new losses
    statuses: dict  # label -> status
    epochs: dict  # label -> list of new epoch dicts
    elapsed: float


@dataclass
class RaceResult:
    racers: list
    iterations: int
    status: str  # "finished" or "stopped"
    elapsed: float
    settings: dict

    def records(self) -> list[RunRecord]:
        return [r.to_record(self.settings) for r in self.racers]

    def by_label(self, label: str) -> Racer:
        for r in self.racers:
            if r.label == label:
                return r
        raise KeyError(label)


def _normalise(configs) -> list[tuple[str, TrainConfig]]:
    out = []
    for item in configs:
        if isinstance(item, TrainConfig):
            out.append((f"{item.optimizer} lr={item.lr:g}", item))
        elif isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[1], TrainConfig):
            out.append((str(item[0]), item[1]))
        else:
            raise RaceError(f"a racer must be a TrainConfig or a (label, TrainConfig) pair, got {item!r}")
    if not out:
        raise RaceError("a race needs at least one configuration")
    labels = [label for label, _ in out]
    dupes = sorted({label for label in labels if labels.count(label) > 1})
    if dupes:
        raise RaceError(f"racer names must differ; repeated: {', '.join(dupes)}")
    return out


def _should_stop(control) -> bool:
    if control is None:
        return False
    if hasattr(control, "stopped"):
        return bool(control.stopped)
    if hasattr(control, "is_set"):
        return bool(control.is_set())
    return bool(control())


def race(configs, dataset: Dataset, iterations: int = 1000, control=None,
         callback: Callable[[RaceProgress], None] | None = None, seed: int | None = None,
         batch_size: int | None = None, report_interval: float = 1 / 30, evaluate_every_epoch: bool = True) -> RaceResult:
    """Train one network per configuration for ``iterations`` steps on identical batches; returns a ``RaceResult``.

    ``configs``: TrainConfig objects or (label, TrainConfig) pairs. ``seed`` and ``batch_size``
    default to the first config's and apply to all racers (same initial weights, same data order).
    ``control``: a TrainControl, threading.Event or callable; stopping ends the race early (status
    "stopped"); a TrainControl's pause holds it. ``callback`` receives ``RaceProgress`` at most once
    per ``report_interval`` seconds and once at the end. A racer whose loss becomes NaN/inf or explodes
    drops out ("diverged"); the others go on.
    """
    entries = _normalise(configs)
    dataset.require_train()
    iterations = int(iterations)
    if iterations < 1:
        raise RaceError(f"a race needs at least 1 iteration, got {iterations}")
    seed = int(entries[0][1].seed if seed is None else seed)
    batch = int(entries[0][1].batch_size if batch_size is None else batch_size)
    if batch < 1:
        raise RaceError(f"batch size must be at least 1, got {batch}")
    x, t = dataset.x_train, to_indices(dataset.t_train)
    n = len(x)
    batch = min(batch, n)
    per_epoch = max(1, n // batch)
    racers = []
    for label, cfg in entries:
        cfg = dataclasses.replace(cfg, seed=seed, batch_size=batch)
        racers.append(Racer(label, cfg, cfg.make_network(), cfg.make_optimizer()))
    settings = {"race": [label for label, _ in entries], "race_iterations": iterations, "dataset": dataset.name}
    rng = np.random.default_rng(seed)  # one data order for everyone
    order = rng.permutation(n)
    reported = {r.label: 0 for r in racers}
    reported_epochs = {r.label: 0 for r in racers}
    t0 = time.perf_counter()
    last_report = -math.inf

    def report(it: int) -> None:
        nonlocal last_report
        last_report = time.perf_counter()
        if callback is None:
            return
        new = {r.label: np.asarray(r.losses[reported[r.label]:], dtype=np.float64) for r in racers}
        start = dict(reported)
        epochs = {r.label: r.epochs[reported_epochs[r.label]:] for r in racers}
        for r in racers:
            reported[r.label] = len(r.losses)
            reported_epochs[r.label] = len(r.epochs)
        callback(RaceProgress(it, iterations, start, new, {r.label: r.status for r in racers}, epochs,
                              last_report - t0))

    def evaluate(it: int) -> None:
        for r in racers:
            if r.status != "running":
                continue
            entry = {"epoch": len(r.epochs) + 1, "iteration": it, "train_loss": float(np.mean(r.losses[-per_epoch:])),
                     "train_accuracy": None, "test_loss": None, "test_accuracy": None,
                     "seconds": time.perf_counter() - t0}
            if dataset.x_test is not None and len(dataset.x_test):
                entry["test_loss"], entry["test_accuracy"] = r.network.evaluate(dataset.x_test, dataset.t_test)
            r.epochs.append(entry)

    status = "finished"
    it = 0
    while it < iterations:
        while getattr(control, "paused", False) and not _should_stop(control):
            time.sleep(0.02)
        if _should_stop(control):
            status = "stopped"
            break
        b = it % per_epoch
        if b == 0 and it > 0:
            order = rng.permutation(n)
        idx = order[b * batch:(b + 1) * batch]
        xb, tb = x[idx], t[idx]
        for r in racers:
            if r.status != "running":
                continue
            loss = r.network.gradient(xb, tb)
            if it == 0 and math.isfinite(loss):
                r.explode_at = EXPLODE_FACTOR * max(loss, 1.0)
            if not math.isfinite(loss) or loss > r.explode_at:
                r.status = "diverged"
                r.message = (f"{r.label} diverged at iteration {it + 1} (loss {loss:.4g}); "
                             "its learning rate is probably too large")
                continue
            r.optimizer.update(r.network.params, r.network.grads)
            r.losses.append(loss)
        it += 1
        if evaluate_every_epoch and it % per_epoch == 0:
            evaluate(it)
        if time.perf_counter() - last_report >= report_interval:
            report(it)
        if all(r.status != "running" for r in racers):
            break
    if evaluate_every_epoch and it % per_epoch and status == "finished":
        evaluate(it)  # the partial last epoch still gets a test score
    for r in racers:
        if r.status == "running":
            r.status = status
            r.message = f"{status} after {len(r.losses)} iterations"
    report(it)
    return RaceResult(racers, it, status, time.perf_counter() - t0, settings)
