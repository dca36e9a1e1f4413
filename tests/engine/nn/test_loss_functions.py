"""The losses computed from a network's scores (logits): exact, stable, and the ones the loss layers use."""
import math

import numpy as np
import pytest

from engine.nn.functions import cross_entropy_error, softmax, softmax_cross_entropy, softmax_squared_error
from engine.nn.layers import SoftmaxWithLoss, SoftmaxWithSquaredError


def _exact_cross_entropy(scores, t):
    s = np.asarray(scores, dtype=np.float64)
    return float(np.mean([math.log(sum(math.exp(v - row.max()) for v in row)) + row.max() - row[k]
                          for row, k in zip(s, t)]))


def test_cross_entropy_from_scores_matches_a_direct_computation():
    rng = np.random.default_rng(0)
    scores = rng.normal(0, 3, (20, 10)).astype(np.float32)
    t = rng.integers(0, 10, 20)
    assert softmax_cross_entropy(scores, t) == pytest.approx(_exact_cross_entropy(scores, t), rel=1e-12)
    assert softmax_cross_entropy(scores, np.eye(10)[t]) == softmax_cross_entropy(scores, t)  # one-hot labels
    assert softmax_cross_entropy(scores[3], t[3]) == pytest.approx(_exact_cross_entropy(scores[3:4], t[3:4]))
    # on moderate scores the book's formula on probabilities agrees to its 1e-7
    mild = scores / 3
    assert cross_entropy_error(softmax(mild.astype(np.float64)), t) == pytest.approx(
        softmax_cross_entropy(mild, t), abs=1e-5)


def test_cross_entropy_stays_exact_and_finite_for_huge_scores():
    scores = np.array([[1000.0, 0.0, -1000.0], [0.0, 1e4, 0.0]])
    t = np.array([2, 0])
    assert softmax_cross_entropy(scores, t) == pytest.approx((2000.0 + 1e4) / 2)  # no overflow, no 16.1 cap


def test_squared_error_from_scores_squares_the_probabilities():
    rng = np.random.default_rng(1)
    scores = rng.normal(0, 2, (7, 10))
    t = rng.integers(0, 10, 7)
    y = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    expected = 0.5 * np.sum((y - np.eye(10)[t]) ** 2) / 7
    assert softmax_squared_error(scores, t) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("layer, function", [(SoftmaxWithLoss, softmax_cross_entropy),
                                             (SoftmaxWithSquaredError, softmax_squared_error)])
@pytest.mark.parametrize("dtype, rel", [(np.float32, 1e-6), (np.float64, 1e-13)])
def test_the_loss_layers_return_the_functions_loss(layer, function, dtype, rel):
    """Training's loss is the evaluation's, computed in the scores' precision (evaluation's is float64)."""
    rng = np.random.default_rng(2)
    for scale in (0.01, 5.0, 300.0):  # nearly uniform, typical, and probabilities that underflow to 0
        scores = rng.normal(0, scale, (16, 10)).astype(dtype)
        t = rng.integers(0, 10, 16)
        assert layer().forward(scores.copy(), t) == pytest.approx(function(scores, t), rel=rel)
