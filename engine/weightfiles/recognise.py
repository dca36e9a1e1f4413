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

from engine.errors import DigitLabError, WeightFileError
from engine.nn.layers import ACTIVATIONS
from engine.nn.network import Network, build_network, mlp_spec
from engine.util import printable
from engine.weightfiles.architectures import INPUT_PIXELS, NUM_CLASSES, mlp_sizes, recognise_cnn
from engine.weightfiles.checks import check_arrays, check_memory, check_stored_spec
from engine.weightfiles.metadata import MAX_SHOWN_ITEMS, for_display
from engine.weightfiles.pickle_scan import short_error
from engine.weightfiles.probe import BOOK_PIXELS, TORCH_PIXELS, Candidate, choose, pixels_name
from engine.weightfiles.read import WeightContents, read_weight_arrays
from engine.weightfiles.state_dict import Architecture, from_stored_spec, torch_architectures
from engine.weightfiles.text import describe_key

ACTIVATION_CANDIDATES = ("sigmoid", "relu")  # the book's two; tanh is only used when asked for
TORCH_ACTIVATIONS = ("relu", "sigmoid", "tanh")  # PyTorch users mostly write nn.ReLU(); the others are cheap to try
MAX_LISTED = 1000  # entries listed by inspect (a weight file has a few dozen)


def _build(spec: dict, params: dict, where: str, info: dict, cand: Candidate) -> Network:
    try:
        network = build_network(_with(spec, cand.activation, cand.scale, cand.shift), params=params, info=info)
        scores = network.scores(np.zeros((1, INPUT_PIXELS), dtype=np.float32))
    except (ValueError, KeyError, TypeError, IndexError, AttributeError, ArithmeticError) as exc:
        raise WeightFileError(f"{where}: the weights do not fit the network they describe ({printable(exc)})") from None
    # one blank image through it: arrays of the wrong rank or length pass the spec's checks but not this
    if scores.shape != (1, NUM_CLASSES):
        raise WeightFileError(f"{where}: for one image the network outputs an array of shape {scores.shape}; a digit "
                              f"classifier outputs (1, {NUM_CLASSES}), one score per digit")
    return network


def _with(spec: dict, activation: str | None, scale: float, shift: float = 0.0) -> dict:
    """The spec with its hidden activation replaced and its input scale and shift set."""
    spec = json.loads(json.dumps(spec))
    if activation is not None:
        for layer in spec["layers"]:
            if layer.get("type") in ACTIVATIONS:
                layer["type"] = activation
    spec["input_scale"] = float(scale)
    spec.pop("input_shift", None)
    if shift:
        spec["input_shift"] = float(shift)
    return spec


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
    activation_source: str  # "file" | "guessed" | "given" | "assumed"
    input_scale: float
    scale_source: str  # "file" | "guessed" | "given"
    probe_accuracy: dict = field(default_factory=dict)  # candidate -> accuracy (or diversity), when guessed
    notes: list = field(default_factory=list)
    metadata: dict = field(default_factory=dict)  # a DigitLab file's JSON: spec, info, training settings, …
    input_shift: float = 0.0  # added after the scale: PyTorch's normalisation (x - mean) / std
    how: str = ""  # how the architecture was read: "stored in the file", "Linear layers fc1 → fc2 …", …

    def summary(self) -> str:
        lines = [f"{self.architecture}", f"  from {self.path} ({self.kind})"]
        for name, arr in self.network.params.items():
            lines.append(f"  {name:<4} {str(tuple(arr.shape)):<16} {arr.dtype}")
        how = {"file": "as stored in the file", "guessed": "guessed", "given": "as given", "assumed": "assumed"}
        if self.how:
            lines.append(f"  architecture: {self.how}")
        lines.append(f"  activation: {self.activation or 'none'} ({how.get(self.activation_source, '')})")
        lines.append(f"  expects pixels {pixels_name(self.input_scale, self.input_shift)} "
                     f"({how.get(self.scale_source, '')})")
        if isinstance(self.metadata.get("torch_module"), str):
            lines.append(f"  in PyTorch: {printable(self.metadata['torch_module'], 400)}")
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
                 probe: tuple[np.ndarray, np.ndarray] | None = None, input_shift: float | None = None) -> LoadedWeights:
    """Load a weight file and build its network; guess what the file does not say (see the module doc).

    Every problem with the file raises :class:`WeightFileError` (one line, naming the file).
    """
    if activation is not None and activation not in ACTIVATIONS:
        raise WeightFileError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")
    if input_scale is not None and not (np.isfinite(input_scale) and input_scale > 0):
        raise WeightFileError(f"input_scale must be a positive number such as 1 or 255, not {input_scale!r}")
    if input_shift is not None and not np.isfinite(input_shift):
        raise WeightFileError(f"input_shift must be a finite number such as -0.4242, not {input_shift!r}")
    return _guarded(path, lambda: _load_contents(read_weight_arrays(path), activation, input_scale, probe,
                                                 input_shift))


