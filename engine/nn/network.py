"""Networks as a list of layers plus a loss layer, with the book's flat ``W1, b1, W2, b2, …`` params.

The parameter arrays in ``params`` are the layers' own arrays: optimizers update
them in place, so the book's ``optimizer.update(network.params, grads)`` works.
They are views of one flat buffer (and the gradients of another), handed out as
``FlatParams`` so that an optimizer updates the whole network in one go.
A network is described by ``spec()`` (plain JSON-able data) and rebuilt by ``build_network``.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from engine.errors import DigitLabError
from engine.nn.conv import CONV_BUILDERS, PARAMETRIC_CONV, conv_output_size, running_order
from engine.nn.functions import softmax, to_indices
from engine.nn.initializers import default_init, init_weight
from engine.nn.layers import ACTIVATIONS, LOSSES, Affine, Layer
from engine.nn.optimizers import FlatParams


def _build_affine(spec: dict, in_shape: tuple, weights, init: str, rng, dtype):
    n_in = int(np.prod(in_shape))
    if spec.get("in", n_in) != n_in:
        raise ValueError(f"affine layer expects {spec['in']} inputs but receives {n_in} (shape {in_shape})")
    n_out = int(spec["out"])
    if weights is None:
        weights = (init_weight((n_in, n_out), n_in, init, rng, dtype), np.zeros(n_out, dtype=dtype))
    return Affine(*weights)


def _build_plain(cls) -> Callable:
    return lambda spec, in_shape, weights, init, rng, dtype: cls()


# type name -> builder(spec, input_shape, weights-or-None, init, rng, dtype) -> Layer
LAYER_BUILDERS: dict[str, Callable] = {"affine": _build_affine}
LAYER_BUILDERS.update({name: _build_plain(cls) for name, cls in ACTIVATIONS.items()})
LAYER_BUILDERS.update(CONV_BUILDERS)  # conv, pool, dropout
PARAM_KEYS = ("W", "b")  # what a parametric layer holds, in file order


def build_layer(spec: dict, in_shape: tuple, weights=None, init: str = "he", rng=None, dtype=np.float32) -> Layer:
    try:
        builder = LAYER_BUILDERS[spec["type"]]
    except KeyError:
        raise ValueError(f"unknown layer type {spec.get('type')!r}") from None
    return builder(spec, in_shape, weights, init, rng, dtype)


class Network:
    """A feed-forward classifier: layers, then softmax with a loss."""

    def __init__(
        self,
        layers: list[Layer],
        loss: str = "cross-entropy",
        input_shape: tuple = (784,),
        input_scale: float = 1.0,
        info: dict | None = None,
    ) -> None:
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")
        self.layers = list(layers)
        self._running = running_order(self.layers)
        self.loss_name = loss
        self.loss_layer = LOSSES[loss]()
        self.input_shape = tuple(int(d) for d in input_shape)
        self.input_scale = float(input_scale)  # 255.0 for models trained on raw pixel values
        self.info = dict(info or {})
        self.grads: dict[str, np.ndarray] = {}
        if self.layers and hasattr(self.layers[0], "need_dx"):
            self.layers[0].need_dx = False  # nothing consumes the gradient w.r.t. the input image
        self._names = []  # (param name, layer, key)
        index = 0
        for layer in self.layers:
            if layer.params:
                index += 1
                for key in layer.params:
                    self._names.append((f"{key}{index}", layer, key))
        self._flat_params = self._flat_grads = None
        flat = FlatParams.gather({name: layer.params[key] for name, layer, key in self._names})
        if flat is not None:  # the layers now keep views of one buffer: see FlatParams
            self._flat_params, self._flat_grads = flat, FlatParams.gather(flat, zeros=True)
            for name, layer, key in self._names:
                layer.params[key], layer.grads[key] = flat[name], self._flat_grads[name]

    def set_loss(self, loss: str) -> None:
        """Minimise ``loss`` from now on (a book-style weight file does not say which loss it was trained with)."""
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")
        self.loss_name, self.loss_layer = loss, LOSSES[loss]()

    # ----- parameters -----
    @property
    def params(self) -> dict[str, np.ndarray]:
        params = {name: layer.params[key] for name, layer, key in self._names}
        flat = self._flat_params
        if flat is not None and all(params[name] is view for name, view in flat.items()):
            return FlatParams(flat.flat, params, flat.layout)
        return params  # a layer's array was replaced: no longer one buffer

    def set_params(self, params: dict[str, np.ndarray]) -> None:
        """Copy values into the existing arrays; names and shapes must match exactly."""
        own = self.params
        missing = sorted(set(own) - set(params))
        extra = sorted(set(params) - set(own))
        if missing or extra:
            raise ValueError(f"parameter names differ: missing {missing}, unexpected {extra}")
        for name, arr in own.items():
            new = np.asarray(params[name])
            if new.shape != arr.shape:
                raise ValueError(f"parameter {name} has shape {new.shape}, expected {arr.shape}")
        for name, arr in own.items():
            arr[...] = params[name]

    @property
    def num_classes(self) -> int:
        return int(self._names[-1][1].params["W"].shape[-1]) if self._names else 0

    @property
    def dtype(self):
        return self._names[0][1].params["W"].dtype if self._names else np.dtype(np.float32)

    def spec(self) -> dict:
        return {
            "input_shape": list(self.input_shape),
            "layers": [layer.spec() for layer in self.layers],
            "loss": self.loss_name,
            "input_scale": self.input_scale,
        }

    def describe(self) -> str:
        """One line such as ``784-100-10 relu`` for an MLP, else the layer types."""
        specs = [layer.spec() for layer in self.layers]
        if all(s["type"] in ("affine", *ACTIVATIONS) for s in specs):
            sizes = [str(int(np.prod(self.input_shape)))] + [str(s["out"]) for s in specs if s["type"] == "affine"]
            acts = sorted({s["type"] for s in specs if s["type"] != "affine"})
            return "-".join(sizes) + (" " + "/".join(acts) if acts else "")
        return " → ".join(s["type"] for s in specs)

    def copy(self, dtype=None) -> "Network":
        params = {k: np.array(v, dtype=dtype or v.dtype) for k, v in self.params.items()}
        return build_network(self.spec(), params=params, info=self.info)

    # ----- computation -----
    def _prepare(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        size = math.prod(self.input_shape)
        if x.size % size:
            raise ValueError(f"input of shape {x.shape} does not fit this network's input {self.input_shape}")
        if x.shape[1:] != self.input_shape:
            x = x.reshape((-1,) + self.input_shape)
        if x.dtype.kind != "f":
            x = x.astype(np.float32)
        if self.input_scale != 1.0:
            x = x * np.asarray(self.input_scale, dtype=x.dtype)
        return x

    def scores(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        """Scores (logits) for a batch. Inference keeps no state (thread-safe) and runs a long batch in slices."""
        out = self._prepare(x)
        step = max(1, len(out))
        if not train and len(out) > 1:
            # slices whose largest activation holds about 4M values: a CNN's feature maps stay tens of MB
            # (not the GBs of 10,000 images at once), an MLP still gets large matrix products
            shape, largest = self.input_shape, 1
            for layer in self._running:
                shape = layer.output_shape(shape)
                largest = max(largest, math.prod(shape))
            step = max(1, (1 << 22) // largest)
        parts = []
        for start in range(0, max(1, len(out)), step):
            part = out[start : start + step]
            for layer in self._running:
                part = layer.forward(part, train)
            parts.append(part)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities: (10,) for one image, (N, 10) for a batch. Keeps no state (thread-safe)."""
        x = np.asarray(x)
        batched = x.ndim == len(self.input_shape) + 1 and x.shape[1:] == self.input_shape
        probs = softmax(self.scores(x))
        return probs[0] if x.size == int(np.prod(self.input_shape)) and not batched else probs

    def loss_of_scores(self, scores: np.ndarray, t: np.ndarray) -> float:
        """The loss this network trains with, computed from its scores (logits); keeps no state."""
        return self.loss_layer.function(scores, t)

    def loss(self, x: np.ndarray, t: np.ndarray, train: bool = True) -> float:
        return self.loss_layer.forward(self.scores(x, train), np.asarray(t))

    def gradient(self, x: np.ndarray, t: np.ndarray) -> float:
        """Backprop: returns the loss and leaves the gradients in ``self.grads``."""
        loss = self.loss(x, t, train=True)
        dout = self.loss_layer.backward(1.0)
        for layer in reversed(self._running):
            dout = layer.backward(dout)
        grads = self._flat_grads
        if grads is None:
            self.grads = {name: layer.grads[key] for name, layer, key in self._names}
            return loss
        for name, layer, key in self._names:
            if layer.grads[key] is not grads[name]:  # a layer that hands back a new array: copy it into place
                grads[name][...] = layer.grads[key]
        self.grads = grads
        return loss

    def evaluate(self, x: np.ndarray, t: np.ndarray, batch_size: int = 1000) -> tuple[float, float]:
        """(mean loss, accuracy) over a dataset, in batches to bound memory."""
        n = len(x)
        if n == 0:
            raise ValueError("cannot evaluate on an empty dataset")
        idx = to_indices(np.asarray(t))
        total_loss = 0.0
        correct = 0
        for i in range(0, n, batch_size):
            s = self.scores(x[i : i + batch_size])
            ti = idx[i : i + batch_size]
            total_loss += self.loss_of_scores(s, ti) * len(ti)
            correct += int(np.sum(s.argmax(axis=1) == ti))
        return total_loss / n, correct / n

    def accuracy(self, x: np.ndarray, t: np.ndarray, batch_size: int = 1000) -> float:
        return self.evaluate(x, t, batch_size)[1]


