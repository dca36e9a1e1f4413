"""Small writers of Michael Nielsen's file formats, byte for byte as Python 2.7 and numpy 1.x wrote them.

* :func:`network_pickle` — a pickled ``network.Network`` (or ``__main__.Network``) as ``cPickle.dump(net,
  f, protocol)`` writes it for protocol 0 or 2: Python 2 ``str`` (attribute names, array bytes, dtype
  codes) as STRING/BINSTRING opcodes, numpy arrays as ``numpy.core.multiarray._reconstruct`` + BUILD.
* :func:`dataset_pickle` — the (decompressed) ``mnist.pkl.gz`` layout, cPickle protocol 2.
* :func:`network2_json` — what ``network2.Network.save`` writes (``json.dump`` of sizes, weights, biases, cost).

The pickles are made by Python's own (pure-Python) pickler taught Python 2's ``str``; the class
``network.Network`` is registered in ``sys.modules`` (or ``__main__``) only while pickling and
removed again, and numpy's reconstructor is named as numpy 1.x names it, ``numpy.core.multiarray``
(written directly: ``save.rename_globals`` reads opcodes with pickletools, which cannot read a protocol-0
STRING holding non-ASCII bytes, i.e. any array's data).
"""
from __future__ import annotations

import contextlib
import copyreg
import io
import json
import pickle
import struct
import sys

import numpy as np

_MISSING = object()


class Py2Str(bytes):
    """A Python 2 ``str``: pickled as STRING (protocol 0) or (SHORT_)BINSTRING; Python 3 loads it (latin-1) as str."""


def _py2_repr(data: bytes) -> bytes:
    """Python 2's ``repr(str)``, which protocol 0 writes after STRING."""
    quote = b'"' if b"'" in data and b'"' not in data else b"'"
    out = bytearray(quote)
    for c in data:
        ch = bytes([c])
        if ch in (quote, b"\\"):
            out += b"\\" + ch
        elif ch in (b"\t", b"\n", b"\r"):
            out += {b"\t": b"\\t", b"\n": b"\\n", b"\r": b"\\r"}[ch]
        elif c < 0x20 or c >= 0x7F:
            out += b"\\x%02x" % c
        else:
            out += ch
    return bytes(out + quote)


class GlobalRef:
    """A class the pickle names but that need not exist here (network2's ``CrossEntropyCost``): GLOBAL module name."""

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name


class NetworkObject:
    """Base of the ``Network`` classes made per pickle: the pickled ``__dict__`` is ``py2_state`` (Python 2 keys)."""

    def __init__(self, state: dict) -> None:
        self.py2_state = state


