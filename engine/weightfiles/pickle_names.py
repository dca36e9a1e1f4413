"""What a weight pickle may name, and what each name becomes: inert stand-ins and checked array builders.

A pickle names functions and classes and calls them. Here only the handful a weight file needs
(numpy arrays, dtypes and scalars, builtin containers, ``collections.OrderedDict``) resolve to
replacements written here, which check their arguments; every other name becomes a :class:`StandIn`
class that records module and name, is never imported, and refuses to be called.
"""
from __future__ import annotations

import pickle
import re
from collections import OrderedDict
from typing import Any

import numpy as np

from engine.errors import UnsafePickleError, WeightFileError

MAX_NDIM = 32

class StandIn:
    """An inert record of an object whose class the file names but we never import.

    ``module``/``name`` (on the class) say what the file called it; ``args`` are the
    constructor arguments recorded by NEWOBJ, ``state`` what ``__setstate__``
    received (usually the object's ``__dict__``), ``items``/``listitems`` what was
    added to it as if it were a dict or a list.
    """

    __slots__ = ("args", "state", "items", "listitems")
    module = ""
    name = ""

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        obj.args = args
        obj.state = None
        obj.items = {}
        obj.listitems = []
        return obj

    def __setstate__(self, state) -> None:
        self.state = state

    def __setitem__(self, key, value) -> None:
        self.items[key] = value

    def append(self, value) -> None:
        self.listitems.append(value)

    def extend(self, values) -> None:
        self.listitems.extend(values)

    @property
    def qualified_name(self) -> str:
        return f"{type(self).module}.{type(self).name}"

    @property
    def attributes(self) -> dict:
        """The object's ``__dict__`` as pickled (a ``(dict, slots)`` state is merged), else {}."""
        state = self.state
        if isinstance(state, tuple) and len(state) == 2 and all(s is None or isinstance(s, dict) for s in state):
            merged = dict(state[0] or {})
            merged.update(state[1] or {})
            return merged
        return state if isinstance(state, dict) else {}

    def __repr__(self) -> str:
        return f"<stand-in for {self.qualified_name}>"


class _StandInMeta(type):
    """Stand-in classes can be instantiated inertly (``__new__``) but never called or modified."""

    def __call__(cls, *args, **kwargs):
        raise UnsafePickleError(f"refused: the file tries to call {cls.module}.{cls.name}")

    def __setattr__(cls, key, value):
        raise UnsafePickleError(f"refused: the file tries to modify {cls.module}.{cls.name}")


def make_stand_in(module: str, name: str) -> type:
    safe_name = re.sub(r"\W", "_", name)[:80] or "_"
    namespace = {"__slots__": (), "module": module, "name": name, "__module__": __name__}
    return _StandInMeta(safe_name, (StandIn,), namespace)


def _is_stand_in_class(obj) -> bool:
    return isinstance(obj, type) and issubclass(obj, StandIn)


def _refuse_call(what: str):
    raise UnsafePickleError(f"refused: the file tries to call {what}")


class _SafeCallable:
    """One of our own replacements for a name a weight file may call; it cannot be modified by BUILD."""

    __slots__ = ("qualname", "func")

    def __init__(self, qualname: str, func) -> None:
        object.__setattr__(self, "qualname", qualname)
        object.__setattr__(self, "func", func)

    def __call__(self, *args, **kwargs):
        return self.func(*args, **kwargs)

    def __setstate__(self, state) -> None:
        raise UnsafePickleError(f"refused: the file tries to modify {self.qualname}")

    def __setattr__(self, key, value) -> None:
        raise UnsafePickleError(f"refused: the file tries to modify {self.qualname}")

    def __repr__(self) -> str:
        return f"<safe {self.qualname}>"


class _NdarrayMarker(_SafeCallable):
    """Stands for ``numpy.ndarray``: only ``_reconstruct`` may use it; calling it could allocate any size."""

    def __call__(self, *args, **kwargs):
        _refuse_call("numpy.ndarray directly (it would allocate memory of any size)")


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
        raise UnsafePickleError(f"refused: numpy dtype {str(spec)[:40]!r}: only numeric arrays are allowed in a "
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


def _as_bytes(raw, what: str) -> bytes:
    if isinstance(raw, (bytes, bytearray)):
        return bytes(raw)
    if isinstance(raw, str):  # Python 2 pickles: str holds bytes (decoded as latin-1)
        return raw.encode("latin-1")
    if isinstance(raw, list):
        raise UnsafePickleError(f"refused: {what} holds Python objects, not numbers (an object array)")
    raise UnsafePickleError(f"refused: {what} has data of type {type(raw).__name__}, expected bytes")


def _check_shape(shape, what: str) -> tuple:
    if not isinstance(shape, (tuple, list)) or len(shape) > MAX_NDIM:
        raise UnsafePickleError(f"refused: {what} has an invalid shape")
    if not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 1 << 40 for d in shape):
        raise UnsafePickleError(f"refused: {what} has an invalid shape {tuple(shape)[:8]}")
    return tuple(shape)


