"""Nielsen's networks: network.py objects pickled by Python 2 (protocols 0 and 2) and network2.py JSON saves."""
from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import engine.weightfiles.metadata as metadata
import engine.weightfiles.nielsen as nielsen
from engine.errors import WeightFileError
from engine.nn.network import build_network, mlp_spec
from engine.weightfiles.nielsen import is_network2_json, nielsen_params, read_network2_json
from engine.weightfiles.safe_pickle import loads
import nielsen_fixtures as fixtures
from nielsen_fixtures import (GlobalRef, feedforward, network2_json, network_pickle, nielsen_network, py2_state,
                              sigmoid)

REPO = Path(__file__).resolve().parents[3]
SIZES = [784, 30, 10]


# protocol 0 (cPickle's default) writes array data as Python 2 str (STRING with \xNN escapes); protocol 2 as BINSTRING
PROTOCOLS = [0, 2]


def _check_same_predictions(weights, biases, params, sizes, seed=3) -> None:
    """DigitLab's sigmoid MLP built from ``params`` answers as Nielsen's feedforward does, image by image."""
    x = np.random.default_rng(seed).random((40, sizes[0]))
    expected = np.hstack([feedforward(weights, biases, column.reshape(-1, 1)) for column in x]).T
    scores = build_network(mlp_spec(sizes, "sigmoid"), params=params).scores(x.astype(np.float32))
    np.testing.assert_array_equal(scores.argmax(axis=1), expected.argmax(axis=1))
    np.testing.assert_allclose(sigmoid(scores.astype(np.float64)), expected, atol=1e-5)  # float32 inside DigitLab


def _expect_params(params, weights, biases) -> None:
    assert sorted(params) == sorted([f"W{i}" for i in range(1, len(weights) + 1)] +
                                    [f"b{i}" for i in range(1, len(biases) + 1)])
    for i, (w, b) in enumerate(zip(weights, biases), start=1):
        np.testing.assert_array_equal(params[f"W{i}"], w.T)
        np.testing.assert_array_equal(params[f"b{i}"], b.ravel())
        assert params[f"W{i}"].flags.c_contiguous and params[f"W{i}"].dtype == np.float64


# ----------------------------------------------------------------------------- network.py pickles
@pytest.mark.parametrize("module", ["network", "__main__"])
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_python2_network_pickle_reads_as_transposed_params_with_nielsens_predictions(protocol, module):
    weights, biases = nielsen_network(SIZES, seed=1)
    data = network_pickle(py2_state(SIZES, weights, biases), protocol, module)
    assert b"cnumpy.core.multiarray\n_reconstruct\n" in data and b"numpy._core" not in data  # numpy 1.x names
    assert "network" not in sys.modules and not hasattr(sys.modules["__main__"], "Network")  # writer cleaned up
    params, notes = nielsen_params(loads(data, "net.pkl"))
    _expect_params(params, weights, biases)
    assert f"{module}.Network" in notes[0] and "sigmoid" in notes[0] and "784 -> 30 -> 10" in notes[0]
    _check_same_predictions(weights, biases, params, SIZES)
    assert "network" not in sys.modules


@pytest.mark.parametrize("protocol", [0, 2])
def test_the_fixture_is_what_pythons_own_unpickler_reads_into_a_network(protocol):
    """The writer is checked against the real thing: pickle.loads with a Network class importable, as Nielsen's."""
    weights, biases = nielsen_network([5, 3, 2])
    data = network_pickle(py2_state([5, 3, 2], weights, biases), protocol)
    cls = type("Network", (), {"__module__": "network", "__qualname__": "Network"})
    with fixtures.importable("network", cls), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # numpy 2 still resolves numpy.core.*, with a warning
        net = pickle.loads(data, encoding="latin1")
    assert type(net) is cls and net.sizes == [5, 3, 2] and net.num_layers == 3
    for got, want in zip(net.weights + net.biases, weights + biases):
        np.testing.assert_array_equal(got, want)
    assert "network" not in sys.modules


def test_a_deeper_network_and_a_plain_dict_read_the_same_way():
    sizes = [784, 20, 15, 10]
    weights, biases = nielsen_network(sizes, seed=2)
    params, notes = nielsen_params({"sizes": list(np.array(sizes)), "num_layers": np.int64(4), "weights": weights,
                                    "biases": biases})  # numpy integers count as sizes too
    _expect_params(params, weights, biases)
    assert "a pickled dict" in notes[0]
    _check_same_predictions(weights, biases, params, sizes)


