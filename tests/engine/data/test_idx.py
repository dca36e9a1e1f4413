"""IDX reading and writing: round trips, and every kind of malformed file ends in IdxError."""
from __future__ import annotations

import gzip
import io
import os
import struct
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.data.idx import (IDX_DTYPES, MAX_GZIP_MEMBERS, DatasetError, IdxError, load_idx_pair, read_idx,
                             read_images, read_labels, write_idx)


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "float32", "float64"])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_round_trip_keeps_values_shape_and_dtype(tmp_path, dtype, suffix):
    rng = np.random.default_rng(1)
    array = (rng.standard_normal((3, 4, 5)) * 100).astype(dtype)
    path = write_idx(tmp_path / f"a-idx{suffix}", array)
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    np.testing.assert_array_equal(back, array)


def test_writes_the_published_header_layout(tmp_path):
    path = write_idx(tmp_path / "x", np.zeros((2, 28, 28), np.uint8))
    raw = path.read_bytes()
    assert struct.unpack(">IIII", raw[:16]) == (0x00000803, 2, 28, 28)
    assert len(raw) == 16 + 2 * 28 * 28
    labels = write_idx(tmp_path / "y", np.arange(7, dtype=np.uint8)).read_bytes()
    assert struct.unpack(">II", labels[:8]) == (0x00000801, 7)


def test_reads_gzip_from_an_unseekable_stream(tmp_path):
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    data = gzip.compress(write_idx(tmp_path / "p", array).read_bytes())

    class OneWay(io.RawIOBase):
        def __init__(self):
            self.inner = io.BytesIO(data)

        def readable(self):
            return True

        def readinto(self, b):
            chunk = self.inner.read(len(b))
            b[: len(chunk)] = chunk
            return len(chunk)

    np.testing.assert_array_equal(read_idx(io.BufferedReader(OneWay())), array)


def _header(code=0x08, dims=(2, 2)):
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


@pytest.mark.parametrize("payload, words", [
    (b"", "truncated header"),
    (b"\x00\x00", "truncated header"),
    (b"PK\x03\x04rest", "not an IDX file"),
    (bytes([0, 0, 0x07, 1, 0, 0, 0, 1, 5]), "unknown IDX data type code 0x07"),
    (bytes([0, 0, 0x08, 0]), "0 dimensions"),
    (bytes([0, 0, 0x08, 3, 0, 0, 0, 1]), "truncated header"),
    (_header(dims=(2, 2)) + b"abc", "only 3 bytes follow"),
    (_header(dims=(2, 2)) + b"abcde", "more data follows"),
    (_header(dims=(0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF)) + b"x", "refusing"),
    (_header(code=0x0E, dims=(3,)) + b"\x00" * 23, "only 23 bytes follow"),
])
@pytest.mark.parametrize("compress", [False, True])
def test_malformed_files_give_a_clear_idx_error(tmp_path, payload, words, compress):
    path = tmp_path / ("bad.gz" if compress else "bad")
    path.write_bytes(gzip.compress(payload) if compress else payload)
    with pytest.raises(IdxError, match=words) as info:
        read_idx(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, DatasetError) and isinstance(info.value, ValueError)


def test_lying_header_in_gzip_is_rejected_without_reading_past_the_claim(tmp_path):
    # claims 1 MiB but the stream holds 5 MiB: reading stops at claim + 1 byte and reports extra data
    path = tmp_path / "big.gz"
    path.write_bytes(gzip.compress(_header(dims=(1 << 20,)) + bytes(5 << 20)))
    with pytest.raises(IdxError, match="more data follows"):
        read_idx(path)