class _Py2Pickler(pickle._Pickler):
    """Python's pure-Python pickler writing Python 2 ``str`` and numpy 1.x arrays as cPickle did."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2str(self, obj: Py2Str) -> None:
        if self.proto == 0:
            self.write(pickle.STRING + _py2_repr(obj) + b"\n")
        elif len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + bytes(obj))
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + bytes(obj))
        self.memoize(obj)

    dispatch[Py2Str] = save_py2str

    def save_global_ref(self, obj: GlobalRef) -> None:
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode("ascii"))
        self.memoize(obj)

    dispatch[GlobalRef] = save_global_ref

    def save_global(self, obj, name=None) -> None:
        if obj is np._core.multiarray._reconstruct:  # numpy 1.x's name (numpy 2 says numpy._core)
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
            self.memoize(obj)
        else:
            super().save_global(obj, name)

    def reducer_override(self, obj):
        if isinstance(obj, np.ndarray):  # numpy 1.x's ndarray.__reduce__ under Python 2: the data is a str
            state = (1, tuple(int(d) for d in obj.shape), obj.dtype, False, Py2Str(np.ascontiguousarray(obj).tobytes()))
            return np._core.multiarray._reconstruct, (np.ndarray, (0,), Py2Str(b"b")), state
        if isinstance(obj, np.dtype):  # dtype.__reduce__: ('f8', False, True) and (3, '<', None, …)
            code = obj.str.encode("ascii")
            return np.dtype, (Py2Str(code[1:]), False, True), (3, Py2Str(code[:1]), None, None, None, -1, -1, 0)
        if isinstance(obj, NetworkObject):  # a new-style class instance, as copy_reg reduces it
            if self.proto >= 2:
                return copyreg.__newobj__, (type(obj),), obj.py2_state
            return copyreg._reconstructor, (type(obj), object, None), obj.py2_state
        return NotImplemented


def _dumps(obj, protocol: int) -> bytes:
    out = io.BytesIO()
    _Py2Pickler(out, protocol=protocol).dump(obj)
    return out.getvalue()


@contextlib.contextmanager
def importable(module: str, cls: type):
    """Make ``module.Network`` findable by the pickler, then restore ``sys.modules`` exactly as it was."""
    if module == "__main__":
        main = sys.modules["__main__"]
        saved = main.__dict__.get("Network", _MISSING)
        main.Network = cls
        try:
            yield
        finally:
            if saved is _MISSING:
                del main.Network
            else:
                main.Network = saved
        return
    saved = sys.modules.get(module, _MISSING)
    fake = type(sys)(module)
    fake.Network = cls
    sys.modules[module] = fake
    try:
        yield
    finally:
        if saved is _MISSING:
            del sys.modules[module]
        else:
            sys.modules[module] = saved


def py2_state(sizes, weights, biases, extra: dict | None = None) -> dict:
    """``Network.__dict__`` as Python 2 holds it: str keys; network.py sets num_layers, sizes, biases, weights."""
    state = {Py2Str(b"num_layers"): len(sizes), Py2Str(b"sizes"): list(sizes), Py2Str(b"biases"): list(biases),
             Py2Str(b"weights"): list(weights)}
    for key, value in (extra or {}).items():
        state[Py2Str(key.encode())] = value
    return state


def network_pickle(state: dict, protocol: int = 2, module: str = "network") -> bytes:
    """``cPickle.dumps(net, protocol)`` of a ``<module>.Network`` whose ``__dict__`` is ``state``."""
    cls = type("Network", (NetworkObject,), {"__module__": module, "__qualname__": "Network"})
    obj = cls(state)
    with importable(module, cls):
        return _dumps(obj, protocol)


def nielsen_network(sizes, seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Weights and biases as ``network.Network(sizes)`` makes them: Gaussian, (out, in) and (out, 1), float64."""
    rng = np.random.default_rng(seed)
    biases = [rng.standard_normal((y, 1)) for y in sizes[1:]]
    weights = [rng.standard_normal((y, x)) for x, y in zip(sizes[:-1], sizes[1:])]
    return weights, biases


def dataset_pickle(parts, protocol: int = 2) -> bytes:
    """The decompressed ``mnist.pkl.gz``: ``cPickle.dump((training, validation, test), f, protocol)``."""
    return _dumps(tuple(tuple(p) if isinstance(p, list) else p for p in parts), protocol)


def network2_json(sizes, weights, biases, cost: str = "CrossEntropyCost", order=("sizes", "weights", "biases",
                                                                                  "cost")) -> bytes:
    """``network2.Network.save``: json.dump of a dict (Python 2 orders its keys by hash: any order may come)."""
    data = {"sizes": list(sizes), "weights": [w.tolist() for w in weights], "biases": [b.tolist() for b in biases],
            "cost": cost}
    return json.dumps({k: data[k] for k in order}).encode("ascii")


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def feedforward(weights, biases, a: np.ndarray) -> np.ndarray:
    """Nielsen's ``Network.feedforward`` for one column vector ``a`` of shape (784, 1)."""
    for b, w in zip(biases, weights):
        a = sigmoid(np.dot(w, a) + b)
    return a
