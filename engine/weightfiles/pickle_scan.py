"""Check a pickle's opcode stream before anything is built: a dry run of the pickle machine on shapes only.

``pickle.load`` is a small stack machine. Before the real (restricted) unpickler runs, :func:`prescan`
replays the opcodes on stand-ins that record only what can hurt: how deeply containers nest (a tuple
nested 200,000 deep used as a dictionary key makes CPython's hashing recurse in C until the process
dies), how many items one container gets, how many objects are made, how much the allowed constructors
would copy (a memoised list handed to ``set()`` a million times), what is used as a dictionary key
(numbers with one hash value make a dictionary quadratic), and BUILD on plain containers (it would
write attributes into them). Immutable values (tuples, frozensets, constants) get their exact depth,
which is what hashing needs; mutable ones are bounded again after loading by ``safe_pickle.finish``.
"""
from __future__ import annotations

import io
import pickletools

from engine.errors import UnsafePickleError, WeightFileError
from engine.util import printable

MAX_OPCODES = 1_000_000  # a weight pickle has a few hundred; a pickled network with its history a few thousand
MAX_MEMO_INDEX = 1_000_000  # memo slots are allocated up to the index: a huge index is a memory bomb
MAX_DEPTH = 100  # nesting deeper than this is a crafted file (weights are a few levels deep); C hashing recurses
MAX_CONTAINER_ITEMS = 100_000  # items in one list/dict/set/tuple: a weight file's containers hold a few dozen
MAX_OBJECTS = 100_000  # containers and objects made by one pickle (each costs ~100 bytes for one opcode byte)
COPY_SLACK = 1 << 20  # constructors (set(list), bytes(list), …) may copy as many items as the file holds, plus this
MAX_SAME_HASH = 32  # distinct numeric keys sharing one hash value: more is a hash-flooding (quadratic) attack
MAX_TUPLE_KEYS = 1_000  # tuple keys can be crafted to collide too; weight files key by strings


class _Value:
    """What the dry run knows about one stack entry: nesting depth, item count, what made it."""

    __slots__ = ("depth", "size", "kind", "num", "plain", "inner", "name")

    def __init__(self, kind: str, depth: int = 0, size: int = 0, num=None, plain: bool = False, inner: int = 0,
                 name: str | None = None):
        self.kind, self.depth, self.size, self.num, self.plain, self.inner = kind, depth, size, num, plain, inner
        self.name = name  # a short string constant, or the module.name of a global


# pickletools reads protocol 0's STRING (a Python 2 str) as ASCII, so a Python 2 protocol-0 pickle of any numpy
# array (its bytes written as \xNN escapes, as in Nielsen's files) would fail there; here its argument stays bytes
_STRINGNL_BYTES = pickletools.ArgumentDescriptor(
    name="stringnl_bytes", n=pickletools.UP_TO_NEWLINE, reader=lambda f: pickletools.read_stringnl(f, decode=False),
    doc="a quoted, escaped Python 2 str, left as bytes")
_CODE2OP = {op.code: op for op in pickletools.opcodes}
_CODE2OP["S"] = pickletools.OpcodeInfo(
    name="STRING", code="S", arg=_STRINGNL_BYTES, stack_before=_CODE2OP["S"].stack_before,
    stack_after=_CODE2OP["S"].stack_after, proto=_CODE2OP["S"].proto, doc=_CODE2OP["S"].doc)


def genops(data: bytes):
    """pickletools.genops, except that STRING's argument (protocol 0's Python 2 str) may hold any escaped byte."""
    f = io.BytesIO(data)
    while True:
        pos = f.tell()
        code = f.read(1)
        op = _CODE2OP.get(code.decode("latin-1"))
        if op is None:
            if not code:
                raise ValueError("pickle exhausted before seeing STOP")
            raise ValueError(f"at position {pos}, opcode {code!r} unknown")
        yield op, (None if op.arg is None else op.arg.reader(f)), pos
        if code == b".":
            return


