"""A convolution and the max-pool after it run as one layer (``engine.nn.conv_pool``) and give the book's results.

Outputs and gradients match the book's convolution then pooling (``_book_reference``) to 1e-5, the
pool picking the same element of every window, ties included (parameter gradients are summed in
another order). A network runs its layers that way and gets what its spec's order gives.
"""
import numpy as np
import pytest

from engine.nn import conv_rows
from engine.nn.blas import single
from engine.nn.conv import ConvError, Convolution, Dropout, Pooling
from engine.nn.conv_pool import ConvPool, running_order
from engine.nn.layers import ReLU
from engine.nn.models import CNN_SPECS, make_cnn
from engine.nn.network import make_mlp

from _book_reference import layouts, ref_conv, ref_conv_backward, ref_pool, ref_pool_backward

TOL = 1e-5

CASES = [  # (channels, filters, size, k, stride, pad, pool)
    (1, 3, 12, 5, 1, 0, 2),  # SimpleConvNet's first layer, on small images
    (2, 4, 7, 3, 1, 1, 2),  # an odd output (7 × 7): its last row and column are in no window
    (3, 2, 9, 3, 1, 2, 2),  # DeepConvNet's pad of 2
    (2, 3, 11, 3, 2, 1, 2),  # a strided convolution
    (2, 2, 10, 3, 1, 1, 3),  # 3 × 3 windows: three-way maximums
    (1, 3, 28, 5, 1, 0, 2),  # MNIST-sized: by rows, three blocks of 8 columns
    (2, 3, 14, 5, 1, 2, 2),  # by rows, padded
    (2, 3, (13, 12), 5, 1, 1, 2),  # by rows: an odd number of output rows (11), the last in no window
]


def book(x, W, b, stride, pad, p, dout):
    """The book's convolution then pooling, forward and backward: (output, dx, dW, db)."""
    y, col = ref_conv(x, W, b, stride, pad)
    out, arg, col_shape = ref_pool(y, p, p, 0)
    dy = ref_pool_backward(dout, y.shape, arg, col_shape, p, p, 0)
    return (out, *ref_conv_backward(dy, x, W, col, stride, pad))


