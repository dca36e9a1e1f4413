"""What a trained network gets right and wrong on a labelled set: accuracy, confusion matrix, its mistakes.

Everything is computed once, in batches, by ``evaluate_model``; the views (confusion matrix,
mistake gallery) only read the resulting ``Evaluation``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from engine.errors import DigitLabError
from engine.nn.functions import softmax, to_indices
from engine.nn.network import Network
from engine.util import as_cancel_check

SORT_KEYS = ("confidence", "index")


class EvaluationError(DigitLabError):
    """Inputs that cannot be evaluated (empty set, mismatched labels, unknown sort key...)."""


@dataclass
class Evaluation:
    labels: np.ndarray  # (N,) int64 true classes
    predictions: np.ndarray  # (N,) int64 predicted classes (argmax)
    probabilities: np.ndarray  # (N, C) float32 softmax outputs
    loss: float  # mean cross-entropy of the probabilities (whatever loss the network trained with)
    confusion: np.ndarray  # (C, C) int64: rows = true class, columns = predicted class

    @property
    def size(self) -> int:
        return int(len(self.labels))

    @property
    def num_classes(self) -> int:
        return int(self.confusion.shape[0])

    @property
    def correct(self) -> int:
        return int(np.trace(self.confusion))

    @property
    def accuracy(self) -> float:
        return self.correct / self.size

    @property
    def class_counts(self) -> np.ndarray:
        return self.confusion.sum(axis=1)

    @property
    def per_class_accuracy(self) -> np.ndarray:
        """Recall of each true class; NaN for a class with no examples."""
        counts = self.class_counts
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(counts > 0, np.diag(self.confusion) / np.maximum(counts, 1), np.nan)

    def cell_indices(self, true: int, pred: int) -> np.ndarray:
        return cell_indices(self, true, pred)


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int = 10) -> np.ndarray:
    """Counts of (true, predicted) pairs; rows are true classes."""
    labels = np.asarray(labels, dtype=np.int64)
    predictions = np.asarray(predictions, dtype=np.int64)
    flat = np.bincount(labels * num_classes + predictions, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


def evaluate_model(network: Network, x: np.ndarray, t: np.ndarray, batch_size: int = 1000,
                   cancel=None) -> Evaluation:
    """Predict every image of ``x`` (batch by batch) and compare with the labels ``t`` (indices or one-hot).

    ``cancel`` (optional: a threading.Event or a callable returning True) stops early with
    ``EvaluationCancelled``, so a background task can be abandoned when the network changes.
    """
    x = np.asarray(x)
    if len(x) == 0:
        raise EvaluationError("cannot evaluate on an empty set of images")
    labels = to_indices(np.asarray(t))
    if labels.shape != (len(x),):
        raise EvaluationError(f"{len(x)} images but labels of shape {np.shape(t)}; expected ({len(x)},)")
    if int(batch_size) < 1:
        raise EvaluationError(f"batch size must be at least 1, got {batch_size}")
    num_classes = network.num_classes or 10
    if labels.min() < 0 or labels.max() >= num_classes:
        raise EvaluationError(f"labels must lie in 0..{num_classes - 1}, found {labels.min()}..{labels.max()}")
    cancelled = as_cancel_check(cancel)
    batch_size = int(batch_size)
    scores = []
    for start in range(0, len(x), batch_size):
        if cancelled():
            raise EvaluationCancelled("evaluation cancelled")
        scores.append(network.scores(x[start:start + batch_size]))
    scores = np.concatenate(scores)
    probs = softmax(scores).astype(np.float32, copy=False)
    predictions = probs.argmax(axis=1).astype(np.int64)
    # the loss the network was trained with, by the same function, so it matches training's test loss
    loss = network.loss_of_scores(scores, labels)
    return Evaluation(labels, predictions, probs, loss, confusion_matrix(labels, predictions, num_classes))


class EvaluationCancelled(Exception):
    """Raised inside evaluate_model when its cancel flag is set."""


def cell_indices(evaluation: Evaluation, true: int, pred: int) -> np.ndarray:
    """Indices of the images whose true class is ``true`` and predicted class ``pred`` (one confusion cell)."""
    c = evaluation.num_classes
    for name, value in (("true", true), ("pred", pred)):
        if not 0 <= int(value) < c:
            raise EvaluationError(f"{name} class {value} is outside 0..{c - 1}")
    return np.flatnonzero((evaluation.labels == int(true)) & (evaluation.predictions == int(pred)))


class Mistake(NamedTuple):
    index: int  # position in the evaluated set
    true: int
    pred: int
    top: tuple  # ((class, probability), ...) best first, three entries


def describe_entry(evaluation: Evaluation, index: int, k: int = 3) -> Mistake:
    """One image's true class, prediction and top-k probabilities (for any image, right or wrong)."""
    p = evaluation.probabilities[index]
    order = np.argsort(-p, kind="stable")[:k]
    top = tuple((int(c), float(p[c])) for c in order)
    return Mistake(int(index), int(evaluation.labels[index]), int(evaluation.predictions[index]), top)


def misclassified(evaluation: Evaluation, sort: str = "confidence", indices: np.ndarray | None = None) -> list:
    """The wrongly classified images as ``(index, true, pred, top-3 (class, prob))``.

    ``sort="confidence"``: most confidently wrong first (highest probability of the wrong class);
    ``sort="index"``: in dataset order. ``indices`` restricts the result to those images (e.g. one cell).
    """
    if sort not in SORT_KEYS:
        raise EvaluationError(f"unknown sort {sort!r}; choose one of {', '.join(SORT_KEYS)}")
    wrong = np.flatnonzero(evaluation.labels != evaluation.predictions)
    if indices is not None:
        wrong = np.intersect1d(wrong, np.asarray(indices, dtype=np.int64))
    return [describe_entry(evaluation, i) for i in sort_indices(evaluation, wrong, sort)]


def sort_indices(evaluation: Evaluation, indices: np.ndarray, sort: str = "confidence") -> np.ndarray:
    """``indices`` in dataset order, or by the confidence of their prediction, highest first."""
    if sort not in SORT_KEYS:
        raise EvaluationError(f"unknown sort {sort!r}; choose one of {', '.join(SORT_KEYS)}")
    indices = np.sort(np.asarray(indices, dtype=np.int64))
    if sort == "index" or len(indices) == 0:
        return indices
    conf = evaluation.probabilities[indices, evaluation.predictions[indices]]
    return indices[np.argsort(-conf, kind="stable")]
