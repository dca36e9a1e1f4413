"""A square drawing pad: draw a digit with the mouse, get a float image of the ink."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from engine.data.preprocess import is_blank as _is_blank
from engine.data.preprocess import resize_image
from widgets.image_input import as_2d_image


PLACEHOLDER = "Draw a digit here\n(left button draws,\nright-click clears)"  # shown while the canvas is blank
TOOLTIP = "Draw a digit with the left mouse button. Right-click clears."


class CanvasError(ValueError):
    """A bad image or brush size was given to the canvas."""


def stamp_segment(buffer: np.ndarray, p0: tuple[float, float], p1: tuple[float, float], radius: float) -> bool:
    """Ink a soft round stroke from p0 to p1 (x, y in buffer pixels) into ``buffer``; True if anything changed.

    The ink at a pixel depends on its distance to the segment: full inside 60 % of the radius,
    then a Gaussian edge (about 0.5 at the radius), like a felt pen. Ink never gets darker
    than full where strokes cross (maximum, not sum), as on paper.
    """
    h, w = buffer.shape
    core, sigma = 0.6 * radius, 0.35 * radius
    reach = core + 3.0 * sigma  # beyond this the Gaussian edge is below 1 %
    (x0, y0), (x1, y1) = p0, p1
    left = max(int(np.floor(min(x0, x1) - reach)), 0)
    right = min(int(np.ceil(max(x0, x1) + reach)) + 1, w)
    top = max(int(np.floor(min(y0, y1) - reach)), 0)
    bottom = min(int(np.ceil(max(y0, y1) + reach)) + 1, h)
    if left >= right or top >= bottom:
        return False
    ys = np.arange(top, bottom, dtype=np.float32)[:, None] + 0.5  # pixel centres
    xs = np.arange(left, right, dtype=np.float32)[None, :] + 0.5
    dx, dy = x1 - x0, y1 - y0
    length2 = dx * dx + dy * dy
    if length2 > 1e-12:
        t = np.clip(((xs - x0) * dx + (ys - y0) * dy) / length2, 0.0, 1.0)
    else:
        t = np.zeros((1, 1), dtype=np.float32)  # a dot: distance to the single point
    dist = np.hypot(xs - (x0 + t * dx), ys - (y0 + t * dy))
    edge = np.maximum(dist - core, 0.0)
    ink = np.exp(-0.5 * (edge / sigma) ** 2).astype(np.float32)
    ink[dist > reach] = 0.0
    region = buffer[top:bottom, left:right]
    np.maximum(region, ink, out=region)
    return True


class DigitCanvas(QWidget):
    """White ink on black, like MNIST. Left button draws, right button clears."""

    drawingChanged = Signal(object)  # np.ndarray (H, W) float32 in [0, 1], a copy
    strokeFinished = Signal(object)

    def __init__(self, parent: QWidget | None = None, resolution: int = 280, brush_radius: float | None = None) -> None:
        super().__init__(parent)
        if int(resolution) < 28:
            raise CanvasError(f"canvas resolution must be at least 28 pixels, got {resolution}")
        self._res = int(resolution)
        self._buffer = np.zeros((self._res, self._res), dtype=np.float32)
        self._pixels = np.zeros((self._res, self._res), dtype=np.uint8)  # what is painted, kept alive for QImage
        self._qimage = QImage(self._pixels.data, self._res, self._res, self._res, QImage.Format.Format_Grayscale8)
        self._brush_radius = 0.0
        # MNIST strokes are about a tenth of the digit's height: radius = resolution / 28 on a full-size digit
        self.brush_radius = self._res / 28.0 if brush_radius is None else brush_radius
        self._last: tuple[float, float] | None = None
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMouseTracking(False)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setToolTip(TOOLTIP)
        self.setAccessibleName("Digit drawing canvas")

    # ----- public API -----
    @property
    def resolution(self) -> int:
        return self._res

    @property
    def brush_radius(self) -> float:
        """Brush radius in buffer pixels."""
        return self._brush_radius

    @brush_radius.setter
    def brush_radius(self, radius: float) -> None:
        radius = float(radius)
        if not (0.5 <= radius <= self._res / 2):
            raise CanvasError(f"brush radius must be between 0.5 and {self._res / 2:g} pixels, got {radius:g}")
        self._brush_radius = radius

    def image(self) -> np.ndarray:
        """The drawing: (H, W) float32, ink 1.0 on 0.0 (a copy)."""
        return self._buffer.copy()

    def is_blank(self) -> bool:
        return _is_blank(self._buffer)

    def clear(self) -> None:
        self._buffer.fill(0.0)
        self._last = None
        self._changed()

    def set_image(self, img: np.ndarray) -> None:
        """Show a digit (e.g. 28×28 from the test set, ink 1.0 on 0.0) enlarged to fill the canvas; emits drawingChanged."""
        arr = as_2d_image(img, "DigitCanvas.set_image", CanvasError)
        if arr.dtype == np.uint8:
            arr = arr.astype(np.float32) / 255.0
        try:
            if max(arr.shape) <= self._res:
                # square pixels (nearest neighbour): preprocessing the canvas then gives back the digit itself
                checked = resize_image(arr, *arr.shape)  # same size: only validates and clips to [0, 1]
                rows = (np.arange(self._res) + 0.5) * arr.shape[0] / self._res
                cols = (np.arange(self._res) + 0.5) * arr.shape[1] / self._res
                self._buffer[...] = checked[rows.astype(np.intp)[:, None], cols.astype(np.intp)[None, :]]
            else:
                self._buffer[...] = resize_image(arr, self._res, self._res)
        except ValueError as exc:
            raise CanvasError(f"DigitCanvas.set_image: {exc}") from None
        self._last = None
        self._changed()

    def sizeHint(self) -> QSize:
        return QSize(280, 280)

    def minimumSizeHint(self) -> QSize:
        return QSize(200, 200)

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        return width

    # ----- geometry -----
    def _square(self) -> QRectF:
        side = float(min(self.width(), self.height()))
        return QRectF((self.width() - side) / 2.0, (self.height() - side) / 2.0, side, side)

    def _to_buffer(self, pos: QPointF) -> tuple[float, float]:
        square = self._square()
        scale = self._res / max(square.width(), 1.0)
        return (pos.x() - square.left()) * scale, (pos.y() - square.top()) * scale

    # ----- drawing -----
    def _refresh_pixels(self) -> None:
        self._pixels[...] = np.rint(self._buffer * 255.0)  # the QImage reads this array's memory directly

    def _changed(self) -> None:
        self._refresh_pixels()
        self.update()
        self.drawingChanged.emit(self._buffer.copy())

    def _draw_to(self, pos: QPointF) -> None:
        point = self._to_buffer(pos)
        start = self._last if self._last is not None else point
        self._last = point
        if stamp_segment(self._buffer, start, point, self._brush_radius):
            self._changed()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self._last = None
            self._draw_to(event.position())
        elif event.button() == Qt.MouseButton.RightButton:
            self.clear()
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if event.buttons() & Qt.MouseButton.LeftButton:
            self._draw_to(event.position())
        event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self._last is not None:
            self._draw_to(event.position())
            self._last = None
            self.strokeFinished.emit(self._buffer.copy())
        event.accept()

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        square = self._square()
        painter.drawImage(square, self._qimage)
        # a faint frame for the 20×20 box MNIST digits fill, so people draw at a sensible size
        box = square.adjusted(square.width() * 4 / 28, square.height() * 4 / 28,
                              -square.width() * 4 / 28, -square.height() * 4 / 28)
        pen = QPen(QColor(255, 255, 255, 38), 1.0, Qt.PenStyle.DashLine)
        painter.setPen(pen)
        painter.drawRect(box)
        if self.is_blank():
            painter.setPen(QColor(255, 255, 255, 110))
            painter.drawText(square, Qt.AlignmentFlag.AlignCenter, PLACEHOLDER)
        painter.setPen(QPen(QColor(90, 90, 90), 1.0))
        painter.drawRect(square.adjusted(0.5, 0.5, -0.5, -0.5))
        painter.end()
