"""Hypothesis strategies for pickle opcode streams, written from a grammar of real opcodes.

Every expression pushes one object: atoms (ints, floats, strings, bytes, memo gets, lying length
fields), numpy arrays and dtypes spelled as numpy writes them (with plausible and implausible
shapes, dtypes and data), containers (MARK/TUPLE*/LIST/DICT/EMPTY_*/APPEND(S)/SETITEM(S)/ADDITEMS),
calls of allowed, forbidden and unknown names (GLOBAL/STACK_GLOBAL + REDUCE/NEWOBJ/NEWOBJ_EX/INST/
OBJ, BUILD), memo puts and gets, deep nesting and many references to one object. A program is
PROTO [FRAME] expression STOP, sometimes with junk after it.
"""
from __future__ import annotations

import functools
import pickle
import struct

import numpy as np
from hypothesis import strategies as st

ALLOWED_NAMES = [
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"), ("numpy", "ndarray"),
    ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"), ("numpy._core.numeric", "_frombuffer"),
    ("collections", "OrderedDict"), ("copyreg", "_reconstructor"), ("copy_reg", "_reconstructor"),
    ("copyreg", "__newobj__"), ("copyreg", "__newobj_ex__"), ("builtins", "set"), ("builtins", "frozenset"),
    ("builtins", "bytes"), ("builtins", "bytearray"), ("builtins", "complex"), ("builtins", "object"),
    ("builtins", "dict"), ("builtins", "list"), ("__builtin__", "set"), ("_codecs", "encode"),
]
FORBIDDEN_NAMES = [
    ("os", "system"), ("posix", "system"), ("builtins", "eval"), ("builtins", "exec"), ("builtins", "getattr"),
    ("builtins", "__import__"), ("builtins", "setattr"), ("builtins", "type"), ("subprocess", "Popen"),
    ("subprocess", "check_output"), ("numpy", "load"), ("numpy", "frombuffer"), ("pickle", "loads"), ("io", "open"),
    ("__builtin__", "eval"), ("commands", "getoutput"),
]
UNKNOWN_NAMES = [
    ("__main__", "TwoLayerNet"), ("__main__", "Relu"), ("__main__", "Sigmoid"), ("common.layers", "Affine"),
    ("two_layer_net", "TwoLayerNet"), ("simple_convnet", "SimpleConvNet"), ("x" * 300, "\x1b[2J\x1b[31mred"),
]
DTYPES = ["f4", "f8", "<f4", ">f8", "f2", "i8", "i2", "u1", "b1", "c16", "O", "V8", "U5", "S3", "M8[s]", "m8",
          "float32", "(2,)f4", "f4,f4", "<U0"]
SIZES = [0, 1, 2, 3, 5, 10, 784, -1, 1 << 31, 1 << 62]
BIG_MEMO = 7777  # a memo slot the grammar's shared-reference forms use (far from MEMOIZE's small ones)
MAX_INLINE = 1 << 20  # array data written out in full up to this size; larger shapes get a few bytes (a lie)


class Raw(bytes):
    """An already-encoded expression, embedded as is by ``emit``."""


def unicode(text: str, wide: bool = False) -> bytes:
    body = text.encode("utf-8", "surrogatepass")
    if wide:
        return pickle.BINUNICODE8 + struct.pack("<Q", len(body)) + body
    if len(body) < 256:
        return pickle.SHORT_BINUNICODE + bytes([len(body)]) + body
    return pickle.BINUNICODE + struct.pack("<I", len(body)) + body


def raw_bytes(data: bytes) -> bytes:
    if len(data) < 256:
        return pickle.SHORT_BINBYTES + bytes([len(data)]) + data
    return pickle.BINBYTES + struct.pack("<I", len(data)) + data


def integer(value: int) -> bytes:
    if 0 <= value < 256:
        return pickle.BININT1 + bytes([value])
    if -(1 << 31) <= value < (1 << 31):
        return pickle.BININT + struct.pack("<i", value)
    body = pickle.encode_long(value)
    if len(body) < 256:
        return pickle.LONG1 + bytes([len(body)]) + body
    return pickle.LONG4 + struct.pack("<i", len(body)) + body


