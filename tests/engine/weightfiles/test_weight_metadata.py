"""DigitLab .npz files: metadata parsed with bounds, every number of a stored spec checked, a forward pass's
memory computed before anything is allocated, zip directories checked before they are listed."""
from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import engine.util
from engine.errors import UnsafePickleError, WeightFileError
from engine.nn.models import deep_convnet_spec, simple_convnet_spec, small_cnn_spec
from engine.nn.network import make_mlp
from engine.nn.spec_check import SpecError, spec_footprint
from engine.weightfiles import checks, metadata
from engine.weightfiles.metadata import for_display, json_depth, parse_metadata
from engine.weightfiles.npz import check_directory
from engine.weightfiles.read import FORMAT_NAME, METADATA_KEY
from engine.weightfiles.recognise import inspect_weights, load_weights


def npz_with(tmp_path, meta, params=None, name="m.npz"):
    params = params if params is not None else make_mlp([784, 6, 10], "relu").params
    text = meta if isinstance(meta, str) else json.dumps(meta)
    np.savez(tmp_path / name, **params, **{METADATA_KEY: np.array(text)})
    return tmp_path / name


def _nesting(value) -> int:
    if isinstance(value, list):
        return 1 + max((_nesting(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_nesting(v) for v in value.values()), default=0)
    return 0


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ ab\u00e9\u2603', max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(alphabet='[]{}"\\a', max_size=5), inner,
                                                                  max_size=3),
    max_leaves=25)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=_JSON_VALUES, chunk=st.sampled_from([1, 2, 3, 7, 1 << 22]), ascii_only=st.booleans())
def test_json_depth_is_the_nesting_of_any_json_text_read_a_chunk_at_a_time(monkeypatch, value, chunk, ascii_only):
    """Strings full of brackets, quotes and backslashes, cut anywhere by the chunks: the depth is json's own."""
    monkeypatch.setattr(metadata, "_DEPTH_CHUNK", chunk)
    text = json.dumps(value, ensure_ascii=ascii_only)
    assert json_depth(text) == json_depth(text.encode("utf-8")) == _nesting(value)


def test_json_depth_counts_brackets_outside_strings():
    assert json_depth('{"a": [1, {"b": "[[[[{{{"}]}') == 3
    assert json_depth('"]]]"') == 0 and json_depth("[" * 500 + "]" * 500) == 500
    assert json_depth(r'{"a\"[": [["x\\"]]}') == 3  # escaped quotes do not end a string


@pytest.mark.parametrize("text, message", [
    ("[" * 100_000 + "]" * 100_000, "nested 100,000 levels"),
    ('{"out": 1e400}', "too large"),
    ('{"out": -1e400}', "too large"),
    ('{"x": NaN}', "NaN is not a number"),
    ('{"x": Infinity}', "Infinity is not a number"),
    ('{"x": ' + "7" * 5000 + "}", "5,000 digits"),
    ('{"x": 1.' + "5" * 5000 + "}", "characters"),
    ("[1, 2]", "not an object"),
    ("{oops", "JSONDecodeError"),
])
def test_metadata_that_cannot_be_used_is_refused_in_one_line(text, message):
    with pytest.raises(WeightFileError, match=message) as info:
        parse_metadata(text, "f.npz", METADATA_KEY)
    assert str(info.value).startswith("f.npz: the __digitlab__ entry") and "\n" not in str(info.value)


def test_metadata_for_display_is_shortened():
    shown = for_display({"saved_at": "\x1b[2J" + "x" * 10_000, "k" * 500: list(range(1000)), "n": 3})
    text = json.dumps(shown)
    assert len(text) < 2000 and shown["n"] == 3
    assert any("more items" in str(v) for v in shown.values())


def test_the_books_networks_and_ours_fit_the_forward_budget():
    for spec in (deep_convnet_spec(), simple_convnet_spec(), small_cnn_spec(), make_mlp([784, 1000, 1000, 10]).spec()):
        peak, total = spec_footprint(spec)
        assert peak * checks.EVAL_BATCH * 8 <= checks.FORWARD_BUDGET  # even in float64
        assert 2 * total * checks.TRAIN_BATCH * 8 <= checks.FORWARD_BUDGET


@pytest.mark.parametrize("change, message", [
    ({"pad": 1000}, "pad must be a whole number from 0 to 32, not 1000"),
    ({"stride": 10**12}, "stride must be a whole number"),
    ({"size": True}, "size must be a whole number"),
    ({"size": 5.5}, "size must be a whole number"),
    ({"filters": "8"}, "filters must be a whole number"),
    ({"channels": 3}, "expects 3 input channels"),
])
def test_every_number_of_a_conv_layer_is_checked(tmp_path, change, message):
    spec = small_cnn_spec()
    spec["layers"][0].update(change)
    with pytest.raises(SpecError, match=message):
        spec_footprint(spec)
    net_params = {k: v for k, v in load_weights(npz_with(tmp_path, {"format": FORMAT_NAME, "spec": small_cnn_spec()},
                                                        _cnn_params())).network.params.items()}
    with pytest.raises(WeightFileError, match="damaged.*" + message.split(",")[0]):
        load_weights(npz_with(tmp_path, {"format": FORMAT_NAME, "spec": spec}, net_params, "bad.npz"))


