"""The fast dense layers, loss layers and optimizers agree with plain reference code to 1e-5.

The references below are the book's ``common/layers.py`` and ``common/optimizer.py``, written out
for clarity: new arrays everywhere, one update per parameter array. The engine under test reuses
buffers, writes with ``out=``, overwrites activations in place and updates a network's parameters
as one flat buffer; whatever it does, outputs, input gradients, parameter gradients and optimizer
steps must match, in float32 and float64, for odd shapes and non-contiguous inputs too.
"""
import pickle

import numpy as np
import pytest

from engine.nn import layers
from engine.nn.blas import one_thread
from engine.nn.layers import Affine, ReLU, Sigmoid, SoftmaxWithLoss, SoftmaxWithSquaredError, Tanh
from engine.nn.network import Network, make_mlp
from engine.nn.optimizers import FlatParams, make_optimizer

TOL = 1e-5
DTYPES = [np.float32, np.float64]


def close(actual, expected):
    np.testing.assert_allclose(actual, expected, rtol=TOL, atol=TOL)


# ----- the reference: the book's layers


def softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


class RefAffine:
    def __init__(self, W, b):
        self.W, self.b = W, b

    def forward(self, x):
        self.original_x_shape = x.shape
        self.x = x.reshape(x.shape[0], -1)
        return np.dot(self.x, self.W) + self.b

    def backward(self, dout):
        dx = np.dot(dout, self.W.T)
        self.dW = np.dot(self.x.T, dout)
        self.db = np.sum(dout, axis=0)
        return dx.reshape(*self.original_x_shape)


class RefRelu:
    def forward(self, x):
        self.mask = x <= 0
        out = x.copy()
        out[self.mask] = 0
        return out

    def backward(self, dout):
        dout = dout.copy()
        dout[self.mask] = 0
        return dout


class RefSigmoid:
    def forward(self, x):
        with np.errstate(over="ignore"):  # exp(1000) is inf and 1/(1+inf) is the right 0
            self.out = 1 / (1 + np.exp(-x))
        return self.out

    def backward(self, dout):
        return dout * (1.0 - self.out) * self.out


class RefTanh:
    def forward(self, x):
        self.out = np.tanh(x)
        return self.out

    def backward(self, dout):
        return dout * (1.0 - self.out**2)


class RefSoftmaxWithLoss:
    """The book's layer, with the exact -log y (the book adds 1e-7 inside the log; the engine does not)."""

    def forward(self, x, t):
        self.t = np.eye(x.shape[1])[t] if t.ndim == 1 else t
        self.y = softmax(x.astype(np.float64))
        return -np.sum(self.t * np.log(self.y)) / x.shape[0]

    def backward(self):
        return (self.y - self.t) / self.t.shape[0]


class RefSoftmaxWithSquaredError:
    def forward(self, x, t):
        self.t = np.eye(x.shape[1])[t] if t.ndim == 1 else t
        self.y = softmax(x.astype(np.float64))
        return 0.5 * np.sum((self.y - self.t) ** 2) / x.shape[0]

    def backward(self):
        dy = (self.y - self.t) / self.t.shape[0]
        return self.y * (dy - np.sum(dy * self.y, axis=1, keepdims=True))


def non_contiguous(a):
    """The same values as ``a`` in a strided view (every other column of a wider array)."""
    wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), dtype=a.dtype)
    wide[..., ::2] = a
    view = wide[..., ::2]
    assert not view.flags.c_contiguous
    return view


rng = np.random.default_rng(13)


def normal(*shape, dtype=np.float64, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


# ----- dense layers


@pytest.fixture(params=["as is", "on the worker threads"])
def threads(request, monkeypatch):
    """Run each test as it is, and again as inside a CNN's training step (``engine.nn.blas.one_thread``), with
    every affine product shared out over the worker threads, one row per part."""
    if request.param == "as is":
        yield request.param
        return
    monkeypatch.setattr(layers, "SHARE_SIZE", 0)
    monkeypatch.setattr(layers, "SHARE_ROWS", 1)
    with one_thread():
        yield request.param


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape, layout", [((7, 13), "c"), ((1, 13), "c"), ((5, 13), "strided"),
                                             ((6, 13), "fortran"), ((3, 1, 13), "c")])
