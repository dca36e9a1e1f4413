"""Read the arrays of an ``.npz`` (a zip of ``.npy`` files) without trusting any size it states.

``np.load`` believes the zip and the ``.npy`` headers: a zip can claim millions of entries (listed
before anything is checked), and an entry can inflate far beyond the file. Here, in order:

1. the end-of-central-directory record (and its zip64 form) is read by hand: entry count and
   directory size are bounded *before* ``zipfile`` lists anything;
2. every entry's declared size, summed, must fit an absolute cap and a ratio to the file's size;
3. each entry's ``.npy`` header must describe a plain numeric array (or the DigitLab metadata
   string) of exactly the bytes the entry holds, and the data is streamed into an array of that
   size: the inflater can never produce more than was checked.
"""
from __future__ import annotations

import io
import struct
import zipfile

import numpy as np

from engine.errors import UnsafePickleError, WeightFileError
from engine.util import printable
from engine.weightfiles.pickle_scan import short_error

MAX_NPZ_MEMBERS = 1000  # a weight file has a few dozen arrays
MAX_CENTRAL_DIRECTORY = 1 << 20  # bytes of zip directory: ~100 bytes per entry, so far above 1,000 entries
MAX_NPZ_BYTES = 256 << 20  # decompressed total: the largest sane MNIST model is a few tens of MB
NPZ_EXPANSION = 20  # weights barely compress; more than 20× smaller than the arrays is a zip bomb…
NPZ_SLACK = 32 << 20  # …beyond this much: a file of mostly zeros (fresh biases) may expand more
MAX_NDIM = 32  # numpy's limit is 64; weights have at most 4 dimensions
MAX_METADATA_CHARS = 1 << 20  # DigitLab's JSON metadata is a few KB
_CHUNK = 1 << 20
_EOCD = struct.Struct("<4s4H2LH")  # signature, disk, disk with directory, entries here, entries, size, offset, comment
_EOCD64_LOCATOR = struct.Struct("<4sLQL")
_EOCD64 = struct.Struct("<4sQ2H2L4Q")  # …, entries here, entries, directory size, directory offset
_ALLOWED_COMPRESSION = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}  # what numpy writes


def _end_record(data: bytes) -> tuple | None:
    """The end-of-central-directory record, found exactly as ``zipfile`` finds it."""
    tail = data[-_EOCD.size:]
    if len(tail) == _EOCD.size and tail[:4] == b"PK\x05\x06" and tail[-2:] == b"\0\0":
        return _EOCD.unpack(tail) + (len(data) - _EOCD.size,)
    start = max(len(data) - (1 << 16) - _EOCD.size, 0)
    pos = data.rfind(b"PK\x05\x06", start)
    if pos < 0 or len(data) - pos < _EOCD.size:
        return None
    return _EOCD.unpack_from(data, pos) + (pos,)


def check_directory(data: bytes, where: str) -> None:
    """Refuse zips whose directory lists too many entries or is too large, before ``zipfile`` reads it."""
    record = _end_record(data)
    if record is None:
        raise WeightFileError(f"{where}: a damaged zip file (.npz, PyTorch .pt, …): no end-of-directory record, so it "
                              "is probably cut short (an interrupted download or copy)")
    _sig, _disk, _cd_disk, here, entries, size, _offset, _comment, pos = record
    locator = pos - _EOCD64_LOCATOR.size
    if locator >= 0 and data[locator:locator + 4] == b"PK\x06\x07":
        at = locator - _EOCD64.size  # zipfile reads the zip64 record right before its locator
        if at < 0 or data[at:at + 4] != b"PK\x06\x06":
            raise WeightFileError(f"{where}: a damaged zip file (.npz, PyTorch .pt, …): a broken zip64 directory record")
        fields = _EOCD64.unpack_from(data, at)
        here, entries, size = max(here, fields[6]), max(entries, fields[7]), max(size, fields[8])
    if max(here, entries) > MAX_NPZ_MEMBERS:
        raise UnsafePickleError(f"{where}: refused: the zip lists {max(here, entries):,} entries; a weight file has "
                                f"a few dozen (at most {MAX_NPZ_MEMBERS:,})")
    if size > MAX_CENTRAL_DIRECTORY:
        raise UnsafePickleError(f"{where}: refused: the zip directory is {size:,} bytes (at most "
                                f"{MAX_CENTRAL_DIRECTORY:,}: a weight file's is a few KB)")


