"""Read and write IDX files, the format MNIST and Fashion-MNIST ship in.

An IDX file is a 4-byte magic number (two zero bytes, a dtype code, the number of dimensions),
one big-endian uint32 per dimension, then the values in C order. Files may be gzipped.
The reader trusts nothing: a lying header or corrupt stream gives an IdxError, never a numpy
crash, a hang or an allocation the size the header claims before the data is there to back it.
Datasets are checked from the header before any data is read (28x28 unsigned bytes, a sane count),
so decompression stops at the size the header declares for them plus one byte: a gzip bomb (a
small .gz inflating to gigabytes) is refused after inflating at most that much.
Data is read in bounded chunks into an array that grows with it (never joined from pieces), and
images are decoded straight into float32 pixels (``load_idx_pair``): loading a set costs its
float32 size, not that plus its bytes.
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
from engine.util import open_regular_file, printable

IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions (count, rows, columns)
LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension (count)

# IDX dtype code -> big-endian numpy dtype
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_CODE_FOR_KIND = {np.dtype(v).newbyteorder("="): k for k, v in IDX_DTYPES.items()}

IMAGE_SHAPE = (28, 28)  # rows, columns: every network in DigitLab reads 784 pixels in this layout
MAX_IMAGES = 250_000  # per file: EMNIST Digits, the largest 28x28 ten-class IDX set in use, has 240,000
MAX_DATA_BYTES = 256 << 20  # any IDX array: above the largest dataset file DigitLab reads (MAX_IMAGES x 784 bytes)
_CHUNK = 1 << 20
MAX_GZIP_MEMBERS = 10_000  # gzip files are one member (BGZF: one per 64 KB, ~3,000 for the largest set);
# empty members inflate to nothing, so without this a file of 500,000 of them took 7 s and was never "too big"
_GZIP_MAGIC = b"\x1f\x8b"


class IdxError(DatasetError):
    """An IDX file is malformed: bad magic number, truncated, too long, or not gzip/IDX at all."""


def read_idx(source: str | os.PathLike | BinaryIO, check=None, decode=None) -> np.ndarray:
    """The array stored in an IDX file (plain or gzipped), in native byte order.

    ``check(where, code, shape)``, when given, sees the header before any data is read and raises
    IdxError to refuse it; the data read (and decompressed) is then bounded by what the header declares.
    ``decode(shape, chunks)``, when given, builds the result instead from the data as it arrives
    (``chunks`` yields bytes, exactly the declared amount in all, or raises IdxError).
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        where = printable(path)
        try:
            with open_regular_file(path, IdxError) as raw:  # a FIFO or a device would block or never end
                return _read_idx_stream(raw, where, check, decode)
        except OSError as exc:
            raise IdxError(f"{where}: cannot read it: {exc.strerror or exc}") from exc
    return _read_idx_stream(source, printable(getattr(source, "name", "<stream>")), check, decode)


def _read_idx_stream(raw: BinaryIO, where: str, check, decode) -> np.ndarray:
    head = raw.read(2)
    if not isinstance(head, bytes):
        raise IdxError(f"{where}: expected a binary file, got {type(head).__name__}")
    if head == _GZIP_MAGIC:
        try:
            return _parse(_Gunzip(_Prefixed(head, raw)), where + " (gzip)", check, decode)
        except (OSError, EOFError, zlib.error) as exc:
            raise IdxError(f"{where}: corrupt or truncated gzip data ({printable(exc)})") from exc
    return _parse(_Prefixed(head, raw), where, check, decode)


def _parse(stream, where: str, check, decode) -> np.ndarray:
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
    if check is not None:
        check(where, code, shape)
    dtype = np.dtype(IDX_DTYPES[code])
    declared = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
    # a zero dimension makes the data empty, but numpy still refuses a shape whose other sizes overflow
    nominal = math.prod(d for d in shape if d) * dtype.itemsize
    if declared > MAX_DATA_BYTES or nominal > MAX_DATA_BYTES:
        raise IdxError(f"{where}: header declares shape {shape}, {declared:,} bytes of data; refusing more than "
                       f"{MAX_DATA_BYTES:,} bytes")
    chunks = _data_chunks(stream, declared, where, shape)
    if decode is not None:
        return decode(shape, chunks)
    data, start = np.empty(0, dtype=np.uint8), 0
    for chunk in chunks:
        data = _room(data, start + len(chunk), declared)
        data[start:start + len(chunk)] = np.frombuffer(chunk, dtype=np.uint8)
        start += len(chunk)
    return data.view(dtype).reshape(shape).astype(dtype.newbyteorder("="), copy=False)


