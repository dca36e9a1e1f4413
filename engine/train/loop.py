"""The training loop, shared by the command line and the GUI: one ``Stepper`` driven by a ``TrainControl``.

It knows nothing of threads or Qt: the caller passes a ``TrainControl`` (safe to
use from any thread) to pause, resume, step, stop or change hyper-parameters,
and a callback that receives ``Progress`` every ``TrainSettings.report_every`` iterations (and after
every iteration when the control's pace makes the loop wait between them).

Settings changed while the loop runs are recorded as ``changes``: one dict per changed value,
``{"iteration": i, "name": "lr", "from": 0.001, "to": 0.05}``, where ``i`` is the 1-based number of
the first iteration trained with the new value (an optimizer swap is ``"name": "optimizer"`` with the
optimizers' names, followed by the rates it changed).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from engine.nn.network import Network
from engine.nn.optimizers import Optimizer
from engine.train.control import TrainControl
from engine.train.stepper import (EXPLODE_FACTOR, EpochMetrics, Stepper, Stopwatch, TrainSettings, counted,
                                  iterations_per_epoch)

__all__ = ["EXPLODE_FACTOR", "EpochMetrics", "Progress", "Stepper", "TrainControl", "TrainResult", "TrainSettings",
           "counted", "iterations_per_epoch", "train"]


@dataclass
class Progress:
    """What the callback receives: new per-iteration losses since the last report, and finished epochs."""

    iteration: int  # iterations done so far
    epoch: int  # 1-based epoch the last iteration belonged to
    iterations_per_epoch: int
    total_iterations: int
    losses: np.ndarray  # the losses of the iterations since the previous report
    epochs: list[EpochMetrics]  # epochs finished since the previous report
    elapsed: float  # seconds, excluding time spent paused
    paused: bool = False
    changes: list[dict] = field(default_factory=list)  # settings changed since the previous report (see above)

    def merge(self, later: "Progress") -> "Progress":
        """One report equivalent to this one followed by ``later`` (losses and epochs joined, the rest from ``later``).

        Lets a receiver coalesce frequent reports; ValueError if ``later`` does not directly follow this one.
        """
        if later.iteration - len(later.losses) != self.iteration:
            raise ValueError(f"a report ending at iteration {self.iteration} cannot merge one whose losses start at "
                             f"iteration {later.iteration - len(later.losses)}")
        losses = np.concatenate([self.losses, later.losses]) if len(self.losses) else later.losses
        return dataclasses.replace(later, losses=losses, epochs=[*self.epochs, *later.epochs],
                                   changes=[*self.changes, *later.changes])

    @property
    def iterations_per_second(self) -> float:
        return self.iteration / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def seconds_left(self) -> float | None:
        rate = self.iterations_per_second
        return (self.total_iterations - self.iteration) / rate if rate > 0 else None


@dataclass
class TrainResult:
    status: str  # "finished", "stopped" or "diverged"
    message: str
    iterations: int
    losses: np.ndarray
    epochs: list[EpochMetrics] = field(default_factory=list)
    elapsed: float = 0.0
    changes: list[dict] = field(default_factory=list)  # every setting changed during the run (see above)

    @property
    def final(self) -> EpochMetrics | None:
        return self.epochs[-1] if self.epochs else None

    def to_dict(self) -> dict:
        return {
            "status": self.status,
            "message": self.message,
            "iterations": self.iterations,
            "elapsed": self.elapsed,
            "epochs": [e.to_dict() for e in self.epochs],
            "changes": [dict(c) for c in self.changes],
        }


def train(
    network: Network,
    optimizer: Optimizer,
    x_train: np.ndarray,
    t_train: np.ndarray,
    x_test: np.ndarray | None = None,
    t_test: np.ndarray | None = None,
    settings: TrainSettings | None = None,
    control: TrainControl | None = None,
    callback: Callable[[Progress], None] | None = None,
) -> TrainResult:
    """Mini-batch training; same seed and data give the same loss curve, bit for bit.

    Each epoch visits a fresh permutation of the training set drawn from
    ``np.random.default_rng(seed)``. A loss that is NaN/inf, or has grown past
    ``EXPLODE_FACTOR`` times its first value, stops the run with status "diverged"
    and puts back the weights from the start of that epoch (see ``Stepper``).
    ``callback`` receives ``Progress`` every ``settings.report_every`` iterations, at each
    epoch's end, when the loop pauses, before each wait for the control's pace and once at the end.
    """
    settings = settings or TrainSettings()
    control = control or TrainControl()
    clock = Stopwatch()  # running time, pauses excluded
    stepper = Stepper(network, optimizer, x_train, t_train, x_test, t_test, settings, clock=clock.elapsed,
                      cancel=lambda: control.stopped)
    clock.restart()  # the data checks above are not training time
    report_every = int(settings.report_every)

    changes: list[dict] = []  # every change so far
    unreported_changes: list[dict] = []

    def report(paused: bool = False) -> None:
        _, losses, epochs = stepper.take_unreported()
        new_changes = list(unreported_changes)
        unreported_changes.clear()
        if callback is not None and (len(losses) or epochs or paused or new_changes):
            callback(Progress(stepper.iteration, stepper.epoch, stepper.iterations_per_epoch,
                              stepper.total_iterations, losses, epochs, clock.elapsed(), paused, new_changes))

    def before_wait() -> None:
        clock.hold()  # time spent paused does not count as training time
        report(paused=True)

    def before_pace() -> None:
        if stepper.unreported_iterations:
            report()  # a paced run shows every step

    def change(name: str, old, new) -> None:
        if old != new:
            entry = {"iteration": stepper.iteration + 1, "name": name, "from": old, "to": new}
            changes.append(entry)
            unreported_changes.append(entry)

    while stepper.running:
        go_on, pending, new_optimizer = control._checkpoint(before_wait, before_pace)
        clock.go()
        if not go_on:
            stepper.stop()
            break
        if new_optimizer is not None:
            old = stepper.optimizer
            stepper.optimizer = new_optimizer
            change("optimizer", old.name, new_optimizer.name)
            change("lr", _rate(old), _rate(new_optimizer))
        if pending:
            before = _rate(stepper.optimizer)
            stepper.optimizer.set(**pending)
            change("lr", before, _rate(stepper.optimizer))
        stepper.step()
        if stepper.epoch_ended:
            control._epoch_ended()
            report()
        elif stepper.unreported_iterations >= report_every:
            report()
    report()
    return TrainResult(stepper.status, stepper.message, stepper.iteration, stepper.losses.copy(), stepper.epochs,
                       clock.elapsed(), changes)


def _rate(optimizer: Optimizer) -> float | None:
    lr = getattr(optimizer, "lr", None)
    return None if lr is None else float(lr)
