"""Gradient descent on a line: fit t ≈ w₁x + w₀ to a few points, one visible step at a time.

The whole path is computed by ``engine.labs.descent`` when the points or η change (a few
thousand 2-vector steps take milliseconds), and Step/Run only reveal it: so the lab
shows exactly the engine's numbers (the book's 1174 iterations, loss 1.35000079).
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.tabs.descent_plots import DescentPlots
from engine.labs.descent import EXAMPLES, DescentResult, line_descent, line_learning_rates
from widgets.compact_combo import compact_combo_box
from widgets.lab_controls import LogSlider, fmt, value_label
from widgets.plain_text import plain_tooltip


class DescentLabError(ValueError):
    """A point or learning rate the lab cannot use (not finite, not positive)."""


MAX_STEPS = 20_000  # "too small" η may need this many before the rounded loss stops falling
DIVERGE_STEPS = 400  # how much of a diverging run to show
LR_RANGE = (1e-4, 0.05)
COLUMN_WIDTH = 340  # px: the controls' column; the plots take the rest
CUSTOM = "custom"  # the example list's entry for points the learner added, moved or removed
MIN_POINTS = 2  # a line needs two points


def short_number(value: float) -> str:
    """A weight as the book prints it: rounded to 8 decimals, trailing zeros dropped (0.0499746)."""
    return repr(round(float(value), 8)) if abs(value) < 1e15 else f"{value:.4e}"


def describe_run(path: DescentResult, start, lr: float) -> str:
    """Where the whole run ends, in the words of the book's note: true for the points and η it was computed for."""
    head = f"From (w₁, w₀) = ({start[0]:g}, {start[1]:g}) with η = {lr:.3g}"
    w = path.w
    if path.status == "converged":
        return (f"{head} the loss stops falling at iteration {path.stop_iteration}: E = {fmt(path.loss)} "
                f"at (w₁, w₀) ≈ ({short_number(w[0])}, {short_number(w[1])}).")
    if path.status == "diverged":
        return (f"{head} the loss rises: each step overshoots the valley further than the last, "
                f"and after {len(path.losses) - 1:,} steps E = {fmt(path.loss, 2)}.")
    return (f"{head} the loss is still falling after {len(path.losses) - 1:,} steps: E = {fmt(path.loss)} "
            f"at (w₁, w₀) ≈ ({short_number(w[0])}, {short_number(w[1])}).")


