"""The two containers ``torch.save`` writes, opened without torch and without trusting any size they state.

* **zip format** (torch >= 1.6): ``<top>/data.pkl`` (the pickle), ``<top>/data/<key>`` (one raw record
  per storage), ``<top>/byteorder`` (optional, ``little`` or ``big``), ``<top>/version`` and a few
  bookkeeping records; ``<top>`` is the file's stem or ``archive``. The zip is bounded exactly like an
  ``.npz`` (:mod:`engine.weightfiles.npz`: entry count and directory size before listing, total
  declared size against the file's size) and each record's length must equal what its storage declares.
* **legacy format** (torch < 1.6, or ``_use_new_zipfile_serialization=False``): consecutive pickles —
  the magic number, the protocol version (1001), a ``sys_info`` dict, the object (with persistent ids),
  the list of storage keys — then per key an 8-byte little-endian element count and the raw bytes.
  Counts are checked against the pickle and against the bytes that remain.

Both return the unpickled object with every tensor built (see :mod:`engine.weightfiles.torch_pickle`).
"""
from __future__ import annotations

import io
import re
import struct
import zipfile

from engine.errors import UnsafePickleError, WeightFileError
from engine.util import printable
from engine.weightfiles.npz import check_declared_sizes, open_zip
from engine.weightfiles.pickle_scan import prescan, short_error
from engine.weightfiles.safe_pickle import finish, guarded, loads
from engine.weightfiles.text import describe_key
from engine.weightfiles.torch_pickle import Storage, TorchUnpickler, itemsize

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # torch.serialization.MAGIC_NUMBER, the first pickle of a legacy file
LEGACY_PROTOCOL = 1001  # torch.serialization.PROTOCOL_VERSION
_MAGIC_PICKLE = b"\x8a\x0a" + LEGACY_MAGIC.to_bytes(10, "little") + b"."  # LONG1 of 10 bytes, STOP
_DATA_PKL = re.compile(r"[^/]+/data\.pkl")
_SMALL_RECORD = 64  # byteorder and version records hold a few characters
_ALLOWED_COMPRESSION = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)  # torch stores; a re-zipped file may deflate
_COUNT = struct.Struct("<Q")


def is_torch_zip(names: list[str]) -> bool:
    """Whether a zip's member names are a ``torch.save`` archive (a ``<top>/data.pkl``), not an ``.npz``."""
    return any(_DATA_PKL.fullmatch(name) for name in names)


def is_legacy_torch(data: bytes) -> bool:
    """Whether ``data`` starts with the pickled magic number of torch's legacy format (cheap: a prefix test)."""
    if data[:1] != b"\x80" or len(data) < 2:  # PROTO n
        return False
    body = data[2:]
    if body[:1] == b"\x95":  # protocol 4+ frames the pickle: FRAME and an 8-byte length first
        body = body[9:]
    return body.startswith(_MAGIC_PICKLE)


class _Loaded:
    """The object from a torch pickle and the ``_metadata`` BUILD states seen on its OrderedDicts."""

    def __init__(self, obj, metadata: list) -> None:
        self.obj, self.metadata = obj, metadata


def _unpickle(data: bytes, start: int, open_storage, big_endian: bool, budget: int):
    """The pickle at ``data[start:]``: dry-run, then loaded with torch's names; returns (object, unpickler, end)."""
    end = prescan(data, start, persistent_ids=True)
    unpickler = TorchUnpickler(io.BytesIO(data[start:end]), budget, open_storage, big_endian)
    return unpickler.load(), unpickler, end


# ----- zip format
def _zip_infos(data: bytes, where: str) -> tuple[zipfile.ZipFile, dict[str, zipfile.ZipInfo]]:
    zf, infos = open_zip(data, where)
    by_name: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        if info.filename in by_name:  # zipfile would silently read the last one
            raise WeightFileError(f"{where}: the zip holds two entries named {printable(info.filename, 80)!r}")
        if info.compress_type not in _ALLOWED_COMPRESSION:
            raise WeightFileError(f"{where}: entry {printable(info.filename, 80)!r} uses zip compression method "
                                  f"{info.compress_type}; PyTorch files are stored")
        by_name[info.filename] = info
    check_declared_sizes(infos, len(data), where)
    return zf, by_name


def _member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: str) -> bytes:
    """A member's bytes: never more than its checked declared size (zipfile stops there and checks the CRC)."""
    try:
        with zf.open(info) as f:
            raw = f.read(info.file_size)
            extra = f.read(1)
    except Exception as exc:  # CRC errors, corrupt deflate streams, truncated data, encrypted entries
        raise WeightFileError(f"{where}: entry {printable(info.filename, 80)!r} cannot be read "
                              f"({short_error(exc)})") from None
    if len(raw) != info.file_size or extra:
        raise WeightFileError(f"{where}: entry {printable(info.filename, 80)!r} does not hold the "
                              f"{info.file_size:,} bytes its header declares")
    return raw


def _byteorder(zf: zipfile.ZipFile, info: zipfile.ZipInfo | None, where: str) -> bool:
    """True for big-endian records; files without a byteorder record are little-endian (as torch assumes)."""
    if info is None:
        return False
    if info.file_size > _SMALL_RECORD:
        raise WeightFileError(f"{where}: the byteorder record is {info.file_size:,} bytes (expected 'little' or 'big')")
    text = _member(zf, info, where).strip()
    if text not in (b"little", b"big"):
        raise WeightFileError(f"{where}: the byteorder record says {printable(repr(text), 40)} (expected 'little' "
                              "or 'big')")
    return text == b"big"


