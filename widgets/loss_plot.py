"""The learning curve: loss per batch (raw and smoothed), per-epoch loss and accuracy, epoch lines, markers.

The smoothed curve is a debiased moving average (``widgets.loss_series.DebiasedAverage``): no start-up
lag, and the legend says its window. Markers label a change during the run ("lr 0.001 → 0.05").

Training reports arrive far more often than a screen can usefully redraw, so appends only
write into preallocated NumPy buffers (grown by doubling) and an internal timer redraws
at most every REDRAW_MS milliseconds when something new arrived (or less often: a fast run's page
asks for ``set_redraw_interval``, as each redraw takes the GIL from training, and then the redraws also
keep to 1 % of the time, ``widgets.redraw_budget``). A redraw costs the same
whatever the run's length so far: the loss range is kept up to date as losses arrive, the
per-epoch points are handed to pyqtgraph only when an epoch was added, and a plot on a page
that is not showing waits until it is shown. (Other runs are compared on the Compare page,
``app.tabs.compare_plot``.)
"""
from __future__ import annotations

import math
import os
import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, QSize, Qt, QTimer
from PySide6.QtGui import QColor, QPainter, QPicture
from PySide6.QtWidgets import QGraphicsItem, QVBoxLayout, QWidget

from widgets.loss_series import (DebiasedAverage, LossPlotError, LossRange, as_series, finite_or_nan, grown,
                                 smoothing_window)
from widgets.plain_text import inf_line_label, legend_text
from widgets.redraw_budget import BudgetedGraphicsLayout, RedrawBudget

__all__ = ["LossPlot", "LossPlotError", "REDRAW_MS"]

REDRAW_MS = 50
# ≈5-batch window: debiased, it sits with the raw losses by iteration 40 of a default run (a 20-batch window
# still averaged in the steep first drop there: 0.67 against 0.38)
DEFAULT_SMOOTHING = 0.8
INITIAL_CAPACITY = 4096
LOSS_COLOUR = QColor("#1f77b4")
TRAIN_COLOUR = QColor("#ff7f0e")
TEST_COLOUR = QColor("#2ca02c")
EPOCH_LINE_COLOUR = QColor(120, 120, 120, 110)
MARKER_COLOUR = "#b8860b"  # a change of learning rate
AXIS_TEXT = "92.5"  # as wide as the values the axes usually label: "0.25", "92.5" (wider ones widen them)
AXIS_COLOUR = "#444444"


def axis_text_width(text: str) -> float:
    """The width of a tick label as pyqtgraph's axes measure it (into a QPicture, as they draw)."""
    picture = QPicture()
    painter = QPainter(picture)
    try:
        return painter.boundingRect(QRectF(0, 0, 100, 100), Qt.AlignmentFlag.AlignCenter, text).width()
    finally:
        painter.end()


