"""A convolution and the max-pool right after it, in one pass over each chunk of images.

Pooling a convolution's (N, C, H, W) output means comparing neighbours one and two elements
apart: strided reads that NumPy's loops run slowly, over a feature map that has long left the
cache. Here the convolution's im2col lays its columns out in pooled order (``engine.nn.im2col``,
``pool``): the p·p values each p×p window compares come out of ``W @ col`` as p·p contiguous blocks,
so the pool is a few whole-block maximums over products still in cache, and the full-size feature
map is never stored. For SimpleConvNet's first layer that is forward 2.5× and forward + backward
1.7× faster than convolving and pooling in turn. A convolution by rows (``engine.nn.conv_rows``,
LeNet's) orders its band's columns the same way and hands out its pooled output channels-last.

The result is exactly the layers' in turn: the bias is added before the comparison, the pool takes
the maximum across each window's columns and then down its rows, the first maximum winning a tie
as the book's ``argmax`` does (``engine.nn.maxpool``), and ``backward`` sends each gradient where
that maximum was. Only the parameter gradients are summed in another order (rounding).

``running_order`` decides which layers a network runs and in what order: a ReLU before a max-pool
runs after it, and a convolution followed by a p×p pool with stride p runs as one ``ConvPool``.
"""
from __future__ import annotations

import numpy as np

from engine.nn import conv_rows
from engine.nn.blas import in_parallel, one_thread
from engine.nn.conv import ConvError, Convolution, Pooling
from engine.nn.layers import Layer, ReLU
from engine.nn.maxpool import max_into, spread


