"""Read a weight file's named arrays, whatever the format, without running anything from it.

One reader per format, chosen by the file's first bytes (never its name):

* ``.npz`` (a zip of ``.npy`` arrays) — DigitLab's own, with a JSON entry (``__digitlab__``) holding
  ``network.spec()``; read with ``allow_pickle=False`` and bounded against zip bombs.
* a pickle — the book's ``params`` dict (``sample_weight.pkl``) or a whole pickled network object,
  read with :mod:`engine.weightfiles.safe_pickle`, which never imports or calls what the file names.

The result is a :class:`WeightContents`: a flat dict of names to arrays plus what the file said
about them; :mod:`engine.weightfiles.recognise` turns it into a network.
"""
from __future__ import annotations

import io
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.errors import UnsafePickleError, WeightFileError
from engine.weightfiles.pickle_names import StandIn
from engine.weightfiles.safe_pickle import MAX_FILE_BYTES, loads

METADATA_KEY = "__digitlab__"
FORMAT_NAME = "digitlab-weights"
MAX_NPZ_MEMBERS = 1000
NPZ_EXPANSION = 100  # compressed weights shrink a little; 100× smaller than the arrays means a zip bomb
NPZ_SLACK = 64 << 20  # …beyond this much: small files of zeros may expand more than 100×
_LAYER_ACTIVATIONS = {"relu": "relu", "sigmoid": "sigmoid", "tanh": "tanh"}  # book class names, lower-cased


@dataclass
class WeightContents:
    """What a file holds before any network is built: named arrays plus what the file said about them."""

    path: str
    kind: str
    params: dict[str, np.ndarray]
    metadata: dict = field(default_factory=dict)
    activation: str | None = None  # from the class names of a pickled network's layers
    classes: list[str] = field(default_factory=list)  # classes of pickled objects (never imported)
    notes: list[str] = field(default_factory=list)


