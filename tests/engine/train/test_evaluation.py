"""evaluate_model against direct counts, on a small network trained for a moment on separable data."""
import math
import threading

import numpy as np
import pytest

from engine.train.evaluation import (EvaluationCancelled, EvaluationError, cell_indices, confusion_matrix, evaluate_model, misclassified,
                               sort_indices)
from engine.nn.network import make_mlp
from engine.nn.optimizers import Adam
from engine.train.loop import TrainSettings, train


def _blobs(n, seed):
    """Ten noisy prototype images: learnable but not perfectly, so there are mistakes to look at."""
    rng = np.random.default_rng(seed)
    protos = np.random.default_rng(123).random((10, 784)).astype(np.float32)
    t = rng.integers(0, 10, n)
    x = np.clip(protos[t] + rng.normal(0, 0.5, (n, 784)), 0, 1).astype(np.float32)
    return x, t


@pytest.fixture(scope="module")
def trained():
    x, t = _blobs(600, 1)
    xt, tt = _blobs(500, 2)
    net = make_mlp([784, 30, 10], seed=0)
    train(net, Adam(lr=0.001), x, t, settings=TrainSettings(batch_size=50, epochs=2, eval_train_limit=0))
    return net, xt, tt


def test_numbers_match_the_engine_and_a_direct_count(trained):
    net, x, t = trained
    ev = evaluate_model(net, x, t, batch_size=64)  # a batch size that does not divide 500
    probs = net.predict(x)
    np.testing.assert_allclose(ev.probabilities, probs, rtol=1e-5, atol=1e-7)
    pred = probs.argmax(axis=1)
    np.testing.assert_array_equal(ev.predictions, pred)
    assert ev.confusion.sum() == len(x)
    for i in range(10):
        for j in range(10):
            assert ev.confusion[i, j] == np.sum((t == i) & (pred == j))
    assert ev.accuracy == pytest.approx(np.mean(pred == t))
    assert 0.2 < ev.accuracy < 1.0  # learned something, still makes mistakes
    loss, acc = net.evaluate(x, t)
    assert ev.accuracy == pytest.approx(acc)
    assert ev.loss == pytest.approx(loss, rel=1e-4)
    for c in range(10):
        assert ev.per_class_accuracy[c] == pytest.approx(np.mean(pred[t == c] == c))


def test_one_hot_labels_give_the_same_result(trained):
    net, x, t = trained
    a = evaluate_model(net, x, t)
    b = evaluate_model(net, x, np.eye(10)[t])
    np.testing.assert_array_equal(a.confusion, b.confusion)


def test_cell_indices_are_exactly_that_cell(trained):
    net, x, t = trained
    ev = evaluate_model(net, x, t)
    total = 0
    for i in range(10):
        for j in range(10):
            idx = cell_indices(ev, i, j)
            assert len(idx) == ev.confusion[i, j]
            assert np.all(t[idx] == i) and np.all(ev.predictions[idx] == j)
            total += len(idx)
    assert total == len(x)
    with pytest.raises(EvaluationError, match="outside 0..9"):
        cell_indices(ev, 10, 0)


def test_misclassified_lists_only_mistakes_sorted_by_confidence(trained):
    net, x, t = trained
    ev = evaluate_model(net, x, t)
    wrong = misclassified(ev)
    assert len(wrong) == len(x) - ev.correct > 0
    confs = []
    for index, true, pred, top in wrong:
        assert true == t[index] != pred == ev.predictions[index]
        assert len(top) == 3 and top[0][0] == pred
        assert [p for _, p in top] == sorted([p for _, p in top], reverse=True)
        assert top[0][1] == pytest.approx(float(ev.probabilities[index].max()))
        confs.append(top[0][1])
    assert confs == sorted(confs, reverse=True)
    by_index = misclassified(ev, sort="index")
    assert [m.index for m in by_index] == sorted(m.index for m in wrong)
    with pytest.raises(EvaluationError, match="unknown sort 'size'"):
        misclassified(ev, sort="size")


def test_misclassified_restricted_to_a_cell(trained):
    net, x, t = trained
    ev = evaluate_model(net, x, t)
    i, j = np.unravel_index(np.argmax(ev.confusion - np.diag(np.diag(ev.confusion))), ev.confusion.shape)
    cell = misclassified(ev, indices=cell_indices(ev, i, j))
    assert len(cell) == ev.confusion[i, j] > 0
    assert all((m.true, m.pred) == (i, j) for m in cell)
    assert len(misclassified(ev, indices=cell_indices(ev, i, i))) == 0  # the diagonal holds no mistakes
    diag = sort_indices(ev, cell_indices(ev, i, i))
    conf = ev.probabilities[diag, i]
    assert np.all(np.diff(conf) <= 0)


def test_bad_input_is_named():
    net = make_mlp([784, 5, 10])
    with pytest.raises(EvaluationError, match="empty"):
        evaluate_model(net, np.zeros((0, 784)), np.zeros(0, int))
    with pytest.raises(EvaluationError, match="3 images but labels of shape"):
        evaluate_model(net, np.zeros((3, 784)), np.zeros(4, int))
    with pytest.raises(EvaluationError, match="labels must lie in 0..9"):
        evaluate_model(net, np.zeros((2, 784)), np.array([0, 12]))


def test_confusion_matrix_small_example():
    cm = confusion_matrix(np.array([0, 0, 1, 2, 2]), np.array([0, 1, 1, 2, 0]), 3)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 1, 0], [1, 0, 1]])


def test_loss_is_the_one_the_network_was_trained_with():
    from engine.nn.network import make_mlp

    rng = np.random.default_rng(5)
    x, t = rng.random((50, 784), dtype=np.float32), rng.integers(0, 10, 50)
    for loss in ("cross-entropy", "sum-of-squares"):
        net = make_mlp([784, 12, 10], loss=loss, seed=2)
        expected, _ = net.evaluate(x, t)
        assert evaluate_model(net, x, t).loss == pytest.approx(expected, rel=1e-4), loss


def test_a_confidently_wrong_network_gets_its_exact_cross_entropy():
    """No 1e-7 floor: the loss is the exact mean -log softmax, far above -log(1e-7) ≈ 16.1."""
    rng = np.random.default_rng(3)
    x = rng.random((300, 784), dtype=np.float32)
    net = make_mlp([784, 10], seed=4)
    net.params["W1"] *= 25  # huge weights: near one-hot, confident predictions
    scores = x.astype(np.float64) @ net.params["W1"].astype(np.float64) + net.params["b1"]
    t = scores.argmin(axis=1)  # …and every one of them wrong
    top = scores.max(axis=1)
    exact = float(np.mean(top + np.log(np.exp(scores - top[:, None]).sum(axis=1)) - scores[np.arange(300), t]))
    assert exact > 2 * -math.log(1e-7)
    ev = evaluate_model(net, x, t, batch_size=64)
    assert ev.accuracy == 0.0
    assert ev.loss == pytest.approx(exact, rel=1e-5)
    assert ev.loss == pytest.approx(net.evaluate(x, t)[0], rel=1e-6)  # batches of 64 vs 1000: float32 scores


def test_a_set_cancel_flag_stops_the_evaluation():
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(EvaluationCancelled):
        evaluate_model(make_mlp([784, 5, 10]), np.zeros((3, 784), np.float32), np.zeros(3, int), cancel=cancel)