class ConvPool(Layer):
    """``conv`` then ``pool`` (p×p windows, stride p, no padding) as one layer of a network's running order.

    The parameters and gradients stay the convolution's own (the network reads them from its layers).
    The two simply run in turn when the convolution goes by rows in blocks the windows do not tile
    (``conv_rows.pools``), and when it goes by im2col and must hand back dx (``need_dx``: any but a
    network's first layer): col2im in pooled order takes k²·p² small strided adds per chunk where the
    usual order takes k² long ones, which made DeepConvNet's backward twice as slow as in turn.
    """

    def __init__(self, conv: Convolution, pool: Pooling) -> None:
        super().__init__()
        if not fuses(conv, pool):
            raise ConvError(f"cannot run a convolution and a pool of {pool.spec()} as one layer")
        self.conv, self.pool = conv, pool
        self._x = self._args = None  # the input and the pool's choices, when the last training forward fused

    def output_shape(self, input_shape: tuple) -> tuple:
        return self.pool.output_shape(self.conv.output_shape(input_shape))

    def way(self, x: np.ndarray) -> str | None:
        """How ``x`` goes through: "rows" or "im2col" (pooling inside the convolution), or None (the two in turn)."""
        conv = self.conv
        f, c, k, _ = conv.params["W"].shape
        if x.ndim != 4 or x.shape[1] != c:
            return None  # the convolution raises its own error
        if conv.by_rows(x.shape[1:]):
            return "rows" if conv_rows.pools(k, x.shape[3] + 2 * conv.pad - k + 1, self.pool.size) else None
        return None if conv.need_dx else "im2col"

    def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:
        conv, p = self.conv, self.pool.size
        if train:
            self._x = self._args = None
        how = self.way(x)
        if how is None:
            return self.pool.forward(conv.forward(x, train), train)
        W, b = conv.params["W"], conv.params["b"]
        f = W.shape[0]
        dtype = np.result_type(x.dtype, W.dtype)
        if how == "rows":
            self.output_shape(x.shape[1:])  # ConvError when the windows do not fit
            out, saved = conv_rows.forward_pooled(x.transpose(1, 0, 2, 3), W, b, conv.pad, dtype, p, train)
            if train:
                self._x, self._args = x, ("rows", saved)
            return out
        scratch, xc, wmat = conv._scratch(x, dtype, pool=p)
        _, ph, pw = self.pool.output_shape((f, scratch.oh, scratch.ow))  # ConvError when no window fits
        n, q = len(x), ph * pw
        out = np.empty((n, f, ph, pw), dtype)  # image-major: an affine layer above reads it without a copy
        col_arg = np.empty((f, p, n, q), np.int8) if train else None  # which column of each window row won
        row_arg = np.empty((f, n, q), np.int8) if train else None  # which row of the window won
        bias = b.astype(dtype, copy=False).reshape(f, 1, 1, 1)

        cols = np.empty(scratch.rows * n * scratch.positions, dtype) if train else None  # backward's, chunk by chunk

        def part(start: int, stop: int) -> None:
            own = scratch if start == 0 else scratch.fresh()
            across = np.empty((f, p, own.images * q), dtype)  # each window row's maximum
            for first, end in own.chunks(stop - start, start):
                m = end - first
                keep = None if cols is None else cols[own.rows * first * own.positions:]
                y = np.matmul(wmat, own.im2col(xc[:, first:end], keep), out=own.product(f, m)).reshape(f, p, p, m * q)
                y += bias  # before comparing, so ties are those of the convolution's own output
                a = across[:, :, : m * q]
                max_into([y[:, :, j] for j in range(p)], a,
                         None if col_arg is None else col_arg[:, :, first:end].reshape(f, p, m * q))
                max_into([a[:, i].reshape(f, m, q) for i in range(p)], out[first:end].reshape(m, f, q).transpose(1, 0, 2),
                         None if row_arg is None else row_arg[:, first:end])

        with one_thread():  # many small products: see engine.nn.blas
            in_parallel(part, n, scratch.images)
        if train:
            self._x, self._args = x, ("im2col", (col_arg, row_arg, cols))
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        """Fills the convolution's ``grads``; returns dx (None for a network's first layer)."""
        if self._args is None:  # the last training forward ran the two layers in turn
            return self.conv.backward(self.pool.backward(dout))
        conv, p, x = self.conv, self.pool.size, self._x
        (how, saved), W = self._args, conv.params["W"]
        dtype = np.result_type(x.dtype, W.dtype)
        self._x = self._args = None
        if how == "rows":
            dW, db, dx = conv_rows.backward_pooled(x.transpose(1, 0, 2, 3), W, dout, saved, conv.pad, conv.need_dx, dtype)
            conv.store_grads(dW, db, dtype)
            return None if dx is None else dx.transpose(1, 0, 2, 3)
        col_arg, row_arg, cols = saved
        f, n, q = row_arg.shape
        scratch = conv._scratch(x, dtype, pool=p)[0]  # the same chunks as the forward's: same batch, same sizes
        dout = dout.reshape(n, f, q).transpose(1, 0, 2).astype(dtype, copy=False)  # (F, N, q): a view

        def part(start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
            own = scratch if start == 0 else scratch.fresh()
            dWT = np.zeros((own.rows, f), dtype)  # summed as col @ doutᵀ, as Convolution.backward does
            db = np.zeros(f, dtype)
            d_across = np.empty((f, p, own.images * q), dtype)
            for first, end in own.chunks(stop - start, start):
                m = end - first
                d = dout[:, first:end]
                da = d_across[:, :, : m * q]
                spread(d, row_arg[:, first:end], [da[:, i].reshape(f, m, q) for i in range(p)], overlap=False)
                dy = own.product(f, m).reshape(f, p, p, m * q)
                spread(da, col_arg[:, :, first:end].reshape(f, p, m * q), [dy[:, :, j] for j in range(p)], overlap=False)
                dy = dy.reshape(f, -1)
                col = cols[own.rows * first * own.positions:][: own.rows * m * own.positions].reshape(own.rows, -1)
                dWT += col @ dy.T  # the forward's col for these images
                db += d.sum(axis=(1, 2))
            return dWT, db

        with one_thread():
            sums = in_parallel(part, n, scratch.images)
        conv.store_grads(sum(s[0] for s in sums).T.reshape(W.shape), sum(s[1] for s in sums), dtype)
        return None  # by im2col only when nobody needs dx


def fuses(conv: Layer, pool: Layer) -> bool:
    """Whether ``pool`` right after ``conv`` can run inside it: p×p windows, stride p, no padding."""
    return (type(conv) is Convolution and type(pool) is Pooling
            and pool.size == pool.stride and pool.size > 1 and pool.pad == 0)


def running_order(layers: list[Layer]) -> list[Layer]:
    """The layers a network runs, in order: ``layers`` with a ReLU just before a max-pool moved after it,
    and a convolution with the max-pool after it as one ``ConvPool``.

    ``max`` commutes with ReLU (both keep the larger value), so pooling first gives the same
    outputs and gradients while the ReLU works on a quarter of the values.
    """
    order = list(layers)
    for i in range(len(order) - 1):
        if type(order[i]) is ReLU and type(order[i + 1]) is Pooling and order[i + 1].pad == 0:
            order[i], order[i + 1] = order[i + 1], order[i]
    fused: list[Layer] = []
    for layer in order:
        if fused and fuses(fused[-1], layer):
            fused[-1] = ConvPool(fused[-1], layer)
        else:
            fused.append(layer)
    return fused


def uses_workers(running: list[Layer], input_shape: tuple) -> bool:
    """Whether some convolution of ``running`` (a network's running order) goes by im2col for these inputs.

    Such a network trains and scores batches with one BLAS thread throughout (``Network.gradient``,
    ``Network.scores``): its convolutions
    keep the cores busy on their own worker threads, and OpenBLAS's threads, woken by an affine
    layer's product between them, spin on for a while after it and take a core from those workers;
    its large affine products go to the same workers (``engine.nn.layers.Affine``). SimpleConvNet's step
    took 16.3 ms so, 10.9 ms this way; DeepConvNet's 157 and 132 ms; DeepConvNet scored 5,000 images
    in 2.1 s and 1.4 s. (LeNet's convolutions go by rows, as large products that BLAS's own threads
    share well.)
    """
    shape = tuple(input_shape)
    for layer in running:
        conv = layer.conv if isinstance(layer, ConvPool) else layer
        if isinstance(conv, Convolution) and len(shape) == 3 and not conv.by_rows(shape):
            return True
        try:
            shape = layer.output_shape(shape)
        except (ConvError, ValueError, IndexError):  # shapes that do not fit fail at the first forward, with its message
            return False
    return False
