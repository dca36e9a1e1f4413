"""The book's convolution and pooling, written for clarity, one window at a time: what the fast layers must match.

im2col copies every window into a row, convolution is one matrix product, col2im adds every window
back, pooling takes ``max`` and ``argmax`` along the rows (the first maximum wins a tie).
"""
import numpy as np


def out_size(size, k, stride, pad):
    return (size + 2 * pad - k) // stride + 1


def ref_im2col(x, k, stride, pad):
    """(N·oh·ow, C·k·k): one row per window, in (image, row, column) order."""
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = out_size(h, k, stride, pad), out_size(w, k, stride, pad)
    rows = [xp[a, :, i * stride : i * stride + k, j * stride : j * stride + k].reshape(-1)
            for a in range(n) for i in range(oh) for j in range(ow)]
    return np.array(rows), oh, ow


def ref_col2im(col, x_shape, k, stride, pad):
    """Adds every row of ``col`` back onto the window it came from."""
    n, c, h, w = x_shape
    oh, ow = out_size(h, k, stride, pad), out_size(w, k, stride, pad)
    dxp = np.zeros((n, c, h + 2 * pad, w + 2 * pad))
    row = 0
    for a in range(n):
        for i in range(oh):
            for j in range(ow):
                dxp[a, :, i * stride : i * stride + k, j * stride : j * stride + k] += col[row].reshape(c, k, k)
                row += 1
    return dxp[:, :, pad : pad + h, pad : pad + w]


def ref_conv(x, W, b, stride, pad):
    f, _, k, _ = W.shape
    col, oh, ow = ref_im2col(x, k, stride, pad)
    out = col @ W.reshape(f, -1).T + b
    return out.reshape(len(x), oh, ow, f).transpose(0, 3, 1, 2), col


def ref_conv_backward(dout, x, W, col, stride, pad):
    f, _, k, _ = W.shape
    d = dout.transpose(0, 2, 3, 1).reshape(-1, f)
    dW = (col.T @ d).T.reshape(W.shape)
    db = d.sum(axis=0)
    dx = ref_col2im(d @ W.reshape(f, -1), x.shape, k, stride, pad)
    return dx, dW, db


def ref_pool(x, size, stride, pad):
    """(output, argmax per window, rows): each channel's windows as rows, max and argmax along them."""
    n, c, h, w = x.shape
    col, oh, ow = ref_im2col(x.reshape(n * c, 1, h, w), size, stride, pad)
    arg = np.argmax(col, axis=1)  # the first maximum, as in the book
    return col.max(axis=1).reshape(n, c, oh, ow), arg, col.shape


def ref_pool_backward(dout, x_shape, arg, col_shape, size, stride, pad):
    n, c, h, w = x_shape
    dcol = np.zeros(col_shape)
    dcol[np.arange(len(arg)), arg] = dout.reshape(-1)
    return ref_col2im(dcol, (n * c, 1, h, w), size, stride, pad).reshape(x_shape)


def layouts(x):
    """The same values as a plain (N, C, H, W) array and stored channel-major, as a convolution hands them out."""
    return [x, np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)]
