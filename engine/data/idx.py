"""Read and write IDX files, the format MNIST and Fashion-MNIST ship in.

An IDX file is a 4-byte magic number (two zero bytes, a dtype code, the number of dimensions),
one big-endian uint32 per dimension, then the values in C order. Files may be gzipped.
The reader trusts nothing: a lying header or corrupt stream gives an IdxError, never a numpy
crash, a hang or an allocation the size the header claims before the data is there to back it.
"""
from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from engine.errors import DatasetError

IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions (count, rows, columns)
LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension (count)

# IDX dtype code -> big-endian numpy dtype
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_CODE_FOR_KIND = {np.dtype(v).newbyteorder("="): k for k, v in IDX_DTYPES.items()}

MAX_DATA_BYTES = 1 << 32  # 4 GiB: far above any real IDX file, so a header claiming more is a lie
_CHUNK = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"


class IdxError(DatasetError):
    """An IDX file is malformed: bad magic number, truncated, too long, or not gzip/IDX at all."""


def read_idx(source: str | os.PathLike | BinaryIO) -> np.ndarray:
    """The array stored in an IDX file (plain or gzipped), in native byte order."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            with open(path, "rb") as raw:
                return _read_idx_stream(raw, str(path))
        except OSError as exc:
            raise IdxError(f"cannot read IDX file {path}: {exc.strerror or exc}") from exc
    return _read_idx_stream(source, getattr(source, "name", "<stream>"))


def _read_idx_stream(raw: BinaryIO, where: str) -> np.ndarray:
    head = raw.read(2)
    if not isinstance(head, bytes):
        raise IdxError(f"{where}: expected a binary file, got {type(head).__name__}")
    if head == _GZIP_MAGIC:
        try:
            raw.seek(0)
            start = b""
        except (OSError, AttributeError):  # not seekable: hand gzip what we already took
            start = head
        stream = gzip.GzipFile(fileobj=_Prefixed(start, raw) if start else raw, mode="rb")
        try:
            return _parse(stream, where + " (gzip)")
        except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
            raise IdxError(f"{where}: corrupt or truncated gzip data ({exc})") from exc
    return _parse(_Prefixed(head, raw), where)


def _parse(stream, where: str) -> np.ndarray:
    magic = _read_exact(stream, 4, where, "the 4-byte magic number")
    if magic[0] != 0 or magic[1] != 0:
        raise IdxError(f"{where}: not an IDX file (magic number starts {magic[:2].hex()}, expected 0000)")
    code, ndim = magic[2], magic[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise IdxError(f"{where}: unknown IDX data type code 0x{code:02X} (known: {known})")
    if ndim == 0:
        raise IdxError(f"{where}: IDX header declares 0 dimensions")
    dims = np.frombuffer(_read_exact(stream, 4 * ndim, where, f"{ndim} dimension sizes"), dtype=">u4")
    shape = tuple(int(d) for d in dims)
    dtype = np.dtype(IDX_DTYPES[code])
    declared = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
    # a zero dimension makes the data empty, but numpy still refuses a shape whose other sizes overflow
    nominal = math.prod(d for d in shape if d) * dtype.itemsize
    if declared > MAX_DATA_BYTES or nominal > MAX_DATA_BYTES:
        raise IdxError(f"{where}: header declares shape {shape}, {declared} bytes of data; refusing more than "
                       f"{MAX_DATA_BYTES} bytes")
    data = _read_at_most(stream, declared + 1)
    if len(data) < declared:
        raise IdxError(f"{where}: truncated: header declares shape {shape} ({declared} bytes of data) "
                       f"but only {len(data)} bytes follow")
    if len(data) > declared:
        raise IdxError(f"{where}: header declares shape {shape} ({declared} bytes of data) "
                       "but more data follows; the file is not what its header says")
    return np.frombuffer(data, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="), copy=False)


def _read_exact(stream, n: int, where: str, what: str) -> bytes:
    data = _read_at_most(stream, n)
    if len(data) < n:
        raise IdxError(f"{where}: truncated header: file ends before {what} ({len(data)} of {n} bytes)")
    return bytes(data)


def _read_at_most(stream, limit: int) -> bytearray:
    """Read in bounded chunks, so memory follows the real data, not a size someone claims."""
    out = bytearray()
    while len(out) < limit:
        chunk = stream.read(min(_CHUNK, limit - len(out)))
        if not chunk:
            break
        out += chunk
    return out


class _Prefixed:
    """A read-only stream that first returns some bytes already taken from another stream."""

    def __init__(self, prefix: bytes, rest: BinaryIO):
        self._prefix, self._rest = prefix, rest

    def read(self, n: int = -1) -> bytes:
        if not self._prefix:
            return self._rest.read(n)
        if n < 0:
            head, self._prefix = self._prefix, b""
            return head + self._rest.read()
        head, self._prefix = self._prefix[:n], self._prefix[n:]
        return head if len(head) == n else head + self._rest.read(n - len(head))


def write_idx(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write an array as IDX, gzipped when the name ends in .gz (used by tests and to export data)."""
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=")
    if native not in _CODE_FOR_KIND:
        raise IdxError(f"cannot write dtype {array.dtype} as IDX; use one of "
                       + ", ".join(str(np.dtype(v).newbyteorder("=")) for v in IDX_DTYPES.values()))
    if array.ndim == 0 or array.ndim > 255:
        raise IdxError(f"IDX needs 1 to 255 dimensions, got an array of shape {array.shape}")
    code = _CODE_FOR_KIND[native]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    body = np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes()
    path = Path(path)
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header + body)
    return path


def read_images(path: str | os.PathLike) -> np.ndarray:
    """(N, rows, cols) uint8 images from an IDX image file (magic 0x00000803)."""
    return _read_expecting(path, IMAGES_MAGIC, 3, "images")


def read_labels(path: str | os.PathLike) -> np.ndarray:
    """(N,) uint8 labels from an IDX label file (magic 0x00000801)."""
    return _read_expecting(path, LABELS_MAGIC, 1, "labels")


def _read_expecting(path, magic: int, ndim: int, what: str) -> np.ndarray:
    array = read_idx(path)
    if array.dtype != np.uint8 or array.ndim != ndim:
        raise IdxError(f"{path}: expected IDX {what} (magic 0x{magic:08X}: unsigned bytes, {ndim} dimension"
                       f"{'s' if ndim > 1 else ''}), found {array.dtype} data of shape {array.shape}")
    return array


def load_idx_pair(images_path, labels_path, n_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Images as (N, rows*cols) float32 in [0, 1] and labels as (N,) int64, checked to belong together."""
    images = read_images(images_path)
    labels = read_labels(labels_path)
    if len(images) != len(labels):
        raise IdxError(f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels")
    if labels.size and int(labels.max()) >= n_classes:
        raise IdxError(f"{labels_path}: label {int(labels.max())} is out of range for {n_classes} classes")
    return pixels_to_float(images), labels.astype(np.int64)


def pixels_to_float(images: np.ndarray) -> np.ndarray:
    """uint8 images of any shape (N, ...) as (N, pixels) float32 in [0, 1]."""
    x = images.reshape(len(images), -1).astype(np.float32)
    x *= np.float32(1.0 / 255.0)
    return x