_MAX_NAME = 200  # string constants kept for naming what STACK_GLOBAL refers to
_SCALAR = _Value("const", plain=True)  # None, booleans, small ints: shared, never mutated
_PUSH_CONST = {"NONE", "NEWTRUE", "NEWFALSE", "BININT1", "BININT2"}
_PUSH_TEXT = {"STRING", "BINSTRING", "SHORT_BINSTRING", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "UNICODE",
              "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8"}
_PUSH_NUMBER = {"INT", "BININT", "LONG", "LONG1", "LONG4", "FLOAT", "BINFLOAT"}
_MEMO_PUT = {"PUT", "BINPUT", "LONG_BINPUT"}
_MEMO_GET = {"GET", "BINGET", "LONG_BINGET"}
_CALLS = {"REDUCE", "NEWOBJ", "NEWOBJ_EX", "INST", "OBJ"}
_BYTES_MAKERS = {"_codecs.encode", "builtins.bytes", "__builtin__.bytes"}  # return flat bytes, hashed randomly
_NO_BUILD = {"const", "tuple", "list", "dict", "set", "frozenset"}  # plain values: BUILD would set attributes on them


class _Corrupt(Exception):
    """The opcode stream is not a valid pickle (the real unpickler would fail too)."""


class _Machine:
    def __init__(self, data_len: int, persistent_ids: bool = False) -> None:
        self.persistent_ids = persistent_ids  # PyTorch files name their storages by persistent id
        self.stack: list[_Value] = []
        self.marks: list[int] = []
        self.memo: dict[int, _Value] = {}
        self.objects = 0
        self.copy_budget = data_len + COPY_SLACK
        self.hashes: dict[int, set] = {}
        self.tuple_keys = 0

    # ----- the stack, with the C unpickler's rule that a MARK fences off what lies below it
    def fence(self) -> int:
        return self.marks[-1] if self.marks else 0

    def pop(self) -> _Value:
        if len(self.stack) <= self.fence():
            raise _Corrupt("stack underflow")
        return self.stack.pop()

    def pop_mark(self) -> list[_Value]:
        if not self.marks:
            raise _Corrupt("no MARK before an opcode that needs one")
        start = self.marks.pop()
        items = self.stack[start:]
        del self.stack[start:]
        return items

    def top(self) -> _Value:
        if len(self.stack) <= self.fence():
            raise _Corrupt("stack underflow")
        return self.stack[-1]

    # ----- bounds
    def made(self, value: _Value) -> _Value:
        self.objects += 1
        if self.objects > MAX_OBJECTS:
            raise UnsafePickleError(f"refused: more than {MAX_OBJECTS:,} objects (a weight file has a few hundred)")
        return self.checked(value)

    @staticmethod
    def checked(value: _Value) -> _Value:
        if value.depth > MAX_DEPTH:
            raise UnsafePickleError(f"refused: data nested more than {MAX_DEPTH} levels deep (a pickle bomb)")
        if value.size > MAX_CONTAINER_ITEMS:
            raise UnsafePickleError(f"refused: a container of more than {MAX_CONTAINER_ITEMS:,} items (a weight file's "
                                    "hold a few dozen)")
        return value

    def key(self, value: _Value) -> None:
        """A dictionary key or set element: a plain value (string, number, tuple of them) that cannot flood a hash."""
        if not value.plain:
            raise UnsafePickleError("refused: a dictionary key or set element that is not a string, number or tuple "
                                    "of them")
        if value.kind == "tuple":
            self.tuple_keys += 1
            if self.tuple_keys > MAX_TUPLE_KEYS:
                raise UnsafePickleError(f"refused: more than {MAX_TUPLE_KEYS:,} tuples used as dictionary keys")
        elif value.num is not None:
            same = self.hashes.setdefault(hash(value.num), set())
            same.add(value.num)
            if len(same) > MAX_SAME_HASH:
                raise UnsafePickleError("refused: many different numbers with one hash value as dictionary keys "
                                        "(a hash-flooding attack that makes loading take hours)")

    def add_items(self, target: _Value, items: list[_Value], kinds: tuple[str, ...], what: str) -> None:
        if target.kind not in kinds:
            raise _Corrupt(f"{what} on a {target.kind} value")
        target.size += len(items)
        target.depth = max(target.depth, 1 + max((v.depth for v in items), default=0))
        target.inner += sum(v.size for v in items)
        self.checked(target)

    def container(self, kind: str, items: list[_Value], plain: bool = False) -> _Value:
        depth = 1 + max((v.depth for v in items), default=0)
        inner = sum(v.size for v in items)
        return self.made(_Value(kind, depth, len(items), plain=plain and all(v.plain for v in items), inner=inner))

    def call(self, parts: list[_Value], func: _Value | None = None) -> _Value:
        """REDUCE, NEWOBJ…: an allowed constructor may copy its arguments and their items; charge that."""
        cost = sum(p.size + p.inner for p in parts)
        self.copy_budget -= cost
        if self.copy_budget < 0:
            raise UnsafePickleError("refused: the file makes its constructors copy more data than the file holds "
                                    "(the same data reused many times: a memory bomb)")
        if func is not None and func.kind == "global" and func.name in _BYTES_MAKERS:
            return _Value("const", size=cost, plain=True)  # bytes (protocols 0-2 write them so): a plain key
        return self.made(_Value("made", 1 + max((p.depth for p in parts), default=0), min(cost, MAX_CONTAINER_ITEMS)))

    # ----- one opcode
    def step(self, name: str, arg) -> None:
        st = self.stack
        if name in _PUSH_CONST:
            st.append(_SCALAR)
        elif name in _PUSH_TEXT:
            text = arg if isinstance(arg, str) and len(arg) <= _MAX_NAME else None
            st.append(_Value("const", size=len(arg), plain=True, name=text))
        elif name in _PUSH_NUMBER:
            small = isinstance(arg, int) and -(1 << 31) <= arg < 1 << 31
            st.append(_SCALAR if small else _Value("const", num=arg, plain=True))
        elif name == "BYTEARRAY8":
            st.append(_Value("made", size=len(arg)))
        elif name == "NEXT_BUFFER":
            raise UnsafePickleError("refused: the file refers to out-of-band buffers (weight files are self-contained)")
        elif name == "READONLY_BUFFER":
            self.top()
        elif name in ("EMPTY_LIST", "EMPTY_DICT", "EMPTY_SET"):
            st.append(self.made(_Value(name[6:].lower(), 1)))
        elif name == "EMPTY_TUPLE":
            st.append(self.container("tuple", [], plain=True))
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            items = [self.pop() for _ in range(int(name[-1]))][::-1]
            st.append(self.container("tuple", items, plain=True))
        elif name == "TUPLE":
            st.append(self.container("tuple", self.pop_mark(), plain=True))
        elif name == "LIST":
            st.append(self.container("list", self.pop_mark()))
        elif name == "DICT":
            items = self.pop_mark()
            if len(items) % 2:
                raise _Corrupt("odd number of items for DICT")
            for k in items[::2]:
                self.key(k)
            st.append(self.container("dict", items))
        elif name == "FROZENSET":
            items = self.pop_mark()
            for k in items:
                self.key(k)
            st.append(self.container("frozenset", items, plain=False))
        elif name == "APPEND":
            item = self.pop()
            self.add_items(self.top(), [item], ("list", "made"), name)
        elif name in ("APPENDS", "SETITEMS", "ADDITEMS"):
            items = self.pop_mark()
            if name == "SETITEMS":
                if len(items) % 2:
                    raise _Corrupt("odd number of items for SETITEMS")
                for k in items[::2]:
                    self.key(k)
            elif name == "ADDITEMS":
                for k in items:
                    self.key(k)
            kinds = {"APPENDS": ("list", "made"), "SETITEMS": ("dict", "made"), "ADDITEMS": ("set", "made")}[name]
            self.add_items(self.top(), items, kinds, name)
        elif name == "SETITEM":
            value, key = self.pop(), self.pop()
            self.key(key)
            self.add_items(self.top(), [key, value], ("dict", "made"), name)
        elif name == "POP":
            if self.marks and self.marks[-1] == len(st):
                self.marks.pop()
            else:
                self.pop()
        elif name == "POP_MARK":
            self.pop_mark()
        elif name == "DUP":
            st.append(self.top())
        elif name == "MARK":
            self.marks.append(len(st))
            if len(self.marks) > MAX_DEPTH:
                raise UnsafePickleError(f"refused: data nested more than {MAX_DEPTH} levels deep (a pickle bomb)")
        elif name in _MEMO_GET:
            if arg not in self.memo:
                raise _Corrupt(f"memo slot {arg} read before it was written")
            st.append(self.memo[arg])
        elif name in _MEMO_PUT or name == "MEMOIZE":
            index = len(self.memo) if name == "MEMOIZE" else arg
            if not isinstance(index, int) or not 0 <= index <= MAX_MEMO_INDEX:
                raise UnsafePickleError(f"refused: memo index {index:,} (a memory bomb: slots up to it would be "
                                        "allocated)")
            self.memo[index] = self.top()
        elif name in ("GLOBAL", "EXT1", "EXT2", "EXT4"):
            st.append(_Value("global", name=arg.replace(" ", ".", 1) if isinstance(arg, str) else None))
        elif name == "STACK_GLOBAL":
            attr, module = self.pop(), self.pop()
            known = module.name is not None and attr.name is not None
            st.append(_Value("global", name=f"{module.name}.{attr.name}" if known else None))
        elif name == "BINPERSID" and self.persistent_ids:  # pops the id, pushes what it names (a storage)
            pid = self.pop()
            st.append(self.made(_Value("made", pid.depth + 1)))
        elif name in ("PERSID", "BINPERSID"):
            raise UnsafePickleError("refused: the file refers to an external object by persistent id (weight files "
                                    "are self-contained)")
        elif name in _CALLS:
            if name in ("INST", "OBJ"):
                parts = self.pop_mark()
            else:
                parts = [self.pop() for _ in range({"REDUCE": 2, "NEWOBJ": 2, "NEWOBJ_EX": 3}[name])]
            st.append(self.call(parts, parts[-1] if name == "REDUCE" else None))
        elif name == "BUILD":
            state = self.pop()
            target = self.top()
            if target.kind in _NO_BUILD:
                raise UnsafePickleError(f"refused: the file sets attributes on a plain {target.kind} (BUILD state on a "
                                        "builtin value)")
            if target.kind == "global":  # BUILD on a class or function itself, never on an instance
                raise UnsafePickleError(f"refused: the file tries to modify {printable(target.name or 'a class')}")
            self.add_items(target, [state], (target.kind,), name)
        elif name == "STOP":
            self.pop()
        elif name not in ("PROTO", "FRAME"):
            raise _Corrupt(f"unknown opcode {name}")


