"""Turn a weight file's arrays into a network: the stored spec, a recognised architecture, and guesses.

:func:`load_weights` reads a file (:mod:`engine.weightfiles.read`), checks every array, finds the
architecture (stored in a DigitLab file, or read off the keys and shapes by
:mod:`engine.weightfiles.architectures`), and settles the activation and pixel scale: given > stored
in the file > guessed on a probe batch (:mod:`engine.weightfiles.probe`, reported in ``notes``).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np

from engine.errors import WeightFileError
from engine.nn.layers import ACTIVATIONS
from engine.nn.network import Network, build_network, mlp_spec
from engine.weightfiles.architectures import mlp_sizes, recognise_cnn
from engine.weightfiles.probe import choose
from engine.weightfiles.read import WeightContents, read_weight_arrays

ACTIVATION_CANDIDATES = ("sigmoid", "relu")  # the book's two; tanh is only used when asked for
SCALE_CANDIDATES = (1.0, 255.0)


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


def _build(spec: dict, params: dict, where: str, info: dict, activation: str | None, scale: float) -> Network:
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

    # the architecture: stored, a CNN recognised by engine.nn.models, or an MLP read off W1…Wn
    cnn = None
    if stored_spec is not None:
        spec = stored_spec
        base_act = _spec_activation(spec)
        name = None
    else:
        cnn = recognise_cnn(params, where)
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
        (act, scale), scores = choose(candidates, make, probe, notes)
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