def emit(value) -> bytes:
    """Opcodes that push ``value`` (None, bools, ints, floats, str, bytes, tuples, lists, dicts, Raw)."""
    if isinstance(value, Raw):
        return bytes(value)
    if value is None:
        return pickle.NONE
    if isinstance(value, bool):
        return pickle.NEWTRUE if value else pickle.NEWFALSE
    if isinstance(value, int):
        return integer(value)
    if isinstance(value, float):
        return pickle.BINFLOAT + struct.pack(">d", value)
    if isinstance(value, str):
        return unicode(value)
    if isinstance(value, bytes):
        return raw_bytes(value)
    if isinstance(value, tuple):
        body = b"".join(emit(v) for v in value)
        return {0: pickle.EMPTY_TUPLE, 1: body + pickle.TUPLE1, 2: body + pickle.TUPLE2,
                3: body + pickle.TUPLE3}.get(len(value), pickle.MARK + body + pickle.TUPLE)
    if isinstance(value, list):
        return pickle.EMPTY_LIST + pickle.MARK + b"".join(emit(v) for v in value) + pickle.APPENDS
    if isinstance(value, dict):
        return pickle.EMPTY_DICT + pickle.MARK + b"".join(emit(k) + emit(v) for k, v in value.items()) + pickle.SETITEMS
    raise TypeError(type(value))


def name(module: str, attr: str, stack: bool = False) -> Raw:
    if stack:
        return Raw(unicode(module) + unicode(attr) + pickle.STACK_GLOBAL)
    return Raw(pickle.GLOBAL + module.encode("utf-8", "surrogatepass") + b"\n" + attr.encode("utf-8", "surrogatepass")
               + b"\n")


def call(module: str, attr: str, *args) -> Raw:
    return Raw(name(module, attr) + emit(tuple(args)) + pickle.REDUCE)


def build(obj, state) -> Raw:
    return Raw(emit(obj) + emit(state) + pickle.BUILD)


def memo_put(index: int) -> bytes:
    return pickle.BINPUT + bytes([index]) if index < 256 else pickle.LONG_BINPUT + struct.pack("<I", index)


def memo_get(index: int) -> bytes:
    return pickle.BINGET + bytes([index]) if index < 256 else pickle.LONG_BINGET + struct.pack("<I", index)


# ----------------------------------------------------------------------------- numpy objects

def dtype_expr(spec: str, order: str = "<", state: tuple | None = None) -> Raw:
    return build(call("numpy", "dtype", spec, False, True), state or (3, order, None, None, None, -1, -1, 0))


def array_expr(shape: tuple, spec: str, data, fortran: bool = False, core: str = "numpy.core", order: str = "<",
               dstate: tuple | None = None) -> Raw:
    """An array as numpy's ``__reduce__`` writes it: ``_reconstruct(ndarray, (0,), b'b')`` then BUILD."""
    empty = call(f"{core}.multiarray", "_reconstruct", name("numpy", "ndarray"), (0,), b"b")
    return build(empty, (1, shape, dtype_expr(spec, order, dstate), fortran, data))


def _itemsize(spec: str) -> int:
    try:
        return max(1, np.dtype(spec).itemsize)
    except TypeError:
        return 1


