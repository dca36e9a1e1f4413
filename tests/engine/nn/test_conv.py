"""Convolution, pooling and dropout layers: forward against loop references, backward against central differences."""
import numpy as np
import pytest

from engine.nn.conv import Convolution, ConvError, Dropout, Pooling
from engine.nn.functions import numerical_gradient
from engine.train.gradcheck import check_gradients
from engine.nn.network import LAYER_BUILDERS, PARAMETRIC, build_network

rng = np.random.default_rng(7)

STRIDE_PAD = [(1, 0), (1, 1), (2, 0), (2, 1), (3, 2)]


def windows(x, size, stride, pad):
    """Every (image, row, column, window over all channels) of zero-padded ``x``, one output position at a time."""
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))  # the book pads with zeros
    oh, ow = (h + 2 * pad - size) // stride + 1, (w + 2 * pad - size) // stride + 1
    for a in range(n):
        for i in range(oh):
            for j in range(ow):
                yield a, i, j, xp[a, :, i * stride : i * stride + size, j * stride : j * stride + size]


def conv_reference(x, W, b, stride, pad):
    """out[n, f, i, j] = Σ window · W[f] + b[f]."""
    k = W.shape[2]
    oh, ow = (x.shape[2] + 2 * pad - k) // stride + 1, (x.shape[3] + 2 * pad - k) // stride + 1
    out = np.zeros((x.shape[0], W.shape[0], oh, ow))
    for a, i, j, window in windows(x, k, stride, pad):
        out[a, :, i, j] = np.sum(window[None] * W, axis=(1, 2, 3)) + b
    return out


def pool_reference(x, size, stride, pad):
    """out[n, c, i, j] = the largest value in the window of channel c."""
    oh, ow = (x.shape[2] + 2 * pad - size) // stride + 1, (x.shape[3] + 2 * pad - size) // stride + 1
    out = np.zeros((x.shape[0], x.shape[1], oh, ow))
    for a, i, j, window in windows(x, size, stride, pad):
        out[a, :, i, j] = window.max(axis=(1, 2))
    return out


def check_dx(layer, x, rtol=1e-5):
    """Loss = Σ layer(x)·R for a fixed random R, so dL/dout = R."""
    out = layer.forward(x.copy(), train=True)
    R = rng.standard_normal(out.shape)
    dx = layer.backward(R.copy())
    num = numerical_gradient(lambda v: float(np.sum(layer.forward(v.copy()) * R)), x.copy())
    np.testing.assert_allclose(dx, num, rtol=rtol, atol=1e-8)
    return R


def distinct_values(shape):
    """Values at least 0.1 apart, so no max-pool window has a tie within ±h."""
    return rng.permutation(int(np.prod(shape))).reshape(shape) * 0.1 - 1.05  # never 0: no tie with padding


# ----- convolution -----


@pytest.mark.parametrize("stride,pad", STRIDE_PAD)
def test_conv_forward_matches_loop_reference(stride, pad):
    x = rng.standard_normal((2, 3, 7, 8))
    W, b = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    layer = Convolution(W, b, stride, pad)
    out = layer.forward(x)
    expected = conv_reference(x, W, b, stride, pad)
    assert out.shape == expected.shape == (2,) + layer.output_shape((3, 7, 8))
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-12)


def test_conv_forward_float32_stays_float32_and_accepts_its_own_output_layout():
    W1, W2 = rng.standard_normal((5, 1, 3, 3)).astype(np.float32), rng.standard_normal((2, 5, 3, 3)).astype(np.float32)
    b1, b2 = np.zeros(5, np.float32), rng.standard_normal(2).astype(np.float32)
    x = rng.random((3, 1, 9, 9), dtype=np.float32)
    first, second = Convolution(W1, b1, 1, 1), Convolution(W2, b2, 2, 0)
    hidden = first.forward(x)
    out = second.forward(hidden)  # hidden is stored channel-major: a non-contiguous view
    assert out.dtype == np.float32
    expected = conv_reference(conv_reference(x.astype(float), W1, b1, 1, 1), W2, b2, 2, 0)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("stride,pad", STRIDE_PAD)
def test_conv_backward_matches_numerical_gradient(stride, pad):
    x = rng.standard_normal((2, 2, 7, 6))
    layer = Convolution(rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3), stride, pad)
    R = check_dx(layer, x)
    layer.forward(x, train=True)
    layer.backward(R.copy())
    for key in ("W", "b"):
        f = lambda _: float(np.sum(layer.forward(x) * R))  # noqa: E731
        np.testing.assert_allclose(layer.grads[key], numerical_gradient(f, layer.params[key]), rtol=1e-6, atol=1e-9)


def test_conv_backward_accepts_flat_gradient_from_an_affine_layer():
    layer = Convolution(rng.standard_normal((2, 1, 3, 3)), np.zeros(2))
    x = rng.standard_normal((2, 1, 5, 5))
    out = layer.forward(x, train=True)
    R = rng.standard_normal(out.shape)
    dx_flat = layer.backward(R.reshape(2, -1)).copy()
    layer.forward(x, train=True)
    np.testing.assert_allclose(dx_flat, layer.backward(R))


