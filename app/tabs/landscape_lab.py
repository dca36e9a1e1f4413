"""The loss landscape: a surface as a heat map with contour lines, and five optimizers' paths over it.

Click the map to choose a start; SGD, Momentum, AdaGrad, RMSprop and Adam all start there
with a learning rate that suits the surface (times the "learning-rate ×" control), and each
path is drawn in its own colour, cut where it leaves the map; the colour key beside the map gives
each one's learning rate, step count and final value.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.tabs.landscape_text import MAP_HELP, SURFACE_TOOLTIP, VIEW_3D_HELP, surface_description
from app.threads import describe_error
from engine import registry
from engine.labs.landscape import (
    LANDSCAPE_OPTIMIZERS,
    SURFACES,
    LandscapeError,
    OptimizerPath,
    Surface,
    compare_optimizers,
    get_surface,
    surface_grid,
)
from widgets.lab_controls import LogSlider, fmt, make_plot, value_label
from widgets.plain_text import plain_label, plain_tooltip
from widgets.plot_fit import PlotPanel, clip_polyline
from widgets.surface_3d import Surface3D, opengl_available

OPTIMIZER_TITLES = {name: registry.label(registry.OPTIMIZER_CHOICES, name) for name in LANDSCAPE_OPTIMIZERS}
OPTIMIZER_COLOURS = dict(zip(LANDSCAPE_OPTIMIZERS, ["#D55E00", "#0072B2", "#009E73", "#CC79A7", "#000000"]))
GRID_POINTS = 200
DOTTED_STEPS = 300  # paths up to this long get a dot per step
SYNC_STEPS = 200  # up to this many steps all five paths take about 15 ms: computed at once
CONTOURS = 12
SCALE_RANGE = (0.05, 20.0)
HEAT_MAP = pg.colormap.get("viridis")
COLUMN_WIDTH = 340  # px: the controls and the colour key; the map takes the rest


def contour_levels(z: np.ndarray, n: int = CONTOURS) -> np.ndarray:
    """Levels at quantiles of the surface, so steep bowls still get lines near their floor."""
    finite = z[np.isfinite(z)]
    levels = np.quantile(finite, np.linspace(0.02, 0.9, n))
    return np.unique(np.round(levels, 12))


class LandscapeLab(QWidget):
    """Heat map + contours of one surface; the optimizers' paths from a clicked start."""

    pathsChanged = Signal(object)  # dict optimizer name -> engine.labs.landscape.OptimizerPath

    def __init__(self, task_factory: Callable | None = None, parent: QWidget | None = None) -> None:
        """``task_factory(fn, name)`` makes background tasks (see ``app.tabs.gradients_lab``) for long runs;
        without one every run is computed at once."""
        super().__init__(parent)
        self._task_factory = task_factory
        self._task = None  # the background run now computing, if any
        self._pending: tuple | None = None  # the newest request waiting for it: (generation, request)
        self._generation = 0  # bumped by every request; a result for an older one is dropped
        self._task_generation = 0  # the request the running task computes
        self._surface: Surface = get_surface("neuron")
        self._start = np.array(self._surface.start, float)
        self._paths: dict[str, OptimizerPath] = {}
        self._paths_surface: Surface | None = None  # the surface the paths shown were computed on
        self._z_min = 0.0  # the surface's lowest value on the grid: the floor of the colour scale
        self._build()
        self.set_surface("neuron")

    # ----- layout -----
    def _build(self) -> None:
        self.surface_box = QComboBox()  # as wide as its longest title: the titles are short and must show whole
        self.surface_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        for key, surface in SURFACES.items():
            self.surface_box.addItem(surface.title, key)
            self.surface_box.setItemData(self.surface_box.count() - 1, plain_tooltip(surface_description(surface)),
                                         Qt.ItemDataRole.ToolTipRole)
        self.surface_box.currentIndexChanged.connect(lambda _: self.set_surface(self.surface_box.currentData()))
        self.surface_box.setToolTip(SURFACE_TOOLTIP)
        self.formula_label = QLabel()
        self.formula_label.setWordWrap(True)

        self.plot = make_plot("", "x", "y", size_hint=(480, 320), tooltip=(
            "The surface's value as colour (dark: low) with contour lines; each optimizer's path in its colour "
            "from the white star; × marks the minimum. Click the map to start from there."))
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.getPlotItem().setAspectLocked(False)
        self.image = pg.ImageItem()
        self.image.setColorMap(HEAT_MAP)
        self.plot.addItem(self.image)
        self.contours: list[pg.IsocurveItem] = []
        self.path_items: dict[str, pg.PlotDataItem] = {}
        for name in LANDSCAPE_OPTIMIZERS:
            item = pg.PlotDataItem(pen=pg.mkPen(OPTIMIZER_COLOURS[name], width=2), symbol="o", symbolSize=4,
                                   symbolBrush=OPTIMIZER_COLOURS[name], symbolPen=None, connect="finite")
            item.setZValue(10)
            self.plot.addItem(item)
            self.path_items[name] = item
        self.start_marker = pg.ScatterPlotItem(size=14, symbol="star", brush=pg.mkBrush("#FFFFFF"), pen=pg.mkPen("#000"))
        self.start_marker.setZValue(20)
        self.minimum_marker = pg.ScatterPlotItem(size=12, symbol="x", brush=pg.mkBrush("#FFFFFF"), pen=pg.mkPen("#FFF", width=2))
        self.minimum_marker.setZValue(20)
        self.plot.addItem(self.start_marker)
        self.plot.addItem(self.minimum_marker)
        self.plot.scene().sigMouseClicked.connect(self._on_clicked)

        self.steps_box = QSpinBox()
        self.steps_box.setRange(1, 5000)
        self.steps_box.setToolTip("The most steps each optimizer takes (it stops sooner where the gradient vanishes)")
        self.steps_box.valueChanged.connect(lambda _: self.run())
        self.lr_scale = LogSlider(*SCALE_RANGE, 1.0)
        self.lr_scale.set_marks([("× 0.1", 0.1), ("× 1", 1.0), ("× 10", 10.0)],
                                tooltip="multiply every learning rate by {:g}")
        self.lr_scale.slider.setToolTip("Multiply every optimizer's learning rate (log scale): too large and they "
                                        "overshoot or fly off the map")
        self.lr_scale.valueChanged.connect(lambda _: self.run())
        self.scale_label = value_label()
        self.run_button = QPushButton("Run again")
        self.run_button.setToolTip("Run all five optimizers again from the start shown")
        self.run_button.clicked.connect(self.run)
        self.reset_button = QPushButton("Textbook start")
        self.reset_button.setToolTip("Start from this surface's textbook point again")
        self.reset_button.clicked.connect(lambda: self.set_start(self._surface.start))
        self.start_label = value_label()
        self.start_label.setToolTip("Where every path starts (the white star); click the map to move it")
        self.results_label = value_label()
        self.results_label.setWordWrap(True)
        self.results_label.setToolTip("The surface's value where the paths start")
        self.key_labels: dict[str, QLabel] = {}
        key = QGridLayout()
        key.setContentsMargins(0, 0, 0, 0)
        key.setHorizontalSpacing(6)
        for row, name in enumerate(LANDSCAPE_OPTIMIZERS):
            swatch = QLabel("━━")
            swatch.setStyleSheet(f"color: {OPTIMIZER_COLOURS[name]}; font-weight: bold")
            label = plain_label(OPTIMIZER_TITLES[name], word_wrap=True)
            label.setToolTip(f"{OPTIMIZER_TITLES[name]}: its learning rate η, steps taken and the value f where it ended")
            key.addWidget(swatch, row, 0, Qt.AlignmentFlag.AlignTop)
            key.addWidget(label, row, 1)
            self.key_labels[name] = label
        key.setColumnStretch(1, 1)
        hint = QLabel("Click the map to start all five optimizers there. Each uses a learning rate that suits "
                      "this surface; the slider multiplies them all.")
        hint.setWordWrap(True)

        box = QGroupBox("Optimizers")
        form = QFormLayout(box)
        form.addRow("Start", self.start_label)
        form.addRow("Steps (at most)", self.steps_box)
        form.addRow("Learning rate ×", self.scale_label)
        form.addRow(self.lr_scale)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.reset_button)
        form.addRow(buttons)
        form.addRow(self.results_label)
        form.addRow(key)

        left = QVBoxLayout()
        left.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("Surface:"))
        row.addWidget(self.surface_box, 1)
        left.addLayout(row)
        left.addWidget(self.formula_label)
        left.addWidget(hint)
        left.addWidget(box)
        left.addStretch(1)
        holder = QWidget()
        holder.setLayout(left)
        holder.setMinimumWidth(COLUMN_WIDTH - 40)
        holder.setMaximumWidth(COLUMN_WIDTH)
        layout = QHBoxLayout(self)
        layout.addWidget(holder)
        self.view3d = Surface3D() if opengl_available() else None  # 2-D map only where OpenGL does not work
        self.views: QTabWidget | None = None  # the Map and 3-D tabs, where there is a 3-D view
        map_panel = PlotPanel(self.plot, MAP_HELP)
        if self.view3d is None:
            layout.addWidget(map_panel, 1)
        else:
            views = self.views = QTabWidget()
            views.setToolTip("The map from above, or the same surface in 3-D")
            views.addTab(map_panel, "Map")
            views.addTab(PlotPanel(self.view3d, VIEW_3D_HELP), "3-D")
            layout.addWidget(views, 1)

    # ----- public API -----
    @property
    def surface(self) -> Surface:
        return self._surface

    @property
    def paths(self) -> dict[str, OptimizerPath]:
        return dict(self._paths)

    def start(self) -> np.ndarray:
        return self._start.copy()

    def set_surface(self, key: str) -> None:
        surface = get_surface(key)
        self._surface = surface
        index = self.surface_box.findData(key)
        if index != self.surface_box.currentIndex():
            self.surface_box.blockSignals(True)
            self.surface_box.setCurrentIndex(index)
            self.surface_box.blockSignals(False)
        self.formula_label.setText(surface.formula)
        self.surface_box.setToolTip(plain_tooltip(f"{SURFACE_TOOLTIP}.\nNow: {surface_description(surface)}"))
        item = self.plot.getPlotItem()
        item.setLabel("bottom", surface.axis_labels[0], color="#222")
        item.setLabel("left", surface.axis_labels[1], color="#222")
        self.plot.set_title(surface.formula)
        self._draw_surface()
        self.steps_box.blockSignals(True)
        self.steps_box.setValue(surface.steps)
        self.steps_box.blockSignals(False)
        self.lr_scale.blockSignals(True)
        self.lr_scale.setValue(1.0)
        self.lr_scale.blockSignals(False)
        self.set_start(surface.start)

    def set_start(self, point) -> None:
        point = np.asarray(point, float).reshape(-1)
        if point.shape != (2,) or not np.all(np.isfinite(point)):
            raise LandscapeError(f"a start needs two finite numbers, got {point.tolist()}")
        self._start = point
        self.run()

    def set_steps(self, steps: int) -> None:
        self.steps_box.setValue(int(steps))

    def run(self) -> dict[str, OptimizerPath]:
        """Run all five optimizers from the start; the paths shown now (a long run's arrive later).

        Up to ``SYNC_STEPS`` steps take a few milliseconds and are computed at once. Longer runs
        (up to 0.8 s at 5,000 steps) go to a background task, one at a time: while one computes,
        only the newest request waits, and a result for an older request is dropped.
        """
        self._generation += 1
        request = (self._surface, self._start.copy(), self.steps_box.value(), self.lr_scale.value())
        if self._task_factory is None or request[2] <= SYNC_STEPS:
            self._pending = None
            self._show_paths(compare_optimizers(*request))
        else:
            self._pending = (self._generation, request)
            if self._paths and not self._shown_from(request):  # old paths from elsewhere would mislead
                self._paths = {}
                self._draw_paths()
            self.results_label.setText(f"computing {request[2]:,} steps for each optimizer …")
            if self._task is None:
                self._start_pending()
        return dict(self._paths)

    def _shown_from(self, request) -> bool:
        """True when the paths shown start where ``request`` does, on its surface."""
        surface, start = request[0], request[1]
        return surface is self._paths_surface and all(np.array_equal(p.points[0], start) for p in self._paths.values())

    def is_computing(self) -> bool:
        return self._task is not None

    def _show_paths(self, paths: dict[str, OptimizerPath]) -> None:
        self._paths = paths
        self._paths_surface = self._surface
        self._draw_paths()
        self.pathsChanged.emit(dict(self._paths))

    def _start_pending(self) -> None:
        generation, request = self._pending
        self._pending = None

        def work(ctx):
            paths = {}
            for name in LANDSCAPE_OPTIMIZERS:  # one optimizer at a time, so a closing window need not wait long
                if ctx.cancelled.is_set():
                    return None
                paths.update(compare_optimizers(*request, names=(name,)))
            return paths

        task = self._task = self._task_factory(work, "loss landscape paths")
        self._task_generation = generation
        # bound methods, not lambdas: Qt drops them if this page is deleted before the task ends
        task.succeeded.connect(self._on_paths)
        task.failed.connect(self._on_failed)
        task.finished.connect(self._on_task_finished)
        if not task.is_running():
            task.start()
        if not task.is_running():  # cancelled before it could start: the window is closing
            self._task = None

    def _on_paths(self, paths) -> None:
        if paths is not None and self._task_generation == self._generation:  # else a newer request is coming
            self._show_paths(paths)

    def _on_failed(self, exc) -> None:
        self.results_label.setText(f"The paths could not be computed: {describe_error(exc)}")

    def _on_task_finished(self) -> None:
        self._task = None
        if self._pending is not None:
            self._start_pending()

    # ----- drawing -----
    def _draw_surface(self) -> None:
        s = self._surface
        xs, ys, z = surface_grid(s, GRID_POINTS)
        self._z_min = float(np.nanmin(z))
        shown = self._colour_scale(z)
        self.image.setImage(shown, autoLevels=True)
        if self.view3d is not None:
            lo, hi = float(np.nanmin(shown)), float(np.nanmax(shown))
            rgba = HEAT_MAP.map((shown - lo) / (hi - lo if hi > lo else 1.0), mode="float")
            self.view3d.set_surface(xs, ys, shown, rgba.reshape(shown.shape + (4,)))
        x0, x1 = s.x_range
        y0, y1 = s.y_range
        self.image.setRect(QRectF(x0, y0, x1 - x0, y1 - y0))
        # IsocurveItems are children of the image, so they draw in its pixel coordinates; made once, then reused
        levels = contour_levels(shown)
        while len(self.contours) < len(levels):
            curve = pg.IsocurveItem(pen=pg.mkPen(255, 255, 255, 150, width=1))
            curve.setParentItem(self.image)
            self.contours.append(curve)
        for i, curve in enumerate(self.contours):
            if i < len(levels):
                curve.setData(shown, float(levels[i]))
                curve.show()
            else:
                curve.hide()
        self.plot.setXRange(x0, x1, padding=0)
        self.plot.setYRange(y0, y1, padding=0)
        if s.minimum is not None:
            self.minimum_marker.setData([s.minimum[0]], [s.minimum[1]])
        else:
            self.minimum_marker.setData([], [])

    def _colour_scale(self, values: np.ndarray) -> np.ndarray:
        """Loss values on the map's colour scale (the 3-D view uses it for heights too)."""
        shown = np.asarray(values, float) - self._z_min
        # bowls and valleys are flat near their floor: a square-root colour scale shows their shape there
        return np.sqrt(np.maximum(shown, 0)) if self._surface.key in ("neuron", "rosenbrock", "bowl") else shown

    def _draw_paths(self) -> None:
        s = self._surface
        box = (*s.x_range, *s.y_range)
        self.results_label.setText(f"start value {fmt(s.at(self._start), 6)}")
        for name in LANDSCAPE_OPTIMIZERS:
            if name not in self._paths:  # not computed yet
                self.path_items[name].setData([], [])
                self.key_labels[name].setText(OPTIMIZER_TITLES[name])
        for name, path in self._paths.items():
            x, y = clip_polyline(path.points[:, 0], path.points[:, 1], box)  # a run-away path ends at the edge
            # a dot per step shows the step sizes; on a long path they only smear into a line (and cost time)
            self.path_items[name].setData(x, y, symbol="o" if len(x) <= DOTTED_STEPS else None)
            note = {"diverged": ", diverged", "flat": ", gradient ≈ 0"}.get(path.status, "")
            if len(x) < len(path.points) or np.isnan(x).any():
                note += ", left the map"
            self.key_labels[name].setText(
                f"{OPTIMIZER_TITLES[name]} (η={path.lr:.3g}): {path.steps} steps, f={fmt(path.final_value, 4)}{note}")
        if self.view3d is not None:
            self.view3d.set_paths({name: (p.points, self._colour_scale(p.values), OPTIMIZER_COLOURS[name])
                                   for name, p in self._paths.items()})
        self.start_marker.setData([self._start[0]], [self._start[1]])
        self.start_label.setText(f"({self._start[0]:.3f}, {self._start[1]:.3f})")
        self.scale_label.setText(f"{self.lr_scale.value():g}")
        self.plot.setXRange(*s.x_range, padding=0)
        self.plot.setYRange(*s.y_range, padding=0)

    def _on_clicked(self, ev) -> None:
        if ev.button() != Qt.MouseButton.LeftButton:
            return
        vb = self.plot.getPlotItem().vb
        if not vb.sceneBoundingRect().contains(ev.scenePos()):
            return
        p = vb.mapSceneToView(ev.scenePos())
        s = self._surface
        if s.x_range[0] <= p.x() <= s.x_range[1] and s.y_range[0] <= p.y() <= s.y_range[1]:
            self.set_start((p.x(), p.y()))
