"""What the first layer looks for: each hidden unit's (or filter's) weights as a small picture.

Red is a positive weight (ink there makes the unit fire), blue negative, white zero.
Each tile is scaled on its own, symmetrically around zero, so weak units stay visible.
All tiles are rendered into one image in NumPy through a colour table, so updating a few times a
second is cheap (about a millisecond for 64 tiles of 28×28); callers pass only the units shown
(``set_weights(W[:, :64], total=W.shape[1])``) so that no more weights are copied than drawn.
"""
from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QSizePolicy, QWidget

NEGATIVE = np.array([33, 102, 172], dtype=np.float32)
ZERO = np.array([247, 247, 247], dtype=np.float32)
POSITIVE = np.array([178, 24, 43], dtype=np.float32)
GAP_COLOUR = QColor(70, 70, 70)
GAP = 2  # screen pixels between tiles
IMAGE_SIDE = 28  # a first affine layer reads 28×28 images
MAX_TILES = 64  # tiles shown at most (the first units or filters)
LEVELS = 255  # colour steps on each side of zero: finer than a screen's 8 bits per channel can show


def _colour_table() -> np.ndarray:
    """(2 * LEVELS + 1, 3) uint8: the colour of each weight level from -1 (blue) through 0 (white) to +1 (red)."""
    v = np.linspace(-1.0, 1.0, 2 * LEVELS + 1, dtype=np.float32)[:, None]
    rgb = np.where(v >= 0, ZERO + v * (POSITIVE - ZERO), ZERO - v * (NEGATIVE - ZERO))
    return np.rint(rgb).astype(np.uint8)


COLOURS = _colour_table()


class WeightGridError(ValueError):
    """Bad arguments to the weight grid (max_tiles < 1, non-finite weights)."""


def weight_tiles(W: np.ndarray, max_tiles: int = MAX_TILES) -> np.ndarray | None:
    """(n, k, k) tiles from affine weights (784, H) -> columns as 28×28, or conv filters (F, C, k, k) -> first channel.

    Returns None for shapes that are not pictures (e.g. a second affine layer 100×10).
    """
    W = np.asarray(W)
    if W.ndim == 2:
        if W.shape[0] != IMAGE_SIDE * IMAGE_SIDE or W.shape[1] < 1:
            return None  # a deeper layer (e.g. 100×10) has no pixel layout, even when its size is a square
        return W[:, :max_tiles].T.reshape(-1, IMAGE_SIDE, IMAGE_SIDE)
    if W.ndim == 4 and W.shape[2] == W.shape[3] and min(W.shape) >= 1:
        return W[:max_tiles, 0]
    return None


def diverging_rgb(tiles: np.ndarray) -> np.ndarray:
    """(n, k, k) weights -> (n, k, k, 3) uint8, each tile scaled by its own largest |weight|.

    Each weight becomes one of ``2 * LEVELS + 1`` levels and takes its colour from ``COLOURS``: one
    lookup instead of interpolating three channels per pixel.
    """
    t = np.asarray(tiles, dtype=np.float32)
    flat = t.reshape(len(t), -1)
    scale = np.abs(flat).max(axis=1) if flat.size else np.ones(len(t), np.float32)
    scale[scale == 0] = 1.0  # an all-zero tile stays white instead of dividing by zero
    level = flat * (LEVELS / scale)[:, None]
    level += LEVELS
    np.rint(level, out=level)
    np.clip(level, 0, 2 * LEVELS, out=level)
    return COLOURS[level.astype(np.intp)].reshape(*t.shape, 3)