def _header(f, where: str, name: str) -> tuple[tuple, bool, np.dtype]:
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
    else:
        raise WeightFileError(f"{where}: entry {name!r} uses .npy format {version}, which weight files never need")
    if dtype.hasobject:
        raise UnsafePickleError(f"{where}: refused: entry {name!r} is an object array (pickled Python objects, "
                                "which can run code); it was not loaded")
    if len(shape) > MAX_NDIM:
        raise WeightFileError(f"{where}: entry {name!r} has {len(shape)} dimensions")
    return shape, fortran, dtype


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: str, name: str, metadata: bool) -> np.ndarray:
    with zf.open(info) as f:
        shape, fortran, dtype = _header(f, where, name)
        plain = dtype.kind in "biufc" and dtype.fields is None and dtype.subdtype is None
        text = metadata and dtype.kind == "U" and shape == ()
        if text and dtype.itemsize > 4 * MAX_METADATA_CHARS:
            raise WeightFileError(f"{where}: the {name} entry is {dtype.itemsize // 4:,} characters of metadata "
                                  f"(DigitLab writes a few thousand; at most {MAX_METADATA_CHARS:,})")
        if not (plain or text):
            raise UnsafePickleError(f"{where}: refused: entry {name!r} has dtype {printable(str(dtype), 60)}; weight "
                                    "arrays are plain numbers")
        count = int(np.prod(shape, dtype=object))
        nbytes = count * dtype.itemsize
        held = info.file_size - f.tell()
        if nbytes != held:
            raise UnsafePickleError(f"{where}: refused: entry {name!r} declares shape {printable(shape, 80)} of {dtype} "
                                    f"({printable(f'{nbytes:,}', 40)} bytes) but holds {held:,} bytes")
        arr = np.empty(count, dtype=dtype)
        view = memoryview(arr.reshape(-1).view(np.uint8)) if nbytes else memoryview(b"")
        pos = 0
        while pos < nbytes:  # never more than the checked size: the inflater stops at file_size anyway
            chunk = f.read(min(_CHUNK, nbytes - pos))
            if not chunk:
                raise WeightFileError(f"{where}: entry {name!r} is truncated")
            view[pos:pos + len(chunk)] = chunk
            pos += len(chunk)
        if f.read(1):  # also makes zipfile check the CRC at the end of the entry
            raise WeightFileError(f"{where}: entry {name!r} holds more data than its header declares")
    arr = arr.reshape(shape[::-1]).transpose() if fortran else arr.reshape(shape)
    return arr if arr.dtype.isnative else arr.astype(arr.dtype.newbyteorder("="))


def open_zip(data: bytes, where: str) -> tuple[zipfile.ZipFile, list[zipfile.ZipInfo]]:
    """A zip (an .npz, a PyTorch .pt, a zipped weight file) and its entries, its directory bounded before it is read."""
    check_directory(data, where)
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except Exception as exc:  # BadZipFile, a name that is not UTF-8, a truncated directory…
        raise WeightFileError(f"{where}: a damaged zip file (.npz, PyTorch .pt, …): {short_error(exc)}") from None
    if len(infos) > MAX_NPZ_MEMBERS:
        raise UnsafePickleError(f"{where}: refused: {len(infos):,} entries; a weight file has a few dozen")
    return zf, infos


def check_declared_sizes(infos: list[zipfile.ZipInfo], file_size: int, where: str) -> None:
    """Refuse a zip whose entries declare more bytes than a file of ``file_size`` bytes can sensibly expand to."""
    limit = min(MAX_NPZ_BYTES, NPZ_EXPANSION * file_size + NPZ_SLACK)
    total = sum(info.file_size for info in infos)
    if total > limit:
        raise UnsafePickleError(f"{where}: refused: the entries declare {total:,} bytes uncompressed, more than a "
                                f"file of {file_size:,} bytes can sensibly expand to ({limit:,}: a zip bomb)")


def read_npz_arrays(data: bytes, where: str, metadata_key: str) -> dict[str, np.ndarray]:
    """Every entry of an .npz as an array (entry names without ``.npy``); all sizes checked before reading."""
    zf, infos = open_zip(data, where)
    check_declared_sizes(infos, len(data), where)
    arrays: dict[str, np.ndarray] = {}
    for info in infos:
        name = printable(info.filename[:-4] if info.filename.endswith(".npy") else info.filename, 80)
        key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
        if info.compress_type not in _ALLOWED_COMPRESSION:
            raise WeightFileError(f"{where}: entry {name!r} uses zip compression method {info.compress_type}; "
                                  ".npz files are stored or deflated")
        try:
            arrays[key] = _read_member(zf, info, where, name, key == metadata_key)
        except WeightFileError:
            raise
        except MemoryError:
            raise UnsafePickleError(f"{where}: refused: entry {name!r} does not fit in memory") from None
        except Exception as exc:  # corrupt headers, CRC errors, truncated data, encrypted entries
            raise WeightFileError(f"{where}: entry {name!r} cannot be read ({short_error(exc)})") from None
    return arrays
