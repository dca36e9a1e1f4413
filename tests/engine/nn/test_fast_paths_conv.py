"""The fast convolution, pooling and dropout layers agree with a plain reference to 1e-5.

The reference (``_book_reference``) is the book's way, written for clarity. The layers under test
work on chunks of images, wide rows, rows of blocks and strided views; whatever they do, outputs,
input gradients and parameter gradients must match, for float32 and float64, in training and in inference.
"""
import numpy as np
import pytest

from engine.nn import conv_rows
from engine.nn.conv import Convolution, Dropout, Pooling

from _book_reference import layouts, ref_conv, ref_conv_backward, ref_pool, ref_pool_backward

TOL = 1e-5


CONV_CASES = [  # (channels, filters, height, width, k, stride, pad): wide rows, narrow rows, strides, DeepConvNet's pads
    (1, 3, 9, 9, 3, 1, 0),
    (2, 4, 8, 7, 3, 1, 1),
    (3, 2, 12, 12, 5, 1, 0),
    (2, 3, 7, 7, 5, 1, 0),
    (3, 4, 6, 6, 3, 1, 2),
    (2, 3, 9, 8, 3, 2, 1),
    (2, 2, 8, 8, 2, 2, 0),
    (3, 2, 5, 5, 1, 1, 0),
    (1, 3, 28, 28, 5, 1, 0),  # by rows in three blocks of 8 columns, as LeNet's first layer
    (2, 3, 8, 18, 5, 1, 2),  # by rows in two blocks of 9, padded
]


