"""engine.weightfiles.safetensors_io: files the reference writes load identically; every inconsistent header is refused.

The reference package (``safetensors``) is not a dependency: tests that compare with it skip without it.
"""
from __future__ import annotations

import io
import json
import pickle
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from container_fixtures import safetensors_bytes, tensor
from engine.errors import WeightFileError
from engine.weightfiles import safetensors_io
from engine.weightfiles.safetensors_io import is_safetensors, read_safetensors, write_safetensors

DTYPES = ["float64", "float32", "float16", "int64", "int32", "int16", "int8", "uint8", "uint16", "uint32", "uint64",
          "bool"]
FOUR_FLOATS = np.array([1.0, -2.0, 0.5, 3.0], "<f4").tobytes()


def sample_arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    arrays = {f"layer.{d}": (rng.standard_normal((3, 2)) * 60).astype(d) for d in DTYPES}
    arrays["scalar"] = np.array(2.5, np.float32)
    arrays["empty"] = np.zeros((0, 5), np.int16)
    arrays["transposed"] = np.arange(6, dtype=np.float64).reshape(2, 3).T  # not C-contiguous
    arrays["big-endian"] = np.arange(4, dtype=">i4")
    return arrays


def saved(arrays, metadata=None) -> bytes:
    f = io.BytesIO()
    write_safetensors(f, arrays, metadata)
    return f.getvalue()


def header_of(data: bytes) -> dict:
    (length,) = struct.unpack_from("<Q", data)
    return json.loads(data[8:8 + length])


# ----------------------------------------------------------------------------- our own round trip
@pytest.mark.parametrize("metadata", [None, {}, {"format": "pt", "digitlab": '{"spec": 1}', "ünïcode\n": "✓"}])
def test_round_trip_keeps_every_dtype_shape_value_and_the_metadata(metadata):
    arrays = sample_arrays()
    back, meta = read_safetensors(saved(arrays, metadata), "w.safetensors")
    assert meta == (metadata or {})
    assert back.keys() == arrays.keys()
    for name, arr in arrays.items():
        assert back[name].dtype == arr.dtype.newbyteorder("=") and back[name].dtype.isnative, name
        assert back[name].shape == arr.shape, name
        np.testing.assert_array_equal(back[name], arr)


def test_arrays_come_back_in_header_order_as_independent_writable_copies():
    data = saved({"b": np.ones(2, np.float32), "a": np.zeros(2, np.float32)})
    back, _ = read_safetensors(data, "w")
    assert list(back) == list(header_of(data))
    back["a"][0] = 7
    assert back["a"].flags.writeable and read_safetensors(data, "w")[0]["a"][0] == 0


def test_the_layout_matches_the_reference_writer():
    data = saved({"small": np.zeros(1, np.uint8), "b": np.zeros(1, np.float32), "a": np.zeros(1, np.float32),
                  "wide": np.zeros(1, np.float64), "flag": np.zeros(1, bool)}, {"k": "v"})
    (length,) = struct.unpack_from("<Q", data)
    text = data[8:8 + length]
    assert length % 8 == 0 and text.startswith(b'{"__metadata__":{"k":"v"},') and text.rstrip(b" ").endswith(b"}")
    header = header_of(data)
    # largest alignment first, then by name; buffers packed back to back from offset 0
    assert list(header) == ["__metadata__", "wide", "a", "b", "small", "flag"]
    assert [header[n]["data_offsets"] for n in list(header)[1:]] == [[0, 8], [8, 12], [12, 16], [16, 17], [17, 18]]
    assert len(data) == 8 + length + 18


def test_bfloat16_is_widened_to_float32_exactly():
    bits = np.array([0x3F80, 0xC020, 0x0000, 0x7F80, 0x0001], "<u2")  # 1, -2.5, 0, inf, the smallest subnormal
    data = safetensors_bytes({"w": tensor("BF16", [5], 0, 10)}, bits.tobytes())
    w = read_safetensors(data, "w")[0]["w"]
    assert w.dtype == np.float32
    np.testing.assert_array_equal(w, [1.0, -2.5, 0.0, np.inf, np.float32(2.0 ** -133)])


def test_any_nonzero_byte_reads_as_true():
    data = safetensors_bytes({"m": tensor("BOOL", [4], 0, 4)}, bytes([0, 1, 2, 255]))
    m = read_safetensors(data, "w")[0]["m"]
    assert m.dtype == bool and m.tolist() == [False, True, True, True]


