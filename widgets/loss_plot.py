"""The learning curve: loss per batch (raw and smoothed), per-epoch loss and accuracy, epoch lines.

Training reports arrive far more often than a screen can usefully redraw, so appends only
write into preallocated NumPy buffers (grown by doubling) and an internal timer redraws
at most every REDRAW_MS milliseconds when something new arrived. Overlays (other runs, live race
curves) work the same way: ``append_overlay`` writes into their own growing buffers, and an
optional transform (e.g. smoothing) is applied to them only when they are redrawn.
"""
from __future__ import annotations

import math
import os
from typing import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSize, QTimer
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QVBoxLayout, QWidget

from widgets.plain_text import legend_text

REDRAW_MS = 50
INITIAL_CAPACITY = 4096
LOSS_COLOUR = QColor("#1f77b4")
TRAIN_COLOUR = QColor("#ff7f0e")
TEST_COLOUR = QColor("#2ca02c")
OVERLAY_COLOURS = ["#9467bd", "#d62728", "#8c564b", "#e377c2", "#17becf", "#7f7f7f"]
EPOCH_LINE_COLOUR = QColor(120, 120, 120, 110)
AXIS_COLOUR = "#444444"


class LossPlotError(ValueError):
    """Bad data or an unknown overlay given to the loss plot."""


def _as_series(values, what: str) -> np.ndarray:
    try:
        return np.atleast_1d(np.asarray(values, dtype=np.float64)).reshape(-1)
    except (TypeError, ValueError):
        raise LossPlotError(f"LossPlot: {what} must be numbers, got {type(values).__name__}") from None


def _finite_or_nan(arr: np.ndarray) -> np.ndarray:
    # infinities would stretch the axes to nothing; NaN shows as a gap in the curve
    out = np.array(arr, dtype=np.float64, copy=True)
    out[~np.isfinite(out)] = np.nan
    return out


def _grown(buffer: np.ndarray, n: int, needed: int) -> np.ndarray:
    """``buffer`` if it holds ``needed`` values, else a copy of its first ``n`` in one at least twice as big."""
    if needed <= buffer.size:
        return buffer
    out = np.empty(max(buffer.size * 2, needed), dtype=np.float64)
    out[:n] = buffer[:n]
    return out


class _Overlay:
    """One comparison curve: its points in buffers grown by doubling, drawn (transformed) at redraw time."""

    def __init__(self, item: pg.PlotDataItem, x: np.ndarray, y: np.ndarray) -> None:
        self.item = item
        self.n = 0
        self.x, self.y = np.empty(0), np.empty(0)
        self.append(x, y)

    def append(self, x: np.ndarray, y: np.ndarray) -> None:
        n, k = self.n, x.size
        self.x, self.y = _grown(self.x, n, n + k), _grown(self.y, n, n + k)
        self.x[n:n + k] = x
        self.y[n:n + k] = y
        self.n = n + k
        self.dirty = True

    def draw(self, transform) -> None:
        y = self.y[:self.n]
        self.item.setData(self.x[:self.n], y if transform is None or self.n == 0 else transform(y))
        self.dirty = False


