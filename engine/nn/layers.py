"""Layers with ``forward``/``backward``, after the book's ``common/layers.py``.

``forward(x, train=False)`` keeps what ``backward`` needs only when ``train`` is
true, so predicting from another thread never clobbers a training step's cache.
``backward(dout)`` returns ``dx`` and fills ``self.grads`` (same keys as ``self.params``).
"""
from __future__ import annotations

import numpy as np

from engine.nn.functions import one_hot, sigmoid, softmax, softmax_cross_entropy, softmax_squared_error


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
        if train:
            self._x_shape = in_shape  # dx goes back in this shape (e.g. a conv layer's (N, C, H, W))
            self._x = x
        out = x @ W
        out += b
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        x = self._x
        self.grads["W"] = x.T @ dout
        self.grads["b"] = dout.sum(axis=0)
        self._x = None
        if not self.need_dx:
            return None
        return (dout @ self.params["W"].T).reshape(self._x_shape)


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
        return dout * (1.0 - out) * out


class ReLU(Layer):
    def spec(self) -> dict:
        return {"type": "relu"}

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        if train:
            # x is the fresh output of the previous layer, ours to overwrite (saves a copy per step)
            np.maximum(x, 0, out=x)
            self._mask = x > 0
            return x
        return np.maximum(x, 0)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dout *= self._mask
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
        return dout * (1.0 - self._out**2)


class SoftmaxWithLoss:
    """Softmax and mean cross-entropy in one layer: its backward is simply (y - t) / N."""

    name = "cross-entropy"
    function = staticmethod(softmax_cross_entropy)  # the loss from the scores, also used by evaluation

    def forward(self, x: np.ndarray, t: np.ndarray) -> float:
        # softmax_cross_entropy is exact (log-softmax), so backprop's (y - t)/N is the gradient of this very loss
        self._y = softmax(x)
        self._idx = t.argmax(axis=1) if t.ndim == 2 else t
        return self.function(x, self._idx)

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
