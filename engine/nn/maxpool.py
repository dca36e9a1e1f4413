"""Max pooling in two passes: the maximum across each window's columns, then down its rows.

The book's pooling copies every window into an im2col matrix and takes ``np.max`` and
``np.argmax`` along its rows. Here the image is only ever read through strided views: first
``size`` views one column apart give each window row's maximum (and which column held it), then
``size`` views one row apart give the window's maximum (and which row). Taking the first row
that holds the window's largest value, and in it the first column, is exactly the book's
``argmax``, the first maximum in row-major order; so ties send the gradient where the book does.

Arrays follow the memory order of the input (a convolution hands out channel-major data), and
which row or column won is kept as int8: a quarter of the memory of float32, an eighth of int64.
"""
from __future__ import annotations

import numpy as np


def empty_in_layout(shape: tuple, strides: tuple, dtype, zeros: bool = False) -> np.ndarray:
    """An array of logical ``shape`` stored in the same axis order as an array with ``strides``.

    Convolutions hand out (N, C, H, W) arrays stored channel-major (C, N, H, W); keeping that
    order lets elementwise operations run over contiguous memory and the next layer reshape
    without copying.
    """
    order = sorted(range(len(shape)), key=lambda a: -strides[a])
    make = np.zeros if zeros else np.empty
    return make([shape[a] for a in order], dtype=dtype).transpose(np.argsort(order))


def _windows(a: np.ndarray, size: int, stride: int, count: int, axis: int) -> list[np.ndarray]:
    """``size`` views of ``a`` along ``axis``, the i-th holding element ``stride·n + i`` at position n < ``count``."""
    views = []
    for i in range(size):
        index = [slice(None)] * a.ndim
        index[axis] = slice(i, i + stride * (count - 1) + 1, stride)
        views.append(a[tuple(index)])
    return views


def max_into(views: list[np.ndarray], out: np.ndarray, arg: np.ndarray | None) -> None:
    """``out`` = elementwise maximum of ``views`` (at least two); ``arg`` (int8, or None) = the first view holding it."""
    if arg is not None:
        np.greater(views[1], views[0], out=arg.view(np.bool_))  # index 1 only where strictly larger: ties keep the first
    np.maximum(views[0], views[1], out=out)
    for index, v in enumerate(views[2:], start=2):
        if arg is not None:
            np.copyto(arg, np.int8(index), where=np.greater(v, out))
        np.maximum(out, v, out=out)


def _running_max(views: list[np.ndarray], keep_arg: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Elementwise maximum of ``views`` and (when ``keep_arg``) the index of the first view holding it, as int8."""
    first = views[0]
    out = empty_in_layout(first.shape, first.strides, first.dtype)
    arg = empty_in_layout(first.shape, first.strides, np.int8) if keep_arg else None
    if len(views) == 1:
        np.copyto(out, first)
        if keep_arg:
            arg.fill(0)
    else:
        max_into(views, out, arg)
    return out, arg


def spread(d: np.ndarray, arg: np.ndarray, views: list[np.ndarray], overlap: bool) -> None:
    """Send each value of ``d`` to the view ``arg`` names: ``views[i] (+)= d where arg == i``."""
    if overlap:  # a pixel can belong to several windows: add (target starts at zero)
        for index, v in enumerate(views):
            v += d * np.equal(arg, index)
    elif len(views) == 2:  # arg is 0 or 1: the second view gets d·arg, the first the rest (exactly 0 or d)
        np.multiply(d, arg, out=views[1])
        np.subtract(d, views[1], out=views[0])
    else:
        for index, v in enumerate(views):
            np.multiply(d, np.equal(arg, index), out=v)


def max_pool(xp: np.ndarray, size: int, stride: int, oh: int, ow: int, keep_arg: bool):
    """(output (N, C, oh, ow), what backward needs or None) for windows of the (already padded) images ``xp``."""
    rows = stride * (oh - 1) + size
    across, col_arg = _running_max(_windows(xp[:, :, :rows], size, stride, ow, axis=3), keep_arg)
    out, row_arg = _running_max(_windows(across, size, stride, oh, axis=2), keep_arg)
    return out, ((col_arg, row_arg, xp.shape, xp.strides) if keep_arg else None)


def max_pool_backward(dout: np.ndarray, size: int, stride: int, saved: tuple) -> np.ndarray:
    """Gradient for the padded images, from ``dout`` (N, C, oh, ow) and what ``max_pool`` saved."""
    col_arg, row_arg, shape, strides = saved
    oh, ow = row_arg.shape[2:]
    rows = stride * (oh - 1) + size
    overlap = stride < size
    d_across = empty_in_layout(col_arg.shape, strides, dout.dtype, zeros=stride != size)
    spread(dout, row_arg, _windows(d_across, size, stride, oh, axis=2), overlap)
    covered = stride == size and rows == shape[2] and stride * (ow - 1) + size == shape[3]
    dxp = empty_in_layout(shape, strides, dout.dtype, zeros=not covered)
    spread(d_across, col_arg, _windows(dxp[:, :, :rows], size, stride, ow, axis=3), overlap)
    return dxp
