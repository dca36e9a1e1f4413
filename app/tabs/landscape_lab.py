"""The loss landscape: a surface as a heat map with contour lines, and five optimizers' paths over it.

Click the map to choose a start; SGD, Momentum, AdaGrad, RMSprop and Adam all start there
with a learning rate that suits the surface (times the "learning-rate ×" control), and each
path is drawn in its own colour with its step count and final value in the legend.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

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
from widgets.compact_combo import compact_combo_box
from widgets.lab_controls import LogSlider, fmt, make_plot, value_label
from widgets.surface_3d import Surface3D, opengl_available

OPTIMIZER_TITLES = {name: registry.label(registry.OPTIMIZER_CHOICES, name) for name in LANDSCAPE_OPTIMIZERS}
OPTIMIZER_COLOURS = dict(zip(LANDSCAPE_OPTIMIZERS, ["#D55E00", "#0072B2", "#009E73", "#CC79A7", "#000000"]))
GRID_POINTS = 200
CONTOURS = 12
SCALE_RANGE = (0.05, 20.0)
HEAT_MAP = pg.colormap.get("viridis")


def contour_levels(z: np.ndarray, n: int = CONTOURS) -> np.ndarray:
    """Levels at quantiles of the surface, so steep bowls still get lines near their floor."""
    finite = z[np.isfinite(z)]
    levels = np.quantile(finite, np.linspace(0.02, 0.9, n))
    return np.unique(np.round(levels, 12))


class LandscapeLab(QWidget):
    """Heat map + contours of one surface; the optimizers' paths from a clicked start."""

    pathsChanged = Signal(object)  # dict optimizer name -> engine.labs.landscape.OptimizerPath

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._surface: Surface = get_surface("neuron")
        self._start = np.array(self._surface.start, float)
        self._paths: dict[str, OptimizerPath] = {}
        self._z_min = 0.0  # the surface's lowest value on the grid: the floor of the colour scale
        self._build()
        self.set_surface("neuron")

    # ----- layout -----
    def _build(self) -> None:
        self.surface_box = compact_combo_box()
        for key, surface in SURFACES.items():
            self.surface_box.addItem(surface.title, key)
        self.surface_box.currentIndexChanged.connect(lambda _: self.set_surface(self.surface_box.currentData()))
        self.formula_label = QLabel()
        self.formula_label.setWordWrap(True)

        self.plot = make_plot("", "x", "y")
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.getPlotItem().setAspectLocked(False)
        self.image = pg.ImageItem()
        self.image.setColorMap(HEAT_MAP)
        self.plot.addItem(self.image)
        self.contours: list[pg.IsocurveItem] = []
        self.path_items: dict[str, pg.PlotDataItem] = {}
        self.legend = self.plot.getPlotItem().addLegend(offset=(-10, 10), labelTextColor="#111",
                                                        brush=pg.mkBrush(255, 255, 255, 215), pen=pg.mkPen("#888"))
        for name in LANDSCAPE_OPTIMIZERS:
            item = pg.PlotDataItem(pen=pg.mkPen(OPTIMIZER_COLOURS[name], width=2), symbol="o", symbolSize=4,
                                   symbolBrush=OPTIMIZER_COLOURS[name], symbolPen=None, name=OPTIMIZER_TITLES[name])
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
        self.steps_box.valueChanged.connect(lambda _: self.run())
        self.lr_scale = LogSlider(*SCALE_RANGE, 1.0)
        self.lr_scale.set_marks([("× 0.1", 0.1), ("× 1", 1.0), ("× 10", 10.0)],
                                tooltip="multiply every learning rate by {:g}")
        self.lr_scale.valueChanged.connect(lambda _: self.run())
        self.scale_label = value_label()
        self.run_button = QPushButton("Run again from the start")
        self.run_button.clicked.connect(self.run)
        self.reset_button = QPushButton("Back to the textbook start")
        self.reset_button.clicked.connect(lambda: self.set_start(self._surface.start))
        self.start_label = value_label()
        self.results_label = value_label()
        self.results_label.setWordWrap(True)
        hint = QLabel("Click the map to start all five optimizers from that point. Each uses a learning rate "
                      "that suits this surface; the slider multiplies them all.")
        hint.setWordWrap(True)

        box = QGroupBox("Optimizers")
        form = QFormLayout(box)
        form.addRow("Start", self.start_label)
        form.addRow("Steps (at most)", self.steps_box)
        form.addRow("Learning rate ×", self.scale_label)
        form.addRow(self.lr_scale)
        form.addRow(self.run_button)
        form.addRow(self.reset_button)
        form.addRow(self.results_label)

        left = QVBoxLayout()
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
        holder.setMaximumWidth(400)
        layout = QHBoxLayout(self)
        layout.addWidget(holder)
        self.view3d = Surface3D() if opengl_available() else None  # 2-D map only where OpenGL does not work
        if self.view3d is None:
            layout.addWidget(self.plot, 1)
        else:
            views = QTabWidget()
            views.addTab(self.plot, "Map")
            views.addTab(self.view3d, "3-D")
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
        item = self.plot.getPlotItem()
        item.setLabel("bottom", surface.axis_labels[0], color="#222")
        item.setLabel("left", surface.axis_labels[1], color="#222")
        item.setTitle(surface.formula, color="#222", size="10pt")
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
        """Run all five optimizers from the start (milliseconds: 2-vectors, a few hundred steps)."""
        self._paths = compare_optimizers(self._surface, self._start, self.steps_box.value(), self.lr_scale.value())
        self._draw_paths()
        self.pathsChanged.emit(dict(self._paths))
        return dict(self._paths)

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
        lines = [f"start value {fmt(s.at(self._start), 6)}"]
        for name, path in self._paths.items():
            item = self.path_items[name]
            item.setData(path.points[:, 0], path.points[:, 1])
            note = {"diverged": ", diverged", "flat": ", gradient ≈ 0"}.get(path.status, "")
            caption = f"{OPTIMIZER_TITLES[name]} (η={path.lr:.3g}): {path.steps} steps, f={fmt(path.final_value, 4)}{note}"
            self._legend_label(name).setText(caption, color="#111")
            lines.append(caption)
        self.results_label.setText("\n".join(lines))
        if self.view3d is not None:
            self.view3d.set_paths({name: (p.points, self._colour_scale(p.values), OPTIMIZER_COLOURS[name])
                                   for name, p in self._paths.items()})
        self.start_marker.setData([self._start[0]], [self._start[1]])
        self.start_label.setText(f"({self._start[0]:.3f}, {self._start[1]:.3f})")
        self.scale_label.setText(f"{self.lr_scale.value():g}")
        s = self._surface
        self.plot.setXRange(*s.x_range, padding=0)
        self.plot.setYRange(*s.y_range, padding=0)

    def _legend_label(self, name: str):
        """The legend's text item for one optimizer (relabelled in place rather than rebuilt)."""
        for sample, label in self.legend.items:
            if sample.item is self.path_items[name]:
                return label
        raise LookupError(name)

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
