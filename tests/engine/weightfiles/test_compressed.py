"""engine.weightfiles.compressed: compressed and zipped files opened by content, bombs refused, other formats named."""
from __future__ import annotations

import bz2
import gzip
import io
import lzma
import struct
import tarfile
import tracemalloc
import warnings
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from container_fixtures import (MB, bz2_of_zeros, gzip_of_zeros, hostile_container_cases, small_pickle, xz_of_zeros,
                                zip_of, zip_of_zeros)
from engine.errors import WeightFileError
from engine.weightfiles import compressed
from engine.weightfiles.compressed import extract_single, unsupported_format, unwrap, zip_kind
from engine.weightfiles.safetensors_io import is_safetensors, read_safetensors

PAYLOAD = small_pickle()
COMPRESSORS = {"gzip": lambda d: gzip.compress(d, mtime=0), "bz2": bz2.compress, "xz": lzma.compress}


# ----------------------------------------------------------------------------- unwrap
@pytest.mark.parametrize("kind", COMPRESSORS)
def test_each_compression_is_taken_off_and_noted(kind):
    packed = COMPRESSORS[kind](PAYLOAD)
    data, notes = unwrap(packed, "w.pkl")
    assert data == PAYLOAD
    assert notes == [f"{kind}-compressed ({len(packed):,} -> {len(PAYLOAD):,} bytes)"]


def test_uncompressed_data_is_returned_as_it_is():
    assert unwrap(PAYLOAD, "w.pkl") == (PAYLOAD, [])
    assert unwrap(b"", "w.pkl") == (b"", [])


def test_nested_compression_is_taken_off_layer_by_layer():
    inner = gzip.compress(PAYLOAD, mtime=0)
    outer = lzma.compress(inner)
    data, notes = unwrap(outer, "w.pkl.gz.xz")
    assert data == PAYLOAD
    assert notes == [f"xz-compressed ({len(outer):,} -> {len(inner):,} bytes)",
                     f"gzip-compressed ({len(inner):,} -> {len(PAYLOAD):,} bytes)"]


def test_three_layers_are_read_and_a_fourth_is_refused():
    three = bz2.compress(lzma.compress(gzip.compress(PAYLOAD)))
    assert unwrap(three, "w")[0] == PAYLOAD
    with pytest.raises(WeightFileError, match="compressed more than 3 times over"):
        unwrap(gzip.compress(three), "w")


@pytest.mark.parametrize("kind", COMPRESSORS)
def test_concatenated_streams_are_read_as_one_file(kind):
    packed = COMPRESSORS[kind](PAYLOAD[:1000]) + COMPRESSORS[kind](PAYLOAD[1000:])
    data, notes = unwrap(packed, "w")
    assert data == PAYLOAD and notes[0].startswith(f"{kind}-compressed, 2 streams (")


@pytest.mark.parametrize("kind", ["gzip", "xz"])
def test_zero_padding_after_the_stream_is_ignored_as_the_tools_do(kind):
    assert unwrap(COMPRESSORS[kind](PAYLOAD) + bytes(512), "w")[0] == PAYLOAD


@pytest.mark.parametrize("kind", COMPRESSORS)
def test_trailing_garbage_is_refused(kind):
    with pytest.raises(WeightFileError, match=f"5 byte\\(s\\) of other data follow the {kind} data"):
        unwrap(COMPRESSORS[kind](PAYLOAD) + b"junk!", "w")


@pytest.mark.parametrize("kind", COMPRESSORS)
@pytest.mark.parametrize("keep", [0.1, 0.5, 0.99])
def test_truncated_streams_say_so(kind, keep):
    packed = COMPRESSORS[kind](PAYLOAD)
    with pytest.raises(WeightFileError, match=f"w.pkl: the {kind} stream ends early \\(the file is truncated\\)"):
        unwrap(packed[: max(int(len(packed) * keep), 6)], "w.pkl")


