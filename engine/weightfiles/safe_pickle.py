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

Sizes are bounded too: the opcode stream is dry-run first
(:mod:`engine.weightfiles.pickle_scan`: nesting depth, container sizes, copies,
memo indices, dictionary keys, number of opcodes), arrays must hold exactly the
bytes their shape declares, the arrays built may not add up to more than the
file, and what is returned is plain data nested at most ``MAX_DEPTH`` deep.
"""
from __future__ import annotations

import _compat_pickle
import io
import os
import pickle
from collections import OrderedDict
from typing import Any

import numpy as np

from engine.errors import UnsafePickleError, WeightFileError
from engine.util import open_regular_file, printable, read_limited
from engine.weightfiles.pickle_names import ArrayBuilder, Budget, DtypeBuilder, StandIn, allowed_names, make_stand_in
from engine.weightfiles.pickle_objects import MAX_NAME_CHARS
from engine.weightfiles.pickle_scan import MAX_DEPTH, MAX_OBJECTS, prescan, short_error

MAX_FILE_BYTES = 1 << 30  # 1 GiB: far above any MNIST model, far below a memory bomb
MAX_STAND_IN_CLASSES = 1_000  # each unknown class costs ~1 KB for a few bytes of file; a network names a dozen
_ATOMS = (str, bytes, int, float, bool, complex, type(None), np.ndarray, np.generic)


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves only weight-file names; everything else becomes an inert, uncallable stand-in class."""

    def __init__(self, file, budget: int) -> None:
        super().__init__(file, encoding="latin1")
        self._names = allowed_names(Budget(budget))
        self._stand_ins: dict[tuple[str, str], type] = {}

    def find_class(self, module: str, name: str):
        if not isinstance(module, str) or not isinstance(name, str):
            raise WeightFileError("a class is named by something other than text")
        if len(module) > MAX_NAME_CHARS or len(name) > MAX_NAME_CHARS:
            raise UnsafePickleError(f"refused: a class name of {len(module) + len(name):,} characters "
                                    f"({printable(module, 60)}.{printable(name, 60)})")
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
            if len(self._stand_ins) >= MAX_STAND_IN_CLASSES:
                raise UnsafePickleError(f"refused: the file names more than {MAX_STAND_IN_CLASSES:,} different "
                                        "classes (a weight file names a few)")
            self._stand_ins[key] = make_stand_in(module, name)
        return self._stand_ins[key]

    def persistent_load(self, pid):
        raise UnsafePickleError("refused: the file refers to an external object by persistent id "
                                "(weight files are self-contained)")


# ----- after unpickling: real arrays, plain containers, a bounded depth
def _nested() -> UnsafePickleError:
    return UnsafePickleError(f"refused: data nested more than {MAX_DEPTH} levels deep (a pickle bomb)")


def finish(obj):
    """Swap builders for numpy objects and guarded containers for plain ones; bound depth and object count.

    Each object is visited once (memoised by identity, so shared objects stay shared and a
    billion-laughs file stays linear) and its height is remembered, so a chain of shared
    objects cannot add up to more than ``MAX_DEPTH`` levels either.
    """
    done: dict[int, tuple[Any, int]] = {}  # id -> (result, height)
    keep_alive = []  # ids are only unique while the objects live

    def visit(o, depth: int) -> tuple[Any, int]:
        if depth > MAX_DEPTH:
            raise _nested()
        if isinstance(o, _ATOMS):
            return o, 0
        key = id(o)
        if key in done:
            result, height = done[key]
            if depth + height > MAX_DEPTH:
                raise _nested()
            return result, height
        keep_alive.append(o)
        if len(keep_alive) > MAX_OBJECTS:
            raise UnsafePickleError(f"refused: more than {MAX_OBJECTS:,} objects (a weight file has a few hundred)")
        height = 0
        if isinstance(o, (ArrayBuilder, DtypeBuilder)):
            result = o.resolve()
        elif isinstance(o, dict):
            result = OrderedDict() if isinstance(o, OrderedDict) else {}
            done[key] = (result, 0)
            for k, v in o.items():
                if not isinstance(k, (str, bytes, int, float, tuple, type(None))):
                    raise WeightFileError("the file uses an array or an object as a dictionary key")
                result[k], h = visit(v, depth + 1)
                height = max(height, h + 1)
        elif isinstance(o, list):
            result = []
            done[key] = (result, 0)
            for v in o:
                item, h = visit(v, depth + 1)
                result.append(item)
                height = max(height, h + 1)
        elif isinstance(o, tuple):
            items = []
            for v in o:
                item, h = visit(v, depth + 1)
                items.append(item)
                height = max(height, h + 1)
            result = o if all(a is b for a, b in zip(items, o)) else tuple(items)
        elif isinstance(o, (set, frozenset)):  # elements are plain values (checked when the set was made)
            result, height = o, 1
        elif isinstance(o, StandIn):
            done[key] = (o, 0)
            for field in ("args", "state", "items", "listitems"):
                value, h = visit(getattr(o, field), depth + 1)
                setattr(o, field, value)
                height = max(height, h + 1)
            result = o
        else:  # bytearray, stand-in classes, our safe callables, object()
            result = o
        done[key] = (result, height)
        return result, height

    return visit(obj, 0)[0]


