"""The book's two CNNs (SimpleConvNet, DeepConvNet), a small CNN for live training, and recognising book pickles.

The book's readers save ``network.params`` with ``pickle``: a dict of float64 arrays
(``W1, b1, …``) and nothing else, so the architecture has to be read off the keys and shapes.
"""
from __future__ import annotations

import numpy as np

from engine.conv import conv_output_size
from engine.network import Network, build_network

INPUT_SHAPE = (1, 28, 28)
DEEP_PADS = (1, 1, 1, 2, 1, 1)  # the book's DeepConvNet pads its fourth 3×3 convolution by 2, the others by 1


def _conv(filters: int, channels: int, size: int, stride: int = 1, pad: int = 0) -> dict:
    return {"type": "conv", "filters": int(filters), "channels": int(channels), "size": int(size),
            "stride": int(stride), "pad": int(pad)}


POOL = {"type": "pool", "size": 2, "stride": 2, "pad": 0}


def _spec(layers: list[dict]) -> dict:
    return {"input_shape": list(INPUT_SHAPE), "layers": layers, "loss": "cross-entropy", "input_scale": 1.0}


def simple_convnet_spec(filters: int = 30, size: int = 5, stride: int = 1, pad: int = 0, hidden: int = 100,
                        classes: int = 10) -> dict:
    """The book's SimpleConvNet: conv → ReLU → 2×2 max-pool → affine → ReLU → affine."""
    out = conv_output_size(INPUT_SHAPE[1], size, stride, pad)
    pooled = filters * (out // 2) ** 2
    return _spec([
        _conv(filters, INPUT_SHAPE[0], size, stride, pad), {"type": "relu"}, dict(POOL),
        {"type": "affine", "in": pooled, "out": int(hidden)}, {"type": "relu"},
        {"type": "affine", "in": int(hidden), "out": int(classes)},
    ])


def deep_convnet_spec(filters: tuple = (16, 16, 32, 32, 64, 64), hidden: int = 50, classes: int = 10) -> dict:
    """The book's DeepConvNet: six 3×3 convolutions, a pool after every second, then affine-ReLU-dropout-affine-dropout."""
    layers, channels, side = [], INPUT_SHAPE[0], INPUT_SHAPE[1]
    for i, (f, pad) in enumerate(zip(filters, DEEP_PADS)):
        layers += [_conv(f, channels, 3, 1, pad), {"type": "relu"}]
        channels, side = int(f), conv_output_size(side, 3, 1, pad)
        if i % 2 == 1:
            layers.append(dict(POOL))
            side = conv_output_size(side, 2, 2, 0)
    layers += [
        {"type": "affine", "in": channels * side * side, "out": int(hidden)}, {"type": "relu"},
        {"type": "dropout", "ratio": 0.5},
        {"type": "affine", "in": int(hidden), "out": int(classes)}, {"type": "dropout", "ratio": 0.5},
    ]
    return _spec(layers)


def small_cnn_spec() -> dict:
    """A CNN small enough to train live in the GUI: an epoch on the 4,000-image sample takes about a second."""
    return _spec([
        _conv(8, 1, 5), {"type": "relu"}, dict(POOL),
        {"type": "affine", "in": 8 * 12 * 12, "out": 64}, {"type": "relu"},
        {"type": "affine", "in": 64, "out": 10},
    ])


def make_cnn(spec: dict, seed: int | np.random.Generator | None = 0, init: str = "he", dtype=np.float32) -> Network:
    """A freshly initialised CNN from one of the specs above (or any conv/pool/dropout/affine spec)."""
    return build_network(spec, init=init, seed=seed, dtype=dtype, info={"source": "new"})


# ----- recognising the book's pickles -----

SIMPLE_KEYS = {f"{p}{i}" for p in "Wb" for i in range(1, 4)}
DEEP_KEYS = {f"{p}{i}" for p in "Wb" for i in range(1, 9)}


def _shape(params: dict, key: str) -> tuple:
    return tuple(np.shape(params[key]))


def _bad(key: str, shape: tuple, expected: str) -> ValueError:
    return ValueError(f"CNN weights: {key} has shape {shape}, expected {expected}")


def _check_conv(params: dict, i: int, channels: int, size: int | None = None) -> tuple[int, int]:
    """Validates W{i}, b{i} as filters over ``channels`` inputs; returns (filters, kernel size)."""
    w, b = _shape(params, f"W{i}"), _shape(params, f"b{i}")
    k = size or (w[2] if len(w) == 4 else 0)
    if len(w) != 4 or w[1] != channels or w[2] != k or w[3] != k or w[0] < 1 or k < 1:
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


def recognise(params: dict[str, np.ndarray]) -> dict | None:
    """``{"name": "SimpleConvNet" | "DeepConvNet", "spec": ...}`` for a book CNN pickle; None for anything without a 4-D W1.

    Raises ValueError naming the key and its shape when W1 is 4-D but the shapes do not chain.
    """
    if "W1" not in params or len(_shape(params, "W1")) != 4:
        return None
    keys = set(params)
    if keys == SIMPLE_KEYS:
        return _recognise_simple(params)
    if keys == DEEP_KEYS:
        return _recognise_deep(params)
    raise ValueError(
        f"CNN weights: W1 has shape {_shape(params, 'W1')} (a convolution) but the keys {sorted(keys)} match neither "
        f"SimpleConvNet ({sorted(SIMPLE_KEYS)}) nor DeepConvNet (W1…W8, b1…b8)"
    )
