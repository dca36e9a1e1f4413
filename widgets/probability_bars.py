"""How sure the network is about each class: one bar per class, the winner highlighted.

Several models can be shown side by side ("one drawing, many models"): each class row
then holds one thin bar per model, in the model's colour, with a legend on top. An optional
message sits in a fixed-height area above the bars, so a message coming or going never moves them.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter
from PySide6.QtWidgets import QSizePolicy, QWidget

from widgets.plain_text import line
from widgets.verdict_line import fit_text

DIGIT_LABELS = [str(i) for i in range(10)]
SINGLE_COLOUR = QColor(144, 164, 184)  # the other classes: quiet blue-grey
TOP_COLOUR = QColor(21, 101, 192)  # the winning class: strong blue
SERIES_COLOURS = [QColor(c) for c in ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")]
TRACK_COLOUR = QColor(128, 128, 128, 40)
MESSAGE_COLOUR = QColor(191, 54, 12)


def percent_text(p: float) -> str:
    """How a bar writes a probability ('99.7 %'); text beside the bars uses it too, so the two always agree."""
    return f"{p * 100:.1f} %"


class ProbabilityBarsError(ValueError):
    """Probabilities that do not fit the labels (wrong length, NaN, negative)."""


class ProbabilityBars(QWidget):
    """Ten labelled bars with percentages; ``set_probabilities(None)`` shows no prediction at all."""

    def __init__(self, parent: QWidget | None = None, labels: list[str] | None = None, message_lines: int = 1) -> None:
        """``message_lines``: height of the message area above the bars, in lines (0: no message area)."""
        super().__init__(parent)
        self._labels = list(DIGIT_LABELS if labels is None else labels)
        self._series: dict[str, np.ndarray | None] = {}
        self._message = ""
        self._message_lines = max(int(message_lines), 0)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.setToolTip("How likely the network thinks each class is; the highlighted bar is its answer.")

    # ----- public API -----
    def set_labels(self, labels: list[str]) -> None:
        """Class names, one per bar. Shown series that no longer fit are dropped."""
        labels = [line(label, 40) for label in labels]  # class names may come from files: short, no controls
        if not labels:
            raise ProbabilityBarsError("ProbabilityBars.set_labels: need at least one class name")
        self._labels = labels
        self._series = {k: v for k, v in self._series.items() if v is None or len(v) == len(labels)}
        self.updateGeometry()
        self.update()

    def labels(self) -> list[str]:
        return list(self._labels)

    def set_probabilities(self, p: np.ndarray | None, message: str | None = None) -> None:
        """One model's probabilities (one per class) or None for "no prediction"; ``message`` is shown above."""
        self._series = {} if p is None else {"": self._checked(p, "set_probabilities")}
        self._message = message or ""
        self.update()

    def set_series(self, series: dict[str, np.ndarray | None], message: str | None = None) -> None:
        """Several models' probabilities by name, drawn as grouped bars; a None entry has no prediction yet."""
        checked = {str(name): (None if p is None else self._checked(p, f"set_series[{name!r}]"))
                   for name, p in series.items()}
        self._series = checked
        self._message = message or ""
        self.update()

    def probabilities(self, name: str | None = None) -> np.ndarray | None:
        """The shown probabilities of the single series, or of the series called ``name``."""
        p = self._pick(name)
        return None if p is None else p.copy()

    def top_class(self, name: str | None = None) -> int | None:
        """Index of the highlighted (most likely) class, None when nothing is shown."""
        p = self._pick(name)
        return None if p is None else int(np.argmax(p))

    def message(self) -> str:
        """The message given with the probabilities ('' for none); shown only when there is a message area."""
        return self._message

    def message_lines(self) -> int:
        return self._message_lines

    def series_names(self) -> list[str]:
        return [name for name in self._series if name]

    def _pick(self, name: str | None) -> np.ndarray | None:
        if name is not None:
            if name not in self._series:
                raise ProbabilityBarsError(f"no series called {name!r}; shown: {', '.join(self._series) or 'none'}")
            return self._series[name]
        return next((p for p in self._series.values() if p is not None), None)

    def _checked(self, p, where: str) -> np.ndarray:
        arr = np.asarray(p, dtype=np.float64).reshape(-1)
        if arr.size != len(self._labels):
            raise ProbabilityBarsError(
                f"ProbabilityBars.{where}: {arr.size} probabilities for {len(self._labels)} classes "
                f"({', '.join(self._labels[:4])}, ...)"
            )
        if not np.all(np.isfinite(arr)):
            raise ProbabilityBarsError(f"ProbabilityBars.{where}: probabilities contain NaN or infinity")
        if arr.min() < -1e-6 or arr.max() > 1 + 1e-6:
            raise ProbabilityBarsError(
                f"ProbabilityBars.{where}: probabilities must be in [0, 1], got {arr.min():.3g} to {arr.max():.3g}"
            )
        return np.clip(arr, 0.0, 1.0)

    # ----- size -----
    def sizeHint(self) -> QSize:
        row = self.fontMetrics().height() + 8
        return QSize(300, row * (len(self._labels) + 2) + self._message_height())

    def minimumSizeHint(self) -> QSize:
        row = self.fontMetrics().height() + 2
        return QSize(160, row * (len(self._labels) + 1) + self._message_height())

    def _message_height(self) -> int:
        """The fixed height of the message area: ``message_lines`` bold lines (0 without one)."""
        if not self._message_lines:
            return 0
        bold = QFont(self.font())
        bold.setBold(True)
        return QFontMetrics(bold).lineSpacing() * self._message_lines + 4

    # ----- painting -----
    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        fm = self.fontMetrics()
        text_colour = self.palette().windowText().color()
        line = fm.height()
        margin = 6.0
        top = margin
        shown = [(name, p) for name, p in self._series.items()]
        multi = len(shown) > 1 or (len(shown) == 1 and shown[0][0] != "")

        bold = QFont(self.font())
        bold.setBold(True)
        width = self.width() - 2 * margin
        if self._message_lines:
            room = self._message_height() - 4  # fixed: the bars below stay put whatever the message
            if self._message:
                painter.setFont(bold)
                painter.setPen(MESSAGE_COLOUR if self._series else text_colour)
                painter.drawText(QRectF(margin, top, width, room),
                                 Qt.AlignmentFlag.AlignLeft | Qt.TextFlag.TextWordWrap,
                                 fit_text(painter.fontMetrics(), self._message, int(width), room))
                painter.setFont(self.font())
            top += room + 4
        if multi:
            x, swatch = margin, line * 0.6
            for i, (name, p) in enumerate(shown):
                colour = SERIES_COLOURS[i % len(SERIES_COLOURS)]
                text = name if p is not None else f"{name} (no prediction)"
                item_w = swatch + 4 + fm.horizontalAdvance(text) + 14
                if x > margin and x + item_w > margin + width:  # wrap the legend onto the next line
                    x, top = margin, top + line + 2
                painter.fillRect(QRectF(x, top + line * 0.2, swatch, swatch), colour)
                painter.setPen(text_colour)
                painter.drawText(QRectF(x + swatch + 4, top, item_w, line), Qt.AlignmentFlag.AlignVCenter, text)
                x += item_w
            top += line + 6

        bold_fm = QFontMetrics(bold)  # the winner's label is bold, hence wider
        label_w = min(max(bold_fm.horizontalAdvance(label) for label in self._labels) + 12, 0.4 * self.width())
        pct_w = fm.horizontalAdvance("100.0 %") + 8
        bar_left = margin + label_w
        bar_w = max(self.width() - bar_left - pct_w - margin, 10.0)
        n = len(self._labels)
        row_h = max((self.height() - top - margin) / n, 4.0)
        k = max(len(shown), 1)
        bar_h = min(row_h * 0.72, line * 1.2 * k)
        tops = [None if p is None else int(np.argmax(p)) for _, p in shown]

        for c, label in enumerate(self._labels):
            y = top + c * row_h + (row_h - bar_h) / 2
            painter.fillRect(QRectF(bar_left, y, bar_w, bar_h), TRACK_COLOUR)
            winner = any(t == c for t in tops if t is not None)
            painter.setFont(bold if winner else self.font())
            painter.setPen(TOP_COLOUR if winner and not multi else text_colour)
            painter.drawText(QRectF(margin, top + c * row_h, label_w - 6, row_h),
                             Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                             bold_fm.elidedText(label, Qt.TextElideMode.ElideRight, int(label_w - 6)))
            sub_h = bar_h / k
            for i, ((name, p), t) in enumerate(zip(shown, tops)):
                if p is None:
                    continue
                if multi:
                    colour = QColor(SERIES_COLOURS[i % len(SERIES_COLOURS)])
                    if t != c:
                        colour.setAlpha(120)
                else:
                    colour = TOP_COLOUR if t == c else SINGLE_COLOUR
                painter.fillRect(QRectF(bar_left, y + i * sub_h, bar_w * p[c], max(sub_h - 1, 1.0)), colour)
            if not multi and shown and shown[0][1] is not None:
                painter.setPen(text_colour)
                painter.drawText(QRectF(bar_left + bar_w + 6, top + c * row_h, pct_w, row_h),
                                 Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                                 percent_text(shown[0][1][c]))
            elif multi:
                # the highest of the models' values, in that model's colour
                values = [(p[c], i) for i, (_, p) in enumerate(shown) if p is not None]
                if values:
                    best, i = max(values)
                    painter.setPen(SERIES_COLOURS[i % len(SERIES_COLOURS)].darker(120))
                    painter.drawText(QRectF(bar_left + bar_w + 6, top + c * row_h, pct_w, row_h),
                                     Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                                     percent_text(best))
        painter.end()

