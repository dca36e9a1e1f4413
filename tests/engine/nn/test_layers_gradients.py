"""Every layer's backward against central differences (float64)."""
import numpy as np
import pytest

from engine.nn.functions import numerical_gradient
from engine.nn.layers import Affine, ReLU, Sigmoid, SoftmaxWithLoss, SoftmaxWithSquaredError, Tanh

rng = np.random.default_rng(42)


def _check_layer_dx(layer, x):
    """Loss = Σ (layer(x) * R) for a fixed random R, so dL/dout = R."""
    out = layer.forward(x.copy(), train=True)
    R = rng.standard_normal(out.shape)
    dx = layer.backward(R.copy())
    num = numerical_gradient(lambda v: float(np.sum(layer.forward(v.copy(), train=False) * R)), x.copy())
    np.testing.assert_allclose(dx, num, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("cls", [Sigmoid, ReLU, Tanh])
def test_activation_backward(cls):
    x = rng.standard_normal((4, 7))
    x[np.abs(x) < 1e-2] = 0.5  # keep ReLU away from its kink
    _check_layer_dx(cls(), x)


def test_affine_backward_input_and_params():
    W, b = rng.standard_normal((6, 3)), rng.standard_normal(3)
    layer = Affine(W, b)
    x = rng.standard_normal((5, 6))
    _check_layer_dx(layer, x)
    R = rng.standard_normal((5, 3))
    layer.forward(x, train=True)
    layer.backward(R.copy())
    for key in ("W", "b"):
        f = lambda _: float(np.sum(layer.forward(x, train=False) * R))  # noqa: E731
        np.testing.assert_allclose(layer.grads[key], numerical_gradient(f, layer.params[key]), rtol=1e-6)


def test_affine_flattens_image_input_and_restores_its_shape():
    layer = Affine(rng.standard_normal((12, 2)), np.zeros(2))
    x = rng.standard_normal((3, 3, 2, 2))
    assert layer.forward(x, train=True).shape == (3, 2)
    assert layer.backward(np.ones((3, 2))).shape == (3, 3, 2, 2)


@pytest.mark.parametrize("cls", [SoftmaxWithLoss, SoftmaxWithSquaredError])
@pytest.mark.parametrize("one_hot", [False, True])
def test_loss_layer_backward(cls, one_hot):
    x = rng.standard_normal((4, 10))
    t = np.array([3, 0, 9, 3])
    if one_hot:
        t = np.eye(10)[t]
    layer = cls()
    layer.forward(x.copy(), t)
    dx = layer.backward()
    num = numerical_gradient(lambda v: cls().forward(v.copy(), t), x.copy())
    np.testing.assert_allclose(dx, num, rtol=1e-5, atol=1e-9)


def test_softmax_with_loss_backward_is_y_minus_t_over_n():
    x = rng.standard_normal((3, 10))
    t = np.array([1, 2, 3])
    layer = SoftmaxWithLoss()
    layer.forward(x, t)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    y = e / e.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(layer.backward(), (y - np.eye(10)[t]) / 3)


def test_softmax_cross_entropy_stays_finite_for_huge_scores():
    layer = SoftmaxWithLoss()
    loss = layer.forward(np.array([[1e4, -1e4, 0.0]]), np.array([1]))
    assert loss == pytest.approx(2e4)  # the true -log softmax, although exp(-2e4) underflows to 0
    assert np.all(np.isfinite(layer.backward()))


def test_sigmoid_does_not_overflow():
    out = Sigmoid().forward(np.array([-1000.0, 0.0, 1000.0]))
    np.testing.assert_allclose(out, [0.0, 0.5, 1.0])
