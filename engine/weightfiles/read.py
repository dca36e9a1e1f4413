"""Read a weight file's named arrays, whatever the format, without running anything from it.

One reader per format, chosen by the file's first bytes (never its name):

* ``.npz`` (a zip of ``.npy`` arrays) — DigitLab's own, with a JSON entry (``__digitlab__``) holding
  ``network.spec()``; read by :mod:`engine.weightfiles.npz` (never pickles, every size checked first)
  and :mod:`engine.weightfiles.metadata` (bounded JSON).
* a pickle — the book's ``params`` dict (``sample_weight.pkl``) or a whole pickled network object,
  read with :mod:`engine.weightfiles.safe_pickle`, which never imports or calls what the file names.

The result is a :class:`WeightContents`: a flat dict of names to arrays plus what the file said
about them; :mod:`engine.weightfiles.recognise` turns it into a network.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.errors import WeightFileError
from engine.util import printable
from engine.weightfiles.metadata import MAX_SHOWN_ITEMS, parse_metadata
from engine.weightfiles.npz import read_npz_arrays
from engine.weightfiles.pickle_objects import StandIn
from engine.weightfiles.pickle_scan import MAX_OBJECTS
from engine.weightfiles.safe_pickle import loads, read_weight_file

METADATA_KEY = "__digitlab__"
FORMAT_NAME = "digitlab-weights"
_LAYER_ACTIVATIONS = {"relu": "relu", "sigmoid": "sigmoid", "tanh": "tanh"}  # book class names, lower-cased


@dataclass
class WeightContents:
    """What a file holds before any network is built: named arrays plus what the file said about them."""

    path: str
    kind: str
    params: dict[str, np.ndarray]
    metadata: dict = field(default_factory=dict)
    activation: str | None = None  # from the class names of a pickled network's layers
    classes: list[str] = field(default_factory=list)  # classes of pickled objects (never imported), shortened
    notes: list[str] = field(default_factory=list)


def _read_bytes(path: Path) -> bytes:
    data = read_weight_file(path)
    if not data:
        raise WeightFileError(f"{path}: the file is empty")
    return data


def read_weight_arrays(path: str | os.PathLike) -> WeightContents:
    """The named arrays in a weight file (.npz or pickle, told apart by content), validated but not yet recognised."""
    path = Path(path)
    data = _read_bytes(path)
    if data[:4] == b"PK\x03\x04" or data[:4] == b"PK\x05\x06":
        return _read_npz(data, str(path))
    if data[:6] == b"\x93NUMPY":
        raise WeightFileError(f"{path}: a single .npy array, not a set of named weights (save them with "
                              "np.savez(path, W1=..., b1=...) or from DigitLab)")
    return _read_pickle(data, str(path))


def _read_npz(data: bytes, where: str) -> WeightContents:
    arrays = read_npz_arrays(data, where, METADATA_KEY)
    metadata = {}
    if METADATA_KEY in arrays:
        raw = arrays.pop(METADATA_KEY)
        if raw.dtype.kind != "U" or raw.shape != ():
            raise WeightFileError(f"{where}: the {METADATA_KEY} entry is not JSON text (an array of shape "
                                  f"{raw.shape} and dtype {raw.dtype})")
        metadata = parse_metadata(str(raw[()]), where, METADATA_KEY)
    kind = "DigitLab .npz" if metadata.get("format") == FORMAT_NAME else ".npz of arrays"
    return WeightContents(where, kind, arrays, metadata)


def _read_pickle(data: bytes, where: str) -> WeightContents:
    obj = loads(data, where)
    found = _walk(obj)
    classes = _class_names(found)
    if isinstance(obj, dict) and _array_dict(obj):
        kind = "pickled OrderedDict of arrays" if type(obj) is not dict else "pickled dict of arrays"
        return WeightContents(where, kind, dict(obj), classes=classes)
    if isinstance(obj, dict) and isinstance(obj.get("params"), dict) and _array_dict(obj["params"]):
        return WeightContents(where, "pickled dict with params", dict(obj["params"]), classes=classes)
    if isinstance(obj, StandIn):
        name = printable(obj.qualified_name)
        params = _find_params(found)
        activation, notes = _activation_from_layers(found)
        if params is None:
            raise WeightFileError(f"{where}: a pickled {name} object without a params dict of W1, b1, … arrays "
                                  "(nor layers holding W and b)")
        return WeightContents(where, f"pickled object {name}", params, activation=activation, classes=classes,
                              notes=notes)
    if isinstance(obj, (list, tuple)) and obj and all(isinstance(v, np.ndarray) for v in obj) and len(obj) % 2 == 0:
        params = {f"{p}{i // 2 + 1}": v for i, (p, v) in enumerate(zip("Wb" * len(obj), obj))}
        return WeightContents(where, "pickled list of arrays (W1, b1, W2, b2, …)", params, classes=classes)
    if isinstance(obj, np.ndarray):
        raise WeightFileError(f"{where}: a single pickled array of shape {obj.shape}, not a set of named weights")
    params = _find_params(found)
    if params is not None:
        return WeightContents(where, f"pickled {type(obj).__name__} holding params", params, classes=classes)
    raise WeightFileError(f"{where}: no weight arrays found (a pickled {type(obj).__name__}; expected a dict "
                          "such as {'W1': array, 'b1': array, …} or a network object with .params)")


def _array_dict(d: Mapping) -> bool:
    return bool(d) and any(isinstance(v, np.ndarray) for v in d.values())


def _walk(obj) -> list:
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


def _class_names(found: list) -> list[str]:
    names = sorted({printable(o.qualified_name) for o in found if isinstance(o, StandIn)})
    if len(names) > MAX_SHOWN_ITEMS:
        names = names[:MAX_SHOWN_ITEMS] + [f"… {len(names) - MAX_SHOWN_ITEMS:,} more classes"]
    return names


def _find_params(found: list) -> dict | None:
    """A ``params`` dict (the book's networks keep ``self.params``), else one keyed W1…, else layers' W/b in order."""
    stand_ins = [o for o in found if isinstance(o, StandIn)]
    for o in stand_ins:
        params = o.attributes.get("params")
        if isinstance(params, dict) and _array_dict(params):
            return dict(params)
    for o in found:
        if isinstance(o, dict) and "W1" in o and _array_dict(o):
            return dict(o)
    layers = [attrs for attrs in (o.attributes for o in stand_ins)
              if isinstance(attrs.get("W"), np.ndarray) and isinstance(attrs.get("b"), np.ndarray)]
    if layers:
        params = {}
        for i, attrs in enumerate(layers, start=1):
            params[f"W{i}"], params[f"b{i}"] = attrs["W"], attrs["b"]
        return params
    return None


def _activation_from_layers(found: list) -> tuple[str | None, list[str]]:
    """The hidden activation named by the classes of a pickled network's layers (e.g. the book's ``Relu``)."""
    acts = {_LAYER_ACTIVATIONS.get(type(o).name.lower()) for o in found if isinstance(o, StandIn)} - {None}
    if len(acts) == 1:
        act = acts.pop()
        return act, [f"activation {act}: the pickled network's layers are of class {act.capitalize()}"]
    if len(acts) > 1:
        return None, [f"the pickled layers mix activations ({', '.join(sorted(acts))}); one is chosen by probe"]
    return None, []
