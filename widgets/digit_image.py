"""Shows a small image (a 28×28 digit) enlarged with crisp square pixels, e.g. what the network sees."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from widgets.image_input import as_2d_image


class DigitImageError(ValueError):
    """The array cannot be shown as an image."""


class DigitImage(QWidget):
    """White ink on black, nearest-neighbour enlarged, with an optional caption below."""

    def __init__(self, parent: QWidget | None = None, caption: str = "") -> None:
        super().__init__(parent)
        self._pixels: np.ndarray | None = None  # uint8 (H, W), kept alive while the QImage uses it
        self._qimage: QImage | None = None
        self._caption = caption
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)

    def set_image(self, arr: np.ndarray | None) -> None:
        """Show ``arr`` (2-D, or 784 values as 28×28; floats in [0, 1] or uint8), or nothing for None."""
        if arr is None:
            self._pixels, self._qimage = None, None
            self.update()
            return
        a = as_2d_image(arr, "DigitImage.set_image", DigitImageError)
        if a.dtype == np.uint8:
            pixels = a.copy()
        else:
            f = np.asarray(a, dtype=np.float32)
            if not np.all(np.isfinite(f)):
                raise DigitImageError("DigitImage.set_image: the image contains NaN or infinite values")
            pixels = np.rint(np.clip(f, 0.0, 1.0) * 255.0).astype(np.uint8)
        self._pixels = np.ascontiguousarray(pixels)
        h, w = self._pixels.shape
        self._qimage = QImage(self._pixels.data, w, h, w, QImage.Format.Format_Grayscale8)
        self.update()

    def image(self) -> np.ndarray | None:
        """What is shown, as float32 in [0, 1], or None."""
        return None if self._pixels is None else self._pixels.astype(np.float32) / 255.0

    def caption(self) -> str:
        return self._caption

    def sizeHint(self) -> QSize:
        return QSize(140, 140 + (self._caption_height() if self._caption else 0))

    def minimumSizeHint(self) -> QSize:
        return QSize(56, 56)

    def _caption_height(self) -> int:
        return self.fontMetrics().height() + 4

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        caption_h = self._caption_height() if self._caption else 0
        side = float(max(min(self.width(), self.height() - caption_h), 1))
        square = QRectF((self.width() - side) / 2.0, 0.0, side, side)
        if self._qimage is not None:
            h, w = self._pixels.shape
            scale = side / max(h, w)
            target = QRectF(square.center().x() - w * scale / 2, square.center().y() - h * scale / 2,
                            w * scale, h * scale)
            painter.fillRect(square, QColor(0, 0, 0))
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)  # crisp pixels
            painter.drawImage(target, self._qimage)
        else:
            painter.fillRect(square, QColor(24, 24, 24))
        painter.setPen(QPen(QColor(90, 90, 90), 1.0))
        painter.drawRect(square.adjusted(0.5, 0.5, -0.5, -0.5))
        if self._caption:
            painter.setPen(self.palette().windowText().color())
            painter.drawText(QRectF(0.0, side + 2, self.width(), caption_h), Qt.AlignmentFlag.AlignHCenter, self._caption)
        painter.end()