def test_a_truncated_inner_layer_says_which_layer():
    inner = gzip.compress(PAYLOAD)
    with pytest.raises(WeightFileError, match="the gzip stream inside the bz2 data ends early"):
        unwrap(bz2.compress(inner[:-10]), "w")


@pytest.mark.parametrize("kind", COMPRESSORS)
def test_damaged_data_is_reported_not_raised_raw(kind):
    packed = bytearray(COMPRESSORS[kind](PAYLOAD))
    packed[len(packed) // 2] ^= 0xFF
    with pytest.raises(WeightFileError, match=f"the {kind} data is damaged|the {kind} stream ends early"):
        unwrap(bytes(packed), "w")


def _refused_with_small_peak(data: bytes, message: str, bomb_size: int) -> float:
    tracemalloc.start()
    try:
        with pytest.raises(WeightFileError, match=message):
            unwrap(data, "bomb.pkl.gz")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < bomb_size / 2, f"peaked at {peak:,} bytes for a {bomb_size:,}-byte bomb"
    return peak


def test_a_gzip_bomb_is_refused_long_before_it_is_inflated():
    bomb = gzip_of_zeros(64)  # 64 MB of zeros in ~65 KB
    limit = compressed.EXPANSION * len(bomb) + compressed.SLACK
    assert len(bomb) < 70_000 and gzip.decompress(gzip_of_zeros(2)) == bytes(2 * MB)
    _refused_with_small_peak(bomb, f"refused: the gzip data decompresses to more than {limit:,} bytes "
                                   r"\(a compression bomb", 64 * MB)


@pytest.mark.parametrize("kind, build", [("bz2", bz2_of_zeros), ("xz", xz_of_zeros)])
def test_bz2_and_xz_bombs_are_refused_long_before_they_are_inflated(kind, build):
    _refused_with_small_peak(build(64), f"refused: the {kind} data decompresses to more than", 64 * MB)


def test_a_bomb_inside_a_harmless_layer_is_bounded_by_the_file_on_disk():
    outer = gzip.compress(gzip_of_zeros(256), mtime=0)  # ~700 bytes -> 256 KB -> 256 MB
    _refused_with_small_peak(outer, "the gzip data inside the gzip data decompresses to more than", 256 * MB)


def test_a_file_of_countless_empty_streams_is_refused():
    empty = gzip.compress(b"", mtime=0)
    with pytest.raises(WeightFileError, match="more than 10,000 concatenated gzip streams"):
        unwrap(empty * 10_001, "w")


def test_the_limit_leaves_room_for_real_files():
    # Nielsen's mnist.pkl.gz: 17,051,982 bytes inflating to 220,080,000 (13×)
    assert min(compressed.MAX_FILE_BYTES, compressed.EXPANSION * 17_051_982 + compressed.SLACK) > 220_080_000
    zeros = bytes(4 * MB)  # a small model of all-zero weights compresses ~1000×
    assert unwrap(gzip.compress(zeros), "w")[0] == zeros


# ----------------------------------------------------------------------------- zips
def _npz() -> bytes:
    f = io.BytesIO()
    np.savez(f, W1=np.zeros((2, 2)), b1=np.zeros(2))
    return f.getvalue()


def _torch_like(top: str = "archive", code: bool = False) -> bytes:
    files = {f"{top}/data.pkl": b"\x80\x02}q\x00.", f"{top}/byteorder": b"little", f"{top}/data/0": bytes(16),
             f"{top}/version": b"3\n"}
    if code:
        files[f"{top}/code/__torch__/model.py"] = b"def forward(self, x): ..."
    return zip_of(files)


KERAS = zip_of({"metadata.json": b"{}", "config.json": b"{}", "model.weights.h5": b"\x89HDF\r\n\x1a\n" + bytes(8)})


@pytest.mark.parametrize("data, kind", [
    (_npz(), "npz"),
    (_torch_like(), "torch"),
    (_torch_like("my_model_v2"), "torch"),
    (KERAS, "keras"),
    (zip_of({"weights.pkl": PAYLOAD}), "single"),
    (zip_of({"weights/": b"", "weights/w.pkl": PAYLOAD}), "single"),
], ids=["npz", "torch", "torch-any-top-folder", "keras", "single", "single-in-a-folder"])
def test_zip_kinds_are_told_by_their_members(data, kind):
    assert zip_kind(data, "w.zip") == kind


def test_real_torch_and_torchscript_archives_are_told_apart(tmp_path):
    torch = pytest.importorskip("torch", reason="torch is not a dependency; hand-built archives are tested here too")
    path, scripted = tmp_path / "model.pt", tmp_path / "scripted.pt"
    torch.save(torch.nn.Linear(3, 2).state_dict(), path)
    assert zip_kind(path.read_bytes(), str(path)) == "torch" and unsupported_format(path.read_bytes(), "m") is None
    with warnings.catch_warnings():  # torch deprecates TorchScript, but users still hold such files
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(torch.nn.Linear(3, 2)), scripted)
    with pytest.raises(WeightFileError, match="a TorchScript archive"):
        zip_kind(scripted.read_bytes(), str(scripted))
    assert "torch.save(model.state_dict()" in unsupported_format(scripted.read_bytes(), str(scripted))