def build_network(
    spec: dict,
    params: dict[str, np.ndarray] | None = None,
    init: str | None = None,
    seed: int | np.random.Generator | None = 0,
    dtype=np.float32,
    info: dict | None = None,
) -> Network:
    """Build from ``Network.spec()`` data; with ``params`` their values are used (names checked; copied into the network's buffer)."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    shape = tuple(int(d) for d in spec["input_shape"])
    layers = []
    index = 0
    acts = [s["type"] for s in spec["layers"] if s["type"] in ACTIVATIONS]
    init = init or default_init(acts[0] if acts else "relu")
    for layer_spec in spec["layers"]:
        weights = None
        builder = LAYER_BUILDERS.get(layer_spec.get("type"))
        if builder is None:
            raise ValueError(f"unknown layer type {layer_spec.get('type')!r}")
        is_param = layer_spec["type"] in PARAMETRIC
        if is_param:
            index += 1
            if params is not None:
                names = [f"{k}{index}" for k in PARAM_KEYS]
                missing = [n for n in names if n not in params]
                if missing:
                    raise ValueError(f"weights lack {', '.join(missing)} for layer {index} ({layer_spec['type']})")
                weights = tuple(np.asarray(params[n]) for n in names)
        layer = build_layer(layer_spec, shape, weights, init, rng, dtype)
        shape = layer.output_shape(shape)
        layers.append(layer)
    net = Network(layers, spec.get("loss", "cross-entropy"), spec["input_shape"], spec.get("input_scale", 1.0), info)
    if params is not None:
        extra = sorted(set(params) - set(net.params))
        if extra:
            raise ValueError(f"weights have entries this network does not use: {', '.join(extra)}")
    return net


PARAMETRIC = {"affine", *PARAMETRIC_CONV}  # layer types that own a W/b pair


def mlp_spec(sizes: list[int] | tuple[int, ...], activation: str = "relu", loss: str = "cross-entropy") -> dict:
    """Spec of a multi-layer perceptron such as [784, 50, 100, 10]."""
    if len(sizes) < 2 or any(int(s) < 1 for s in sizes):
        raise ValueError(f"layer sizes must be at least two positive numbers, got {list(sizes)}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append({"type": "affine", "in": int(a), "out": int(b)})
        if i < len(sizes) - 2:
            layers.append({"type": activation})
    return {"input_shape": [int(sizes[0])], "layers": layers, "loss": loss, "input_scale": 1.0}


def make_mlp(
    sizes: list[int] | tuple[int, ...],
    activation: str = "relu",
    loss: str = "cross-entropy",
    init: str | None = None,
    seed: int | np.random.Generator | None = 0,
    dtype=np.float32,
) -> Network:
    """A multi-layer perceptron, e.g. ``make_mlp([784, 50, 10], 'sigmoid')``."""
    return build_network(
        mlp_spec(sizes, activation, loss), init=init or default_init(activation), seed=seed, dtype=dtype,
        info={"activation": activation, "source": "new"},
    )


# ----- checking a spec from outside (a weight file's metadata) before anything is built or allocated
MAX_LAYERS = 100  # the book's DeepConvNet has 22 layers
MAX_WIDTH = 1 << 20  # units of an affine layer, filters or channels of a convolution, one input dimension
MAX_WINDOW = 64  # kernel and pooling sizes and strides: an MNIST image is 28 pixels wide
MAX_PAD = 32  # a pad of 1,000 (with stride 1,000 to shrink it again) asked for 15 GiB per batch
MAX_POOL = 11  # engine.nn.conv.Pooling keeps the argmax of a window in an int8
INPUT_SCALE_RANGE = (1e-3, 1e3)  # models expect pixels in [0, 1] (1) or [0, 255] (255)


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
