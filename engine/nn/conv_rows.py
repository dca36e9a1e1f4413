"""Convolution of narrow images by whole rows: k copied rows per output row instead of k·k copied windows.

im2col copies every k×k window: 25 times the input for a 5×5 filter, and col2im adds 25 shifted
copies back. When the (padded) image is narrow, there is a cheaper way round. Stack, for each
output row y, the k input rows y … y+k-1 of every channel: ``rows`` is (N·oh, k·C·Wp), only k
times the input. A filter row ``W[f, c, a, :]`` slid along a row of width Wp is a band matrix,
so the whole convolution is one matrix product ``rows @ band``, with ``band`` (k·C·Wp, F·ow)
holding ``W[f, c, a, x' - x]`` at ((a, c, x'), (f, x)) for 0 ≤ x' - x < k and zero elsewhere:

    out[n, f, y, x] = Σ_{a, c, x'} rows[(n, y), (a, c, x')] · band[(a, c, x'), (f, x)]

Backward is two more products of the same shapes: ``rowsᵀ @ dout`` whose band diagonals sum to
dW, and ``dout @ bandᵀ``, whose k row blocks, shifted by a, add up to dx (k adds, not k·k).

The band matrix is mostly zeros: this does Wp/k times the arithmetic of im2col, in three large
products BLAS runs at full speed, over a fraction of the memory. Which pays depends on that extra
arithmetic per output value, (Wp/k)·F: measured on a 2-core machine (batches of 50 and 100),
LeNet's two 5×5 convolutions (28/5·8 = 45 and 12/5·16 = 38) run forward and backward in half
the time or less; SimpleConvNet's first layer (28/5·30 = 168) runs forward 20% slower and its
backward (no dx to compute) 16% faster; DeepConvNet's 3×3 convolutions (160 to 192) run 1.5 to 3
times slower, but for its first layer's backward (no dx), as fast either way. Hence the two limits
below. Stride 1 only.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

LIMIT = 100  # rows when the band's extra arithmetic (Wp/k)·F is at most this, else im2col …
LIMIT_WITHOUT_DX = 170  # … or this, for a backward pass without dx (a first layer: only dW and db)


def pays(k: int, stride: int, padded_width: int, filters: int, dx: bool = True) -> bool:
    """Whether a convolution runs faster by rows than by im2col: forward, or backward with or without ``dx``."""
    return stride == 1 and padded_width / k * filters <= (LIMIT if dx else LIMIT_WITHOUT_DX)


def _padded(xc: np.ndarray, pad: int) -> np.ndarray:
    """The images (C, N, H, W) with ``pad`` zeros around each (a view when there are none)."""
    if not pad:
        return xc
    c, n, h, w = xc.shape
    xp = np.zeros((c, n, h + 2 * pad, w + 2 * pad), xc.dtype)
    xp[:, :, pad:pad + h, pad:pad + w] = xc
    return xp


def _rows(xp: np.ndarray, k: int, oh: int) -> np.ndarray:
    """(N·oh, k·C·Wp): for each image and output row y, input rows y … y+k-1 of every channel, side by side."""
    c, n, _, wp = xp.shape
    sc, sn, sh, sw = xp.strides
    view = as_strided(xp, (n, oh, k, c, wp), (sn, sh, sh, sc, sw), writeable=False)
    return np.ascontiguousarray(view).reshape(n * oh, k * c * wp)


def _diagonals(band: np.ndarray, k: int, ow: int) -> np.ndarray:
    """A view of ``band`` (k, C, Wp, F, ow) as (k, C, k, F, ow): [a, c, b, f, x] is band[a, c, x + b, f, x]."""
    sa, sc, sx_in, sf, sx_out = band.strides
    a, c, _, f, _ = band.shape
    return as_strided(band, (a, c, k, f, ow), (sa, sc, sx_in, sf, sx_in + sx_out))


def _band(W: np.ndarray, wp: int, ow: int, dtype) -> np.ndarray:
    """(k·C·Wp, F·ow): W[f, c, a, x' - x] at ((a, c, x'), (f, x)) for 0 ≤ x' - x < k, else 0."""
    f, c, k, _ = W.shape
    band = np.zeros((k, c, wp, f, ow), dtype)
    _diagonals(band, k, ow)[...] = W.transpose(2, 1, 3, 0)[..., None].astype(dtype, copy=False)
    return band.reshape(k * c * wp, f * ow)


def forward(xc: np.ndarray, W: np.ndarray, b: np.ndarray, pad: int, dtype) -> np.ndarray:
    """The convolution of images ``xc`` (C, N, H, W) as (F, N, oh, ow), bias added."""
    f, _, k, _ = W.shape
    xp = _padded(xc, pad)
    n, hp, wp = xp.shape[1], xp.shape[2], xp.shape[3]
    oh, ow = hp - k + 1, wp - k + 1
    products = _rows(xp, k, oh) @ _band(W, wp, ow, dtype)  # (N·oh, F·ow)
    out = np.empty((f, n, oh, ow), dtype)
    np.add(products.reshape(n, oh, f, ow).transpose(2, 0, 1, 3), b.astype(dtype, copy=False).reshape(f, 1, 1, 1),
           out=out)
    return out


def backward(xc: np.ndarray, W: np.ndarray, dout: np.ndarray, pad: int, need_dx: bool, dtype):
    """(dW, db, dx (C, N, H, W) or None) for images ``xc`` (C, N, H, W) and output gradient ``dout`` (F, N, oh, ow)."""
    f, c, k, _ = W.shape
    xp = _padded(xc, pad)
    n, hp, wp = xp.shape[1], xp.shape[2], xp.shape[3]
    oh, ow = hp - k + 1, wp - k + 1
    d = np.ascontiguousarray(dout.transpose(1, 2, 0, 3), dtype=dtype).reshape(n * oh, f * ow)
    db = dout.sum(axis=(1, 2, 3), dtype=dtype)
    grads = (_rows(xp, k, oh).T @ d).reshape(k, c, wp, f, ow)
    dW = _diagonals(grads, k, ow).sum(axis=-1).transpose(3, 1, 0, 2)  # summed along each band diagonal
    if not need_dx:
        return dW, db, None
    spread = (d @ _band(W, wp, ow, dtype).T).reshape(n, oh, k, c, wp)
    dxp = np.zeros((n, hp, c, wp), dtype)
    for a in range(k):  # output row y got input row y + a through filter row a
        dxp[:, a:a + oh] += spread[:, :, a]
    h, w = hp - 2 * pad, wp - 2 * pad
    dx = np.empty((c, n, h, w), dtype)
    np.copyto(dx, dxp[:, pad:pad + h, :, pad:pad + w].transpose(2, 0, 1, 3))
    return dW, db, dx