def _room(array: np.ndarray, needed: int, declared: int) -> np.ndarray:
    """``array`` (1-D, its own memory) grown to hold ``needed`` values: doubled, up to the ``declared`` size.

    Memory follows the data that has arrived, not what a header claims; resizing reallocates in
    place (large blocks are remapped, not copied).
    """
    if needed > array.size:
        array.resize(min(declared, max(needed, 2 * array.size)), refcheck=False)
    return array


def _data_chunks(stream, declared: int, where: str, shape: tuple):
    """The data in chunks of at most _CHUNK bytes, exactly ``declared`` in all; IdxError if there is less or more."""
    done = 0
    while done < declared:
        chunk = stream.read(min(_CHUNK, declared - done))  # never more: this is what bounds a decompression bomb
        if not chunk:
            raise IdxError(f"{where}: truncated: header declares shape {shape} ({declared:,} bytes of data) "
                           f"but only {done:,} bytes follow")
        done += len(chunk)
        yield chunk
    if stream.read(1):
        raise IdxError(f"{where}: header declares shape {shape} ({declared:,} bytes of data) "
                       "but more data follows (trailing data, or a file that is not what its header says)")


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


class _Gunzip:
    """Inflate gzip data (one or more members) on demand, never more than asked for.

    Not gzip.GzipFile: it reads a member's file-name field one byte per Python call, so a 100 MB
    "file name" takes ~16 s; zlib parses the whole gzip header in C.
    """

    def __init__(self, raw: BinaryIO):
        self._raw, self._inflate, self._input_done = raw, zlib.decompressobj(zlib.MAX_WBITS | 16), False
        self._members = 1

    def read(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            if self._inflate.eof:  # a member ended: another may follow (gzip allows concatenation)
                rest = self._inflate.unused_data or self._more()
                if not rest:
                    break
                self._members += 1
                if self._members > MAX_GZIP_MEMBERS:
                    raise zlib.error(f"more than {MAX_GZIP_MEMBERS:,} gzip members, a file built to be slow to read")
                self._inflate = zlib.decompressobj(zlib.MAX_WBITS | 16)
            else:
                rest = self._inflate.unconsumed_tail or self._more()
                if not rest:
                    raise EOFError("the file ends inside compressed data")
            out += self._inflate.decompress(rest, n - len(out))  # max_length: what bounds a bomb
        return bytes(out)

    def _more(self) -> bytes:
        return b"" if self._input_done else self._raw.read(_CHUNK) or self._finish()

    def _finish(self) -> bytes:
        self._input_done = True
        return b""


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


def read_images(path: str | os.PathLike | BinaryIO, shape: tuple[int, int] | None = IMAGE_SHAPE,
                max_count: int = MAX_IMAGES, as_float: bool = False) -> np.ndarray:
    """(N, rows, cols) uint8 images from an IDX image file (magic 0x00000803), 1 <= N <= max_count.

    ``shape`` is the (rows, cols) every image must have (None: any); all is checked from the header,
    before the data is read. ``as_float``: (N, rows·cols) float32 in [0, 1] instead, decoded chunk
    by chunk (as ``pixels_to_float``), so the uint8 images are never all in memory.
    """
    def check(where: str, code: int, dims: tuple) -> None:
        _check_header(where, code, dims, IMAGES_MAGIC, "images", max_count)
        if shape is not None and tuple(dims[1:]) != tuple(shape):
            raise IdxError(f"{where}: images are {dims[1]}×{dims[2]}, DigitLab needs "
                           f"{shape[0]}×{shape[1]}")

    return read_idx(path, check, _decode_pixels if as_float else None)


def _decode_pixels(shape: tuple, chunks) -> np.ndarray:
    """uint8 pixel data, arriving in chunks, as (N, pixels) float32 in [0, 1]."""
    flat, start = np.empty(0, dtype=np.float32), 0
    for chunk in chunks:
        pixels = np.frombuffer(chunk, dtype=np.uint8)
        flat = _room(flat, start + len(pixels), math.prod(shape))
        np.multiply(pixels, _PIXEL_SCALE, out=flat[start:start + len(pixels)])
        start += len(pixels)
    return flat.reshape(shape[0], -1)


def read_labels(path: str | os.PathLike | BinaryIO, max_count: int = MAX_IMAGES) -> np.ndarray:
    """(N,) uint8 labels from an IDX label file (magic 0x00000801), 1 <= N <= max_count."""
    return read_idx(path, lambda where, code, dims: _check_header(where, code, dims, LABELS_MAGIC, "labels",
                                                                   max_count))


def _check_header(where: str, code: int, dims: tuple, magic: int, what: str, max_count: int) -> None:
    ndim = magic & 0xFF
    if code != 0x08 or len(dims) != ndim:
        kind = np.dtype(IDX_DTYPES[code]).newbyteorder("=").name
        raise IdxError(f"{where}: expected IDX {what} (magic 0x{magic:08X}: unsigned bytes, {ndim} dimension"
                       f"{'s' if ndim > 1 else ''}), found magic 0x{(code << 8) | len(dims):08X} ({kind} data, "
                       f"{len(dims)} dimension{'s' if len(dims) != 1 else ''})")
    if dims[0] == 0:
        raise IdxError(f"{where}: holds no {what} (the header says 0)")
    if dims[0] > max_count:
        raise IdxError(f"{where}: header declares {dims[0]:,} {what}; refusing more than {max_count:,} "
                       "(the largest 28×28 digit set has 240,000)")


def load_idx_pair(images_path, labels_path, n_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Images as (N, 784) float32 in [0, 1] and labels as (N,) int64, checked to belong together."""
    try:
        x = read_images(images_path, as_float=True)
        labels = read_labels(labels_path)
        check_labels(len(x), labels, images_path, labels_path, n_classes)
        return x, labels.astype(np.int64)
    except MemoryError:  # within MAX_IMAGES, but this machine (or its memory limit) has less to give
        raise IdxError(f"{printable(images_path)}: not enough memory to load these images (each image needs "
                       f"{4 * 784:,} bytes as float32)") from None


def check_pair(images: np.ndarray, labels: np.ndarray, images_path, labels_path,
               n_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Check decoded uint8 images (N, 28, 28) and labels (N,) belong together; return them as load_idx_pair does."""
    if images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE or len(images) == 0:
        raise IdxError(f"{printable(images_path)}: expected at least one 28×28 image, found an array of "
                       f"shape {images.shape}")
    check_labels(len(images), labels, images_path, labels_path, n_classes)
    return pixels_to_float(images), labels.astype(np.int64)


def check_labels(n_images: int, labels: np.ndarray, images_path, labels_path, n_classes: int = 10) -> None:
    """IdxError unless there is one label per image, each below ``n_classes``."""
    if n_images != len(labels):
        raise IdxError(f"{printable(images_path)}: holds {n_images:,} images but {printable(labels_path)} "
                       f"holds {len(labels):,} labels")
    bad = np.flatnonzero(labels >= n_classes)
    if bad.size:
        raise IdxError(f"{printable(labels_path)}: label {int(labels[bad[0]])} at index {int(bad[0]):,} is out of "
                       f"range 0-{n_classes - 1} ({bad.size:,} such labels)")


_PIXEL_SCALE = np.float32(1.0 / 255.0)
_ROWS_PER_CHUNK = 4096  # pixels_to_float converts this many images at a time: no uint8-to-float temporary


def pixels_to_float(images: np.ndarray) -> np.ndarray:
    """uint8 images of any shape (N, ...) as (N, pixels) float32 in [0, 1]."""
    images = images.reshape(len(images), -1)
    x = np.empty(images.shape, dtype=np.float32)
    for i in range(0, len(images), _ROWS_PER_CHUNK):
        np.multiply(images[i:i + _ROWS_PER_CHUNK], _PIXEL_SCALE, out=x[i:i + _ROWS_PER_CHUNK])
    return x
