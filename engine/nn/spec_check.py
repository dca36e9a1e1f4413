"""Checking a network description from outside (a weight file's metadata) before anything is built or allocated.

:func:`spec_footprint` validates every number in a ``Network.spec()``-shaped dict and says how many
array elements a forward pass needs per image, so a hostile file cannot ask for a 15 GiB batch.
"""
from __future__ import annotations

import math

from engine.errors import DigitLabError
from engine.nn.conv import conv_output_size
from engine.nn.layers import ACTIVATIONS, LOSSES
from engine.nn.network import LAYER_BUILDERS

MAX_LAYERS = 100  # the book's DeepConvNet has 22 layers
MAX_WIDTH = 1 << 20  # units of an affine layer, filters or channels of a convolution, one input dimension
MAX_WINDOW = 64  # kernel and pooling sizes and strides: an MNIST image is 28 pixels wide
MAX_PAD = 32  # a pad of 1,000 (with stride 1,000 to shrink it again) asked for 15 GiB per batch
MAX_POOL = 11  # engine.nn.conv.Pooling keeps the argmax of a window in an int8
INPUT_SCALE_RANGE = (1e-3, 1e3)  # models expect pixels in [0, 1] (1) or [0, 255] (255)
INPUT_SHIFT_RANGE = (-1e3, 1e3)  # normalised inputs: MNIST's (x - 0.1307) / 0.3081 shifts by -0.42


class SpecError(DigitLabError):
    """A network description (e.g. from a weight file's metadata) that is malformed or absurdly large."""


def _count(layer: dict, key: str, low: int, high: int, default: int | None = None) -> int:
    value = layer.get(key, default)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)  # JSON written by hand may say 5.0
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        shown = repr(value) if isinstance(value, (int, float, type(None))) and len(repr(value)) < 40 else \
            type(value).__name__
        raise SpecError(f"{layer.get('type')} layer: {key} must be a whole number from {low} to {high:,}, not {shown}")
    return value


def _layer_footprint(layer: dict, shape: tuple) -> tuple[tuple, int]:
    """(output shape, elements alive per image while the layer runs: input, scratch, output); checks every number."""
    kind = layer["type"]
    size_in = math.prod(shape)
    if kind == "affine":
        if "in" in layer and _count(layer, "in", 1, MAX_WIDTH) != size_in:
            raise SpecError(f"affine layer expects {layer['in']} inputs but receives {size_in} (shape {shape})")
        out = (_count(layer, "out", 1, MAX_WIDTH),)
        return out, size_in + out[0]
    if kind in ACTIVATIONS:
        return shape, 3 * size_in  # input, mask or intermediate, output
    if kind == "dropout":
        ratio = layer.get("ratio", 0.5)
        if not isinstance(ratio, (int, float)) or isinstance(ratio, bool) or not 0.0 <= ratio < 1.0:
            raise SpecError("dropout layer: ratio must be a number in [0, 1)")
        return shape, 2 * size_in
    if len(shape) != 3:
        raise SpecError(f"a {kind} layer needs (channels, height, width) input, got shape {shape}")
    c, h, w = shape
    if kind == "conv":
        filters = _count(layer, "filters", 1, MAX_WIDTH)
        if _count(layer, "channels", 1, MAX_WIDTH, c) != c:
            raise SpecError(f"conv layer expects {layer['channels']} input channels but receives {c}")
        size = _count(layer, "size", 1, MAX_WINDOW)
        stride, pad = _count(layer, "stride", 1, MAX_WINDOW, 1), _count(layer, "pad", 0, MAX_PAD, 0)
    else:  # pool
        size = _count(layer, "size", 1, MAX_POOL, 2)
        stride, pad = _count(layer, "stride", 1, MAX_WINDOW, size), _count(layer, "pad", 0, MAX_PAD, 0)
        filters = c
    oh, ow = conv_output_size(h, size, stride, pad), conv_output_size(w, size, stride, pad)
    if oh < 1 or ow < 1:
        raise SpecError(f"{kind} layer with size {size}, stride {stride}, pad {pad} does not fit an input of {h}×{w}")
    padded = c * (h + 2 * pad) * (w + 2 * pad) if pad else 0
    columns = c * size * size * oh * ow if kind == "conv" else 0  # im2col
    out = (filters, oh, ow)
    return out, size_in + padded + columns + math.prod(out)


def spec_footprint(spec) -> tuple[int, int]:
    """Check a spec's structure and every number in it; (peak, total) array elements per image of a forward pass.

    ``peak`` is what inference needs at its largest layer, ``total`` what training keeps across
    all layers. Raises :class:`SpecError` naming what is wrong.
    """
    if not isinstance(spec, dict):
        raise SpecError("the network description is not an object")
    shape = spec.get("input_shape")
    if not (isinstance(shape, list) and 1 <= len(shape) <= 3
            and all(isinstance(d, int) and not isinstance(d, bool) and 1 <= d <= MAX_WIDTH for d in shape)):
        raise SpecError("input_shape must be a list of one to three whole numbers")
    layers = spec.get("layers")
    if not isinstance(layers, list) or not 1 <= len(layers) <= MAX_LAYERS:
        raise SpecError(f"layers must be a list of 1 to {MAX_LAYERS} layers")
    loss = spec.get("loss", "cross-entropy")
    if not isinstance(loss, str) or loss not in LOSSES:
        raise SpecError(f"loss must be one of {', '.join(LOSSES)}")
    scale = spec.get("input_scale", 1.0)
    low, high = INPUT_SCALE_RANGE
    if not isinstance(scale, (int, float)) or isinstance(scale, bool) or not low <= scale <= high:
        raise SpecError(f"input_scale must be a number from {low:g} to {high:g} (1 or 255)")
    shift = spec.get("input_shift", 0.0)
    low, high = INPUT_SHIFT_RANGE
    if not isinstance(shift, (int, float)) or isinstance(shift, bool) or not low <= shift <= high:
        raise SpecError(f"input_shift must be a number from {low:g} to {high:g}")
    shape = tuple(shape)
    peak = total = 2 * math.prod(shape)  # the input, converted and scaled
    for i, layer in enumerate(layers, start=1):
        if not isinstance(layer, dict) or not isinstance(layer.get("type"), str) or layer["type"] not in LAYER_BUILDERS:
            raise SpecError(f"layer {i} is not one of {', '.join(LAYER_BUILDERS)}")
        try:
            shape, alive = _layer_footprint(layer, shape)
        except SpecError as exc:
            raise SpecError(f"layer {i}: {exc}") from None
        peak, total = max(peak, alive), total + alive
    return peak, total