def read_weight_file(path: str | os.PathLike) -> bytes:
    """A weight file's bytes: a regular file (a FIFO or /dev/zero would never end) of at most MAX_FILE_BYTES."""
    try:
        with open_regular_file(path, WeightFileError) as f:
            size = os.fstat(f.fileno()).st_size
            if size > MAX_FILE_BYTES:
                raise WeightFileError(f"{path}: {size:,} bytes is larger than the {MAX_FILE_BYTES:,}-byte limit "
                                      "for a weight file")
            data = read_limited(f, MAX_FILE_BYTES)  # the file may have grown since fstat()
    except OSError as exc:
        raise WeightFileError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise WeightFileError(f"{path}: larger than the {MAX_FILE_BYTES:,}-byte limit for a weight file")
    return data


def _read_source(source) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        where = "<bytes>"
    elif isinstance(source, (str, os.PathLike)):
        where = os.fspath(source)
        data = read_weight_file(where)
    elif hasattr(source, "read"):
        where = str(getattr(source, "name", "<file>"))
        try:
            data = read_limited(source, MAX_FILE_BYTES)
        except TypeError:  # a text-mode file gives str, which cannot be joined as bytes
            raise WeightFileError(f"{where}: open the file in binary mode ('rb')") from None
    else:
        raise WeightFileError(f"safe_load needs a path, bytes or a binary file, not {type(source).__name__}")
    if len(data) > MAX_FILE_BYTES:
        raise WeightFileError(f"{where}: larger than the {MAX_FILE_BYTES:,}-byte limit for a weight file")
    return data, where


def guarded(where: str, run):
    """``run()`` (an unpickling) with every failure turned into one :class:`WeightFileError` line starting with ``where``."""
    try:
        return run()
    except UnsafePickleError as exc:
        raise UnsafePickleError(f"{where}: {exc}; nothing from the file was run") from None
    except WeightFileError as exc:
        raise WeightFileError(f"{where}: {exc}") from None
    except RecursionError:
        raise UnsafePickleError(f"{where}: refused: data nested too deeply (a pickle bomb)") from None
    except MemoryError:
        raise UnsafePickleError(f"{where}: refused: unpickling ran out of memory (a pickle bomb?)") from None
    except Exception as exc:  # the C unpickler raises many kinds for corrupt data; all mean "not readable"
        raise WeightFileError(f"{where}: not a readable pickle ({short_error(exc)})") from None


def loads(data: bytes, where: str = "<bytes>"):
    """Unpickle ``data`` safely; every failure is a :class:`WeightFileError` whose message starts with ``where``."""
    if not data:
        raise WeightFileError(f"{where}: the file is empty")

    def run():
        prescan(data)
        return finish(RestrictedUnpickler(io.BytesIO(data), budget=len(data)).load())

    return guarded(where, run)


def safe_load(source) -> Any:
    """Load a pickle from a path, bytes or a binary file without importing or calling anything it names.

    Returns plain data: dicts, lists, numpy arrays, and :class:`StandIn` objects
    for instances of classes we did not import.
    """
    data, where = _read_source(source)
    return loads(data, where)