def test_recognised_by_content():
    assert is_safetensors(saved({"w": np.zeros(2, np.float32)}))
    assert is_safetensors(saved({}))
    for other in [pickle.dumps({"W1": np.zeros(2)}), b"PK\x03\x04" + bytes(30), b"\x1f\x8b\x08" + bytes(20),
                  b'{"sizes": [784, 10]}', b"", struct.pack("<Q", 200_000_000) + b"{}"]:
        assert not is_safetensors(other), other[:12]


@pytest.mark.parametrize("arrays, metadata, message", [
    ({"w": np.zeros(2, np.complex64)}, None, "dtype complex64"),
    ({"w": np.array(["a"])}, None, "dtype <U1"),
    ({"w": np.array([None])}, None, "dtype object"),
    ({"__metadata__": np.zeros(2)}, None, "'__metadata__'"),
    ({3: np.zeros(2)}, None, "named 3"),
    ({"w": np.zeros(2)}, {"k": 1}, "only text"),
    ({"\ud800": np.zeros(2)}, None, "not valid Unicode"),
])
def test_the_writer_refuses_what_the_format_cannot_hold(arrays, metadata, message):
    with pytest.raises(WeightFileError, match=message.replace("(", r"\(")):
        saved(arrays, metadata)


# ----------------------------------------------------------------------------- refusals
def _raw(header_text: bytes, buffer: bytes = b"") -> bytes:
    return struct.pack("<Q", len(header_text)) + header_text + buffer


REFUSALS = {
    "header-over-format-limit": (struct.pack("<Q", 100_000_001) + b"{}", "the format allows at most 100,000,000"),
    "header-longer-than-file": (safetensors_bytes({}, b"", length=64), "claims 64 bytes but the file holds only 8"),
    "length-only": (b"\x08\0\0\0", "the header length alone is 8"),
    "not-utf8": (_raw(b'{"\xff":1}'), "not UTF-8"),
    "not-an-object": (_raw(b' {"w":1}'), "does not start with '{'"),
    "deep": (_raw(b'{"a":' + b"[" * 50 + b"]" * 50 + b"}"), "nests 51 levels deep"),
    "bad-json": (_raw(b'{"w":'), "not valid JSON"),
    "float-offset": (_raw(b'{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4.0]}}', bytes(4)), "whole numbers"),
    "nan": (_raw(b'{"w":{"dtype":"F32","shape":[NaN],"data_offsets":[0,4]}}', bytes(4)), "NaN"),
    "long-number": (_raw(b'{"w":{"dtype":"F32","shape":[' + b"9" * 5000 + b'],"data_offsets":[0,4]}}'),
                    "a number of 5,000 digits"),
    "duplicate-name": (_raw(b'{"w":{},"w":{}}'), "'w' appears twice"),
    "fp8": (safetensors_bytes({"w": tensor("F8_E4M3", [4], 0, 4)}, bytes(4)), "dtype F8_E4M3, which DigitLab does not"),
    "dtype-not-text": (safetensors_bytes({"w": tensor(4, [4], 0, 4)}, bytes(4)), "a dtype that is not text"),
    "negative-size": (safetensors_bytes({"w": tensor("F32", [-1], 0, 4)}, bytes(4)), "has shape [-1]"),
    "bool-size": (safetensors_bytes({"w": tensor("F32", [True], 0, 4)}, bytes(4)), "has shape [True]"),
    "shape-not-list": (safetensors_bytes({"w": tensor("F32", 4, 0, 16)}, FOUR_FLOATS), "not a list"),
    "too-many-dims": (safetensors_bytes({"w": tensor("U8", [1] * 33, 0, 1)}, bytes(1)), "at most 32 sizes"),
    "huge-axis": (safetensors_bytes({"w": tensor("U8", [0, 1 << 50], 0, 0)}, b""), "from 0 to"),
    "huge-with-zero": (safetensors_bytes({"w": tensor("F64", [0, 1 << 40, 1 << 40], 0, 0)}, b""),
                       "larger than any array can be"),
    "three-offsets": (safetensors_bytes({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8, 16]}},
                                        FOUR_FLOATS), "expected [begin, end]"),
    "begin-after-end": (safetensors_bytes({"w": tensor("F32", [0], 16, 8)}, FOUR_FLOATS), "0 <= begin <= end"),
    "past-end": (safetensors_bytes({"w": tensor("F32", [8], 0, 32)}, FOUR_FLOATS), "past the end of the data"),
    "size-mismatch": (safetensors_bytes({"w": tensor("F32", [2, 3], 0, 16)}, FOUR_FLOATS),
                      "(24 bytes) but its data_offsets hold 16"),
    "overlap": (safetensors_bytes({"w": tensor("F32", [2], 0, 8), "v": tensor("F32", [3], 4, 16)}, FOUR_FLOATS),
                "tensors 'w' and 'v' overlap"),
    "same-buffer-twice": (safetensors_bytes({"w": tensor("F32", [4], 0, 16), "v": tensor("F32", [4], 0, 16)},
                                            FOUR_FLOATS), "overlap"),
    "entry-not-object": (safetensors_bytes({"w": [1, 2]}, b""), "not described by dtype, shape and data_offsets"),
    "missing-offsets": (safetensors_bytes({"w": {"dtype": "F32", "shape": [4]}}, FOUR_FLOATS), "not described"),
    "metadata-number": (safetensors_bytes({"__metadata__": {"epochs": 3}}, b""), "'epochs' is a JSON int"),
    "metadata-list": (safetensors_bytes({"__metadata__": ["a"]}, b""), "a JSON list, not an object"),
}


