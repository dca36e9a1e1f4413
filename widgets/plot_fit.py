"""Plots that fit their slot and show all their data: the labs' plots.

``FitPlot`` is a white pyqtgraph PlotWidget that takes its size from the layout. A plain
PlotWidget asks for 600×480 px (and for its current size once shown), and its title sets its
smallest width, so a long title drew a plot 317 px wide into a 138 px slot. A FitPlot asks for a
modest size, can shrink to ``MIN_SIZE``, and shortens its title with "…" to the width it gets
(the whole title stays in its tooltip). ``fit_view`` sets the view to its data's bounds.

``PlotPanel`` puts a one-line "how to read it" help line under a plot; ``PlotRow`` sets plots side
by side where the room is wide and one above the other where it is not. ``clip_polyline`` cuts
a line to a box, so a line drawn "to infinity" or a path running away stays inside the view it
is drawn in (and the view need not grow to the size of a diverging run).
"""
from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QFontMetricsF
from PySide6.QtWidgets import QBoxLayout, QVBoxLayout, QWidget

from widgets.plain_text import help_line

MIN_SIZE = (200, 150)  # px: below this a plot is squashed
TITLE_POINTS = 10
TITLE_MARGIN = 24  # px the title keeps from the plot's edges


class FitPlot(pg.PlotWidget):
    """A white plot with labelled axes whose size comes from its layout and whose title fits its width."""

    def __init__(self, title: str = "", x_label: str = "", y_label: str = "", tooltip: str = "",
                 size_hint: tuple[int, int] = (360, 220), parent: QWidget | None = None) -> None:
        super().__init__(parent, background="w")
        self._title = ""
        self._hint = QSize(*size_hint)
        item = self.getPlotItem()
        for side, text in (("bottom", x_label), ("left", y_label)):
            axis = item.getAxis(side)
            axis.setPen(pg.mkPen("#444"))
            axis.setTextPen(pg.mkPen("#222"))
            axis.enableAutoSIPrefix(False)  # "(x1e+12)" beside the label is easy to miss; the ticks say it
            if text:
                item.setLabel(side, text, color="#222")
        item.showGrid(x=True, y=True, alpha=0.15)
        self.setMenuEnabled(False)
        self._tooltip = tooltip
        if title:
            self.set_title(title)
        self._update_tooltip()

    # ----- size -----
    def sizeHint(self) -> QSize:
        return QSize(self._hint)

    def minimumSizeHint(self) -> QSize:
        return QSize(*MIN_SIZE)

    def resizeEvent(self, ev) -> None:
        self._show_title()  # first: the view then sizes the plot to the window, down to the title's new width
        super().resizeEvent(ev)

    # ----- title and tooltip -----
    def title(self) -> str:
        """The whole title (the plot may show it shortened)."""
        return self._title

    def set_title(self, title: str) -> None:
        self._title = str(title)
        self._show_title()
        self._update_tooltip()

    def set_tooltip(self, text: str) -> None:
        """What the plot shows and how to use it; the whole title is put above it when it is shortened."""
        self._tooltip = text
        self._update_tooltip()

    def shown_title(self) -> str:
        return self.getPlotItem().titleLabel.text

    def _update_tooltip(self) -> None:
        parts = [self._title] if self._title else []
        if self._tooltip:
            parts.append(self._tooltip)
        self.setToolTip("\n".join(parts))

    def _show_title(self) -> None:
        item = self.getPlotItem()
        if item is None or not getattr(self, "_title", ""):  # resized while being made or closed
            return
        label = item.titleLabel
        font = label.item.font()
        font.setPointSizeF(TITLE_POINTS)
        metrics = QFontMetricsF(font)
        # the title sits over the view box only: the left axis (ticks and label) takes its own column
        left = item.getAxis("left")
        axis_width = max(left.width(), left.minimumWidth()) if left.isVisible() else 0.0
        room = max(40.0, self.width() - axis_width - TITLE_MARGIN)
        text = metrics.elidedText(self._title, Qt.TextElideMode.ElideRight, room)
        if text != label.text:
            item.setTitle(html.escape(text, quote=False), color="#222", size=f"{TITLE_POINTS}pt")
            label.text = text  # the text as shown, unescaped

    # ----- view -----
    def fit_view(self, items=None, padding: float = 0.05, x_include=(), y_include=()) -> None:
        """Set the view to the bounds of ``items`` (default: every item that has bounds) plus ``padding``.

        ``x_include``/``y_include`` are values the view must also show (say 0 on an axis).
        """
        vb = self.getPlotItem().vb
        bounds = vb.childrenBounds(items=items)
        for axis, extra in ((0, x_include), (1, y_include)):
            values = [v for v in (list(bounds[axis] or []) + list(extra)) if v is not None and np.isfinite(v)]
            if not values:
                continue
            lo, hi = min(values), max(values)
            if hi - lo <= 1e-12 * max(1.0, abs(lo), abs(hi)):  # a single value: show a unit around it
                half = max(0.5, 0.1 * abs(lo))
                lo, hi = lo - half, hi + half
            if axis == 0:
                vb.setXRange(lo, hi, padding=padding)
            else:
                vb.setYRange(lo, hi, padding=padding)


