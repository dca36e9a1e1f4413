"""Load pickled weight files without ever running code from them.

A pickle is a small program: it names functions and classes and calls them.
``pickle.load`` on a downloaded file therefore runs whatever the file asks for.
Here the unpickler resolves only the handful of names a weight file needs
(numpy arrays, dtypes and scalars, builtin containers, ``collections.OrderedDict``)
to inert stand-ins we wrote ourselves; every other name becomes a
:class:`StandIn` class that records module and name, is never imported, and
refuses to be called. An object such as the book's pickled ``TwoLayerNet``
therefore loads as data (its ``params`` can be read) while a file that tries
to call ``os.system`` is refused with :class:`UnsafePickleError`.

Sizes are bounded too: the opcode stream is scanned first (declared lengths,
memo indices, number of opcodes), arrays must hold exactly the bytes their
shape declares, and the arrays built may not add up to more than the file.
"""
from __future__ import annotations

import _compat_pickle
import io
import os
import pickle
import pickletools
import re
from collections import OrderedDict
from typing import Any

import numpy as np

MAX_FILE_BYTES = 1 << 30  # 1 GiB: far above any MNIST model, far below a memory bomb
MAX_OPCODES = 2_000_000  # a weight pickle has a few hundred; millions mean a crafted file
MAX_MEMO_INDEX = 1_000_000  # memo slots are allocated up to the index: a huge index is a memory bomb
MAX_DEPTH = 200  # nesting deeper than this is a crafted file (weights are a few levels deep)
MAX_NDIM = 32


class WeightFileError(ValueError):
    """A weight file that cannot be read or understood; the message says what and where."""


class UnsafePickleError(WeightFileError):
    """A pickle that tries to run code or to build something a weight file never holds."""


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


def _make_stand_in(module: str, name: str) -> type:
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
    elif isinstance(spec, _DtypeBuilder):
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


class _DtypeBuilder:
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


class _Budget:
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


def _build_array(raw, dtype: np.dtype, shape: tuple, fortran: bool, budget: _Budget) -> np.ndarray:
    data = _as_bytes(raw, "a numpy array")
    expected = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if expected != len(data):
        raise UnsafePickleError(f"refused: a numpy array declares shape {shape} of {dtype} ({expected} bytes) "
                                f"but holds {len(data)} bytes")
    budget.take(len(data))
    arr = np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")
    return arr.astype(dtype.newbyteorder("="), order="C")  # a writable native-order copy


