"""Networks as a list of layers plus a loss layer, with the book's flat ``W1, b1, W2, b2, …`` params.

The parameter arrays in ``params`` are the layers' own arrays: optimizers update
them in place, so the book's ``optimizer.update(network.params, grads)`` works.
They are views of one flat buffer (and the gradients of another), handed out as
``FlatParams`` so that an optimizer updates the whole network in one go.
A network is described by ``spec()`` (plain JSON-able data) and rebuilt by ``build_network``.
"""
from __future__ import annotations

import math
from contextlib import nullcontext
from typing import Callable

import numpy as np

from engine.nn.conv import CONV_BUILDERS, PARAMETRIC_CONV
from engine.nn.blas import one_thread
from engine.nn.conv_pool import running_order, uses_workers
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
        input_shift: float = 0.0,
    ) -> None:
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")
        self.layers = list(layers)
        self._running = running_order(self.layers)
        self.loss_name = loss
        self.loss_layer = LOSSES[loss]()
        self.input_shape = tuple(int(d) for d in input_shape)
        self._one_blas_thread = uses_workers(self._running, self.input_shape)  # see engine.nn.conv_pool
        self.input_scale = float(input_scale)  # 255.0 for models trained on raw pixel values
        self.input_shift = float(input_shift)  # with the scale, a normalisation such as PyTorch's (x - mean) / std
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
            self._flat_params = flat
            for name, layer, key in self._names:
                layer.params[key] = flat[name]

    def set_loss(self, loss: str) -> None:
        """Minimise ``loss`` from now on (a book-style weight file does not say which loss it was trained with)."""
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")
        self.loss_name, self.loss_layer = loss, LOSSES[loss]()

    # ----- parameters -----
    @property
    def params(self) -> dict[str, np.ndarray]:
        flat = self._flat_params
        if flat is not None and all(layer.params[key] is flat[name] for name, layer, key in self._names):
            return FlatParams(flat.flat, flat, flat.layout)  # a new dict of the same views: the caller may change it
        return {name: layer.params[key] for name, layer, key in self._names}  # a layer's array was replaced

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
            **({"input_shift": self.input_shift} if self.input_shift else {}),
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
        if self.input_shift:
            x = x + np.asarray(self.input_shift, dtype=x.dtype)
        return x

    def scores(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        """Scores (logits) for a batch. Inference keeps no state (thread-safe) and runs a long batch in slices."""
        out = self._prepare(x)
        if train:  # one batch, whose intermediate values the layers keep for backward
            with one_thread() if self._one_blas_thread else nullcontext():  # see gradient()
                for layer in self._running:
                    out = layer.forward(out, True)
            return out
        step = max(1, len(out))
        if len(out) > 1:
            # slices whose largest activation holds about 4M values: a CNN's feature maps stay tens of MB
            # (not the GBs of 10,000 images at once), an MLP still gets large matrix products
            shape, largest = self.input_shape, 1
            for layer in self._running:
                shape = layer.output_shape(shape)
                largest = max(largest, math.prod(shape))
            step = max(1, (1 << 22) // largest)
        parts = []
        with one_thread() if self._one_blas_thread and len(out) > 1 else nullcontext():  # see gradient()
            for start in range(0, max(1, len(out)), step):
                part = out[start : start + step]
                for layer in self._running:
                    part = layer.forward(part)
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
        if self._flat_grads is None and self._flat_params is not None:  # on first use: most networks only predict
            self._flat_grads = FlatParams.gather(self._flat_params, zeros=True)
            for name, layer, key in self._names:
                layer.grads[key] = self._flat_grads[name]
        with one_thread() if self._one_blas_thread else nullcontext():
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
    net = Network(layers, spec.get("loss", "cross-entropy"), spec["input_shape"], spec.get("input_scale", 1.0), info,
                  spec.get("input_shift", 0.0))
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