def load_torch_zip(data: bytes, where: str) -> _Loaded:
    zf, by_name = _zip_infos(data, where)
    tops = [name for name in by_name if _DATA_PKL.fullmatch(name)]
    if len(tops) != 1:
        raise WeightFileError(f"{where}: not a PyTorch zip file ({len(tops)} <folder>/data.pkl entries; "
                              "torch.save writes one)")
    top = tops[0][: -len("data.pkl")]
    if f"{top}constants.pkl" in by_name or any(name.startswith(f"{top}code/") for name in by_name):
        raise WeightFileError(f"{where}: a TorchScript archive (torch.jit.save), not a torch.save file; save the "
                              "model's weights with torch.save(model.state_dict(), path)")
    big_endian = _byteorder(zf, by_name.get(f"{top}byteorder"), where)

    def open_storage(storage: Storage) -> None:
        name = f"{top}data/{storage.key}"
        info = by_name.get(name)
        if info is None:
            raise WeightFileError(f"the pickle names storage {describe_key(storage.key)} but the file has no "
                                  f"record {printable(name, 80)!r} (a missing record)")
        if info.file_size != storage.nbytes:
            raise UnsafePickleError(f"refused: record {printable(name, 80)!r} holds {info.file_size:,} bytes but its "
                                    f"storage declares {storage.numel:,} elements of {itemsize(storage.code)} bytes "
                                    f"({storage.nbytes:,}): wrong size")
        storage.data = _member(zf, info, where)

    def run() -> _Loaded:
        pickled = _member(zf, by_name[tops[0]], where)
        if not pickled:
            raise WeightFileError("data.pkl is empty")
        obj, unpickler, end = _unpickle(pickled, 0, open_storage, big_endian, len(data))
        return _Loaded(finish(obj), unpickler.metadata)

    return guarded(where, run)


# ----- legacy format
def _plain_pickle(data: bytes, start: int, where: str, what: str):
    """One of the small pickles around a legacy file's object: plain data, no persistent ids."""
    end = guarded(where, lambda: prescan(data, start, persistent_ids=True))
    try:
        return loads(data[start:end], where), end
    except WeightFileError as exc:
        raise type(exc)(f"{exc} (in the legacy file's {what})") from None


def load_torch_legacy(data: bytes, where: str) -> _Loaded:
    magic, pos = _plain_pickle(data, 0, where, "magic number")
    if type(magic) is not int or magic != LEGACY_MAGIC:
        raise WeightFileError(f"{where}: not a legacy PyTorch file (wrong magic number)")
    protocol, pos = _plain_pickle(data, pos, where, "protocol version")
    if type(protocol) is not int or protocol != LEGACY_PROTOCOL:
        raise WeightFileError(f"{where}: legacy PyTorch protocol version {describe_key(protocol)} is not supported "
                              f"(torch writes {LEGACY_PROTOCOL})")
    sys_info, pos = _plain_pickle(data, pos, where, "system information")
    little = sys_info.get("little_endian", True) if isinstance(sys_info, dict) else True
    if not isinstance(little, bool):
        raise WeightFileError(f"{where}: the legacy file's system information has a non-boolean little_endian")
    storages: dict[str, Storage] = {}

    obj, unpickler, end = guarded(where, lambda: _unpickle(data, pos, lambda s: storages.setdefault(s.key, s),
                                                             not little, len(data)))
    keys, at = _plain_pickle(data, end, where, "list of storage keys")

    def run() -> _Loaded:
        _read_legacy_records(data, at, keys, storages)
        return _Loaded(finish(obj), unpickler.metadata)

    return guarded(where, run)


def _read_legacy_records(data: bytes, pos: int, keys, storages: dict[str, Storage]) -> None:
    """Fill each storage from its record: an 8-byte element count that must match the pickle, then the bytes."""
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise WeightFileError("the list of storage keys is not a list of strings")
    if len(set(keys)) != len(keys):
        raise WeightFileError("the list of storage keys names a storage twice")
    for key in keys:
        storage = storages.get(key)
        if storage is None:
            raise WeightFileError(f"the list of storage keys names {describe_key(key)}, which the pickle never uses")
        if pos + _COUNT.size > len(data):
            raise WeightFileError(f"the file ends before the record of storage {describe_key(key)} (truncated)")
        (count,) = _COUNT.unpack_from(data, pos)
        pos += _COUNT.size
        if count != storage.numel:
            raise UnsafePickleError(f"refused: the record of storage {describe_key(key)} says {count:,} elements but "
                                    f"the pickle says {storage.numel:,} (the storage count lies)")
        if storage.nbytes > len(data) - pos:
            raise WeightFileError(f"the record of storage {describe_key(key)} needs {storage.nbytes:,} bytes but only "
                                  f"{len(data) - pos:,} remain (a truncated record)")
        storage.data = data[pos:pos + storage.nbytes]
        pos += storage.nbytes
    listed = set(keys)
    missing = [k for k in storages if k not in listed]
    if missing:
        raise WeightFileError(f"the pickle names storage {describe_key(missing[0])} but the file has no record for it "
                              "(a missing record)")
