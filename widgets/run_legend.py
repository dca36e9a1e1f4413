"""A legend that sits beside a plot instead of on it: one colour line and name per drawn curve, in columns.

It never covers a curve, wraps into as many columns as its width allows (so it takes the height it
needs and no more), shows focused entries in bold and dimmed ones faded like their curves, and
shortens a name that is wider than the whole legend (the full names are in its tooltip).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from widgets.plain_text import line, plain_tooltip

STATES = ("normal", "focus", "dim")
SWATCH = 22  # pixels of the colour line before each name
GAP = 18  # pixels between columns
MARGIN = 4
MAX_ROWS = 4  # beyond this the legend takes more columns with shortened names (the tooltip has them all)
MIN_COLUMN = 230  # pixels: the narrowest column names are shortened into
DIM_ALPHA = 90


@dataclass(frozen=True)
class LegendEntry:
    label: str
    color: str
    state: str = "normal"  # "normal", "focus" (drawn bold) or "dim" (drawn faded)


class RunLegend(QWidget):
    """``set_entries([LegendEntry, ...])``; ``empty_text`` is shown when there are none."""

    def __init__(self, empty_text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._entries: list[LegendEntry] = []
        self._empty_text = empty_text
        policy = QSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        policy.setHeightForWidth(True)
        self.setSizePolicy(policy)
        self._update_tooltip()

    def set_entries(self, entries) -> None:
        entries = [LegendEntry(line(e.label, 120), e.color, e.state if e.state in STATES else "normal")
                   for e in entries]
        if entries == self._entries:
            return
        old_height = self.heightForWidth(max(self.width(), 1))
        self._entries = entries
        self._update_tooltip()
        if self.heightForWidth(max(self.width(), 1)) != old_height:
            self.updateGeometry()
        self.update()

    def entries(self) -> list[LegendEntry]:
        return list(self._entries)

    # ----- size -----
    def _bold(self) -> QFont:
        font = QFont(self.font())
        font.setBold(True)
        return font

    def _column_width(self) -> int:
        normal, bold = self.fontMetrics(), QFontMetrics(self._bold())
        text = max(((bold if e.state == "focus" else normal).horizontalAdvance(e.label) for e in self._entries),
                    default=0)
        return SWATCH + 6 + text

    def _columns(self, width: int) -> int:
        """As many columns as the longest name allows; more (names shortened) rather than over MAX_ROWS rows."""
        if not self._entries:
            return 1
        usable = max(width - 2 * MARGIN, 1)
        columns = max(1, (usable + GAP) // (self._column_width() + GAP))
        if math.ceil(len(self._entries) / columns) > MAX_ROWS:
            columns = max(columns, min(math.ceil(len(self._entries) / MAX_ROWS), (usable + GAP) // (MIN_COLUMN + GAP)))
        return min(len(self._entries), columns)

    def _row_height(self) -> int:
        return self.fontMetrics().height() + 2

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        rows = math.ceil(len(self._entries) / self._columns(width)) if self._entries else 1
        return rows * self._row_height() + 2 * MARGIN

    def sizeHint(self) -> QSize:
        width = max(self.width(), 400)
        return QSize(width, self.heightForWidth(width))

    def minimumSizeHint(self) -> QSize:
        return QSize(60, self.heightForWidth(max(self.width(), 60)))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self.height() != self.heightForWidth(self.width()):
            self.updateGeometry()

    # ----- painting -----
    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        text_colour = self.palette().windowText().color()
        row_h = self._row_height()
        if not self._entries:
            painter.setPen(self.palette().placeholderText().color())
            painter.drawText(QRectF(MARGIN, MARGIN, self.width() - 2 * MARGIN, row_h),
                             Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, self._empty_text)
            painter.end()
            return
        columns = self._columns(self.width())
        col_w = (self.width() - 2 * MARGIN - (columns - 1) * GAP) / columns
        for i, entry in enumerate(self._entries):
            row, col = divmod(i, columns)
            x, y = MARGIN + col * (col_w + GAP), MARGIN + row * row_h
            colour = QColor(entry.color)
            ink = QColor(text_colour)
            if entry.state == "dim":
                colour.setAlpha(DIM_ALPHA)
                ink.setAlpha(140)
            pen = QPen(colour, 4 if entry.state == "focus" else 2.5)
            pen.setCapStyle(Qt.PenCapStyle.FlatCap)
            painter.setPen(pen)
            mid = y + row_h / 2
            painter.drawLine(QPointF(x, mid), QPointF(x + SWATCH, mid))
            font = self._bold() if entry.state == "focus" else self.font()
            painter.setFont(font)
            painter.setPen(ink)
            text_w = max(col_w - SWATCH - 6, 10)
            text = QFontMetrics(font).elidedText(entry.label, Qt.TextElideMode.ElideMiddle, int(text_w))
            painter.drawText(QRectF(x + SWATCH + 6, y, text_w, row_h),
                             Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, text)
        painter.end()

    def _update_tooltip(self) -> None:
        if self._entries:
            self.setToolTip(plain_tooltip("The curves drawn, in their colours (bold: focused, faded: dimmed):\n"
                                          + "\n".join(e.label for e in self._entries)))
        else:
            self.setToolTip(plain_tooltip(self._empty_text or "No curves drawn."))