@pytest.mark.parametrize("data, message", [
    (zip_of({"a.txt": b"1", "b.csv": b"2", "\x1b[31mred": b"3"}), r"a zip of 3 files \(a.txt, b.csv, \\x1b\[31mred\)"),
    (zip_of({}), r"a zip of 0 files \(nothing\)"),
    (_torch_like(code=True), "a TorchScript archive"),
    (b"PK\x03\x04" + bytes(40), "a damaged zip file"),
    (zip_of({f"{i}.npy": b"" for i in range(1001)}), "refused: the zip lists 1,001 entries"),
], ids=["other-files", "empty", "torchscript", "damaged", "too-many-entries"])
def test_other_zips_are_described(data, message):
    with pytest.raises(WeightFileError, match=message):
        zip_kind(data, "w.zip")


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_the_single_zipped_file_is_extracted_with_its_name(method):
    f = io.BytesIO()
    with zipfile.ZipFile(f, "w", method) as zf:
        zf.writestr("folder/weights.pkl", PAYLOAD)
    assert extract_single(f.getvalue(), "w.zip") == (PAYLOAD, "folder/weights.pkl")


def test_a_zip_bomb_member_is_refused_by_its_declared_size_before_inflating():
    bomb = zip_of_zeros("weights.pkl", 64)
    tracemalloc.start()
    try:
        with pytest.raises(WeightFileError, match=r"refused: the zipped file 'weights.pkl' decompresses to "
                                                  r"67,108,864 bytes, more than .* \(a compression bomb"):
            extract_single(bomb, "bomb.zip")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * MB


def test_a_member_that_understates_its_size_stops_at_the_declared_size():
    packed = zip_of_zeros("w.pkl", 1)
    honest = struct.pack("<I", MB)
    assert packed.count(honest) == 2  # the local header and the directory both say 1 MB
    lying = packed.replace(honest, struct.pack("<I", 1000))
    with pytest.raises(WeightFileError, match=r"the zipped file 'w.pkl' cannot be read \(BadZipFile: Bad CRC-32"):
        extract_single(lying, "w.zip")


def test_only_a_zip_of_exactly_one_file_is_extracted():
    with pytest.raises(WeightFileError, match="a zip of 2 files, not one zipped weight file"):
        extract_single(zip_of({"a.pkl": PAYLOAD, "b.pkl": PAYLOAD}), "w.zip")


