"""The one training loop, shared by the command line and the GUI.

It knows nothing of threads or Qt: the caller passes a ``TrainControl`` (safe to
use from any thread) to pause, resume, step, stop or change hyper-parameters,
and a callback that receives ``Progress`` every few iterations.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from engine.functions import to_indices
from engine.network import Network
from engine.optimizers import Optimizer


EXPLODE_FACTOR = 1000  # a loss this many times its first value means the run has blown up, even if still finite


class TrainControl:
    """Pause / resume / step / stop / change settings of a running loop, from any thread."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._paused = False
        self._stop = False
        self._step_budget = 0  # iterations allowed while paused
        self._to_epoch_end = False  # run while paused until the current epoch ends
        self._pending: dict = {}
        self._optimizer: Optimizer | None = None
        self.waiting = False  # true while the loop sits paused

    # ----- caller side -----
    def pause(self) -> None:
        with self._cond:
            self._paused = True
            self._step_budget = 0
            self._to_epoch_end = False
            self._cond.notify_all()

    def resume(self) -> None:
        with self._cond:
            self._paused = False
            self._step_budget = 0
            self._to_epoch_end = False
            self._cond.notify_all()

    def step(self, iterations: int = 1) -> None:
        """Run ``iterations`` more, then (stay) paused."""
        with self._cond:
            self._paused = True
            self._step_budget += max(1, int(iterations))
            self._cond.notify_all()

    def step_epoch(self) -> None:
        """Run to the end of the current epoch, then (stay) paused."""
        with self._cond:
            self._paused = True
            self._to_epoch_end = True
            self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()

    def set_hyperparameters(self, **values) -> None:
        """Queue new values (e.g. ``lr=0.01``); they apply before the next iteration."""
        with self._cond:
            self._pending.update(values)

    def set_optimizer(self, optimizer: Optimizer) -> None:
        """Swap the optimizer itself before the next iteration (its state starts fresh).

        Hyper-parameters queued for the old optimizer are dropped: the new one comes with its own.
        """
        with self._cond:
            self._optimizer = optimizer
            self._pending = {}

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def stopped(self) -> bool:
        return self._stop

    # ----- loop side -----
    def _checkpoint(self, before_wait: Callable[[], None]) -> tuple[bool, dict, Optimizer | None]:
        """Block while paused; returns (go on?, pending hyper-parameters, new optimizer)."""
        with self._cond:
            flushed = False
            while self._paused and not self._stop and self._step_budget == 0 and not self._to_epoch_end:
                if not flushed:
                    self._cond.release()
                    try:
                        before_wait()
                    finally:
                        self._cond.acquire()
                    flushed = True
                    continue
                self.waiting = True
                self._cond.wait(0.2)
            self.waiting = False
            if self._stop:
                return False, {}, None
            if self._paused and self._step_budget > 0:
                self._step_budget -= 1
            pending, self._pending = self._pending, {}
            optimizer, self._optimizer = self._optimizer, None
            return True, pending, optimizer

    def _epoch_ended(self) -> None:
        with self._cond:
            self._to_epoch_end = False


@dataclass
class EpochMetrics:
    epoch: int  # 1-based
    iteration: int  # iterations done when the epoch ended
    train_loss: float
    train_accuracy: float
    test_loss: float | None
    test_accuracy: float | None
    seconds: float  # wall time since training started

    def to_dict(self) -> dict:
        return dict(self.__dict__)


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
        }


