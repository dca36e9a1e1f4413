"""A clickable confusion matrix: which true digits (rows) the network takes for which (columns).

Cells are shaded by the share of their row (so a rare class still shows its confusions),
green on the diagonal and red off it; a last column gives each class's accuracy.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from widgets.plain_text import line, plain_tooltip

_GOOD = np.array([46, 160, 67])  # diagonal (right answers)
_BAD = np.array([214, 39, 40])  # off-diagonal (confusions)
_PAPER = np.array([255, 255, 255])


class ConfusionMatrixView(QWidget):
    """``set_matrix(counts)`` with a (C, C) integer array (rows true, columns predicted); emits ``cellClicked``."""

    cellClicked = Signal(int, int)  # true class, predicted class

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._counts: np.ndarray | None = None
        self._labels = [str(i) for i in range(10)]
        self._selected: tuple[int, int] | None = None
        self._hover: tuple[int, int] | None = None
        self.setMouseTracking(True)
        self.setMinimumSize(300, 280)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setToolTip("Rows: the true digit. Columns: what the network answered.\n"
                        "Click a cell to see those test images.")

    # ----- data -----
    def set_matrix(self, counts: np.ndarray | None, labels: list[str] | None = None) -> None:
        if counts is not None:
            counts = np.asarray(counts, dtype=np.int64)
            if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
                raise ValueError(f"a confusion matrix must be square, got shape {counts.shape}")
        self._counts = counts
        if labels is not None:
            self._labels = [line(s, 40) for s in labels]
        elif counts is not None and len(self._labels) != counts.shape[0]:
            self._labels = [str(i) for i in range(counts.shape[0])]
        self._selected = None
        self.update()

    def matrix(self) -> np.ndarray | None:
        return None if self._counts is None else self._counts.copy()

    def set_selected(self, cell: tuple[int, int] | None) -> None:
        self._selected = cell
        self.update()

    def selected(self) -> tuple[int, int] | None:
        return self._selected

    def per_class_accuracy(self) -> np.ndarray | None:
        if self._counts is None:
            return None
        rows = self._counts.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(rows > 0, np.diag(self._counts) / np.maximum(rows, 1), np.nan)

    # ----- geometry -----
    def _layout(self) -> tuple[int, int, float]:
        """(left, top, cell size): room for axis titles and labels left/top, accuracy column right."""
        n = 10 if self._counts is None else self._counts.shape[0]
        left, top = 46, 44
        cell = min((self.width() - left - 8) / (n + 1.4), (self.height() - top - 8) / n)
        return left, top, max(cell, 4.0)

    def cell_rect(self, true: int, pred: int) -> QRect:
        left, top, cell = self._layout()
        return QRectF(left + pred * cell, top + true * cell, cell, cell).toRect()

    def cell_at(self, pos: QPoint) -> tuple[int, int] | None:
        if self._counts is None:
            return None
        left, top, cell = self._layout()
        n = self._counts.shape[0]
        col, row = int((pos.x() - left) // cell), int((pos.y() - top) // cell)
        if pos.x() < left or pos.y() < top or not (0 <= row < n and 0 <= col < n):
            return None
        return row, col

    def sizeHint(self) -> QSize:
        return QSize(460, 420)

    # ----- events -----
    def mousePressEvent(self, event: QMouseEvent) -> None:
        cell = self.cell_at(event.position().toPoint())
        if cell is not None and event.button() == Qt.MouseButton.LeftButton:
            self._selected = cell
            self.update()
            self.cellClicked.emit(*cell)
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        cell = self.cell_at(event.position().toPoint())
        if cell != self._hover:
            self._hover = cell
            if cell is not None and self._counts is not None:
                i, j = cell
                n = int(self._counts[i, j])
                what = "right" if i == j else f"taken for {self._labels[j]}"
                self.setToolTip(plain_tooltip(f"true {self._labels[i]}, answered {self._labels[j]}: {n} image(s) ({what})"))
            self.update()
        super().mouseMoveEvent(event)

    def leaveEvent(self, event) -> None:
        self._hover = None
        self.update()
        super().leaveEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        p.fillRect(self.rect(), self.palette().base())
        text_color = self.palette().text().color()
        if self._counts is None:
            p.setPen(text_color)
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "No evaluation yet: press Evaluate")
            return
        counts = self._counts
        n = counts.shape[0]
        left, top, cell = self._layout()
        rows = counts.sum(axis=1)
        share = counts / np.maximum(rows, 1)[:, None]
        font = QFont(self.font())
        font.setPixelSize(max(8, min(15, int(cell * 0.36))))
        p.setFont(font)
        for i in range(n):
            for j in range(n):
                rect = QRectF(left + j * cell, top + i * cell, cell, cell)
                base = _GOOD if i == j else _BAD
                s = float(share[i, j]) if i == j else min(1.0, float(share[i, j]) * 4)  # errors are rarer: boost
                rgb = (_PAPER + (base - _PAPER) * s).astype(int)
                p.fillRect(rect, QColor(*rgb))
                if counts[i, j]:
                    p.setPen(QColor("white") if s > 0.55 else QColor(30, 30, 30))
                    p.drawText(rect, Qt.AlignmentFlag.AlignCenter, str(int(counts[i, j])))
        grid = QPen(QColor(200, 200, 200))
        p.setPen(grid)
        for k in range(n + 1):
            p.drawLine(int(left), int(top + k * cell), int(left + n * cell), int(top + k * cell))
            p.drawLine(int(left + k * cell), int(top), int(left + k * cell), int(top + n * cell))
        # per-class accuracy column
        acc = self.per_class_accuracy()
        acc_left = left + n * cell + 0.2 * cell
        acc_w = 1.2 * cell
        for i in range(n):
            rect = QRectF(acc_left, top + i * cell, acc_w, cell)
            a = acc[i]
            if np.isfinite(a):
                rgb = (_BAD + (_GOOD - _BAD) * np.clip((a - 0.5) * 2, 0, 1)).astype(int)
                p.fillRect(rect.adjusted(0, 1, 0, -1), QColor(*rgb, 60))
                p.setPen(text_color)
                p.drawText(rect, Qt.AlignmentFlag.AlignCenter, f"{a:.0%}")
        # labels
        p.setPen(text_color)
        for k in range(n):
            p.drawText(QRectF(left - 22, top + k * cell, 20, cell), Qt.AlignmentFlag.AlignCenter, self._labels[k][:3])
            p.drawText(QRectF(left + k * cell, top - 20, cell, 18), Qt.AlignmentFlag.AlignCenter, self._labels[k][:3])
        bold = QFont(font)
        bold.setBold(True)
        p.setFont(bold)
        p.drawText(QRectF(left, 2, n * cell, 20), Qt.AlignmentFlag.AlignCenter, "predicted")
        p.drawText(QRectF(acc_left - 0.1 * cell, 2, acc_w + 0.4 * cell, 40), Qt.AlignmentFlag.AlignCenter, "acc.")
        p.save()
        p.translate(14, top + n * cell / 2)
        p.rotate(-90)
        p.drawText(QRectF(-n * cell / 2, -10, n * cell, 20), Qt.AlignmentFlag.AlignCenter, "true")
        p.restore()
        for cell_pos, color, width in ((self._hover, QColor(80, 80, 80), 1), (self._selected, QColor(20, 90, 200), 3)):
            if cell_pos is not None:
                p.setPen(QPen(color, width))
                p.setBrush(Qt.BrushStyle.NoBrush)
                p.drawRect(QRectF(left + cell_pos[1] * cell, top + cell_pos[0] * cell, cell, cell))
