"""The descent lab's line examples are plain data, and their notes and marked learning rates hold."""
import numpy as np
import pytest

from engine.labs.descent import (
    BOOK_LR,
    BOOK_T,
    BOOK_W0,
    BOOK_X,
    EXAMPLES,
    least_squares_descent,
    line_descent,
    line_design,
    line_learning_rates,
    squared_error,
)


def test_the_book_example_is_the_books_problem():
    ex = EXAMPLES["book"]
    np.testing.assert_array_equal(line_design(ex.xs), BOOK_X)
    np.testing.assert_array_equal(ex.ts, BOOK_T)
    np.testing.assert_array_equal(ex.start, BOOK_W0)
    assert ex.lr == BOOK_LR
    path = line_descent(ex.xs, ex.ts, ex.start, ex.lr)
    np.testing.assert_array_equal(path.losses, least_squares_descent().losses)
    assert path.stop_iteration == 1174 and "1174" in ex.note
    assert f"{path.loss:.8f}" == "1.35000079" and "1.35000079" in ex.note


@pytest.mark.parametrize("key", sorted(EXAMPLES))
def test_each_examples_marked_rates_crawl_converge_and_diverge(key):
    ex = EXAMPLES[key]
    good = line_descent(ex.xs, ex.ts, ex.start, ex.lr)
    small = line_descent(ex.xs, ex.ts, ex.start, ex.too_small)
    large = line_descent(ex.xs, ex.ts, ex.start, ex.too_large, diverge_steps=400)
    assert good.status == "converged"
    assert len(small.losses) > 3 * len(good.losses)
    assert large.status == "diverged" and len(large.losses) <= 401  # at most diverge_steps steps are shown
    assert large.losses[-1] > 1e6 * large.losses[0]


def test_two_points_start_and_destination_match_the_note():
    ex = EXAMPLES["two-points"]
    X = line_design(ex.xs)
    assert squared_error(X, np.array(ex.ts), np.array(ex.start)) == 36.0 and "36" in ex.note
    np.testing.assert_allclose(line_descent(ex.xs, ex.ts, ex.start, ex.lr).w, [1.0, 4.0], atol=2e-3)


def test_learning_rates_follow_the_points():
    xs = [1.0, 3.0, 5.0, 7.0, 4.0]
    too_small, good, too_large = line_learning_rates(xs)
    lam = np.linalg.eigvalsh(line_design(xs).T @ line_design(xs))
    assert good == pytest.approx(2 / (lam[0] + lam[1]), rel=1e-2)
    assert too_small == pytest.approx(good / 20, rel=1e-2) and too_large > 2 / lam[1] > good
    ts = [1.0, 4.0, 4.0, 8.0, 8.5]
    assert line_descent(xs, ts, (1.0, 1.0), good).status == "converged"
    assert line_descent(xs, ts, (1.0, 1.0), too_large).status == "diverged"