def test_corrupt_and_cut_gzip_streams(tmp_path):
    good = gzip.compress(_header(dims=(100,)) + bytes(range(100)))
    cut = tmp_path / "cut.gz"
    cut.write_bytes(good[: len(good) // 2])
    with pytest.raises(IdxError, match="gzip"):
        read_idx(cut)
    flipped = tmp_path / "flipped.gz"
    flipped.write_bytes(good[:12] + bytes(b ^ 0xFF for b in good[12:20]) + good[20:])
    with pytest.raises(IdxError):
        read_idx(flipped)


def test_missing_file_is_an_idx_error(tmp_path):
    with pytest.raises(IdxError, match="nope.gz: no such file"):
        read_idx(tmp_path / "nope.gz")


def test_images_and_labels_readers_check_the_magic_number(tmp_path):
    images = write_idx(tmp_path / "i.gz", np.zeros((4, 28, 28), np.uint8))
    labels = write_idx(tmp_path / "l.gz", np.array([0, 1, 2, 9], np.uint8))
    assert read_images(images).shape == (4, 28, 28)
    assert read_labels(labels).tolist() == [0, 1, 2, 9]
    with pytest.raises(IdxError, match=r"expected IDX labels .*found magic 0x00000803 \(uint8 data, 3 dimensions\)"):
        read_labels(images)
    with pytest.raises(IdxError, match=r"expected IDX images .*found magic 0x00000801 \(uint8 data, 1 dimension\)"):
        read_images(labels)
    with pytest.raises(IdxError, match=r"expected IDX images .*found magic 0x00000D03 \(float32 data"):
        read_images(write_idx(tmp_path / "f", np.zeros((4, 28, 28), np.float32)))


def test_other_geometries_are_named_and_refused_unless_asked_for(tmp_path):
    for rows, cols in [(14, 56), (32, 32), (28, 27), (1, 784)]:
        path = write_idx(tmp_path / f"{rows}x{cols}", np.zeros((2, rows, cols), np.uint8))
        with pytest.raises(IdxError) as info:
            read_images(path)
        assert str(info.value) == f"{path}: images are {rows}×{cols}, DigitLab needs 28×28"
        assert read_images(path, shape=None).shape == (2, rows, cols)


def test_empty_sets_and_absurd_counts_are_refused_from_the_header(tmp_path):
    with pytest.raises(IdxError, match="holds no images \\(the header says 0\\)"):
        read_images(write_idx(tmp_path / "i", np.zeros((0, 28, 28), np.uint8)))
    with pytest.raises(IdxError, match="holds no labels"):
        read_labels(write_idx(tmp_path / "l", np.zeros(0, np.uint8)))
    huge = tmp_path / "huge"
    huge.write_bytes(_header(dims=(4_000_000_000, 28, 28)))  # no data at all: refused before reading any
    with pytest.raises(IdxError, match="header declares 4,000,000,000 images; refusing more than 250,000"):
        read_images(huge)
    with pytest.raises(IdxError, match="refusing more than 3"):
        read_labels(write_idx(tmp_path / "l4", np.zeros(4, np.uint8)), max_count=3)


def test_pair_normalises_pixels_and_checks_counts_and_labels(tmp_path):
    pixels = np.zeros((3, 28, 28), np.uint8)
    pixels[:, 0, :4] = [0, 255, 51, 102]
    images = write_idx(tmp_path / "i", pixels)
    x, t = load_idx_pair(images, write_idx(tmp_path / "l", np.array([3, 1, 4], np.uint8)))
    assert x.shape == (3, 784) and x.dtype == np.float32 and t.dtype == np.int64
    np.testing.assert_allclose(x[0, :4], [0.0, 1.0, 0.2, 0.4], rtol=1e-6)
    with pytest.raises(IdxError, match="3 images but .* 2 labels"):
        load_idx_pair(images, write_idx(tmp_path / "l2", np.array([3, 1], np.uint8)))
    l3 = write_idx(tmp_path / "l3", np.array([3, 10, 255], np.uint8))
    with pytest.raises(IdxError) as info:
        load_idx_pair(images, l3)
    assert str(info.value) == f"{l3}: label 10 at index 1 is out of range 0-9 (2 such labels)"


def test_a_path_that_is_not_a_regular_file_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "t10k-images-idx3-ubyte"
    os.mkfifo(fifo)  # opening a FIFO for reading would wait for a writer forever
    with pytest.raises(IdxError, match="not a regular file"):
        read_images(fifo)
    with pytest.raises(IdxError, match="is a folder, not a file"):
        read_idx(tmp_path)  # a folder


def test_write_rejects_what_idx_cannot_hold(tmp_path):
    with pytest.raises(IdxError, match="cannot write dtype"):
        write_idx(tmp_path / "x", np.zeros(3, np.int64))
    with pytest.raises(IdxError, match="1 to 255 dimensions"):
        write_idx(tmp_path / "x", np.float32(1.0))


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _read_or_idx_error(data: bytes) -> None:
    try:
        out = read_idx(io.BytesIO(data))
    except IdxError:
        return
    assert isinstance(out, np.ndarray)


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes_either_parse_or_raise_idx_error(data):
    _read_or_idx_error(data)
    _read_or_idx_error(gzip.compress(data))


@FUZZ
@given(code=st.sampled_from(sorted(IDX_DTYPES) + [0x00, 0x0A, 0xFF]),
       dims=st.lists(st.integers(0, 0xFFFFFFFF) | st.integers(0, 6), min_size=0, max_size=5),
       body=st.binary(max_size=200), gz=st.booleans(), cut=st.integers(0, 40))
def test_random_headers_either_parse_or_raise_idx_error(code, dims, body, gz, cut):
    data = bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + body
    data = data[: max(len(data) - cut, 0)] if cut % 3 == 0 else data
    _read_or_idx_error(gzip.compress(data) if gz else data)


@FUZZ
@given(st.binary(min_size=1, max_size=64), st.integers(0, 10_000))
def test_damaged_gzip_streams_raise_idx_error(noise, where):
    good = gzip.compress(_header(dims=(8, 8)) + bytes(range(64)))
    where %= len(good)
    _read_or_idx_error(good[:where] + noise + good[where + len(noise):])


def test_zero_dimension_beside_huge_ones_is_refused_cleanly(tmp_path):
    """Found by hypothesis: 0 × 55056 × 55108 × … holds no data, yet numpy cannot even build that shape."""
    path = tmp_path / "zero-dim-idx"
    dims = [0, 55056, 55108, 55111, 55161]
    path.write_bytes(struct.pack(">BBBB", 0, 0, 0x08, len(dims)) + struct.pack(f">{len(dims)}I", *dims))
    with pytest.raises(IdxError, match="refusing"):
        read_idx(path)


def test_a_file_of_many_empty_gzip_members_is_refused_quickly(tmp_path):
    """Empty members inflate to nothing, so no size cap ever fires: their number is bounded instead."""
    real = gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 2, 3, 4]))
    empty = gzip.compress(b"")
    path = tmp_path / "labels.gz"
    path.write_bytes(empty * (MAX_GZIP_MEMBERS + 1) + real)
    start = time.perf_counter()
    with pytest.raises(IdxError, match=r"labels.gz: .*more than 10,000 gzip members"):
        read_idx(path)
    assert time.perf_counter() - start < 1.0
    path.write_bytes(empty * 100 + real)  # a few members, as pigz or BGZF write, still read
    assert read_idx(path).tolist() == [3, 4]
