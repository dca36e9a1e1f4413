"""Hostile compressed, zipped and safetensors files, built in memory (each under 200 KB) for tests and the corpus.

:func:`hostile_container_cases` maps a file name to its bytes and a substring of the one-line refusal
DigitLab must give; ``make_hostile_corpus.py`` can write them out. Builders are deterministic (no
timestamps) and fast: a bomb is built without ever holding its inflated bytes.
"""
from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import pickle
import struct
import zipfile
import zlib
from functools import lru_cache

import numpy as np

MB = 1 << 20
_ZEROS = bytes(MB)


def gzip_of_zeros(megabytes: int) -> bytes:
    """A single-member gzip of ``megabytes`` MB of zeros (~1 KB per MB), built from one compressed megabyte.

    A full flush ends the deflate data on a byte boundary with no reference to earlier bytes, so the
    same compressed megabyte can be repeated; an empty final block and the trailer close the stream.
    """
    raw = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = raw.compress(_ZEROS) + raw.flush(zlib.Z_FULL_FLUSH)
    final = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS).flush()  # an empty block marked last
    crc = 0
    for _ in range(megabytes):
        crc = zlib.crc32(_ZEROS, crc)
    header = b"\x1f\x8b\x08\x00" + bytes(4) + b"\x02\xff"  # deflate, no flags, no time, best compression, unknown OS
    return header + block * megabytes + final + struct.pack("<II", crc, (megabytes * MB) & 0xFFFFFFFF)


def _stream_zeros(compressor, megabytes: int) -> bytes:
    return b"".join(compressor.compress(_ZEROS) for _ in range(megabytes)) + compressor.flush()


def bz2_of_zeros(megabytes: int) -> bytes:
    """One bz2 stream of zeros: about 100 bytes whatever the size."""
    return _stream_zeros(bz2.BZ2Compressor(9), megabytes)


def xz_of_zeros(megabytes: int) -> bytes:
    """One xz stream of zeros: about 150 bytes per MB."""
    return _stream_zeros(lzma.LZMACompressor(preset=0), megabytes)


def zip_of_zeros(name: str, megabytes: int) -> bytes:
    """A zip holding one deflated file of zeros, declaring its real (inflated) size."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        info = zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w") as f:
            for _ in range(megabytes):
                f.write(_ZEROS)
    return out.getvalue()


def zip_of(files: dict[str, bytes]) -> bytes:
    """A deterministic zip of ``files`` (name -> bytes), deflated."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), data, zipfile.ZIP_DEFLATED)
    return out.getvalue()


def safetensors_bytes(header: dict, buffer: bytes, length: int | None = None, pad: bool = True) -> bytes:
    """A safetensors file with exactly this ``header`` (no checks), ``buffer``, and optionally a false length."""
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    if pad:
        text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text) if length is None else length) + text + buffer


def tensor(dtype: str, shape: list, begin: int, end: int) -> dict:
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def small_pickle() -> bytes:
    """A legitimate pickled params dict (a 784-10 layer), for compressing."""
    rng = np.random.default_rng(0)
    params = {"W1": rng.standard_normal((784, 10)).astype(np.float32), "b1": np.zeros(10, np.float32)}
    return pickle.dumps(params, protocol=4)


@lru_cache(maxsize=1)
def _cases() -> tuple:
    four_floats = np.arange(4, dtype="<f4").tobytes()
    truncated = gzip.compress(small_pickle(), mtime=0)
    cases = {
        "gzip-bomb.pkl.gz": (gzip_of_zeros(64), "gzip data decompresses to more than"),
        "bz2-bomb.pkl.bz2": (bz2_of_zeros(64), "bz2 data decompresses to more than"),
        "xz-bomb.pkl.xz": (xz_of_zeros(64), "xz data decompresses to more than"),
        # the inner layer is harmless (256 KB), its content is the bomb: every layer is bounded by the file
        "gzip-in-gzip-bomb.pkl.gz.gz": (gzip.compress(gzip_of_zeros(256), 9, mtime=0),
                                        "gzip data decompresses to more than"),
        "zip-bomb.pkl.zip": (zip_of_zeros("weights.pkl", 64), "decompresses to 67,108,864 bytes"),
        "truncated.pkl.gz": (truncated[: len(truncated) // 2], "the gzip stream ends early (the file is truncated)"),
        "safetensors-overlapping.safetensors": (
            safetensors_bytes({"W1": tensor("F32", [4], 0, 16), "W2": tensor("F32", [2], 8, 16)}, four_floats),
            "overlap in the file's data"),
        "safetensors-offset-past-end.safetensors": (
            safetensors_bytes({"W1": tensor("F32", [4, 4], 0, 64)}, four_floats), "past the end of the data"),
        "safetensors-header-longer-than-file.safetensors": (
            safetensors_bytes({"W1": tensor("F32", [4], 0, 16)}, four_floats, length=1 << 20),
            "but the file holds only"),
        "safetensors-huge-shape.safetensors": (
            safetensors_bytes({"W1": tensor("F32", [1 << 30, 1 << 30], 0, 16)}, four_floats),
            "but its data_offsets hold 16 bytes"),
    }
    return tuple(cases.items())


def hostile_container_cases() -> dict[str, tuple[bytes, str]]:
    """File name -> (bytes, a substring of the expected refusal); each file under 200 KB."""
    return dict(_cases())
