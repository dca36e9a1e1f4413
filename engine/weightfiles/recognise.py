"""Turn a weight file's arrays into a network: the stored spec, a recognised architecture, and guesses.

:func:`load_weights` reads a file (:mod:`engine.weightfiles.read`), checks every array, finds the
architecture (stored in a DigitLab file, or read off the keys and shapes by
:mod:`engine.weightfiles.architectures`), and settles the activation and pixel scale: given > stored
in the file > guessed on a probe batch (:mod:`engine.weightfiles.probe`, reported in ``notes``).
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field

import numpy as np

from engine.errors import DigitLabError, WeightFileError
from engine.nn.layers import ACTIVATIONS
from engine.nn.network import Network, SpecError, build_network, mlp_spec, spec_footprint
from engine.util import printable
from engine.weightfiles.architectures import INPUT_PIXELS, NUM_CLASSES, mlp_sizes, recognise_cnn
from engine.weightfiles.metadata import MAX_SHOWN_ITEMS, for_display
from engine.weightfiles.pickle_scan import short_error
from engine.weightfiles.probe import choose
from engine.weightfiles.read import WeightContents, read_weight_arrays
from engine.weightfiles.text import describe_key

ACTIVATION_CANDIDATES = ("sigmoid", "relu")  # the book's two; tanh is only used when asked for
SCALE_CANDIDATES = (1.0, 255.0)
EVAL_BATCH = 1000  # engine.train.evaluation evaluates in batches of 1,000 (the probe uses 500)
TRAIN_BATCH = 100  # training keeps every layer's activations for a batch (the CLI's default batch size)
MAX_LISTED = 1000  # entries listed by inspect (a weight file has a few dozen)
FORWARD_BUDGET = 2 << 30  # bytes one batch may need: the book's float64 DeepConvNet needs 1.2 GiB at 1,000 images


def _check_arrays(params: dict, where: str) -> tuple[dict[str, np.ndarray], list[str]]:
    """Every entry a finite floating-point array; integers are converted (noted), anything else refused."""
    notes = []
    out = {}
    if not params:
        raise WeightFileError(f"{where}: the file holds no weight arrays")
    for key, value in params.items():
        if not isinstance(key, str):
            raise WeightFileError(f"{where}: a weight is named {describe_key(key)}; names must be strings such as 'W1'")
        if not isinstance(value, np.ndarray):
            raise WeightFileError(f"{where}: {describe_key(key)} is a {type(value).__name__}, not a numpy array")
        key_text = describe_key(key)
        if value.dtype.kind in "iub":
            notes.append(f"{key_text} was stored as {value.dtype}; converted to float32")
            value = value.astype(np.float32)
        elif value.dtype == np.float16:
            notes.append(f"{key_text} was stored as float16; converted to float32")
            value = value.astype(np.float32)
        elif value.dtype.kind == "f" and value.dtype.itemsize > 8:  # long double: no BLAS, 100× slower matmuls
            notes.append(f"{key_text} was stored as {value.dtype}; converted to float64")
            value = value.astype(np.float64)
        elif value.dtype.kind != "f":
            raise WeightFileError(f"{where}: {key_text} has shape {value.shape} and dtype {value.dtype}; weights must be "
                                  "real numbers (float32 or float64)")
        if value.size == 0:
            raise WeightFileError(f"{where}: {key_text} has shape {value.shape}: it is empty")
        bad = int(value.size - np.count_nonzero(np.isfinite(value)))
        if bad:
            raise WeightFileError(f"{where}: {key_text} (shape {value.shape}) holds {bad} NaN or infinite value"
                                  f"{'s' if bad > 1 else ''}: the network diverged before it was saved")
        out[key] = value
    return out, notes


def _build(spec: dict, params: dict, where: str, info: dict, activation: str | None, scale: float) -> Network:
    try:
        network = build_network(_with(spec, activation, scale), params=params, info=info)
        scores = network.scores(np.zeros((1, INPUT_PIXELS), dtype=np.float32))
    except (ValueError, KeyError, TypeError, IndexError, AttributeError, ArithmeticError) as exc:
        raise WeightFileError(f"{where}: the weights do not fit the network they describe ({printable(exc)})") from None
    # one blank image through it: arrays of the wrong rank or length pass the spec's checks but not this
    if scores.shape != (1, NUM_CLASSES):
        raise WeightFileError(f"{where}: for one image the network outputs an array of shape {scores.shape}; a digit "
                              f"classifier outputs (1, {NUM_CLASSES}), one score per digit")
    return network


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
    """A DigitLab file's spec has the shape ``Network.spec()`` gives, sane numbers, and takes a 28×28 image."""
    try:
        spec_footprint(spec)
    except SpecError as exc:
        raise WeightFileError(f"{where}: the network description stored in the file is damaged ({exc})") from None
    if math.prod(spec["input_shape"]) != INPUT_PIXELS:
        raise WeightFileError(f"{where}: the network stored in the file takes input of shape {spec['input_shape']}, "
                              f"not a 28×28 image ({INPUT_PIXELS} pixels)")