# ----------------------------------------------------------------------------- formats known but not read
def _tar() -> bytes:
    f = io.BytesIO()
    with tarfile.open(fileobj=f, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo("weights.pkl")
        info.size = len(PAYLOAD)
        tar.addfile(info, io.BytesIO(PAYLOAD))
    return f.getvalue()


# torch.onnx.export's first bytes: ir_version 8, producer "pytorch" 2.1.0, then the graph (field 7)
ONNX = b"\x08\x08\x12\x07pytorch\x1a\x052.1.0:\x10\n\x04main" + bytes(10) + b"B\x04\x10\x11"
SAVED_MODEL = b"\x08\x01\x12\x90\x03\n\x0c\n\x05serve" + b"\x00" * 40 + b"RestoreV2" + bytes(20)


@pytest.mark.parametrize("data, suffix, message", [
    (b"\x89HDF\r\n\x1a\n" + bytes(100), "", "a Keras/HDF5 .h5 file: not supported (reading it needs h5py)"),
    (bytes(512) + b"\x89HDF\r\n\x1a\n" + bytes(100), ".h5", "a Keras/HDF5 .h5 file"),
    (KERAS, "", "a Keras .keras archive: not supported"),
    (_torch_like(code=True), "", "a TorchScript archive (torch.jit.save): not supported"),
    (ONNX, "", "an ONNX model: not supported (reading it needs the onnx package)"),
    (b"\x08\x07" + bytes(30), ".ONNX", "an ONNX model"),
    (b"\x1c\x00\x00\x00TFL3" + bytes(40), "", "a TensorFlow Lite model: not supported"),
    (SAVED_MODEL, "", "a TensorFlow graph or SavedModel (.pb): not supported"),
    (b"\n\x0b\n\x01x\x12\x05Const" + bytes(10), ".pb", "a TensorFlow graph or SavedModel"),
    (b"GGUF\x03\x00\x00\x00" + bytes(20), "", "a GGUF file"),
    (b"\x28\xb5\x2f\xfd" + bytes(20), "", "zstandard-compressed: not supported; unpack it first (zstd -d)"),
    (b"7z\xbc\xaf\x27\x1c" + bytes(20), "", "a 7-Zip archive"),
    (b"Rar!\x1a\x07\x00" + bytes(20), "", "a RAR archive"),
    (b"\x04\x22\x4d\x18" + bytes(20), "", "LZ4-compressed"),
    (_tar(), "", "a tar archive: not supported; unpack it first (tar xf)"),
], ids=["hdf5", "hdf5-after-user-block", "keras", "torchscript", "onnx", "onnx-by-suffix", "tflite", "saved-model",
        "graphdef-by-suffix", "gguf", "zstd", "7z", "rar", "lz4", "tar"])
def test_known_but_unsupported_formats_are_named_with_what_would_be_needed(data, suffix, message):
    text = unsupported_format(data, "m.bin", suffix)
    assert text is not None and text.startswith("m.bin: ") and message in text and "\n" not in text
    if "not supported (" in text:  # what to do instead is part of the message
        assert any(way in text for way in ("np.savez", ".safetensors", "state_dict"))


@pytest.mark.parametrize("data", [
    PAYLOAD, _npz(), _torch_like(), zip_of({"weights.pkl": PAYLOAD}), gzip.compress(PAYLOAD),
    b'{"sizes": [784, 30, 10], "weights": []}', b"\x93NUMPY\x01\x00", b"", b"\x08", b"\x08\x07\x12\xff\xff\xff",
    b"\x08\x03\x12\x02ab\x1a\x01c", b"PK\x03\x04" + bytes(40),
], ids=["pickle", "npz", "torch", "single-zip", "gzip", "json", "npy", "empty", "one-byte", "varint-overrun",
        "protobuf-without-graph", "damaged-zip"])
def test_formats_that_are_read_or_unknown_get_no_message(data):
    assert unsupported_format(data, "m.bin") is None


def test_a_safetensors_file_is_not_mistaken_for_another_format():
    from container_fixtures import safetensors_bytes, tensor
    data = safetensors_bytes({"w": tensor("F32", [1], 0, 4)}, bytes(4))
    assert unsupported_format(data, "m", ".pb") is None and unsupported_format(data, "m", ".onnx") is None


# ----------------------------------------------------------------------------- the hostile corpus
def _read_like_the_integrator(data: bytes, name: str) -> None:
    if is_safetensors(data):
        read_safetensors(data, name)
    elif data[:4] == b"PK\x03\x04":
        assert zip_kind(data, name) == "single"
        extract_single(data, name)
    else:
        unwrap(data, name)


@pytest.mark.parametrize("name", sorted(hostile_container_cases()))
def test_every_hostile_container_is_small_and_refused_with_its_message(name):
    data, message = hostile_container_cases()[name]
    assert len(data) < 200_000
    with pytest.raises(WeightFileError) as caught:
        _read_like_the_integrator(data, name)
    assert message in str(caught.value) and str(caught.value).startswith(f"{name}: ")


def test_hostile_containers_are_built_the_same_every_time():
    from container_fixtures import _cases
    assert _cases.__wrapped__() == _cases()


# ----------------------------------------------------------------------------- fuzz
SAMPLES = {kind: pack(PAYLOAD[:3000]) for kind, pack in COMPRESSORS.items()}
SAMPLES["zip"] = zip_of({"w.pkl": PAYLOAD[:3000]})


def _clean(call, *args) -> None:
    try:
        call(*args)
    except WeightFileError as exc:
        assert str(exc).startswith("fuzz: ") and "\n" not in str(exc)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(SAMPLES)), st.floats(0, 1), st.lists(st.tuples(st.floats(0, 1), st.integers(0, 7)),
                                                                      max_size=3))
