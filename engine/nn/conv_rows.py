"""Convolution by rows of a few columns: k stacked input rows times a band matrix, instead of k·k copied windows.

im2col copies every k×k window: 25 times the input for a 5×5 filter, and col2im adds 25 shifted
copies back. There is a cheaper way round for small filter banks. Cut each output row into
blocks of B columns; the block needs the B + k - 1 input columns under it, in each of the k input
rows it reads. Stack those: ``rows`` is (N·oh·blocks, k·(B+k-1)·C), about k·(B+k-1)/B times the
input instead of k·k times. A filter row ``W[f, c, a, :]`` slid along B+k-1 columns is a band
matrix, so the whole convolution is one matrix product ``rows @ band``, with ``band``
(k·(B+k-1)·C, B·F) holding ``W[f, c, a, j - x]`` at ((a, j, c), (x, f)) for 0 ≤ j - x < k:

    out[n, f, y, block·B + x] = Σ_{a, j, c} rows[(n, y, block), (a, j, c)] · band[(a, j, c), (x, f)]

Backward is two more products of the same shapes: ``rowsᵀ @ dout``, whose band diagonals sum to
dW, and ``dout @ bandᵀ``, whose pieces, shifted by a and by block, add up to dx (2k adds, not k·k).
Channels come last within each input column, so rows are copied from channels-last images (what a
pooled convolution hands out, ``forward_pooled``) in long runs, and dx comes back channels-last.

The band is mostly zeros: this does (B+k-1)/k times the arithmetic of im2col, in three large
products BLAS runs at full speed over a fraction of the memory. Which way pays depends on that
extra arithmetic and on how many filters share it, ``(B+k-1)/k · F``, and on im2col's own product
(C·k·k long), which is efficient only when long. Measured on a 2-core machine with batches of 50
and 100, forward / backward against im2col: LeNet's first 5×5 convolution (extra arithmetic 19)
0.57 / 0.51 of the time, its second (38) 0.47 / 0.66; SimpleConvNet's (72) about the same either way
(0.9 to 1.1 over several runs), so it keeps im2col; DeepConvNet's 3×3 convolutions on 16 or 32
channels 1.1 to 2.2 times slower (its first, on one channel, faster with whole rows for blocks, but
it is a small part of that network's time), so 3×3 filters keep im2col. Stride 1 only.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from engine.nn.maxpool import max_into, spread

LIMIT = 60  # by rows when the band's extra arithmetic (B+k-1)/k · F is at most this …
MAX_DEPTH = 200  # … im2col's product is at most this long (C·k·k): longer ones run near BLAS's full speed …
MIN_K = 5  # … and the filters are at least this wide: a 3×3 window is copied only 9 times, and its rows are short
MIN_BLOCK_PER_K = 1.5  # blocks at least this many filter widths wide: narrower ones copy more than they save


def block_width(k: int, ow: int) -> int:
    """The block width B for ``ow`` output columns: the narrowest divisor of ow at least 1.5 k wide (else ow)."""
    return next((b for b in range(1, ow + 1) if ow % b == 0 and b >= MIN_BLOCK_PER_K * k), ow)


def pays(channels: int, k: int, stride: int, ow: int, filters: int) -> bool:
    """Whether a convolution runs faster by rows than by im2col."""
    if stride != 1 or k < MIN_K or channels * k * k > MAX_DEPTH:
        return False
    return (block_width(k, ow) + k - 1) / k * filters <= LIMIT


def pools(k: int, ow: int, pool: int) -> bool:
    """Whether a ``pool``×``pool`` max-pool with stride ``pool`` can run inside the convolution (``forward_pooled``)."""
    return pool > 1 and block_width(k, ow) % pool == 0


class _Shape:
    """The sizes one call works with: images (C, N, H, W), ``pad``, the filters' k, the block width, the pool's p.

    The band's columns for a block run (p, B/p, F): column x = p·x' + dw of filter f at (dw, x', f)
    (without a pool, p = 1: (x, f)).
    """

    def __init__(self, x_shape: tuple, k: int, pad: int, pool: int = 1) -> None:
        self.c, self.n, self.h, self.w = x_shape
        self.k, self.pad, self.pool = k, pad, pool
        self.hp, wp = self.h + 2 * pad, self.w + 2 * pad
        self.oh, self.ow = self.hp - k + 1, wp - k + 1
        self.block = block_width(k, self.ow)  # ≥ k - 1 (or all of ow): a block's input overlaps only the next one's
        self.blocks = self.ow // self.block
        self.span = self.block + k - 1  # input columns a block reads

    def padded(self, xc: np.ndarray) -> np.ndarray:
        """The images with ``pad`` zeros around each (a view when there are none)."""
        if not self.pad:
            return xc
        p = self.pad
        xp = np.zeros((self.n, self.hp, self.w + 2 * p, self.c), xc.dtype).transpose(3, 0, 1, 2)  # channels last
        xp[:, :, p:p + self.h, p:p + self.w] = xc
        return xp

    def rows(self, xp: np.ndarray) -> np.ndarray:
        """(N·oh·blocks, k·span·C): for each image, output row and block, the input it reads, one copy.

        Channels come last, so the copy runs along whole rows of channels-last images (a pooled
        convolution's output, ``forward_pooled``)."""
        sc, sn, sh, sw = xp.strides
        shape = (self.n, self.oh, self.blocks, self.k, self.span, self.c)
        view = as_strided(xp, shape, (sn, sh, self.block * sw, sh, sw, sc), writeable=False)
        return np.ascontiguousarray(view).reshape(-1, self.k * self.span * self.c)

    def diagonals(self, band: np.ndarray) -> list[np.ndarray]:
        """Views of ``band`` (k·span·C, B·F), one per dw < p, each (k, C, k, F, B/p): [a, c, b, f, x'] is the band's
        ((a, j, c), (dw, x', f)) with j = p·x' + dw + b, the place of W[f, c, a, b] for output column p·x' + dw."""
        p, f = self.pool, band.shape[1] // self.block
        band = band.reshape(self.k, self.span, self.c, p, self.block // p, f)
        sa, sj, sc, _, sx, sf = band.strides
        shape, strides = (self.k, self.c, self.k, f, self.block // p), (sa, sc, sj, sf, p * sj + sx)
        return [as_strided(band[:, dw:, :, dw:], shape, strides) for dw in range(p)]

    def band(self, W: np.ndarray, dtype) -> np.ndarray:
        """(k·span·C, B·F): W[f, c, a, j - x] at ((a, j, c), (dw, x', f)), x = p·x' + dw, for 0 ≤ j - x < k, else 0."""
        band = np.zeros((self.k * self.span * self.c, self.block * W.shape[0]), dtype)
        for diagonal in self.diagonals(band):
            diagonal[...] = W.transpose(2, 1, 3, 0)[..., None].astype(dtype, copy=False)
        return band


def forward(xc: np.ndarray, W: np.ndarray, b: np.ndarray, pad: int, dtype) -> np.ndarray:
    """The convolution of images ``xc`` (C, N, H, W) as (F, N, oh, ow), bias added."""
    s, f = _Shape(xc.shape, W.shape[2], pad), W.shape[0]
    products = s.rows(s.padded(xc)) @ s.band(W, dtype)  # (N·oh·blocks, B·F)
    out = np.empty((f, s.n, s.oh, s.ow), dtype)
    np.add(products.reshape(s.n, s.oh, s.blocks, s.block, f).transpose(4, 0, 1, 2, 3),
           b.astype(dtype, copy=False).reshape(f, 1, 1, 1, 1), out=out.reshape(f, s.n, s.oh, s.blocks, s.block))
    return out


def forward_pooled(xc: np.ndarray, W: np.ndarray, b: np.ndarray, pad: int, dtype, pool: int, keep_arg: bool):
    """(the convolution of ``xc`` (C, N, H, W), bias added, max-pooled over ``pool``×``pool`` windows with stride
    ``pool`` as (N, F, oh // pool, ow // pool) stored channels-last, the pool's choices for ``backward_pooled``
    or None).

    The band's columns come in pooled order, so the values each window compares are whole contiguous
    runs of a product row (across) and rows ``blocks`` apart (down); the pool takes the first maximum
    across each window row, then down the rows, as ``engine.nn.maxpool`` does.
    """
    s, f, p = _Shape(xc.shape, W.shape[2], pad, pool), W.shape[0], pool
    ph, half = s.oh // p, s.block // p
    rows, band = s.rows(s.padded(xc)), s.band(W, dtype)
    products = rows @ band
    bias = np.broadcast_to(b.astype(dtype, copy=False), (p, half, f)).reshape(-1)  # each column's filter's bias
    products += bias  # before comparing: ties are the convolution's own
    windows = products.reshape(s.n, s.oh, s.blocks, p, half, f)[:, : p * ph].reshape(s.n, ph, p, s.blocks, p, half, f)
    across = np.empty((s.n, ph, p, s.blocks, half, f), dtype)
    col_arg = np.empty(across.shape, np.int8) if keep_arg else None
    max_into([windows[:, :, :, :, j] for j in range(p)], across, col_arg)
    out = np.empty((s.n, ph, s.blocks, half, f), dtype)  # (N, ph, pw, F)
    row_arg = np.empty(out.shape, np.int8) if keep_arg else None
    max_into([across[:, :, i] for i in range(p)], out, row_arg)
    saved = (col_arg, row_arg, rows, band) if keep_arg else None  # backward reuses rows and band: same x, same W
    return out.reshape(s.n, ph, -1, f).transpose(0, 3, 1, 2), saved


def backward_pooled(xc: np.ndarray, W: np.ndarray, dpool: np.ndarray, saved: tuple, pad: int, need_dx: bool, dtype):
    """(dW, db, dx or None) from the gradient ``dpool`` (N, F, ph, pw) of ``forward_pooled``'s output."""
    col_arg, row_arg, rows, band = saved
    p = col_arg.shape[2]
    s, f = _Shape(xc.shape, W.shape[2], pad, p), W.shape[0]
    n, ph, blocks, half, _ = row_arg.shape
    dp = dpool.reshape(n, f, ph, blocks, half).transpose(0, 2, 3, 4, 1)
    d_across = np.empty(col_arg.shape, dtype)
    spread(dp, row_arg, [d_across[:, :, i] for i in range(p)], overlap=False)
    make = np.empty if p * ph == s.oh else np.zeros  # rows below the last window get no gradient
    d = make((s.n, s.oh, s.blocks, p, half, f), dtype)
    spread(d_across, col_arg, [d[:, : p * ph].reshape(n, ph, p, blocks, p, half, f)[:, :, :, :, j] for j in range(p)],
           overlap=False)
    db = dpool.reshape(n, f, -1).sum(axis=(0, 2), dtype=dtype)
    return _gradients(s, xc, W, d.reshape(-1, f * s.block), db, need_dx, dtype, rows, band)


def backward(xc: np.ndarray, W: np.ndarray, dout: np.ndarray, pad: int, need_dx: bool, dtype):
    """(dW, db, dx (C, N, H, W) or None) for images ``xc`` (C, N, H, W) and output gradient ``dout`` (F, N, oh, ow)."""
    s, f = _Shape(xc.shape, W.shape[2], pad), W.shape[0]
    d = np.empty((s.n, s.oh, s.blocks, s.block, f), dtype)
    np.copyto(d, dout.reshape(f, s.n, s.oh, s.blocks, s.block).transpose(1, 2, 3, 4, 0))
    db = dout.sum(axis=(1, 2, 3), dtype=dtype)
    return _gradients(s, xc, W, d.reshape(-1, f * s.block), db, need_dx, dtype)


def _gradients(s: _Shape, xc: np.ndarray, W: np.ndarray, d: np.ndarray, db: np.ndarray, need_dx: bool, dtype,
               rows: np.ndarray | None = None, band: np.ndarray | None = None):
    """(dW, db, dx or None) from ``d``, the output gradient as rows (N·oh·blocks, B·F) in the band's column order;
    ``rows`` and ``band`` when the forward kept them."""
    pad = s.pad
    grads = (s.rows(s.padded(xc)) if rows is None else rows).T @ d
    dW = sum(diagonal.sum(axis=-1) for diagonal in s.diagonals(grads)).transpose(3, 1, 0, 2)  # along each diagonal
    if not need_dx:
        return dW, db, None
    spread_back = (d @ (s.band(W, dtype) if band is None else band).T).reshape(s.n, s.oh, s.blocks, s.k, s.span, s.c)
    dxp = np.zeros((s.n, s.hp, s.w + 2 * pad, s.c), dtype)  # channels last, like the rows
    sn, sh, sw, sc = dxp.strides
    for a in range(s.k):  # output row y read input row y + a through filter row a
        target = dxp[:, a:a + s.oh]
        if s.blocks == 1:  # one block reads whole padded rows: one add, contiguous across columns and channels
            target += spread_back[:, :, 0, a]
            continue
        head = as_strided(target, (s.n, s.oh, s.blocks, s.block, s.c), (sn, sh, s.block * sw, sw, sc))
        head += spread_back[:, :, :, a, :s.block]  # each block's own columns: the blocks do not overlap there
        tail = as_strided(target[:, :, s.block:], (s.n, s.oh, s.blocks, s.k - 1, s.c), (sn, sh, s.block * sw, sw, sc))
        tail += spread_back[:, :, :, a, s.block:]  # the k-1 columns a block shares with the next one
    dx = dxp[:, pad:pad + s.h, pad:pad + s.w].transpose(3, 0, 1, 2)  # (C, N, H, W), a view of channels-last memory
    return dW, db, dx
