"""One network's training, one mini-batch at a time: the step that ``train()`` and ``race()`` share.

A ``Stepper`` owns everything about a single run that does not depend on who drives it (after the
book's ``Trainer.train_step``): the data order, the batch buffer, divergence detection, the per-epoch
evaluation, the per-iteration losses and which of them have been reported. The drivers only decide
when to step, when to report and what pausing or stopping means.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from engine.nn.functions import to_indices
from engine.nn.network import Network
from engine.nn.optimizers import Optimizer
from engine.train.allocator import keep_freed_memory
from engine.train.schedule import schedule_factor

EXPLODE_FACTOR = 1000  # a loss this many times its first value means the run has blown up, even if still finite


EVAL_CHUNK = 1000  # a stop request is noticed between evaluation chunks: ~0.1 s of a CNN's forward pass


def counted(n: int, word: str) -> str:
    """``n`` and ``word``, plural unless n is 1: "1 iteration", "4,433 iterations", "0 epochs"."""
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _all_finite(x: np.ndarray) -> bool:
    """Whether every value is finite, without a temporary the size of ``x``."""
    x = np.asarray(x)
    if x.dtype.kind not in "fc":
        return True
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.sum(x)):
            return True  # a NaN or an infinity anywhere makes the sum NaN or infinite
    # the sum was not finite: a NaN or infinity, or finite values whose sum overflowed; look, a block of rows at a time
    return all(np.isfinite(x[i:i + 1024]).all() for i in range(0, len(x), 1024))


def iterations_per_epoch(n_samples: int, batch_size: int) -> int:
    """Mini-batch steps in one epoch: a short final batch is dropped, so every step has the same size.

    A batch larger than the data set is cut to the data set: one step per epoch.
    """
    n, b = int(n_samples), int(batch_size)
    if n < 1:
        raise ValueError(f"an epoch needs at least one sample, got {n_samples}")
    if b < 1:
        raise ValueError(f"batch size must be at least 1, got {batch_size}")
    return max(1, n // b)


@dataclass
class TrainSettings:
    batch_size: int = 100
    epochs: int = 10
    seed: int = 0
    report_every: int = 10  # iterations between callbacks (the GUI further rate-limits)
    eval_train_limit: int | None = 10_000  # train metrics on at most this many samples (None: all, 0: none)
    schedule: str = "constant"  # learning-rate schedule (engine.train.schedule): the optimizer's lr is its peak

    def __post_init__(self) -> None:
        schedule_factor(self.schedule)  # ValueError for an unknown name
        if int(self.batch_size) < 1:
            raise ValueError(f"batch size must be at least 1, got {self.batch_size}")
        if int(self.epochs) < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        if int(self.report_every) < 1:
            raise ValueError(f"report_every must be at least 1, got {self.report_every}")


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


class Stopwatch:
    """Running time with the pauses left out: ``hold()`` when the run waits, ``go()`` when it goes on."""

    def __init__(self) -> None:
        self._total = 0.0
        self._since: float | None = time.perf_counter()

    def restart(self) -> None:
        self._total, self._since = 0.0, time.perf_counter()

    def hold(self) -> None:
        if self._since is not None:
            self._total += time.perf_counter() - self._since
            self._since = None

    def go(self) -> None:
        if self._since is None:
            self._since = time.perf_counter()

    def elapsed(self) -> float:
        return self._total + (time.perf_counter() - self._since if self._since is not None else 0.0)


class Stepper:
    """Trains ``network`` with ``optimizer`` one iteration per ``step()``; same seed and data, same run bit for bit.

    Each epoch visits a fresh permutation of the training set drawn from ``np.random.default_rng(seed)``.
    A loss that is NaN/inf, or has grown past ``EXPLODE_FACTOR`` times its first value, ends the run with
    status "diverged" and puts back the weights from the start of that epoch. An epoch ends after
    ``iterations_per_epoch`` steps, or at ``iterations`` (the last, possibly partial, epoch); it is then
    evaluated into an ``EpochMetrics`` unless ``evaluate_epochs`` is false.

    ``status``: "running", then "finished", "stopped" (``stop()``) or "diverged". ``optimizer`` may be
    replaced between steps. ``clock`` gives the seconds recorded in ``EpochMetrics`` (default: since creation).
    ``cancel`` (a callable returning True) is checked between evaluation batches: a stop requested while a
    large test set is evaluated ends the run ("stopped", without that epoch's metrics) within one batch.
    """

    def __init__(self, network: Network, optimizer: Optimizer, x_train: np.ndarray, t_train: np.ndarray,
                 x_test: np.ndarray | None = None, t_test: np.ndarray | None = None,
                 settings: TrainSettings | None = None, iterations: int | None = None,
                 evaluate_epochs: bool = True, clock: Callable[[], float] | None = None,
                 cancel: Callable[[], bool] | None = None) -> None:
        settings = settings or TrainSettings()
        keep_freed_memory()  # each step reuses the memory the last one freed: see engine.train.allocator
        x_train = np.asarray(x_train)
        n = len(x_train)
        if n == 0:
            raise ValueError("the training set is empty")
        if len(t_train) != n:
            raise ValueError(f"{n} training images but {len(t_train)} labels")
        if not _all_finite(x_train):
            raise ValueError("the training images contain NaN or infinite values")
        self.network, self.optimizer, self.settings = network, optimizer, settings
        self._x, self._t = x_train, to_indices(t_train)
        self._x_test, self._t_test = x_test, t_test
        self.batch_size = min(int(settings.batch_size), n)
        self.iterations_per_epoch = iterations_per_epoch(n, self.batch_size)
        planned = self.iterations_per_epoch * int(settings.epochs)
        self.total_iterations = planned if iterations is None else max(0, min(int(iterations), planned))
        self.evaluate_epochs = bool(evaluate_epochs)
        self._lr_factor = schedule_factor(settings.schedule)
        self._clock = clock or Stopwatch().elapsed
        self._cancel = cancel or (lambda: False)
        self._rng = np.random.default_rng(settings.seed)
        self._eval_rng = np.random.default_rng(settings.seed + 1)
        self._order = np.arange(0)
        self._snapshot: dict[str, np.ndarray] = {}
        # each batch is gathered into this one buffer (the network only holds on to its input until the step's
        # backward pass is done); np.take(mode="clip") writes straight into it: indices are always in range
        self._x_batch = np.empty((self.batch_size,) + x_train.shape[1:], dtype=x_train.dtype)
        self._losses = np.empty(self.total_iterations, dtype=np.float64)
        self.iteration = 0  # iterations done
        self.epochs: list[EpochMetrics] = []
        self.epoch_ended = False  # true right after the step that ended an epoch
        self.status = "running" if self.total_iterations else "finished"
        self.message = ""
        self._explode_at = math.inf
        self._reported = 0  # iterations already handed out by take_unreported()
        self._reported_epochs = 0

    # ----- state -----
    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def losses(self) -> np.ndarray:
        """The losses of the iterations done so far (a view: copy it to keep it)."""
        return self._losses[:self.iteration]

    @property
    def epoch(self) -> int:
        """The 1-based epoch the last iteration belonged to (1 before the first)."""
        return max(1, -(-self.iteration // self.iterations_per_epoch))

    @property
    def unreported_iterations(self) -> int:
        return self.iteration - self._reported

    def take_unreported(self) -> tuple[int, np.ndarray, list[EpochMetrics]]:
        """(index of the first new loss, copies of the losses and the epochs not yet reported); marks them reported."""
        start, epochs = self._reported, self.epochs[self._reported_epochs:]
        losses = self._losses[start:self.iteration].copy()
        self._reported, self._reported_epochs = self.iteration, len(self.epochs)
        return start, losses, epochs

    def stop(self) -> None:
        """End a running run early, with status "stopped"."""
        if self.running:
            self.status = "stopped"
            self.message = f"stopped by request after {counted(self.iteration, 'iteration')}"

    # ----- one iteration -----
    def step(self) -> None:
        """One mini-batch: gradient, divergence check, update; evaluates the epoch this step ends."""
        if not self.running:
            raise RuntimeError(f"cannot step a run that has {self.status}")
        per_epoch, it = self.iterations_per_epoch, self.iteration
        b = it % per_epoch
        if b == 0:
            self._order = self._rng.permutation(len(self._x))
            self._snapshot = {k: v.copy() for k, v in self.network.params.items()}
        idx = self._order[b * self.batch_size:(b + 1) * self.batch_size]
        self._x.take(idx, axis=0, out=self._x_batch, mode="clip")
        loss = self.network.gradient(self._x_batch, self._t[idx])
        if it == 0:
            self._explode_at = EXPLODE_FACTOR * max(loss, 1.0) if math.isfinite(loss) else math.inf
        if not math.isfinite(loss) or loss > self._explode_at:
            self._diverged(loss)
            return
        self._update(it)
        self._losses[it] = loss
        self.iteration = it = it + 1
        self.epoch_ended = it % per_epoch == 0 or it == self.total_iterations
        if self.epoch_ended and self.evaluate_epochs:
            metrics = self._evaluate()
            if metrics is None:
                self.stop()
                return
            self.epochs.append(metrics)
        if it == self.total_iterations:
            self.status = "finished"
            self.message = f"finished {counted(self.epoch, 'epoch')} ({counted(it, 'iteration')})"

    def lr_factor(self, iteration: int | None = None) -> float:
        """The schedule's multiplier of the optimizer's lr at 0-based ``iteration`` (default: the next one)."""
        return self._lr_factor(self.iteration if iteration is None else iteration, self.total_iterations)

    @property
    def current_lr(self) -> float | None:
        """The learning rate the next update uses: the optimizer's lr times the schedule's factor."""
        lr = getattr(self.optimizer, "lr", None)
        return None if lr is None else lr * self.lr_factor()

    def _update(self, it: int) -> None:
        factor = self.lr_factor(it)
        if factor == 1.0:
            self.optimizer.update(self.network.params, self.network.grads)
            return
        base = self.optimizer.lr  # the chosen rate stays the optimizer's: the schedule scales it for this update
        self.optimizer.lr = base * factor
        try:
            self.optimizer.update(self.network.params, self.network.grads)
        finally:
            self.optimizer.lr = base

    def _diverged(self, loss: float) -> None:
        self.network.set_params(self._snapshot)
        self.epoch_ended = False
        lr = getattr(self.optimizer, "lr", None)
        rate = f"The learning rate, {lr:g}," if lr is not None else "The learning rate"
        self.status = "diverged"
        self.message = (
            f"training diverged after {counted(self.iteration, 'iteration')}: the loss of "
            f"iteration {self.iteration + 1:,} was {loss:.4g}"
            f"{'' if not math.isfinite(loss) else f' ({EXPLODE_FACTOR}× its starting value)'}. {rate} is "
            f"probably too large; try a smaller one. The weights from the start of "
            f"epoch {self.iteration // self.iterations_per_epoch + 1} were put back."
        )

    # ----- per-epoch evaluation -----
    def _evaluate(self) -> EpochMetrics | None:
        """This epoch's metrics, or None when ``cancel`` asked to stop part-way."""
        tr_loss = tr_acc = float("nan")
        if self.settings.eval_train_limit != 0:
            measured = self._measure(self._x, self._t, self._eval_indices(len(self._x)))
            if measured is None:
                return None
            tr_loss, tr_acc = measured
        te_loss = te_acc = None
        if self._x_test is not None and len(self._x_test):
            measured = self._measure(self._x_test, self._t_test)
            if measured is None:
                return None
            te_loss, te_acc = measured
        return EpochMetrics(self.epoch, self.iteration, tr_loss, tr_acc, te_loss, te_acc, self._clock())

    def _measure(self, x: np.ndarray, t: np.ndarray, sel: np.ndarray | None = None) -> tuple[float, float] | None:
        """(mean loss, accuracy) of x[sel] (default: all of x) in chunks of EVAL_CHUNK, checking ``cancel`` between
        them; None if cancelled. A chunk of a selection is gathered when needed: the subset is never copied whole."""
        n, loss, correct = len(x) if sel is None else len(sel), 0.0, 0
        for i in range(0, n, EVAL_CHUNK):
            if self._cancel():
                return None
            if sel is None:
                xs, ts = x[i:i + EVAL_CHUNK], t[i:i + EVAL_CHUNK]
            else:
                xs, ts = x[sel[i:i + EVAL_CHUNK]], t[sel[i:i + EVAL_CHUNK]]
            chunk_loss, chunk_acc = self.network.evaluate(xs, ts)
            loss += chunk_loss * len(xs)
            correct += round(chunk_acc * len(xs))  # back to a count, so the accuracy is exact
        return loss / n, correct / n

    def _eval_indices(self, size: int) -> np.ndarray | None:
        limit = self.settings.eval_train_limit
        if limit is None or size <= limit:
            return None
        return np.sort(self._eval_rng.choice(size, limit, replace=False))
