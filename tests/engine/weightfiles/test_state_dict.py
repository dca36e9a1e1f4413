"""PyTorch-style state_dicts: DigitLab networks exported as nn.Sequential weights, and state_dicts read back.

Without torch, a small NumPy implementation of the few torch.nn modules the export uses (below) runs
the exported source with the exported weights; with torch installed, real nn.Sequential models do.
"""
from __future__ import annotations

import json
import types
from collections import OrderedDict

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from numpy.lib.stride_tricks import sliding_window_view

from engine.errors import WeightFileError
from engine.nn.models import deep_convnet_spec, lenet_spec, simple_convnet_spec, small_cnn_spec
from engine.nn.network import build_network, mlp_spec
from engine.weightfiles.state_dict import from_stored_spec, to_torch, torch_architectures
from engine.weightfiles.state_dict_modules import natural_key

RNG = np.random.default_rng(14)
IMAGES = RNG.random((6, 1, 28, 28))  # pixels in [0, 1]


# ----------------------------------------------------------------------------- torch semantics in NumPy


class _Module:
    shapes: dict = {}

    def __call__(self, x):
        return self.forward(x)


class Linear(_Module):
    def __init__(self, n_in, n_out):
        self.shapes = {"weight": (n_out, n_in), "bias": (n_out,)}

    def forward(self, x):
        return x @ self.weight.T + self.bias


class Conv2d(_Module):
    def __init__(self, c, f, k, stride=1, padding=0):
        self.shapes = {"weight": (f, c, k, k), "bias": (f,)}
        self.k, self.stride, self.pad = k, stride, padding

    def forward(self, x):  # cross-correlation over sliding windows
        p, s = self.pad, self.stride
        x = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        windows = sliding_window_view(x, (self.k, self.k), axis=(2, 3))[:, :, ::s, ::s]
        return np.einsum("ncijkl,fckl->nfij", windows, self.weight) + self.bias[:, None, None]


class MaxPool2d(_Module):
    def __init__(self, size, stride=None, padding=0):
        self.size, self.stride, self.pad = size, stride or size, padding

    def forward(self, x):  # torch pads with -inf and floors the window count
        p = self.pad
        x = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=-np.inf)
        windows = sliding_window_view(x, (self.size, self.size), axis=(2, 3))[:, :, ::self.stride, ::self.stride]
        return windows.max(axis=(4, 5))


def _plain(function):
    return type("Plain", (_Module,), {"__init__": lambda self, *args: None, "forward": lambda self, x: function(x)})


class Sequential(_Module):
    def __init__(self, *modules):
        self.modules = modules

    def load_state_dict(self, state):  # strict, like torch's
        wanted = {f"{i}.{name}": shape for i, m in enumerate(self.modules) for name, shape in m.shapes.items()}
        assert list(state) == list(wanted)
        for key, value in state.items():
            assert value.shape == wanted[key], key
            index, name = key.split(".")
            setattr(self.modules[int(index)], name, value)

    def forward(self, x):
        for m in self.modules:
            x = m(x)
        return x


NN = types.SimpleNamespace(Linear=Linear, Conv2d=Conv2d, MaxPool2d=MaxPool2d, Sequential=Sequential,
                           Flatten=_plain(lambda x: x.reshape(len(x), -1)), ReLU=_plain(lambda x: np.maximum(x, 0)),
                           Sigmoid=_plain(lambda x: 1 / (1 + np.exp(-x))), Tanh=_plain(np.tanh),
                           Dropout=_plain(lambda x: x))  # eval mode


def reference(source: str, state) -> Sequential:
    model = eval(source, {"nn": NN})  # our own export's source, run against the NumPy modules above
    model.load_state_dict(state)
    return model


def close(a, b, rtol=1e-5) -> bool:
    return a.shape == b.shape and np.max(np.abs(a - b)) <= rtol * np.max(np.abs(b))


# ----------------------------------------------------------------------------- networks to export


def _net(spec: dict, scale: float = 1.0, shift: float = 0.0, seed: int = 0):
    net = build_network({**spec, "input_scale": scale, "input_shift": shift}, seed=seed, dtype=np.float64)
    rng = np.random.default_rng(seed)
    net.set_params({k: v + 0.1 * rng.standard_normal(v.shape) for k, v in net.params.items()})  # non-zero biases
    return net


