"""A verdict in a fixed number of lines: coloured by tone, cut to fit with "…", the whole story in its tooltip.

Its height never follows its text, so a longer verdict ("Not like a digit: …") never moves what sits
below it (the probability bars).
"""
from __future__ import annotations

from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QFontMetrics, QPalette
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

from widgets.plain_text import block, plain_tooltip

TONES = {  # text colour per tone; None: the palette's own
    "plain": None,
    "quiet": QPalette.ColorRole.PlaceholderText,
    "warning": QColor(156, 100, 0),
    "error": QColor(191, 54, 12),
}


def fit_text(fm: QFontMetrics, text: str, width: int, height: int) -> str:
    """``text``, or its longest start followed by "…", that fits ``width`` × ``height`` when word-wrapped."""
    flags = int(Qt.AlignmentFlag.AlignLeft | Qt.TextFlag.TextWordWrap)

    def fits(t: str) -> bool:
        return fm.boundingRect(QRect(0, 0, max(width, 1), 100_000), flags, t).height() <= height

    if fits(text):
        return text
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(text[:mid].rstrip() + "…"):
            lo = mid
        else:
            hi = mid - 1
    return text[:lo].rstrip() + "…"


class VerdictLine(QLabel):
    """``set_verdict(text, tone, details)``: shows as much of ``text`` as ``lines`` wrapped lines hold."""

    def __init__(self, lines: int = 2, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setWordWrap(True)
        self.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self._lines = max(int(lines), 1)
        self._full = ""
        self._details = ""
        self._tone = "plain"
        self._base_palette = QPalette(self.palette())
        self.setFixedHeight(self.fontMetrics().lineSpacing() * self._lines + 2 * self.margin() + 4)

    def set_verdict(self, text: str, tone: str = "plain", details: str = "") -> None:
        if tone not in TONES:
            raise ValueError(f"unknown tone {tone!r}; expected one of {', '.join(TONES)}")
        self._full, self._details, self._tone = block(text), block(details), tone
        colour = TONES[tone]
        palette = QPalette(self._base_palette)
        if isinstance(colour, QPalette.ColorRole):
            palette.setColor(QPalette.ColorRole.WindowText, palette.color(colour))
        elif colour is not None:
            palette.setColor(QPalette.ColorRole.WindowText, colour)
        self.setPalette(palette)
        self._fit()

    def full_text(self) -> str:
        return self._full

    def details(self) -> str:
        """The longer story given with the verdict (its tooltip, after the whole verdict when that is cut)."""
        return self._details

    def tone(self) -> str:
        return self._tone

    def is_cut(self) -> bool:
        return self.text() != self._full

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        room = self.contentsRect().adjusted(self.margin(), self.margin(), -self.margin(), -self.margin())
        shown = fit_text(self.fontMetrics(), self._full, room.width(), room.height()) if self.width() > 1 else self._full
        if shown != self.text():
            self.setText(shown)
        if not self._details:
            tip = self._full
        elif shown != self._full:  # cut short: the whole verdict first
            tip = f"{self._full}\n\n{self._details}"
        else:
            tip = self._details
        self.setToolTip(plain_tooltip(tip))
