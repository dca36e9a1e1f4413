"""Read a weight file's named arrays, whatever the format, without running anything from it.

One reader per format, chosen by the file's first bytes (never its name):

* ``.npz`` (a zip of ``.npy`` arrays) — DigitLab's own, with a JSON entry (``__digitlab__``) holding
  ``network.spec()``; read by :mod:`engine.weightfiles.npz` (never pickles, every size checked first)
  and :mod:`engine.weightfiles.metadata` (bounded JSON).
* a pickle — the book's ``params`` dict (``sample_weight.pkl``), a whole pickled network object, or
  Nielsen's network.py ``Network`` (:mod:`engine.weightfiles.nielsen`), read with
  :mod:`engine.weightfiles.safe_pickle`, which never imports or calls what the file names.
* PyTorch ``.pt``/``.pth`` (zip or legacy format: a state_dict, a checkpoint holding one, a whole
  pickled module), read by :mod:`engine.weightfiles.torch_read` without torch.
* ``.safetensors`` (:mod:`engine.weightfiles.safetensors_io`) and Nielsen's network2.py JSON.
* any of these gzip-, bz2- or xz-compressed, or alone in a zip (:mod:`engine.weightfiles.compressed`,
  which also names formats known but not supported: Keras, ONNX, TensorFlow Lite).

The result is a :class:`WeightContents`: a flat dict of names to arrays plus what the file said
about them (``layout`` "torch" for a state_dict's dotted names and (out, in) weights);
:mod:`engine.weightfiles.recognise` turns it into a network.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.errors import WeightFileError
from engine.util import printable
from engine.weightfiles.compressed import extract_single, unsupported_format, unwrap, zip_kind
from engine.weightfiles.metadata import MAX_SHOWN_ITEMS, parse_metadata
from engine.weightfiles.nielsen import is_network2_json, nielsen_params, read_network2_json
from engine.weightfiles.npz import read_npz_arrays
from engine.weightfiles.pickle_objects import StandIn, class_names, reachable
from engine.weightfiles.safe_pickle import loads, read_weight_file
from engine.weightfiles.safetensors_io import is_safetensors, read_safetensors
from engine.weightfiles.torch_read import is_legacy_torch, read_torch

METADATA_KEY = "__digitlab__"
SAFETENSORS_KEY = "digitlab"  # the entry of a .safetensors header's __metadata__ holding DigitLab's JSON
MAX_NESTING = 2  # a zip holding a gzip holding a pickle: deeper packing is no weight file
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
    layout: str = "book"  # "book": W1, b1, … with affine W (in, out); "torch": a state_dict's dotted keys, W (out, in)
    input_scale: float | None = None  # the pixel scale the file's format implies (Nielsen's: [0, 1]), else guessed


def _read_bytes(path: Path) -> bytes:
    data = read_weight_file(path)
    if not data:
        raise WeightFileError(f"{path}: the file is empty")
    return data


def read_weight_arrays(path: str | os.PathLike) -> WeightContents:
    """The named arrays in a weight file (any format below, told apart by content), validated but not yet recognised."""
    path = Path(path)
    return read_weight_bytes(_read_bytes(path), str(path), path.suffix.lower())


def read_weight_bytes(data: bytes, where: str, suffix: str = "", depth: int = 0,
                      origin: int | None = None) -> WeightContents:
    """The named arrays in a weight file's bytes: compressed files are unwrapped first (gzip, bz2, xz, a one-file zip).

    ``origin`` is the size of the file on disk when ``data`` came out of a zip: every inflation stays bounded by it.
    """
    origin = origin or len(data)
    data, unwrapped = unwrap(data, where, origin)
    contents = _read_format(data, where, suffix, depth, origin)
    if unwrapped:
        contents.kind = f"{contents.kind}, {' and '.join(n.split(' (')[0] for n in unwrapped)}"
        contents.notes[:0] = unwrapped
    return contents


def _read_format(data: bytes, where: str, suffix: str, depth: int, origin: int) -> WeightContents:
    if not data:
        raise WeightFileError(f"{where}: the file is empty")
    if data[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        kind = zip_kind(data, where)
        if kind == "npz":
            return _read_npz(data, where)
        if kind == "torch":
            return _from_torch(read_torch(data, where), where)
        if kind == "single" and depth < MAX_NESTING:
            inner, name = extract_single(data, where, origin)
            contents = read_weight_bytes(inner, f"{where} ▸ {printable(name, 80)}", Path(name).suffix.lower(),
                                         depth + 1, origin)
            contents.kind = f"{contents.kind}, in a zip"
            return contents
        raise WeightFileError(unsupported_format(data, where, suffix) or f"{where}: a zip archive inside a zip archive "
                              "inside …: too deeply packed for a weight file")
    if data[:6] == b"\x93NUMPY":
        raise WeightFileError(f"{where}: a single .npy array, not a set of named weights (save them with "
                              "np.savez(path, W1=..., b1=...) or from DigitLab)")
    if is_safetensors(data):
        return _read_safetensors(data, where)
    if is_network2_json(data):
        params, notes, info = read_network2_json(data, where)
        return WeightContents(where, "Nielsen's network2.py JSON", params, {"info": info}, activation="sigmoid",
                              notes=notes, input_scale=1.0)
    message = unsupported_format(data, where, suffix)
    if message:
        raise WeightFileError(message)
    if is_legacy_torch(data):
        return _from_torch(read_torch(data, where), where)
    return _read_pickle(data, where)


def _layout(params: Mapping) -> str:
    """"torch" for a state_dict's dotted names (``fc1.weight``, ``0.bias``), else the book's ``W1, b1, …``."""
    names = [k for k in params if isinstance(k, str)]
    torch_like = [k for k in names if k.rsplit(".", 1)[-1] in ("weight", "bias")]
    return "torch" if torch_like and len(torch_like) * 2 >= len(names) else "book"


def _from_torch(found, where: str) -> WeightContents:
    return WeightContents(where, found.kind, found.params, found.metadata, classes=found.classes, notes=found.notes,
                          layout="torch")


def _read_safetensors(data: bytes, where: str) -> WeightContents:
    arrays, header = read_safetensors(data, where)
    metadata = {}
    if isinstance(header.get(SAFETENSORS_KEY), str):
        metadata = parse_metadata(header[SAFETENSORS_KEY], where, SAFETENSORS_KEY)
    return WeightContents(where, "safetensors", arrays, metadata, layout=_layout(arrays))


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
    return WeightContents(where, kind, arrays, metadata, layout=_layout(arrays))


def _read_pickle(data: bytes, where: str) -> WeightContents:
    obj = loads(data, where)
    found = reachable(obj)
    classes = class_names(found, MAX_SHOWN_ITEMS)
    nielsen = nielsen_params(obj)
    if nielsen is not None:
        params, notes = nielsen
        name = printable(obj.qualified_name) if isinstance(obj, StandIn) else type(obj).__name__
        return WeightContents(where, f"pickled Nielsen network.py network ({name})", params, activation="sigmoid",
                              classes=classes, notes=notes, input_scale=1.0)
    if isinstance(obj, dict) and _array_dict(obj):
        kind = "pickled OrderedDict of arrays" if type(obj) is not dict else "pickled dict of arrays"
        return WeightContents(where, kind, dict(obj), classes=classes, layout=_layout(obj))
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