def _conv(filters, channels, size, stride=1, pad=0):
    return {"type": "conv", "filters": filters, "channels": channels, "size": size, "stride": stride, "pad": pad}


def _spec(layers, input_shape=(1, 28, 28)):
    return {"input_shape": list(input_shape), "layers": layers, "loss": "cross-entropy"}


STRIDED = _spec([_conv(6, 1, 5, 2, 2), {"type": "relu"}, {"type": "pool", "size": 3, "stride": 2, "pad": 1},
                 {"type": "affine", "in": 6 * 7 * 7, "out": 20}, {"type": "tanh"}, {"type": "affine", "in": 20, "out": 10}])
DROPOUTS = _spec([{"type": "dropout", "ratio": 0.2}, {"type": "affine", "in": 784, "out": 30}, {"type": "sigmoid"},
                  {"type": "affine", "in": 30, "out": 10}, {"type": "dropout", "ratio": 0.3}], input_shape=(784,))
NORMALISED = (1 / 0.3081, -0.1307 / 0.3081)  # transforms.Normalize((0.1307,), (0.3081,))

NETWORKS = {
    "mlp on [0, 255]": lambda: _net(mlp_spec([784, 32, 16, 10]), scale=255.0),
    "mlp sigmoid normalised": lambda: _net(mlp_spec([784, 24, 10], "sigmoid"), *NORMALISED),
    "mlp with dropouts first and last": lambda: _net(DROPOUTS, scale=2.0, shift=-1.0),
    "lenet": lambda: _net(lenet_spec()),
    "lenet normalised": lambda: _net(lenet_spec(), *NORMALISED),
    "simple convnet": lambda: _net(simple_convnet_spec(filters=6)),
    "small cnn": lambda: _net(small_cnn_spec()),
    "deep convnet with dropout": lambda: _net(deep_convnet_spec((4, 4, 6, 6, 8, 8))),
    "strided, padded pooling, tanh": lambda: _net(STRIDED, scale=255.0),
}


@pytest.mark.parametrize("name", NETWORKS)
def test_the_exported_sequential_gives_the_networks_scores(name):
    net = NETWORKS[name]()
    state, source = to_torch(net)
    assert source.startswith("nn.Sequential(") and all(v.dtype == np.float64 for v in state.values())
    model = reference(source, state)
    assert close(model(IMAGES), net.scores(IMAGES))
    if len(net.input_shape) == 1:  # an MLP starts with nn.Flatten(): flat rows work too
        assert source.startswith("nn.Sequential(nn.Flatten(), ")
        assert close(model(IMAGES.reshape(6, 784)), net.scores(IMAGES))


def test_the_export_names_the_layers_like_nn_sequential():
    state, source = to_torch(_net(lenet_spec()))
    assert source == ("nn.Sequential(nn.Conv2d(1, 8, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 5), nn.ReLU(), "
                      "nn.MaxPool2d(2), nn.Flatten(), nn.Linear(256, 100), nn.ReLU(), nn.Linear(100, 10))")
    assert list(state) == ["0.weight", "0.bias", "3.weight", "3.bias", "7.weight", "7.bias", "9.weight", "9.bias"]
    assert state["7.weight"].shape == (100, 256) and state["7.weight"].flags.c_contiguous


def test_a_shift_before_a_padded_convolution_is_refused_with_advice():
    net = _net(deep_convnet_spec((4, 4, 6, 6, 8, 8)), *NORMALISED)
    with pytest.raises(WeightFileError, match=r"cannot export to PyTorch: .*padded by 1.*save as \.npz instead"):
        to_torch(net)


