"""Central vs forward differences on the book's y = 0.01x² + 0.1x: a table, what it shows, and the tangents."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.nn.functions import forward_diff, numerical_diff
from widgets.compact_combo import compact_combo_box
from widgets.lab_controls import PALETTE, make_plot
from widgets.plot_fit import PlotPanel

STEP_SIZES = [1e-4, 1e-2, 1e-8, 1e-12, 1e-50]
DEMO_POINTS = (5.0, 10.0)
TANGENT_HALF = 5.0  # each tangent is drawn this far either side of its point
PLOT_HELP = "Dashed: the tangent whose slope the central difference gives; it should touch the curve at the dot."


def demo_function(x):
    """The book's example y = 0.01x² + 0.1x (exact slope 0.02x + 0.1)."""
    return 0.01 * x**2 + 0.1 * x


def demo_exact(x: float) -> float:
    return 0.02 * x + 0.1


class DifferenceDemo(QGroupBox):
    """The step size h, the two difference quotients at x = 5 and 10 beside the exact slope, and the tangents."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Central vs forward difference", parent)
        self.differences: dict = {}  # x -> (central, forward) for the chosen h
        self.h_box = compact_combo_box()
        self.h_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)  # short items: show them whole
        for h in STEP_SIZES:
            self.h_box.addItem(f"h = {h:g}" + ("  (the book)" if h == 1e-4 else ""), h)
        self.h_box.setToolTip("The step h in the difference quotients: too large misses the curve, "
                              "too small loses digits to rounding")
        self.h_box.currentIndexChanged.connect(lambda _: self.set_step_size(self.h_box.currentData()))
        self.table = QTableWidget(len(DEMO_POINTS), 4)
        self.table.setHorizontalHeaderLabels(["x", "central (f(x+h) − f(x−h)) / 2h", "forward (f(x+h) − f(x)) / h",
                                              "exact 0.02x + 0.1"])
        self.table.setToolTip("The slope at x from each difference quotient, beside the exact slope 0.02x + 0.1")
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setMaximumHeight(90)
        self.explain = QLabel()
        self.explain.setWordWrap(True)
        self.plot = make_plot("y = 0.01x² + 0.1x and its tangents", "x", "y", tooltip=(
            "The book's function f (black) and, at x = 5 and x = 10, the line with the slope the central "
            "difference gives for the chosen h"))
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.getPlotItem().addLegend(offset=(10, 10), labelTextColor="#111", brush=pg.mkBrush(255, 255, 255, 215))
        xs = np.linspace(0.0, 20.0, 201)
        self.plot.plot(xs, demo_function(xs), pen=pg.mkPen("#333", width=2), name="f(x)")
        self.tangents = [
            self.plot.plot([], [], pen=pg.mkPen(PALETTE[i + 1], width=2, style=Qt.PenStyle.DashLine),
                           name=f"tangent at x = {x:g}")
            for i, x in enumerate(DEMO_POINTS)
        ]
        self.tangent_points = pg.ScatterPlotItem(size=9, brush=pg.mkBrush(PALETTE[3]), pen=None)
        self.plot.addItem(self.tangent_points)

        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        row.addWidget(QLabel("Step size"))
        row.addWidget(self.h_box)
        row.addStretch(1)
        layout.addLayout(row)
        layout.addWidget(self.table)
        layout.addWidget(self.explain)
        layout.addWidget(PlotPanel(self.plot, PLOT_HELP), 1)

    def set_step_size(self, h: float) -> None:
        h = float(h)
        index = self.h_box.findData(h)
        if index < 0:
            raise ValueError(f"step size {h:g} is not offered; choose one of {', '.join(f'{s:g}' for s in STEP_SIZES)}")
        if index != self.h_box.currentIndex():
            self.h_box.blockSignals(True)
            self.h_box.setCurrentIndex(index)
            self.h_box.blockSignals(False)
        self.differences = {}
        for row, x in enumerate(DEMO_POINTS):
            central = numerical_diff(demo_function, x, h)
            forward = forward_diff(demo_function, x, h)
            self.differences[x] = (central, forward)
            cells = [f"{x:g}", repr(float(central)), repr(float(forward)), f"{demo_exact(x):g}"]
            for col, text in enumerate(cells):
                self.table.setItem(row, col, QTableWidgetItem(text))
        xs = np.array(DEMO_POINTS)
        self.tangent_points.setData(xs, demo_function(xs))
        for tangent, x in zip(self.tangents, DEMO_POINTS):
            slope = self.differences[x][0]
            span = np.array([x - TANGENT_HALF, x + TANGENT_HALF])
            tangent.setData(span, demo_function(x) + slope * (span - x))
        self.plot.fit_view(padding=0.04)
        if all(p + h == p for p in DEMO_POINTS):
            spacing = np.spacing(max(DEMO_POINTS))
            self.explain.setText(
                f"h = {h:g} is far below the spacing between neighbouring doubles near x (about {spacing:.1e} "
                f"at x = {max(DEMO_POINTS):g}), so x + h rounds to x itself: f(x + h) − f(x) is exactly 0 and "
                "both differences give 0.0. The tangents lie flat — a step that small is no step at all."
            )
        else:
            self.explain.setText(
                "The exact slopes are 0.2 and 0.3. The central difference's error shrinks like h² (for this "
                "parabola only rounding is left), the forward difference's like h: it is off by 0.01·h. "
                "Too small an h loses digits to rounding (try 1e-12), too large a one to the curve."
            )
