"""Networks from Michael Nielsen's "Neural Networks and Deep Learning": network.py objects and network2.py JSON.

Both keep the same arrays: ``weights``, a list of ``(out, in)`` matrices, and ``biases``, a list of
``(out, 1)`` column vectors; every layer (the output too) is a sigmoid of ``w @ a + b`` and pixels are
in [0, 1]. DigitLab's affine layers hold ``W`` as ``(in, out)`` and ``b`` as ``(out,)``, so
``W = weights[i].T`` and ``b = biases[i].ravel()``; the last sigmoid is left out, which keeps the
argmax (sigmoid is increasing).

* :func:`nielsen_params` reads an object unpickled by :mod:`engine.weightfiles.safe_pickle` (a
  :class:`StandIn` for ``network.Network``, whose class is never imported, or a plain dict).
* :func:`read_network2_json` reads what ``network2.Network.save`` writes: JSON ``{"sizes", "weights",
  "biases", "cost"}``. The text is bounded (size, nesting, count of numbers) before it is parsed.
"""
from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np

from engine.errors import WeightFileError
from engine.util import printable
from engine.weightfiles.pickle_objects import StandIn
from engine.weightfiles.metadata import json_depth
from engine.weightfiles.pickle_scan import short_error

MAX_JSON_BYTES = 256 << 20  # a 784-30-10 network2 file is ~0.5 MB; 256 MB holds ~12 million weights
MAX_JSON_DEPTH = 8  # network2 writes 4 levels (object > weights > layer > row); json.loads recurses
MAX_JSON_NUMBERS = 20_000_000  # each parsed number is a ~32-byte Python float: bounds memory at ~640 MB
MAX_JSON_QUOTES = 10_000  # network2 writes 5 strings (4 keys and the cost's name): 10 quotes
MAX_LAYERS = 1_000  # Nielsen's networks have 2-4 layers
NETWORK2_COSTS = ("CrossEntropyCost", "QuadraticCost")
NETWORK2_KEYS = (b'"sizes"', b'"weights"', b'"biases"', b'"cost"')  # Python 2's json.dump may write any first
_UTF8_BOM = b"\xef\xbb\xbf"
_NOTE = ("weights (out, in) transposed to DigitLab's (in, out), biases (out, 1) flattened; sigmoid units on "
         "every layer; the outputs are sigmoids, DigitLab reads the values before the last sigmoid as scores "
         "(the same argmax)")


def _shape(a: np.ndarray) -> str:
    return "(" + ", ".join(str(d) for d in a.shape) + ("," if a.ndim == 1 else "") + ")"


def _describe(value) -> str:
    if isinstance(value, StandIn):
        return f"a {printable(value.qualified_name, 80)} object"
    kind = type(value).__name__
    return f"{'an' if kind[:1] in 'aeiou' else 'a'} {kind}"


# ----------------------------------------------------------------------------- the arrays, from either format
def _layers_to_params(weights: list, biases: list) -> tuple[dict[str, np.ndarray], list[int]]:
    """W1..Wn, b1..bn and the layer sizes from Nielsen's lists, or WeightFileError naming the first inconsistency."""
    if len(weights) != len(biases):
        raise WeightFileError(f"{len(weights)} weight matrices but {len(biases)} bias vectors (one of each per "
                              "layer)")
    if len(weights) > MAX_LAYERS:
        raise WeightFileError(f"{len(weights):,} layers (more than {MAX_LAYERS:,}; Nielsen's networks have a few)")
    params: dict[str, np.ndarray] = {}
    sizes: list[int] = []
    for i, (w, b) in enumerate(zip(weights, biases)):
        for what, a in ((f"weights[{i}]", w), (f"biases[{i}]", b)):
            if not isinstance(a, np.ndarray):
                raise WeightFileError(f"{what} is {_describe(a)}, not an array")
            if a.dtype.kind not in "fiu":  # complex or bool weights are not a network's
                raise WeightFileError(f"{what} holds {a.dtype} values, not real numbers")
        if w.ndim != 2 or 0 in w.shape:
            raise WeightFileError(f"weights[{i}] has shape {_shape(w)}, not (out, in) with both at least 1")
        out, inputs = w.shape
        if i and inputs != sizes[-1]:
            raise WeightFileError(f"weights[{i}] has shape {_shape(w)}: it takes {inputs} inputs but layer {i} "
                                  f"(weights[{i - 1}]) has {sizes[-1]} outputs")
        if b.shape != (out, 1):  # Nielsen keeps column vectors; anything else is a different program's file
            raise WeightFileError(f"biases[{i}] has shape {_shape(b)}, not ({out}, 1) to match weights[{i}] "
                                  f"of shape {_shape(w)}")
        for what, a in ((f"weights[{i}]", w), (f"biases[{i}]", b)):
            bad = int(a.size - np.count_nonzero(np.isfinite(a)))
            if bad:  # a diverged network: its predictions would be meaningless
                raise WeightFileError(f"{what} holds {bad:,} NaN or infinite values (the network diverged)")
        if not i:
            sizes.append(inputs)
        sizes.append(out)
        dtype = w.dtype if w.dtype.kind == "f" else np.float64
        params[f"W{i + 1}"] = np.ascontiguousarray(w.T, dtype=dtype)  # Nielsen: (out, in); DigitLab: (in, out)
        params[f"b{i + 1}"] = np.ascontiguousarray(b.ravel(), dtype=b.dtype if b.dtype.kind == "f" else np.float64)
    return params, sizes


