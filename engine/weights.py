"""Weight files: load them safely, recognise the network they hold, save them atomically.

Two formats are read and written:

* ``.npz`` — DigitLab's own: the ``W1, b1, …`` arrays plus a JSON entry
  (``__digitlab__``) holding ``network.spec()``, so a file loads back exactly.
  Read with ``allow_pickle=False``: an ``.npz`` never runs code.
* ``.pkl`` — the book's: a pickled ``params`` dict (``sample_weight.pkl``) or a
  whole pickled network object. Read with :mod:`engine.safe_pickle`, which
  never imports or calls what the file names.

A book file does not say which activation it was trained with, nor whether it
expects pixels in [0, 1] or [0, 255]. Guessing wrong gives a model that answers
the same digit for every image, so each candidate is tried on a held-out batch
of labelled digits and the most accurate one wins (reported in ``notes``).
"""
from __future__ import annotations

import io
import json
import os
import pickle
import re
import tempfile
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from engine.layers import ACTIVATIONS
from engine.network import Network, build_network, mlp_spec
from engine.safe_pickle import MAX_FILE_BYTES, StandIn, UnsafePickleError, WeightFileError, loads, rename_globals

__all__ = ["WeightFileError", "UnsafePickleError", "LoadedWeights", "load_weights", "inspect_weights",
           "save_weights", "read_weight_arrays", "WeightContents"]

METADATA_KEY = "__digitlab__"
FORMAT_NAME = "digitlab-weights"
FORMAT_VERSION = 1
INPUT_PIXELS = 784
NUM_CLASSES = 10
ACTIVATION_CANDIDATES = ("sigmoid", "relu")  # the book's two; tanh is only used when asked for
SCALE_CANDIDATES = (1.0, 255.0)
PROBE_SIZE = 500
LABEL_FREE_KEEP = 0.75  # without labels, a candidate this varied (relative to the most varied) is not collapsed
MAX_NPZ_MEMBERS = 1000
NPZ_EXPANSION = 100  # compressed weights shrink a little; 100× smaller than the arrays means a zip bomb
NPZ_SLACK = 64 << 20  # …beyond this much: small files of zeros may expand more than 100×
SUFFIX_FORMATS = {".npz": "npz", ".pkl": "pickle", ".pickle": "pickle"}
_LAYER_ACTIVATIONS = {"relu": "relu", "sigmoid": "sigmoid", "tanh": "tanh"}  # book class names, lower-cased
_PARAM_NAME = re.compile(r"([A-Za-z_]+?)(\d+)")


# ----------------------------------------------------------------------------- reading a file's arrays

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


# ----------------------------------------------------------------------------- checking and recognising

def _check_arrays(params: dict, where: str) -> tuple[dict[str, np.ndarray], list[str]]:
    """Every entry a finite floating-point array; integers are converted (noted), anything else refused."""
    notes = []
    out = {}
    if not params:
        raise WeightFileError(f"{where}: the file holds no weight arrays")
    for key, value in params.items():
        if not isinstance(key, str):
            raise WeightFileError(f"{where}: a weight is named {key!r}; names must be strings such as 'W1'")
        if not isinstance(value, np.ndarray):
            raise WeightFileError(f"{where}: {key} is a {type(value).__name__}, not a numpy array")
        if value.dtype.kind in "iub":
            notes.append(f"{key} was stored as {value.dtype}; converted to float32")
            value = value.astype(np.float32)
        elif value.dtype == np.float16:
            notes.append(f"{key} was stored as float16; converted to float32")
            value = value.astype(np.float32)
        elif value.dtype.kind != "f":
            raise WeightFileError(f"{where}: {key} has shape {value.shape} and dtype {value.dtype}; weights must be "
                                  "real numbers (float32 or float64)")
        if value.size == 0:
            raise WeightFileError(f"{where}: {key} has shape {value.shape}: it is empty")
        bad = int(value.size - np.count_nonzero(np.isfinite(value)))
        if bad:
            raise WeightFileError(f"{where}: {key} (shape {value.shape}) holds {bad} NaN or infinite value"
                                  f"{'s' if bad > 1 else ''}: the network diverged before it was saved")
        out[key] = value
    return out, notes