def _architectures(contents: WeightContents, params: dict, stored_spec: dict | None,
                   where: str) -> tuple[list[Architecture], bool]:
    """The networks the arrays may describe, most likely first, and whether their activations are settled.

    Stored in the file (DigitLab's metadata), the book's CNNs or an MLP read off ``W1…Wn``, or a
    PyTorch-style state_dict whose layers are read off its keys (:mod:`engine.weightfiles.state_dict`).
    """
    if stored_spec is not None:
        if contents.layout == "torch":
            params = from_stored_spec(params, stored_spec, where)
        return [Architecture("", stored_spec, params, "stored in the file (DigitLab's description of the network)")], True
    if contents.layout == "torch":
        return torch_architectures(params, where), False
    cnn = recognise_cnn(params, where)
    if cnn is not None:
        how = f"the book's {cnn['name']}, recognised from the keys and the 4-D shape of W1"
        return [Architecture(cnn["name"], cnn["spec"], params, how)], True
    sizes, params = mlp_sizes(params, where)
    how = f"an MLP read off the shapes of W1…W{len(sizes) - 1}"
    return [Architecture("", mlp_spec(sizes, "relu"), params, how)], False


def _activations(contents: WeightContents, archs: list[Architecture], settled: bool,
                 activation: str | None) -> tuple[list[str | None], str]:
    """The hidden activations to try and where they come from: given > the file > guessed by probe."""
    if activation is not None:
        return [activation], "given"
    if settled:
        return [_spec_activation(archs[0].spec)], "file"
    if contents.activation is not None:
        return [contents.activation], "file"
    if all(len(a.spec["layers"]) == 1 for a in archs):
        return [None], "file"  # a single affine layer has no hidden activation
    if contents.layout == "torch":
        if any(layer["type"] == "conv" for layer in archs[0].spec["layers"]):
            return ["relu"], "assumed"  # nearly every PyTorch CNN; trying three would triple the probe's work
        return list(TORCH_ACTIVATIONS), "guessed"
    return list(ACTIVATION_CANDIDATES), "guessed"


def _pixels(contents: WeightContents, stored_spec: dict | None, input_scale, input_shift) -> tuple[list, str]:
    """The (scale, shift) pixel conventions to try and where they come from: given > the file > guessed."""
    if input_scale is not None or input_shift is not None:
        return [(float(1.0 if input_scale is None else input_scale), float(input_shift or 0.0))], "given"
    if stored_spec is not None:
        return [(float(stored_spec.get("input_scale", 1.0)), float(stored_spec.get("input_shift", 0.0)))], "file"
    if contents.input_scale is not None:
        return [(float(contents.input_scale), 0.0)], "file"
    return list(TORCH_PIXELS if contents.layout == "torch" else BOOK_PIXELS), "guessed"


def _load_contents(contents: WeightContents, activation, input_scale, probe, input_shift=None) -> LoadedWeights:
    where = contents.path
    params, notes = check_arrays(contents.params, where)
    notes = contents.notes + notes
    meta = contents.metadata
    stored_spec = meta.get("spec") if isinstance(meta.get("spec"), dict) else None
    if stored_spec is not None:
        check_stored_spec(stored_spec, where)
    info = {"source": where, "kind": contents.kind}
    if isinstance(meta.get("info"), dict):
        info = {**meta["info"], **info}

    archs, settled = _architectures(contents, params, stored_spec, where)
    for arch in archs:
        check_memory(arch.spec, arch.params, where)
    acts, act_source = _activations(contents, archs, settled, activation)
    pixels, scale_source = _pixels(contents, stored_spec, input_scale, input_shift)

    def make(cand: Candidate) -> Network:
        arch = archs[cand.arch]
        return _build(arch.spec, arch.params, where, {**info, "activation": cand.activation}, cand)

    label = len(archs) > 1
    candidates = [Candidate(a, scale, shift, i, arch.name if label else "")
                  for i, arch in enumerate(archs) for a in acts for scale, shift in pixels]
    scores: dict = {}
    if len(candidates) > 1:
        chosen, scores = choose(candidates, make, probe, notes, "loss" if contents.layout == "torch" else "book")
    else:
        chosen = candidates[0]
    arch = archs[chosen.arch]
    if act_source == "assumed":
        notes.append("activation relu assumed (a PyTorch file does not store it; nearly every CNN uses ReLU): "
                     "choose another with --activation (activation= in Python)")
    how = arch.how if len(archs) == 1 else f"{arch.how}; the probe chose it among {len(archs)} layouts"
    act, scale, shift = chosen.activation, chosen.scale, chosen.shift
    network = make(chosen)
    if stored_spec is not None and network.spec()["layers"] != _with(stored_spec, act, scale)["layers"]:
        raise WeightFileError(f"{where}: the arrays do not match the network description stored with them "
                              f"(stored {json.dumps(stored_spec['layers'])[:160]}, arrays give "
                              f"{json.dumps(network.spec()['layers'])[:160]})")
    act = act or _spec_activation(network.spec())
    described = network.describe()
    if all(layer.get("type") in ("affine", *ACTIVATIONS) for layer in network.spec()["layers"]):
        architecture = described.split(" ")[0] + " MLP" + (f", {act}" if act else "")
    elif arch.name and not settled:  # read off a state_dict: the name spells out every layer already
        architecture = arch.name + (f", {act}" if act else "")
    elif arch.name:
        architecture = f"{arch.name} ({described})"
    else:
        architecture = described
    return LoadedWeights(network, where, contents.kind, architecture, act, act_source, float(scale), scale_source,
                         scores, notes, dict(meta), float(shift), how)


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
            "input_scale": loaded.input_scale, "input_shift": loaded.input_shift, "scale_source": loaded.scale_source,
            "how": loaded.how,
            "probe_accuracy": loaded.probe_accuracy, "notes": loaded.notes, "summary": loaded.summary()}
