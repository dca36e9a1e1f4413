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
from typing import Any

import numpy as np

from engine.errors import UnsafePickleError, WeightFileError
from engine.weightfiles.pickle_names import ArrayBuilder, Budget, DtypeBuilder, StandIn, allowed_names, make_stand_in

MAX_FILE_BYTES = 1 << 30  # 1 GiB: far above any MNIST model, far below a memory bomb
MAX_OPCODES = 2_000_000  # a weight pickle has a few hundred; millions mean a crafted file
MAX_MEMO_INDEX = 1_000_000  # memo slots are allocated up to the index: a huge index is a memory bomb
MAX_DEPTH = 200  # nesting deeper than this is a crafted file (weights are a few levels deep)


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves only weight-file names; everything else becomes an inert, uncallable stand-in class."""

    def __init__(self, file, budget: int) -> None:
        super().__init__(file, encoding="latin1")
        self._names = allowed_names(Budget(budget))
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
            self._stand_ins[key] = make_stand_in(module, name)
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
        if isinstance(o, (ArrayBuilder, DtypeBuilder)):
            result = o.resolve()
        elif isinstance(o, dict):
            done[key] = o
            for k, v in list(o.items()):
                if isinstance(k, (ArrayBuilder, DtypeBuilder, StandIn)):
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
            if any(isinstance(v, (ArrayBuilder, DtypeBuilder)) for v in o):
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