def _index_of(name: str, letter: str) -> int | None:
    m = _PARAM_NAME.fullmatch(name)
    if not m or m.group(1) != letter or m.group(2) != str(int(m.group(2))):  # "W01" is not a layer name
        return None
    return int(m.group(2))


def mlp_sizes(params: dict[str, np.ndarray], where: str = "weights") -> tuple[list[int], dict[str, np.ndarray]]:
    """Layer sizes of an MLP from ``W1…Wn``/``b1…bn``, with every mismatch named by key and shape."""
    w_idx = sorted(i for k in params if (i := _index_of(k, "W")) is not None)
    b_idx = {i for k in params if (i := _index_of(k, "b")) is not None}
    if not w_idx:
        raise WeightFileError(f"{where}: no W1, W2, … entries (found {', '.join(sorted(params)[:12])})")
    n = len(w_idx)
    if w_idx != list(range(1, n + 1)):
        raise WeightFileError(f"{where}: layer weights are numbered {', '.join(f'W{i}' for i in w_idx)}; expected "
                              f"W1…W{n} without gaps")
    extra = sorted(set(params) - {f"W{i}" for i in w_idx} - {f"b{i}" for i in w_idx})
    if extra:
        raise WeightFileError(f"{where}: entries {', '.join(extra)} do not belong to an MLP of W1…W{n}, b1…b{n} "
                              "(batch normalisation and other layers are not supported)")
    fixed = {}
    sizes = []
    for i in w_idx:
        W = params[f"W{i}"]
        if i not in b_idx:
            raise WeightFileError(f"{where}: W{i} (shape {W.shape}) has no matching b{i}")
        if W.ndim != 2:
            raise WeightFileError(f"{where}: W{i} has shape {W.shape}; an MLP layer needs a 2-D (inputs, outputs) "
                                  "matrix" + (" (a 4-D W1 is a convolution: SimpleConvNet/DeepConvNet weights)"
                                              if W.ndim == 4 else ""))
        b = params[f"b{i}"]
        if b.shape not in ((W.shape[1],), (1, W.shape[1])):
            raise WeightFileError(f"{where}: b{i} has shape {b.shape} but W{i} has shape {W.shape}: b{i} should "
                                  f"have shape ({W.shape[1]},)")
        if i == 1 and W.shape[0] != INPUT_PIXELS:
            raise WeightFileError(f"{where}: W1 has shape {W.shape}: the first layer takes {W.shape[0]} inputs but "
                                  f"an image has {INPUT_PIXELS} pixels (28×28)")
        if i > 1 and W.shape[0] != sizes[-1]:
            raise WeightFileError(f"{where}: W{i} has shape {W.shape} but W{i - 1} gives {sizes[-1]} outputs: the "
                                  "layers do not chain")
        if i == 1:
            sizes.append(W.shape[0])
        sizes.append(W.shape[1])
        fixed[f"W{i}"] = W
        fixed[f"b{i}"] = b.reshape(W.shape[1])
    if sizes[-1] != NUM_CLASSES:
        raise WeightFileError(f"{where}: W{n} has shape {params[f'W{n}'].shape}: the network gives {sizes[-1]} "
                              f"outputs but there are {NUM_CLASSES} digit classes")
    return sizes, fixed


def _recognise_cnn(params: dict, where: str) -> dict | None:
    """engine.conv_models' verdict (``{'name', 'spec'}``) or None when absent or not a CNN."""
    try:
        from engine.conv_models import recognise
    except ImportError:
        return None
    try:
        found = recognise(params)
    except WeightFileError:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise WeightFileError(f"{where}: {exc}") from None
    if not found:
        return None
    spec = found.get("spec") or {k: v for k, v in found.items() if k != "name"}
    return {"name": str(found.get("name", "CNN")), "spec": spec}