def test_inference_forward_does_not_clobber_the_training_cache():
    W, b = rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3)
    layer, fresh = Convolution(W.copy(), b.copy(), 1, 1), Convolution(W.copy(), b.copy(), 1, 1)
    x, other = rng.standard_normal((2, 2, 5, 5)), rng.standard_normal((4, 2, 6, 6))
    R = rng.standard_normal((2, 3, 5, 5))
    layer.forward(x, train=True)
    layer.forward(other)  # e.g. a prediction from the GUI thread between forward and backward
    dx = layer.backward(R.copy()).copy()
    fresh.forward(x, train=True)
    np.testing.assert_allclose(dx, fresh.backward(R.copy()))
    np.testing.assert_allclose(layer.grads["W"], fresh.grads["W"])


@pytest.mark.parametrize("make", [lambda: Pooling(2, 2), lambda: Pooling(3, 1, 1), lambda: Dropout(0.5)])
def test_other_layers_keep_their_training_cache_across_an_inference_forward(make):
    layer, fresh = make(), make()
    x, other = distinct_values((2, 2, 6, 6)), rng.standard_normal((3, 2, 4, 4))
    out = layer.forward(x.copy(), train=True)
    fresh.forward(x.copy(), train=True)
    R = rng.standard_normal(out.shape)
    layer.forward(other)
    np.testing.assert_array_equal(layer.backward(R.copy()), fresh.backward(R.copy()))


def test_first_layer_skips_dx():
    spec = {"input_shape": [1, 6, 6], "layers": [
        {"type": "conv", "filters": 2, "channels": 1, "size": 3, "stride": 1, "pad": 0},
        {"type": "affine", "in": 32, "out": 3}]}
    net = build_network(spec, seed=1, dtype=np.float64)
    assert net.layers[0].need_dx is False
    x = rng.random((2, 36))
    net.gradient(x, np.array([0, 2]))
    assert set(net.grads) == {"W1", "b1", "W2", "b2"}
    layer = net.layers[0]
    layer.forward(x.reshape(2, 1, 6, 6), train=True)
    assert layer.backward(np.ones((2, 2, 4, 4))) is None
    assert layer.grads["W"].shape == (2, 1, 3, 3)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Convolution(np.zeros((2, 1, 3)), np.zeros(2)), "(filters, channels, k, k)"),
        (lambda: Convolution(np.zeros((2, 1, 3, 3)), np.zeros(3)), "biases must have shape (2,)"),
        (lambda: Convolution(np.zeros((2, 1, 3, 3)), np.zeros(2), stride=0), "stride must be an integer ≥ 1"),
        (lambda: Convolution(np.zeros((2, 1, 3, 3)), np.zeros(2)).forward(np.zeros((1, 3, 5, 5))),
         "expects input (N, 1, H, W)"),
        (lambda: Convolution(np.zeros((2, 1, 7, 7)), np.zeros(2)).output_shape((1, 5, 5)), "does not fit an input of 5×5"),
        (lambda: Pooling(2, 2).output_shape((3, 1, 1)), "does not fit"),
        (lambda: Dropout(1.0), "ratio must be in [0, 1)"),
    ],
)
def test_bad_settings_and_shapes_raise_conv_error(make, message):
    with pytest.raises(ConvError, match=None) as info:
        make()
    assert isinstance(info.value, ValueError)
    assert message in str(info.value)


# ----- pooling -----


@pytest.mark.parametrize("size,stride,pad", [(2, 2, 0), (3, 2, 0), (2, 1, 0), (2, 2, 1), (3, 3, 0)])
def test_pool_forward_matches_loop_reference(size, stride, pad):
    x = rng.standard_normal((2, 3, 7, 8))
    layer = Pooling(size, stride, pad)
    expected = pool_reference(x, size, stride, pad)
    np.testing.assert_allclose(layer.forward(x), expected)
    np.testing.assert_allclose(layer.forward(x, train=True), expected)
    assert expected.shape[1:] == layer.output_shape((3, 7, 8))


@pytest.mark.parametrize("size,stride,pad", [(2, 2, 0), (3, 2, 0), (2, 1, 0), (2, 2, 1), (3, 3, 0)])
@pytest.mark.parametrize("channel_major", [False, True])
def test_pool_backward_matches_numerical_gradient(size, stride, pad, channel_major):
    x = distinct_values((2, 3, 7, 6))
    if channel_major:  # the layout a convolution hands out
        x = np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    check_dx(Pooling(size, stride, pad), x)


def test_pool_ties_send_the_gradient_to_the_first_maximum_like_the_books_argmax():
    layer = Pooling(2, 2)
    layer.forward(np.ones((1, 1, 2, 4)), train=True)
    dx = layer.backward(np.array([[[[3.0, 5.0]]]]))
    np.testing.assert_array_equal(dx, [[[[3, 0, 5, 0], [0, 0, 0, 0]]]])


# ----- dropout -----


def test_dropout_inference_scales_by_one_minus_ratio():
    x = rng.standard_normal((4, 6))
    np.testing.assert_allclose(Dropout(0.3).forward(x), x * 0.7)
    np.testing.assert_allclose(Dropout(0.0).forward(x), x)


