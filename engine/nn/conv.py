"""Convolution, max-pooling and the book's (non-inverted) dropout for image-shaped (N, C, H, W) data.

Convolution is im2col + one matrix product. im2col copies one strided slice per kernel
offset (k·k copies, no Python loop over positions) and col2im adds each offset back the
same way, which is much faster than ``np.add.at``.
As in ``engine.nn.layers``, caches for ``backward`` are kept only when ``train`` is true,
and scratch buffers are reused only then (inference allocates its own, so it is thread safe).
"""
from __future__ import annotations

import numpy as np

from engine.errors import DigitLabError

from engine.nn.initializers import init_weight
from engine.nn.layers import Layer


class ConvError(DigitLabError):
    """A convolution, pooling or dropout layer got shapes or settings that do not fit."""


def conv_output_size(size: int, kernel: int, stride: int, pad: int) -> int:
    """Positions a ``kernel`` wide window takes along ``size`` pixels (the book's floor formula)."""
    return (size + 2 * pad - kernel) // stride + 1


def _check_image_shape(what: str, input_shape: tuple, channels: int, kernel: int, stride: int, pad: int) -> tuple:
    if len(input_shape) != 3:
        raise ConvError(f"{what} needs (channels, height, width) input, got shape {tuple(input_shape)}")
    c, h, w = (int(d) for d in input_shape)
    if channels is not None and c != channels:
        raise ConvError(f"{what} expects {channels} input channels but receives {c} (shape {tuple(input_shape)})")
    oh, ow = conv_output_size(h, kernel, stride, pad), conv_output_size(w, kernel, stride, pad)
    if oh < 1 or ow < 1:
        raise ConvError(f"{what} with size {kernel}, stride {stride}, pad {pad} does not fit an input of {h}×{w}")
    return oh, ow


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _check_settings(what: str, **values: int) -> None:
    for name, value in values.items():
        minimum = 0 if name == "pad" else 1
        if not _is_int(value) or value < minimum:
            raise ConvError(f"{what}: {name} must be an integer ≥ {minimum}, got {value!r}")


def _scratch(buffer: np.ndarray | None, shape: tuple, dtype) -> np.ndarray:
    """``buffer`` when it already has this shape and dtype, else a new uninitialised array."""
    if buffer is None or buffer.shape != shape or buffer.dtype != dtype:
        return np.empty(shape, dtype=dtype)
    return buffer


def _zeros_in_layout(shape: tuple, strides: tuple, dtype) -> np.ndarray:
    """Zeros of logical ``shape`` stored in the same axis order as an array with ``strides``.

    Convolutions hand out (N, C, H, W) arrays stored channel-major (C, N, H, W); gradients
    in that same order let the next backward reshape without copying.
    """
    order = sorted(range(len(shape)), key=lambda a: -strides[a])
    return np.zeros([shape[a] for a in order], dtype=dtype).transpose(np.argsort(order))