@pytest.mark.parametrize("layers, message", [
    ([{"type": "affine", "in": 784, "out": 10}, {"type": "sigmoid"}, {"type": "dropout", "ratio": 0.5},
      {"type": "tanh"}], "no conv or affine layer next to it"),
    ([_conv(2, 1, 3), {"type": "pool", "size": 2, "stride": 2, "pad": 1},
      {"type": "affine", "in": 2 * 14 * 14, "out": 10}], "PyTorch pads with −∞"),
])
def test_what_nn_sequential_cannot_compute_is_refused(layers, message):
    net = _net(_spec(layers, (784,) if layers[0]["type"] == "affine" else (1, 28, 28)))
    with pytest.raises(WeightFileError, match=message):
        to_torch(net)


def test_a_layer_type_without_a_torch_counterpart_is_refused():
    net = _net(lenet_spec())
    net.spec = lambda: {**_net(lenet_spec()).spec(), "layers": [{"type": "batchnorm"}]}
    with pytest.raises(WeightFileError, match="layer 1 is a 'batchnorm' layer"):
        to_torch(net)


# ----------------------------------------------------------------------------- reading state_dicts back


def _renamed(state: OrderedDict, style: str) -> OrderedDict:
    """The exported state_dict as other code names it: the same arrays under other module paths."""
    paths = list(dict.fromkeys(k.rpartition(".")[0] for k in state))
    convs = [p for p in paths if state[f"{p}.weight"].ndim == 4]
    linears = [p for p in paths if p not in convs]
    new = {
        "prefixed": {p: f"model.net.{p}" for p in paths},
        "gapped": {p: f"layers.{5 * i}" for i, p in enumerate(paths)},
        "conv1/fc1": {**{p: f"conv{i}" for i, p in enumerate(convs, 1)}, **{p: f"fc{i}" for i, p in enumerate(linears, 1)}},
        "features/classifier": {**{p: f"features.{2 * i}" for i, p in enumerate(convs)},
                                **{p: f"classifier.{3 * i + 1}" for i, p in enumerate(linears)}},
    }[style.replace(" sorted", "")]
    out = OrderedDict((f"{new[k.rpartition('.')[0]]}.{k.rpartition('.')[2]}", v) for k, v in state.items())
    return OrderedDict(sorted(out.items())) if style.endswith("sorted") else out  # safetensors sorts its keys


STYLES = ["as exported", "prefixed", "gapped sorted", "conv1/fc1 sorted", "features/classifier sorted"]


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("name", ["mlp on [0, 255]", "mlp with dropouts first and last", "lenet", "simple convnet",
                                  "small cnn", "deep convnet with dropout", "lenet normalised"])
def test_an_exported_state_dict_reads_back_as_its_network(name, style):
    net = NETWORKS[name]()
    state, _ = to_torch(net)
    state = state if style == "as exported" else _renamed(state, style)
    found = torch_architectures(state, "model.pt")
    (activation,) = {layer["type"] for layer in net.spec()["layers"] if layer["type"] in ("relu", "sigmoid", "tanh")}
    spec = json.loads(json.dumps(found[0].spec).replace('"relu"', json.dumps(activation)))  # as the caller's probe would
    first = build_network(spec, params=found[0].params, dtype=np.float64)
    assert close(first.scores(IMAGES), net.scores(IMAGES))  # DigitLab's own layouts come first
    assert all(a.spec["input_scale"] == 1.0 and "\n" not in a.how for a in found)


def _state(*shapes, names=None, seed=0) -> OrderedDict:
    rng = np.random.default_rng(seed)
    names = names or [str(i) for i in range(len(shapes))]
    state = OrderedDict()
    for name, shape in zip(names, shapes):
        state[f"{name}.weight"] = rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))
        state[f"{name}.bias"] = rng.standard_normal(shape[0])
    return state


def _best_fits(state, source, images=IMAGES):
    """The first candidate gives what the nn.Sequential ``source`` gives with these weights."""
    seq_state = OrderedDict(zip((k for k in _sequential_keys(source)), state.values()))
    expected = reference(source, seq_state)(images)
    found = torch_architectures(state, "model.pt")
    first = build_network(found[0].spec, params=found[0].params, dtype=np.float64)
    return close(first.scores(images), expected), found


def _sequential_keys(source):
    model = eval(source, {"nn": NN})
    return [f"{i}.{n}" for i, m in enumerate(model.modules) for n in m.shapes]


