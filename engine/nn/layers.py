"""Layers with ``forward``/``backward``, after the book's ``common/layers.py``.

``forward(x, train=False)`` keeps what ``backward`` needs only when ``train`` is
true, so predicting from another thread never clobbers a training step's cache.
``backward(dout)`` returns ``dx`` and fills ``self.grads`` (same keys as ``self.params``).

Training reuses each layer's buffers from step to step (``out=``): an array a training
``forward`` or ``backward`` returns is valid until that layer's next training call. A layer
writes its gradients into the arrays already in ``self.grads`` when they fit (the network
gives it views of one flat buffer, see ``engine.nn.network``), else it puts new ones there.
"""
from __future__ import annotations

import numpy as np

from engine.nn.blas import in_parallel, single, together
from engine.nn.functions import (one_hot, sigmoid, softmax, softmax_and_cross_entropy, softmax_cross_entropy,
                                 softmax_squared_error, to_indices)


def _scratch(buffer: np.ndarray | None, shape: tuple, dtype) -> np.ndarray:
    """``buffer`` when it already has this shape and dtype, else a new uninitialised array."""
    if buffer is None or buffer.shape != shape or buffer.dtype != dtype:
        return np.empty(shape, dtype=dtype)
    return buffer


def grad_buffer(grads: dict, key: str, like: np.ndarray, dtype) -> np.ndarray:
    """``grads[key]`` to write a gradient into, replaced by a new array when it does not fit ``like``."""
    g = grads.get(key)
    if g is None or g.shape != like.shape or g.dtype != dtype or not g.flags.writeable:
        g = grads[key] = np.empty(like.shape, dtype=dtype)
    return g


SHARE_ROWS = 16  # an affine layer shares a batch out over the worker threads in parts of at least this many rows
SHARE_SIZE = 1 << 20  # … when its products are at least this large (rows × inputs × outputs)


def _shared(rows: int, inputs: int, outputs: int) -> bool:
    """Whether an affine layer's products go to the worker threads: large ones, while BLAS is held to one thread
    (``engine.nn.blas.single``: a network whose convolutions run on those workers is training)."""
    return rows * inputs * outputs >= SHARE_SIZE and single()


class Layer:
    """Base: a layer without parameters."""

    params: dict
    grads: dict

    def __init__(self) -> None:
        self.params = {}
        self.grads = {}

    def spec(self) -> dict:
        """A plain description from which ``engine.nn.network.build_layer`` rebuilds the layer."""
        raise NotImplementedError

    def output_shape(self, input_shape: tuple) -> tuple:
        return input_shape


class Affine(Layer):
    """Dense layer ``x @ W + b``; inputs of any shape are flattened to (N, -1)."""

    def __init__(self, W: np.ndarray, b: np.ndarray) -> None:
        super().__init__()
        self.params = {"W": W, "b": b}
        self.need_dx = True  # the network turns this off for its first layer: nobody uses that dx
        self._x = None
        self._x_shape = None
        self._out = self._dx = None  # training buffers, reused while the batch size stays the same

    def spec(self) -> dict:
        W = self.params["W"]
        return {"type": "affine", "in": int(W.shape[0]), "out": int(W.shape[1])}

    def output_shape(self, input_shape: tuple) -> tuple:
        return (self.params["W"].shape[1],)

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        W, b = self.params["W"], self.params["b"]
        in_shape = x.shape
        if x.ndim != 2:
            x = x.reshape(x.shape[0], -1)
        if not train:
            out = x @ W  # a new array: inference may run in another thread while training goes on
            out += b
            return out
        self._x_shape = in_shape  # dx goes back in this shape (e.g. a conv layer's (N, C, H, W))
        self._x = x
        out = self._out = _scratch(self._out, (x.shape[0], W.shape[1]), np.promote_types(x.dtype, W.dtype))
        if _shared(x.shape[0], *W.shape):  # rows of the batch on the worker threads
            in_parallel(lambda first, end: np.matmul(x[first:end], W, out=out[first:end]), len(x), SHARE_ROWS)
        else:
            np.matmul(x, W, out=out)
        out += b
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        x, W = self._x, self.params["W"]
        dtype = np.promote_types(x.dtype, dout.dtype)
        gW = grad_buffer(self.grads, "W", W, dtype)
        np.add.reduce(dout, axis=0, out=grad_buffer(self.grads, "b", self.params["b"], dtype))
        self._x = None
        dx = None
        if self.need_dx:
            dx = self._dx = _scratch(self._dx, (dout.shape[0], W.shape[0]), np.promote_types(dout.dtype, W.dtype))
        # x.T and W.T are views: BLAS reads them transposed, nothing is copied
        if dx is not None and _shared(len(x), *W.shape):  # the two products at once, on the worker threads
            together(lambda: np.matmul(x.T, dout, out=gW), lambda: np.matmul(dout, W.T, out=dx))
        else:
            np.matmul(x.T, dout, out=gW)
            if dx is not None:
                np.matmul(dout, W.T, out=dx)
        return None if dx is None else dx.reshape(self._x_shape)


