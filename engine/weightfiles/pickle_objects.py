"""The objects a weight pickle may build: inert stand-ins for unknown classes and guarded builtin containers.

* :class:`StandIn` subclasses (one per unknown class the file names) record module, name, constructor
  arguments and state; they are never imported and refuse to be called or modified.
* :class:`SafeCallable` wraps our own replacements for the few functions a weight file may call.
* ``PickledDict``/``PickledList``/``PickledOrderedDict`` are what ``builtins.dict``/``list`` and
  ``collections.OrderedDict`` resolve to while unpickling: their constructors accept only data (no
  ``list(huge bytes)``), their keys must be plain values, and BUILD (which would write attributes such
  as ``values`` or ``get`` into an OrderedDict's ``__dict__``) is refused. ``safe_pickle`` turns them
  back into plain ``dict``/``list``/``OrderedDict`` before anything is returned.
"""
from __future__ import annotations

import re
from collections import ChainMap, OrderedDict
from collections.abc import Mapping

from engine.errors import UnsafePickleError, WeightFileError
from engine.util import printable
from engine.weightfiles.pickle_scan import MAX_OBJECTS, MAX_SAME_HASH, MAX_TUPLE_KEYS

MAX_NAME_CHARS = 1_000  # module or class names longer than this are crafted (real ones are < 100 characters)


def refuse_call(what: str):
    raise UnsafePickleError(f"refused: the file tries to call {printable(what)}")


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
    def attributes(self) -> Mapping:
        """The object's ``__dict__`` as pickled (a ``(dict, slots)`` state is merged), else {}; never a copy.

        Many objects may share one state dict: a view costs nothing per object, a merged copy would.
        """
        state = self.state
        if isinstance(state, tuple) and len(state) == 2 and all(s is None or isinstance(s, dict) for s in state):
            attrs, slots = state
            if not slots:
                return attrs or {}
            return ChainMap(slots, attrs) if attrs else slots
        return state if isinstance(state, dict) else {}

    def __repr__(self) -> str:
        return f"<stand-in for {printable(self.qualified_name)}>"


class _StandInMeta(type):
    """Stand-in classes can be instantiated inertly (``__new__``) but never called or modified."""

    def __call__(cls, *args, **kwargs):
        refuse_call(f"{cls.module}.{cls.name}")

    def __setattr__(cls, key, value):
        raise UnsafePickleError(f"refused: the file tries to modify {printable(f'{cls.module}.{cls.name}')}")


def make_stand_in(module: str, name: str) -> type:
    safe_name = re.sub(r"\W", "_", name)[:80] or "_"
    namespace = {"__slots__": (), "module": module, "name": name, "__module__": __name__}
    return _StandInMeta(safe_name, (StandIn,), namespace)


def is_stand_in_class(obj) -> bool:
    return isinstance(obj, type) and issubclass(obj, StandIn)


class SafeCallable:
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


# ----- keys of dicts and elements of sets: plain values that cannot flood a hash table
_PLAIN = (str, bytes, int, float, bool, type(None))


def check_keys(keys, what: str) -> None:
    """Every key a string, bytes, number, None or a tuple of those; few numbers or tuples sharing a hash value."""
    same: dict[int, set] = {}
    tuples = 0
    for key in keys:
        if type(key) is tuple:
            tuples += 1
            pending = list(key)
            while pending:  # nesting is bounded by the prescan; walk it without recursion anyway
                item = pending.pop()
                if type(item) is tuple:
                    pending.extend(item)
                elif type(item) not in _PLAIN:
                    raise UnsafePickleError(f"refused: {what} with a key that is not a string, number or tuple of them")
        elif type(key) not in _PLAIN:
            raise UnsafePickleError(f"refused: {what} with a key that is not a string, number or tuple of them")
        elif type(key) in (int, float):
            bucket = same.setdefault(hash(key), set())
            bucket.add(key)
            if len(bucket) > MAX_SAME_HASH:
                raise UnsafePickleError(f"refused: {what} with many different numbers of one hash value as keys "
                                        "(a hash-flooding attack)")
    if tuples > MAX_TUPLE_KEYS:
        raise UnsafePickleError(f"refused: {what} with more than {MAX_TUPLE_KEYS:,} tuple keys")