@st.composite
def arrays(draw) -> Raw:
    spec = draw(st.sampled_from(DTYPES))
    shape = tuple(draw(st.lists(st.sampled_from(SIZES), max_size=4)))
    exact = int(np.prod([max(s, 0) for s in shape], dtype=object)) * _itemsize(spec)
    length = draw(st.sampled_from(["exact", "exact", "off-by-one", "short"]))
    size = {"exact": exact, "off-by-one": exact + 1, "short": exact // 2}[length]
    pattern = draw(st.binary(min_size=1, max_size=8))
    data = (pattern * (size // len(pattern) + 1))[:size] if size <= MAX_INLINE else b"\0" * 64  # huge: the shape lies
    form = draw(st.sampled_from(["reconstruct", "reconstruct", "frombuffer", "scalar", "list-data", "latin1"]))
    if form == "frombuffer":
        return call("numpy._core.numeric", "_frombuffer", data, dtype_expr(spec), shape, draw(st.sampled_from("CFK")))
    if form == "scalar":
        return call("numpy.core.multiarray", "scalar", dtype_expr(spec), data[: _itemsize(spec)])
    if form == "list-data":
        data = [None, 1, "x", data[:4]][: draw(st.integers(0, 4))]
    elif form == "latin1":
        data = call("_codecs", "encode", data.decode("latin1"), "latin1")
    odd_state = draw(st.sampled_from([None, None, None, (3, "|", None, ("a", "b"), {"a": (Raw(dtype_expr("f4")), 0)},
                                                         8, 1, 0), (3, "<", None, None, None, 1 << 40, -1, 63),
                                      (4, ">", (Raw(dtype_expr("f4")), (2,)), None, None, -1, -1, 0), (3,)]))
    return array_expr(shape, spec, data, draw(st.booleans()), draw(st.sampled_from(["numpy.core", "numpy._core"])),
                      draw(st.sampled_from("<>|=")), odd_state)


@st.composite
def weight_dicts(draw) -> Raw:
    """``{W1, b1, W2, b2}`` of an MLP whose shapes chain, with ordinary or special values."""
    hidden = draw(st.sampled_from([1, 3, 8]))
    spec = draw(st.sampled_from(["<f4", "<f8", ">f4"]))
    fill = draw(st.sampled_from([0.01, 0.0, float("nan"), float("inf"), 1e30]))
    shapes = {"W1": (784, hidden), "b1": (hidden,), "W2": (hidden, 10), "b2": (10,)}
    params = {k: array_expr(s, spec, np.full(s, fill, dtype=spec).tobytes()) for k, s in shapes.items()}
    return Raw(emit(params))


# ----------------------------------------------------------------------------- the grammar

def all_names():
    """(module, name) pairs: an allowed one, a forbidden one or an unknown class, each a third of the time."""
    return st.one_of(st.sampled_from(ALLOWED_NAMES), st.sampled_from(FORBIDDEN_NAMES), st.sampled_from(UNKNOWN_NAMES))


def texts(marker: str):
    payloads = [f"touch {marker}/os-system", f"open({marker!r} + '/eval', 'w').close()", "W1", "b1", "W2", "b2",
                "params", "layers", "W", "b", "values", "keys", "get", "__dict__", "__class__", "__setstate__",
                "latin1", "rot13", "zlib", "f4", "O", "<", ">", "\x1b]0;owned\x07\x1b[2J", "format", "digitlab-weights"]
    return st.one_of(st.sampled_from(payloads), st.text(max_size=12),
                     st.sampled_from([300, 70_000, 3_000_000]).map(lambda n: "A" * n))


def atoms(marker: str):
    lying = st.sampled_from([
        pickle.BINBYTES + struct.pack("<I", 0x7FFFFFFF) + b"abc", pickle.BINUNICODE8 + struct.pack("<Q", 1 << 40),
        pickle.BYTEARRAY8 + struct.pack("<Q", 1 << 33) + b"x", pickle.LONG4 + struct.pack("<i", 0x7FFFFFF0) + b"\1",
        pickle.BINSTRING + struct.pack("<i", -5) + b"abc", pickle.EXT1 + b"\x07", pickle.EXT4 + b"\xff\xff\xff\x7f",
        unicode("pid") + pickle.BINPERSID, pickle.PERSID + b"abc\n", pickle.NEXT_BUFFER, pickle.DUP, pickle.POP,
        pickle.MARK, pickle.STOP,
    ])
    return st.one_of(  # hypothesis's simplest draws take the first branch: make it a weight-like one
        weight_dicts().map(bytes), arrays().map(bytes),
        st.tuples(all_names(), st.booleans()).map(lambda t: bytes(name(*t[0], stack=t[1]))),
        st.tuples(st.sampled_from(FORBIDDEN_NAMES), texts(marker)).map(lambda t: bytes(call(*t[0], t[1]))),  # payloads
        texts(marker).map(unicode),
        st.integers(-(1 << 70), 1 << 70).map(integer),
        st.floats().map(lambda f: emit(float(f))),
        st.binary(max_size=40).map(raw_bytes),
        st.integers(0, 8).map(memo_get),
        st.sampled_from([pickle.EMPTY_DICT, pickle.EMPTY_LIST, pickle.EMPTY_TUPLE, pickle.EMPTY_SET, pickle.NONE,
                         pickle.NEWTRUE, pickle.NEWFALSE]),
        lying,
    )


def _nest(inner: bytes, kind: str, n: int) -> bytes:
    if kind == "tuple1":
        return inner + pickle.TUPLE1 * n
    if kind == "mark-tuple":
        return pickle.MARK * n + inner + pickle.TUPLE * n
    if kind == "list":
        return pickle.EMPTY_LIST * n + inner + pickle.APPEND * n
    if kind == "dict":
        return (pickle.EMPTY_DICT + unicode("k")) * n + inner + pickle.SETITEM * n
    return pickle.MARK * n + inner + pickle.FROZENSET * n


def _used_as(nested: bytes, how: str) -> bytes:
    if how == "dict-key":
        return pickle.EMPTY_DICT + nested + pickle.NONE + pickle.SETITEM
    if how == "set-item":
        return pickle.EMPTY_SET + pickle.MARK + nested + pickle.ADDITEMS
    return nested


def _shared_state(cls: tuple, count: int) -> bytes:
    """``count`` objects of an unknown class sharing one state dict that holds the list of them all."""
    state_slot, list_slot = BIG_MEMO, BIG_MEMO + 1
    one = bytes(name(*cls)) + pickle.EMPTY_TUPLE + pickle.NEWOBJ + memo_get(state_slot) + pickle.BUILD
    return (pickle.EMPTY_DICT + memo_put(state_slot) + pickle.POP + pickle.MARK + one * count + pickle.LIST
            + memo_put(list_slot) + memo_get(state_slot) + unicode("params") + memo_get(list_slot) + pickle.SETITEM
            + pickle.POP)


def _extend(children):
    names = all_names()
    kids = st.lists(children, max_size=4).map(list)
    depth = st.one_of(st.integers(0, 300), st.sampled_from([1000, 5000, 100_000, 250_000]))
    return st.one_of(
        kids.map(lambda xs: pickle.MARK + b"".join(xs) + pickle.TUPLE),
        st.tuples(children, children).map(lambda t: t[0] + t[1] + pickle.TUPLE2),
        kids.map(lambda xs: pickle.EMPTY_LIST + pickle.MARK + b"".join(xs) + pickle.APPENDS),
        kids.map(lambda xs: pickle.MARK + b"".join(xs) + pickle.LIST),
        st.tuples(children, children).map(lambda t: pickle.EMPTY_LIST + t[0] + pickle.APPEND + t[1]),
        kids.map(lambda xs: pickle.EMPTY_DICT + pickle.MARK + b"".join(xs) + pickle.SETITEMS),
        kids.map(lambda xs: pickle.MARK + b"".join(xs) + pickle.DICT),
        st.tuples(children, children).map(lambda t: pickle.EMPTY_DICT + t[0] + t[1] + pickle.SETITEM),
        kids.map(lambda xs: pickle.EMPTY_SET + pickle.MARK + b"".join(xs) + pickle.ADDITEMS),
        kids.map(lambda xs: pickle.MARK + b"".join(xs) + pickle.FROZENSET),
        st.tuples(names, st.booleans(), children).map(lambda t: bytes(name(*t[0], stack=t[1])) + t[2] + pickle.REDUCE),
        st.tuples(names, kids).map(lambda t: bytes(name(*t[0])) + pickle.MARK + b"".join(t[1]) + pickle.TUPLE
                                   + pickle.REDUCE),
        st.tuples(names, children).map(lambda t: bytes(name(*t[0])) + t[1] + pickle.NEWOBJ),
        st.tuples(names, children, children).map(lambda t: bytes(name(*t[0])) + t[1] + t[2] + pickle.NEWOBJ_EX),
        st.tuples(names, kids).map(lambda t: pickle.MARK + b"".join(t[1]) + pickle.INST + t[0][0].encode() + b"\n"
                                   + t[0][1].encode() + b"\n"),
        st.tuples(names, kids).map(lambda t: pickle.MARK + bytes(name(*t[0])) + b"".join(t[1]) + pickle.OBJ),
        st.tuples(children, children).map(lambda t: t[0] + t[1] + pickle.BUILD),
        st.tuples(names, children).map(lambda t: bytes(name(*t[0])) + pickle.EMPTY_TUPLE + pickle.NEWOBJ + t[1]
                                       + pickle.BUILD),
        children.map(lambda x: x + pickle.MEMOIZE),
        st.tuples(children, st.integers(0, 300)).map(lambda t: t[0] + memo_put(t[1])),
        st.tuples(children, st.sampled_from(["tuple1", "mark-tuple", "list", "dict", "frozenset"]), depth,
                  st.sampled_from(["dict-key", "set-item", "plain"])).map(lambda t: _used_as(_nest(t[0], t[1], t[2]),
                                                                                              t[3])),
        st.tuples(children, st.integers(0, 100_000)).map(lambda t: t[0] + memo_put(BIG_MEMO) + pickle.MARK
                                                         + memo_get(BIG_MEMO) * t[1] + pickle.LIST),
        st.tuples(st.sampled_from(UNKNOWN_NAMES[:3]), st.integers(1, 20_000)).map(lambda t: _shared_state(*t)),
        st.tuples(children, st.sampled_from([{"values": 1}, {"keys": 2, "get": 3}, {"__class__": 0}])).map(
            lambda t: bytes(call("collections", "OrderedDict")) + emit(t[1]) + pickle.BUILD),
    )


@functools.lru_cache(maxsize=None)
def expressions(marker: str):
    """One pushed object (built once per marker folder: hypothesis validates a new strategy at every draw)."""
    return st.recursive(atoms(marker), _extend, max_leaves=12)


@functools.lru_cache(maxsize=None)
def bodies(marker: str):
    """What a weight pickle holds at the top: any expression, a dict of W1… keys, or an object with a state."""
    expr = expressions(marker)
    keyed = st.lists(st.tuples(st.sampled_from(["W1", "b1", "W2", "b2", "params"]), expr), min_size=1, max_size=4)
    return st.one_of(
        keyed.map(lambda kv: pickle.EMPTY_DICT + pickle.MARK + b"".join(unicode(k) + v for k, v in kv)
                  + pickle.SETITEMS),
        st.tuples(st.sampled_from(UNKNOWN_NAMES[:2] + [("collections", "OrderedDict")]), keyed).map(
            lambda t: bytes(name(*t[0])) + pickle.EMPTY_TUPLE + pickle.NEWOBJ + pickle.EMPTY_DICT + pickle.MARK
            + b"".join(unicode(k) + v for k, v in t[1]) + pickle.SETITEMS + pickle.BUILD),
        expr,
    )


@st.composite
def pickle_streams(draw, marker: str) -> bytes:
    """A whole pickle: PROTO [FRAME] body STOP [junk]."""
    protocol = draw(st.integers(0, 5))
    body = draw(bodies(marker))
    head = pickle.PROTO + bytes([protocol]) if protocol >= 2 else b""
    if protocol >= 4 and draw(st.booleans()):
        length = draw(st.sampled_from([len(body) + 1, len(body), 0, 1 << 62]))
        head += pickle.FRAME + struct.pack("<Q", length)
    tail = draw(st.sampled_from([pickle.STOP, pickle.STOP, pickle.STOP, b"", pickle.STOP + b"junk", pickle.MARK]))
    return head + body + tail
