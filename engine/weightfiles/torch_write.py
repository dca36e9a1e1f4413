"""Write a PyTorch state_dict file without torch: what ``torch.save(model.state_dict(), path)`` writes.

The result is torch's zip format — ``archive/data.pkl`` (a protocol-2 pickle of an ``OrderedDict`` of
``torch._utils._rebuild_tensor_v2`` calls, one storage per tensor), ``archive/data/<n>`` (raw little-endian
records, stored uncompressed at 64-byte aligned offsets as torch writes them), ``archive/byteorder``,
``archive/version`` and torch's bookkeeping records — which ``torch.load(path, weights_only=True)`` reads
and ``nn.Module.load_state_dict`` accepts. DigitLab's JSON metadata, if given, rides in the state_dict's
``_metadata`` attribute under ``"digitlab"`` (torch looks there only for module prefixes, so it is ignored).

The pickle is emitted opcode by opcode by :class:`PickleWriter`; :class:`Global`, :class:`Call`,
:class:`Persistent` and :class:`Build` describe the few things a torch pickle does, so the tests' fixture
writers can describe checkpoints, whole modules and hostile variants with the same emitter.
"""
from __future__ import annotations

import io
import os
import struct
import zipfile
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

TOP = "archive"  # torch names the top folder after the file's stem; any name loads
ALIGNMENT = 64  # torch aligns every record's data to 64 bytes (mmap loading relies on it)
VERSION = b"3\n"  # torch.serialization's zip format version
STORAGE_TYPES = {"float32": "FloatStorage", "float64": "DoubleStorage", "float16": "HalfStorage",
                 "int64": "LongStorage", "int32": "IntStorage", "int16": "ShortStorage", "int8": "CharStorage",
                 "uint8": "ByteStorage", "bool": "BoolStorage"}
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # a fixed timestamp: the same weights give the same file


@dataclass(frozen=True)
class Global:
    """A module-level name the pickle refers to (the GLOBAL opcode)."""

    module: str
    name: str


@dataclass(frozen=True)
class Call:
    """``func(*args)`` when unpickled (REDUCE); ``func`` is a :class:`Global` or another value."""

    func: object
    args: tuple


@dataclass(frozen=True)
class NewObj:
    """``cls.__new__(cls, *args)`` (NEWOBJ), as protocol 2 pickles instances of ordinary classes."""

    cls: object
    args: tuple = ()


@dataclass(frozen=True)
class Persistent:
    """An object the unpickler gets from outside the pickle: ``persistent_load(pid)`` (BINPERSID)."""

    pid: object


@dataclass(frozen=True)
class Build:
    """``obj`` with ``state`` applied by BUILD (``__setstate__`` or ``__dict__.update``)."""

    obj: object
    state: object