@pytest.mark.parametrize("shift", [float("nan"), 1e9, "0.5", True])
def test_a_stored_input_shift_out_of_range_is_refused(shift):
    with pytest.raises(SpecError, match="input_shift must be a number"):
        spec_footprint(dict(small_cnn_spec(), input_shift=shift))


def _cnn_params():
    from engine.nn.models import make_cnn

    return make_cnn(small_cnn_spec(), seed=0).params


def test_a_spec_within_every_limit_but_too_big_to_run_is_refused_before_running(tmp_path):
    spec = {"input_shape": [1, 28, 28], "loss": "cross-entropy", "input_scale": 1.0, "layers": [
        {"type": "conv", "filters": 1000, "channels": 1, "size": 1, "stride": 1, "pad": 32},
        {"type": "pool", "size": 2, "stride": 64, "pad": 0}, {"type": "affine", "in": 4000, "out": 10}]}
    params = {"W1": np.zeros((1000, 1, 1, 1), np.float32), "b1": np.zeros(1000, np.float32),
              "W2": np.zeros((4000, 10), np.float32), "b2": np.zeros(10, np.float32)}
    path = npz_with(tmp_path, {"format": FORMAT_NAME, "spec": spec}, params)
    with pytest.raises(WeightFileError, match=r"would need 3\d\.\d GiB .* more than the 2 GiB limit"):
        load_weights(path)
    info = inspect_weights(path)
    assert not info["recognised"] and "GiB limit" in info["error"]


def test_input_other_than_a_28_by_28_image_is_refused(tmp_path):
    spec = make_mlp([100, 10]).spec()
    with pytest.raises(WeightFileError, match="not a 28×28 image"):
        load_weights(npz_with(tmp_path, {"format": FORMAT_NAME, "spec": spec}, make_mlp([100, 10]).params))


def test_inspect_shortens_what_the_file_says(tmp_path):
    meta = {"format": FORMAT_NAME, "spec": make_mlp([784, 6, 10]).spec(), "saved_at": "\x1b[31m" + "x" * 500_000,
            "digitlab_version": "v" * 10_000, "training": {"k" * 1000: list(range(10_000))}}
    path = npz_with(tmp_path, meta)
    info = inspect_weights(path)
    text = json.dumps(engine.util.to_jsonable(info))
    assert info["recognised"] and len(text) < 20_000 and len(info["summary"]) < 2_000
    assert load_weights(path).metadata["saved_at"] == meta["saved_at"]  # the program still gets the data as stored


def _zip_bytes(comment: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("W1.npy", b"x")
        zf.comment = comment
    return out.getvalue()


def test_zip_directory_is_found_where_zipfile_finds_it():
    check_directory(_zip_bytes(b"a comment"), "ok.npz")
    for data in (_zip_bytes(b"PK\x05\x06 in a comment"), b"PK\x03\x04" + b"\0" * 100):
        with pytest.raises(zipfile.BadZipFile):
            zipfile.ZipFile(io.BytesIO(data))  # unreadable for zipfile: refused by the check as well
        with pytest.raises(WeightFileError, match="damaged"):
            check_directory(data, "bad.npz")


_VALUES = st.one_of(st.integers(-3, 70), st.sampled_from([10**6, 10**12, 1.5, 2.0, None, True, "5", [], {}, "relu"]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 5), st.sampled_from(["pad", "stride", "size", "filters", "channels", "in", "out",
                                                             "type", "ratio"]), _VALUES), min_size=1, max_size=3))
def test_edited_specs_load_or_raise_one_weight_file_error(tmp_path, edits):
    spec = small_cnn_spec()
    for index, key, value in edits:
        spec["layers"][index][key] = value
    path = npz_with(tmp_path, {"format": FORMAT_NAME, "spec": spec}, _cnn_params())
    try:
        loaded = load_weights(path)
    except WeightFileError as exc:
        assert "\n" not in str(exc) and "please report" not in str(exc)
        return
    assert loaded.network.predict(np.zeros(784)).shape == (10,)


def test_npz_entries_declaring_more_than_they_hold_or_other_dtypes_are_refused(tmp_path):
    np.savez(tmp_path / "s.npz", W1=np.array(["a", "b"]))
    with pytest.raises(UnsafePickleError, match="plain numbers"):
        load_weights(tmp_path / "s.npz")