def _ensure_layer_types() -> None:
    """Import the module that registers conv/pool layers, when there is one."""
    try:
        import engine.conv_models  # noqa: F401  (registers conv layer builders)
    except ImportError:
        pass


def _build(spec: dict, params: dict, where: str, info: dict, activation: str | None, scale: float) -> Network:
    _ensure_layer_types()
    try:
        return build_network(_with(spec, activation, scale), params=params, info=info)
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        raise WeightFileError(f"{where}: the weights do not fit the network they describe ({exc})") from None


def _with(spec: dict, activation: str | None, scale: float) -> dict:
    """The spec with its hidden activation replaced and its input scale set."""
    spec = json.loads(json.dumps(spec))
    if activation is not None:
        for layer in spec["layers"]:
            if layer.get("type") in ACTIVATIONS:
                layer["type"] = activation
    spec["input_scale"] = float(scale)
    return spec


def _check_stored_spec(spec: dict, where: str) -> None:
    """A DigitLab file's spec has the shape ``Network.spec()`` gives; anything else is a damaged file."""
    layers = spec.get("layers")
    scale = spec.get("input_scale", 1.0)
    ok = (isinstance(layers, list) and layers and all(isinstance(l, dict) and isinstance(l.get("type"), str)
                                                      for l in layers)
          and isinstance(spec.get("input_shape"), list) and all(isinstance(d, int) for d in spec["input_shape"])
          and isinstance(scale, (int, float)) and not isinstance(scale, bool) and np.isfinite(scale) and scale > 0)
    if not ok:
        raise WeightFileError(f"{where}: the network description stored in the file is damaged "
                              f"({json.dumps(spec)[:200]})")


def _spec_activation(spec: dict) -> str | None:
    acts = {layer.get("type") for layer in spec.get("layers", []) if layer.get("type") in ACTIVATIONS}
    return acts.pop() if len(acts) == 1 else None


# ----------------------------------------------------------------------------- probing candidates