class Sigmoid(Layer):
    def spec(self) -> dict:
        return {"type": "sigmoid"}

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        out = sigmoid(x)
        if train:
            self._out = out
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        out = self._out
        dx = 1.0 - out
        np.multiply(dout, dx, out=dx)  # dout * (1 - out) * out, in one temporary
        dx *= out
        return dx


class ReLU(Layer):
    def __init__(self) -> None:
        super().__init__()
        self._mask = None  # where the input was positive: the only units a gradient flows back through

    def spec(self) -> dict:
        return {"type": "relu"}

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        if not train:
            return np.maximum(x, 0)
        mask = self._mask
        if mask is None or mask.shape != x.shape:
            mask = self._mask = np.empty_like(x, dtype=np.bool_)  # in x's memory order (a conv's output is transposed)
        np.greater(x, 0, out=mask)
        # x is the fresh output of the previous layer, ours to overwrite (saves a copy per step);
        # multiplying by the mask is faster than np.maximum (negatives become -0.0, which equals 0)
        np.multiply(x, mask, out=x)
        return x

    def backward(self, dout: np.ndarray) -> np.ndarray:
        np.multiply(dout, self._mask, out=dout)
        return dout


class Tanh(Layer):
    def spec(self) -> dict:
        return {"type": "tanh"}

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        out = np.tanh(x)
        if train:
            self._out = out
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dx = np.square(self._out)
        np.subtract(1.0, dx, out=dx)  # dout * (1 - out²), in one temporary
        dx *= dout
        return dx


class SoftmaxWithLoss:
    """Softmax and mean cross-entropy in one layer: its backward is simply (y - t) / N."""

    name = "cross-entropy"
    function = staticmethod(softmax_cross_entropy)  # the loss from the scores, also used by evaluation

    def __init__(self) -> None:
        self._buffer = None  # the softmax of the last training batch, reused while the shape stays the same

    def forward(self, x: np.ndarray, t: np.ndarray) -> float:
        # the loss is exact (log-softmax), so backprop's (y - t)/N is the gradient of this very loss
        self._idx = to_indices(t).reshape(-1)
        self._buffer = _scratch(self._buffer, x.shape, x.dtype if x.dtype.kind == "f" else np.float64)
        self._y, loss = softmax_and_cross_entropy(x, self._idx, out=self._buffer)
        return loss

    def backward(self, dout: float = 1.0) -> np.ndarray:
        y, idx = self._y, self._idx
        n = y.shape[0]
        dx = y  # y is not needed after this: reuse its memory
        dx[np.arange(n), idx] -= 1
        dx *= dout / n
        self._y = None
        return dx


class SoftmaxWithSquaredError:
    """Softmax followed by the sum of squares 0.5*Σ(y-t)², averaged over the batch.

    As in the book, the squares are taken on the softmax probabilities;
    backward goes through the softmax Jacobian: dx = y * (g - Σ g·y) with g = (y - t)/N.
    """

    name = "sum-of-squares"
    function = staticmethod(softmax_squared_error)  # the loss from the scores, also used by evaluation

    def forward(self, x: np.ndarray, t: np.ndarray) -> float:
        y = softmax(x)
        self._y, self._t = y, one_hot(t, y.shape[1], dtype=y.dtype)
        return self.function(x, t)

    def backward(self, dout: float = 1.0) -> np.ndarray:
        y, t = self._y, self._t
        g = (y - t) * (dout / y.shape[0])
        return y * (g - np.sum(g * y, axis=1, keepdims=True))


LOSSES = {"cross-entropy": SoftmaxWithLoss, "sum-of-squares": SoftmaxWithSquaredError}
ACTIVATIONS = {"relu": ReLU, "sigmoid": Sigmoid, "tanh": Tanh}
