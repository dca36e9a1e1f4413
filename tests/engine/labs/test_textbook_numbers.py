"""The book's known numbers come out of the engine."""
import numpy as np
import pytest

from engine.labs.descent import least_squares_descent, line_error
from engine.nn.functions import cross_entropy_error, numerical_diff, numerical_gradient, sum_squared_error

BOOK_Y_RIGHT = np.array([0.1, 0.05, 0.6, 0.0, 0.05, 0.1, 0.0, 0.1, 0.0, 0.0])
BOOK_Y_WRONG = np.array([0.1, 0.05, 0.1, 0.0, 0.05, 0.1, 0.0, 0.6, 0.0, 0.0])
BOOK_T = np.array([0, 0, 1, 0, 0, 0, 0, 0, 0, 0])


def test_least_squares_gradient_descent_stops_where_the_book_does():
    result = least_squares_descent()
    assert result.status == "converged"
    assert result.stop_iteration == 1174
    assert round(result.loss, 8) == 1.35000079
    np.testing.assert_allclose(result.w, [1.04986813, 0.0499746], atol=5e-9)


def test_least_squares_descent_approaches_the_closed_form_solution():
    X = np.array([[1, 1], [3, 1], [5, 1], [7, 1]], float)
    exact = np.linalg.lstsq(X, [1, 4, 4, 8], rcond=None)[0]
    np.testing.assert_allclose(least_squares_descent().w, exact, atol=2e-3)


def test_too_large_learning_rate_diverges():
    assert least_squares_descent(lr=0.1, max_iter=10_000).status == "diverged"


def test_line_through_two_points_starts_at_36():
    assert line_error([3, 9], [7, 13], w=3, b=-8) == 36.0
    assert line_error([3, 9], [7, 13], w=1, b=4) == 0.0


@pytest.mark.parametrize(
    "y, t, sse, ce",
    [(BOOK_Y_RIGHT, BOOK_T, 0.0975, 0.51), (BOOK_Y_WRONG, BOOK_T, 0.5975, 2.30)],
)
def test_book_loss_examples(y, t, sse, ce):
    assert sum_squared_error(y, t) == pytest.approx(sse)
    assert cross_entropy_error(y, t) == pytest.approx(ce, abs=0.005)
    # labels as an index give the same as one-hot
    assert cross_entropy_error(y, 2) == pytest.approx(cross_entropy_error(y, t))
    assert sum_squared_error(y, 2) == pytest.approx(sse)


def test_numerical_derivative_of_the_books_function():
    f = lambda x: 0.01 * x**2 + 0.1 * x  # noqa: E731
    assert numerical_diff(f, 5.0) == pytest.approx(0.2, abs=1e-9)
    assert numerical_diff(f, 10.0) == pytest.approx(0.3, abs=1e-9)


def test_numerical_partials_of_x0_squared_plus_x1_squared():
    x = np.array([3.0, 4.0])
    np.testing.assert_allclose(numerical_gradient(lambda v: np.sum(v**2), x), [6.0, 8.0], rtol=1e-7)
    np.testing.assert_array_equal(x, [3.0, 4.0])  # restored after perturbation
