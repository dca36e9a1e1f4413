"""Which network a flat dict of ``W1, b1, …`` arrays describes, read off its keys and shapes.

The book's readers save ``network.params`` with ``pickle``: a dict of float64 arrays and nothing
else, so the architecture has to be inferred: an MLP from ``W1…Wn``/``b1…bn`` whose shapes chain,
or the book's SimpleConvNet/DeepConvNet from a 4-D ``W1``. Every mismatch is named by key and shape.
"""
from __future__ import annotations

import re

import numpy as np

from engine.errors import WeightFileError
from engine.nn.conv import conv_output_size
from engine.nn.models import DEEP_PADS, INPUT_SHAPE, deep_convnet_spec, simple_convnet_spec
from engine.weightfiles.text import names

INPUT_PIXELS = 784
NUM_CLASSES = 10
_PARAM_NAME = re.compile(r"([A-Za-z_]+?)(\d{1,6})")  # W1…W999999: a longer number is no layer


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
        raise WeightFileError(f"{where}: no W1, W2, … entries (found {names(sorted(params))})")
    n = len(w_idx)
    if w_idx != list(range(1, n + 1)):
        raise WeightFileError(f"{where}: layer weights are numbered {names(f'W{i}' for i in w_idx)}; expected "
                              f"W1…W{n} without gaps")
    extra = sorted(set(params) - {f"W{i}" for i in w_idx} - {f"b{i}" for i in w_idx})
    if extra:
        raise WeightFileError(f"{where}: entries {names(extra)} do not belong to an MLP of W1…W{n}, b1…b{n} "
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


# ----- the book's CNNs

SIMPLE_KEYS = {f"{p}{i}" for p in "Wb" for i in range(1, 4)}
DEEP_KEYS = {f"{p}{i}" for p in "Wb" for i in range(1, 9)}


def _shape(params: dict, key: str) -> tuple:
    return tuple(np.shape(params[key]))


def _bad(key: str, shape: tuple, expected: str) -> WeightFileError:
    return WeightFileError(f"CNN weights: {key} has shape {shape}, expected {expected}")


def _check_conv(params: dict, i: int, channels: int, size: int | None = None) -> tuple[int, int]:
    """Validates W{i}, b{i} as filters over ``channels`` inputs; returns (filters, kernel size)."""
    w, b = _shape(params, f"W{i}"), _shape(params, f"b{i}")
    k = size or (w[2] if len(w) == 4 else 0)
    if len(w) != 4 or w[1] != channels or w[2] != k or w[3] != k or w[0] < 1 or not 1 <= k <= INPUT_SHAPE[1]:
        raise _bad(f"W{i}", w, f"(filters, {channels}, {k or 'k'}, {k or 'k'})")
    if b != (w[0],):
        raise _bad(f"b{i}", b, f"({w[0]},)")
    return w[0], k


def _check_affine(params: dict, i: int, n_in: int | None, n_out: int | None = None) -> int:
    """Validates W{i}, b{i} as an affine layer from ``n_in`` inputs; returns its output count."""
    w, b = _shape(params, f"W{i}"), _shape(params, f"b{i}")
    if len(w) != 2 or (n_in is not None and w[0] != n_in) or (n_out is not None and w[1] != n_out) or w[1] < 2:
        raise _bad(f"W{i}", w, f"({n_in if n_in is not None else 'inputs'}, {n_out or 'outputs'})")
    if b != (w[1],):
        raise _bad(f"b{i}", b, f"({w[1]},)")
    return w[1]


def _simple_conv_settings(size: int, pooled_inputs: int, filters: int) -> tuple[int, int] | None:
    """(stride, pad) under which the conv and 2×2 pool give exactly ``pooled_inputs`` values; stride 1, pad 0 first."""
    side = INPUT_SHAPE[1]
    for stride in range(1, size + 1):
        for pad in range(0, size):
            if (side + 2 * pad - size) % stride:
                continue  # the book's im2col needs windows that tile exactly
            out = conv_output_size(side, size, stride, pad)
            if out >= 2 and out % 2 == 0 and filters * (out // 2) ** 2 == pooled_inputs:
                return stride, pad
    return None


def _recognise_simple(params: dict) -> dict:
    filters, size = _check_conv(params, 1, INPUT_SHAPE[0])
    w2 = _shape(params, "W2")
    if len(w2) != 2:
        raise _bad("W2", w2, "(pooled inputs, hidden)")
    settings = _simple_conv_settings(size, w2[0], filters)
    if settings is None:
        raise _bad("W2", w2, f"a first dimension that {filters} filters of {size}×{size} over 28×28, "
                   "then 2×2 pooling, produce (4320 for the book's 30×5×5)")
    hidden = _check_affine(params, 2, w2[0])
    classes = _check_affine(params, 3, hidden)
    stride, pad = settings
    return {"name": "SimpleConvNet",
            "spec": simple_convnet_spec(filters, size, stride, pad, hidden, classes)}


def _recognise_deep(params: dict) -> dict:
    filters, channels, side = [], INPUT_SHAPE[0], INPUT_SHAPE[1]
    for i, pad in enumerate(DEEP_PADS, start=1):
        f, _ = _check_conv(params, i, channels, 3)
        filters.append(f)
        channels, side = f, conv_output_size(side, 3, 1, pad)
        if i % 2 == 0:
            side = conv_output_size(side, 2, 2, 0)
    hidden = _check_affine(params, 7, channels * side * side)
    classes = _check_affine(params, 8, hidden)
    return {"name": "DeepConvNet", "spec": deep_convnet_spec(tuple(filters), hidden, classes)}


def recognise_cnn(params: dict[str, np.ndarray], where: str = "weights") -> dict | None:
    """``{"name": "SimpleConvNet" | "DeepConvNet", "spec": ...}`` for a book CNN pickle; None for anything without a 4-D W1.

    Raises WeightFileError naming the key and its shape when W1 is 4-D but the shapes do not chain.
    """
    try:
        return _recognise_book_cnn(params)
    except WeightFileError as exc:
        raise WeightFileError(f"{where}: {exc}") from None


def _recognise_book_cnn(params: dict[str, np.ndarray]) -> dict | None:
    if "W1" not in params or len(_shape(params, "W1")) != 4:
        return None
    keys = set(params)
    if keys == SIMPLE_KEYS:
        return _recognise_simple(params)
    if keys == DEEP_KEYS:
        return _recognise_deep(params)
    raise WeightFileError(
        f"CNN weights: W1 has shape {_shape(params, 'W1')} (a convolution) but the keys {names(sorted(keys))} match neither "
        f"SimpleConvNet ({sorted(SIMPLE_KEYS)}) nor DeepConvNet (W1…W8, b1…b8)"
    )
