"""A plain-text label with a fixed number of lines: longer text is cut to fit with "…", all of it in the tooltip.

A status or detail line whose height followed its text would push the buttons around it up and down
each time the text changed; this one keeps its height, so nothing around it moves, and never shows
half a line.
"""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

from widgets.plain_text import block, plain_tooltip
from widgets.verdict_line import fit_text


class FittedLabel(QLabel):
    """``set_full_text(text)``; shows as much of it as ``lines`` wrapped lines hold at the label's width."""

    def __init__(self, lines: int, text: str = "", tooltip: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setWordWrap(True)
        self.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self._lines = int(lines)
        self._tooltip = tooltip  # shown when the whole text fits
        self._full = ""
        self.setFixedHeight(self.fontMetrics().lineSpacing() * self._lines + 2 * self.margin() + 2)
        self.set_full_text(text)

    def full_text(self) -> str:
        return self._full

    def set_full_text(self, text: str) -> None:
        self._full = block(text)  # from files too: shortened lines, control characters escaped
        self._fit()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._fit()

    def _fit(self) -> None:
        width = max(self.contentsRect().width() - 2 * self.margin(), 20)
        room = self.contentsRect().height() - 2 * self.margin()
        text = self._full
        if self.isVisible():  # hidden, its size is not known yet
            text = fit_text(self.fontMetrics(), text, width, room)
        if text != self.text():
            self.setText(text)
        cut = text != self._full
        self.setToolTip(plain_tooltip(self._full) if cut or not self._tooltip else self._tooltip)

    def is_cut(self) -> bool:
        """True when the label shows only part of its text."""
        return self.text() != self._full