class DescentLab(QWidget):
    """Points, the model line, the loss over the slope with the steps on it, and Step/Run/Reset."""

    stepped = Signal(int)  # number of steps now shown
    finished = Signal(str)  # the run reached the end of its path: its status

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._example = EXAMPLES["book"]
        self._xs = np.array(self._example.xs)
        self._ts = np.array(self._example.ts)
        self._lr = self._example.lr
        self._custom: tuple[np.ndarray, np.ndarray] | None = None  # the learner's points, once edited
        self._edited = False  # the points shown are the learner's, not the example's
        self._path: DescentResult | None = None
        self._shown = 0
        self._timer = QTimer(self)
        self._timer.setInterval(16)
        self._timer.timeout.connect(self._tick)
        self._steps_per_tick = 1
        self._build()
        self.set_example("book")

    # ----- layout -----
    def _build(self) -> None:
        self.example_box = compact_combo_box()
        for key, ex in EXAMPLES.items():
            self.example_box.addItem(ex.title, key)
        self.example_box.setToolTip("Points to fit: the book's four, smaller cases that show one idea each, "
                                    "or your own (click the plot to add a point)")
        self.example_box.currentIndexChanged.connect(lambda _: self.set_example(self.example_box.currentData()))
        self.note_label = QLabel()
        self.note_label.setWordWrap(True)
        self.note_label.setToolTip("Where the whole run ends for the points and η shown")

        self.plots = DescentPlots()
        self.plots.pointAdded.connect(self.add_point)
        self.plots.points.pointDropped.connect(lambda i, x, y: self.move_point(i, x, y))
        self.plots.pointRemoved.connect(self._on_remove_asked)
        # the plots' parts, by the names the tests and the help use
        self.points_plot, self.points, self.model_line = self.plots.points_plot, self.plots.points, self.plots.model_line
        self.curve_plot, self.history_plot = self.plots.curve_plot, self.plots.history_plot

        self.step_button = QPushButton("Step")
        self.step_button.setToolTip("One gradient-descent step: w ← w − η ∂E/∂w")
        self.step_button.clicked.connect(lambda: self.step(1))
        self.run_button = QPushButton("Run")
        self.run_button.setToolTip("Animate the steps until the loss stops falling (click again to pause)")
        self.run_button.clicked.connect(self._toggle_run)
        self.reset_button = QPushButton("Reset")
        self.reset_button.setToolTip("Back to step 0: the example's starting line")
        self.reset_button.clicked.connect(self.reset)
        self.lr_slider = LogSlider(*LR_RANGE, self._lr)
        self.lr_slider.slider.setToolTip("The learning rate η on a log scale: how far each step moves against the slope")
        self.lr_slider.valueChanged.connect(self.set_learning_rate)
        self.lr_label = value_label()
        self.lr_label.setToolTip("The learning rate η now")

        self.step_label = value_label()
        self.step_label.setToolTip("Steps shown so far, of the steps this run takes")
        self.loss_label = value_label()
        self.loss_label.setToolTip("The loss E = ½Σ(t − y)² at the step shown")
        self.w_label = value_label()
        self.w_label.setWordWrap(True)  # a diverging run's weights are long numbers: one under the other then
        self.w_label.setToolTip("The slope w₁ and intercept w₀ at the step shown")
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)

        controls = QGroupBox("Descent")
        form = QFormLayout()
        buttons = QHBoxLayout()
        for b in (self.step_button, self.run_button, self.reset_button):
            buttons.addWidget(b)
        form.addRow(buttons)
        form.addRow("Learning rate η", self.lr_label)
        form.addRow(self.lr_slider)
        form.addRow("Steps", self.step_label)
        form.addRow("Loss E", self.loss_label)
        form.addRow("(w₁, w₀)", self.w_label)
        column = QVBoxLayout(controls)  # the status under the form: a form row gives wrapped text too little height
        column.addLayout(form)
        column.addWidget(self.status_label)

        left = QVBoxLayout()
        left.setContentsMargins(0, 0, 0, 0)
        left.addWidget(QLabel("Example:"))
        left.addWidget(self.example_box)  # its own row: the whole column's width for the example's name
        left.addWidget(self.note_label)
        left.addWidget(controls)
        left.addStretch(1)
        holder = QWidget()
        holder.setLayout(left)
        holder.setMinimumWidth(COLUMN_WIDTH)
        holder.setMaximumWidth(COLUMN_WIDTH)
        layout = QHBoxLayout(self)
        layout.addWidget(holder)
        layout.addWidget(self.plots, 1)

    # ----- public API -----
    @property
    def path(self) -> DescentResult:
        return self._path

    def points_data(self) -> tuple[np.ndarray, np.ndarray]:
        return self._xs.copy(), self._ts.copy()

    def learning_rate(self) -> float:
        return self._lr

    def steps_shown(self) -> int:
        return self._shown

    def current(self) -> tuple[float, np.ndarray]:
        """(loss, (w₁, w₀)) at the step now shown."""
        return float(self._path.losses[self._shown]), self._path.weights[self._shown].copy()

    def is_running(self) -> bool:
        return self._timer.isActive()

    def at_end(self) -> bool:
        return self._shown >= len(self._path.losses) - 1

    def set_example(self, key: str) -> None:
        """One of ``EXAMPLES``, or ``"custom"``: the points last added, moved or removed (once there are some)."""
        if key == CUSTOM and self._custom is not None:
            self._xs, self._ts = (a.copy() for a in self._custom)
            self._edited = True
            self._select_in_list(CUSTOM)
            self._set_marks(*line_learning_rates(self._xs))
            self._restart()
            return
        if key not in EXAMPLES:
            raise DescentLabError(f"unknown example {key!r}; choose one of {', '.join(EXAMPLES)}")
        self._example = EXAMPLES[key]
        self._edited = False
        self._select_in_list(key)
        self._xs = np.array(self._example.xs, float)
        self._ts = np.array(self._example.ts, float)
        ex = self._example
        self._set_marks(ex.too_small, ex.lr, ex.too_large)
        self._restart()

    def example(self) -> str:
        """The example shown: a key of ``EXAMPLES``, or ``"custom"`` for the learner's own points."""
        return CUSTOM if self._edited else next(k for k, ex in EXAMPLES.items() if ex is self._example)

    def set_learning_rate(self, lr: float) -> None:
        lr = float(lr)
        if not np.isfinite(lr) or lr <= 0:
            raise DescentLabError(f"learning rate must be a positive number, got {lr!r}")
        self._lr = lr
        if self.lr_slider.value() != lr:
            self.lr_slider.blockSignals(True)
            self.lr_slider.setValue(lr)
            self.lr_slider.blockSignals(False)
        self._restart()

    def add_point(self, x: float, t: float) -> None:
        x, t = self._checked_point(x, t)
        self._xs = np.append(self._xs, x)
        self._ts = np.append(self._ts, t)
        self._points_edited()

    def move_point(self, index: int, x: float, t: float) -> None:
        if not 0 <= index < len(self._xs):
            raise DescentLabError(f"no point {index}: there are {len(self._xs)}")
        x, t = self._checked_point(x, t)
        self._xs[index], self._ts[index] = x, t
        self._points_edited()

    def remove_point(self, index: int) -> None:
        if not 0 <= index < len(self._xs):
            raise DescentLabError(f"no point {index}: there are {len(self._xs)}")
        if len(self._xs) <= MIN_POINTS:
            raise DescentLabError(f"a line needs at least {MIN_POINTS} points: add one before removing this")
        self._xs = np.delete(self._xs, index)
        self._ts = np.delete(self._ts, index)
        self._points_edited()

    def step(self, n: int = 1) -> None:
        """Reveal the next ``n`` steps of the path (stops at its end)."""
        last = len(self._path.losses) - 1
        before = self._shown
        self._shown = min(last, self._shown + max(0, int(n)))
        if self._shown != before:
            self._show_step()
            self.stepped.emit(self._shown)
        if self.at_end():
            self._timer.stop()
            self.run_button.setText("Run")
            if self._shown != before:
                self.finished.emit(self._path.status)

    def run(self) -> None:
        """Animate to the end of the path in about two seconds (a QTimer, never a blocking loop)."""
        if self.at_end():
            return
        self._steps_per_tick = max(1, (len(self._path.losses) - 1) // 120)
        self.run_button.setText("Pause")
        self._timer.start()

    def pause(self) -> None:
        self._timer.stop()
        self.run_button.setText("Run")

    def reset(self) -> None:
        self.pause()
        self._shown = 0
        self._show_step()
        self.stepped.emit(0)

    # ----- internals -----
    @staticmethod
    def _checked_point(x, t) -> tuple[float, float]:
        try:
            x, t = float(x), float(t)
        except (TypeError, ValueError):
            raise DescentLabError(f"a point needs two numbers (x, t), got ({x!r}, {t!r})") from None
        if not (np.isfinite(x) and np.isfinite(t)):
            raise DescentLabError(f"a point needs finite numbers, got ({x}, {t})")
        return x, t

    def _set_marks(self, too_small: float, good: float, too_large: float) -> None:
        self.lr_slider.set_marks([  # two lines each: three of them fit the controls' column whatever the numbers
            (f"too small\n{too_small:.3g}", too_small), (f"good\n{good:.3g}", good), (f"too large\n{too_large:.3g}", too_large),
        ], tooltip="set the learning rate to {:g}")
        self._marks = (too_small, good, too_large)
        self._lr = good
        self.lr_slider.blockSignals(True)
        self.lr_slider.setValue(good)
        self.lr_slider.blockSignals(False)

    def _select_in_list(self, key: str) -> None:
        index = self.example_box.findData(key)
        if index != self.example_box.currentIndex():
            self.example_box.blockSignals(True)
            self.example_box.setCurrentIndex(index)
            self.example_box.blockSignals(False)

    def _on_remove_asked(self, index: int) -> None:
        """A right-click on a point: the last two stay, and the status line says why."""
        if len(self._xs) <= MIN_POINTS:
            self.status_label.setText(f"A line needs at least {MIN_POINTS} points: add one before removing this one.")
            return
        self.remove_point(index)

    def _points_edited(self) -> None:
        """The learner's points, listed as "Your points (n)"; the marked rates follow the valley's steepness."""
        self._edited = True
        self._custom = (self._xs.copy(), self._ts.copy())
        n = len(self._xs)
        text = f"Your points ({n})"
        shown = ", ".join(f"({x:g}, {t:g})" for x, t in zip(self._xs, self._ts))
        tooltip = plain_tooltip(f"The points you added, moved or removed, starting from "
                                f"{self._example.title}: {shown}")
        index = self.example_box.findData(CUSTOM)
        if index < 0:
            self.example_box.addItem(text, CUSTOM)
            index = self.example_box.count() - 1
        self.example_box.setItemText(index, text)
        self.example_box.setItemData(index, tooltip, Qt.ItemDataRole.ToolTipRole)
        self._select_in_list(CUSTOM)
        too_small, good, too_large = line_learning_rates(self._xs)
        self._set_marks(too_small, good, too_large)
        self._restart()
        self.status_label.setText(f"New points: η set to {good:g}, the fastest rate that converges for them. "
                                  + self._status_text())

    def learning_rate_marks(self) -> list[float]:
        """The marked rates (too small, good, too large) for the current points."""
        return list(self._marks)

    def _restart(self) -> None:
        """Recompute the whole path from the example's start for the current points and η."""
        self.pause()
        self._path = line_descent(self._xs, self._ts, self._example.start, self._lr, MAX_STEPS, DIVERGE_STEPS)
        self._shown = 0
        self._refresh_points()
        self._show_step()
        self.note_label.setText(self._note())

    def _note(self) -> str:
        """The example's own note while it describes what is shown (its points, its η); else the run computed now."""
        ex = self._example
        summary = describe_run(self._path, ex.start, self._lr)
        if self._edited:
            return f"Your {len(self._xs)} points. {summary}"
        return ex.note if self._lr == ex.lr else summary

    def _status_text(self) -> str:
        p = self._path
        if not self.at_end():
            return "Step or Run to descend."
        if p.status == "converged":
            return (f"Converged: at iteration {p.stop_iteration} (counted from 0, as the book does) "
                    "the loss rounded to 8 decimals stopped falling.")
        if p.status == "diverged":
            return ("Diverged: each step overshoots the valley further than the last — η is too large "
                    f"(the loss reached {fmt(p.loss, 2)}).")
        return f"Still falling after {len(p.losses) - 1} steps: η is so small that descent crawls."

    def _show_step(self) -> None:
        k = self._shown
        p = self._path
        w = p.weights[k]
        self.step_label.setText(f"{k} of {len(p.losses) - 1}")
        self.loss_label.setText(fmt(float(p.losses[k])))
        self.w_label.setText(f"({fmt(w[0])}, {fmt(w[1])})")
        self.lr_label.setText(f"{self._lr:g}")
        self.status_label.setText(self._status_text())
        self.plots.show_step(p, k)

    def _refresh_points(self) -> None:
        self.plots.show_points(self._xs, self._ts)

    def _tick(self) -> None:
        self.step(self._steps_per_tick)

    def _toggle_run(self) -> None:
        if self.is_running():
            self.pause()
        else:
            self.run()