class Convolution(Layer):
    """2-D convolution (cross-correlation, as in the book) with filters ``W`` (F, C, k, k) and biases ``b`` (F,).

    Internally im2col is transposed: ``col`` is (C·k·k, N·oh·ow), built by k·k slice copies
    of the (C, N, H, W) image, and the output is ``W @ col`` stored (F, N, oh, ow) and returned as
    an (N, F, oh, ow) view. Those long contiguous rows make both im2col and col2im fast.
    """

    def __init__(self, W: np.ndarray, b: np.ndarray, stride: int = 1, pad: int = 0) -> None:
        super().__init__()
        W, b = np.asarray(W), np.asarray(b)
        if W.ndim != 4 or W.shape[2] != W.shape[3]:
            raise ConvError(f"convolution filters must have shape (filters, channels, k, k), got {W.shape}")
        if b.shape != (W.shape[0],):
            raise ConvError(f"convolution biases must have shape ({W.shape[0]},), got {b.shape}")
        _check_settings("convolution", stride=stride, pad=pad)
        self.params = {"W": W, "b": b}
        self.stride = int(stride)
        self.pad = int(pad)
        self.need_dx = True  # the network turns this off for its first layer: nobody uses that dx
        self._col = None
        self._x_shape = None
        self._out_shape = None
        self._buffers: dict[str, np.ndarray] = {}  # training-only scratch arrays, reused across steps

    def spec(self) -> dict:
        f, c, k, _ = self.params["W"].shape
        return {"type": "conv", "filters": int(f), "channels": int(c), "size": int(k),
                "stride": self.stride, "pad": self.pad}

    def output_shape(self, input_shape: tuple) -> tuple:
        f, c, k, _ = self.params["W"].shape
        oh, ow = _check_image_shape("convolution", input_shape, c, k, self.stride, self.pad)
        return (int(f), oh, ow)

    def _im2col(self, x: np.ndarray, oh: int, ow: int, train: bool) -> np.ndarray:
        n, c, h, w = x.shape
        k, s, p = self.params["W"].shape[2], self.stride, self.pad
        xc = x.transpose(1, 0, 2, 3)  # (C, N, H, W): a view when x came from another convolution
        if p:
            xp = _scratch(self._buffers.get("pad") if train else None, (c, n, h + 2 * p, w + 2 * p), x.dtype)
            if not train or "pad" not in self._buffers or self._buffers["pad"] is not xp:
                xp.fill(0)  # a new buffer: zero the border once (a reused one keeps its zero border)
            xp[:, :, p : p + h, p : p + w] = xc
            if train:
                self._buffers["pad"] = xp
            xc = xp
        col = _scratch(self._buffers.get("col") if train else None, (c, k, k, n, oh, ow), x.dtype)
        for i in range(k):
            for j in range(k):
                col[:, i, j] = xc[:, :, i : i + s * oh : s, j : j + s * ow : s]
        if train:
            self._buffers["col"] = col
        return col.reshape(c * k * k, n * oh * ow)

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        W, b = self.params["W"], self.params["b"]
        f, c, k, _ = W.shape
        if x.ndim != 4 or x.shape[1] != c:
            raise ConvError(f"convolution expects input (N, {c}, H, W), got shape {x.shape}")
        n = x.shape[0]
        oh, ow = _check_image_shape("convolution", x.shape[1:], c, k, self.stride, self.pad)
        col = self._im2col(x, oh, ow, train)
        out = W.reshape(f, -1) @ col  # (F, N·oh·ow)
        out += b.reshape(f, 1)
        if train:
            self._col = col
            self._x_shape = x.shape
            self._out_shape = (n, f, oh, ow)
        return out.reshape(f, n, oh, ow).transpose(1, 0, 2, 3)

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        """Fills ``grads``; the returned dx is a scratch buffer valid until this layer's next backward."""
        W = self.params["W"]
        f, c, k, _ = W.shape
        n, _, oh, ow = self._out_shape
        dout = dout.reshape(self._out_shape)  # an affine layer above hands back flat rows
        dflat = dout.transpose(1, 0, 2, 3).reshape(f, -1)  # a view when dout kept the forward's layout
        self.grads["W"] = (dflat @ self._col.T).reshape(W.shape)
        self.grads["b"] = dflat.sum(axis=1)
        self._col = None
        if not self.need_dx:
            return None
        dcol = (W.reshape(f, -1).T @ dflat).reshape(c, k, k, n, oh, ow)
        _, _, h, w = self._x_shape
        p, s = self.pad, self.stride
        dxp = _scratch(self._buffers.get("dx"), (c, n, h + 2 * p, w + 2 * p), dcol.dtype)
        self._buffers["dx"] = dxp
        dxp.fill(0)
        # col2im: each kernel offset adds one strided slice (no np.add.at)
        for i in range(k):
            for j in range(k):
                dxp[:, :, i : i + s * oh : s, j : j + s * ow : s] += dcol[:, i, j]
        return dxp[:, :, p : p + h, p : p + w].transpose(1, 0, 2, 3)


class Pooling(Layer):
    """Max pooling over ``size``×``size`` windows; padding adds zeros, like the book's im2col.

    One strided view per window offset and a running maximum: no window array is ever built.
    Training also keeps, as int8, which offset held the (first) maximum, like the book's argmax.
    """

    def __init__(self, size: int = 2, stride: int = 2, pad: int = 0) -> None:
        super().__init__()
        _check_settings("pooling", size=size, stride=stride, pad=pad)
        if size * size > 127:
            raise ConvError(f"pooling windows of {size}×{size} are too large (at most 11×11)")
        self.size = int(size)
        self.stride = int(stride)
        self.pad = int(pad)
        self._argmax = None
        self._x_shape = None
        self._x_strides = None

    def spec(self) -> dict:
        return {"type": "pool", "size": self.size, "stride": self.stride, "pad": self.pad}

    def output_shape(self, input_shape: tuple) -> tuple:
        oh, ow = _check_image_shape("pooling", input_shape, None, self.size, self.stride, self.pad)
        return (int(input_shape[0]), oh, ow)

    def _views(self, a: np.ndarray, oh: int, ow: int) -> list[np.ndarray]:
        s = self.stride
        return [a[:, :, i : i + s * oh : s, j : j + s * ow : s] for i in range(self.size) for j in range(self.size)]

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        if x.ndim != 4:
            raise ConvError(f"pooling expects input (N, C, H, W), got shape {x.shape}")
        oh, ow = _check_image_shape("pooling", x.shape[1:], None, self.size, self.stride, self.pad)
        p = self.pad
        if p:
            n, c, h, w = x.shape
            xp = _zeros_in_layout((n, c, h + 2 * p, w + 2 * p), x.strides, x.dtype)
            xp[:, :, p : p + h, p : p + w] = x
        else:
            xp = x
        views = self._views(xp, oh, ow)
        out = views[0].copy()
        if not train:
            for v in views[1:]:
                np.maximum(out, v, out=out)
            return out
        arg = np.zeros(out.shape, dtype=np.int8)
        for index, v in enumerate(views[1:], start=1):
            # arg += better * (index - arg) in int8: much faster than np.where or boolean indexing
            better = np.greater(v, out).view(np.int8)
            np.maximum(out, v, out=out)
            step = np.subtract(np.int8(index), arg)
            step *= better
            arg += step
        self._argmax = arg
        self._x_shape = x.shape
        self._x_strides = xp.strides
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        n, c, h, w = self._x_shape
        p = self.pad
        arg = self._argmax
        oh, ow = arg.shape[2:]
        dout = dout.reshape(arg.shape)  # an affine layer above hands back flat rows
        dxp = _zeros_in_layout((n, c, h + 2 * p, w + 2 * p), self._x_strides, dout.dtype)
        overlap = self.stride < self.size
        for index, target in enumerate(self._views(dxp, oh, ow)):
            chosen = np.equal(arg, index).view(np.int8)
            if overlap:
                target += dout * chosen
            else:  # windows do not overlap: each input pixel receives at most one value
                np.multiply(dout, chosen, out=target)
        self._argmax = None
        return dxp[:, :, p : p + h, p : p + w] if p else dxp