def _is_count(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_size_list(value) -> bool:
    return isinstance(value, (list, tuple)) and all(_is_count(s) for s in value)


def _check_sizes(stored, num_layers, sizes: list[int]) -> None:
    if stored is not None:
        if not _is_size_list(stored):
            raise WeightFileError(f"sizes is {_describe(stored)}, not a list of layer sizes")
        if [int(s) for s in stored] != sizes:
            raise WeightFileError(f"sizes says {printable([int(s) for s in stored], 80)} but the weights are "
                                  f"{' -> '.join(map(str, sizes))}")
    if num_layers is not None and (not _is_count(num_layers) or num_layers != len(sizes)):
        raise WeightFileError(f"num_layers is {printable(repr(num_layers), 40)} but the weights make "
                              f"{len(sizes)} layers ({' -> '.join(map(str, sizes))})")


def _prefixed(where: str | None, exc: WeightFileError) -> WeightFileError:
    return WeightFileError(f"{where}: {exc}" if where else str(exc))


def nielsen_params(obj, where: str | None = None) -> tuple[dict[str, np.ndarray], list[str]] | None:
    """DigitLab params (W1..Wn, b1..bn) and notes from an unpickled Nielsen ``Network``, or None if ``obj`` is not one.

    ``obj`` is what :func:`engine.weightfiles.safe_pickle.loads` returned: a :class:`StandIn` (its
    ``attributes``) or a dict. It looks like Nielsen's when it holds non-empty lists ``weights`` and
    ``biases`` with arrays in them; then every inconsistency (shapes, lengths, ``sizes``, ``num_layers``)
    is a :class:`WeightFileError` (prefixed with ``where`` if given).
    """
    if isinstance(obj, StandIn):
        attrs = obj.attributes
    elif isinstance(obj, Mapping):
        attrs = obj
    else:
        return None
    weights, biases = attrs.get("weights"), attrs.get("biases")
    if not all(isinstance(v, (list, tuple)) and v and any(isinstance(a, np.ndarray) for a in v)
               for v in (weights, biases)):
        return None
    try:
        params, sizes = _layers_to_params(list(weights), list(biases))
        _check_sizes(attrs.get("sizes"), attrs.get("num_layers"), sizes)
    except WeightFileError as exc:
        raise _prefixed(where, exc) from None
    name = f"a pickled {printable(obj.qualified_name, 80)}" if isinstance(obj, StandIn) else "a pickled dict"
    notes = [f"Nielsen's network.py Network ({name}, {' -> '.join(map(str, sizes))}): {_NOTE}"]
    cost = attrs.get("cost")
    if isinstance(cost, type) and issubclass(cost, StandIn):  # network2's Network keeps its cost class
        notes.append(f"cost {printable(cost.name, 60)} (training only; it does not change predictions)")
    return params, notes


# ----------------------------------------------------------------------------- network2.py JSON
def is_network2_json(data: bytes) -> bool:
    """Cheap: a JSON object whose first key is one network2.py writes ("sizes", "weights", "biases" or "cost")."""
    head = bytes(data[:4096])
    head = head[len(_UTF8_BOM):] if head.startswith(_UTF8_BOM) else head
    head = head.lstrip()
    return head.startswith(b"{") and head[1:].lstrip().startswith(NETWORK2_KEYS)


def _parse_json(data: bytes, where: str):
    bad = f"{where}: not a readable network2.py JSON file"
    if len(data) > MAX_JSON_BYTES:
        raise WeightFileError(f"{bad} ({len(data):,} bytes; at most {MAX_JSON_BYTES:,})")
    quotes = data.count(b'"')
    if quotes > MAX_JSON_QUOTES:
        raise WeightFileError(f"{bad} ({quotes:,} quote characters; network2.py writes 10)")
    depth = json_depth(data)
    if depth > MAX_JSON_DEPTH:
        raise WeightFileError(f"{bad} (nested {depth:,} levels deep; network2.py writes 4)")
    values = data.count(b",") + data.count(b"[")  # >= the number of list items (each list: commas + 1)
    if values > MAX_JSON_NUMBERS:
        raise WeightFileError(f"{bad} (about {values:,} numbers; at most {MAX_JSON_NUMBERS:,})")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise WeightFileError(f"{bad} (not UTF-8 text: byte {exc.start:,} is 0x{data[exc.start]:02x})") from None
    try:  # NaN, Infinity and 1e400 parse to floats and are refused below, naming the layer
        return json.loads(text)
    except (ValueError, RecursionError, MemoryError) as exc:  # ints of > 4300 digits are a ValueError too
        raise WeightFileError(f"{bad} ({short_error(exc)})") from None


def _json_matrix(value, what: str) -> np.ndarray:
    """A rectangular list of lists of numbers as a float64 array, or WeightFileError naming the row."""
    if not isinstance(value, list) or not value:
        raise WeightFileError(f"{what} is {'an empty list' if value == [] else _describe(value)}, not a list of rows")
    width = None
    for r, row in enumerate(value):
        if not isinstance(row, list):
            raise WeightFileError(f"{what}, row {r} is {_describe(row)}, not a list of numbers")
        if width is None:
            width = len(row)
        elif len(row) != width:
            raise WeightFileError(f"{what} is not rectangular: row 0 has {width:,} numbers, row {r} has {len(row):,}")
        if not set(map(type, row)) <= {float, int}:  # bool, str and None would convert silently in np.array
            odd = next(v for v in row if type(v) not in (float, int))
            raise WeightFileError(f"{what}, row {r} holds {printable(repr(odd), 40)}, not a number")
    try:
        return np.array(value, dtype=np.float64)
    except (OverflowError, ValueError) as exc:  # an integer beyond float64's range
        raise WeightFileError(f"{what} holds a number float64 cannot hold ({short_error(exc, 80)})") from None


def read_network2_json(data: bytes, where: str) -> tuple[dict[str, np.ndarray], list[str], dict]:
    """Params (W1..Wn, b1..bn), notes and info ``{"cost", "sizes", "activation"}`` from a network2.py JSON save."""
    value = _parse_json(data, where)
    if not isinstance(value, dict):
        raise WeightFileError(f"{where}: a JSON {type(value).__name__}, not network2.py's object of sizes, "
                              "weights, biases and cost")
    missing = [k for k in ("weights", "biases") if k not in value]
    if missing:
        raise WeightFileError(f"{where}: the JSON object has no {' or '.join(missing)} (keys: "
                              f"{printable(', '.join(map(str, list(value)[:10])), 120)}); network2.py writes sizes, "
                              "weights, biases and cost")
    try:
        layers = {}
        for key in ("weights", "biases"):
            if not isinstance(value[key], list) or not value[key]:
                raise WeightFileError(f"{key} is {_describe(value[key])}, not a non-empty list of layers")
            if len(value[key]) > MAX_LAYERS:
                raise WeightFileError(f"{key} has {len(value[key]):,} layers (more than {MAX_LAYERS:,})")
            layers[key] = [_json_matrix(m, f"{key}[{i}]") for i, m in enumerate(value[key])]
        params, sizes = _layers_to_params(layers["weights"], layers["biases"])
        _check_sizes(value.get("sizes"), None, sizes)
    except WeightFileError as exc:
        raise _prefixed(where, exc) from None
    cost = value.get("cost")
    notes = [f"Nielsen's network2.py JSON ({' -> '.join(map(str, sizes))}): {_NOTE}"]
    if cost is None:
        notes.append("no cost is named (network2.py writes CrossEntropyCost or QuadraticCost); it does not change "
                     "predictions")
    elif not isinstance(cost, str):
        raise WeightFileError(f"{where}: cost is {_describe(cost)}, not the name of a cost class")
    elif cost not in NETWORK2_COSTS:
        notes.append(f"cost {printable(cost, 60)!r} is not one network2.py defines (training only; it does not "
                     "change predictions)")
    else:
        notes.append(f"cost {cost} (training only; it does not change predictions)")
    info = {"cost": printable(cost, 60) if isinstance(cost, str) else None, "sizes": sizes, "activation": "sigmoid"}
    return params, notes, info
