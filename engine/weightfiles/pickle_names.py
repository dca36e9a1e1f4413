"""What a weight pickle may name, and what each name becomes: inert stand-ins and checked array builders.

A pickle names functions and classes and calls them. Here only the handful a weight file needs
(numpy arrays, dtypes and scalars, builtin containers, ``collections.OrderedDict``) resolve to
replacements written here, which check their arguments; every other name becomes a :class:`StandIn`
class (:mod:`engine.weightfiles.pickle_objects`) that records module and name, is never imported, and
refuses to be called.
"""
from __future__ import annotations

import pickle
import re
from typing import Any

import numpy as np

from engine.errors import UnsafePickleError, WeightFileError
from engine.util import printable
from engine.weightfiles.pickle_objects import (PICKLED_CONTAINERS, PickledDict, PickledList, PickledOrderedDict,
                                               SafeCallable, StandIn, check_keys, is_stand_in_class, make_stand_in,
                                               refuse_call)

__all__ = ["ArrayBuilder", "Budget", "DtypeBuilder", "StandIn", "allowed_names", "make_stand_in"]

MAX_NDIM = 32  # numpy's own limit is 64; weight arrays have at most 4 dimensions


class _NdarrayMarker(SafeCallable):
    """Stands for ``numpy.ndarray``: only ``_reconstruct`` may use it; calling it could allocate any size."""

    def __call__(self, *args, **kwargs):
        refuse_call("numpy.ndarray directly (it would allocate memory of any size)")


_NDARRAY = _NdarrayMarker("numpy.ndarray", None)

# ----- numeric dtypes -----
_DTYPE_CODE = re.compile(r"[<>=|]?(b1|[iu][1248]|f[248]|c(8|16))")
_DTYPE_NAMES = {"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                "float16", "float32", "float64", "complex64", "complex128"}


def _numeric_dtype(spec) -> np.dtype:
    if isinstance(spec, np.dtype):
        dt = spec
    elif isinstance(spec, DtypeBuilder):
        dt = spec.resolve()
    elif isinstance(spec, str) and (_DTYPE_CODE.fullmatch(spec) or spec in _DTYPE_NAMES):
        dt = np.dtype(spec)
    elif isinstance(spec, str) and spec.lstrip("<>=|")[:1] == "O":
        raise UnsafePickleError("refused: the file holds a numpy array of dtype object (pickled Python objects "
                                "inside an array can run code)")
    else:
        raise UnsafePickleError(f"refused: numpy dtype {_value(spec)}: only numeric arrays are allowed in a "
                                "weight file")
    if dt.kind not in "biufc" or dt.fields is not None or dt.shape != ():
        raise UnsafePickleError(f"refused: numpy dtype {dt}: only numeric arrays are allowed in a weight file")
    return dt


class DtypeBuilder:
    """What ``numpy.dtype(...)`` returns while unpickling: a numeric dtype plus the byte order from BUILD."""

    __slots__ = ("dtype",)

    def __init__(self, spec, align=False, copy=True) -> None:
        self.dtype = _numeric_dtype(spec)

    def __setstate__(self, state) -> None:
        if not isinstance(state, tuple) or len(state) < 2 or state[1] not in ("<", ">", "=", "|"):
            raise UnsafePickleError("refused: a numpy dtype with an unexpected state")
        if len(state) >= 5 and (state[3] is not None or state[4] is not None):
            raise UnsafePickleError("refused: a structured numpy dtype (weight arrays are plain numbers)")
        if state[1] == ">":
            self.dtype = self.dtype.newbyteorder(">")
        elif state[1] == "<":
            self.dtype = self.dtype.newbyteorder("<")

    def resolve(self) -> np.dtype:
        return self.dtype


class Budget:
    """Bytes of array data one load may build: at most the size of the file (shared bytes count each time)."""

    def __init__(self, limit: int) -> None:
        self.left = limit

    def take(self, n: int) -> None:
        self.left -= n
        if self.left < 0:
            raise UnsafePickleError("refused: the arrays built would be larger than the file itself "
                                    "(the same data reused many times: a memory bomb)")


def _as_bytes(raw, what: str) -> bytes | bytearray:
    if isinstance(raw, (bytes, bytearray)):
        return raw  # np.frombuffer reads either; the array is copied once below
    if isinstance(raw, str):  # Python 2 pickles: str holds bytes (decoded as latin-1)
        return raw.encode("latin-1")
    if isinstance(raw, list):
        raise UnsafePickleError(f"refused: {what} holds Python objects, not numbers (an object array)")
    raise UnsafePickleError(f"refused: {what} has data of type {type(raw).__name__}, expected bytes")


def _check_shape(shape, what: str) -> tuple:
    if not isinstance(shape, (tuple, list)) or len(shape) > MAX_NDIM:
        raise UnsafePickleError(f"refused: {what} has an invalid shape")
    if not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 1 << 40 for d in shape):
        raise UnsafePickleError(f"refused: {what} has an invalid shape ({', '.join(_value(d) for d in shape[:8])})")
    return tuple(shape)


