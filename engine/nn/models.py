"""The book's two CNNs (SimpleConvNet, DeepConvNet), a small CNN for live training, and recognising book pickles.

The book's readers save ``network.params`` with ``pickle``: a dict of float64 arrays
(``W1, b1, …``) and nothing else, so the architecture has to be read off the keys and shapes.
"""
from __future__ import annotations

import numpy as np

from engine.nn.conv import conv_output_size
from engine.nn.network import Network, build_network, mlp_spec

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


def lenet_spec(filters: tuple = (8, 16), hidden: int = 100, classes: int = 10) -> dict:
    """A LeNet-style CNN: two 5×5 convolutions, each followed by ReLU and a 2×2 max-pool, then affine-ReLU-affine.

    The network of the 99%-in-half-a-minute recipe: about as much work per image as SimpleConvNet,
    but the second convolution sees shapes (strokes, corners) the first one found.
    """
    f1, f2 = (int(f) for f in filters)
    return _spec([
        _conv(f1, 1, 5), {"type": "relu"}, dict(POOL),  # 28 → 24 → 12
        _conv(f2, f1, 5), {"type": "relu"}, dict(POOL),  # 12 → 8 → 4
        {"type": "affine", "in": f2 * 4 * 4, "out": int(hidden)}, {"type": "relu"},
        {"type": "affine", "in": int(hidden), "out": int(classes)},
    ])


# what a person can train from scratch, in the window or with --architecture; every one but the MLP is fixed
CNN_SPECS = {"small-cnn": small_cnn_spec, "lenet": lenet_spec, "simple-convnet": simple_convnet_spec,
             "deep-convnet": deep_convnet_spec}
ARCHITECTURES = ("mlp", *CNN_SPECS)


def architecture_spec(name: str, hidden=(100,), activation: str = "relu", loss: str = "cross-entropy") -> dict:
    """The spec of a trainable architecture: an MLP 784-hidden…-10 (``hidden``, ``activation``) or one of the CNNs."""
    if name == "mlp":
        return mlp_spec([784, *hidden, 10], activation, loss)
    if name in CNN_SPECS:
        return {**CNN_SPECS[name](), "loss": loss}
    raise ValueError(f"unknown architecture {name!r}; choose one of {', '.join(ARCHITECTURES)}")


def make_cnn(spec: dict, seed: int | np.random.Generator | None = 0, init: str = "he", dtype=np.float32) -> Network:
    """A freshly initialised CNN from one of the specs above (or any conv/pool/dropout/affine spec)."""
    return build_network(spec, init=init, seed=seed, dtype=dtype, info={"source": "new"})
