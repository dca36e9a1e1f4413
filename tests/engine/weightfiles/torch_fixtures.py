"""Test-side writers of PyTorch files, without torch: state_dicts, checkpoints, whole modules, legacy files, hostiles.

Everything is described with the emitter of :mod:`engine.weightfiles.torch_write` (``Global``, ``Call``,
``NewObj``, ``Persistent``, ``Build``), the way ``pickletools.dis`` shows real ``torch.save`` output:

* a tensor is ``torch._utils._rebuild_tensor_v2(persistent ('storage', torch.FloatStorage, key, 'cpu',
  numel), offset, size, stride, False, OrderedDict())``;
* a module is ``NEWOBJ`` of its class then ``BUILD`` with its ``__dict__`` (``training``, ``_parameters``,
  ``_buffers``, ``_non_persistent_buffers_set``, ``_modules``, hooks…); a parameter is
  ``torch._utils._rebuild_parameter(tensor, True, OrderedDict())``;
* a legacy file is the magic number, 1001, a sys_info dict, the object, the storage keys, then per storage an
  8-byte little-endian element count and its bytes.

``hostile_torch_cases()`` gives the integrator's hostile corpus its PyTorch files.
"""
from __future__ import annotations

import io
import struct
import zipfile
from collections import OrderedDict

import numpy as np

from engine.weightfiles.torch_archive import LEGACY_MAGIC, LEGACY_PROTOCOL
from engine.weightfiles.torch_write import (STORAGE_TYPES, Build, Call, Global, NewObj, Persistent, PickleWriter,
                                            contiguous_strides, torch_zip)

MARKER = "/tmp/digitlab-hostile-marker-torch"
REBUILD = Global("torch._utils", "_rebuild_tensor_v2")
PARAMETER = Global("torch._utils", "_rebuild_parameter")


def bfloat16_bits(values) -> np.ndarray:
    """The bfloat16 bits of float32 values (truncated: the top 16 bits), as torch stores them."""
    return (np.asarray(values, np.float32).view(np.uint32) >> 16).astype(np.uint16)


class Storages:
    """Storage records for one file and the tensors that view them."""

    def __init__(self, legacy: bool = False, big_endian: bool = False) -> None:
        self.legacy, self.big_endian = legacy, big_endian
        self.records: dict[str, bytes] = {}
        self.numel: dict[str, int] = {}
        self.types: dict[str, str] = {}

    def storage(self, key: str, storage_type: str, raw: bytes, numel: int) -> str:
        self.records[key], self.types[key], self.numel[key] = raw, storage_type, numel
        return key

    def array(self, arr: np.ndarray, key: str | None = None) -> str:
        """A storage holding ``arr``'s elements in C order (in the file's byte order)."""
        arr = np.asarray(arr)
        order = ">" if self.big_endian else "<"
        raw = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder(order)).tobytes()
        return self.storage(key or str(len(self.records)), STORAGE_TYPES[arr.dtype.name], raw, arr.size)

    def view(self, key: str, offset: int, size: tuple, stride: tuple, storage_type: str | None = None) -> Call:
        pid = ("storage", Global("torch", storage_type or self.types[key]), key, "cpu", self.numel[key])
        if self.legacy:
            pid += (None,)  # legacy ids carry a view_metadata slot
        return Call(REBUILD, (Persistent(pid), offset, tuple(size), tuple(stride), False, OrderedDict()))

    def tensor(self, arr: np.ndarray) -> Call:
        """A contiguous tensor on a storage of its own."""
        key = self.array(arr)
        return self.view(key, 0, np.shape(arr), contiguous_strides(np.shape(arr)))

    def state(self, arrays: dict) -> OrderedDict:
        return OrderedDict((name, self.tensor(arr)) for name, arr in arrays.items())


def zip_file(obj, storages: Storages, top: str = "archive", byteorder: str | None = "little",
             compress: bool = False) -> bytes:
    if storages.big_endian:
        byteorder = "big"
    return torch_zip(PickleWriter().dumps(obj), storages.records, top=top, byteorder=byteorder, compress=compress)


def state_dict_file(arrays: dict, **kwargs) -> bytes:
    storages = Storages(big_endian=kwargs.pop("big_endian", False))
    return zip_file(storages.state(arrays), storages, **kwargs)


def legacy_file(obj, storages: Storages, keys: list[str] | None = None, counts: dict | None = None,
                little_endian: bool = True) -> bytes:
    """A torch < 1.6 file; ``counts`` overrides the element count written before a record (to make it lie)."""
    keys = list(storages.records) if keys is None else keys
    counts = counts or {}
    sys_info = {"protocol_version": LEGACY_PROTOCOL, "little_endian": little_endian,
                "type_sizes": {"short": 2, "int": 4, "long": 4}}
    parts = [PickleWriter().dumps(v) for v in (LEGACY_MAGIC, LEGACY_PROTOCOL, sys_info, obj, keys)]
    for key in keys:
        parts.append(struct.pack("<Q", counts.get(key, storages.numel[key])) + storages.records[key])
    return b"".join(parts)


# ----- whole modules, pickled as torch.save(model) does
_HOOKS = ("_backward_pre_hooks", "_backward_hooks", "_forward_hooks", "_forward_hooks_with_kwargs",
          "_forward_hooks_always_called", "_forward_pre_hooks", "_forward_pre_hooks_with_kwargs",
          "_state_dict_hooks", "_state_dict_pre_hooks", "_load_state_dict_pre_hooks", "_load_state_dict_post_hooks")