def _read_bytes(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise WeightFileError(f"{path}: {size:,} bytes is larger than the {MAX_FILE_BYTES:,}-byte limit for a "
                                  "weight file")
        data = path.read_bytes()
    except OSError as exc:
        raise WeightFileError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if not data:
        raise WeightFileError(f"{path}: the file is empty")
    return data


def read_weight_arrays(path: str | os.PathLike) -> WeightContents:
    """The named arrays in a weight file (.npz or pickle, told apart by content), validated but not yet recognised."""
    path = Path(path)
    data = _read_bytes(path)
    if data[:4] == b"PK\x03\x04":
        return _read_npz(data, str(path))
    if data[:6] == b"\x93NUMPY":
        raise WeightFileError(f"{path}: a single .npy array, not a set of named weights (save them with "
                              "np.savez(path, W1=..., b1=...) or from DigitLab)")
    return _read_pickle(data, str(path))


def _read_npz(data: bytes, where: str) -> WeightContents:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise WeightFileError(f"{where}: a damaged .npz/zip file ({exc})") from None
    if len(infos) > MAX_NPZ_MEMBERS:
        raise WeightFileError(f"{where}: {len(infos)} entries; a weight file has a few dozen")
    arrays: dict[str, np.ndarray] = {}
    total = 0
    for info in infos:
        name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
        try:
            with zf.open(info) as f:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
                elif version == (2, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
                else:
                    raise WeightFileError(f"{where}: entry {name!r} uses .npy format {version}, which weight "
                                          "files never need")
                if dtype.hasobject:
                    raise UnsafePickleError(f"{where}: refused: entry {name!r} is an object array (pickled Python "
                                            "objects, which can run code); it was not loaded")
                nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
                total += nbytes
                if nbytes > info.file_size or total > min(MAX_FILE_BYTES, NPZ_EXPANSION * len(data) + NPZ_SLACK):
                    raise UnsafePickleError(f"{where}: refused: entry {name!r} declares shape {shape} of {dtype} "
                                            f"({nbytes:,} bytes), more than the entry holds ({info.file_size:,} "
                                            "bytes) or than a file of this size can sensibly expand to (a zip bomb)")
            with zf.open(info) as f:
                arrays[name] = np.lib.format.read_array(f, allow_pickle=False)
        except WeightFileError:
            raise
        except Exception as exc:  # corrupt headers, CRC errors, truncated data, unsupported compression
            raise WeightFileError(f"{where}: entry {name!r} cannot be read ({type(exc).__name__}: {exc})") from None
    metadata = {}
    if METADATA_KEY in arrays:
        raw = arrays.pop(METADATA_KEY)
        try:
            metadata = json.loads(str(raw[()]) if raw.shape == () else "")
            if not isinstance(metadata, dict):
                raise ValueError("not an object")
        except (ValueError, TypeError) as exc:
            raise WeightFileError(f"{where}: the {METADATA_KEY} entry is not valid JSON metadata ({exc})") from None
    kind = "DigitLab .npz" if metadata.get("format") == FORMAT_NAME else ".npz of arrays"
    return WeightContents(where, kind, arrays, metadata)


def _read_pickle(data: bytes, where: str) -> WeightContents:
    obj = loads(data, where)
    classes = sorted(_stand_in_classes(obj))
    if isinstance(obj, dict) and _array_dict(obj):
        kind = "pickled OrderedDict of arrays" if type(obj) is not dict else "pickled dict of arrays"
        return WeightContents(where, kind, dict(obj), classes=classes)
    if isinstance(obj, dict) and isinstance(obj.get("params"), dict) and _array_dict(obj["params"]):
        return WeightContents(where, "pickled dict with params", dict(obj["params"]), classes=classes)
    if isinstance(obj, StandIn):
        kind = f"pickled object {obj.qualified_name}"
        params = _find_params(obj)
        activation, notes = _activation_from_layers(obj)
        if params is None:
            raise WeightFileError(f"{where}: a pickled {obj.qualified_name} object without a params dict of "
                                  "W1, b1, … arrays (nor layers holding W and b)")
        return WeightContents(where, kind, params, activation=activation, classes=classes, notes=notes)
    if isinstance(obj, (list, tuple)) and obj and all(isinstance(v, np.ndarray) for v in obj) and len(obj) % 2 == 0:
        params = {f"{p}{i // 2 + 1}": v for i, (p, v) in enumerate(zip("Wb" * len(obj), obj))}
        return WeightContents(where, "pickled list of arrays (W1, b1, W2, b2, …)", params, classes=classes)
    if isinstance(obj, np.ndarray):
        raise WeightFileError(f"{where}: a single pickled array of shape {obj.shape}, not a set of named weights")
    found = _find_params(obj)
    if found is not None:
        return WeightContents(where, f"pickled {type(obj).__name__} holding params", found, classes=classes)
    raise WeightFileError(f"{where}: no weight arrays found (a pickled {type(obj).__name__}; expected a dict "
                          "such as {'W1': array, 'b1': array, …} or a network object with .params)")


def _array_dict(d: dict) -> bool:
    return bool(d) and any(isinstance(v, np.ndarray) for v in d.values())


def _walk(obj, limit: int = 100_000):
    """Every object reachable from ``obj`` (breadth first, each once)."""
    seen, queue, i = set(), [obj], 0
    while i < len(queue) and i < limit:
        o = queue[i]
        i += 1
        if id(o) in seen:
            continue
        seen.add(id(o))
        yield o
        if isinstance(o, dict):
            queue.extend(o.values())
        elif isinstance(o, (list, tuple)):
            queue.extend(o)
        elif isinstance(o, StandIn):
            queue.extend((o.attributes, o.items, o.listitems))


def _stand_in_classes(obj) -> set[str]:
    return {o.qualified_name for o in _walk(obj) if isinstance(o, StandIn)}


def _find_params(obj) -> dict | None:
    """A ``params`` dict (the book's networks keep ``self.params``), else one keyed W1…, else layers' W/b in order."""
    for o in _walk(obj):
        if isinstance(o, StandIn):
            params = o.attributes.get("params")
            if isinstance(params, dict) and _array_dict(params):
                return dict(params)
    for o in _walk(obj):
        if isinstance(o, dict) and "W1" in o and _array_dict(o):
            return dict(o)
    layers = [o.attributes for o in _walk(obj) if isinstance(o, StandIn)
              and isinstance(o.attributes.get("W"), np.ndarray) and isinstance(o.attributes.get("b"), np.ndarray)]
    if layers:
        params = {}
        for i, attrs in enumerate(layers, start=1):
            params[f"W{i}"], params[f"b{i}"] = attrs["W"], attrs["b"]
        return params
    return None


def _activation_from_layers(obj) -> tuple[str | None, list[str]]:
    """The hidden activation named by the classes of a pickled network's layers (e.g. the book's ``Relu``)."""
    found = set()
    for o in _walk(obj):
        if isinstance(o, StandIn):
            act = _LAYER_ACTIVATIONS.get(type(o).name.lower())
            if act:
                found.add(act)
    if len(found) == 1:
        act = found.pop()
        return act, [f"activation {act}: the pickled network's layers are of class {act.capitalize()}"]
    if len(found) > 1:
        return None, [f"the pickled layers mix activations ({', '.join(sorted(found))}); one is chosen by probe"]
    return None, []