@pytest.mark.parametrize("name", REFUSALS)
def test_inconsistent_files_are_refused_with_a_message_naming_file_and_tensor(name):
    data, message = REFUSALS[name]
    with pytest.raises(WeightFileError) as caught:
        read_safetensors(data, "model.safetensors")
    text = str(caught.value)
    assert text.startswith("model.safetensors: ") and message in text and "\n" not in text
    if " tensor " in text or " tensors " in text:  # a message about one tensor names it
        assert "'w'" in text


def test_more_than_ten_thousand_tensors_are_refused():
    header = {f"t{i}": tensor("F32", [0], 0, 0) for i in range(10_001)}
    with pytest.raises(WeightFileError, match="lists 10,001 tensors"):
        read_safetensors(safetensors_bytes(header, b""), "w")


def test_a_header_larger_than_any_weight_file_needs_is_refused_before_parsing(monkeypatch):
    monkeypatch.setattr(safetensors_io, "MAX_HEADER_JSON", 1000)
    data = safetensors_bytes({"__metadata__": {"note": "x" * 2000}}, b"")
    with pytest.raises(WeightFileError, match="refused: a safetensors header of 2,0"):
        read_safetensors(data, "w")


def test_zero_length_tensors_may_share_an_offset_with_a_real_one():
    data = safetensors_bytes({"e": tensor("F32", [0], 8, 8), "w": tensor("F32", [4], 0, 16)}, FOUR_FLOATS)
    back, _ = read_safetensors(data, "w")
    assert back["e"].shape == (0,) and back["w"].tolist() == [1.0, -2.0, 0.5, 3.0]


def test_names_from_the_file_are_escaped_in_messages():
    data = safetensors_bytes({"\x1b[2Jw": tensor("F32", [5], 0, 16)}, FOUR_FLOATS)
    with pytest.raises(WeightFileError) as caught:
        read_safetensors(data, "w")
    assert "\x1b" not in str(caught.value) and "\\x1b[2Jw" in str(caught.value)


# ----------------------------------------------------------------------------- the reference package
def test_our_files_are_byte_for_byte_the_reference_writers():
    numpy_api = pytest.importorskip("safetensors.numpy", reason="the safetensors package is not a dependency")
    contiguous = {k: v.astype(v.dtype.newbyteorder("<"), order="C") for k, v in sample_arrays().items()}
    for metadata in (None, {}, {"format": "np"}):  # the reference orders several metadata keys at random
        assert saved(sample_arrays(), metadata) == numpy_api.save(contiguous, metadata=metadata)


def test_the_reference_reader_loads_our_files(tmp_path):
    numpy_api = pytest.importorskip("safetensors.numpy", reason="the safetensors package is not a dependency")
    arrays = sample_arrays()
    path = tmp_path / "w.safetensors"
    path.write_bytes(saved(arrays, {"a": "1", "b": "2"}))
    loaded = numpy_api.load_file(path)
    assert loaded.keys() == arrays.keys()
    for name, arr in arrays.items():
        assert loaded[name].dtype == arr.dtype.newbyteorder("=")
        np.testing.assert_array_equal(loaded[name], arr)
    from safetensors import safe_open
    with safe_open(path, "np") as f:
        assert f.metadata() == {"a": "1", "b": "2"}