def test_a_pickled_network2_object_names_its_cost_class_without_importing_it():
    weights, biases = nielsen_network([784, 5, 10])
    state = py2_state([784, 5, 10], weights, biases, extra={"cost": GlobalRef("network2", "CrossEntropyCost")})
    params, notes = nielsen_params(loads(network_pickle(state, 2, "network2")))
    _expect_params(params, weights, biases)
    assert "network2.Network" in notes[0]
    assert notes[1] == "cost CrossEntropyCost (training only; it does not change predictions)"
    assert "network2" not in sys.modules


@pytest.mark.parametrize("obj", [
    {"W1": np.zeros((784, 10)), "b1": np.zeros(10)},  # the book's params dict: not Nielsen's
    {"weights": [], "biases": []},
    {"weights": [1.0, 2.0], "biases": [np.zeros((2, 1))]},  # no arrays among the weights
    {"weights": np.zeros((3, 2)), "biases": [np.zeros((3, 1))]},  # an array, not a list of layers
    {"biases": [np.zeros((3, 1))]},
    [np.zeros((3, 2)), np.zeros((3, 1))],
    None,
])
def test_objects_that_are_not_nielsens_give_none(obj):
    assert nielsen_params(obj) is None


def test_a_stand_in_without_weights_gives_none():
    data = network_pickle({b"params": {"W1": np.zeros((2, 2))}}, 2)
    assert nielsen_params(loads(data)) is None


def _net(**change):
    weights, biases = nielsen_network([6, 4, 3])
    obj = {"sizes": [6, 4, 3], "num_layers": 3, "weights": weights, "biases": biases}
    obj.update(change)
    return obj


W, B = nielsen_network([6, 4, 3])


@pytest.mark.parametrize("obj, message", [
    (_net(biases=B[:1]), "2 weight matrices but 1 bias vectors"),
    (_net(biases=[B[0].ravel(), B[1]]), "biases[0] has shape (4,), not (4, 1) to match weights[0] of shape (4, 6)"),
    (_net(biases=[B[0], np.zeros((2, 1))]), "biases[1] has shape (2, 1), not (3, 1)"),
    (_net(weights=[W[0].ravel(), W[1]]), "weights[0] has shape (24,), not (out, in)"),
    (_net(weights=[W[0], np.zeros((3, 5))]), "weights[1] has shape (3, 5): it takes 5 inputs but layer 1 "
                                             "(weights[0]) has 4 outputs"),
    (_net(weights=[W[0], "oops"]), "weights[1] is a str, not an array"),
    (_net(weights=[W[0], W[1].astype(complex)]), "weights[1] holds complex128 values, not real numbers"),
    (_net(weights=[W[0], np.where(W[1] > 0, np.nan, W[1])]), "weights[1] holds"),
    (_net(biases=[B[0], np.full((3, 1), np.inf)]), "biases[1] holds 3 NaN or infinite values"),
    (_net(sizes=[6, 5, 3]), "sizes says [6, 5, 3] but the weights are 6 -> 4 -> 3"),
    (_net(sizes="6,4,3"), "sizes is a str, not a list of layer sizes"),
    (_net(sizes=[6, 4, 3.0]), "sizes is a list, not a list of layer sizes"),
    (_net(num_layers=4), "num_layers is 4 but the weights make 3 layers (6 -> 4 -> 3)"),
])
def test_inconsistent_networks_are_refused_naming_what_disagrees(obj, message):
    with pytest.raises(WeightFileError, match="^net.pkl: ") as err:
        nielsen_params(obj, "net.pkl")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_an_inconsistent_pickle_is_refused_by_name_through_the_safe_unpickler():
    weights, biases = nielsen_network(SIZES)
    data = network_pickle(py2_state([784, 31, 10], weights, biases), 2)
    with pytest.raises(WeightFileError, match=r"sizes says \[784, 31, 10\] but the weights are 784 -> 30 -> 10"):
        nielsen_params(loads(data, "net.pkl"))