class LossPlot(QWidget):
    """Loss (top) and accuracy (bottom) against the iteration number, sharing the x axis."""

    def __init__(self, parent: QWidget | None = None, smoothing: float = 0.95) -> None:
        super().__init__(parent)
        self._n = 0
        self._x, self._raw, self._smooth = (np.empty(INITIAL_CAPACITY) for _ in range(3))
        self._ema: float | None = None
        self._beta = 0.0
        self.set_smoothing(smoothing)
        self._epochs: list[tuple[int, int, float, float, float, float]] = []
        self._epoch_lines: list[tuple[pg.PlotItem, pg.InfiniteLine]] = []
        self._log = False
        self._overlays: dict[str, _Overlay] = {}
        self._overlay_transform: Callable[[np.ndarray], np.ndarray] | None = None
        self._x_extent: float | None = None
        self._follow = True  # the plot fits its ranges to the data until the person zooms or pans
        self._dirty = False
        self.redraw_count = 0  # how many times the curves were pushed to pyqtgraph (for tests and profiling)

        self._view = pg.GraphicsLayoutWidget()
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
                # grid on major ticks only: minor grid lines made each repaint ~4x slower while training
                axis.setStyle(maxTickLevel=0)
            plot.setLabel("left", label, color=AXIS_COLOUR)
            plot.setMenuEnabled(False)
        self.accuracy_plot.setLabel("bottom", "iteration", color=AXIS_COLOUR)
        for plot in (self.loss_plot, self.accuracy_plot):
            # ranges are fitted in _redraw: pyqtgraph's auto-range works at paint time and then paints a second time
            plot.disableAutoRange()
            plot.getViewBox().sigRangeChangedManually.connect(self._stop_following)

        legend_style = dict(offset=(-8, 8), brush=pg.mkBrush(255, 255, 255, 210), pen=pg.mkPen(200, 200, 200),
                            labelTextColor=AXIS_COLOUR)
        self.loss_plot.addLegend(**legend_style)
        self.accuracy_plot.addLegend(**{**legend_style, "offset": (-8, -8)})  # bottom right: accuracy rises there

        raw_colour = QColor(LOSS_COLOUR)
        raw_colour.setAlpha(70)
        self._raw_curve = self.loss_plot.plot(pen=pg.mkPen(raw_colour, width=1), name="loss per batch")
        self._smooth_curve = self.loss_plot.plot(pen=pg.mkPen(LOSS_COLOUR, width=2.5), name="smoothed")
        for curve in (self._raw_curve, self._smooth_curve):
            curve.setDownsampling(auto=True, method="peak")
            curve.setClipToView(True)
        self._train_points = self.loss_plot.plot(pen=None, symbol="o", symbolSize=8, symbolPen=pg.mkPen("w"),
                                                 symbolBrush=TRAIN_COLOUR, name="train loss (epoch)")
        self._test_points = self.loss_plot.plot(pen=None, symbol="s", symbolSize=8, symbolPen=pg.mkPen("w"),
                                                symbolBrush=TEST_COLOUR, name="test loss (epoch)")
        self._train_acc = self.accuracy_plot.plot(pen=pg.mkPen(TRAIN_COLOUR, width=2), symbol="o", symbolSize=7,
                                                  symbolPen=pg.mkPen("w"), symbolBrush=TRAIN_COLOUR, name="train")
        self._test_acc = self.accuracy_plot.plot(pen=pg.mkPen(TEST_COLOUR, width=2), symbol="s", symbolSize=7,
                                                 symbolPen=pg.mkPen("w"), symbolBrush=TEST_COLOUR, name="test")

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(REDRAW_MS)
        self._timer.timeout.connect(self._redraw)
        self.setToolTip("Loss per batch (light), its moving average (bold) and per-epoch loss and accuracy. "
                        "Dashed lines mark the end of each epoch.")

    # ----- data in -----
    @property
    def iteration_count(self) -> int:
        """How many per-iteration losses were appended since the last reset."""
        return self._n

    def set_smoothing(self, beta: float) -> None:
        """Weight of the past in the moving average (0 = no smoothing, 0.99 = very smooth)."""
        beta = float(beta)
        if not 0.0 <= beta < 1.0:
            raise LossPlotError(f"smoothing must be in [0, 1), got {beta:g}")
        self._beta = beta

    def append_losses(self, losses: np.ndarray) -> None:
        """Add per-iteration losses; they get the iteration numbers after the last one (1, 2, 3, ...)."""
        values = _finite_or_nan(_as_series(losses, "losses"))
        k = values.size
        if k == 0:
            return
        start = self._n
        self._x, self._raw, self._smooth = (_grown(b, start, start + k) for b in (self._x, self._raw, self._smooth))
        self._x[start:start + k] = np.arange(start + 1, start + k + 1, dtype=np.float64)
        self._raw[start:start + k] = values
        beta, ema = self._beta, self._ema
        smooth = self._smooth
        for i, v in enumerate(values.tolist()):
            if not math.isnan(v):  # a NaN batch loss leaves the average where it was
                ema = v if ema is None else beta * ema + (1.0 - beta) * v
            smooth[start + i] = math.nan if ema is None else ema
        self._ema = ema
        self._n += k
        self._schedule()

    def add_epoch(self, epoch: int, iteration: int, train_loss, train_acc, test_loss=None, test_acc=None) -> None:
        """A finished epoch: its loss/accuracy points and a dashed line at ``iteration``; test values may be None."""
        def value(v):
            return math.nan if v is None or not math.isfinite(float(v)) else float(v)

        self._epochs.append((int(epoch), int(iteration), value(train_loss), value(train_acc),
                             value(test_loss), value(test_acc)))
        self._schedule()  # its line is added with the next redraw: adding an item repaints at once

    def epoch_count(self) -> int:
        return len(self._epochs)

    def reset(self) -> None:
        """Forget the run (losses, epochs, lines); overlays stay until removed."""
        self._n = 0
        self._ema = None
        self._epochs.clear()
        for plot, line in self._epoch_lines:
            plot.removeItem(line)
        self._epoch_lines.clear()
        self._timer.stop()
        self._follow = True
        self._x_extent = None
        self._dirty = True
        self._redraw()

    def set_x_extent(self, iterations: int | None) -> None:
        """Fix the iteration axis to [0, iterations] for a run of known length (None: follow the data).

        A fixed axis shows how far along the run is, and spares a re-layout of the axes on every redraw.
        """
        self._x_extent = float(iterations) if iterations is not None and iterations > 0 else None
        self._schedule()

    def follow_data(self) -> None:
        """Fit the ranges to the data again (after the person zoomed or panned)."""
        self._follow = True
        self._schedule()

    def _stop_following(self, *_) -> None:
        self._follow = False

    def set_log_scale(self, on: bool) -> None:
        """Loss on a logarithmic axis (to see progress after the first fast drop)."""
        self._log = bool(on)
        self.loss_plot.setLogMode(x=False, y=self._log)
        self._schedule()

    def log_scale(self) -> bool:
        return self._log

    # ----- overlays: other runs to compare against -----
    def add_overlay(self, key: str, label: str, iterations=(), losses=(), color=None) -> None:
        """Another loss curve (e.g. an earlier run) drawn dashed on the loss plot; replaces one with the same key."""
        if key in self._overlays:
            self.remove_overlay(key)
        x, y = self._overlay_data(key, iterations, losses)
        color = color or OVERLAY_COLOURS[len(self._overlays) % len(OVERLAY_COLOURS)]
        pen = pg.mkPen(color, width=1.8, style=pg.QtCore.Qt.PenStyle.DashLine)
        item = self.loss_plot.plot(pen=pen, name=legend_text(label))  # the legend takes HTML: a run's name is text
        item.setDownsampling(auto=True, method="peak")
        item.setClipToView(True)
        self._overlays[key] = _Overlay(item, x, y)
        self._schedule()

    def append_overlay(self, key: str, losses, iterations=None) -> None:
        """Grow an overlay (a curve that is still being made); iterations default to the ones after its last."""
        overlay = self._overlay(key)
        y = _as_series(losses, "losses")
        if iterations is None:
            last = overlay.x[overlay.n - 1] if overlay.n else 0.0
            iterations = np.arange(1, y.size + 1, dtype=np.float64) + last
        overlay.append(*self._overlay_data(key, iterations, y))
        self._schedule()

    def update_overlay(self, key: str, iterations, losses) -> None:
        """Replace an overlay's points."""
        overlay = self._overlay(key)
        overlay.n = 0
        overlay.append(*self._overlay_data(key, iterations, losses))
        self._schedule()

    def remove_overlay(self, key: str) -> None:
        overlay = self._overlay(key)
        self.loss_plot.removeItem(overlay.item)  # also removes its legend entry
        del self._overlays[key]
        self._schedule()

    def overlay_keys(self) -> list[str]:
        return list(self._overlays)

    def overlay_data(self, key: str, drawn: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Copies of an overlay's points as given, or as last ``drawn`` (after the overlay transform)."""
        o = self._overlay(key)
        x, y = o.item.getOriginalDataset() if drawn else (o.x[:o.n], o.y[:o.n])
        return tuple(np.array([] if a is None else a, dtype=np.float64) for a in (x, y))

    def overlay_capacity(self, key: str) -> int:
        """How many points the overlay's buffers hold before they must grow (they double)."""
        return self._overlay(key).x.size

    def set_overlay_transform(self, transform: Callable[[np.ndarray], np.ndarray] | None) -> None:
        """A function overlays go through when drawn (e.g. smoothing; same length out); None: as given."""
        self._overlay_transform = transform
        for overlay in self._overlays.values():
            overlay.dirty = True
        self._schedule()

    def _overlay(self, key: str) -> "_Overlay":
        try:
            return self._overlays[key]
        except KeyError:
            raise LossPlotError(f"no overlay {key!r}; there are: {', '.join(self._overlays) or 'none'}") from None

    @staticmethod
    def _overlay_data(key: str, iterations, losses) -> tuple[np.ndarray, np.ndarray]:
        x = _as_series(iterations, "iterations")
        y = _finite_or_nan(_as_series(losses, "losses"))
        if x.size != y.size:
            raise LossPlotError(f"overlay {key!r}: {x.size} iteration numbers but {y.size} losses")
        if not np.all(np.isfinite(x)):
            raise LossPlotError(f"overlay {key!r}: iteration numbers must be finite")
        return x, y

    # ----- output -----
    def export_png(self, path: str | os.PathLike) -> str:
        """Save what is shown (with all data appended so far) as a PNG file; returns the path."""
        if self._dirty:
            self._timer.stop()
            self._redraw()
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
    def _schedule(self) -> None:
        self._dirty = True
        if not self._timer.isActive():
            self._timer.start()

    def _redraw(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        self.redraw_count += 1
        n = self._n
        self._raw_curve.setData(self._x[:n], self._raw[:n])
        self._smooth_curve.setData(self._x[:n], self._smooth[:n])
        for _, iteration, *_ in self._epochs[len(self._epoch_lines) // 2:]:
            for plot in (self.loss_plot, self.accuracy_plot):
                line = pg.InfiniteLine(pos=float(iteration), angle=90, movable=False,
                                       pen=pg.mkPen(EPOCH_LINE_COLOUR, width=1, style=pg.QtCore.Qt.PenStyle.DashLine))
                plot.addItem(line, ignoreBounds=True)
                self._epoch_lines.append((plot, line))
        if self._epochs:
            e = np.array(self._epochs, dtype=np.float64)
            for item, column, scale in ((self._train_points, 2, 1.0), (self._test_points, 4, 1.0),
                                        (self._train_acc, 3, 100.0), (self._test_acc, 5, 100.0)):
                known = np.isfinite(e[:, column])  # missing values (no test set, NaN loss) are left out, not drawn
                item.setData(e[known, 1], e[known, column] * scale)
        else:
            for item in (self._train_points, self._test_points, self._train_acc, self._test_acc):
                item.setData([], [])
        for overlay in self._overlays.values():
            if overlay.dirty:
                overlay.draw(self._overlay_transform)
        if self._follow:
            self._fit_ranges()

    def _fit_ranges(self) -> None:
        """Ranges that show all data: losses from 0 (or their log range), accuracy around its values."""
        n = self._n
        losses = [self._raw[:n], self._smooth[:n]]
        x_hi = float(n)
        e = np.array(self._epochs, dtype=np.float64).reshape(-1, 6)
        losses += [e[:, 2], e[:, 4]]
        if len(e):
            x_hi = max(x_hi, float(e[:, 1].max()))
        for overlay in self._overlays.values():
            ox, oy = overlay.item.getOriginalDataset()
            if ox is not None and len(ox):
                x_hi = max(x_hi, float(np.nanmax(ox)))
                losses.append(np.asarray(oy, float))
        self.loss_plot.setXRange(0, self._x_extent or max(x_hi, 1.0), padding=0.02)  # accuracy is x-linked
        y = np.concatenate(losses)
        y = y[np.isfinite(y)]
        if self._log:
            y = np.log10(y[y > 0])
            lo, hi = (float(y.min()), float(y.max())) if y.size else (-2.0, 1.0)
        else:
            lo, hi = (min(0.0, float(y.min())), float(y.max())) if y.size else (0.0, 1.0)
        self.loss_plot.setYRange(lo, hi if hi > lo else lo + 1.0, padding=0.05)
        acc = np.concatenate([e[:, 3], e[:, 5]]) * 100.0
        acc = acc[np.isfinite(acc)]
        # from the lowest value rounded down to a multiple of 10, up to 100: a range that rarely changes,
        # because every change re-lays the axis out and costs a repaint
        lo = max(0.0, 10.0 * np.floor(float(acc.min()) / 10.0)) if acc.size else 0.0
        self.accuracy_plot.setYRange(min(lo, 90.0), 100.0, padding=0.05)