def module(cls: str, storages: Storages, params: dict | None = None, buffers: dict | None = None,
           children: dict | None = None, non_persistent: tuple = (), **attrs) -> Build:
    """``NEWOBJ cls`` + ``BUILD __dict__``; params/buffers are arrays (or None), children other modules."""
    module_name, _, name = cls.rpartition(".")
    state = {"training": False,
             "_parameters": {k: None if v is None else Call(PARAMETER, (storages.tensor(v), True, OrderedDict()))
                             for k, v in (params or {}).items()},
             "_buffers": {k: None if v is None else storages.tensor(v) for k, v in (buffers or {}).items()},
             "_non_persistent_buffers_set": Call(Global("__builtin__", "set"), (list(non_persistent),))}
    for hook in _HOOKS:
        state[hook] = OrderedDict()
    state["_modules"] = dict(children or {})
    state.update(attrs)
    return Build(NewObj(Global(module_name, name)), state)


def linear(storages: Storages, w: np.ndarray, b: np.ndarray | None) -> Build:
    return module("torch.nn.modules.linear.Linear", storages, {"weight": w, "bias": b},
                  in_features=w.shape[1], out_features=w.shape[0])


def plain(cls: str, storages: Storages, **attrs) -> Build:
    return module(f"torch.nn.modules.{cls}", storages, **attrs)


# ----- hostile files
def _evil_state(storages: Storages, replace_rebuild) -> OrderedDict:
    """A one-tensor state_dict whose tensor is made by ``replace_rebuild`` instead."""
    key = storages.array(np.zeros(4, np.float32))
    return OrderedDict([("0.weight", replace_rebuild(key))])


def _deflated_bomb() -> bytes:
    """A .pt whose one record inflates from ~100 KB to 100 MB of zeros (a zip bomb)."""
    numel = 25 << 20  # float32 elements: 100 MB
    obj = OrderedDict([("0.weight", Call(REBUILD, (Persistent(("storage", Global("torch", "FloatStorage"), "0", "cpu",
                                                              numel)), 0, (numel,), (1,), False, OrderedDict())))])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        fixed = (1980, 1, 1, 0, 0, 0)  # the same bytes every time: the hostile corpus checks it is current
        zf.writestr(zipfile.ZipInfo("archive/data.pkl", fixed), PickleWriter().dumps(obj))
        info = zipfile.ZipInfo("archive/data/0", fixed)
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w") as f:  # streamed: never 300 MB in memory here
            chunk = bytes(1 << 20)
            for _ in range(100):
                f.write(chunk)
        zf.writestr(zipfile.ZipInfo("archive/version", fixed), b"3\n")
    return buf.getvalue()


def hostile_torch_cases() -> dict[str, tuple[bytes, str]]:
    """File name -> (bytes, a substring of the one-line refusal) for the hostile corpus."""
    cases: dict[str, tuple[bytes, str]] = {}

    s = Storages()
    obj = _evil_state(s, lambda key: Call(Global("posix", "system"), (f"touch {MARKER}-system",)))
    cases["torch_os_system.pt"] = (zip_file(obj, s), "tries to call posix.system")

    s = Storages()
    obj = _evil_state(s, lambda key: Call(Global("builtins", "eval"), (f"open('{MARKER}-eval', 'w')",)))
    cases["torch_eval.pt"] = (zip_file(obj, s), "tries to call builtins.eval")

    s = Storages()  # a made-up rebuild function in torch's namespace is still only a name: inert
    obj = _evil_state(s, lambda key: Call(Global("torch._utils", "_rebuild_tensor_eval"), (f"open('{MARKER}')",)))
    cases["torch_fake_rebuild.pt"] = (zip_file(obj, s), "tries to call torch._utils._rebuild_tensor_eval")

    s = Storages()
    obj = _evil_state(s, lambda key: s.view(key, 2, (3,), (1,)))  # elements 2..4 of a 4-element storage
    cases["torch_offset_out_of_range.pt"] = (zip_file(obj, s), "storage out of range")

    s = Storages()
    obj = _evil_state(s, lambda key: s.view(key, 0, (2, 2), (1, 3)))  # (1, 1) is element 4 of 4
    cases["torch_stride_out_of_range.pt"] = (zip_file(obj, s), "storage out of range")

    s = Storages()
    s.array(np.zeros(4, np.float32), key="0")
    s.numel["0"] = 1000  # the pickle says 1,000 elements; the record holds 4
    cases["torch_short_record.pt"] = (zip_file(OrderedDict([("w", s.view("0", 0, (1000,), (1,)))]), s),
                                      "wrong size")

    cases["torch_zip_bomb.pt"] = (_deflated_bomb(), "zip bomb")

    s = Storages(legacy=True)
    obj = s.state({"0.weight": np.ones((2, 3), np.float32)})
    cases["torch_legacy_count_lies.pt"] = (legacy_file(obj, s, counts={"0": 1 << 40}), "the storage count lies")

    s = Storages()  # one 1,024-element storage viewed 1,000 times: 4 MB of arrays from a file of ~100 KB
    key = s.array(np.zeros(1024, np.float32))
    many = OrderedDict((f"w{i}", s.view(key, 0, (1024,), (1,))) for i in range(1000))
    cases["torch_view_bomb.pt"] = (zip_file(many, s), "memory bomb")
    return cases