def _value(v) -> str:
    """A value from the file, for a message: short, and never str() of a huge int (which raises)."""
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v) if v.bit_length() <= 64 else f"an integer of {v.bit_length():,} bits"
    if isinstance(v, (str, float, bool, type(None))):
        return repr(printable(v, 40)) if isinstance(v, str) else repr(v)
    return type(v).__name__


def _build_array(raw, dtype: np.dtype, shape: tuple, fortran: bool, budget: Budget) -> np.ndarray:
    data = _as_bytes(raw, "a numpy array")
    expected = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if expected != len(data):
        raise UnsafePickleError(f"refused: a numpy array declares shape {printable(shape, 80)} of {dtype} "
                                f"({printable(f'{expected:,}', 40)} bytes) but holds {len(data):,} bytes")
    budget.take(len(data))
    arr = np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")
    return arr.astype(dtype.newbyteorder("="), order="C")  # a writable native-order copy


class ArrayBuilder:
    """What ``numpy.core.multiarray._reconstruct`` returns: BUILD fills it with a checked array."""

    __slots__ = ("array", "budget")

    def __init__(self, budget: Budget) -> None:
        self.array = None
        self.budget = budget

    def __setstate__(self, state) -> None:
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise UnsafePickleError("refused: a numpy array with an unexpected state")
        shape, dtype, fortran, raw = state[-4:]
        shape = _check_shape(shape, "a numpy array")
        self.array = _build_array(raw, _numeric_dtype(dtype), shape, bool(fortran), self.budget)

    def resolve(self) -> np.ndarray:
        if self.array is None:
            raise WeightFileError("an array in the file was never filled in (the pickle is incomplete)")
        return self.array


