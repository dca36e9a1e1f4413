"""One run's curves on the Compare page's plots: its loss points in buffers grown by doubling, its epoch
accuracies, its markers (where its learning rate changed), and how each is drawn when focused, dimmed or neither."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor

from widgets.loss_series import grown
from widgets.plain_text import inf_line_label

DIM_ALPHA = 55  # a dimmed curve's opacity (of 255): there, but out of the way
WIDTHS = {"focus": 2.8, "dim": 1.2, "normal": 2.0}
MARKER_LABEL = {"position": 0.9, "anchors": [(0, 0.5), (0, 0.5)], "fill": (255, 255, 255, 210)}


class ComparePlotError(ValueError):
    """Bad data or an unknown curve given to the compare plot."""


def series(values, what: str) -> np.ndarray:
    try:
        return np.atleast_1d(np.asarray(values, dtype=np.float64)).reshape(-1)
    except (TypeError, ValueError):
        raise ComparePlotError(f"ComparePlot: {what} must be numbers, got {type(values).__name__}") from None


def points(pairs: list) -> tuple[np.ndarray, np.ndarray]:
    """[(x, y), ...] as two arrays."""
    arr = np.array(pairs, dtype=np.float64).reshape(-1, 2)
    return arr[:, 0].copy(), arr[:, 1].copy()


@dataclass
class Curve:
    label: str
    color: str
    item: pg.PlotDataItem  # its loss curve
    acc_item: pg.PlotDataItem  # its test accuracies
    x: np.ndarray = field(default_factory=lambda: np.empty(0))
    y: np.ndarray = field(default_factory=lambda: np.empty(0))
    n: int = 0
    acc: list = field(default_factory=list)  # (iteration, accuracy in %) points
    markers: list = field(default_factory=list)  # (iteration, text): e.g. where its learning rate changed
    marker_items: list = field(default_factory=list)
    dirty: bool = True

    def append(self, x: np.ndarray, y: np.ndarray) -> None:
        n, k = self.n, x.size
        self.x, self.y = grown(self.x, n, n + k), grown(self.y, n, n + k)
        self.x[n:n + k], self.y[n:n + k] = x, y
        self.n = n + k
        self.dirty = True

    def style(self, state: str, loss_plot: pg.PlotItem) -> None:
        """Pens for "focus" (bold, on top), "dim" (faded, thin, no markers) or "normal"."""
        colour = QColor(self.color)
        if state == "dim":
            colour.setAlpha(DIM_ALPHA)
        pen = pg.mkPen(colour, width=WIDTHS.get(state, WIDTHS["normal"]))
        z = 10 if state == "focus" else 0
        self.item.setPen(pen)
        self.item.setZValue(z)
        self.acc_item.setPen(pen)
        self.acc_item.setSymbolBrush(colour)
        self.acc_item.setSymbolPen(pg.mkPen(QColor(255, 255, 255, colour.alpha())))
        self.acc_item.setZValue(z)
        self.clear_markers(loss_plot)
        if state == "dim":
            return
        for iteration, text in self.markers:
            line = pg.InfiniteLine(iteration, angle=90, movable=False, label=inf_line_label(text), labelOpts=MARKER_LABEL,
                                   pen=pg.mkPen(self.color, width=1, style=Qt.PenStyle.DashLine))
            line.label.setColor(self.color)
            loss_plot.addItem(line, ignoreBounds=True)
            self.marker_items.append(line)

    def clear_markers(self, loss_plot: pg.PlotItem) -> None:
        for line in self.marker_items:
            loss_plot.removeItem(line)
        self.marker_items = []