class _ArrayBuilder:
    """What ``numpy.core.multiarray._reconstruct`` returns: BUILD fills it with a checked array."""

    __slots__ = ("array", "budget")

    def __init__(self, budget: _Budget) -> None:
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
def _allowed_names(budget: _Budget) -> dict[tuple[str, str], Any]:
    def reconstruct(subtype, shape=None, dtype_code=None):
        if subtype is not _NDARRAY:
            _refuse_call(f"numpy's array reconstructor with class {_describe(subtype)} (only numpy.ndarray "
                         "is allowed)")
        return _ArrayBuilder(budget)

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
        "numpy.dtype", _DtypeBuilder)}
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


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves only weight-file names; everything else becomes an inert, uncallable stand-in class."""

    def __init__(self, file, budget: int) -> None:
        super().__init__(file, encoding="latin1")
        self._names = _allowed_names(_Budget(budget))
        self._stand_ins: dict[tuple[str, str], type] = {}

    def find_class(self, module: str, name: str):
        # protocols 0-2 write Python 2 names (__builtin__, copy_reg, commands.Popen…): map them as pickle does
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        known = self._names.get((module, name))
        if known is not None:
            return known
        key = (module, name)
        if key not in self._stand_ins:
            self._stand_ins[key] = _make_stand_in(module, name)
        return self._stand_ins[key]

    def persistent_load(self, pid):
        raise UnsafePickleError("refused: the file refers to an external object by persistent id "
                                "(weight files are self-contained)")


# ----- before and after unpickling -----
_MEMO_PUTS = {"PUT", "BINPUT", "LONG_BINPUT"}


def prescan(data: bytes) -> None:
    """Walk the opcodes without building anything: bound declared lengths, memo indices and opcode count."""
    count = 0
    try:
        for op, arg, _pos in pickletools.genops(io.BytesIO(data)):
            count += 1
            if count > MAX_OPCODES:
                raise UnsafePickleError(f"refused: more than {MAX_OPCODES:,} pickle opcodes (a weight file has "
                                        "a few hundred)")
            if op.name in _MEMO_PUTS and isinstance(arg, int) and not 0 <= arg <= MAX_MEMO_INDEX:
                raise UnsafePickleError(f"refused: memo index {arg:,} (a memory bomb: slots up to it would be "
                                        "allocated)")
    except WeightFileError:
        raise
    except Exception as exc:  # pickletools reports truncation and bad opcodes as ValueError and friends
        raise WeightFileError(f"not a valid pickle: truncated or corrupt ({_short(exc)})") from None


def _short(exc: BaseException, limit: int = 200) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _finish(obj):
    """Swap array/dtype builders for real numpy objects, in place where containers allow; bound the depth."""
    done: dict[int, Any] = {}
    keep_alive = []  # ids are only unique while the objects live

    def visit(o, depth: int):
        if depth > MAX_DEPTH:
            raise UnsafePickleError(f"refused: data nested more than {MAX_DEPTH} levels deep (a pickle bomb)")
        if isinstance(o, (str, bytes, int, float, bool, complex, type(None), np.ndarray, np.generic)):
            return o
        key = id(o)
        if key in done:
            return done[key]
        keep_alive.append(o)
        if isinstance(o, (_ArrayBuilder, _DtypeBuilder)):
            result = o.resolve()
        elif isinstance(o, dict):
            done[key] = o
            for k, v in list(o.items()):
                if isinstance(k, (_ArrayBuilder, _DtypeBuilder, StandIn)):
                    raise WeightFileError("the file uses an array or an object as a dictionary key")
                nv = visit(v, depth + 1)
                if nv is not v:
                    o[k] = nv
            result = o
        elif isinstance(o, list):
            done[key] = o
            for i, v in enumerate(o):
                nv = visit(v, depth + 1)
                if nv is not v:
                    o[i] = nv
            result = o
        elif isinstance(o, tuple):
            items = [visit(v, depth + 1) for v in o]
            result = o if all(a is b for a, b in zip(items, o)) else tuple(items)
        elif isinstance(o, (set, frozenset)):
            if any(isinstance(v, (_ArrayBuilder, _DtypeBuilder)) for v in o):
                raise WeightFileError("the file puts an array inside a set")
            result = o
        elif isinstance(o, StandIn):
            done[key] = o
            o.args = visit(o.args, depth + 1)
            o.state = visit(o.state, depth + 1)
            visit(o.items, depth + 1)
            visit(o.listitems, depth + 1)
            result = o
        else:  # bytearray, stand-in classes, OrderedDict handled as dict, our safe callables
            result = o
        done[key] = result
        return result

    return visit(obj, 0)


def _read_source(source) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        where = "<bytes>"
    elif isinstance(source, (str, os.PathLike)):
        where = os.fspath(source)
        try:
            size = os.path.getsize(where)
            if size > MAX_FILE_BYTES:
                raise WeightFileError(f"{where}: {size:,} bytes is larger than the {MAX_FILE_BYTES:,}-byte limit "
                                      "for a weight file")
            with open(where, "rb") as f:
                data = f.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise WeightFileError(f"cannot read {where}: {exc.strerror or exc}") from exc
    elif hasattr(source, "read"):
        where = str(getattr(source, "name", "<file>"))
        data = source.read(MAX_FILE_BYTES + 1)
        if not isinstance(data, (bytes, bytearray)):
            raise WeightFileError(f"{where}: open the file in binary mode ('rb')")
        data = bytes(data)
    else:
        raise WeightFileError(f"safe_load needs a path, bytes or a binary file, not {type(source).__name__}")
    if len(data) > MAX_FILE_BYTES:
        raise WeightFileError(f"{where}: larger than the {MAX_FILE_BYTES:,}-byte limit for a weight file")
    return data, where


def loads(data: bytes, where: str = "<bytes>"):
    """Unpickle ``data`` safely; every failure is a :class:`WeightFileError` whose message starts with ``where``."""
    if not data:
        raise WeightFileError(f"{where}: the file is empty")
    try:
        prescan(data)
        obj = RestrictedUnpickler(io.BytesIO(data), budget=len(data)).load()
        return _finish(obj)
    except UnsafePickleError as exc:
        raise UnsafePickleError(f"{where}: {exc}; nothing from the file was run") from None
    except WeightFileError as exc:
        raise WeightFileError(f"{where}: {exc}") from None
    except RecursionError:
        raise UnsafePickleError(f"{where}: refused: data nested too deeply (a pickle bomb)") from None
    except MemoryError:
        raise UnsafePickleError(f"{where}: refused: unpickling ran out of memory (a pickle bomb?)") from None
    except Exception as exc:  # the C unpickler raises many kinds for corrupt data; all mean "not readable"
        raise WeightFileError(f"{where}: not a readable pickle ({_short(exc)})") from None


def safe_load(source) -> Any:
    """Load a pickle from a path, bytes or a binary file without importing or calling anything it names.

    Returns plain data: dicts, lists, numpy arrays, and :class:`StandIn` objects
    for instances of classes we did not import.
    """
    data, where = _read_source(source)
    return loads(data, where)


# ----- writing pickles numpy 1.x can read -----
_NUMPY1_MODULES = {"numpy._core": "numpy.core"}
_STRING_OPS = {"SHORT_BINUNICODE": b"\x8c", "BINUNICODE": b"X", "UNICODE": b"V"}


def _rename_module(module: str, mapping: dict[str, str]) -> str:
    for old, new in mapping.items():
        if module == old or module.startswith(old + "."):
            return new + module[len(old):]
    return module


def rename_globals(data: bytes, mapping: dict[str, str] | None = None) -> bytes:
    """Rewrite the module names a pickle refers to, e.g. ``numpy._core`` -> ``numpy.core`` (the default).

    numpy 2 writes ``numpy._core.multiarray._reconstruct``; numpy 1.x only knows
    ``numpy.core.multiarray`` and numpy 2 still loads that name, so a renamed
    pickle loads in both. FRAME opcodes are dropped (their lengths would be
    wrong after renaming; frames are optional).
    """
    mapping = dict(mapping or _NUMPY1_MODULES)
    ops = list(pickletools.genops(data))
    out = bytearray()
    for i, (op, arg, pos) in enumerate(ops):
        end = ops[i + 1][2] if i + 1 < len(ops) else len(data)
        raw = data[pos:end]
        if op.name == "FRAME":
            continue
        if op.name in ("GLOBAL", "INST"):
            module, name = arg.split(" ", 1)
            renamed = _rename_module(module, mapping)
            if renamed != module:
                raw = raw[:1] + f"{renamed}\n{name}\n".encode() + (raw[raw.index(b"\n", raw.index(b"\n") + 1) + 1:])
        elif op.name in ("SHORT_BINUNICODE", "BINUNICODE") and isinstance(arg, str):
            renamed = _rename_module(arg, mapping)
            if renamed != arg:
                body = renamed.encode("utf-8")
                if op.name == "SHORT_BINUNICODE" and len(body) < 256:
                    raw = b"\x8c" + bytes([len(body)]) + body
                else:
                    raw = b"X" + len(body).to_bytes(4, "little") + body
        out += raw
    return bytes(out)