def test_the_pytorch_examples_mnist_net_is_recognised():
    # pytorch/examples mnist: conv1 3×3 (32), conv2 3×3 (64), max_pool2d(2) after the second only, fc1 9216 → 128, fc2
    state = _state((32, 1, 3, 3), (64, 32, 3, 3), (128, 9216), (10, 128), names=["conv1", "conv2", "fc1", "fc2"])
    ok, found = _best_fits(state, "nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), "
                                  "nn.MaxPool2d(2), nn.Flatten(), nn.Linear(9216, 128), nn.ReLU(), nn.Linear(128, 10))")
    assert ok
    assert found[0].name == "CNN conv3x3(32)-conv3x3(64)-pool-fc(128)-fc(10)"
    assert "conv1 pad 0, conv2 pad 0 + 2×2 max-pool give the 9,216 inputs fc1 takes" in found[0].how


@pytest.mark.parametrize("shapes, source", [
    # LeNet-5 on MNIST pads its first convolution by 2
    ([(6, 1, 5, 5), (16, 6, 5, 5), (120, 400), (84, 120), (10, 84)],
     "nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(), "
     "nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))"),
    # the TensorFlow tutorial's net: "same" convolutions, a pool after each
    ([(32, 1, 5, 5), (64, 32, 5, 5), (1024, 3136), (10, 1024)],
     "nn.Sequential(nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 5, padding=2), "
     "nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(3136, 1024), nn.ReLU(), nn.Linear(1024, 10))"),
    ([(8, 1, 3, 3), (10, 1568)],
     "nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(1568, 10))"),
])
def test_common_cnn_layouts_come_first(shapes, source):
    assert _best_fits(_state(*shapes), source)[0]


def test_strided_convolutions_are_among_the_candidates():
    state = _state((16, 1, 3, 3), (32, 16, 3, 3), (10, 32 * 7 * 7))
    source = ("nn.Sequential(nn.Conv2d(1, 16, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, stride=2, "
              "padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(1568, 10))")
    expected = reference(source, OrderedDict(zip(_sequential_keys(source), state.values())))(IMAGES)
    found = torch_architectures(state, "model.pt")
    assert 1 < len(found) <= 8 and "most common of" in found[0].how
    assert any(close(build_network(a.spec, params=a.params, dtype=np.float64).scores(IMAGES), expected) for a in found)


def test_a_bias_free_linear_gets_zero_biases_and_says_so():
    state = _state((20, 784), (10, 20), names=["fc1", "fc2"])
    del state["fc1.bias"]
    (mlp,) = torch_architectures(state, "model.pt")
    assert mlp.name == "MLP 784-20-10" and not mlp.params["b1"].any() and "no bias in fc1 (zeros)" in mlp.how
    assert mlp.params["W1"].shape == (784, 20) and mlp.params["W1"].flags.c_contiguous
    assert not np.shares_memory(mlp.params["W2"], state["fc2.weight"])


def test_numbers_in_names_sort_as_numbers():
    assert sorted(["layers.10", "layers.2", "fc10", "fc9"], key=natural_key) == ["fc9", "fc10", "layers.2", "layers.10"]
    state = _state((30, 784), (30, 30), (10, 30), names=["layers.2", "layers.10", "layers.11"])
    (mlp,) = torch_architectures(OrderedDict(sorted(state.items())), "model.pt")  # string order: 10, 11, 2
    assert all(mlp.params[f"W{i}"].T is not None and np.array_equal(mlp.params[f"W{i}"].T, state[f"{p}.weight"])
               for i, p in enumerate(["layers.2", "layers.10", "layers.11"], start=1))
    assert "ordered by name" in mlp.how


def test_layers_named_out_of_order_are_chained_by_their_shapes():
    state = _state((50, 30), (30, 784), (10, 50), names=["a", "b", "c"])
    (mlp,) = torch_architectures(state, "model.pt")
    assert mlp.name == "MLP 784-30-50-10" and "ordered so that the shapes chain" in mlp.how