@pytest.mark.parametrize("c, f, h, w, k, stride, pad", CONV_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_convolution_matches_the_reference(chunking, path, c, f, h, w, k, stride, pad, dtype):
    rng = np.random.default_rng(k * 100 + h)
    x = rng.standard_normal((5, c, h, w)).astype(dtype)
    W, b = rng.standard_normal((f, c, k, k)).astype(dtype), rng.standard_normal(f).astype(dtype)
    expected, col = ref_conv(x.astype(np.float64), W.astype(np.float64), b.astype(np.float64), stride, pad)
    dout = rng.standard_normal(expected.shape)
    dx_ref, dW_ref, db_ref = ref_conv_backward(dout, x, W.astype(np.float64), col, stride, pad)
    for xi in layouts(x):
        layer = Convolution(W, b, stride, pad)
        inferred = layer.forward(xi)
        trained = layer.forward(xi, train=True)
        assert inferred.dtype == trained.dtype == dtype
        np.testing.assert_allclose(inferred, expected, rtol=TOL, atol=TOL)
        np.testing.assert_allclose(trained, expected, rtol=TOL, atol=TOL)
        for d in layouts(dout.astype(dtype)) + [dout.astype(dtype).reshape(len(x), -1)]:  # flat rows from an affine
            layer.forward(xi, train=True)
            dx = layer.backward(d)
            np.testing.assert_allclose(dx, dx_ref, rtol=TOL, atol=TOL)
            np.testing.assert_allclose(layer.grads["W"], dW_ref, rtol=TOL, atol=TOL)
            np.testing.assert_allclose(layer.grads["b"], db_ref, rtol=TOL, atol=TOL)


def test_a_first_layer_convolution_skips_dx_but_still_gets_its_gradients(chunking, path):
    rng = np.random.default_rng(3)
    x, W, b = rng.standard_normal((6, 1, 8, 8)), rng.standard_normal((3, 1, 3, 3)), rng.standard_normal(3)
    expected, col = ref_conv(x, W, b, 1, 1)
    dout = rng.standard_normal(expected.shape)
    _, dW_ref, db_ref = ref_conv_backward(dout, x, W, col, 1, 1)
    layer = Convolution(W, b, 1, 1)
    layer.need_dx = False
    layer.forward(x, train=True)
    assert layer.backward(dout) is None
    np.testing.assert_allclose(layer.grads["W"], dW_ref, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(layer.grads["b"], db_ref, rtol=TOL, atol=TOL)


def test_which_convolutions_go_by_rows():
    """The choice the measurements in engine.nn.conv_rows give: LeNet's 5×5 convolutions by rows, SimpleConvNet's
    (30 filters) and DeepConvNet's 3×3 ones by im2col."""
    from engine.nn.models import CNN_SPECS, make_cnn

    def choices(name):
        net = make_cnn(CNN_SPECS[name](), seed=0)
        shape, out = net.input_shape, []
        for layer in net.layers:
            if isinstance(layer, Convolution):
                out.append(layer.by_rows(tuple(shape)))
            shape = layer.output_shape(shape)
        return out

    assert choices("lenet") == [True, True]
    assert choices("simple-convnet") == [False]
    assert choices("deep-convnet") == [False] * 6


@pytest.mark.parametrize("k, ow, block", [(5, 24, 8), (5, 8, 8), (3, 28, 7), (3, 7, 7), (5, 13, 13), (1, 6, 2)])
def test_rows_are_cut_into_blocks_of_a_divisor_of_the_width_at_least_one_and_a_half_filters_wide(k, ow, block):
    assert conv_rows.block_width(k, ow) == block


@pytest.mark.parametrize("block", [2, 4, 8])
def test_every_block_width_gives_the_reference(monkeypatch, block):
    """Blocks whose input overlaps the next block's by k - 1 columns (as wide as a block, or less) add up right."""
    monkeypatch.setattr(conv_rows, "block_width", lambda k, ow: block)
    rng = np.random.default_rng(block)
    x, W, b = rng.standard_normal((3, 2, 8, 8)), rng.standard_normal((4, 2, 3, 3)), rng.standard_normal(4)
    expected, col = ref_conv(x, W, b, 1, 1)  # 8 wide padded to 10: 8 output columns in 4, 2 or 1 blocks
    dout = rng.standard_normal(expected.shape)
    dx_ref, dW_ref, db_ref = ref_conv_backward(dout, x, W, col, 1, 1)
    out = conv_rows.forward(x.transpose(1, 0, 2, 3), W, b, 1, np.float64)
    np.testing.assert_allclose(out.transpose(1, 0, 2, 3), expected, rtol=1e-12, atol=1e-12)
    dW, db, dx = conv_rows.backward(x.transpose(1, 0, 2, 3), W, dout.transpose(1, 0, 2, 3), 1, True, np.float64)
    for got, want in ((dW, dW_ref), (db, db_ref), (dx.transpose(1, 0, 2, 3), dx_ref)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_convolution_writes_gradients_into_the_arrays_the_network_hands_it():
    rng = np.random.default_rng(4)
    x, W, b = rng.standard_normal((2, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3)
    layer = Convolution(W, b)
    given_W, given_b = np.zeros_like(W), np.zeros_like(b)
    layer.grads = {"W": given_W, "b": given_b}
    out = layer.forward(x, train=True)
    layer.backward(np.ones(out.shape))
    assert layer.grads["W"] is given_W and layer.grads["b"] is given_b
    _, col = ref_conv(x, W, b, 1, 0)
    np.testing.assert_allclose(given_W, ref_conv_backward(np.ones(out.shape), x, W, col, 1, 0)[1], rtol=TOL, atol=TOL)


POOL_CASES = [  # (size, stride, pad): the usual 2×2, overlapping windows, padding, gaps between windows
    (2, 2, 0), (3, 3, 0), (3, 2, 0), (2, 1, 0), (3, 1, 1), (2, 2, 1), (2, 3, 0),
]


@pytest.mark.parametrize("size, stride, pad", POOL_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("values", ["random", "with ties"])
def test_pooling_matches_the_reference(size, stride, pad, dtype, values):
    rng = np.random.default_rng(size * 10 + stride)
    x = rng.standard_normal((3, 2, 7, 8))
    if values == "with ties":  # few distinct values, zeros among them (ReLU output): the first maximum must win
        x = np.maximum(np.round(x), 0)
    x = x.astype(dtype)
    expected, arg, col_shape = ref_pool(x.astype(np.float64), size, stride, pad)
    dout = rng.standard_normal(expected.shape)
    dx_ref = ref_pool_backward(dout, x.shape, arg, col_shape, size, stride, pad)
    for xi in layouts(x):
        layer = Pooling(size, stride, pad)
        np.testing.assert_allclose(layer.forward(xi), expected, rtol=TOL, atol=TOL)
        for d in layouts(dout.astype(dtype)) + [dout.astype(dtype).reshape(len(x), -1)]:
            out = layer.forward(xi, train=True)
            assert out.dtype == dtype
            np.testing.assert_allclose(out, expected, rtol=TOL, atol=TOL)
            np.testing.assert_allclose(layer.backward(d), dx_ref, rtol=TOL, atol=TOL)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(4, 3, 5, 5), (7, 20)])
def test_dropout_matches_the_reference_with_the_same_mask(dtype, shape):
    x = np.random.default_rng(5).standard_normal(shape).astype(dtype)
    dout = np.random.default_rng(6).standard_normal(shape).astype(dtype)
    layer = Dropout(0.3, np.random.default_rng(8))
    mask = np.random.default_rng(8).random(shape, dtype=dtype) > 0.3  # the same generator draws the same mask
    np.testing.assert_allclose(layer.forward(x, train=True), x * mask, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(layer.backward(dout), dout * mask, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(layer.forward(x), x * 0.7, rtol=TOL, atol=TOL)  # the book scales at inference
