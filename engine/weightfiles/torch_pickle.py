"""The pickle inside a PyTorch file, unpickled without torch: tensors become NumPy arrays, nothing else runs.

``torch.save`` pickles a state_dict as ``collections.OrderedDict`` of
``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, …)`` calls, where each storage is a
*persistent id* ``('storage', torch.FloatStorage, key, location, numel)`` naming a raw record stored
next to the pickle. :class:`TorchUnpickler` extends the restricted unpickler of
:mod:`engine.weightfiles.safe_pickle` with exactly these names: the tensor and parameter rebuilds, the
storage types (each a dtype) and ``OrderedDict`` (which may carry torch's ``_metadata``). Every other
name stays an inert stand-in that refuses to be called, as in any weight pickle.

A tensor's geometry (offset, sizes, strides) is checked against its storage's element count when the
pickle names it, its bytes are charged to a budget no larger than the file (many tensors viewing one
large storage would otherwise be a memory bomb), and the array itself is built later
(:class:`TensorBuilder` resolves once the storage bytes are read: the legacy format stores them after
the pickle) as a contiguous native-order copy.
"""
from __future__ import annotations

import numpy as np

from engine.errors import UnsafePickleError, WeightFileError
from engine.util import printable
from engine.weightfiles.pickle_names import MAX_NDIM, ArrayBuilder, Budget
from engine.weightfiles.pickle_objects import (PickledOrderedDict, SafeCallable, is_stand_in_class,
                                               refuse_call)
from engine.weightfiles.safe_pickle import RestrictedUnpickler
from engine.weightfiles.text import describe_key

MAX_KEY_CHARS = 200  # storage keys are small numbers ("0", "1", … or a pointer in legacy files)
BFLOAT16 = "bfloat16"
# torch's typed storage classes and the element each holds; bfloat16 has no NumPy type (widened to float32)
STORAGE_DTYPES = {"FloatStorage": "f4", "DoubleStorage": "f8", "HalfStorage": "f2", "BFloat16Storage": BFLOAT16,
                  "LongStorage": "i8", "IntStorage": "i4", "ShortStorage": "i2", "CharStorage": "i1",
                  "ByteStorage": "u1", "BoolStorage": "b1"}
_UNSUPPORTED = {  # torch rebuilds for tensors that are not plain strided arrays: refused with a reason
    "_rebuild_sparse_tensor": "sparse tensors are not supported (save a dense state_dict: t.to_dense())",
    "_rebuild_sparse_csr_tensor": "sparse tensors are not supported (save a dense state_dict: t.to_dense())",
    "_rebuild_nested_tensor": "nested tensors are not supported (save plain tensors)",
    "_rebuild_qtensor": "quantized tensors are not supported (save the float model's state_dict)",
}


def itemsize(code: str) -> int:
    return 2 if code == BFLOAT16 else np.dtype(code).itemsize


class StorageType(SafeCallable):
    """``torch.FloatStorage`` and friends: only a dtype named in a persistent id, never called."""

    __slots__ = ("code",)

    def __init__(self, name: str, code: str) -> None:
        super().__init__(f"torch.{name}", _refuse_storage_call)
        object.__setattr__(self, "code", code)


def _refuse_storage_call(*args, **kwargs):
    refuse_call("a torch storage constructor (storages come only from the file's records)")


class Storage:
    """One storage record: its key, element type, element count and (once read) its bytes."""

    __slots__ = ("key", "code", "numel", "data")

    def __init__(self, key: str, code: str, numel: int) -> None:
        self.key, self.code, self.numel = key, code, numel
        self.data: bytes | None = None

    @property
    def nbytes(self) -> int:
        return self.numel * itemsize(self.code)


class TensorBuilder(ArrayBuilder):
    """What ``_rebuild_tensor_v2`` returns: geometry checked now, the array built from the storage later."""

    __slots__ = ("storage", "offset", "size", "stride", "big_endian")

    def __init__(self, budget: Budget, storage: Storage, offset: int, size: tuple, stride: tuple,
                 big_endian: bool) -> None:
        super().__init__(budget)
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride
        self.big_endian = big_endian

    def __setstate__(self, state) -> None:
        raise UnsafePickleError("refused: the file sets attributes on a tensor (BUILD state on a tensor)")

    def resolve(self) -> np.ndarray:
        if self.array is None:
            self.array = _build(self)
        return self.array


def _build(t: TensorBuilder) -> np.ndarray:
    st = t.storage
    if st.data is None:
        raise WeightFileError(f"storage {describe_key(st.key)} has no data record")
    bf16 = st.code == BFLOAT16
    dtype = np.dtype("u2" if bf16 else st.code).newbyteorder(">" if t.big_endian else "<")
    count = int(np.prod(t.size, dtype=object))
    if count == 0:
        out = np.zeros(t.size, dtype=dtype.newbyteorder("="))
    else:
        base = np.frombuffer(st.data, dtype=dtype, count=st.numel)[t.offset:]
        strides = tuple(s * dtype.itemsize for s in t.stride)
        # geometry was checked against numel in _tensor(): every element read lies inside the record
        view = np.lib.stride_tricks.as_strided(base, shape=t.size, strides=strides, writeable=False)
        out = np.array(view, dtype=dtype.newbyteorder("="), order="C")  # a contiguous native-order copy
    if bf16:  # bfloat16 is the top half of a float32: shift its 16 bits up
        out = (out.astype(np.uint32) << 16).view(np.float32)
    return out