def test_affine_forward_and_backward_match_the_book(threads, dtype, x_shape, layout):
    n_in, n_out = x_shape[-1], 5
    W, b = normal(n_in, n_out, dtype=dtype), normal(n_out, dtype=dtype)
    ours, ref = Affine(W.copy(), b.copy()), RefAffine(W, b)
    for step in range(3):  # buffers are reused from step to step, and re-made when the batch size changes
        shape = (x_shape[0] + step,) + x_shape[1:]
        x = normal(*shape, dtype=dtype)
        x_in = {"c": x, "strided": non_contiguous(x) if x.ndim == 2 else x, "fortran": np.asfortranarray(x)}[layout]
        expected = ref.forward(x)
        close(ours.forward(x_in, train=False), expected)
        out = ours.forward(x_in, train=True)
        close(out, expected)
        assert out.dtype == dtype
        dout = normal(*out.shape, dtype=dtype)
        dx = ours.backward(non_contiguous(dout) if step == 1 else dout.copy())
        close(dx, ref.backward(dout))
        assert dx.shape == x.shape and dx.dtype == dtype
        close(ours.grads["W"], ref.dW)
        close(ours.grads["b"], ref.db)
        assert ours.grads["W"].dtype == dtype and ours.grads["b"].dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
def test_affine_of_the_first_layer_skips_dx_but_fills_its_gradients(threads, dtype):
    W, b = normal(10, 4, dtype=dtype), normal(4, dtype=dtype)
    ours, ref = Affine(W.copy(), b.copy()), RefAffine(W, b)
    ours.need_dx = False
    x, dout = normal(6, 10, dtype=dtype), normal(6, 4, dtype=dtype)
    ours.forward(x, train=True)
    ref.forward(x)
    assert ours.backward(dout.copy()) is None
    ref.backward(dout)
    close(ours.grads["W"], ref.dW)
    close(ours.grads["b"], ref.db)


def test_inference_between_a_training_forward_and_its_backward_changes_nothing():
    W, b = normal(8, 3), normal(3)
    ours, ref = Affine(W.copy(), b.copy()), RefAffine(W, b)
    x, dout = normal(4, 8), normal(4, 3)
    out = ours.forward(x, train=True)
    kept = out.copy()
    ours.forward(normal(9, 8), train=False)  # as the window's predictions do from another thread
    np.testing.assert_array_equal(out, kept)
    ref.forward(x)
    close(ours.backward(dout.copy()), ref.backward(dout))
    close(ours.grads["W"], ref.dW)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ours_cls, ref_cls", [(ReLU, RefRelu), (Sigmoid, RefSigmoid), (Tanh, RefTanh)])
@pytest.mark.parametrize("layout", ["c", "strided", "image"])
def test_activations_match_the_book(dtype, ours_cls, ref_cls, layout):
    ours, ref = ours_cls(), ref_cls()
    for n in (6, 6, 3):  # a reused mask, then a new batch size
        shape = (n, 2, 3, 5) if layout == "image" else (n, 11)
        x = normal(*shape, dtype=dtype, scale=3.0)
        x.reshape(-1)[:4] = [0.0, -1000.0, 1000.0, -0.0]  # the kink, and values whose exp overflows
        x_in = non_contiguous(x) if layout == "strided" else x.copy()
        expected = ref.forward(x)
        close(ours.forward(x_in.copy(), train=False), expected)
        out = ours.forward(x_in, train=True)  # ReLU may overwrite its input: it is the previous layer's output
        close(out, expected)
        assert out.dtype == dtype and out.shape == x.shape
        dout = normal(*shape, dtype=dtype)
        dx = ours.backward(dout.copy())
        close(dx, ref.backward(dout))
        assert dx.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ours_cls, ref_cls", [(SoftmaxWithLoss, RefSoftmaxWithLoss),
                                               (SoftmaxWithSquaredError, RefSoftmaxWithSquaredError)])
@pytest.mark.parametrize("labels", ["indices", "one-hot"])
def test_loss_layers_match_the_book(dtype, ours_cls, ref_cls, labels):
    ours, ref = ours_cls(), ref_cls()
    for n, classes in ((9, 10), (4, 3), (1, 10)):
        x = normal(n, classes, dtype=dtype, scale=3.0)
        t = rng.integers(0, classes, n)
        if labels == "one-hot":
            t = np.eye(classes, dtype=dtype)[t]
        assert ours.forward(x.copy(), t) == pytest.approx(ref.forward(x, t), rel=TOL)
        dx = ours.backward()
        close(dx, ref.backward())
        assert dx.dtype == dtype


def test_softmax_with_loss_leaves_its_scores_alone():
    x = normal(5, 10)
    kept = x.copy()
    SoftmaxWithLoss().forward(x, rng.integers(0, 10, 5))
    np.testing.assert_array_equal(x, kept)


# ----- a whole network: the gradient lands in one flat buffer, layer by layer