class WeightGrid(QWidget):
    """A grid of small tiles, one per hidden unit or filter, or a short message for other shapes."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._atlas: np.ndarray | None = None  # (k, n*k, 3) uint8: tiles side by side, kept alive for the QImage
        self._qimage: QImage | None = None
        self._count = 0
        self._tile = 0
        self._total = 0
        self._kind = "units"
        self._message = "No weights to show"
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setToolTip("First-layer weights of each hidden unit: red = positive (ink here excites it), "
                        "blue = negative, white = zero. Each tile is scaled on its own.")

    def set_weights(self, W: np.ndarray | None, max_tiles: int = MAX_TILES, total: int | None = None) -> None:
        """Show the first ``max_tiles`` units of W (784×H affine or F×C×k×k conv), or a message for None/other.

        ``total``: how many units or filters the layer has, when W holds only the first of them (the caption
        says "64 of 256 units"); by default W's own count.
        """
        if int(max_tiles) < 1:
            raise WeightGridError(f"WeightGrid.set_weights: max_tiles must be at least 1, got {max_tiles}")
        tiles = None if W is None else weight_tiles(W, int(max_tiles))
        if tiles is None:
            self._atlas, self._qimage, self._count, self._tile, self._total = None, None, 0, 0, 0
            self._message = ("No weights to show" if W is None else
                             f"Weights of shape {tuple(np.shape(W))} are not pictures: "
                             "only a first layer (784×H) or conv filters (F×C×k×k) can be shown")
            self.update()
            return
        if not np.all(np.isfinite(tiles)):
            raise WeightGridError("WeightGrid.set_weights: the weights contain NaN or infinity")
        n, k, _ = tiles.shape
        own = np.shape(W)[1] if np.ndim(W) == 2 else np.shape(W)[0]
        self._total = own if total is None else max(own, int(total))
        self._kind = "units" if np.ndim(W) == 2 else "filters"
        self._atlas = np.ascontiguousarray(diverging_rgb(tiles).transpose(1, 0, 2, 3).reshape(k, n * k, 3))
        self._qimage = QImage(self._atlas.data, n * k, k, n * k * 3, QImage.Format.Format_RGB888)
        self._count, self._tile, self._message = n, k, ""
        self.update()

    def tile_count(self) -> int:
        return self._count

    def tile_size(self) -> int:
        return self._tile

    def message(self) -> str:
        return self._message

    def caption(self) -> str:
        """The line under the tiles, e.g. "64 of 256 units, 28×28 weights each  ·  red +  blue −" ("": no tiles)."""
        if not self._count:
            return ""
        shown = f"{self._count} of {self._total}" if self._total > self._count else f"{self._count}"
        k = self._tile
        return f"{shown} {self._kind}, {k}×{k} weights each  ·  red +  blue −"

    def grid_shape(self) -> tuple[int, int]:
        """(rows, columns) of the grid for the current tiles."""
        if not self._count:
            return 0, 0
        cols = math.ceil(math.sqrt(self._count))
        return math.ceil(self._count / cols), cols

    def sizeHint(self) -> QSize:
        return QSize(320, 320)

    def minimumSizeHint(self) -> QSize:
        return QSize(120, 120)

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        if self._qimage is None:
            painter.setPen(self.palette().windowText().color())
            painter.drawText(QRectF(8, 8, self.width() - 16, self.height() - 16),
                             Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._message)
            painter.end()
            return
        rows, cols = self.grid_shape()
        caption_h = self.fontMetrics().height() + 4
        avail_w = self.width() - GAP * (cols + 1)
        avail_h = self.height() - caption_h - GAP * (rows + 1)
        cell = max(min(avail_w / cols, avail_h / rows), 1.0)
        grid_w = cols * cell + GAP * (cols + 1)
        grid_h = rows * cell + GAP * (rows + 1)
        x0 = (self.width() - grid_w) / 2
        y0 = (self.height() - caption_h - grid_h) / 2
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)  # crisp weight pixels
        k = self._tile
        for i in range(self._count):
            r, c = divmod(i, cols)
            target = QRectF(x0 + GAP + c * (cell + GAP), y0 + GAP + r * (cell + GAP), cell, cell)
            painter.fillRect(target.adjusted(-GAP, -GAP, GAP, GAP), GAP_COLOUR)  # frame only the cells in use
            painter.drawImage(target, self._qimage, QRectF(i * k, 0, k, k))
        painter.setPen(self.palette().windowText().color())
        painter.drawText(QRectF(0, y0 + grid_h + 2, self.width(), caption_h), Qt.AlignmentFlag.AlignHCenter,
                         self.caption())
        painter.end()
