"""The gradient-descent lab's three plots: the points with the model line, the loss over the slope, the loss per step.

Each plot's view always holds everything drawn in it: the points plot is fitted to the points
(and the origin) and the model line and error bars are cut at its edges; the loss curve's view
is fitted to the curve, with the tangent cut to it; the loss-per-step view follows its data.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QGridLayout, QWidget

from engine.labs.descent import DescentResult, line_design, squared_error_grad
from widgets.draggable_points import DraggablePoints
from widgets.lab_controls import PALETTE, make_plot
from widgets.plot_fit import PlotPanel, clip_polyline

STEP_COLOUR = PALETTE[3]
LINE_COLOUR = PALETTE[0]
POINTS_HELP = "Dashed: each point's error t − y. Click: add a point; drag: move it; right-click: remove it."
CURVE_HELP = "Each step moves w₁ against the green slope, by η × slope: downhill, less as the valley flattens."
HISTORY_HELP = "Falling to a floor: a good η. Barely falling: too small. Rising: too large."
RECENT_STEPS = 40  # steps drawn on the loss curve: the last few dozen show the pattern; more smear into a band


class DescentPlots(QWidget):
    """Points and model line | loss over w₁ above, the loss per step below, each with a help line."""

    pointAdded = Signal(float, float)  # a click on empty space in the points plot (data coordinates)
    pointRemoved = Signal(int)  # a right-click on a point: its index

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._xs = self._ts = np.zeros(0)
        self.points_box = (0.0, 1.0, 0.0, 1.0)  # the points plot's view: x0, x1, y0, y1
        self._log_history = False

        self.points_plot = make_plot("Points and the line y = w₁x + w₀", "x", "t", tooltip=(
            "The points to fit (orange), the model line at the step shown (blue) and each point's error "
            "t − y (dashed). Click empty space to add a point; drag a point to move it; right-click a point "
            "to remove it."))
        self.points_plot.setMouseEnabled(x=False, y=False)
        self.points_plot.hideButtons()
        self.residuals = pg.PlotDataItem(pen=pg.mkPen("#999", width=1, style=Qt.PenStyle.DashLine), connect="pairs")
        self.model_line = pg.PlotDataItem(pen=pg.mkPen(LINE_COLOUR, width=2))
        self.points = DraggablePoints(size=12, brush=pg.mkBrush(PALETTE[1]), pen=pg.mkPen("#333"), hoverable=True)
        self.points.pointMoved.connect(self._on_point_moved)
        for item in (self.residuals, self.model_line, self.points):
            self.points_plot.addItem(item)
        self.points_plot.scene().sigMouseClicked.connect(self._on_plot_clicked)

        self.curve_plot = make_plot("Loss over the slope w₁", "w₁", "E", tooltip=(
            "E = ½Σ(t − y)² for every slope w₁, with w₀ held at its value at the step shown. "
            "Red dots: the last steps; green dashed line: the slope ∂E/∂w₁ at the step shown."))
        self.curve_plot.setMouseEnabled(x=False, y=False)
        self.curve_plot.hideButtons()
        self.curve = pg.PlotDataItem(pen=pg.mkPen("#555", width=2))
        self.steps_line = pg.PlotDataItem(pen=pg.mkPen(STEP_COLOUR, width=1), symbol="o", symbolSize=5,
                                          symbolBrush=STEP_COLOUR, symbolPen=None)
        self.tangent = pg.PlotDataItem(pen=pg.mkPen(PALETTE[2], width=2, style=Qt.PenStyle.DashLine))
        self.current_dot = pg.ScatterPlotItem(size=11, brush=pg.mkBrush(STEP_COLOUR), pen=pg.mkPen("#000"))
        for item in (self.curve, self.steps_line, self.tangent, self.current_dot):
            self.curve_plot.addItem(item)

        self.history_plot = make_plot("Loss per step", "step", "E", size_hint=(360, 150), tooltip=(
            "The loss E after each step shown; on a log scale when it spans decades (a diverging run)"))
        self.history = pg.PlotDataItem(pen=pg.mkPen(STEP_COLOUR, width=2))
        self.history_plot.addItem(self.history)

        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.addWidget(PlotPanel(self.points_plot, POINTS_HELP), 0, 0)
        grid.addWidget(PlotPanel(self.curve_plot, CURVE_HELP), 0, 1)
        grid.addWidget(PlotPanel(self.history_plot, HISTORY_HELP), 1, 0, 1, 2)
        grid.setRowStretch(0, 3)
        grid.setRowStretch(1, 2)

    def show_points(self, xs: np.ndarray, ts: np.ndarray) -> None:
        """New points: the points plot's view is fitted to them (and the origin), with room around them."""
        self._xs, self._ts = np.asarray(xs, float), np.asarray(ts, float)
        self.points.setData(self._xs, self._ts)
        lo, hi = float(self._xs.min()), float(self._xs.max())
        tlo, thi = float(self._ts.min()), float(self._ts.max())
        padx = max(1.0, 0.25 * (hi - lo))
        pady = max(1.0, 0.25 * (thi - tlo))
        self.points_box = (min(0.0, lo - padx), hi + padx, min(0.0, tlo - pady), thi + pady)
        x0, x1, y0, y1 = self.points_box
        self.points_plot.setXRange(x0, x1, padding=0)
        self.points_plot.setYRange(y0, y1, padding=0)

    def show_step(self, path: DescentResult, k: int) -> None:
        """Step ``k`` of ``path`` for the points last shown."""
        self._draw_line(path.weights[k])
        self._draw_curve(path, k)
        losses = np.maximum(path.losses[: k + 1], 1e-12)
        log = bool(losses.max() > 100 * losses.min())  # a log axis only when the loss spans decades (diverging)
        if log != self._log_history:
            self._log_history = log
            self.history_plot.setLogMode(y=log)
            self.history_plot.getPlotItem().setLabel("left", "E (log scale)" if log else "E", color="#222")
        self.history.setData(np.arange(k + 1), losses)
        self.history_plot.setXRange(0, max(1, len(path.losses) - 1), padding=0.02)  # the whole run's length

    def _draw_line(self, w: np.ndarray) -> None:
        """The model line across the view, cut where it leaves it; each point's error up to the line (or the edge)."""
        x0, x1, y0, y1 = self.points_box
        xs = np.array([x0, x1])
        self.model_line.setData(*clip_polyline(xs, w[0] * xs + w[1], self.points_box), connect="finite")
        y = np.clip(w[0] * self._xs + w[1], y0, y1)
        self.residuals.setData(np.repeat(self._xs, 2), np.column_stack([self._ts, y]).ravel())

    def _draw_curve(self, path: DescentResult, k: int) -> None:
        X, t = line_design(self._xs), self._ts
        w1 = path.weights[: k + 1, 0]
        w0 = path.weights[k, 1]
        start, now = float(path.weights[0, 0]), float(path.weights[k, 0])
        lo, hi = min(start, now, float(w1.min())), max(start, now, float(w1.max()))
        span = max(hi - lo, 0.5)
        grid = np.linspace(lo - 0.6 * span, hi + 0.6 * span, 200)
        W = np.column_stack([grid, np.full_like(grid, w0)])
        r = t[None, :] - W @ X.T
        values = 0.5 * np.sum(r * r, axis=1)
        self.curve.setData(grid, values)
        shown = w1[-RECENT_STEPS:]
        slice_loss = 0.5 * np.sum((t[None, :] - np.column_stack([shown, np.full_like(shown, w0)]) @ X.T) ** 2, axis=1)
        self.steps_line.setData(shown, slice_loss)
        e_now = float(slice_loss[-1])
        top = float(values.max())
        top = top if np.isfinite(top) and top > 0 else 1.0
        # the floor sits a little below 0 so the dot and the steps at E ≈ 0 show whole
        box = (float(grid[0]), float(grid[-1]), -0.05 * top, 1.05 * top)
        slope = float(squared_error_grad(X, t, path.weights[k])[0])  # ∂E/∂w₁: the next step moves by −η × this
        tx = np.array([now - 0.25 * span, now + 0.25 * span])
        self.tangent.setData(*clip_polyline(tx, e_now + slope * (tx - now), box), connect="finite")
        self.current_dot.setData([now], [e_now])
        self.curve_plot.setXRange(box[0], box[1], padding=0)
        self.curve_plot.setYRange(box[2], box[3], padding=0)

    def _on_point_moved(self, index: int, x: float, t: float) -> None:
        """While dragging only the picture follows; the owner restarts the fit on release."""
        xs, ts = self._xs.copy(), self._ts.copy()
        xs[index], ts[index] = x, t
        self.points.setData(xs, ts)

    def _on_plot_clicked(self, ev) -> None:
        """Left click on empty space: add a point there; right click on a point: remove it."""
        if ev.button() not in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton) or ev.isAccepted():
            return
        vb = self.points_plot.getPlotItem().vb
        if not vb.sceneBoundingRect().contains(ev.scenePos()):
            return
        index = self.points.index_at(self.points.mapFromScene(ev.scenePos()))
        if ev.button() == Qt.MouseButton.RightButton:
            if index is not None:
                self.pointRemoved.emit(index)
            return
        if index is not None:
            return
        view = vb.mapSceneToView(ev.scenePos())
        self.pointAdded.emit(view.x(), view.y())