def _check_memory(spec: dict, params: dict, where: str) -> None:
    """Refuse a network whose forward pass on a batch would need more than ``FORWARD_BUDGET`` bytes."""
    try:
        peak, total = spec_footprint(spec)
    except SpecError as exc:
        raise WeightFileError(f"{where}: {exc}") from None
    itemsize = max([4] + [v.dtype.itemsize for v in params.values()])
    need = max(peak * EVAL_BATCH, 2 * total * TRAIN_BATCH) * itemsize  # training: activations and their gradients
    if need > FORWARD_BUDGET:
        raise WeightFileError(f"{where}: refused: running this network on a batch of {EVAL_BATCH:,} images would "
                              f"need {need / (1 << 30):,.1f} GiB (its layers' sizes, pads and strides), more than the "
                              f"{FORWARD_BUDGET / (1 << 30):g} GiB limit")


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
            lines.append(f"  saved {printable(self.metadata['saved_at'], 60)} by DigitLab "
                         f"{printable(self.metadata.get('digitlab_version', '?'), 60)}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _guarded(path, work):
    """Run ``work()``; whatever a file makes go wrong comes out as one :class:`WeightFileError` line."""
    try:
        return work()
    except DigitLabError:
        raise
    except MemoryError:
        raise WeightFileError(f"{path}: refused: reading it needed more memory than there is") from None
    except RecursionError:
        raise WeightFileError(f"{path}: refused: its data is nested too deeply") from None
    except Exception as exc:  # a case no check above foresaw: still one line, naming the file
        raise WeightFileError(f"{path}: cannot be used ({short_error(exc)}); if the file is a sound weight file, "
                              "please report this") from None


def load_weights(path: str | os.PathLike, activation: str | None = None, input_scale: float | None = None,
                 probe: tuple[np.ndarray, np.ndarray] | None = None) -> LoadedWeights:
    """Load a weight file and build its network; guess what the file does not say (see the module doc).

    Every problem with the file raises :class:`WeightFileError` (one line, naming the file).
    """
    if activation is not None and activation not in ACTIVATIONS:
        raise WeightFileError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")
    if input_scale is not None and not (np.isfinite(input_scale) and input_scale > 0):
        raise WeightFileError(f"input_scale must be a positive number such as 1 or 255, not {input_scale!r}")
    return _guarded(path, lambda: _load_contents(read_weight_arrays(path), activation, input_scale, probe))


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
    _check_memory(spec, params, where)

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
    Text from the file (names, classes, metadata) is shortened; escaping control characters
    for a terminal is left to the caller (``engine.util.printable``).
    """
    return _guarded(path, lambda: _inspect(path, probe))


def _inspect(path, probe) -> dict:
    contents = read_weight_arrays(path)
    entries = [{"name": describe_key(k), "shape": list(np.shape(v)), "dtype": str(getattr(v, "dtype", type(v).__name__))}
               for k, v in list(contents.params.items())[:MAX_LISTED]]
    out = {
        "path": str(path),
        "kind": contents.kind,
        "entries": entries,
        "pickled_classes": contents.classes,
        "metadata": for_display(contents.metadata),
    }
    if len(contents.params) > MAX_LISTED:
        out["entries_not_listed"] = len(contents.params) - MAX_LISTED
    try:
        loaded = _load_contents(contents, None, None, probe)
    except WeightFileError as exc:
        lines = [f"{path} ({contents.kind}): not recognised", f"  {exc}"]
        lines += [f"  {e['name']:<4} {str(tuple(e['shape'])):<16} {e['dtype']}" for e in entries[:MAX_SHOWN_ITEMS]]
        if len(contents.params) > MAX_SHOWN_ITEMS:
            lines.append(f"  … {len(contents.params) - MAX_SHOWN_ITEMS:,} more entries")
        return {**out, "recognised": False, "error": str(exc), "summary": "\n".join(lines)}
    return {**out, "recognised": True, "architecture": loaded.architecture, "spec": loaded.network.spec(),
            "activation": loaded.activation, "activation_source": loaded.activation_source,
            "input_scale": loaded.input_scale, "scale_source": loaded.scale_source,
            "probe_accuracy": loaded.probe_accuracy, "notes": loaded.notes, "summary": loaded.summary()}
