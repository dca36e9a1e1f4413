"""Small reusable pieces for the learning labs' pages: a white plot, a log-scale slider, live-number labels,
number formatting and a colour-blind-safe palette."""
from __future__ import annotations

import math

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from widgets.plot_fit import FitPlot

# Colours that stay distinct on white and for most colour-blind readers (Okabe–Ito).
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]


def make_plot(title: str = "", x_label: str = "", y_label: str = "", tooltip: str = "",
              size_hint: tuple[int, int] = (360, 220)) -> FitPlot:
    """A plot on white with labelled axes that sizes by its layout (``widgets.plot_fit.FitPlot``)."""
    return FitPlot(title, x_label, y_label, tooltip=tooltip, size_hint=size_hint)


def value_label(text: str = "") -> QLabel:
    """A label for a live number: monospace so digits do not jump, selectable so they can be copied."""
    label = QLabel(text)
    font = QFont("monospace")
    font.setStyleHint(QFont.StyleHint.Monospace)
    label.setFont(font)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def fmt(value: float, digits: int = 8) -> str:
    """Fixed decimals for ordinary numbers, scientific for huge or tiny ones (a diverging loss)."""
    if not math.isfinite(value):
        return str(value)
    if value != 0 and (abs(value) >= 1e6 or abs(value) < 10 ** (-digits)):
        return f"{value:.{min(digits, 4)}e}"
    return f"{value:.{digits}f}"


class LogSlider(QWidget):
    """A horizontal slider over [low, high] on a log scale, with buttons for a few marked values.

    The exact value is kept apart from the slider position, so a marked value such as
    0.0229 stays 0.0229 and is not rounded to the nearest tick.
    """

    valueChanged = Signal(float)

    TICKS = 1000

    def __init__(self, low: float, high: float, value: float, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        if not (0 < low < high):
            raise ValueError(f"LogSlider needs 0 < low < high, got low={low}, high={high}")
        self._low, self._high = float(low), float(high)
        self._value = float(value)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, self.TICKS)
        self.slider.valueChanged.connect(self._on_slider)
        self._marks = QHBoxLayout()
        self._marks.setContentsMargins(0, 0, 0, 0)
        self._mark_buttons: list[QPushButton] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.slider)
        layout.addLayout(self._marks)
        self._place(self._value)

    def value(self) -> float:
        return self._value

    def setValue(self, value: float) -> None:
        value = float(value)
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"the value must be a positive number, got {value!r}")
        changed = value != self._value
        self._value = value
        self._place(value)
        if changed:
            self.valueChanged.emit(value)

    def set_marks(self, marks: list[tuple[str, float]], tooltip: str = "set to {:g}") -> None:
        """Buttons under the slider, one per (caption, value); ``tooltip`` is formatted with the value."""
        for button in self._mark_buttons:
            self._marks.removeWidget(button)
            button.hide()  # deleted later, when control is back in the event loop: out of sight until then
            button.deleteLater()
        self._mark_buttons = []
        for caption, value in marks:
            button = QPushButton(caption)
            button.setToolTip(tooltip.format(value))
            button.clicked.connect(lambda _=False, v=value: self.setValue(v))
            self._marks.addWidget(button)
            self._mark_buttons.append(button)

    @property
    def mark_buttons(self) -> list[QPushButton]:
        return list(self._mark_buttons)

    def _place(self, value: float) -> None:
        frac = (math.log(min(max(value, self._low), self._high)) - math.log(self._low)) / (
            math.log(self._high) - math.log(self._low)
        )
        self.slider.blockSignals(True)
        self.slider.setValue(round(frac * self.TICKS))
        self.slider.blockSignals(False)

    def _on_slider(self, position: int) -> None:
        frac = position / self.TICKS
        value = math.exp(math.log(self._low) + frac * (math.log(self._high) - math.log(self._low)))
        value = float(f"{value:.3g}")  # three significant digits read better than 0.0231847...
        if value != self._value:
            self._value = value
            self.valueChanged.emit(value)