def _build_array(raw, dtype: np.dtype, shape: tuple, fortran: bool, budget: Budget) -> np.ndarray:
    data = _as_bytes(raw, "a numpy array")
    expected = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if expected != len(data):
        raise UnsafePickleError(f"refused: a numpy array declares shape {shape} of {dtype} ({expected} bytes) "
                                f"but holds {len(data)} bytes")
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
            _refuse_call(f"numpy's array reconstructor with class {_describe(subtype)} (only numpy.ndarray "
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
            _refuse_call(f"_codecs.encode with encoding {str(encoding)[:20]!r}")
        return obj.encode(encoding)

    def sized(kind):
        def make(*args):
            if not args:
                return kind()
            if len(args) == 2 and isinstance(args[0], str) and args[1] in ("latin1", "latin-1", "utf-8"):
                return kind(args[0], args[1])
            if len(args) == 1 and isinstance(args[0], (bytes, bytearray, list, tuple)):
                return kind(args[0])
            _refuse_call(f"builtins.{kind.__name__} with arguments other than data (an int allocates memory)")
        return make

    def collection(kind):
        def make(*args):
            if not args:
                return kind()
            if len(args) == 1 and isinstance(args[0], (list, tuple, set, frozenset)):
                return kind(args[0])
            _refuse_call(f"builtins.{kind.__name__} with arguments other than a list")
        return make

    def make_complex(real=0.0, imag=0.0):
        if not all(isinstance(v, (int, float)) for v in (real, imag)):
            _refuse_call("builtins.complex with arguments other than numbers")
        return complex(real, imag)

    def reconstructor(cls, base, state=None):
        if not _is_stand_in_class(cls):
            _refuse_call(f"copyreg._reconstructor with class {_describe(cls)} (only unknown, inert classes "
                         "are rebuilt)")
        if base not in (object, dict, list):
            _refuse_call(f"copyreg._reconstructor with base {_describe(base)} (it would run that class's code)")
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

    names: dict[tuple[str, str], Any] = {("numpy", "ndarray"): _NDARRAY, ("numpy", "dtype"): _SafeCallable(
        "numpy.dtype", DtypeBuilder)}
    for core in ("numpy.core", "numpy._core"):
        names[(f"{core}.multiarray", "_reconstruct")] = _SafeCallable(f"{core}.multiarray._reconstruct", reconstruct)
        names[(f"{core}.multiarray", "scalar")] = _SafeCallable(f"{core}.multiarray.scalar", scalar)
        names[(f"{core}.numeric", "_frombuffer")] = _SafeCallable(f"{core}.numeric._frombuffer", frombuffer)
    names[("_codecs", "encode")] = _SafeCallable("_codecs.encode", encode)
    names[("collections", "OrderedDict")] = OrderedDict
    for builtins in ("builtins", "__builtin__"):
        names[(builtins, "object")] = object
        names[(builtins, "dict")] = dict
        names[(builtins, "list")] = list
        names[(builtins, "set")] = _SafeCallable("builtins.set", collection(set))
        names[(builtins, "frozenset")] = _SafeCallable("builtins.frozenset", collection(frozenset))
        names[(builtins, "bytearray")] = _SafeCallable("builtins.bytearray", sized(bytearray))
        names[(builtins, "bytes")] = _SafeCallable("builtins.bytes", sized(bytes))
        names[(builtins, "complex")] = _SafeCallable("builtins.complex", make_complex)
    for copyreg in ("copyreg", "copy_reg"):
        names[(copyreg, "_reconstructor")] = _SafeCallable("copyreg._reconstructor", reconstructor)
        names[(copyreg, "__newobj__")] = _SafeCallable("copyreg.__newobj__", newobj)
        names[(copyreg, "__newobj_ex__")] = _SafeCallable("copyreg.__newobj_ex__", newobj_ex)
    return names


def _new_instance(cls, args: tuple, via: str):
    if _is_stand_in_class(cls):
        return StandIn.__new__(cls, *args)
    if cls in (OrderedDict, dict, list, object):
        return cls.__new__(cls)
    _refuse_call(f"{via} with class {_describe(cls)}")


def _describe(obj) -> str:
    if _is_stand_in_class(obj):
        return f"{obj.module}.{obj.name}"
    if isinstance(obj, _SafeCallable):
        return obj.qualname
    if isinstance(obj, type):
        return f"{obj.__module__}.{obj.__qualname__}"
    return type(obj).__name__