def prescan(data: bytes, start: int = 0, persistent_ids: bool = False) -> int:
    """Dry-run the opcodes on shapes: refuse bombs (depth, sizes, copies, memo, hash floods) before building anything.

    The pickle starts at ``data[start:]``; returns the offset just after its STOP (a legacy PyTorch file is several
    pickles in a row). ``persistent_ids`` allows BINPERSID, which PyTorch files use to name their storages.
    """
    machine = _Machine(len(data), persistent_ids)
    end = start
    try:
        for count, (op, arg, pos) in enumerate(genops(data[start:] if start else data), start=1):
            if count > MAX_OPCODES:
                raise UnsafePickleError(f"refused: more than {MAX_OPCODES:,} pickle opcodes (a weight file has "
                                        "a few thousand)")
            machine.step(op.name, arg)
            if len(machine.stack) > MAX_CONTAINER_ITEMS:  # items waiting for one container: refuse before it is made
                machine.checked(_Value("list", size=len(machine.stack)))
            end = start + pos + 1
    except WeightFileError:
        raise
    except _Corrupt as exc:
        raise WeightFileError(f"not a valid pickle: {exc}") from None
    except Exception as exc:  # pickletools reports truncation and bad opcodes as ValueError and friends
        raise WeightFileError(f"not a valid pickle: truncated or corrupt ({short_error(exc)})") from None
    return end


def short_error(exc: BaseException, limit: int = 200) -> str:
    """``Type: message`` cut to ``limit`` characters (messages of corrupt files may quote the file)."""
    try:
        text = " ".join(f"{type(exc).__name__}: {exc}".split())  # one line, even if numpy's message has several
    except Exception:  # str() of an exception about a huge int can itself fail
        text = type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