def test_dropout_training_masks_reproducibly_and_backward_uses_the_mask():
    x = rng.standard_normal((50, 40)) + 5.0  # never exactly zero
    a, b = Dropout(0.5, np.random.default_rng(3)), Dropout(0.5, np.random.default_rng(3))
    out = a.forward(x, train=True)
    np.testing.assert_array_equal(out, b.forward(x, train=True))
    kept = out != 0
    assert 0.4 < kept.mean() < 0.6
    np.testing.assert_allclose(out[kept], x[kept])
    dout = rng.standard_normal(x.shape)
    np.testing.assert_allclose(a.backward(dout), dout * kept)


def test_dropout_backward_matches_numerical_gradient_for_a_fixed_mask():
    layer = Dropout(0.4)
    x = rng.standard_normal((3, 5))
    R = rng.standard_normal((3, 5))

    def f(v):
        layer.rng = np.random.default_rng(11)  # the same mask on every call
        return float(np.sum(layer.forward(v.copy(), train=True) * R))

    num = numerical_gradient(f, x.copy())
    layer.rng = np.random.default_rng(11)
    layer.forward(x.copy(), train=True)
    np.testing.assert_allclose(layer.backward(R.copy()), num, rtol=1e-6, atol=1e-10)


def test_network_builder_seeds_dropout_deterministically():
    spec = {"input_shape": [6], "layers": [{"type": "dropout", "ratio": 0.5}, {"type": "affine", "in": 6, "out": 2}]}
    x = np.ones((20, 6))
    outs = [build_network(spec, seed=5, dtype=np.float64).layers[0].forward(x, train=True) for _ in range(2)]
    np.testing.assert_array_equal(outs[0], outs[1])
    other = build_network(spec, seed=6, dtype=np.float64).layers[0].forward(x, train=True)
    assert not np.array_equal(outs[0], other)


# ----- inside networks -----


def test_layers_are_registered_with_the_network_builder():
    assert {"conv", "pool", "dropout"} <= set(LAYER_BUILDERS)
    assert "conv" in PARAMETRIC and "pool" not in PARAMETRIC


TINY_CNN = {
    "input_shape": [1, 8, 8],
    "layers": [
        {"type": "conv", "filters": 3, "channels": 1, "size": 3, "stride": 1, "pad": 1}, {"type": "tanh"},
        {"type": "pool", "size": 2, "stride": 2, "pad": 0},
        {"type": "conv", "filters": 4, "channels": 3, "size": 3, "stride": 1, "pad": 1}, {"type": "relu"},
        {"type": "pool", "size": 2, "stride": 2, "pad": 0},
        {"type": "affine", "in": 16, "out": 5},
    ],
    "loss": "cross-entropy",
    "input_scale": 1.0,
}


def test_network_gradient_matches_check_gradients_on_a_small_cnn():
    net = build_network(TINY_CNN, seed=3, dtype=np.float64)
    x = np.random.default_rng(3).standard_normal((4, 64))  # fixed data: independent of test order
    # h = 1e-6 keeps the perturbations from crossing a ReLU or max-pool kink (h = 1e-4 sometimes does)
    result = check_gradients(net, x, np.array([0, 1, 4, 2]), h=1e-6)
    assert [p.name for p in result.params] == ["W1", "b1", "W2", "b2", "W3", "b3"]
    assert result.max_rel_error < 1e-4, result.to_dict()
    assert max(p.max_abs_error for p in result.params) < 1e-8, result.to_dict()


def test_spec_round_trip_rebuilds_the_same_network():
    net = build_network(TINY_CNN, seed=3)
    again = build_network(net.spec(), params={k: v.copy() for k, v in net.params.items()})
    assert again.spec() == net.spec() == {**TINY_CNN, "input_shape": [1, 8, 8]}
    x = rng.random((3, 64), dtype=np.float32)
    np.testing.assert_allclose(again.predict(x), net.predict(x))
    assert net.predict(x[0]).shape == (5,)


@pytest.mark.parametrize("key, value", [("size", "5"), ("stride", 1.5), ("pad", -1), ("filters", None)])
def test_builder_rejects_bad_conv_spec_values(key, value):
    layer = {**TINY_CNN["layers"][0], key: value}
    with pytest.raises(ConvError, match=key):
        build_network({**TINY_CNN, "layers": [layer, *TINY_CNN["layers"][1:]]})


def test_builder_rejects_weights_of_the_wrong_shape_and_channel_mismatch():
    params = build_network(TINY_CNN, seed=0).params
    params["W2"] = np.zeros((4, 2, 3, 3), np.float32)
    with pytest.raises(ValueError, match=r"needs W \(4, 3, 3, 3\).*got W \(4, 2, 3, 3\)"):
        build_network(TINY_CNN, params=params)
    bad = {**TINY_CNN, "layers": [{**TINY_CNN["layers"][0], "channels": 2}, *TINY_CNN["layers"][1:]]}
    with pytest.raises(ConvError, match="expects 2 input channels but receives 1"):
        build_network(bad)
