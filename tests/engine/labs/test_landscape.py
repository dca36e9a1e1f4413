"""Loss surfaces for the landscape lab: gradients match central differences, optimizers behave as the book says."""
import numpy as np
import pytest

from engine.nn.functions import numerical_gradient, sigmoid
from engine.labs.landscape import (
    LANDSCAPE_OPTIMIZERS,
    SURFACES,
    LandscapeError,
    compare_optimizers,
    get_surface,
    optimizer_path,
    surface_grid,
)
from engine.nn.optimizers import SGD


@pytest.mark.parametrize("key", sorted(SURFACES))
def test_gradient_matches_central_differences(key):
    s = SURFACES[key]
    rng = np.random.default_rng(1)
    for _ in range(5):
        p = np.array([rng.uniform(*s.x_range), rng.uniform(*s.y_range)])
        num = numerical_gradient(lambda q: s.at(q), p.copy(), h=1e-6)
        np.testing.assert_allclose(s.grad(p), num, rtol=1e-5, atol=1e-8)


def test_neuron_surface_is_the_squared_error_of_one_sigmoid_neuron():
    s = get_surface("neuron")
    w, b = 0.7, -1.3
    y = sigmoid(np.array([w * 1.0 + b]))[0]
    assert s.at([w, b]) == pytest.approx(0.5 * (y - 0.5) ** 2)
    assert s.at([1.2, -1.2]) == pytest.approx(0.0)  # σ(0) = 0.5 hits the target on the whole line w + b = 0


def test_grid_has_x_along_the_first_axis():
    s = get_surface("bowl")
    xs, ys, z = surface_grid(s, n=21)
    assert z.shape == (21, 21)
    assert z[3, 7] == pytest.approx(xs[3] ** 2 / 20 + ys[7] ** 2)
    with pytest.raises(LandscapeError, match="at least 2"):
        surface_grid(s, n=1)


def test_all_five_optimizers_reduce_the_loss_on_the_books_bowl():
    s = get_surface("bowl")
    assert s.start == (-7.0, 2.0)
    paths = compare_optimizers(s)
    assert tuple(paths) == LANDSCAPE_OPTIMIZERS
    for name, path in paths.items():
        assert path.steps == 30, name
        assert path.values[0] == pytest.approx(49 / 20 + 4)
        assert path.final_value < 0.2 * path.values[0], name
        np.testing.assert_allclose(path.values, [s.at(p) for p in path.points])


def test_sgd_path_is_plain_gradient_descent():
    s = get_surface("bowl")
    path = optimizer_path(s, SGD(lr=0.5), (-7.0, 2.0), 3)
    p = np.array([-7.0, 2.0])
    for i in range(1, 4):
        p = p - 0.5 * s.grad(p)
        np.testing.assert_allclose(path.points[i], p)


def test_too_large_a_step_diverges_and_stops():
    path = optimizer_path(get_surface("bowl"), SGD(lr=1.5), (-7.0, 2.0), 500)
    assert path.status == "diverged"
    assert path.steps < 500
    assert np.all(np.isfinite(path.points))


def test_vanishing_gradient_stops_the_path():
    path = optimizer_path(get_surface("bowl"), SGD(lr=1.0), (0.0, 0.0), 10)
    assert path.status == "flat"
    assert path.steps == 0


def test_bad_inputs_have_clear_errors():
    s = get_surface("saddle")
    with pytest.raises(LandscapeError, match="unknown surface 'nope'"):
        get_surface("nope")
    with pytest.raises(LandscapeError, match="two finite numbers"):
        optimizer_path(s, SGD(), (1.0, np.nan), 5)
    with pytest.raises(LandscapeError, match="steps"):
        optimizer_path(s, SGD(), (1.0, 1.0), -1)
    with pytest.raises(LandscapeError, match="scale"):
        compare_optimizers(s, lr_scale=0)
