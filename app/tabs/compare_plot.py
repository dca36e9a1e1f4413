"""The Compare page's plots: every drawn run's loss per iteration (top) and test accuracy per epoch (below).

Runs are keyed curves; appends write into buffers grown by doubling and a timer redraws at most
every REDRAW_MS milliseconds (a live race reports far faster than a screen can show). Focusing
runs draws them bold, dims the others and fits both axes to the focused runs alone, so a short race
is not squashed against a long run from earlier. The legend is a widget below the plots (it never
covers a curve) built from the same curves, so it always names exactly what is drawn. A PNG export
draws a fresh copy holding only the runs asked for.
"""
from __future__ import annotations

import os
from typing import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSize, Qt, QTimer
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QVBoxLayout, QWidget

from app.tabs.compare_curves import ComparePlotError, Curve, points, series

from widgets.plain_text import help_line
from widgets.run_legend import LegendEntry, RunLegend

REDRAW_MS = 50
AXIS_COLOUR = "#444444"
AXIS_WIDTH = 46  # both left axes get this width, so the two plots' iteration axes line up
EXPORT_SIZE = QSize(1000, 680)
LOSS_HELP = "Training loss per iteration of each run drawn ({how}); lower is better."
ACCURACY_HELP = "Test accuracy after each epoch: the share of test digits each run's network gets right."
EMPTY_LEGEND = "No run drawn: tick runs in the list or start a race."


