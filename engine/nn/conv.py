"""Convolution, max-pooling and the book's (non-inverted) dropout for image-shaped (N, C, H, W) data.

Convolution is the book's im2col + matrix product, done a few images at a time so that the
scratch stays in cache (``engine.nn.im2col``); max pooling takes two passes of strided views
(``engine.nn.maxpool``). Outputs are (N, C, H, W) views of channel-major storage, which the next
convolution or pooling reads without copying. As in ``engine.nn.layers``, caches for ``backward``
are kept only when ``train`` is true; scratch buffers belong to one call, so inference from
another thread shares nothing with a training step.
"""
from __future__ import annotations

import numpy as np

from engine.errors import DigitLabError

from engine.nn import conv_rows
from engine.nn.blas import in_parallel, one_thread
from engine.nn.im2col import Scratch
from engine.nn.initializers import init_weight
from engine.nn.maxpool import empty_in_layout, max_pool, max_pool_backward
from engine.nn.layers import Layer, grad_buffer


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


class Convolution(Layer):
    """2-D convolution (cross-correlation, as in the book) with filters ``W`` (F, C, k, k) and biases ``b`` (F,).

    im2col + one matrix product per chunk of a few images (``engine.nn.im2col``): ``col`` is
    (C·k·k, images·positions), ``W @ col`` plus the bias goes into the output, stored (F, N, oh, ow)
    and returned as an (N, F, oh, ow) view. Training keeps only the input: backward rebuilds each
    chunk's ``col`` (a cheap copy into cache) instead of holding the whole batch's.
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
        self._x = None

    def spec(self) -> dict:
        f, c, k, _ = self.params["W"].shape
        return {"type": "conv", "filters": int(f), "channels": int(c), "size": int(k),
                "stride": self.stride, "pad": self.pad}

    def output_shape(self, input_shape: tuple) -> tuple:
        f, c, k, _ = self.params["W"].shape
        oh, ow = _check_image_shape("convolution", input_shape, c, k, self.stride, self.pad)
        return (int(f), oh, ow)

    def store_grads(self, dW: np.ndarray, db: np.ndarray, dtype) -> None:
        """Copy ``dW`` (F, C, k, k) and ``db`` into ``grads`` (into the arrays the network handed out, when they fit)."""
        np.copyto(grad_buffer(self.grads, "W", self.params["W"], dtype), dW)
        np.copyto(grad_buffer(self.grads, "b", self.params["b"], dtype), db)

    def by_rows(self, input_shape: tuple) -> bool:
        """Whether images of ``input_shape`` (C, H, W) go by rows (``engine.nn.conv_rows``: small filter banks);
        else by im2col, on the worker threads."""
        f, c, k, _ = self.params["W"].shape
        return conv_rows.pays(c, k, self.stride, input_shape[2] + 2 * self.pad - k + 1, f)

    def _scratch(self, x: np.ndarray, dtype, pool: int = 1) -> tuple[Scratch, np.ndarray, np.ndarray]:
        """(this call's scratch, images as (C, N, H, W), filters as an (F, C·k·k) matrix); ``pool``: see ``Scratch``."""
        W = self.params["W"]
        f, c, k, _ = W.shape
        oh, ow = _check_image_shape("convolution", x.shape[1:], c, k, self.stride, self.pad)
        xc = x.transpose(1, 0, 2, 3)  # (C, N, H, W): a view, contiguous when x came from another convolution
        return Scratch(xc.shape, k, self.stride, self.pad, oh, ow, dtype, pool), xc, W.reshape(f, -1).astype(dtype, copy=False)

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        W, b = self.params["W"], self.params["b"]
        f, c = W.shape[:2]
        if x.ndim != 4 or x.shape[1] != c:
            raise ConvError(f"convolution expects input (N, {c}, H, W), got shape {x.shape}")
        dtype = np.result_type(x.dtype, W.dtype)
        if self.by_rows(x.shape[1:]):
            self.output_shape(x.shape[1:])  # ConvError when the window does not fit
            out = conv_rows.forward(x.transpose(1, 0, 2, 3), W, b, self.pad, dtype)
            if train:
                self._x = x
            return out.transpose(1, 0, 2, 3)
        scratch, xc, wmat = self._scratch(x, dtype)
        n, oh, ow = x.shape[0], scratch.oh, scratch.ow
        out = np.empty((f, n, oh, ow), dtype)
        bias = b.astype(dtype, copy=False).reshape(f, 1, 1, 1)
        def part(start: int, stop: int) -> None:
            own = scratch if start == 0 else scratch.fresh()
            for first, end in own.chunks(stop - start, start):
                products = own.product(f, end - first)
                np.matmul(wmat, own.im2col(xc[:, first:end]), out=products)
                # add the bias while the products are in cache, leaving out the unused columns of wide rows
                np.add(products.reshape(f, end - first, oh, own.row)[..., :ow], bias, out=out[:, first:end])

        with one_thread():  # many small products: see engine.nn.blas
            in_parallel(part, n, scratch.images)
        if train:
            self._x = x
        return out.transpose(1, 0, 2, 3)

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        """Fills ``grads``; returns dx, or None when ``need_dx`` is off."""
        W, x = self.params["W"], self._x
        f = W.shape[0]
        dtype = np.result_type(x.dtype, W.dtype)
        if self.by_rows(x.shape[1:]):
            _, oh, ow = self.output_shape(x.shape[1:])
            dout = dout.reshape(len(x), f, oh, ow).transpose(1, 0, 2, 3)
            dW, db, dx = conv_rows.backward(x.transpose(1, 0, 2, 3), W, dout, self.pad, self.need_dx, dtype)
            self.store_grads(dW, db, dtype)
            self._x = None
            return None if dx is None else dx.transpose(1, 0, 2, 3)
        scratch, xc, wmat = self._scratch(x, dtype)
        n = x.shape[0]
        # an affine layer above hands back flat rows; (F, N, oh, ow) is a view when dout kept the forward's layout
        dout = dout.reshape(n, f, scratch.oh, scratch.ow).transpose(1, 0, 2, 3).astype(dtype, copy=False)
        dx = np.empty(xc.shape, dtype) if self.need_dx else None

        def part(start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
            own = scratch if start == 0 else scratch.fresh()
            dWT = np.zeros((own.rows, f), dtype)  # summed as col @ doutᵀ: BLAS is much faster that way round
            db = np.zeros(f, dtype)
            for first, end in own.chunks(stop - start, start):
                d = own.gradient(dout[:, first:end])
                dWT += own.im2col(xc[:, first:end]) @ np.ascontiguousarray(d.T)
                db += d.sum(axis=1)
                if dx is not None:
                    dcol = np.matmul(wmat.T, d, out=own.dcol(d.shape[1]))
                    own.col2im(dcol, dx[:, first:end])
            return dWT, db

        with one_thread():
            sums = in_parallel(part, n, scratch.images)
        self.store_grads(sum(s[0] for s in sums).T.reshape(W.shape), sum(s[1] for s in sums), dtype)
        self._x = None
        return None if dx is None else dx.transpose(1, 0, 2, 3)


class Pooling(Layer):
    """Max pooling over ``size``×``size`` windows; padding adds zeros, like the book's im2col.

    Two passes of strided views (``engine.nn.maxpool``): no window array is ever built. Training
    keeps, as int8, which column and which row held the (first) maximum, like the book's argmax.
    """

    def __init__(self, size: int = 2, stride: int = 2, pad: int = 0) -> None:
        super().__init__()
        _check_settings("pooling", size=size, stride=stride, pad=pad)
        if size * size > 127:
            raise ConvError(f"pooling windows of {size}×{size} are too large (at most 11×11)")
        self.size = int(size)
        self.stride = int(stride)
        self.pad = int(pad)
        self._saved = None

    def spec(self) -> dict:
        return {"type": "pool", "size": self.size, "stride": self.stride, "pad": self.pad}

    def output_shape(self, input_shape: tuple) -> tuple:
        oh, ow = _check_image_shape("pooling", input_shape, None, self.size, self.stride, self.pad)
        return (int(input_shape[0]), oh, ow)

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        if x.ndim != 4:
            raise ConvError(f"pooling expects input (N, C, H, W), got shape {x.shape}")
        oh, ow = _check_image_shape("pooling", x.shape[1:], None, self.size, self.stride, self.pad)
        p = self.pad
        if p:
            n, c, h, w = x.shape
            xp = empty_in_layout((n, c, h + 2 * p, w + 2 * p), x.strides, x.dtype, zeros=True)
            xp[:, :, p : p + h, p : p + w] = x
        else:
            xp = x
        out, saved = max_pool(xp, self.size, self.stride, oh, ow, keep_arg=train)
        if train:
            self._saved = saved
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        _, row_arg, (n, c, hp, wp), _ = self._saved
        dout = dout.reshape(row_arg.shape)  # an affine layer above hands back flat rows
        dxp = max_pool_backward(dout, self.size, self.stride, self._saved)
        self._saved = None
        p = self.pad
        return dxp[:, :, p : hp - p, p : wp - p] if p else dxp


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