class Dropout(Layer):
    """The book's dropout: training multiplies by a random 0/1 mask, inference by (1 − ratio).

    It is not the "inverted" dropout of most libraries, so the book's weights need
    exactly this scaling to give the book's outputs. ``rng`` draws the masks; the
    network builder seeds it so training is reproducible.
    """

    def __init__(self, ratio: float = 0.5, rng: np.random.Generator | None = None) -> None:
        super().__init__()
        if not 0.0 <= float(ratio) < 1.0:
            raise ConvError(f"dropout ratio must be in [0, 1), got {ratio!r}")
        self.ratio = float(ratio)
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self._mask = None

    def spec(self) -> dict:
        return {"type": "dropout", "ratio": self.ratio}

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        if train:
            dtype = x.dtype if x.dtype in (np.float32, np.float64) else np.float64
            self._mask = self.rng.random(x.shape, dtype=dtype) > self.ratio
            return x * self._mask
        return x * np.asarray(1.0 - self.ratio, dtype=x.dtype)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dout = dout * self._mask
        self._mask = None
        return dout


# ----- builders for engine.nn.network.LAYER_BUILDERS: (spec, input_shape, weights-or-None, init, rng, dtype) -> Layer


def _spec_int(spec: dict, key: str, default: int | None = None) -> int:
    value = spec.get(key, default)
    if value is None:
        raise ConvError(f"{spec.get('type')} layer spec {spec} lacks {key!r}")
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON readers may hand back 5.0
    if not _is_int(value):
        raise ConvError(f"{spec.get('type')} layer spec: {key} must be an integer, got {value!r}")
    return int(value)


def build_conv(spec: dict, in_shape: tuple, weights, init: str, rng, dtype) -> Convolution:
    filters, size = _spec_int(spec, "filters"), _spec_int(spec, "size")
    stride, pad = _spec_int(spec, "stride", 1), _spec_int(spec, "pad", 0)
    if len(in_shape) != 3:
        raise ConvError(f"a conv layer needs (channels, height, width) input, got shape {tuple(in_shape)}")
    channels = _spec_int(spec, "channels", int(in_shape[0]))
    _check_settings("conv layer", filters=filters, size=size, stride=stride, pad=pad)
    _check_image_shape("conv layer", in_shape, channels, size, stride, pad)
    shape = (filters, channels, size, size)
    if weights is None:
        fan_in = channels * size * size
        weights = (init_weight(shape, fan_in, init, rng, dtype), np.zeros(filters, dtype=dtype))
    W, b = weights
    if W.shape != shape or b.shape != (filters,):
        raise ConvError(f"conv layer {spec} needs W {shape} and b ({filters},), got W {W.shape} and b {b.shape}")
    return Convolution(W, b, stride, pad)


def build_pool(spec: dict, in_shape: tuple, weights, init: str, rng, dtype) -> Pooling:
    size = _spec_int(spec, "size", 2)
    layer = Pooling(size, _spec_int(spec, "stride", size), _spec_int(spec, "pad", 0))
    layer.output_shape(in_shape)  # raises when the window does not fit
    return layer


def build_dropout(spec: dict, in_shape: tuple, weights, init: str, rng, dtype) -> Dropout:
    seed = int(rng.integers(2**63)) if rng is not None else 0
    return Dropout(float(spec.get("ratio", 0.5)), np.random.default_rng(seed))


CONV_BUILDERS = {"conv": build_conv, "pool": build_pool, "dropout": build_dropout}
PARAMETRIC_CONV = {"conv"}  # of these, the types that own a W/b pair