@pytest.mark.parametrize("state, message", [
    ({**_state((20, 784)), "bn1.running_mean": np.zeros(20), "bn1.running_var": np.ones(20)},
     r"model.pt: BatchNorm layers \(bn1.running_mean \(20,\), bn1.running_var \(20,\)\) are not supported yet"),
    ({"rnn.weight_ih_l0": np.zeros((512, 28)), "rnn.weight_hh_l0": np.zeros((512, 128)), **_state((10, 128))},
     r"recurrent layers \(LSTM/GRU/RNN: rnn.weight_ih_l0 \(512, 28\)"),
    ({"embedding.weight": np.zeros((100, 16)), **_state((10, 16))}, r"Embedding layers \(embedding.weight \(100, 16\)"),
    ({"attn.in_proj_weight": np.zeros((3, 3)), **_state((10, 784))}, r"entries attn.in_proj_weight \(3, 3\) are not"),
    (_state((8, 1, 5)), r"0.weight has shape \(8, 1, 5\): a 3-D weight is a Conv1d"),
    (_state((8, 1, 3, 3, 3)), r"a 5-D weight is a Conv3d"),
    ({"ln.weight": np.ones(784), **_state((10, 784))}, r"ln.weight has shape \(784,\): a 1-D weight belongs to a normal"),
    (_state((8, 1, 3, 5), (10, 8)), r"0.weight has shape \(8, 1, 3, 5\): DigitLab's convolutions take square kernels"),
    (_state((128, 1000), (10, 128), names=["fc1", "fc2"]),
     r"fc1.weight \(128, 1000\) takes 1,000 inputs but an image has 784 pixels"),
    (_state((32, 3, 5, 5), (10, 32 * 24 * 24)), r"0.weight \(32, 3, 5, 5\) takes 3 input channels but an MNIST image has 1"),
    (_state((64, 784), (5, 64), names=["fc1", "fc2"]), r"fc2.weight \(5, 64\) gives 5 outputs but there are 10 digit"),
    (_state((128, 784), (64, 100), (10, 64), names=["fc1", "fc2", "fc3"]),
     r"fc2.weight \(64, 100\) takes 100 inputs but fc1.weight \(128, 784\) gives 128: the layers do not chain"),
    (_state((32, 1, 5, 5), (64, 16, 5, 5), (10, 64), names=["conv1", "conv2", "fc"]),
     r"conv2.weight \(64, 16, 5, 5\) takes 16 channels but conv1.weight \(32, 1, 5, 5\) gives 32"),
    (_state((32, 1, 5, 5), (128, 9000), (10, 128), names=["conv1", "fc1", "fc2"]),
     r"the conv layers give 32×24×24 or 32×12×12 \(or other sizes .*\) but fc1.weight \(128, 9000\) takes 9,000 inputs"),
    (_state((8, 1, 3, 3), (10, 8, 3, 3)), r"Conv2d layers \(0.weight \(8, 1, 3, 3\), 1.weight .*without a Linear layer"),
    ({"fc.weight": np.zeros((10, 784)), "fc.bias": np.zeros(5)}, r"fc.bias has shape \(5,\) but fc.weight has shape"),
    ({"fc.bias": np.zeros(10)}, r"fc.bias \(10,\) has no fc.weight beside it"),
    ({"fc.weight": np.zeros((10, 784), np.int64)}, r"fc.weight has dtype int64"),
    ({3: np.zeros((10, 784))}, r"a state_dict entry is named 3"),
    ({}, r"holds no weight arrays"),
])
def test_what_digitlab_cannot_read_is_refused_in_one_line(state, message):
    with pytest.raises(WeightFileError, match=message) as caught:
        torch_architectures(state, "model.pt")
    assert str(caught.value).startswith("model.pt: ") and "\n" not in str(caught.value)


# ----------------------------------------------------------------------------- files DigitLab wrote


@pytest.mark.parametrize("name", ["mlp on [0, 255]", "mlp with dropouts first and last", "lenet normalised",
                                  "deep convnet with dropout", "strided, padded pooling, tanh"])
def test_a_stored_spec_gets_back_the_networks_own_weights(name):
    net = NETWORKS[name]()
    state, _ = to_torch(net)
    params = from_stored_spec(_renamed(state, "features/classifier sorted"), net.spec(), "model.pt")
    assert list(params) == list(net.params)
    assert all(np.allclose(params[k], v, rtol=1e-12, atol=1e-12) for k, v in net.params.items())
    assert close(build_network(net.spec(), params=params, dtype=np.float64).scores(IMAGES), net.scores(IMAGES), 1e-12)


