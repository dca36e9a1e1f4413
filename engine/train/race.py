"""Several networks trained side by side on the same batches, to compare optimizers or learning rates fairly.

Every racer starts from identical weights (same seed) and sees the same mini-batches in the same
order; the only difference is its own configuration. Each racer is a ``Stepper``, the same one
``train()`` drives, so a race of one is exactly a training run. They take turns on one thread, one
iteration each, so their curves grow together (like the book's ch06 ``optimizer_compare_mnist.py``).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from engine.data.dataset import Dataset
from engine.errors import DigitLabError
from engine import registry
from engine.train.config import TrainConfig
from engine.train.control import TrainControl
from engine.train.runs import RunRecord
from engine.train.stepper import Stepper, Stopwatch, TrainSettings, iterations_per_epoch
from engine.util import as_cancel_check

BOOK_OPTIMIZERS = (("sgd", 0.01), ("momentum", 0.01), ("adagrad", 0.01), ("adam", 0.001))  # ch06 settings


class RaceError(DigitLabError):
    """A race that cannot start (no racers, duplicate names, no training data...)."""


def racer_label(optimizer: str, lr: float) -> str:
    """'Adam lr 0.001': what tells the racers of one race apart (they share batch size and seed)."""
    return f"{registry.label(registry.OPTIMIZER_CHOICES, optimizer)} lr {lr:g}"


def optimizer_race_configs(hidden: Sequence[int] = (100,), batch_size: int = 128, seed: int = 0,
                           optimizers: Sequence[tuple[str, float]] = BOOK_OPTIMIZERS,
                           activation: str = "relu") -> list[tuple[str, TrainConfig]]:
    """The book's optimizer comparison: (label, config) per optimizer, everything else equal.

    The book uses ``hidden=(100, 100, 100, 100)``; the lighter default (100,) finishes in seconds.
    """
    return [(racer_label(name, lr), TrainConfig(hidden=list(hidden), activation=activation, optimizer=name, lr=lr,
                                                batch_size=batch_size, seed=seed))
            for name, lr in optimizers]


def learning_rate_race_configs(base: TrainConfig, rates: Sequence[float]) -> list[tuple[str, TrainConfig]]:
    """One racer per learning rate, everything else as in ``base``."""
    return [(racer_label(base.optimizer, lr), dataclasses.replace(base, lr=float(lr))) for lr in rates]


@dataclass
class Racer:
    """One contestant: its label, configuration and the ``Stepper`` that trains its network."""

    label: str
    config: TrainConfig
    stepper: Stepper

    @property
    def network(self):
        return self.stepper.network

    @property
    def optimizer(self):
        return self.stepper.optimizer

    @property
    def losses(self) -> np.ndarray:
        """Per-iteration losses so far (a view of the stepper's buffer)."""
        return self.stepper.losses

    @property
    def epochs(self) -> list[dict]:
        """Finished epochs as ``EpochMetrics.to_dict()`` entries, as in a RunRecord."""
        return [e.to_dict() for e in self.stepper.epochs]

    @property
    def status(self) -> str:
        return self.stepper.status  # running -> finished | stopped | diverged

    @property
    def message(self) -> str:
        return f"{self.label}: {self.stepper.message}" if self.stepper.message else ""

    def to_record(self, race_settings: dict) -> RunRecord:
        settings = {**self.config.to_dict(), **race_settings, "label": self.label}
        return RunRecord(self.label, settings, self.losses.copy(), self.epochs, self.status)


@dataclass
class RaceProgress:
    """New losses of every racer since the previous report (``start`` is the 0-based iteration they begin at)."""

    iteration: int  # iterations done so far
    total: int
    start: dict  # label -> first iteration index of ``losses[label]``
    losses: dict  # label -> np.ndarray of new losses
    statuses: dict  # label -> status
    epochs: dict  # label -> list of new epoch dicts (EpochMetrics.to_dict())
    elapsed: float  # seconds, excluding time spent paused
    paused: bool = False

    def merge(self, later: "RaceProgress") -> "RaceProgress":
        """One report equivalent to this one followed by ``later`` (per racer: losses and epochs joined).

        Scalars and statuses come from ``later``; ValueError if a racer's new losses do not directly follow.
        """
        start, losses, epochs = dict(self.start), dict(self.losses), dict(self.epochs)
        for label, new in later.losses.items():
            if label not in losses:
                start[label], losses[label] = later.start[label], new
                continue
            end = start[label] + len(losses[label])
            if later.start[label] != end:
                raise ValueError(f"{label}: a report ending at iteration {end} cannot merge one starting at "
                                 f"{later.start[label]}")
            losses[label] = np.concatenate([losses[label], new])
        for label, new in later.epochs.items():
            epochs[label] = [*epochs.get(label, []), *new]
        return dataclasses.replace(later, start=start, losses=losses, epochs=epochs)


@dataclass
class RaceResult:
    racers: list
    iterations: int
    status: str  # "finished" or "stopped"
    elapsed: float
    settings: dict

    def records(self) -> list[RunRecord]:
        return [r.to_record(self.settings) for r in self.racers]


def _normalise(configs) -> list[tuple[str, TrainConfig]]:
    out = []
    for item in configs:
        if isinstance(item, TrainConfig):
            out.append((racer_label(item.optimizer, item.lr), item))
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


class _Gate:
    """What ``control`` asks before each race iteration: wait while a TrainControl is paused, stop when asked.

    A TrainControl's step(n) and step_epoch() work as in training; its hyper-parameter changes and
    optimizer swaps are dropped (every racer keeps its own configuration). Anything else is a cancel
    check (None, a threading.Event or a callable).
    """

    def __init__(self, control) -> None:
        self.control = control if isinstance(control, TrainControl) else None
        self._cancelled = None if self.control is not None else as_cancel_check(control)

    def go_on(self, before_wait: Callable[[], None]) -> bool:
        if self.control is not None:
            return self.control._checkpoint(before_wait)[0]
        return not self._cancelled()

    def stopped(self) -> bool:
        """True once a stop was asked for (checked by the racers between evaluation chunks)."""
        return self.control.stopped if self.control is not None else self._cancelled()

    def epoch_ended(self) -> None:
        if self.control is not None:
            self.control._epoch_ended()


def race(configs, dataset: Dataset, iterations: int = 1000, control=None,
         callback: Callable[[RaceProgress], None] | None = None, seed: int | None = None,
         batch_size: int | None = None, report_every: int = 10, evaluate_every_epoch: bool = True,
         eval_train_limit: int | None = 10_000) -> RaceResult:
    """Train one network per configuration for ``iterations`` steps on identical batches; returns a ``RaceResult``.

    ``configs``: TrainConfig objects or (label, TrainConfig) pairs. ``seed`` and ``batch_size``
    default to the first config's and apply to all racers (same initial weights, same data order).
    ``control``: a TrainControl, threading.Event or callable; stopping ends the race early (status
    "stopped"); a TrainControl's pause holds it. ``callback`` receives ``RaceProgress`` every
    ``report_every`` iterations, when a TrainControl pauses it, and once at the end. A racer whose loss
    becomes NaN/inf or explodes drops out ("diverged", its weights from the start of that epoch put
    back); the others go on. With ``evaluate_every_epoch`` each epoch, and a partial last one, gets the
    same ``EpochMetrics`` as in ``train()`` (train metrics on at most ``eval_train_limit`` samples).
    """
    entries = _normalise(configs)
    dataset.require_train()
    iterations = int(iterations)
    if iterations < 1:
        raise RaceError(f"a race needs at least 1 iteration, got {iterations}")
    if int(report_every) < 1:
        raise RaceError(f"report_every must be at least 1, got {report_every}")
    seed = int(entries[0][1].seed if seed is None else seed)
    batch = int(entries[0][1].batch_size if batch_size is None else batch_size)
    if batch < 1:
        raise RaceError(f"batch size must be at least 1, got {batch}")
    batch = min(batch, len(dataset.x_train))
    per_epoch = iterations_per_epoch(len(dataset.x_train), batch)
    settings = TrainSettings(batch_size=batch, epochs=-(-iterations // per_epoch), seed=seed,
                             report_every=int(report_every), eval_train_limit=eval_train_limit)
    clock = Stopwatch()  # shared by every racer: their epoch times count from the start of the race
    gate = _Gate(control)
    racers = []
    for label, cfg in entries:
        cfg = dataclasses.replace(cfg, seed=seed, batch_size=batch)
        stepper = Stepper(cfg.make_network(), cfg.make_optimizer(), dataset.x_train, dataset.t_train,
                          dataset.x_test, dataset.t_test, dataclasses.replace(settings, schedule=cfg.schedule),
                          iterations, evaluate_every_epoch, clock.elapsed,
                          gate.stopped)
        racers.append(Racer(label, cfg, stepper))
    clock.restart()  # building the networks and checking the data is not racing time
    run = _Race(racers, iterations, clock, callback)
    status = run.run(gate, int(report_every))
    race_settings = {"race": [label for label, _ in entries], "race_iterations": iterations, "dataset": dataset.name}
    return RaceResult(racers, run.iteration, status, clock.elapsed(), race_settings)


class _Race:
    """The interleaving: one iteration of every running racer per race iteration, and the reports."""

    def __init__(self, racers: list[Racer], iterations: int, clock: Stopwatch, callback) -> None:
        self.racers, self.total, self.clock, self.callback = racers, iterations, clock, callback
        self.iteration = 0
        self._statuses: dict = {}  # as last reported

    def run(self, gate: _Gate, report_every: int) -> str:
        def before_wait() -> None:
            self.clock.hold()  # time spent paused does not count
            self.report(paused=True)

        steppers = [r.stepper for r in self.racers]
        status = "finished"
        while self.iteration < self.total and any(s.running for s in steppers):
            go_on = gate.go_on(before_wait)
            self.clock.go()
            if not go_on:
                status = "stopped"
                break
            epoch_ended = False
            for s in steppers:
                if s.running:
                    s.step()
                    epoch_ended = epoch_ended or s.epoch_ended
            self.iteration += 1
            if any(s.status == "stopped" for s in steppers):  # a stop noticed during an epoch's evaluation
                status = "stopped"
                break
            if epoch_ended:
                gate.epoch_ended()
            if epoch_ended or self.iteration % report_every == 0:
                self.report()
        if status == "stopped":
            for s in steppers:
                s.stop()
        self.report()
        self.clock.hold()
        return status

    def report(self, paused: bool = False) -> None:
        """Hands the news to the callback: new losses, epochs or statuses, or that the race now waits."""
        news = {r.label: r.stepper.take_unreported() for r in self.racers}
        statuses = {r.label: r.status for r in self.racers}
        fresh = any(len(n[1]) or n[2] for n in news.values()) or statuses != self._statuses
        self._statuses = statuses
        if self.callback is None or not (fresh or paused):
            return
        self.callback(RaceProgress(
            self.iteration, self.total,
            start={label: n[0] for label, n in news.items()},
            losses={label: n[1] for label, n in news.items()},
            statuses=statuses,
            epochs={label: [e.to_dict() for e in n[2]] for label, n in news.items()},
            elapsed=self.clock.elapsed(), paused=paused))