def test_truncations_and_bit_flips_give_only_clean_errors(kind, keep, flips):
    data = bytearray(SAMPLES[kind][: int(len(SAMPLES[kind]) * keep)])
    for where, bit in flips:
        if data:
            data[min(int(where * len(data)), len(data) - 1)] ^= 1 << bit
    data = bytes(data)
    _clean(unwrap, data, "fuzz")
    _clean(zip_kind, data, "fuzz")
    _clean(extract_single, data, "fuzz")
    _clean(unsupported_format, data, "fuzz", ".onnx")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_give_only_clean_errors(data):
    for prefix in (b"", b"\x1f\x8b", b"BZh9", b"\xfd7zXZ\x00", b"PK\x03\x04", b"\x08\x05"):
        _clean(unwrap, prefix + data, "fuzz")
        _clean(unsupported_format, prefix + data, "fuzz")
        if prefix.startswith(b"PK"):
            _clean(zip_kind, prefix + data, "fuzz")
            _clean(extract_single, prefix + data, "fuzz")


def test_packing_inside_packing_stays_bounded_by_the_file_on_disk():
    """A zip holding a zip: the inner one's inflation is bounded by the outer file's size, not by its own."""
    from engine.weightfiles.read import read_weight_bytes

    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr(zipfile.ZipInfo("w.pkl", (1980, 1, 1, 0, 0, 0)), bytes(compressed.SLACK + 400_000),
                    zipfile.ZIP_DEFLATED)
    outer = io.BytesIO()
    with zipfile.ZipFile(outer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr(zipfile.ZipInfo("w.zip", (1980, 1, 1, 0, 0, 0)), inner.getvalue(), zipfile.ZIP_DEFLATED)
    data = outer.getvalue()
    assert compressed.EXPANSION * len(inner.getvalue()) + compressed.SLACK > compressed.SLACK + 400_000  # alone, fine
    assert compressed.EXPANSION * len(data) + compressed.SLACK < compressed.SLACK + 400_000  # from this file, a bomb
    with pytest.raises(WeightFileError, match="compression bomb"):
        read_weight_bytes(data, "nested.zip")
