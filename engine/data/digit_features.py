"""What the "not a digit" check measures in a 28×28 drawing: stroke width, pieces, loops and a shape descriptor.

Everything here works on the network's input (a 28×28 image in [0, 1] after
:func:`engine.data.preprocess.mnist_preprocess`) and costs well under a millisecond per image, so
the check can run on every stroke. :mod:`engine.data.digit_check` compares these numbers with
the same numbers measured on real MNIST training digits.
"""
from __future__ import annotations

import numpy as np

SIDE = 28
STROKE_LEVEL = 0.35  # a pixel brighter than this is part of a stroke (MNIST strokes have soft edges)
MIN_PIECE = 3  # pixels: smaller specks are not counted as separate strokes
MIN_PIECE_SHARE = 0.05  # nor are pieces holding less than this share of the stroke pixels
MIN_HOLE = 2  # pixels: a loop must enclose at least this much background to count

# the shape descriptor: histograms of stroke-edge directions in overlapping 7×7 cells (a HOG without blocks)
CELL = 7
CELL_STRIDE = 3
DIRECTIONS = 8  # unsigned edge directions in [0, π)
_CELL_STARTS = tuple(range(0, SIDE - CELL + 1, CELL_STRIDE))
DESCRIPTOR_SIZE = len(_CELL_STARTS) ** 2 * DIRECTIONS

STATS = ("stroke width", "pieces", "loops")


def as_images(images: np.ndarray) -> np.ndarray:
    """(N, 28, 28) float32 from one image or a batch, as 28×28 or 784 values."""
    arr = np.asarray(images, dtype=np.float32)
    if arr.size % (SIDE * SIDE) or (arr.ndim >= 2 and arr.shape[-1] not in (SIDE, SIDE * SIDE)):
        raise ValueError(f"expected 28×28 images, got an array of shape {arr.shape}")
    return arr.reshape(-1, SIDE, SIDE)


def count_pieces(mask: np.ndarray, diagonal: bool = True, min_size: int = 1,
                 enclosed_only: bool = False) -> tuple[int, np.ndarray]:
    """(number of connected regions of True, their sizes); 8-connected when ``diagonal`` else 4-connected.

    Works on runs of pixels row by row (a union-find over at most a few hundred runs), so a 28×28
    mask takes a few tens of microseconds. ``enclosed_only`` drops regions touching the border.
    """
    h, w = mask.shape
    framed = np.zeros((h, w + 2), dtype=np.int8)
    framed[:, 1:-1] = mask
    edges = np.diff(framed, axis=1)
    rows, starts = np.nonzero(edges == 1)
    ends = np.nonzero(edges == -1)[1]  # same order as starts: row-major
    n = rows.size
    if n == 0:
        return 0, np.zeros(0, dtype=np.int64)
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    reach = 1 if diagonal else 0
    first = np.searchsorted(rows, np.arange(h + 1)).tolist()
    s, e = starts.tolist(), ends.tolist()
    for r in range(1, h):
        i, i_end, j, j_end = first[r - 1], first[r], first[r], first[r + 1]
        while i < i_end and j < j_end:
            if s[i] < e[j] + reach and s[j] < e[i] + reach:  # the runs touch (diagonally too when reach is 1)
                a, b = root(i), root(j)
                if a != b:
                    parent[a] = b
            if e[i] < e[j]:
                i += 1
            else:
                j += 1
    roots = np.array([root(i) for i in range(n)])
    sizes = np.bincount(roots, weights=ends - starts, minlength=n)
    keep = np.bincount(roots, minlength=n) > 0
    if enclosed_only:
        touches = (rows == 0) | (rows == h - 1) | (starts == 0) | (ends == w)
        keep[roots[touches]] = False
    sizes = sizes[keep & (sizes >= min_size)].astype(np.int64)
    return int(sizes.size), sizes


def stroke_stats(image: np.ndarray) -> np.ndarray:
    """The numbers of ``STATS`` for one 28×28 image.

    stroke width: 2 × stroke area / stroke outline (a stroke of width w and length L has area wL and
    outline about 2L; a filled blob is "wide"). pieces: separate strokes, ignoring specks. loops:
    background regions enclosed by strokes.
    """
    img = as_images(image)[0]
    mask = img > STROKE_LEVEL
    area = int(np.count_nonzero(mask))
    if area == 0:
        return np.zeros(len(STATS))
    outline = (np.count_nonzero(mask[1:] != mask[:-1]) + np.count_nonzero(mask[:, 1:] != mask[:, :-1])
               + np.count_nonzero(mask[0]) + np.count_nonzero(mask[-1])
               + np.count_nonzero(mask[:, 0]) + np.count_nonzero(mask[:, -1]))
    pieces, _ = count_pieces(mask, diagonal=True, min_size=max(MIN_PIECE, int(MIN_PIECE_SHARE * area)))
    loops, _ = count_pieces(~mask, diagonal=False, min_size=MIN_HOLE, enclosed_only=True)
    return np.array([2.0 * area / outline, float(pieces), float(loops)])


def shape_descriptor(images: np.ndarray) -> np.ndarray:
    """(N, DESCRIPTOR_SIZE) float32, each row of unit length: where the strokes run in which direction.

    For each overlapping 7×7 cell, a histogram of edge directions weighted by edge strength. Two
    drawings of the same digit give nearby descriptors even when their strokes differ in width or
    brightness; a scribble, a letter or a star lands far from every real digit.
    """
    x = as_images(images)
    return np.concatenate([_describe(x[i:i + _CHUNK]) for i in range(0, len(x), _CHUNK)]) if len(x) else \
        np.zeros((0, DESCRIPTOR_SIZE), np.float32)


_CHUNK = 1024  # images described at once (keeps the working arrays at a few tens of MB)
_STARTS = np.array(_CELL_STARTS)


def _describe(x: np.ndarray) -> np.ndarray:
    n = len(x)
    gy = np.zeros_like(x)
    gx = np.zeros_like(x)
    gy[:, 1:-1] = x[:, 2:] - x[:, :-2]
    gx[:, :, 1:-1] = x[:, :, 2:] - x[:, :, :-2]
    strength = np.hypot(gx, gy).reshape(-1)
    position = (np.mod(np.arctan2(gy, gx), np.pi) * (DIRECTIONS / np.pi)).reshape(-1)  # in [0, DIRECTIONS)
    lower = np.floor(position)
    upper_weight = position - lower
    lower = lower.astype(np.int64) % DIRECTIONS
    slots = np.arange(strength.size, dtype=np.int64) * DIRECTIONS
    size = strength.size * DIRECTIONS  # each pixel votes into its two nearest direction bins
    votes = (np.bincount(slots + lower, strength * (1.0 - upper_weight), minlength=size)
             + np.bincount(slots + (lower + 1) % DIRECTIONS, strength * upper_weight, minlength=size))
    votes = votes.reshape(n, SIDE, SIDE, DIRECTIONS)
    rows = np.zeros((n, SIDE + 1, SIDE, DIRECTIONS))  # running sums down the rows, then across the columns
    np.cumsum(votes, axis=1, out=rows[:, 1:])
    bands = rows[:, _STARTS + CELL] - rows[:, _STARTS]
    cols = np.zeros((n, len(_STARTS), SIDE + 1, DIRECTIONS))
    np.cumsum(bands, axis=2, out=cols[:, :, 1:])
    out = (cols[:, :, _STARTS + CELL] - cols[:, :, _STARTS]).reshape(n, -1).astype(np.float32)
    out /= np.linalg.norm(out, axis=1, keepdims=True) + 1e-6
    return out