def _pairs(arg, what: str):
    """What ``dict(arg)`` may be given while unpickling: a dict, or a list/tuple of (key, value) pairs."""
    if isinstance(arg, dict):
        return arg
    if not isinstance(arg, (list, tuple)) or not all(isinstance(p, (list, tuple)) and len(p) == 2 for p in arg):
        refuse_call(f"{what} with arguments other than (key, value) pairs")
    check_keys((p[0] for p in arg), what)
    return arg


def _refuse_build(what: str):
    raise UnsafePickleError(f"refused: the file sets attributes on a {what} (BUILD state on a builtin container)")


class PickledDict(dict):
    """``builtins.dict`` while unpickling: made from data only, no attributes; becomes a plain dict."""

    __slots__ = ()
    pickled_name = "builtins.dict"

    def __init__(self, *args, **kwargs) -> None:
        if kwargs or len(args) > 1:
            refuse_call("builtins.dict with keyword or several arguments")
        super().__init__(_pairs(args[0], "builtins.dict") if args else ())

    def __setstate__(self, state) -> None:
        _refuse_build("dict")


class PickledOrderedDict(OrderedDict):
    """``collections.OrderedDict`` while unpickling: its ``__dict__`` cannot be written; becomes an OrderedDict."""

    __slots__ = ()
    pickled_name = "collections.OrderedDict"

    def __init__(self, *args, **kwargs) -> None:
        if kwargs or len(args) > 1:
            refuse_call("collections.OrderedDict with keyword or several arguments")
        super().__init__(_pairs(args[0], "collections.OrderedDict") if args else ())

    def __setstate__(self, state) -> None:
        _refuse_build("collections.OrderedDict")


class PickledList(list):
    """``builtins.list`` while unpickling: only from a list or tuple (``list(bytes)`` would multiply memory by 8)."""

    __slots__ = ()
    pickled_name = "builtins.list"

    def __init__(self, *args, **kwargs) -> None:
        if kwargs or len(args) > 1 or (args and not isinstance(args[0], (list, tuple))):
            refuse_call("builtins.list with arguments other than a list")
        super().__init__(args[0] if args else ())

    def __setstate__(self, state) -> None:
        _refuse_build("list")


PICKLED_CONTAINERS = (PickledDict, PickledOrderedDict, PickledList)


# ----- after loading: what a file's objects are
def reachable(obj) -> list:
    """Every container and stand-in reachable from ``obj``, breadth first, each once: linear in the file.

    Stand-ins contribute their state as pickled (never a merged copy: many objects may share one
    state dict), and an object is queued only the first time it is seen.
    """
    seen, queue, i = {id(obj)}, [obj], 0
    while i < len(queue):
        o = queue[i]
        i += 1
        if isinstance(o, dict):
            children = o.values()
        elif isinstance(o, (list, tuple)):
            children = o
        elif isinstance(o, StandIn):
            children = (o.state, o.items, o.listitems)
        else:
            continue
        for child in children:
            if isinstance(child, (dict, list, tuple, StandIn)) and id(child) not in seen:
                seen.add(id(child))
                queue.append(child)
                if len(queue) > MAX_OBJECTS:
                    raise WeightFileError(f"more than {MAX_OBJECTS:,} objects in the file")
    return queue


def class_names(found: list, limit: int) -> list[str]:
    """The classes of the stand-ins among ``found`` (never imported), sorted, at most ``limit`` of them named."""
    names = sorted({printable(o.qualified_name) for o in found if isinstance(o, StandIn)})
    if len(names) > limit:
        names = names[:limit] + [f"… {len(names) - limit:,} more classes"]
    return names