# ----- the names a weight file may use -----
def allowed_names(budget: Budget) -> dict[tuple[str, str], Any]:
    def reconstruct(subtype, shape=None, dtype_code=None):
        if subtype is not _NDARRAY:
            refuse_call(f"numpy's array reconstructor with class {_describe(subtype)} (only numpy.ndarray "
                         "is allowed)")
        return ArrayBuilder(budget)

    def scalar(dtype, data=None):
        dt = _numeric_dtype(dtype)
        raw = _as_bytes(data, "a numpy scalar")
        if len(raw) != dt.itemsize:
            raise UnsafePickleError(f"refused: a numpy scalar of {dt} with {len(raw)} bytes")
        return np.frombuffer(raw, dtype=dt)[0]

    def frombuffer(buf, dtype, shape, order="C"):
        if isinstance(buf, pickle.PickleBuffer):
            buf = bytes(buf.raw())
        dt = _numeric_dtype(dtype)
        shape = _check_shape(shape, "a numpy array")
        return _build_array(buf, dt, shape, order == "F", budget)

    def encode(obj, encoding="utf-8", errors="strict"):
        if not isinstance(obj, str) or encoding not in ("latin1", "latin-1", "utf-8", "utf8", "ascii"):
            refuse_call(f"_codecs.encode with encoding {_value(encoding)}")
        return obj.encode(encoding)

    def sized(kind):
        def make(*args):
            if not args:
                return kind()
            if len(args) == 2 and isinstance(args[0], str) and args[1] in ("latin1", "latin-1", "utf-8"):
                return kind(args[0], args[1])
            if len(args) == 1 and isinstance(args[0], (bytes, bytearray, list, tuple)):
                return kind(args[0])
            refuse_call(f"builtins.{kind.__name__} with arguments other than data (an int allocates memory)")
        return make

    def collection(kind):
        def make(*args):
            if not args:
                return kind()
            if len(args) == 1 and isinstance(args[0], (list, tuple, set, frozenset)):
                if isinstance(args[0], (list, tuple)):  # a set's elements were checked when it was made
                    check_keys(args[0], f"builtins.{kind.__name__}")
                return kind(args[0])
            refuse_call(f"builtins.{kind.__name__} with arguments other than a list")
        return make

    def make_complex(real=0.0, imag=0.0):
        if not all(isinstance(v, (int, float)) for v in (real, imag)):
            refuse_call("builtins.complex with arguments other than numbers")
        return complex(real, imag)

    def reconstructor(cls, base, state=None):
        if not is_stand_in_class(cls):
            refuse_call(f"copyreg._reconstructor with class {_describe(cls)} (only unknown, inert classes "
                         "are rebuilt)")
        if base not in (object, PickledDict, PickledList):
            refuse_call(f"copyreg._reconstructor with base {_describe(base)} (it would run that class's code)")
        obj = StandIn.__new__(cls)
        if isinstance(state, dict):
            obj.items.update(state)
        elif isinstance(state, list):
            obj.listitems.extend(state)
        return obj

    def newobj(cls, *args):
        return _new_instance(cls, args, "copyreg.__newobj__")

    def newobj_ex(cls, args=(), kwargs=None):
        return _new_instance(cls, tuple(args) if isinstance(args, (tuple, list)) else (), "copyreg.__newobj_ex__")

    names: dict[tuple[str, str], Any] = {("numpy", "ndarray"): _NDARRAY, ("numpy", "dtype"): SafeCallable(
        "numpy.dtype", DtypeBuilder)}
    for core in ("numpy.core", "numpy._core"):
        names[(f"{core}.multiarray", "_reconstruct")] = SafeCallable(f"{core}.multiarray._reconstruct", reconstruct)
        names[(f"{core}.multiarray", "scalar")] = SafeCallable(f"{core}.multiarray.scalar", scalar)
        names[(f"{core}.numeric", "_frombuffer")] = SafeCallable(f"{core}.numeric._frombuffer", frombuffer)
    names[("_codecs", "encode")] = SafeCallable("_codecs.encode", encode)
    names[("collections", "OrderedDict")] = PickledOrderedDict
    for builtins in ("builtins", "__builtin__"):
        names[(builtins, "object")] = object
        names[(builtins, "dict")] = PickledDict
        names[(builtins, "list")] = PickledList
        names[(builtins, "set")] = SafeCallable("builtins.set", collection(set))
        names[(builtins, "frozenset")] = SafeCallable("builtins.frozenset", collection(frozenset))
        names[(builtins, "bytearray")] = SafeCallable("builtins.bytearray", sized(bytearray))
        names[(builtins, "bytes")] = SafeCallable("builtins.bytes", sized(bytes))
        names[(builtins, "complex")] = SafeCallable("builtins.complex", make_complex)
    for copyreg in ("copyreg", "copy_reg"):
        names[(copyreg, "_reconstructor")] = SafeCallable("copyreg._reconstructor", reconstructor)
        names[(copyreg, "__newobj__")] = SafeCallable("copyreg.__newobj__", newobj)
        names[(copyreg, "__newobj_ex__")] = SafeCallable("copyreg.__newobj_ex__", newobj_ex)
    return names


def _new_instance(cls, args: tuple, via: str):
    if is_stand_in_class(cls):
        return StandIn.__new__(cls, *args)
    if cls in PICKLED_CONTAINERS or cls is object:
        return cls.__new__(cls)
    refuse_call(f"{via} with class {_describe(cls)}")


def _describe(obj) -> str:
    if is_stand_in_class(obj):
        return printable(f"{obj.module}.{obj.name}")
    if isinstance(obj, SafeCallable):
        return obj.qualname
    if isinstance(obj, type):
        return getattr(obj, "pickled_name", None) or f"{obj.__module__}.{obj.__qualname__}"
    return type(obj).__name__