class PlotPanel(QWidget):
    """A plot (or any view, e.g. the 3-D surface) with a short "how to read it" line under it (``help_line``)."""

    def __init__(self, plot: QWidget, help_text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot = plot
        self.help_label = help_line(help_text)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(plot, 1)
        layout.addWidget(self.help_label)


class PlotRow(QWidget):
    """Plots side by side where the room is wide (width ≥ ``ratio`` × height), else one above the other."""

    def __init__(self, widgets: list[QWidget], ratio: float = 1.6, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._ratio = float(ratio)
        self._layout = QBoxLayout(QBoxLayout.Direction.LeftToRight, self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        for widget in widgets:
            self._layout.addWidget(widget, 1)

    def is_row(self) -> bool:
        return self._layout.direction() == QBoxLayout.Direction.LeftToRight

    def resizeEvent(self, ev) -> None:
        wide = self.width() >= self._ratio * self.height()
        direction = QBoxLayout.Direction.LeftToRight if wide else QBoxLayout.Direction.TopToBottom
        if direction != self._layout.direction():
            self._layout.setDirection(direction)
        super().resizeEvent(ev)


def clip_polyline(xs, ys, box: tuple[float, float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """The parts of the polyline (xs, ys) inside ``box`` = (x0, x1, y0, y1), cut where it crosses the edge.

    A polyline wholly inside comes back unchanged; otherwise each piece that stays inside is
    separated from the next by a NaN (draw it with ``connect="finite"``). Non-finite points end a piece.
    """
    xs = np.asarray(xs, float).reshape(-1)
    ys = np.asarray(ys, float).reshape(-1)
    x0, x1, y0, y1 = (float(v) for v in box)
    inside = np.isfinite(xs) & np.isfinite(ys) & (xs >= x0) & (xs <= x1) & (ys >= y0) & (ys <= y1)
    if inside.all():
        return xs, ys
    if len(xs) < 2:
        return np.array([]), np.array([])
    ax, ay, dx, dy = xs[:-1], ys[:-1], np.diff(xs), np.diff(ys)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # a non-finite segment is dropped below
        t0 = np.zeros(len(dx))
        t1 = np.ones(len(dx))
        ok = np.isfinite(ax) & np.isfinite(ay) & np.isfinite(dx) & np.isfinite(dy)
        # Liang–Barsky: the part t ∈ [t0, t1] of a + t·d lies inside each of the four half-planes
        for p, q in ((-dx, ax - x0), (dx, x1 - ax), (-dy, ay - y0), (dy, y1 - ay)):
            r = q / p
            parallel = p == 0
            ok &= ~(parallel & (q < 0))
            t0 = np.where(~parallel & (p < 0), np.maximum(t0, r), t0)
            t1 = np.where(~parallel & (p > 0), np.minimum(t1, r), t1)
        ok &= t0 <= t1
        start_x, start_y = ax + t0 * dx, ay + t0 * dy
        end_x, end_y = ax + t1 * dx, ay + t1 * dy
    joined = np.zeros(len(dx), bool)  # the segment goes on from where the one before it ended
    joined[1:] = ok[1:] & ok[:-1] & (t0[1:] == 0) & (t1[:-1] == 1)
    out_x: list[float] = []
    out_y: list[float] = []
    for i in np.flatnonzero(ok):
        if not joined[i]:
            if out_x:
                out_x.append(np.nan)
                out_y.append(np.nan)
            out_x.append(start_x[i])
            out_y.append(start_y[i])
        out_x.append(end_x[i])
        out_y.append(end_y[i])
    return np.array(out_x, float), np.array(out_y, float)