def test_a_stored_spec_that_does_not_fit_the_weights_is_refused():
    state, _ = to_torch(_net(lenet_spec()))
    with pytest.raises(WeightFileError, match=r"model.pt: 3.weight \(16, 8, 5, 5\) does not fit: the stored network's "
                                              r"layer 2 is a 5×5 conv with 32 filters"):
        from_stored_spec(state, lenet_spec(filters=(8, 32)), "model.pt")
    with pytest.raises(WeightFileError, match="the stored network has 3 conv/affine layers but the file holds 4"):
        from_stored_spec(state, simple_convnet_spec(), "model.pt")


# ----------------------------------------------------------------------------- with PyTorch itself


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch", reason="torch is not installed: the NumPy reference above covers the export")


@pytest.mark.parametrize("name", ["mlp on [0, 255]", "lenet", "deep convnet with dropout", "lenet normalised",
                                  "mlp sigmoid normalised", "strided, padded pooling, tanh"])
def test_torch_loads_the_export_and_computes_the_same(torch, name):
    net = NETWORKS[name]()
    state, source = to_torch(net)
    model = eval(source, {"nn": torch.nn}).double().eval()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})  # strict
    with torch.no_grad():
        out = model(torch.from_numpy(IMAGES)).numpy()
    assert close(out, net.scores(IMAGES), 1e-6)


@pytest.mark.parametrize("layers", [
    "nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Dropout(0.2), nn.Linear(64, 10)",
    "nn.Conv2d(1, 32, 3, 1), nn.ReLU(), nn.Conv2d(32, 64, 3, 1), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.25), "
    "nn.Flatten(), nn.Linear(9216, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 10)",
    "nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), "
    "nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10)",
    "nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(), "
    "nn.Flatten(), nn.Linear(784, 10, bias=False)",
])
def test_real_torch_models_come_back_through_the_candidates(torch, layers):
    torch.manual_seed(0)
    model = eval(f"nn.Sequential({layers})", {"nn": torch.nn}).double().eval()
    state = OrderedDict((k, v.numpy()) for k, v in model.state_dict().items())
    with torch.no_grad():
        expected = model(torch.from_numpy(IMAGES)).numpy()
    found = torch_architectures(state, "model.pt")
    scores = [build_network(a.spec, params=a.params, dtype=np.float64).scores(IMAGES) for a in found]
    assert any(close(s, expected, 1e-6) for s in scores)


@settings(max_examples=200)
@given(st.lists(st.tuples(st.sampled_from(["0", "fc1", "a.b.2", "conv", "x.10", ""]),
                          st.sampled_from(["weight", "bias", "running_mean"]),
                          st.lists(st.one_of(st.integers(0, 12), st.sampled_from([10, 784, 1568])), min_size=0, max_size=5)), max_size=6))
def test_any_state_dict_is_read_or_refused_with_a_weight_file_error(entries):
    assume(all(np.prod(shape) <= 100_000 for _, _, shape in entries))  # the arrays a test may allocate
    state = {f"{path}.{leaf}".lstrip("."): np.ones(shape) for path, leaf, shape in entries}
    try:
        found = torch_architectures(state, "model.pt")
    except WeightFileError as exc:
        assert "\n" not in str(exc)
    else:
        assert all(build_network(a.spec, params=a.params).scores(IMAGES[:1]).shape == (1, 10) for a in found)


def test_a_float32_network_exports_float32_weights_that_torch_agrees_with(torch):
    net = build_network({**lenet_spec(), "input_scale": 255.0}, seed=1)
    state, source = to_torch(net)
    assert all(v.dtype == np.float32 for v in state.values())
    model = eval(source, {"nn": torch.nn}).eval()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    with torch.no_grad():
        out = model(torch.from_numpy(IMAGES.astype(np.float32))).numpy()
    assert close(out, net.scores(IMAGES.astype(np.float32)), 1e-5)  # float32 sums in another order