def test_files_the_reference_writes_load_identically(tmp_path):
    numpy_api = pytest.importorskip("safetensors.numpy", reason="the safetensors package is not a dependency")
    contiguous = {k: v.astype(v.dtype.newbyteorder("<"), order="C") for k, v in sample_arrays().items()}
    path = tmp_path / "ref.safetensors"
    numpy_api.save_file(contiguous, path, metadata={"format": "np", "note": "é"})
    back, metadata = read_safetensors(path.read_bytes(), str(path))
    assert metadata == {"format": "np", "note": "é"}
    assert back.keys() == contiguous.keys()
    for name, arr in contiguous.items():
        np.testing.assert_array_equal(back[name], arr)


def test_torch_written_files_load_identically_including_half_precision(tmp_path):
    torch = pytest.importorskip("torch", reason="torch is not a dependency; this compares with torch's own files")
    torch_api = pytest.importorskip("safetensors.torch", reason="the safetensors package is not a dependency")
    gen = torch.Generator().manual_seed(0)
    tensors = {"fc1.weight": torch.randn(5, 3, generator=gen), "fc1.bias": torch.randn(5, generator=gen),
               "half": torch.randn(4, 2, generator=gen).half(), "brain": torch.randn(3, 3, generator=gen).bfloat16(),
               "steps": torch.tensor(12, dtype=torch.int64), "mask": torch.tensor([True, False])}
    path = tmp_path / "torch.safetensors"
    torch_api.save_file(tensors, path, metadata={"format": "pt"})
    back, metadata = read_safetensors(path.read_bytes(), str(path))
    assert metadata == {"format": "pt"} and back.keys() == tensors.keys()
    for name, t in tensors.items():
        expected = t.float().numpy() if t.dtype == torch.bfloat16 else t.numpy()
        assert back[name].dtype == expected.dtype, name
        np.testing.assert_array_equal(back[name], expected)
    ours = tmp_path / "ours.safetensors"
    ours.write_bytes(saved(back))
    reloaded = torch_api.load_file(ours)
    for name, t in tensors.items():
        assert torch.equal(reloaded[name], t.float() if t.dtype == torch.bfloat16 else t), name


# ----------------------------------------------------------------------------- fuzz
BASE = saved({"fc.weight": np.arange(12, dtype=np.float32).reshape(3, 4), "fc.bias": np.ones(3, np.float16),
              "steps": np.array(3, np.int64)}, {"format": "pt"})


def _only_clean_errors(data: bytes) -> None:
    try:
        arrays, metadata = read_safetensors(data, "fuzz.safetensors")
    except WeightFileError as exc:
        assert str(exc).startswith("fuzz.safetensors: ") and "\n" not in str(exc)
        return
    assert sum(a.nbytes for a in arrays.values()) <= 2 * len(data)  # BF16 widening at most doubles
    assert all(isinstance(v, str) for v in metadata.values())


@settings(max_examples=150, deadline=None)
@given(st.integers(0, len(BASE)))
def test_truncated_files_give_only_clean_errors(cut):
    _only_clean_errors(BASE[:cut])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(BASE) - 1), st.integers(0, 7)), min_size=1, max_size=4))
def test_bit_flips_give_only_clean_errors(flips):
    data = bytearray(BASE)
    for pos, bit in flips:
        data[pos] ^= 1 << bit
    _only_clean_errors(bytes(data))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.binary(max_size=64), st.integers(0, 2 ** 64 - 1) | st.none())
def test_garbage_headers_give_only_clean_errors(header, buffer, length):
    text = b"{" + header
    prefix = struct.pack("<Q", len(text) if length is None else length)
    _only_clean_errors(prefix + text + buffer)


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers(-5, 2 ** 70) | st.text(max_size=8)
                           | st.sampled_from(["F32", "BF16", "U8", "BOOL", "F8_E5M2"]),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner,
                                                                                       max_size=4), max_leaves=12)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["w", "v", "__metadata__"]),
                       st.fixed_dictionaries({"dtype": JSON_VALUES, "shape": JSON_VALUES,
                                              "data_offsets": JSON_VALUES}) | JSON_VALUES, max_size=3),
       st.binary(max_size=64))
def test_well_formed_json_with_wrong_fields_gives_only_clean_errors(header, buffer):
    _only_clean_errors(safetensors_bytes(header, buffer))