def _default_probe() -> tuple[tuple[np.ndarray, np.ndarray] | None, str]:
    """Up to 500 labelled digits from the offline sample's test split, spread over all classes."""
    try:
        from engine.datasets import load_dataset

        ds = load_dataset("mnist-sample")
        step = max(1, len(ds.x_test) // PROBE_SIZE)
        return (ds.x_test[::step][:PROBE_SIZE], ds.t_test[::step][:PROBE_SIZE]), "mnist-sample test digits"
    except Exception:  # no sample installed, a broken cache: fall back to the label-free heuristic
        return None, ""


def scribbles(n: int = 200, seed: int = 0) -> np.ndarray:
    """Digit-like synthetic images: a few thick random strokes on a dark 28×28 field, pixels in [0, 1]."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 28, 28), dtype=np.float32)
    yy, xx = np.mgrid[0:28, 0:28]
    for img in images:
        points = rng.uniform(6, 22, size=(rng.integers(3, 6), 2))
        for (y0, x0), (y1, x1) in zip(points[:-1], points[1:]):
            for s in np.linspace(0.0, 1.0, 12):
                y, x = y0 + s * (y1 - y0), x0 + s * (x1 - x0)
                img[:] = np.maximum(img, np.clip(1.6 - np.hypot(yy - y, xx - x), 0.0, 1.0))
    return images.reshape(n, INPUT_PIXELS)


def _predictions(network: Network, x: np.ndarray) -> np.ndarray | None:
    with np.errstate(all="ignore"):  # a wrong candidate may overflow; that only makes it lose
        scores = network.scores(x)
    if not np.all(np.isfinite(scores)):
        return None
    return scores.argmax(axis=1)


def _diversity(pred: np.ndarray | None) -> float:
    """Entropy (bits) of the predicted-class histogram: 0 when every input gets the same answer."""
    if pred is None:
        return -1.0
    p = np.bincount(pred, minlength=NUM_CLASSES) / len(pred)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def _candidate_name(activation: str | None, scale: float) -> str:
    pixels = "[0,255]" if scale == 255.0 else "[0,1]" if scale == 1.0 else f"×{scale:g}"
    return f"{activation}, pixels {pixels}" if activation else f"pixels {pixels}"


def _choose(candidates: list[tuple[str | None, float]], make, probe, notes: list[str]):
    """The candidate (activation, scale) that classifies the probe best, with the score of each."""
    if probe is None:
        probe, what = _default_probe()
    else:
        what = "the given probe digits"
    scores: dict[str, float] = {}
    if probe is not None:
        x, t = probe
        x = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
        t = np.asarray(t)
        t = t.argmax(axis=1) if t.ndim == 2 else t.astype(np.int64)
        for cand in candidates:
            pred = _predictions(make(*cand), x)
            scores[_candidate_name(*cand)] = 0.0 if pred is None else float(np.mean(pred == t))
        method = f"accuracy on {len(x)} {what}"
    else:
        x = scribbles()
        for cand in candidates:
            scores[_candidate_name(*cand)] = _diversity(_predictions(make(*cand), x))
        method = ("no labelled digits available (install the mnist-sample or pass probe=): a wrong input scale or "
                  "activation tends to collapse the answers to one class, so the first candidate (sigmoid before relu, "
                  "[0,1] before [0,255], the book's defaults) whose answers over synthetic scribbles vary at least "
                  f"{LABEL_FREE_KEEP:.0%} as much as the most varied one's won; a weak heuristic, scores are entropies")
    ranked = [scores[_candidate_name(*c)] for c in candidates]
    if probe is not None:
        best = max(range(len(candidates)), key=lambda i: (ranked[i], -i))
    else:  # the first candidate, in order of preference, that is not close to answering one class for everything
        best = next(i for i, v in enumerate(ranked) if v >= LABEL_FREE_KEEP * max(ranked))
    values = sorted(scores.values(), reverse=True)
    chosen = candidates[best]
    detail = ", ".join(f"{k} {v:.1%}" if probe is not None else f"{k} {v:.2f} bits" for k, v in scores.items())
    notes.append(f"chose {_candidate_name(*chosen)} by {method}: {detail}")
    if len(values) > 1 and values[0] - values[1] < (0.01 if probe is not None else 0.05):
        notes.append("the probe could barely tell the best two candidates apart; pass activation=/input_scale= "
                     "if you know better")
    if probe is not None and values[0] < 0.5:
        notes.append(f"even the best candidate gets only {values[0]:.1%} right: these may not be MNIST weights")
    return chosen, scores


# ----------------------------------------------------------------------------- the public loader

@dataclass
class LoadedWeights:
    network: Network
    path: str
    kind: str  # "DigitLab .npz", "pickled dict of arrays", "pickled object __main__.TwoLayerNet", …
    architecture: str  # "784-50-100-10 MLP, sigmoid"
    activation: str | None
    activation_source: str  # "file" | "guessed" | "given"
    input_scale: float
    scale_source: str  # "file" | "guessed" | "given"
    probe_accuracy: dict = field(default_factory=dict)  # candidate -> accuracy (or diversity), when guessed
    notes: list = field(default_factory=list)
    metadata: dict = field(default_factory=dict)  # a DigitLab file's JSON: spec, info, training settings, …

    def summary(self) -> str:
        lines = [f"{self.architecture}", f"  from {self.path} ({self.kind})"]
        for name, arr in self.network.params.items():
            lines.append(f"  {name:<4} {str(tuple(arr.shape)):<16} {arr.dtype}")
        how = {"file": "as stored in the file", "guessed": "guessed", "given": "as given"}
        lines.append(f"  activation: {self.activation or 'none'} ({how.get(self.activation_source, '')})")
        pixels = "[0, 255]" if self.input_scale == 255.0 else "[0, 1]" if self.input_scale == 1.0 else \
            f"[0, 1] × {self.input_scale:g}"
        lines.append(f"  expects pixels in {pixels} ({how.get(self.scale_source, '')})")
        if self.metadata.get("saved_at"):
            lines.append(f"  saved {self.metadata['saved_at']} by DigitLab {self.metadata.get('digitlab_version', '?')}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def load_weights(path: str | os.PathLike, activation: str | None = None, input_scale: float | None = None,
                 probe: tuple[np.ndarray, np.ndarray] | None = None) -> LoadedWeights:
    """Load a weight file and build its network; guess what the file does not say (see the module doc)."""
    if activation is not None and activation not in ACTIVATIONS:
        raise WeightFileError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")
    if input_scale is not None and not (np.isfinite(input_scale) and input_scale > 0):
        raise WeightFileError(f"input_scale must be a positive number such as 1 or 255, not {input_scale!r}")
    contents = read_weight_arrays(path)
    return _load_contents(contents, activation, input_scale, probe)


def _load_contents(contents: WeightContents, activation, input_scale, probe) -> LoadedWeights:
    where = contents.path
    params, notes = _check_arrays(contents.params, where)
    notes = contents.notes + notes
    meta = contents.metadata
    stored_spec = meta.get("spec") if isinstance(meta.get("spec"), dict) else None
    if stored_spec is not None:
        _check_stored_spec(stored_spec, where)
    info = {"source": where, "kind": contents.kind}
    if isinstance(meta.get("info"), dict):
        info = {**meta["info"], **info}

    # the architecture: stored, a CNN recognised by engine.conv_models, or an MLP read off W1…Wn
    cnn = None
    if stored_spec is not None:
        spec = stored_spec
        base_act = _spec_activation(spec)
        name = None
    else:
        cnn = _recognise_cnn(params, where)
        if cnn is not None:
            spec, name = cnn["spec"], cnn["name"]
            base_act = _spec_activation(spec)
        else:
            sizes, params = mlp_sizes(params, where)
            spec, name, base_act = mlp_spec(sizes, "relu"), None, None

    # the activation and input scale: given > stored in the file > guessed by probe
    act_source = scale_source = "guessed"
    acts: list[str | None]
    if activation is not None:
        acts, act_source = [activation], "given"
    elif stored_spec is not None or cnn is not None:
        acts, act_source = [base_act], "file"
    elif contents.activation is not None:
        acts, act_source = [contents.activation], "file"
    elif len(spec["layers"]) == 1:
        acts, act_source = [None], "file"  # a single affine layer has no hidden activation
    else:
        acts = list(ACTIVATION_CANDIDATES)
    if input_scale is not None:
        scales, scale_source = [float(input_scale)], "given"
    elif stored_spec is not None:
        scales, scale_source = [float(stored_spec.get("input_scale", 1.0))], "file"
    else:
        scales = list(SCALE_CANDIDATES)

    def make(act, scale):
        return _build(spec, params, where, {**info, "activation": act}, act, scale)

    candidates = [(a, s) for a in acts for s in scales]
    scores: dict = {}
    if len(candidates) > 1:
        (act, scale), scores = _choose(candidates, make, probe, notes)
    else:
        act, scale = candidates[0]
    network = make(act, scale)
    if stored_spec is not None and network.spec()["layers"] != _with(stored_spec, act, scale)["layers"]:
        raise WeightFileError(f"{where}: the arrays do not match the network description stored with them "
                              f"(stored {json.dumps(stored_spec['layers'])[:160]}, arrays give "
                              f"{json.dumps(network.spec()['layers'])[:160]})")
    act = act or _spec_activation(network.spec())
    described = network.describe()
    if name:
        architecture = f"{name} ({described})"
    elif all(layer.get("type") in ("affine", *ACTIVATIONS) for layer in network.spec()["layers"]):
        architecture = described.split(" ")[0] + " MLP" + (f", {act}" if act else "")
    else:
        architecture = described
    return LoadedWeights(network, where, contents.kind, architecture, act, act_source, float(scale), scale_source,
                         scores, notes, dict(meta))


def inspect_weights(path: str | os.PathLike, probe: tuple[np.ndarray, np.ndarray] | None = None) -> dict:
    """What a file holds and how it is recognised, as JSON-able data (for ``digitlab inspect``); runs nothing from it.

    Unreadable or unsafe files raise :class:`WeightFileError`; readable files whose arrays
    fit no network are reported with ``recognised: False`` and the reason in ``error``.
    """
    contents = read_weight_arrays(path)
    out = {
        "path": str(path),
        "kind": contents.kind,
        "entries": [{"name": k, "shape": list(np.shape(v)), "dtype": str(getattr(v, "dtype", type(v).__name__))}
                    for k, v in contents.params.items()],
        "pickled_classes": contents.classes,
        "metadata": contents.metadata,
    }
    try:
        loaded = _load_contents(contents, None, None, probe)
    except WeightFileError as exc:
        lines = [f"{path} ({contents.kind}): not recognised", f"  {exc}"]
        lines += [f"  {e['name']:<4} {str(tuple(e['shape'])):<16} {e['dtype']}" for e in out["entries"]]
        return {**out, "recognised": False, "error": str(exc), "summary": "\n".join(lines)}
    return {**out, "recognised": True, "architecture": loaded.architecture, "spec": loaded.network.spec(),
            "activation": loaded.activation, "activation_source": loaded.activation_source,
            "input_scale": loaded.input_scale, "scale_source": loaded.scale_source,
            "probe_accuracy": loaded.probe_accuracy, "notes": loaded.notes, "summary": loaded.summary()}


# ----------------------------------------------------------------------------- saving

def _version() -> str:
    try:
        from importlib.metadata import version

        return version("digitlab")
    except Exception:  # not installed as a package (running from a source tree)
        return "unknown"


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (Path, datetime)):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _write_npz(f, params: dict[str, np.ndarray], meta_json: str) -> None:
    np.savez_compressed(f, **params, **{METADATA_KEY: np.array(meta_json)})


def _write_pickle(f, params: dict[str, np.ndarray]) -> None:
    # numpy 1.x and 2.x both read numpy.core.* names, numpy 1.x cannot read numpy._core.*
    f.write(rename_globals(pickle.dumps(params, protocol=4)))


def _write_atomically(path: Path, write) -> None:
    """Write to a temporary file beside ``path``, fsync, then rename over it: readers never see half a file."""
    folder = path.parent
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise WeightFileError(f"cannot save weights to {path}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise WeightFileError(f"cannot save weights to {path}: {exc.strerror or exc}; "
                                  "any existing file there is unchanged") from exc
        raise
    try:  # make the rename itself durable; not every platform can open a folder
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def save_weights(network: Network, path: str | os.PathLike, format: str | None = None,
                 metadata: dict | None = None) -> Path:
    """Save ``network`` as ``.npz`` (DigitLab: arrays + spec JSON) or ``.pkl`` (the book's plain params dict).

    The format follows the suffix unless given. The write is atomic; a failure
    raises :class:`WeightFileError` and leaves any existing file untouched.
    """
    path = Path(path)
    fmt = format or SUFFIX_FORMATS.get(path.suffix.lower())
    if fmt not in ("npz", "pickle"):
        raise WeightFileError(f"cannot tell the format of {path}: use a .npz (DigitLab) or .pkl (book) suffix, "
                              "or format='npz'/'pickle'")
    params = {k: np.ascontiguousarray(v) for k, v in network.params.items()}
    for k, v in params.items():
        bad = int(v.size - np.count_nonzero(np.isfinite(v)))
        if bad:
            raise WeightFileError(f"not saving to {path}: {k} holds {bad} NaN or infinite values (the network "
                                  "diverged), and such a file could not be loaded")
    if fmt == "npz":
        meta = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "digitlab_version": _version(),
                "saved_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "spec": network.spec(),
                "info": network.info, "training": metadata or {}}
        try:
            meta_json = json.dumps(meta, default=_jsonable)
        except (TypeError, ValueError) as exc:
            raise WeightFileError(f"not saving to {path}: the metadata cannot be stored as JSON ({exc})") from None
        _write_atomically(path, lambda f: _write_npz(f, params, meta_json))
    else:
        _write_atomically(path, lambda f: _write_pickle(f, params))
    return path