@dataclass
class TrainSettings:
    batch_size: int = 100
    epochs: int = 10
    seed: int = 0
    report_every: int = 10  # iterations between callbacks (the GUI further rate-limits)
    eval_train_limit: int | None = 10_000  # train metrics on at most this many samples (None: all, 0: none)

    def __post_init__(self) -> None:
        if int(self.batch_size) < 1:
            raise ValueError(f"batch size must be at least 1, got {self.batch_size}")
        if int(self.epochs) < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        if int(self.report_every) < 1:
            raise ValueError(f"report_every must be at least 1, got {self.report_every}")


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
    and puts back the weights from the start of that epoch.
    """
    settings = settings or TrainSettings()
    control = control or TrainControl()
    n = len(x_train)
    if n == 0:
        raise ValueError("the training set is empty")
    if len(t_train) != n:
        raise ValueError(f"{n} training images but {len(t_train)} labels")
    if not np.all(np.isfinite(x_train)):
        raise ValueError("the training images contain NaN or infinite values")
    t_train = to_indices(t_train)
    batch = min(int(settings.batch_size), n)
    per_epoch = max(1, n // batch)  # a short final batch is dropped so every step has the same size
    total = per_epoch * int(settings.epochs)
    rng = np.random.default_rng(settings.seed)
    losses = np.empty(total, dtype=np.float64)
    epochs: list[EpochMetrics] = []
    reported = 0
    reported_epochs = 0
    it = 0
    active = 0.0  # seconds of running time, pauses excluded
    t_mark = time.perf_counter()
    eval_rng = np.random.default_rng(settings.seed + 1)
    explode_at = math.inf

    def report(paused: bool = False) -> None:
        nonlocal reported, reported_epochs, active, t_mark
        now = time.perf_counter()
        active += now - t_mark
        t_mark = now
        if callback is not None and (it > reported or len(epochs) > reported_epochs or paused):
            epoch_now = min(int(settings.epochs), it // per_epoch + (1 if it % per_epoch else 0)) or 1
            callback(Progress(it, epoch_now, per_epoch, total, losses[reported:it].copy(),
                              epochs[reported_epochs:], active, paused))
        reported, reported_epochs = it, len(epochs)

    waited = False

    def paused_now() -> None:
        nonlocal waited
        report(paused=True)
        waited = True

    def finish(status: str, message: str) -> TrainResult:
        report()
        return TrainResult(status, message, it, losses[:it].copy(), epochs, active)

    def eval_indices(size: int) -> np.ndarray | None:
        limit = settings.eval_train_limit
        if limit is None or size <= limit:
            return None
        return np.sort(eval_rng.choice(size, limit, replace=False))

    x_train = np.asarray(x_train)
    # each batch is gathered into this one buffer: np.take(out=) is ~2x faster than fancy indexing
    # (the network only holds on to its input until the step's backward pass is done)
    x_batch = np.empty((batch,) + x_train.shape[1:], dtype=x_train.dtype)
    for epoch in range(int(settings.epochs)):
        order = rng.permutation(n)
        snapshot = {k: v.copy() for k, v in network.params.items()}
        for b in range(per_epoch):
            go_on, pending, new_opt = control._checkpoint(paused_now)
            if waited:  # time spent paused does not count as training time
                t_mark, waited = time.perf_counter(), False
            if not go_on:
                return finish("stopped", f"stopped by request after {it} iterations")
            if new_opt is not None:
                optimizer = new_opt
            if pending:
                optimizer.set(**pending)
            idx = order[b * batch : (b + 1) * batch]
            np.take(x_train, idx, axis=0, out=x_batch)
            loss = network.gradient(x_batch, t_train[idx])
            if it == 0:
                explode_at = EXPLODE_FACTOR * max(loss, 1.0) if math.isfinite(loss) else math.inf
            if not math.isfinite(loss) or loss > explode_at:
                network.set_params(snapshot)
                lr = getattr(optimizer, "lr", None)
                hint = f" (learning rate {lr:g})" if lr is not None else ""
                return finish(
                    "diverged",
                    f"training diverged at iteration {it + 1}: the loss became {loss:.4g}"
                    f"{'' if not math.isfinite(loss) else f' ({EXPLODE_FACTOR}× its starting value)'}. The learning rate"
                    f"{hint} is probably too large; try a smaller one. The weights from the start of "
                    f"epoch {epoch + 1} were put back.",
                )
            optimizer.update(network.params, network.grads)
            losses[it] = loss
            it += 1
            if it - reported >= settings.report_every:
                report()
        control._epoch_ended()
        tr_loss = tr_acc = float("nan")
        if settings.eval_train_limit != 0:
            sel = eval_indices(n)
            xs, ts = (x_train, t_train) if sel is None else (x_train[sel], t_train[sel])
            tr_loss, tr_acc = network.evaluate(xs, ts)
        te_loss = te_acc = None
        if x_test is not None and len(x_test):
            te_loss, te_acc = network.evaluate(x_test, t_test)
        now = time.perf_counter()
        epochs.append(EpochMetrics(epoch + 1, it, tr_loss, tr_acc, te_loss, te_acc, active + now - t_mark))
        report()
    return finish("finished", f"finished {len(epochs)} epochs ({it} iterations)")
