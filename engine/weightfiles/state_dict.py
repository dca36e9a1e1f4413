"""PyTorch-style state_dicts (dotted keys, torch layout) read as DigitLab networks, and written from them.

A state_dict names each layer's arrays ``<module path>.weight`` / ``.bias`` (``0.weight``,
``fc1.weight``, ``model.net.2.weight``) with Linear weights (out, in) and Conv2d weights (out, in,
k, k); layers without parameters (ReLU, Flatten, Dropout, MaxPool2d) leave gaps in the numbering.
:func:`torch_architectures` reads the layers off the keys and shapes and lists the DigitLab networks
they can be (a CNN's padding, strides and pooling are not stored: :mod:`.state_dict_layouts`);
:func:`from_stored_spec` maps a file DigitLab wrote (its spec in the metadata) back onto that spec;
:func:`to_torch` (:mod:`.state_dict_export`) writes a network as the state_dict of an ``nn.Sequential``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from engine.errors import WeightFileError
from engine.weightfiles.architectures import INPUT_PIXELS, NUM_CLASSES
from engine.weightfiles.state_dict_export import fold, to_torch
from engine.weightfiles.state_dict_layouts import MAX_CONVS, SIDE, Stage, common_sides, count_fitting, layouts
from engine.weightfiles.state_dict_modules import Module, arrange, modules_of, natural_key
from engine.weightfiles.text import names

__all__ = ["Architecture", "from_stored_spec", "to_torch", "torch_architectures"]


@dataclass
class Architecture:
    name: str  # "MLP 784-128-64-10", "CNN conv5x5(32)-pool-conv5x5(64)-pool-fc(1024)-fc(10)"
    spec: dict  # a DigitLab spec; hidden activations {"type": "relu"} (the caller may swap them)
    params: dict  # W1, b1, … in DigitLab layout
    how: str  # one line for `digitlab inspect`: how the architecture was read


# ----------------------------------------------------------------------------- candidates


def torch_architectures(params: Mapping[str, np.ndarray], where: str) -> list[Architecture]:
    """The networks a state_dict can be, most likely first (the caller picks with a probe batch of digits).

    An MLP (Linear layers only) has one candidate; a CNN (Conv2d layers, then Linear layers) one per
    padding/stride/pooling layout its shapes allow, up to ``state_dict_layouts.MAX_CANDIDATES``.
    Raises WeightFileError naming the keys and shapes of whatever does not fit.
    """
    convs, linears, note = arrange(modules_of(params, where), where)
    if not linears:
        raise WeightFileError(f"{where}: Conv2d layers ({names(m.named for m in convs)}) without a Linear layer after "
                              "them: DigitLab reads CNNs that end in Linear layers")
    last = linears[-1]
    if last.n_out != NUM_CLASSES:
        raise WeightFileError(f"{where}: {last.named} gives {last.n_out:,} outputs but there are {NUM_CLASSES} digit "
                              "classes")
    order = f"; {note}" if note else ""
    if not convs:
        return [_mlp(linears, order)]
    return _cnns(convs, linears, order, where)


def _affine_layers(linears: list[Module], first: int) -> tuple[list[dict], dict]:
    layers, params = [], {}
    for i, m in enumerate(linears):
        if i:
            layers.append({"type": "relu"})
        layers.append({"type": "affine", "in": m.n_in, "out": m.n_out})
        params[f"W{first + i}"], params[f"b{first + i}"] = m.arrays(transpose=True)
    return layers, params


def _bias_note(modules: list[Module]) -> str:
    free = [m.short() for m in modules if m.bias is None]
    return f"; no bias in {names(free)} (zeros)" if free else ""


def _mlp(linears: list[Module], order: str) -> Architecture:
    sizes = "-".join(str(n) for n in [INPUT_PIXELS] + [m.n_out for m in linears])
    layers, params = _affine_layers(linears, 1)
    spec = {"input_shape": [INPUT_PIXELS], "layers": layers, "loss": "cross-entropy", "input_scale": 1.0}
    how = (f"Linear layers {' → '.join(m.short() for m in linears)} ({sizes}) from the keys; weights (out, in) "
           f"transposed{_bias_note(linears)}{order}")
    return Architecture(f"MLP {sizes}", spec, params, how)


def _cnns(convs: list[Module], linears: list[Module], order: str, where: str) -> list[Architecture]:
    if len(convs) > MAX_CONVS:
        raise WeightFileError(f"{where}: the state_dict has {len(convs)} Conv2d layers; DigitLab reads at most {MAX_CONVS}")
    kernels = [int(m.weight.shape[2]) for m in convs]
    channels, fc = convs[-1].n_out, linears[0]
    side = int(round((fc.n_in / channels) ** 0.5))
    found = layouts(kernels, side) if channels * side * side == fc.n_in else []
    if not found:
        sides = " or ".join(f"{channels}×{s}×{s}" for s in common_sides(kernels)) or "nothing"
        raise WeightFileError(f"{where}: the conv layers give {sides} (or other sizes with other padding, strides and "
                              f"pooling) but {fc.named} takes {fc.n_in:,} inputs")
    fitting = count_fitting(kernels, side)
    shapes = ", ".join(f"{m.short()} ({'×'.join(str(int(d)) for d in m.weight.shape)})" for m in convs)
    sizes = "-".join(str(n) for n in [fc.n_in] + [m.n_out for m in linears])
    out = []
    for rank, layout in enumerate(found, start=1):
        of = ("the only layout the shapes allow" if fitting == 1 else
              f"layout {rank} of the {fitting} the shapes allow" if fitting == len(found) else
              f"layout {rank} of the {len(found)} most common of {fitting:,} the shapes allow")
        layers, params = [], {}
        for i, (m, stage) in enumerate(zip(convs, layout), start=1):
            layers += _conv_layers(m, stage)
            params[f"W{i}"], params[f"b{i}"] = m.arrays(transpose=False)
        affine, fc_params = _affine_layers(linears, len(convs) + 1)
        params.update(fc_params)
        spec = {"input_shape": [1, SIDE, SIDE], "layers": layers + affine, "loss": "cross-entropy", "input_scale": 1.0}
        stages = ", ".join(stage.describe(m.short()) for m, stage in zip(convs, layout))
        how = (f"Conv2d {shapes}, then Linear {' → '.join(m.short() for m in linears)} ({sizes}); padding, strides "
               f"and pooling are not stored: {stages} give the {fc.n_in:,} inputs {fc.short()} takes ({of}); Linear "
               f"weights (out, in) transposed{_bias_note(convs + linears)}{order}")
        out.append(Architecture(_cnn_name(convs, layout, linears), spec, params, how))
    return out


def _conv_layers(m: Module, stage: Stage) -> list[dict]:
    f, c, k, _ = (int(d) for d in m.weight.shape)
    layers = [{"type": "conv", "filters": f, "channels": c, "size": k, "stride": stage.stride, "pad": stage.pad},
              {"type": "relu"}]
    if stage.pool is not None:
        layers.append({"type": "pool", "size": stage.pool[0], "stride": stage.pool[1], "pad": 0})
    return layers


def _cnn_name(convs: list[Module], layout: tuple, linears: list[Module]) -> str:
    parts = []
    for m, stage in zip(convs, layout):
        k = int(m.weight.shape[2])
        extra = (f", pad {stage.pad}" if stage.pad else "") + (f", stride {stage.stride}" if stage.stride != 1 else "")
        parts.append(f"conv{k}x{k}({m.n_out}{extra})")
        if stage.pool is not None:
            size, stride = stage.pool
            parts.append("pool" if stage.pool == (2, 2) else f"pool{size}x{size}/{stride}")
    parts += [f"fc({m.n_out})" for m in linears]
    return "CNN " + "-".join(parts)


# ----------------------------------------------------------------------------- files DigitLab wrote


def from_stored_spec(params: Mapping[str, np.ndarray], spec: dict, where: str) -> dict[str, np.ndarray]:
    """``W1, b1, …`` for the spec DigitLab stored beside a state_dict it wrote, every shape checked against it.

    :func:`to_torch` folds the input scaling and the book's inference dropout into the weights; this
    undoes it for the stored spec (``network.spec()`` as it was saved), so the network built from
    the spec computes what the saved one did.
    """
    modules = modules_of(params, where)
    layers = spec.get("layers") if isinstance(spec, dict) else None
    if not isinstance(layers, list) or not all(isinstance(layer, dict) for layer in layers):
        raise WeightFileError(f"{where}: the stored network description has no list of layers")
    wanted = [i for i, layer in enumerate(layers) if layer.get("type") in ("conv", "affine")]
    if len(wanted) != len(modules):
        raise WeightFileError(f"{where}: the stored network has {len(wanted)} conv/affine layers but the file holds "
                              f"{len(modules)} ({names(m.named for m in modules)})")
    by_name = sorted(modules, key=lambda m: (not m.conv, natural_key(m.path)))  # a spec's convs come first
    orders = [modules] + ([by_name] if by_name != modules else [])
    problems = [_mismatch(order, [layers[i] for i in wanted]) for order in orders]
    if all(problems):
        raise WeightFileError(f"{where}: {problems[-1]}")
    order = orders[problems.index(None)]
    scale, shift = spec.get("input_scale", 1.0), spec.get("input_shift", 0.0)
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in (scale, shift)):
        raise WeightFileError(f"{where}: the stored input_scale and input_shift must be numbers")
    arrays = {i: [m.weight.astype(np.float64), _bias(m).astype(np.float64)] for i, m in zip(wanted, order)}
    try:
        fold(layers, arrays, float(scale), float(shift), inverse=True)
    except WeightFileError as exc:
        raise WeightFileError(f"{where}: the stored network does not fit its weights: {exc}") from None
    out = {}
    for n, (i, m) in enumerate(zip(wanted, order), start=1):
        W, b = arrays[i]
        W = W.T if layers[i]["type"] == "affine" else W  # torch's (out, in) -> DigitLab's (in, out)
        out[f"W{n}"], out[f"b{n}"] = np.ascontiguousarray(W, m.weight.dtype), b.astype(m.weight.dtype)
    return out


def _bias(m: Module) -> np.ndarray:
    return m.bias if m.bias is not None else np.zeros(m.n_out, m.weight.dtype)


def _mismatch(order: list[Module], wanted: list[dict]) -> str | None:
    """What first differs between the file's layers in this order and the stored spec's, or None."""
    for i, (m, layer) in enumerate(zip(order, wanted), start=1):
        if layer["type"] == "affine":
            expected = (layer.get("out"), layer.get("in"))
            what = f"the stored network's layer {i} is affine {layer.get('in')} → {layer.get('out')}"
        else:
            k = layer.get("size")
            expected = (layer.get("filters"), layer.get("channels", m.weight.shape[1] if m.conv else None), k, k)
            what = f"the stored network's layer {i} is a {k}×{k} conv with {layer.get('filters')} filters"
        if tuple(m.weight.shape) != expected:
            return f"{m.named} does not fit: {what} (torch layout {expected})"
    return None