def ref_mlp(net):
    layers = []
    for layer in net.layers:
        if isinstance(layer, Affine):
            layers.append(RefAffine(layer.params["W"].copy(), layer.params["b"].copy()))
        else:
            layers.append({ReLU: RefRelu, Sigmoid: RefSigmoid, Tanh: RefTanh}[type(layer)]())
    return layers


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_network_gradient_matches_the_book(dtype, activation):
    net = make_mlp([12, 7, 5, 4], activation, dtype=dtype, seed=3)
    for n in (6, 6, 2):
        refs, loss_ref = ref_mlp(net), RefSoftmaxWithLoss()
        x, t = normal(n, 12, dtype=dtype), rng.integers(0, 4, n)
        out = x
        for layer in refs:
            out = layer.forward(out)
        expected_loss = loss_ref.forward(out, t)
        dout = loss_ref.backward()
        for layer in reversed(refs):
            dout = layer.backward(dout)
        assert net.gradient(x, t) == pytest.approx(expected_loss, rel=TOL)
        affines = [layer for layer in refs if isinstance(layer, RefAffine)]
        for i, layer in enumerate(affines, start=1):
            close(net.grads[f"W{i}"], layer.dW)
            close(net.grads[f"b{i}"], layer.db)
            assert net.grads[f"W{i}"].dtype == dtype


def test_network_params_are_the_layers_own_arrays_and_views_of_one_buffer():
    net = make_mlp([6, 4, 3], seed=0)
    params = net.params
    assert isinstance(params, FlatParams)
    affines = [layer for layer in net.layers if isinstance(layer, Affine)]
    assert params["W1"] is affines[0].params["W"] and params["b2"] is affines[1].params["b"]
    assert all(np.shares_memory(a, params.flat) for a in params.values())
    params["W2"][0, 0] = 5.0  # in place, as the book's optimizers do
    assert affines[1].params["W"][0, 0] == 5.0
    assert params.flat.size == sum(a.size for a in params.values())
    restored = pickle.loads(pickle.dumps(params))  # the book's readers pickle network.params
    assert type(restored) is dict and set(restored) == set(params)
    np.testing.assert_array_equal(restored["W2"], params["W2"])


def test_the_gradient_buffer_is_made_by_the_first_backprop_and_then_reused():
    """A network that only predicts (an opened file, a probe candidate) holds no gradients; one that trains holds
    them in one flat buffer, which every later step writes into."""
    net = make_mlp([6, 4, 3], seed=0)
    assert net.grads == {} and all(layer.grads == {} for layer in net.layers)
    x, t = normal(5, 6, dtype=np.float32), rng.integers(0, 3, 5)
    net.gradient(x, t)
    grads = net.grads
    assert isinstance(grads, FlatParams) and grads.layout == net.params.layout
    assert all(np.shares_memory(a, grads.flat) for a in grads.values())
    net.gradient(x[::-1].copy(), t[::-1].copy())
    assert net.grads is grads and net.layers[0].grads["W"] is grads["W1"]


# ----- the reference: the book's optimizers (Nesterov as engine.nn.optimizers documents it)


class RefOptimizer:
    def __init__(self, name, **hp):
        self.name, self.hp, self.state, self.iter = name, hp, {}, 0

    def update(self, params, grads):
        hp, lr = self.hp, self.hp["lr"]
        self.iter += 1
        for key in params:
            g = grads[key]
            if self.name == "sgd":
                params[key] -= lr * g
            elif self.name == "momentum":
                v = self.state.setdefault(key, np.zeros_like(params[key]))
                v[...] = hp["momentum"] * v - lr * g
                params[key] += v
            elif self.name == "nesterov":
                v, m = self.state.setdefault(key, np.zeros_like(params[key])), hp["momentum"]
                params[key] += m * m * v - (1 + m) * lr * g
                v[...] = m * v - lr * g
            elif self.name == "adagrad":
                h = self.state.setdefault(key, np.zeros_like(params[key]))
                h += g * g
                params[key] -= lr * g / (np.sqrt(h) + 1e-7)
            elif self.name == "rmsprop":
                h = self.state.setdefault(key, np.zeros_like(params[key]))
                h *= hp["decay"]
                h += (1 - hp["decay"]) * g * g
                params[key] -= lr * g / (np.sqrt(h) + 1e-7)
            elif self.name == "adam":
                m = self.state.setdefault("m" + key, np.zeros_like(params[key]))
                v = self.state.setdefault("v" + key, np.zeros_like(params[key]))
                b1, b2 = hp["beta1"], hp["beta2"]
                lr_t = lr * np.sqrt(1.0 - b2**self.iter) / (1.0 - b1**self.iter)
                m += (1 - b1) * (g - m)
                v += (1 - b2) * (g**2 - v)
                params[key] -= lr_t * m / (np.sqrt(v) + 1e-7)


