"""im2col and col2im for a few images at a time, so a convolution's scratch stays small and in cache.

The book builds one ``col`` matrix for the whole batch: for the second convolution of DeepConvNet
and 1,000 images that is 144 × 784,000 floats (450 MB), written once and read once from main
memory. Here ``col`` holds a chunk of images (about ``CHUNK_BYTES``): each chunk's windows are
copied in by one strided copy, multiplied while still in the CPU's cache, and the buffer is
reused for the next chunk. ``col`` is the book's im2col transposed, (C·k·k, images·positions),
so that ``W @ col`` writes the output filter by filter.

Wide rows (stride 1): a window's row is read straight across the padded image, so every output
row is computed at all ``Wp`` (padded width) columns, of which the last ``k - 1`` are never used.
im2col then copies runs of ``oh·Wp`` values instead of ``ow``, and col2im adds them back the same
way: far fewer, longer copies, for a few percent more arithmetic. The unused columns of the
output are left out of the view the layer returns; in backward they get a zero gradient.

Pooled order (``pool`` = p > 1, for a p×p max-pool with stride p right after the convolution):
the columns of a chunk run (p, p, M, oh/p, ow/p), window offset outermost, so ``W @ col`` holds
the p·p values each pooling window compares in p·p contiguous blocks (``engine.nn.conv_pool``).
Outputs no window covers (an odd last row or column) are not computed. There is no col2im in
that order: it would take k²·p² small strided adds per chunk.

A ``Scratch`` belongs to one forward or backward call (never to the layer), so predicting from
one thread while another trains shares nothing.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

CHUNK_BYTES = 1 << 20  # about the size of a core's L2 cache: col is read back before it is evicted
WIDE_MAX_COST = 1.5  # wide rows when they add at most 50% to the arithmetic (Wp / ow); else copy ow at a time


class Scratch:
    """Buffers for the im2col / col2im of one chunk of images at a time, reused from chunk to chunk.

    ``x_shape`` is the (C, N, H, W) shape of the images; ``k``, ``stride``, ``pad`` the filter's,
    ``oh``, ``ow`` the output's size. Output rows are stored ``row`` values apart (``ow``, or the
    padded width for wide rows), so each image has ``positions = oh·row`` columns in ``col``;
    in pooled order (``pool`` > 1) ``positions = pool²·(oh // pool)·(ow // pool)``.
    """

    def __init__(self, x_shape: tuple, k: int, stride: int, pad: int, oh: int, ow: int, dtype, pool: int = 1) -> None:
        c, n, h, w = x_shape
        self.k, self.stride, self.pad, self.oh, self.ow, self.h, self.w = k, stride, pad, oh, ow, h, w
        hp, wp = h + 2 * pad, w + 2 * pad
        self.pool = pool
        self.wide = pool == 1 and stride == 1 and wp <= WIDE_MAX_COST * ow
        self.row = wp if self.wide else ow
        self.positions = oh * self.row if pool == 1 else pool * pool * (oh // pool) * (ow // pool)
        self.rows = c * k * k
        self.images = max(1, min(n, CHUNK_BYTES // (self.rows * self.positions * np.dtype(dtype).itemsize)))
        self.dtype = dtype
        # wide rows read up to k - 1 values past an image's last row: one spare zero row
        self._padded_shape = (c, self.images, hp + self.wide, wp) if pad or self.wide else None
        self._col = self._padded = self._dpadded = self._dcol = self._dout = self._products = None  # made on first use

    def chunks(self, n: int, start: int = 0):
        """(first, end) image indices of each chunk of ``n`` images from ``start``."""
        return [(i, min(start + n, i + self.images)) for i in range(start, start + n, self.images)]

    def fresh(self) -> "Scratch":
        """A scratch of the same shapes with buffers of its own (for another thread)."""
        twin = object.__new__(Scratch)
        twin.__dict__.update(self.__dict__)
        twin._col = twin._padded = twin._dpadded = twin._dcol = twin._dout = twin._products = None
        return twin

    def _windows(self, xp: np.ndarray) -> np.ndarray:
        """Read-only view of the windows of ``xp``, shaped like ``col`` split into (C, k, k, M, …)."""
        (c, m), (sc, sn, sh, sw) = xp.shape[:2], xp.strides
        k, s = self.k, self.stride
        if self.wide:  # [c, i, j, n, t] = xp[c, n] flattened, at i·Wp + j + t
            return as_strided(xp, (c, k, k, m, self.positions), (sc, sh, sw, sn, sw), writeable=False)
        if self.pool > 1:  # [c, i, j, dh, dw, n, ph, pw] = xp[c, n, s·(p·ph + dh) + i, s·(p·pw + dw) + j]
            p = self.pool
            return as_strided(xp, (c, k, k, p, p, m, self.oh // p, self.ow // p),
                              (sc, sh, sw, s * sh, s * sw, sn, p * s * sh, p * s * sw), writeable=False)
        return as_strided(xp, (c, k, k, m, self.oh, self.ow), (sc, sh, sw, sn, s * sh, s * sw), writeable=False)

    def im2col(self, xc: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``col`` (C·k·k, M·positions) of the M images ``xc`` (C, M, H, W); valid until the next call, or
        written into ``out`` (at least C·k·k·M·positions long) to keep."""
        m, p = xc.shape[1], self.pad
        if out is None:
            if self._col is None:
                self._col = np.empty(self.rows * self.images * self.positions, self.dtype)
            out = self._col
        if self._padded is None and self._padded_shape is not None:
            self._padded = np.zeros(self._padded_shape, self.dtype)
        if self._padded is not None:  # the border stays zero: only the inside is ever written
            xp = self._padded[:, :m]
            xp[:, :, p : p + self.h, p : p + self.w] = xc
        else:
            xp = xc
        windows = self._windows(xp)
        col = out[: self.rows * m * self.positions].reshape(windows.shape)
        np.copyto(col, windows)
        return col.reshape(self.rows, -1)

    def product(self, filters: int, m: int) -> np.ndarray:
        """A (``filters``, M·positions) buffer for ``W @ col`` of M images."""
        if self._products is None or self._products.shape[0] != filters:
            self._products = np.empty((filters, self.images * self.positions), self.dtype)
        return self._products[:, : m * self.positions]

    def gradient(self, dout: np.ndarray) -> np.ndarray:
        """The output gradient of a chunk, (F, M, oh, ow), as an (F, M·positions) matrix (zero in unused columns)."""
        f, m = dout.shape[:2]
        if not self.wide:
            return dout.reshape(f, -1)
        if self._dout is None or self._dout.shape[0] != f:
            self._dout = np.zeros((f, self.images, self.oh, self.row), self.dtype)
        d = self._dout[:, :m]
        d[..., : self.ow] = dout
        return d.reshape(f, -1)

    def dcol(self, columns: int) -> np.ndarray:
        """A (C·k·k, ``columns``) buffer for the gradient of ``col``."""
        if self._dcol is None:
            self._dcol = np.empty(self.rows * self.images * self.positions, self.dtype)
        return self._dcol[: self.rows * columns].reshape(self.rows, columns)

    def col2im(self, dcol: np.ndarray, dx: np.ndarray) -> None:
        """Write into ``dx`` (C, M, H, W) the image gradient of ``dcol``: each window adds back where it was read."""
        c, m = dx.shape[:2]
        k, s, p, oh, ow = self.k, self.stride, self.pad, self.oh, self.ow
        if self._padded_shape is not None:
            if self._dpadded is None:
                self._dpadded = np.empty(self._padded_shape, self.dtype)
            target = self._dpadded[:, :m]
        else:
            target = dx
        if self.pool > 1:
            raise NotImplementedError("col2im in pooled order (engine.nn.conv_pool fuses only layers without dx)")
        target.fill(0)
        d = dcol.reshape(self._windows(target).shape)
        # one add per kernel offset (np.add.at would be far slower)
        for i in range(k):
            for j in range(k):
                if self.wide:  # unused columns of dcol are zero: adding them past a row's end changes nothing
                    start = i * self.row + j
                    target.reshape(c, m, -1)[:, :, start : start + self.positions] += d[:, i, j]
                else:
                    target[:, :, i : i + s * oh : s, j : j + s * ow : s] += d[:, i, j]
        if target is not dx:
            dx[...] = target[:, :, p : p + self.h, p : p + self.w]