class ComparePlot(QWidget):
    """Keyed loss curves (one per run) over a shared iteration axis, their epoch accuracies and a legend."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._curves: dict[str, Curve] = {}
        self._focus: list[str] = []
        self._transform: Callable[[np.ndarray], np.ndarray] | None = None
        self._transform_text = "raw, one value per batch"
        self._follow = True  # fit the axes to the (focused) data until the person pans or zooms
        self._dirty = False
        self.redraw_count = 0

        self.loss_help = help_line(LOSS_HELP.format(how=self._transform_text))
        self.accuracy_help = help_line(ACCURACY_HELP)
        self.loss_view = pg.PlotWidget(background="w")
        self.accuracy_view = pg.PlotWidget(background="w")
        self.loss_plot: pg.PlotItem = self.loss_view.getPlotItem()
        self.accuracy_plot: pg.PlotItem = self.accuracy_view.getPlotItem()
        self.accuracy_plot.setXLink(self.loss_plot)
        for plot, label in ((self.loss_plot, "loss"), (self.accuracy_plot, "test accuracy (%)")):
            plot.showGrid(x=True, y=True, alpha=0.15)
            for side in ("left", "bottom"):
                axis = plot.getAxis(side)
                axis.setPen(pg.mkPen(AXIS_COLOUR))
                axis.setTextPen(pg.mkPen(AXIS_COLOUR))
                axis.enableAutoSIPrefix(False)  # losses below 1 read 0.2, 0.4, not "loss (x0.001)" with 200, 400
            plot.getAxis("left").setWidth(AXIS_WIDTH)
            plot.setLabel("left", label, color=AXIS_COLOUR)
            plot.setMenuEnabled(False)
            plot.hideButtons()  # pyqtgraph's "A" would fit every curve, dimmed ones too
            plot.disableAutoRange()
            plot.getViewBox().sigRangeChangedManually.connect(self._stop_following)
        self.accuracy_plot.setLabel("bottom", "iteration", color=AXIS_COLOUR)
        self.loss_plot.getAxis("bottom").setStyle(showValues=False)  # the accuracy plot below numbers the axis
        tip = "Drag to pan, scroll to zoom, double-click to fit the focused runs again."
        for view, text in ((self.loss_view, self.loss_help.text()), (self.accuracy_view, ACCURACY_HELP)):
            view.setToolTip(f"{text}\n{tip}")
            view.scene().sigMouseClicked.connect(self._on_click)
        self.legend = RunLegend(EMPTY_LEGEND)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.loss_help)
        layout.addWidget(self.loss_view, 3)
        layout.addWidget(self.accuracy_help)
        layout.addWidget(self.accuracy_view, 2)
        layout.addWidget(self.legend)

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(REDRAW_MS)
        self._timer.timeout.connect(self._redraw)

    # ----- curves -----
    def add_overlay(self, key: str, label: str, iterations=(), losses=(), color: str = "#1f77b4",
                    accuracy=None, markers=()) -> None:
        """A run's loss curve (replaces one with the same key); ``accuracy``: (iterations, percent) per epoch;
        ``markers``: (iteration, text) pairs marked by a dashed line unless the curve is dimmed."""
        if key in self._curves:
            self.remove_overlay(key)
        x, y = self._checked(key, iterations, losses)
        item = self.loss_plot.plot()
        item.setDownsampling(auto=True, method="peak")
        item.setClipToView(True)
        acc_item = self.accuracy_plot.plot(symbol="o", symbolSize=6)
        curve = Curve(str(label), str(color), item, acc_item, markers=[(float(i), str(t)) for i, t in markers])
        curve.append(x, y)
        self._curves[key] = curve
        if accuracy is not None:
            self.set_accuracy(key, *accuracy)
        self._restyle()
        self._schedule()

    def append_overlay(self, key: str, losses, iterations=None) -> None:
        """Grow a curve that is still being made; iterations default to the ones after its last."""
        curve = self._curve(key)
        y = series(losses, "losses")
        if iterations is None:
            last = curve.x[curve.n - 1] if curve.n else 0.0
            iterations = np.arange(1, y.size + 1, dtype=np.float64) + last
        curve.append(*self._checked(key, iterations, y))
        self._schedule()

    def update_overlay(self, key: str, iterations, losses) -> None:
        curve = self._curve(key)
        curve.n = 0
        curve.append(*self._checked(key, iterations, losses))
        self._schedule()

    def set_accuracy(self, key: str, iterations, percents) -> None:
        """A run's test accuracy (in %) at the given iterations; non-finite values are left out."""
        x, y = series(iterations, "iterations"), series(percents, "accuracies")
        if x.size != y.size:
            raise ComparePlotError(f"curve {key!r}: {x.size} iterations but {y.size} accuracies")
        keep = np.isfinite(x) & np.isfinite(y)
        self._curve(key).acc = list(zip(x[keep].tolist(), y[keep].tolist()))
        self._curve(key).dirty = True
        self._schedule()

    def append_accuracy(self, key: str, iterations, percents) -> None:
        old = self.accuracy_data(key)
        self.set_accuracy(key, np.r_[old[0], series(iterations, "iterations")],
                          np.r_[old[1], series(percents, "accuracies")])

    def remove_overlay(self, key: str) -> None:
        curve = self._curve(key)
        curve.clear_markers(self.loss_plot)
        self.loss_plot.removeItem(curve.item)
        self.accuracy_plot.removeItem(curve.acc_item)
        del self._curves[key]
        self._focus = [k for k in self._focus if k != key]
        self._restyle()
        self._schedule()

    def set_label(self, key: str, label: str) -> None:
        self._curve(key).label = str(label)
        self._update_legend()

    def overlay_keys(self) -> list[str]:
        return list(self._curves)

    def overlay_data(self, key: str, drawn: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Copies of a curve's points as given, or as last ``drawn`` (after the transform, e.g. smoothing)."""
        c = self._curve(key)
        x, y = c.item.getOriginalDataset() if drawn else (c.x[:c.n], c.y[:c.n])
        return tuple(np.array([] if a is None else a, dtype=np.float64) for a in (x, y))

    def accuracy_data(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """A curve's (iterations, accuracy in %) points."""
        return points(self._curve(key).acc)

    def overlay_capacity(self, key: str) -> int:
        return self._curve(key).x.size

    def markers(self, key: str, shown: bool = False) -> list[tuple[float, str]]:
        """A curve's (iteration, text) markers, or only those drawn now (``shown``: not while it is dimmed)."""
        curve = self._curve(key)
        if shown:
            return [(line.value(), line.label.toPlainText()) for line in curve.marker_items]
        return list(curve.markers)

    def overlay_color(self, key: str) -> str:
        return self._curve(key).color

    def set_overlay_transform(self, transform: Callable[[np.ndarray], np.ndarray] | None,
                              description: str = "raw, one value per batch") -> None:
        """What curves go through when drawn (same length out), and how the help line names it."""
        self._transform = transform
        self._transform_text = description
        self.loss_help.setText(LOSS_HELP.format(how=description))
        for curve in self._curves.values():
            curve.dirty = True
        self._schedule()

    # ----- focus and axes -----
    def set_focus(self, keys) -> None:
        """Draw these curves bold and the others faded, and fit the axes to them; [] shows all alike."""
        self._focus = [k for k in keys if k in self._curves]
        self._follow = True
        self._restyle()
        self._schedule()

    def focus(self) -> list[str]:
        return list(self._focus)

    def fit(self) -> None:
        """Fit the axes to the focused curves (all curves when none is focused) again."""
        self._follow = True
        self._schedule()

    def legend_entries(self) -> list[LegendEntry]:
        return self.legend.entries()

    def _stop_following(self, *_) -> None:
        self._follow = False

    def _on_click(self, event) -> None:
        if event.double():
            self.fit()

    def _state(self, key: str) -> str:
        if not self._focus or len(self._focus) == len(self._curves):  # all focused: none stands out
            return "normal"
        return "focus" if key in self._focus else "dim"

    def _restyle(self) -> None:
        for key, curve in self._curves.items():
            curve.style(self._state(key), self.loss_plot)
        self._update_legend()

    def _update_legend(self) -> None:
        self.legend.set_entries([LegendEntry(c.label, c.color, self._state(k)) for k, c in self._curves.items()])

    # ----- output -----
    def export_png(self, path: str | os.PathLike, keys=None, curves=None, size: QSize = EXPORT_SIZE) -> str:
        """Save a picture of only some curves, fitted to them, with their legend and help lines.

        ``keys``: curves drawn here (all by default); or ``curves``: (key, label, iterations, losses,
        colour, (accuracy iterations, percents)) tuples, drawn whether shown here or not.
        """
        if curves is None:
            keys = self.overlay_keys() if keys is None else [k for k in keys if k in self._curves]
            curves = [(k, c.label, c.x[:c.n], c.y[:c.n], c.color, self.accuracy_data(k), c.markers)
                      for k in keys for c in [self._curves[k]]]
        copy = ComparePlot()
        try:
            copy.set_overlay_transform(self._transform, self._transform_text)
            for key, label, x, y, color, accuracy, markers in curves:
                copy.add_overlay(key, label, x, y, color, accuracy=accuracy, markers=markers)
            copy.setAutoFillBackground(True)  # a picture on white, help lines included
            palette = copy.palette()
            palette.setColor(copy.backgroundRole(), QColor("white"))
            copy.setPalette(palette)
            copy.resize(size)
            copy.setAttribute(Qt.WidgetAttribute.WA_DontShowOnScreen)
            copy.show()
            copy.layout().activate()
            copy.redraw_now()
            path = os.fspath(path)
            if not copy.grab().save(path, "PNG"):
                raise ComparePlotError(f"could not write the plot to {path} (folder missing or not writable?)")
        finally:
            copy.close()
            copy.deleteLater()
        return path

    def redraw_now(self) -> None:
        """Draw everything appended so far at once (instead of on the next timer tick)."""
        self._timer.stop()
        self._dirty = True
        self._redraw()

    def sizeHint(self) -> QSize:
        return QSize(640, 460)

    def minimumSizeHint(self) -> QSize:
        return QSize(260, 260)

    # ----- internals -----
    def _curve(self, key: str) -> Curve:
        try:
            return self._curves[key]
        except KeyError:
            raise ComparePlotError(f"no curve {key!r}; there are: {', '.join(self._curves) or 'none'}") from None

    @staticmethod
    def _checked(key: str, iterations, losses) -> tuple[np.ndarray, np.ndarray]:
        x, y = series(iterations, "iterations"), series(losses, "losses")
        if x.size != y.size:
            raise ComparePlotError(f"curve {key!r}: {x.size} iteration numbers but {y.size} losses")
        if not np.all(np.isfinite(x)):
            raise ComparePlotError(f"curve {key!r}: iteration numbers must be finite")
        y = y.copy()
        y[~np.isfinite(y)] = np.nan  # a diverged loss is a gap, not an axis stretched to infinity
        return x, y

    def _schedule(self) -> None:
        self._dirty = True
        if not self._timer.isActive():
            self._timer.start()

    def _redraw(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        self.redraw_count += 1
        for curve in self._curves.values():
            if curve.dirty:
                y = curve.y[:curve.n]
                shown = y if self._transform is None or curve.n == 0 else self._transform(y)
                curve.item.setData(curve.x[:curve.n], shown)
                curve.acc_item.setData(*points(curve.acc))
                curve.dirty = False
        if self._follow:
            self._fit_ranges()

    def _fit_ranges(self) -> None:
        """x from 0 to the end of the longest focused run; y over what those runs draw in that range."""
        keys = self._focus or list(self._curves)
        x_hi, losses, accs = 1.0, [], []
        for key in keys:
            c = self._curves[key]
            if c.n:
                x_hi = max(x_hi, float(c.x[:c.n].max()))
            if c.acc:
                x_hi = max(x_hi, max(a for a, _ in c.acc))
        for key in keys:
            c = self._curves[key]
            x, y = c.item.getOriginalDataset()
            if x is not None and len(x):
                losses.append(np.asarray(y, float)[np.asarray(x) <= x_hi])
            accs += [b for a, b in c.acc if a <= x_hi]
        self.loss_plot.setXRange(0, x_hi, padding=0.02)  # the accuracy plot is x-linked
        y = np.concatenate(losses) if losses else np.empty(0)
        y = y[np.isfinite(y)]
        lo, hi = (min(0.0, float(y.min())), float(y.max())) if y.size else (0.0, 1.0)
        self.loss_plot.setYRange(lo, hi if hi > lo else lo + 1.0, padding=0.05)
        lo = max(0.0, 10.0 * np.floor(min(accs) / 10.0)) if accs else 0.0
        self.accuracy_plot.setYRange(min(lo, 90.0), 100.0, padding=0.05)