HYPER = {"sgd": {"lr": 0.1}, "momentum": {"lr": 0.05, "momentum": 0.9}, "nesterov": {"lr": 0.05, "momentum": 0.8},
         "adagrad": {"lr": 0.1}, "rmsprop": {"lr": 0.01, "decay": 0.9},
         "adam": {"lr": 0.01, "beta1": 0.9, "beta2": 0.999}}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(HYPER))
def test_optimizers_on_a_network_follow_the_book_step_for_step(dtype, name):
    """The network hands over FlatParams: the optimizer updates the whole flat buffer at once."""
    net = make_mlp([9, 6, 3], dtype=dtype, seed=1)
    net.gradient(normal(2, 9, dtype=dtype), np.array([0, 2]))  # net.grads: views of the network's gradient buffer
    assert isinstance(net.grads, FlatParams) and net.grads.layout == net.params.layout
    ours, ref = make_optimizer(name, **HYPER[name]), RefOptimizer(name, **HYPER[name])
    expected = {k: v.copy() for k, v in net.params.items()}
    for step in range(6):
        grads = {k: normal(*v.shape, dtype=dtype) for k, v in expected.items()}
        for key, g in grads.items():
            net.grads[key][...] = g
        ours.update(net.params, net.grads)
        ref.update(expected, grads)
        for key, value in net.params.items():
            close(value, expected[key])
            assert value.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(HYPER))
def test_optimizers_on_plain_dicts_of_odd_shapes_follow_the_book(dtype, name):
    """Plain dicts (the labs', a reader's own code): one update per array, same result."""
    shapes = {"W": (3, 5), "b": (5,), "k": (2, 1, 3, 3), "s": ()}
    params = {k: normal(*s, dtype=dtype) if s else np.array(0.5, dtype=dtype) for k, s in shapes.items()}
    expected = {k: v.copy() for k, v in params.items()}
    originals = dict(params)
    ours, ref = make_optimizer(name, **HYPER[name]), RefOptimizer(name, **HYPER[name])
    for _ in range(5):
        grads = {k: normal(*s, dtype=dtype) if s else np.array(-0.25, dtype=dtype) for k, s in shapes.items()}
        grads["k"] = non_contiguous(grads["k"])
        ours.update(params, grads)
        ref.update(expected, {k: np.array(g) for k, g in grads.items()})
        for key in shapes:
            assert params[key] is originals[key]  # updated in place
            close(params[key], expected[key])


@pytest.mark.parametrize("name", list(HYPER))
def test_a_network_whose_layer_array_was_replaced_still_trains_that_array(name):
    net = make_mlp([5, 4, 3], seed=2)
    layer = net.layers[0]
    layer.params["W"] = layer.params["W"].copy()  # no longer a view of the flat buffer
    assert not isinstance(net.params, FlatParams)
    ours, ref = make_optimizer(name, **HYPER[name]), RefOptimizer(name, **HYPER[name])
    expected = {k: v.copy() for k, v in net.params.items()}
    x, t = normal(4, 5, dtype=np.float32), rng.integers(0, 3, 4)
    for _ in range(3):
        net.gradient(x, t)
        grads = {k: v.copy() for k, v in net.grads.items()}
        ours.update(net.params, net.grads)
        ref.update(expected, grads)
    close(layer.params["W"], expected["W1"])
    close(net.params["W2"], expected["W2"])


class NewArrayAffine(Affine):
    """An affine layer that hands back new gradient arrays each step (as a layer written plainly would)."""

    def backward(self, dout):
        dx = super().backward(dout)
        self.grads = {k: v.copy() for k, v in self.grads.items()}
        return dx


def test_gradients_a_layer_hands_back_as_new_arrays_land_in_the_flat_buffer_too():
    plain = make_mlp([6, 5, 3], seed=4)
    W1, b1, W2, b2 = (plain.params[k].copy() for k in ("W1", "b1", "W2", "b2"))
    mixed = Network([NewArrayAffine(W1, b1), ReLU(), Affine(W2, b2)], input_shape=(6,))
    x, t = normal(4, 6, dtype=np.float32), rng.integers(0, 3, 4)
    opt_plain, opt_mixed = make_optimizer("adam", lr=0.01), make_optimizer("adam", lr=0.01)
    for _ in range(3):
        assert mixed.gradient(x, t) == plain.gradient(x, t)
        assert isinstance(mixed.grads, FlatParams)
        for key in plain.grads:
            np.testing.assert_array_equal(mixed.grads[key], plain.grads[key])
        opt_plain.update(plain.params, plain.grads)
        opt_mixed.update(mixed.params, mixed.grads)
    for key in plain.params:
        np.testing.assert_array_equal(mixed.params[key], plain.params[key])