class PickleWriter:
    """Emits a protocol-2 pickle: GLOBALs memoised, containers batched like ``pickle`` does."""

    BATCH = 1000  # items per MARK … SETITEMS/APPENDS, as pickle writes them

    def __init__(self) -> None:
        self.out = io.BytesIO()
        self.memo: dict = {}

    def dumps(self, value) -> bytes:
        self.out.write(b"\x80\x02")
        self.value(value)
        self.out.write(b".")
        return self.out.getvalue()

    def op(self, code: bytes) -> None:
        self.out.write(code)

    def put(self, key) -> None:
        index = len(self.memo)
        self.memo[key] = index
        self.op(b"q" + bytes([index]) if index < 256 else b"r" + struct.pack("<I", index))

    def get(self, key) -> bool:
        index = self.memo.get(key)
        if index is None:
            return False
        self.op(b"h" + bytes([index]) if index < 256 else b"j" + struct.pack("<I", index))
        return True

    def value(self, v) -> None:  # noqa: C901 - one branch per kind of value, as pickle's own save()
        w = self.op
        if v is None:
            w(b"N")
        elif v is True or v is False:
            w(b"\x88" if v else b"\x89")
        elif isinstance(v, int):
            if 0 <= v < 256:
                w(b"K" + bytes([v]))
            elif 0 <= v < 65536:
                w(b"M" + struct.pack("<H", v))
            elif -(1 << 31) <= v < 1 << 31:
                w(b"J" + struct.pack("<i", v))
            else:
                raw = v.to_bytes((v.bit_length() + 8) // 8, "little", signed=True)
                w(b"\x8a" + bytes([len(raw)]) + raw)
        elif isinstance(v, float):
            w(b"G" + struct.pack(">d", v))
        elif isinstance(v, str):
            raw = v.encode("utf-8", "surrogatepass")
            w(b"X" + struct.pack("<I", len(raw)) + raw)
        elif isinstance(v, bytes):  # protocol 2 has no bytes opcode: pickle writes _codecs.encode(latin-1 text)
            self.value(Call(Global("_codecs", "encode"), (v.decode("latin-1"), "latin1")))
        elif isinstance(v, Global):
            if not self.get(v):
                w(f"c{v.module}\n{v.name}\n".encode("utf-8"))
                self.put(v)
        elif isinstance(v, Call):
            self.value(v.func)
            self.value(tuple(v.args))
            w(b"R")
        elif isinstance(v, NewObj):
            self.value(v.cls)
            self.value(tuple(v.args))
            w(b"\x81")
        elif isinstance(v, Persistent):
            self.value(v.pid)
            w(b"Q")
        elif isinstance(v, Build):
            self.value(v.obj)
            self.value(v.state)
            w(b"b")
        elif isinstance(v, tuple):
            w(b"(")
            for item in v:
                self.value(item)
            w(b"t")
        elif isinstance(v, list):
            w(b"]")
            for start in range(0, len(v), self.BATCH):
                w(b"(")
                for item in v[start:start + self.BATCH]:
                    self.value(item)
                w(b"e")
        elif isinstance(v, Mapping):
            if isinstance(v, OrderedDict):
                self.value(Call(Global("collections", "OrderedDict"), ()))
            else:
                w(b"}")
            items = list(v.items())
            for start in range(0, len(items), self.BATCH):
                w(b"(")
                for key, item in items[start:start + self.BATCH]:
                    self.value(key)
                    self.value(item)
                w(b"u")
        else:
            raise TypeError(f"cannot write a {type(v).__name__} into a torch pickle")


def rebuild_tensor(storage_type: str, key: str, numel: int, offset: int, size: tuple, stride: tuple,
                   location: str = "cpu") -> Call:
    """``torch._utils._rebuild_tensor_v2`` on storage record ``key``, as torch writes a tensor."""
    pid = ("storage", Global("torch", storage_type), key, location, numel)
    return Call(Global("torch._utils", "_rebuild_tensor_v2"),
                (Persistent(pid), offset, tuple(size), tuple(stride), False, OrderedDict()))


def contiguous_strides(shape: tuple) -> tuple:
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))


def torch_zip(pickled: bytes, records: Mapping[str, bytes], top: str = TOP, byteorder: str | None = "little",
              compress: bool = False) -> bytes:
    """A torch zip archive: ``data.pkl``, the records as ``data/<key>`` (64-byte aligned) and the bookkeeping."""
    entries = [("data.pkl", pickled), (".format_version", b"1"), (".storage_alignment", str(ALIGNMENT).encode())]
    if byteorder is not None:
        entries.append(("byteorder", byteorder.encode()))
    entries += [(f"data/{key}", raw) for key, raw in records.items()]
    entries.append(("version", VERSION))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, raw in entries:
            info = zipfile.ZipInfo(f"{top}/{name}", date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
            header = 30 + len(info.filename.encode("utf-8"))  # local header: 30 bytes, the name, the extra field
            pad = -(buf.tell() + header + 4) % ALIGNMENT  # torch pads with an "FB" extra field
            info.extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
            zf.writestr(info, raw)
    return buf.getvalue()


def state_dict_pickle(state: Mapping[str, np.ndarray], digitlab_json: str | None = None) -> tuple[bytes, dict]:
    """The pickle of ``state`` as an OrderedDict of tensors, and the records (little-endian) it refers to."""
    tensors: OrderedDict = OrderedDict()
    records: dict[str, bytes] = {}
    for i, (name, value) in enumerate(state.items()):
        arr = np.asarray(value)
        storage_type = STORAGE_TYPES.get(arr.dtype.name)
        if storage_type is None:
            raise ValueError(f"{name}: arrays of dtype {arr.dtype} cannot be written to a PyTorch file")
        key = str(i)
        records[key] = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes()
        tensors[str(name)] = rebuild_tensor(storage_type, key, arr.size, 0, arr.shape, contiguous_strides(arr.shape))
    obj = tensors
    if digitlab_json is not None:  # torch.save sets _metadata by BUILD on the OrderedDict, so do we
        obj = Build(tensors, {"_metadata": OrderedDict([("digitlab", {"json": digitlab_json})])})
    return PickleWriter().dumps(obj), records


def write_torch_state_dict(f, state: Mapping[str, np.ndarray], digitlab_json: str | None = None) -> None:
    """Write ``state`` (names -> arrays in torch layout) to binary file ``f`` (or a path) as a PyTorch state_dict."""
    pickled, records = state_dict_pickle(state, digitlab_json)
    data = torch_zip(pickled, records)
    if isinstance(f, (str, os.PathLike)):
        with open(f, "wb") as out:
            out.write(data)
    else:
        f.write(data)
