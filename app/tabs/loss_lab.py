"""Loss functions: sum of squares and cross-entropy for one probability vector, and why accuracy is no loss.

The vector can be typed, picked from the book's two examples, or taken live from the
canvas's prediction (``set_probabilities``, connected by the app). Cross-entropy is the book's
−Σ t log(y + 10⁻⁷) (``engine.nn.functions.cross_entropy_error``), and the page says so: training
and evaluation use the exact log-softmax instead.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine import registry
from engine.nn.functions import (
    cross_entropy_error,
    sigmoid,
    step_function,
    sum_squared_error,
)
from widgets.lab_controls import PALETTE, make_plot, value_label
from widgets.plot_fit import PlotPanel, PlotRow


COLUMN_WIDTH = 400  # px: the inputs and numbers; the two plots share the rest
BARS_HELP = "Cross-entropy reads only the blue bar above the orange one; the sum of squares reads every bar."
STEP_HELP = ("Accuracy jumps like the step (red): its slope is 0 almost everywhere, so it gives gradient descent "
             "no direction. The sigmoid's slope (blue dashed) is never 0.")
WHY_TEXT = (
    "The step function and the sigmoid σ, with their slopes. Accuracy changes only when some answer flips, so nudging one weight a little "
    "almost never changes it: its slope is 0, like the step function's, and gradient descent would not know "
    "where to go. A loss built on the probabilities (through smooth functions like the sigmoid or softmax) "
    "changes a little with every nudge, so its slope always points somewhere useful."
)


class LossLabError(ValueError):
    """A probability vector the lab cannot use (not 10 numbers, negative, not finite)."""


BOOK_EXAMPLES = {
    "book-right": ("Book: the network says 2 (60 %)", [0.1, 0.05, 0.6, 0.0, 0.05, 0.1, 0.0, 0.1, 0.0, 0.0], 2),
    "book-wrong": ("Book: the network says 7 (60 %)", [0.1, 0.05, 0.1, 0.0, 0.05, 0.1, 0.0, 0.6, 0.0, 0.0], 2),
}
LIVE = "live"
CLASSES = 10
SUM_TOLERANCE = 1e-3
SSE_TITLE = f"{registry.label(registry.LOSS_CHOICES, 'sum-of-squares')} ½Σ(y − t)²"
CEE_TITLE = f"{registry.label(registry.LOSS_CHOICES, 'cross-entropy')} −Σ t log(y + 10⁻⁷)"
BOOK_FORMULA_NOTE = (
    "As in the book, cross-entropy here is −Σ t log(y + 10⁻⁷): the 10⁻⁷ keeps log(0) finite, so a probability "
    "of exactly 0 costs about 16.1 instead of infinity. Training and evaluation use the exact log-softmax, "
    "with no 10⁻⁷."
)


def parse_probabilities(text: str) -> np.ndarray:
    """Ten non-negative numbers separated by commas, spaces or semicolons (brackets allowed)."""
    cleaned = text.strip().strip("[]()").replace(";", ",").replace(",", " ")
    parts = cleaned.split()
    values = []
    for i, part in enumerate(parts):
        try:
            values.append(float(part))
        except ValueError:
            raise LossLabError(f"number {i + 1} ({part!r}) is not a number") from None
    return check_probabilities(values)


def check_probabilities(values) -> np.ndarray:
    y = np.asarray(values, dtype=np.float64).reshape(-1)
    if y.size != CLASSES:
        raise LossLabError(f"need {CLASSES} probabilities, one per digit; got {y.size}")
    if not np.all(np.isfinite(y)):
        raise LossLabError(f"probability {int(np.argmin(np.isfinite(y)))} is not a finite number")
    if np.any(y < 0):
        i = int(np.argmax(y < 0))
        raise LossLabError(f"probability {i} is negative ({y[i]:g}); probabilities are ≥ 0")
    return y


def format_probabilities(y: np.ndarray) -> str:
    return ", ".join(f"{v:.4g}" for v in y)


class LossLab(QWidget):
    """Both losses for a probability vector and a label; a plot of step vs sigmoid and their slopes."""

    lossesChanged = Signal(float, float)  # sum of squares, cross-entropy

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._y = np.array(BOOK_EXAMPLES["book-right"][1])
        self._label = 2
        self._live: np.ndarray | None = None
        self._sse = float("nan")
        self._cee = float("nan")
        self._build()
        self.set_example("book-right")

    # ----- layout -----
    def _build(self) -> None:
        self.example_box = QComboBox()  # as wide as its longest item, so "Live: the canvas's …" shows whole
        self.example_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        for key, (title, _, _) in BOOK_EXAMPLES.items():
            self.example_box.addItem(title, key)
        self.example_box.addItem("Live: the canvas's current prediction", LIVE)
        self.example_box.addItem("Typed by me", "typed")
        self.example_box.currentIndexChanged.connect(lambda _: self.set_example(self.example_box.currentData()))
        self.vector_edit = QLineEdit()
        self.vector_edit.setPlaceholderText("ten probabilities, e.g. 0.1, 0.05, 0.6, 0, 0.05, 0.1, 0, 0.1, 0, 0")
        self.vector_edit.editingFinished.connect(self._on_typed)
        self.label_box = QSpinBox()
        self.label_box.setRange(0, CLASSES - 1)
        self.label_box.valueChanged.connect(self.set_label)
        self.follow_live = QCheckBox("follow the canvas")
        self.follow_live.setToolTip("update whenever the canvas's prediction changes")
        self.follow_live.setChecked(True)
        self.error_label = QLabel()
        self.error_label.setStyleSheet("color: #B71C1C")
        self.error_label.setWordWrap(True)
        self.sse_label = value_label()
        self.cee_label = value_label()
        for label in (self.sse_label, self.cee_label):
            font = label.font()
            font.setPointSize(font.pointSize() + 6)
            font.setBold(True)
            label.setFont(font)
        self.explain_label = QLabel()
        self.explain_label.setWordWrap(True)
        self.formula_note = QLabel(BOOK_FORMULA_NOTE)
        self.formula_note.setWordWrap(True)
        self.formula_note.setStyleSheet("color: #555")
        self.formula_note.setToolTip("engine.nn.functions.cross_entropy_error here; "
                                     "engine.nn.functions.softmax_cross_entropy for training and evaluation")

        self.bars_plot = make_plot("Probabilities y and target t", "digit", "probability", tooltip=(
            "Blue: the probability y the network gives each digit. Orange: the one-hot target t, "
            "1 for the correct label and 0 for the rest."))
        self.bars_plot.setMouseEnabled(x=False, y=False)
        self.bars_plot.hideButtons()
        self.bars = pg.BarGraphItem(x=np.arange(CLASSES) - 0.15, height=np.zeros(CLASSES), width=0.3,
                                    brush=PALETTE[0], pen=None)
        self.target_bars = pg.BarGraphItem(x=np.arange(CLASSES) + 0.15, height=np.zeros(CLASSES), width=0.3,
                                           brush=PALETTE[1], pen=None)
        legend = self.bars_plot.getPlotItem().addLegend(offset=(-10, 10), labelTextColor="#111")
        self.bars_plot.addItem(self.bars)
        self.bars_plot.addItem(self.target_bars)
        legend.addItem(self.bars, "y (network)")
        legend.addItem(self.target_bars, "t (correct)")
        self.bars_plot.getPlotItem().getAxis("bottom").setTicks([[(i, str(i)) for i in range(CLASSES)]])
        self.bars_plot.setXRange(-0.6, CLASSES - 0.4, padding=0)
        self.bars_plot.setYRange(0, 1.05, padding=0)

        self.step_plot = make_plot("Why not train on accuracy?", "x", "", tooltip=WHY_TEXT)
        self.step_plot.setMouseEnabled(x=False, y=False)
        self.step_plot.hideButtons()
        step_legend = self.step_plot.getPlotItem().addLegend(labelTextColor="#111", brush=pg.mkBrush(255, 255, 255, 215))
        x = np.linspace(-6, 6, 601)
        s = sigmoid(x)
        jump = np.array([-6.0, -1e-12, 1e-12, 6.0])  # four points draw the step with a clean vertical jump
        self.step_plot.plot(jump, step_function(jump), pen=pg.mkPen(PALETTE[3], width=2), name="step")
        self.step_plot.plot(x, s, pen=pg.mkPen(PALETTE[0], width=2), name="σ")
        self.step_plot.plot(x, s * (1 - s), pen=pg.mkPen(PALETTE[0], width=2, style=Qt.PenStyle.DashLine),
                            name="σ′ = σ(1 − σ)")
        self.step_plot.plot([-6.0, 6.0], [0.0, 0.0], pen=pg.mkPen(PALETTE[3], width=3, style=Qt.PenStyle.DashLine),
                            name="step′ = 0")
        step_legend.anchor(itemPos=(1, 0.5), parentPos=(1, 0.58), offset=(-10, 0))  # the empty right middle
        self.step_plot.fit_view(padding=0.03)

        self.example_box.setToolTip("The probability vector to score: the book's two examples, the canvas's live "
                                    "prediction, or one you type")
        self.vector_edit.setToolTip("Ten probabilities y₀ … y₉, one per digit, separated by commas or spaces; "
                                    "press Enter to use them")
        self.label_box.setToolTip("The correct digit: the target t is 1 there and 0 elsewhere")
        self.sse_label.setToolTip("½Σ(y − t)² over the ten digits: at most 1 for probabilities")
        self.cee_label.setToolTip("−Σ t log(y + 10⁻⁷) = −log(y of the correct digit + 10⁻⁷)")

        inputs = QGroupBox("Probability vector and label")
        form = QFormLayout(inputs)
        form.addRow("Example", self.example_box)
        form.addRow("y", self.vector_edit)
        row = QHBoxLayout()
        row.addWidget(self.label_box)
        row.addWidget(self.follow_live)
        row.addStretch(1)
        form.addRow("Correct label", row)
        form.addRow(self.error_label)
        results = QGroupBox("Losses")
        rform = QFormLayout(results)
        rform.addRow(SSE_TITLE, self.sse_label)
        rform.addRow(CEE_TITLE, self.cee_label)
        rform.addRow(self.explain_label)
        rform.addRow(self.formula_note)

        left = QVBoxLayout()
        left.setContentsMargins(0, 0, 0, 0)
        left.addWidget(inputs)
        left.addWidget(results)
        left.addStretch(1)
        holder = QWidget()
        holder.setLayout(left)
        holder.setMinimumWidth(COLUMN_WIDTH - 60)
        holder.setMaximumWidth(COLUMN_WIDTH)
        layout = QHBoxLayout(self)
        layout.addWidget(holder)
        self.plot_row = PlotRow([PlotPanel(self.bars_plot, BARS_HELP), PlotPanel(self.step_plot, STEP_HELP)])
        layout.addWidget(self.plot_row, 1)

    # ----- public API -----
    @property
    def sum_squares(self) -> float:
        return self._sse

    @property
    def cross_entropy(self) -> float:
        return self._cee

    def probabilities(self) -> np.ndarray:
        return self._y.copy()

    def label(self) -> int:
        return self._label

    def set_example(self, key: str) -> None:
        index = self.example_box.findData(key)
        if index < 0:
            raise LossLabError(f"unknown example {key!r}")
        if index != self.example_box.currentIndex():
            self.example_box.blockSignals(True)
            self.example_box.setCurrentIndex(index)
            self.example_box.blockSignals(False)
        if key in BOOK_EXAMPLES:
            _, y, label = BOOK_EXAMPLES[key]
            self._set_label_quietly(label)
            self._apply(np.array(y, float))
        elif key == LIVE:
            if self._live is None:
                self.error_label.setText("No prediction yet: draw a digit on the canvas.")
            else:
                self._apply(self._live)

    def set_label(self, label: int) -> None:
        label = int(label)
        if not 0 <= label < CLASSES:
            raise LossLabError(f"the label must be a digit 0–9, got {label}")
        self._set_label_quietly(label)
        self._apply(self._y)

    def set_probabilities(self, p) -> None:
        """Slot for the canvas's prediction: (10,) probabilities, or None when the canvas is blank."""
        if p is None:
            self._live = None
            return
        self._live = check_probabilities(p)
        if self.example_box.currentData() == LIVE and self.follow_live.isChecked():
            self._apply(self._live)

    def set_text(self, text: str) -> bool:
        """Use a typed vector; a bad one shows why and keeps the previous numbers. True if accepted."""
        try:
            y = parse_probabilities(text)
        except LossLabError as exc:
            self.error_label.setText(str(exc))
            return False
        self.example_box.blockSignals(True)
        self.example_box.setCurrentIndex(self.example_box.findData("typed"))
        self.example_box.blockSignals(False)
        self._apply(y)
        return True

    # ----- internals -----
    def _set_label_quietly(self, label: int) -> None:
        self._label = label
        self.label_box.blockSignals(True)
        self.label_box.setValue(label)
        self.label_box.blockSignals(False)

    def _on_typed(self) -> None:
        text = self.vector_edit.text()
        if text.strip() and text != format_probabilities(self._y):
            self.set_text(text)

    def _apply(self, y: np.ndarray) -> None:
        self._y = np.asarray(y, float).copy()
        t = np.zeros(CLASSES)
        t[self._label] = 1.0
        self._sse = sum_squared_error(self._y, t)
        self._cee = cross_entropy_error(self._y, t)
        total = float(self._y.sum())
        warning = "" if abs(total - 1.0) < SUM_TOLERANCE else f"Note: these add up to {total:.4g}, not 1. "
        self.error_label.setText(warning)
        self.vector_edit.setText(format_probabilities(self._y))
        self.sse_label.setText(f"{self._sse:.4f}")
        self.cee_label.setText(f"{self._cee:.4f}")
        top = int(np.argmax(self._y))
        verdict = "right" if top == self._label else f"wrong (it says {top})"
        p = self._y[self._label]
        self.explain_label.setText(
            f"The correct digit {self._label} gets {p:.3g}: the answer is {verdict}. Cross-entropy reads only "
            f"that number, −log({p:.3g} + 10⁻⁷), and climbs steeply as it falls to 0 (up to ≈ 16.1); "
            "the sum of squares never exceeds 1."
        )
        self.bars.setOpts(height=self._y)
        self.bars_plot.setYRange(0, max(1.0, float(self._y.max())) * 1.05, padding=0)  # typed values may pass 1
        self.target_bars.setOpts(height=t)
        self.lossesChanged.emit(self._sse, self._cee)