def test_loading_never_imports_the_network_module(tmp_path):
    """A ``network.py`` trap on the path would leave a marker if anything imported it."""
    weights, biases = nielsen_network([784, 3, 10])
    (tmp_path / "net.pkl").write_bytes(network_pickle(py2_state([784, 3, 10], weights, biases), 2))
    (tmp_path / "network.py").write_text("open('IMPORTED', 'w').close()\n")
    script = textwrap.dedent("""
        import sys
        from engine.weightfiles.nielsen import nielsen_params
        from engine.weightfiles.safe_pickle import loads
        params, notes = nielsen_params(loads(open("net.pkl", "rb").read(), "net.pkl"))
        assert sorted(params) == ["W1", "W2", "b1", "b2"], params
        assert "network" not in sys.modules
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(REPO)]))
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "IMPORTED").exists()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cut=st.integers(0, 10_000), flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)),
                                                   max_size=3))
def test_corrupt_pickles_give_only_weight_file_errors(cut, flips):
    weights, biases = nielsen_network([20, 4, 3])
    data = bytearray(network_pickle(py2_state([20, 4, 3], weights, biases), 2))
    for pos, mask in flips:
        data[pos % len(data)] ^= mask
    try:
        nielsen_params(loads(bytes(data[: cut % (len(data) + 1)]), "net.pkl"), "net.pkl")
    except WeightFileError as exc:
        assert str(exc).startswith("net.pkl: ") and "\n" not in str(exc)


# ----------------------------------------------------------------------------- network2.py JSON
@pytest.mark.parametrize("order", [("sizes", "weights", "biases", "cost"), ("biases", "cost", "weights", "sizes"),
                                   ("cost", "sizes", "biases", "weights")])
def test_network2_json_reads_as_transposed_params_with_nielsens_predictions(order):
    weights, biases = nielsen_network(SIZES, seed=4)
    data = network2_json(SIZES, weights, biases, order=order)
    assert is_network2_json(data)
    params, notes, info = read_network2_json(data, "net.json")
    _expect_params(params, weights, biases)  # repr() of floats round-trips exactly
    assert info == {"cost": "CrossEntropyCost", "sizes": SIZES, "activation": "sigmoid"}
    assert "network2.py" in notes[0] and "sigmoid" in notes[0]
    assert notes[1] == "cost CrossEntropyCost (training only; it does not change predictions)"
    _check_same_predictions(weights, biases, params, SIZES)


def test_costs_other_than_network2s_and_a_missing_cost_are_noted_not_refused():
    weights, biases = nielsen_network([6, 4, 3])
    _, notes, info = read_network2_json(network2_json([6, 4, 3], weights, biases, cost="QuadraticCost"), "n.json")
    assert info["cost"] == "QuadraticCost"
    _, notes, info = read_network2_json(network2_json([6, 4, 3], weights, biases, cost="[[[[[[[[[[[[\\\"]]"), "n.json")
    assert "is not one network2.py defines" in notes[1]  # brackets inside a string do not count as nesting
    _, notes, info = read_network2_json(network2_json([6, 4, 3], weights, biases, order=("weights", "biases")),
                                        "n.json")
    assert info["cost"] is None and notes[1].startswith("no cost is named")


@pytest.mark.parametrize("data, expected", [
    (b'{"sizes": [784, 30, 10], "weights": []}', True),
    (b'\xef\xbb\xbf \n\t{ "biases": [[[0.1]]]}', True),
    (b'{"cost": "QuadraticCost"}', True),
    (b'{"spec": {}, "weights": []}', False),
    (b'[{"sizes": [1, 2]}]', False),
    (b"\x80\x02cnetwork\nNetwork\n", False),
    (b"", False),
    (b" " * 5000 + b'{"sizes": []}', False),  # cheap: only the first 4 KB are looked at
])
def test_network2_json_is_told_apart_by_its_first_key(data, expected):
    assert is_network2_json(data) is expected


def _json(**change) -> bytes:
    weights, biases = nielsen_network([4, 3, 2])
    value = {"sizes": [4, 3, 2], "weights": [w.tolist() for w in weights], "biases": [b.tolist() for b in biases],
             "cost": "CrossEntropyCost"}
    value.update(change)
    return json.dumps(value).encode()


_W, _B = [w.tolist() for w in nielsen_network([4, 3, 2])[0]], [b.tolist() for b in nielsen_network([4, 3, 2])[1]]


@pytest.mark.parametrize("data, message", [
    (b"[1, 2]", "a JSON list, not network2.py's object"),
    (b'{"sizes": [4, 2], "weights": [[[1.0]]]}', "the JSON object has no biases (keys: sizes, weights)"),
    (_json(weights=[_W[0], [[1.0, 2.0, 3.0], [1.0]]]), "weights[1] is not rectangular: row 0 has 3 numbers, "
                                                        "row 1 has 1"),
    (_json(weights=[_W[0], [[1.0, "2", 3.0], _W[1][1]]]), "weights[1], row 0 holds '2', not a number"),
    (_json(weights=[_W[0], [[1.0, True, 3.0], _W[1][1]]]), "weights[1], row 0 holds True, not a number"),
    (_json(biases=[_B[0], [[0.5], [None]]]), "biases[1], row 1 holds None, not a number"),
    (_json(biases=[_B[0], [0.5, 0.5]]), "biases[1], row 0 is a float, not a list of numbers"),
    (_json(biases=[_B[0], []]), "biases[1] is an empty list, not a list of rows"),
    (_json(weights={"0": 1}), "weights is a dict, not a non-empty list of layers"),
    (_json(biases=[_B[0], [[0.5], [0.5], [0.5]]]), "biases[1] has shape (3, 1), not (2, 1)"),
    (_json(sizes=[4, 3, 3]), "sizes says [4, 3, 3] but the weights are 4 -> 3 -> 2"),
    (_json(cost=3), "cost is an int, not the name of a cost class"),
    (_json(weights=[_W[0], [[float("inf"), 0.0, 0.0], _W[1][1]]]).replace(b"Infinity", b"1e400"),
     "weights[1] holds 1 NaN or infinite values (the network diverged)"),
    (_json(weights=[_W[0], [[10 ** 400, 0.0, 0.0], _W[1][1]]]), "weights[1] holds a number float64 cannot hold"),
    (b'{"weights": [[[' + b"9" * 5000 + b']]], "biases": [[[1.0]]]}', "not a readable network2.py JSON file"),
    (_json()[:-20], "not a readable network2.py JSON file"),
    (b'{"weights": "\xff"}', "not UTF-8 text: byte 13 is 0xff"),
    (b"[" * 100_000 + b"]" * 100_000, "nested 100,000 levels deep; network2.py writes 4"),
    (b'{"weights": [[[' * 3 + b"1" + b"]]]" * 3 + b"}" * 3, "nested 12 levels deep"),
], ids=lambda v: v[:60] if isinstance(v, str) else "")
def test_bad_network2_json_is_refused_in_one_line_naming_the_layer(data, message):
    with pytest.raises(WeightFileError, match="^net.json: ") as err:
        read_network2_json(data, "net.json")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_nan_weights_are_refused_naming_the_layer():
    text = _json(weights=[_W[0], [[0.5, 0.5, 0.5], [0.5, 0.5, 0.5]]]).replace(b"[[0.5, 0.5", b"[[NaN, 0.5", 1)
    with pytest.raises(WeightFileError, match=r"weights\[1\] holds 1 NaN or infinite values"):
        read_network2_json(text, "net.json")


def test_limits_on_size_numbers_and_quotes_apply_before_parsing(monkeypatch):
    data = _json()
    monkeypatch.setattr(nielsen, "MAX_JSON_BYTES", len(data) - 1)
    with pytest.raises(WeightFileError, match=f"{len(data):,} bytes; at most"):
        read_network2_json(data, "net.json")
    monkeypatch.undo()
    monkeypatch.setattr(nielsen, "MAX_JSON_NUMBERS", 10)
    with pytest.raises(WeightFileError, match="numbers; at most 10"):
        read_network2_json(data, "net.json")
    monkeypatch.undo()
    with pytest.raises(WeightFileError, match="quote characters"):
        read_network2_json(b'{"weights": [' + b'"",' * 6000 + b"1]}", "net.json")


def test_recursion_in_the_json_parser_is_caught_if_the_depth_limit_is_lifted(monkeypatch):
    monkeypatch.setattr(nielsen, "MAX_JSON_DEPTH", 10 ** 9)
    with pytest.raises(WeightFileError, match="^net.json: not a readable network2.py JSON file .*Recursion"):
        read_network2_json(b"[" * 200_000 + b"]" * 200_000, "net.json")


def test_depth_is_counted_across_chunks(monkeypatch):
    monkeypatch.setattr(metadata, "_DEPTH_CHUNK", 7)
    assert metadata.json_depth(b'{"a": "[[[[", "b": [[[[1]]], [2]]}') == 5
    assert metadata.json_depth(b'"\\"[[[["[[') == 2  # an escaped quote does not end the string
    weights, biases = nielsen_network([6, 4, 3])
    read_network2_json(network2_json([6, 4, 3], weights, biases), "net.json")


@settings(max_examples=200, deadline=None)
@given(cut=st.integers(0, 2_000), flips=st.lists(st.tuples(st.integers(0, 2_000), st.integers(1, 255)), max_size=3))
def test_corrupt_json_gives_only_weight_file_errors(cut, flips):
    data = bytearray(_json())
    for pos, mask in flips:
        data[pos % len(data)] ^= mask
    try:
        read_network2_json(bytes(data[: cut % (len(data) + 1)]), "net.json")
    except WeightFileError as exc:
        assert str(exc).startswith("net.json: ") and "\n" not in str(exc)
