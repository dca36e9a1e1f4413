"""Gradient descent on a line: fit t ≈ w₁x + w₀ to a few points, one visible step at a time.

The whole path is computed by ``engine.labs.descent`` when the points or η change (a few
thousand 2-vector steps take milliseconds), and Step/Run only reveal it: so the lab
shows exactly the engine's numbers (the book's 1174 iterations, loss 1.35000079).
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
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

from engine.labs.descent import (
    EXAMPLES,
    DescentResult,
    line_descent,
    line_design,
    line_learning_rates,
    squared_error_grad,
)
from widgets.compact_combo import compact_combo_box
from widgets.draggable_points import DraggablePoints
from widgets.lab_controls import PALETTE, LogSlider, fmt, make_plot, value_label


class DescentLabError(ValueError):
    """A point or learning rate the lab cannot use (not finite, not positive)."""


MAX_STEPS = 20_000  # "too small" η may need this many before the rounded loss stops falling
DIVERGE_STEPS = 400  # how much of a diverging run to show
LR_RANGE = (1e-4, 0.05)
STEP_COLOUR = PALETTE[3]
LINE_COLOUR = PALETTE[0]


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
        self.example_box.currentIndexChanged.connect(lambda _: self.set_example(self.example_box.currentData()))
        self.note_label = QLabel()
        self.note_label.setWordWrap(True)

        self.points_plot = make_plot("Points and the model line y = w₁x + w₀", "x", "t")
        self.points_plot.setMouseEnabled(x=False, y=False)
        self.points_plot.hideButtons()
        self.residuals = pg.PlotDataItem(pen=pg.mkPen("#999", width=1, style=Qt.PenStyle.DashLine), connect="pairs")
        self.model_line = pg.PlotDataItem(pen=pg.mkPen(LINE_COLOUR, width=2))
        self.points = DraggablePoints(size=12, brush=pg.mkBrush(PALETTE[1]), pen=pg.mkPen("#333"), hoverable=True)
        self.points.pointMoved.connect(self._on_point_moved)
        self.points.pointDropped.connect(lambda i, x, y: self.move_point(i, x, y))
        for item in (self.residuals, self.model_line, self.points):
            self.points_plot.addItem(item)
        self.points_plot.scene().sigMouseClicked.connect(self._on_plot_clicked)

        self.curve_plot = make_plot("Loss over the slope w₁ (w₀ held at its current value)", "w₁", "E = ½Σ(t − y)²")
        self.curve = pg.PlotDataItem(pen=pg.mkPen("#555", width=2))
        self.steps_line = pg.PlotDataItem(pen=pg.mkPen(STEP_COLOUR, width=1), symbol="o", symbolSize=5,
                                          symbolBrush=STEP_COLOUR, symbolPen=None)
        self.tangent = pg.PlotDataItem(pen=pg.mkPen(PALETTE[2], width=2, style=Qt.PenStyle.DashLine))
        self.current_dot = pg.ScatterPlotItem(size=11, brush=pg.mkBrush(STEP_COLOUR), pen=pg.mkPen("#000"))
        for item in (self.curve, self.steps_line, self.tangent, self.current_dot):
            self.curve_plot.addItem(item)

        self.history_plot = make_plot("Loss per step", "step", "E")
        self._log_history = False
        self.history = pg.PlotDataItem(pen=pg.mkPen(STEP_COLOUR, width=2))
        self.history_plot.addItem(self.history)

        self.step_button = QPushButton("Step")
        self.step_button.setToolTip("one gradient-descent step: w ← w − η ∂E/∂w")
        self.step_button.clicked.connect(lambda: self.step(1))
        self.run_button = QPushButton("Run")
        self.run_button.setToolTip("animate the steps until the loss stops falling (click again to pause)")
        self.run_button.clicked.connect(self._toggle_run)
        self.reset_button = QPushButton("Reset")
        self.reset_button.clicked.connect(self.reset)
        self.lr_slider = LogSlider(*LR_RANGE, self._lr)
        self.lr_slider.valueChanged.connect(self.set_learning_rate)
        self.lr_label = value_label()

        self.step_label = value_label()
        self.loss_label = value_label()
        self.w_label = value_label()
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)

        controls = QGroupBox("Descent")
        form = QFormLayout(controls)
        buttons = QHBoxLayout()
        for b in (self.step_button, self.run_button, self.reset_button):
            buttons.addWidget(b)
        form.addRow(buttons)
        form.addRow("Learning rate η", self.lr_label)
        form.addRow(self.lr_slider)
        form.addRow("Steps", self.step_label)
        form.addRow("Loss E", self.loss_label)
        form.addRow("(w₁, w₀)", self.w_label)
        form.addRow(self.status_label)

        top = QHBoxLayout()
        top.addWidget(QLabel("Example:"))
        top.addWidget(self.example_box, 1)
        left = QVBoxLayout()
        left.addLayout(top)
        left.addWidget(self.note_label)
        left.addWidget(controls)
        left.addStretch(1)
        plots = QVBoxLayout()
        row = QHBoxLayout()
        row.addWidget(self.points_plot, 1)
        row.addWidget(self.curve_plot, 1)
        plots.addLayout(row, 3)
        plots.addWidget(self.history_plot, 2)
        layout = QHBoxLayout(self)
        holder = QWidget()
        holder.setLayout(left)
        holder.setMaximumWidth(380)
        layout.addWidget(holder)
        layout.addLayout(plots, 1)

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
        if key not in EXAMPLES:
            raise DescentLabError(f"unknown example {key!r}; choose one of {', '.join(EXAMPLES)}")
        self._example = EXAMPLES[key]
        index = self.example_box.findData(key)
        if index != self.example_box.currentIndex():
            self.example_box.blockSignals(True)
            self.example_box.setCurrentIndex(index)
            self.example_box.blockSignals(False)
        self.note_label.setText(self._example.note + " Click the points plot to add a point, drag one to move it.")
        self._xs = np.array(self._example.xs, float)
        self._ts = np.array(self._example.ts, float)
        ex = self._example
        self._set_marks(ex.too_small, ex.lr, ex.too_large)
        self._restart()

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
        self.lr_slider.set_marks([
            (f"too small {too_small:.3g}", too_small), (f"good {good:.3g}", good), (f"too large {too_large:.3g}", too_large),
        ], tooltip="set the learning rate to {:g}")
        self._marks = (too_small, good, too_large)
        self._lr = good
        self.lr_slider.blockSignals(True)
        self.lr_slider.setValue(good)
        self.lr_slider.blockSignals(False)

    def _points_edited(self) -> None:
        """New points change the valley's steepness, so the marked rates follow it (η = good)."""
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
        self._draw_line(w)
        self._draw_curve(k)
        losses = np.maximum(p.losses[: k + 1], 1e-12)
        log = bool(losses.max() > 100 * losses.min())  # a log axis only when the loss spans decades (diverging)
        if log != self._log_history:
            self._log_history = log
            self.history_plot.setLogMode(y=log)
            self.history_plot.getPlotItem().setLabel("left", "E (log scale)" if log else "E", color="#222")
        self.history.setData(np.arange(k + 1), losses)

    def _refresh_points(self) -> None:
        self.points.setData(self._xs, self._ts)
        lo, hi = float(self._xs.min()), float(self._xs.max())
        tlo, thi = float(self._ts.min()), float(self._ts.max())
        padx = max(1.0, 0.25 * (hi - lo))
        pady = max(1.0, 0.25 * (thi - tlo))
        self.points_plot.setXRange(min(0.0, lo - padx), hi + padx, padding=0)
        self.points_plot.setYRange(min(0.0, tlo - pady), thi + pady, padding=0)

    def _draw_line(self, w: np.ndarray) -> None:
        x0, x1 = self.points_plot.getPlotItem().vb.viewRange()[0]
        xs = np.array([x0, x1])
        self.model_line.setData(xs, w[0] * xs + w[1])
        y = w[0] * self._xs + w[1]
        self.residuals.setData(np.repeat(self._xs, 2), np.column_stack([self._ts, y]).ravel())

    def _draw_curve(self, k: int) -> None:
        p = self._path
        X, t = line_design(self._xs), self._ts
        w1 = p.weights[: k + 1, 0]
        w0 = p.weights[k, 1]
        start, now = float(p.weights[0, 0]), float(p.weights[k, 0])
        lo, hi = min(start, now, float(w1.min())), max(start, now, float(w1.max()))
        span = max(hi - lo, 0.5)
        grid = np.linspace(lo - 0.6 * span, hi + 0.6 * span, 200)
        W = np.column_stack([grid, np.full_like(grid, w0)])
        r = t[None, :] - W @ X.T
        values = 0.5 * np.sum(r * r, axis=1)
        self.curve.setData(grid, values)
        shown = w1[-40:]  # the last few dozen steps show the pattern; more smear into a band
        slice_loss = 0.5 * np.sum((t[None, :] - np.column_stack([shown, np.full_like(shown, w0)]) @ X.T) ** 2, axis=1)
        self.steps_line.setData(shown, slice_loss)
        e_now = float(slice_loss[-1])
        slope = float(squared_error_grad(X, t, p.weights[k])[0])  # ∂E/∂w₁: the next step moves by −η × this
        half = 0.25 * span
        self.tangent.setData([now - half, now + half], [e_now - slope * half, e_now + slope * half])
        self.current_dot.setData([now], [e_now])
        top = float(values.max())
        self.curve_plot.setYRange(0, top * 1.05 if np.isfinite(top) and top > 0 else 1, padding=0)

    def _tick(self) -> None:
        self.step(self._steps_per_tick)

    def _toggle_run(self) -> None:
        if self.is_running():
            self.pause()
        else:
            self.run()

    def _on_point_moved(self, index: int, x: float, t: float) -> None:
        """While dragging only the picture follows; the fit restarts on release."""
        xs, ts = self._xs.copy(), self._ts.copy()
        xs[index], ts[index] = x, t
        self.points.setData(xs, ts)

    def _on_plot_clicked(self, ev) -> None:
        if ev.button() != Qt.MouseButton.LeftButton or ev.isAccepted():
            return
        vb = self.points_plot.getPlotItem().vb
        if not vb.sceneBoundingRect().contains(ev.scenePos()):
            return
        view = vb.mapSceneToView(ev.scenePos())
        if self.points.index_at(self.points.mapFromScene(ev.scenePos())) is not None:
            return
        self.add_point(view.x(), view.y())