class LossPlot(QWidget):
    """Loss (top) and accuracy (bottom) against the iteration number, sharing the x axis."""

    def __init__(self, parent: QWidget | None = None, smoothing: float = DEFAULT_SMOOTHING) -> None:
        super().__init__(parent)
        self._n = 0
        self._x, self._raw, self._smooth = (np.empty(INITIAL_CAPACITY) for _ in range(3))
        self._average = DebiasedAverage(0.0)
        self._epochs: list[tuple[int, int, float, float, float, float]] = []
        self._epoch_lines: list[tuple[pg.PlotItem, pg.InfiniteLine]] = []
        self._log = False
        self._x_extent: float | None = None
        self._follow = True  # the plot fits its ranges to the data until the person zooms or pans
        self._fitted: tuple | None = None  # the ranges last fitted (x end, loss low, loss high, accuracy low)
        self._values_shown: tuple | None = None  # (loss low, loss high, accuracy low) last shown, kept over a reset
        self._dirty = False
        self._interval_ms = REDRAW_MS  # the least time between two redraws
        self._last_redraw = -math.inf  # when the curves were last redrawn (time.monotonic)
        self._epochs_drawn = -1  # how many epochs the per-epoch points show (-1: never drawn)
        self._loss_range = LossRange()
        self.redraw_count = 0  # how many times the curves were pushed to pyqtgraph (for tests and profiling)

        self._budget = RedrawBudget()  # what redrawing costs the GUI thread: see set_redraw_interval
        self._view = BudgetedGraphicsLayout(self._budget)
        self._view.setBackground("w")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._view)

        self.loss_plot: pg.PlotItem = self._view.addPlot(row=0, col=0)
        self.accuracy_plot: pg.PlotItem = self._view.addPlot(row=1, col=0)
        self._view.ci.layout.setRowStretchFactor(0, 3)
        self._view.ci.layout.setRowStretchFactor(1, 2)
        self.accuracy_plot.setXLink(self.loss_plot)
        for plot, label in ((self.loss_plot, "loss"), (self.accuracy_plot, "accuracy (%)")):
            plot.showGrid(x=True, y=True, alpha=0.15)
            for side in ("left", "bottom"):
                axis = plot.getAxis(side)
                axis.setPen(pg.mkPen(AXIS_COLOUR))
                axis.setTextPen(pg.mkPen(AXIS_COLOUR))
                axis.enableAutoSIPrefix(False)  # losses below 1 read 0.2, 0.4, not "loss (x0.001)" with 200, 400
                # grid on major ticks only: minor grid lines made each repaint ~4x slower while training
                axis.setStyle(maxTickLevel=0)
                # axis and grid repainted from a pixmap until their ticks change, not replayed with every redraw
                # of the curves under them (a sixth of a redraw's time)
                axis.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
            plot.setLabel("left", label, color=AXIS_COLOUR)
            plot.setMenuEnabled(False)
        self.accuracy_plot.setLabel("bottom", "iteration", color=AXIS_COLOUR)
        self._value_axes = [plot.getAxis("left") for plot in (self.loss_plot, self.accuracy_plot)]
        self._axis_text = axis_text_width(AXIS_TEXT)  # room for tick labels: grows to the widest drawn, never shrinks
        self._fix_axis_width()
        for plot in (self.loss_plot, self.accuracy_plot):
            # ranges are fitted in _redraw: pyqtgraph's auto-range works at paint time and then paints a second time
            plot.disableAutoRange()
            plot.getViewBox().sigRangeChangedManually.connect(self._stop_following)

        legend_style = dict(offset=(-8, 8), brush=pg.mkBrush(255, 255, 255, 210), pen=pg.mkPen(200, 200, 200),
                            labelTextColor=AXIS_COLOUR)
        # one legend, top right of the loss plot (a falling loss leaves that corner empty); its train and test
        # entries name the accuracy curves too (same colours and symbols), so no second legend covers them
        self.loss_plot.addLegend(**legend_style)

        raw_colour = QColor(LOSS_COLOUR)
        raw_colour.setAlpha(70)
        self._raw_curve = self.loss_plot.plot(pen=pg.mkPen(raw_colour, width=1), name="loss per batch")
        self._smooth_curve = self.loss_plot.plot(pen=pg.mkPen(LOSS_COLOUR, width=2.5), name="smoothed")  # + window
        for curve in (self._raw_curve, self._smooth_curve):
            curve.setDownsampling(auto=True, method="peak")
            curve.setClipToView(True)
        self._train_points = self.loss_plot.plot(pen=None, symbol="o", symbolSize=8, symbolPen=pg.mkPen("w"),
                                                 symbolBrush=TRAIN_COLOUR, name="train, per epoch")
        self._test_points = self.loss_plot.plot(pen=None, symbol="s", symbolSize=8, symbolPen=pg.mkPen("w"),
                                                symbolBrush=TEST_COLOUR, name="test, per epoch")
        self._train_acc = self.accuracy_plot.plot(pen=pg.mkPen(TRAIN_COLOUR, width=2), symbol="o", symbolSize=7,
                                                  symbolPen=pg.mkPen("w"), symbolBrush=TRAIN_COLOUR)
        self._test_acc = self.accuracy_plot.plot(pen=pg.mkPen(TEST_COLOUR, width=2), symbol="s", symbolSize=7,
                                                 symbolPen=pg.mkPen("w"), symbolBrush=TEST_COLOUR)

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(REDRAW_MS)
        self._timer.timeout.connect(self._redraw)
        self._markers: list[tuple[int, str]] = []
        self._marker_lines: list[pg.InfiniteLine] = []
        self.set_smoothing(smoothing)
        self.setToolTip("Loss per batch (light), its moving average (bold) and per-epoch loss and accuracy. "
                        "Dashed lines mark the end of each epoch, dotted lines a change of learning rate.")

    def setToolTip(self, text: str) -> None:
        """The tip shows wherever the pointer rests on the plot (the drawing area is a widget of its own)."""
        super().setToolTip(text)
        self._view.setToolTip(text)

    # ----- data in -----
    @property
    def iteration_count(self) -> int:
        """How many per-iteration losses were appended since the last reset."""
        return self._n

    def set_smoothing(self, beta: float) -> None:
        """Weight of the past in the moving average (0 = no smoothing, 0.99 = very smooth); recomputes the curve.

        The average is debiased (``widgets.loss_series.DebiasedAverage``): it follows the losses from the
        first iteration on, with no start-up lag; the legend says its window, about 1 / (1 - beta) batches.
        """
        beta = float(beta)
        if not 0.0 <= beta < 1.0:
            raise LossPlotError(f"smoothing must be in [0, 1), got {beta:g}")
        self._average = DebiasedAverage(beta)
        self._average.extend(self._raw[:self._n], self._smooth[:self._n])
        self._loss_range = LossRange()  # the smoothed values changed: measured again
        for values in (self._raw[:self._n], self._smooth[:self._n], [e[2] for e in self._epochs],
                       [e[4] for e in self._epochs]):
            self._loss_range.include(values)
        self.loss_plot.legend.getLabel(self._smooth_curve).setText(legend_text(self.smoothing_text()))
        if self._n:
            self._schedule()

    def smoothing_text(self) -> str:
        """What the bold curve is, e.g. "smoothed (≈20-batch window)"."""
        if self._average.beta == 0.0:
            return "not smoothed"
        return f"smoothed (≈{smoothing_window(self._average.beta):.0f}-batch window)"

    def append_losses(self, losses: np.ndarray) -> None:
        """Add per-iteration losses; they get the iteration numbers after the last one (1, 2, 3, ...)."""
        values = finite_or_nan(as_series(losses, "losses"))
        k = values.size
        if k == 0:
            return
        start = self._n
        self._x, self._raw, self._smooth = (grown(b, start, start + k) for b in (self._x, self._raw, self._smooth))
        self._x[start:start + k] = np.arange(start + 1, start + k + 1, dtype=np.float64)
        self._raw[start:start + k] = values
        self._average.extend(values, self._smooth[start:start + k])  # a NaN batch loss leaves the average as it was
        self._loss_range.include(values)
        # the smoothed values lie between the losses, yet may be the lowest positive ones (losses of 0 and 1: 0.5)
        self._loss_range.include(self._smooth[start:start + k])
        self._n += k
        self._schedule()

    def add_epoch(self, epoch: int, iteration: int, train_loss, train_acc, test_loss=None, test_acc=None) -> None:
        """A finished epoch: its loss/accuracy points and a dashed line at ``iteration``; test values may be None."""
        def value(v):
            return math.nan if v is None or not math.isfinite(float(v)) else float(v)

        self._epochs.append((int(epoch), int(iteration), value(train_loss), value(train_acc),
                             value(test_loss), value(test_acc)))
        self._loss_range.include(np.array([value(train_loss), value(test_loss)]))
        self._schedule()  # its line is added with the next redraw: adding an item repaints at once

    def epoch_count(self) -> int:
        return len(self._epochs)

    def add_marker(self, iteration: int, text: str) -> None:
        """A dotted vertical line at ``iteration`` labelled ``text`` (e.g. "lr 0.001 → 0.05"); drawn with the next redraw."""
        self._markers.append((int(iteration), str(text)))
        self._schedule()

    def markers(self) -> list[tuple[int, str]]:
        """(iteration, text) of every marker of this run."""
        return list(self._markers)

    def reset(self) -> None:
        """Forget the run (losses, epochs, lines, markers)."""
        self._n = 0
        self._average.reset()
        self._loss_range = LossRange()
        self._epochs.clear()
        self._epochs_drawn = -1
        for plot, line in self._epoch_lines:
            plot.removeItem(line)
        self._epoch_lines.clear()
        self._markers.clear()
        for line in self._marker_lines:
            self.loss_plot.removeItem(line)
        self._marker_lines.clear()
        self._timer.stop()
        self._follow, self._fitted = True, None
        self._x_extent = None
        self._dirty = True
        self._redraw()

    def draw_now(self) -> None:
        """Redraw what is pending and paint it at once, e.g. a new run's empty plot and iteration axis before the
        run starts: its first steps then share the GUI thread with the curves only, not with a whole new axis."""
        self._timer.stop()
        self._redraw()
        if self.isVisible():
            self.repaint()

    def set_redraw_interval(self, ms: int | None = None) -> None:
        """Redraw at most every ``ms`` milliseconds (None: every ``REDRAW_MS``), e.g. less often while training runs
        fast: appends still only fill the buffers, and the next redraw shows all of them. With ``ms`` given, the
        redraws are spaced out further when they would take more than 1 % of the GUI thread's time (see
        ``widgets.redraw_budget``): a plot with many epochs' points and lines redraws less often."""
        self._interval_ms = REDRAW_MS if ms is None else max(REDRAW_MS, int(ms))

    def redraw_interval(self) -> int:
        return self._interval_ms

    def set_x_extent(self, iterations: int | None) -> None:
        """Fix the iteration axis to [0, iterations] for a run of known length (None: follow the data).

        A fixed axis shows how far along the run is, and spares a re-layout of the axes on every redraw.
        """
        self._x_extent = float(iterations) if iterations is not None and iterations > 0 else None
        self._schedule()

    def follow_data(self) -> None:
        """Fit the ranges to the data again (after the person zoomed or panned)."""
        self._follow, self._fitted = True, None
        self._schedule()

    def _stop_following(self, *_) -> None:
        self._follow, self._fitted = False, None

    def set_log_scale(self, on: bool) -> None:
        """Loss on a logarithmic axis (to see progress after the first fast drop)."""
        self._log, self._fitted, self._values_shown = bool(on), None, None
        self.loss_plot.setLogMode(x=False, y=self._log)
        self._schedule()

    def log_scale(self) -> bool:
        return self._log

    # ----- output -----
    def export_png(self, path: str | os.PathLike) -> str:
        """Save what is shown (with all data appended so far) as a PNG file; returns the path."""
        if self._dirty:
            self._timer.stop()
            self._redraw(hidden_too=True)  # even on a page not showing: the picture has all the data
        path = os.fspath(path)
        if not self.grab().save(path, "PNG"):
            raise LossPlotError(f"could not write the plot to {path} (folder missing or not writable?)")
        return path

    def data(self) -> dict[str, np.ndarray]:
        """Copies of the buffers (iterations, raw, smoothed) up to the current count."""
        n = self._n
        return {"iterations": self._x[:n].copy(), "losses": self._raw[:n].copy(), "smoothed": self._smooth[:n].copy()}

    def sizeHint(self) -> QSize:
        return QSize(560, 380)

    def minimumSizeHint(self) -> QSize:
        return QSize(240, 200)

    # ----- internals -----
    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._dirty:
            self._schedule()  # appended while another page showed

    def _schedule(self) -> None:
        self._dirty = True
        if not self._timer.isActive():  # the first change after a redraw: redraw a little later, with what follows
            since = (time.monotonic() - self._last_redraw) * 1000
            least = self._interval_ms if self._interval_ms <= REDRAW_MS else self._budget.interval_ms(self._interval_ms)
            self._timer.start(int(max(REDRAW_MS, least - since)))

    def _redraw(self, hidden_too: bool = False) -> None:
        if not self._dirty:
            return
        if not hidden_too and not self.isVisible() and self.window().isVisible():
            return  # another page of the window shows: stay dirty, drawn by showEvent
        self._dirty = False
        self._last_redraw = time.monotonic()
        self.redraw_count += 1
        self._budget.redraw_begins()
        with self._budget.measure():
            self._draw()

    def _draw(self) -> None:
        """Hand what is new to pyqtgraph (which paints it with the window's next update)."""
        n = self._n
        self._raw_curve.setData(self._x[:n], self._raw[:n])
        self._smooth_curve.setData(self._x[:n], self._smooth[:n])
        for _, iteration, *_ in self._epochs[len(self._epoch_lines) // 2:]:
            for plot in (self.loss_plot, self.accuracy_plot):
                line = pg.InfiniteLine(pos=float(iteration), angle=90, movable=False,
                                       pen=pg.mkPen(EPOCH_LINE_COLOUR, width=1, style=pg.QtCore.Qt.PenStyle.DashLine))
                plot.addItem(line, ignoreBounds=True)
                self._epoch_lines.append((plot, line))
        for iteration, text in self._markers[len(self._marker_lines):]:
            marker = pg.InfiniteLine(pos=float(iteration), angle=90, movable=False, label=inf_line_label(text),
                                     pen=pg.mkPen(MARKER_COLOUR, width=1.5, style=pg.QtCore.Qt.PenStyle.DotLine),
                                     labelOpts={"position": 0.92, "color": MARKER_COLOUR, "anchors": [(0, 0), (0, 0)]})
            self.loss_plot.addItem(marker, ignoreBounds=True)
            self._marker_lines.append(marker)
        if len(self._epochs) != self._epochs_drawn:  # points are costly to set: only when an epoch was added
            self._epochs_drawn = len(self._epochs)
            e = np.array(self._epochs, dtype=np.float64).reshape(-1, 6)
            for item, column, scale in ((self._train_points, 2, 1.0), (self._test_points, 4, 1.0),
                                        (self._train_acc, 3, 100.0), (self._test_acc, 5, 100.0)):
                known = np.isfinite(e[:, column])  # missing values (no test set, NaN loss) are left out, not drawn
                item.setData(e[known, 1], e[known, column] * scale)
        if self._follow:
            self._fit_ranges()
        self._fix_axis_width()

    def _fix_axis_width(self) -> None:
        """Both value axes one fixed width, so the two plots line up and a label of another length ("0.5" after
        "0.25") never re-lays the plot out (a re-layout repaints all of it: the costliest redraw while training).
        A label wider than that room (drawn once already) widens both, never narrows them."""
        self._axis_text = max([self._axis_text] + [float(axis.textWidth) for axis in self._value_axes])
        label = max(axis.label.boundingRect().height() for axis in self._value_axes)
        width = int(math.ceil(self._axis_text + self._value_axes[0].style["tickTextOffset"][0] + 0.8 * label))
        if self._value_axes[0].fixedWidth != width:
            for axis in self._value_axes:
                axis.setWidth(width)

    def _fit_ranges(self) -> None:
        """Ranges that show all data: losses from 0 (or their log range), accuracy around its values."""
        x_hi = float(self._n)
        e = np.array(self._epochs, dtype=np.float64).reshape(-1, 6)
        if len(e):
            x_hi = max(x_hi, float(e[:, 1].max()))
        # with no values yet, the value axes keep what they showed (a new run's first losses and accuracies are
        # much like the last run's: its first redraw then changes no axis labels, a re-layout and repaint of all)
        lo, hi, acc_lo = self._values_shown or ((-2.0, 1.0, 0.0) if self._log else (0.0, 1.0, 0.0))
        r = self._loss_range
        if self._log and r.has_positive:
            lo, hi = math.log10(r.positive_low), math.log10(r.high)
        elif not self._log and r.has_values:
            lo, hi = min(0.0, r.low), r.high
        acc = np.concatenate([e[:, 3], e[:, 5]]) * 100.0
        acc = acc[np.isfinite(acc)]
        if acc.size:
            # from the lowest value rounded down to a multiple of 10, up to 100: a range that rarely changes,
            # because every change re-lays the axis out and costs a repaint
            acc_lo = min(max(0.0, 10.0 * np.floor(float(acc.min()) / 10.0)), 90.0)
        self._values_shown = (lo, hi, acc_lo)
        ranges = (self._x_extent or max(x_hi, 1.0), lo, hi if hi > lo else lo + 1.0, acc_lo)
        if ranges == self._fitted:
            return  # pyqtgraph would go through all its items for the same ranges again
        self._fitted = ranges
        self.loss_plot.setXRange(0, ranges[0], padding=0.02)  # accuracy is x-linked
        self.loss_plot.setYRange(ranges[1], ranges[2], padding=0.05)
        self.accuracy_plot.setYRange(ranges[3], 100.0, padding=0.05)