def _ints(value, what: str) -> tuple:
    if not isinstance(value, (tuple, list)) or len(value) > MAX_NDIM:
        raise WeightFileError(f"a tensor has an invalid {what} ({type(value).__name__})")
    if not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 1 << 62 for v in value):
        shown = ", ".join(printable(repr(v), 30) if not isinstance(v, int) else describe_key(v) for v in value[:8])
        raise WeightFileError(f"a tensor has an invalid {what} ({shown}): sizes and strides are non-negative integers")
    return tuple(value)


def _tensor(budget: Budget, big_endian: bool, storage, offset, size, stride) -> TensorBuilder:
    if not isinstance(storage, Storage):
        raise UnsafePickleError(f"refused: a tensor built on {type(storage).__name__}, not on a storage record")
    if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset < 1 << 62:
        raise WeightFileError(f"a tensor on storage {describe_key(storage.key)} has an invalid storage offset")
    size, stride = _ints(size, "size"), _ints(stride, "stride")
    if len(size) != len(stride):
        raise WeightFileError(f"a tensor has {len(size)} sizes but {len(stride)} strides")
    count = int(np.prod(size, dtype=object))
    last = offset + sum((n - 1) * s for n, s in zip(size, stride)) if count else offset - 1
    if last >= storage.numel or offset > storage.numel:  # the furthest element must lie inside the record
        raise UnsafePickleError(f"refused: a tensor of size {list(size)} at offset {offset} with strides "
                                f"{list(stride)} reaches element {last:,} of storage {describe_key(storage.key)}, "
                                f"which holds {storage.numel:,} (storage out of range)")
    budget.take(count * itemsize(storage.code))  # charged now, before anything is built
    return TensorBuilder(budget, storage, offset, size, stride, big_endian)


class TorchOrderedDict(PickledOrderedDict):
    """``collections.OrderedDict`` in a torch pickle: BUILD may give it ``_metadata`` (kept aside), nothing else."""

    __slots__ = ()
    registry: list | None = None  # set per unpickler on a subclass: (dict, metadata) pairs

    def __setstate__(self, state) -> None:
        if not isinstance(state, dict) or set(state) != {"_metadata"}:
            super().__setstate__(state)  # refused, as for any OrderedDict
        self.registry.append((self, state["_metadata"]))


class TorchUnpickler(RestrictedUnpickler):
    """The restricted unpickler plus torch's tensor names; ``open_storage(key, code, numel)`` supplies records."""

    def __init__(self, file, budget: int, open_storage, big_endian: bool) -> None:
        super().__init__(file, budget)
        self.metadata: list = []
        self._open_storage = open_storage
        self._storages: dict[str, Storage] = {}
        tensors = Budget(budget)
        ordered = type("TorchOrderedDict", (TorchOrderedDict,), {"__slots__": (), "registry": self.metadata})

        def rebuild_v2(storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
            if metadata:  # conjugate/negative view bits and the like: never on weights
                raise WeightFileError("a tensor with extra metadata (a conjugate or negative view) is not supported")
            return _tensor(tensors, big_endian, storage, offset, size, stride)

        def parameter(data, requires_grad=False, hooks=None, state=None):
            if not isinstance(data, TensorBuilder):
                refuse_call(f"torch._utils._rebuild_parameter on {type(data).__name__} (only on a tensor)")
            return data  # requires_grad, hooks and state are training details: ignored

        def unsupported(reason: str):
            def refuse(*args, **kwargs):
                raise WeightFileError(reason)
            return refuse

        names = self._names
        names[("collections", "OrderedDict")] = ordered
        names[("torch._utils", "_rebuild_tensor_v2")] = SafeCallable("torch._utils._rebuild_tensor_v2", rebuild_v2)
        for name in ("_rebuild_parameter", "_rebuild_parameter_with_state"):
            names[("torch._utils", name)] = SafeCallable(f"torch._utils.{name}", parameter)
        for name, reason in _UNSUPPORTED.items():
            names[("torch._utils", name)] = SafeCallable(f"torch._utils.{name}", unsupported(reason))
        for name, code in STORAGE_DTYPES.items():
            names[("torch", name)] = StorageType(name, code)

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or len(pid) not in (5, 6) or pid[0] != "storage":
            raise UnsafePickleError("refused: a persistent id that is not a tensor storage "
                                    f"({type(pid).__name__} of {len(pid) if isinstance(pid, tuple) else '?'} items)")
        kind, key, _location, numel = pid[1:5]  # the location (cpu, cuda:0…) does not matter: all loads to NumPy
        if len(pid) == 6 and pid[5] is not None:
            raise WeightFileError("a storage view (written by torch before 0.4) is not supported")
        if not isinstance(kind, StorageType):
            raise WeightFileError(f"a storage of type {_global_name(kind)} is not supported (only float, integer "
                                  "and bool storages)")
        if not isinstance(key, str) or not 0 < len(key) <= MAX_KEY_CHARS:
            raise WeightFileError(f"a storage key {describe_key(key)} is not a short string")
        if not isinstance(numel, int) or isinstance(numel, bool) or not 0 <= numel < 1 << 62:
            raise WeightFileError(f"storage {describe_key(key)} has an invalid element count {describe_key(numel)}")
        known = self._storages.get(key)
        if known is None:
            known = self._storages[key] = Storage(key, kind.code, numel)
            self._open_storage(known)
        elif (known.code, known.numel) != (kind.code, numel):
            raise WeightFileError(f"storage {describe_key(key)} is named twice with different types or sizes")
        return known


def _global_name(obj) -> str:
    if isinstance(obj, SafeCallable):
        return obj.qualname
    if is_stand_in_class(obj):
        return printable(f"{obj.module}.{obj.name}", 80)
    return f"a {type(obj).__name__}"