def inputs(seed, c, f, size, k, p, stride, pad, values):
    """(x, W, b, dout) in float64; "with ties": integer pixels and weights, so many windows hold equal values."""
    rng = np.random.default_rng(seed)
    h, w = size if isinstance(size, tuple) else (size, size)
    x, W, b = rng.standard_normal((3, c, h, w)), rng.standard_normal((f, c, k, k)), rng.standard_normal(f)
    if values == "with ties":  # blank regions give exactly the bias, strokes small integer sums
        x, W = np.maximum(np.round(x), 0), np.round(2 * W) / 2
    ph, pw = (((side + 2 * pad - k) // stride + 1) // p for side in (h, w))
    return x, W, b, rng.standard_normal((3, f, ph, pw))


def way(conv, x, p, need_dx):
    """How ``ConvPool`` should run: "rows" or "im2col" (pooling inside), or None (the two in turn)."""
    k = conv.params["W"].shape[2]
    if conv.by_rows(x.shape[1:]):
        return "rows" if conv_rows.pools(k, x.shape[3] + 2 * conv.pad - k + 1, p) else None
    return None if need_dx else "im2col"


@pytest.mark.parametrize("c, f, size, k, stride, pad, p", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("values", ["random", "with ties"])
@pytest.mark.parametrize("need_dx", [False, True], ids=["first layer", "inner layer"])
def test_conv_pool_matches_the_book_convolution_then_pooling(chunking, path, c, f, size, k, stride, pad, p, dtype, values,
                                                             need_dx):
    x, W, b, dout = inputs(np.sum(size) * 10 + k, c, f, size, k, p, stride, pad, values)
    expected, dx_ref, dW_ref, db_ref = book(x, W, b, stride, pad, p, dout)
    conv = Convolution(W.astype(dtype), b.astype(dtype), stride, pad)
    conv.need_dx = need_dx
    layer = ConvPool(conv, Pooling(p, p))
    for xi in layouts(x.astype(dtype)):
        np.testing.assert_allclose(layer.forward(xi), expected, rtol=TOL, atol=TOL)
        for d in layouts(dout.astype(dtype)) + [dout.astype(dtype).reshape(len(x), -1)]:  # as an affine layer hands it back
            out = layer.forward(xi, train=True)
            assert (layer._args and layer._args[0]) == way(conv, xi, p, need_dx)
            assert out.dtype == dtype and out.shape == expected.shape
            np.testing.assert_allclose(out, expected, rtol=TOL, atol=TOL)
            dx = layer.backward(d)
            if need_dx:
                np.testing.assert_allclose(dx, dx_ref, rtol=TOL, atol=TOL)
            else:
                assert dx is None
            np.testing.assert_allclose(conv.grads["W"], dW_ref, rtol=TOL, atol=TOL * np.abs(dW_ref).max())
            np.testing.assert_allclose(conv.grads["b"], db_ref, rtol=TOL, atol=TOL * np.abs(db_ref).max())


def test_an_inference_forward_between_training_forward_and_backward_changes_nothing(chunking):
    """The window predicts from another thread while training runs: inference keeps no state."""
    x, W, b, dout = inputs(1, 2, 3, 9, 3, 2, 1, 1, "random")
    _, _, dW_ref, _ = book(x, W, b, 1, 1, 2, dout)
    conv = Convolution(W, b, 1, 1)
    conv.need_dx = False
    layer = ConvPool(conv, Pooling(2, 2))
    layer.forward(x, train=True)
    layer.forward(np.random.default_rng(2).standard_normal((5, 2, 9, 9)))
    layer.backward(dout)
    np.testing.assert_allclose(conv.grads["W"], dW_ref, rtol=TOL, atol=TOL)


@pytest.mark.parametrize("pool", [Pooling(2, 1), Pooling(3, 2), Pooling(2, 2, pad=1), Pooling(1, 1)])
def test_only_a_pool_whose_windows_tile_the_output_runs_inside_a_convolution(pool):
    conv = Convolution(np.ones((2, 1, 3, 3)), np.zeros(2))
    with pytest.raises(ConvError, match="one layer"):
        ConvPool(conv, pool)
    assert running_order([conv, pool]) == [conv, pool]


@pytest.mark.parametrize("spec_name", sorted(CNN_SPECS))
def test_a_network_runs_conv_pool_then_relu_and_gets_the_scores_and_gradients_of_its_spec_order(spec_name):
    net = make_cnn(CNN_SPECS[spec_name](), seed=3, dtype=np.float64)
    layers, running = net.layers, net._running
    fused = [i for i in range(len(layers) - 2) if isinstance(layers[i], Convolution)
             and isinstance(layers[i + 1], ReLU) and isinstance(layers[i + 2], Pooling)]
    assert fused
    for i in fused:  # conv, ReLU, pool → ConvPool(conv, pool), ReLU
        at = next(j for j, layer in enumerate(running) if getattr(layer, "conv", None) is layers[i])
        assert running[at].pool is layers[i + 2] and running[at + 1] is layers[i + 1]

    rng = np.random.default_rng(0)
    x = rng.random((6, 1, 28, 28)) - 0.3  # negative pixels too: some windows are all negative
    t = rng.integers(0, 10, 6)
    dropouts = [layer for layer in layers if isinstance(layer, Dropout)]
    for layer in dropouts:  # the same masks in both runs
        layer.rng = np.random.default_rng(7)
    loss = net.gradient(x, t)
    fast = {k: v.copy() for k, v in net.grads.items()}

    for layer in dropouts:
        layer.rng = np.random.default_rng(7)
    h = x  # the reference: every layer in the spec's order
    for layer in layers:
        h = layer.forward(h, train=True)
    assert net.loss_layer.forward(h, t) == pytest.approx(loss, rel=1e-12)
    d = net.loss_layer.backward(1.0)
    for layer in reversed(layers):
        d = layer.backward(d)
    for name, layer, key in net._names:
        scale = np.abs(layer.grads[key]).max()
        np.testing.assert_allclose(fast[name], layer.grads[key], rtol=1e-10, atol=1e-12 * scale, err_msg=name)


@pytest.mark.parametrize("spec_name, one_thread", [("simple-convnet", True), ("deep-convnet", True), ("lenet", False),
                                                   ("small-cnn", False), ("mlp", False)])
def test_a_network_whose_convolutions_go_by_im2col_trains_and_scores_on_one_blas_thread(spec_name, one_thread):
    """Its convolutions and large affine products run on the worker threads (engine.nn.conv_pool.uses_workers)."""
    net = make_mlp([784, 30, 10]) if spec_name == "mlp" else make_cnn(CNN_SPECS[spec_name](), seed=0)
    seen = []
    last, forward = net._running[-1], net._running[-1].forward
    last.forward = lambda x, train=False: seen.append(single()) or forward(x, train)
    rng = np.random.default_rng(0)
    net.gradient(rng.random((4, 784), dtype=np.float32), rng.integers(0, 10, 4))
    net.scores(rng.random((3, 784), dtype=np.float32))
    assert seen == [one_thread, one_thread]
    assert not single()  # BLAS has its threads back after the step
