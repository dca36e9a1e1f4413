"""A surface z = f(x, y) in 3-D with coloured paths on it (pyqtgraph.opengl): the loss landscape lab's 3-D view.

Use it only where OpenGL really works: ``opengl_available()`` needs PyOpenGL (the ``3d`` extra)
and a GL context the platform can make; elsewhere (e.g. offscreen, or a remote session without
GL) a page should keep to a 2-D view.
"""
from __future__ import annotations

import math

import numpy as np
from PySide6.QtGui import QColor, QGuiApplication, QMatrix4x4, QOffscreenSurface, QOpenGLContext, QVector3D
from PySide6.QtWidgets import QVBoxLayout, QWidget

NO_GL_PLATFORMS = ("offscreen", "minimal", "vnc")  # Qt platforms without QOpenGLWidget support
SPAN = 10.0  # the (x, y) box is drawn 10 × 10 units wide
HEIGHT = 4.0  # and the surface 4 units high
PATH_LIFT = 0.05  # paths are drawn this far above the surface, so it does not hide them
PATH_TOP = HEIGHT * 1.1 + PATH_LIFT  # and never higher than this
FIT_GRID = 25  # points along each side of the grid the camera keeps in view
FILL = 0.92  # of the view's half-width and half-height the box may take: a margin all round
ELEVATION, AZIMUTH = 32, -60  # degrees: the camera's first angle, looking along the valley


def opengl_available() -> bool:
    """True when pyqtgraph.opengl imports and a GL context can be made current here."""
    if QGuiApplication.instance() is None or QGuiApplication.platformName() in NO_GL_PLATFORMS:
        return False
    try:
        import pyqtgraph.opengl  # noqa: F401  (needs PyOpenGL)
    except Exception:  # ImportError, or PyOpenGL failing to find a GL library
        return False
    context = QOpenGLContext()
    if not context.create():
        return False
    surface = QOffscreenSurface()
    surface.create()
    ok = surface.isValid() and context.makeCurrent(surface)
    if ok:
        context.doneCurrent()
    return ok


class Surface3D(QWidget):
    """A surface z = f(x, y) given as a grid of display heights, and coloured paths drawn just above it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        import pyqtgraph.opengl as gl

        self._gl = gl
        self.view = gl.GLViewWidget()
        self.view.setBackgroundColor("w")
        self.view.setCameraPosition(pos=QVector3D(0, 0, HEIGHT / 2), distance=17, elevation=ELEVATION, azimuth=AZIMUTH)
        self.surface_item: gl.GLSurfacePlotItem | None = None
        self.path_items: dict = {}
        self._xs = self._ys = self._heights = None
        half = SPAN / 2
        self._fit_points = np.array([(x, y, z) for x in (-half, half) for y in (-half, half) for z in (0.0, PATH_TOP)])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view)
        self.setToolTip("Drag to turn the surface, scroll to zoom")
        self.fit_camera()

    def resizeEvent(self, ev) -> None:
        super().resizeEvent(ev)
        self.fit_camera()  # a wide, low view shows less height: the camera steps back until the surface fits

    def fit_points(self) -> np.ndarray:
        """(n, 3) points the camera keeps in view: a grid over the surface drawn (its edges included), else the box."""
        return self._fit_points

    def fit_camera(self) -> None:
        """Aim the camera at the middle of the surface and set its distance so the surface fills ``FILL`` of the view.

        pyqtgraph's field of view is horizontal (60°); the vertical one shrinks with the view's height
        over its width. A point at (a, b, c) in the camera's turned frame is on screen when
        |a| ≤ tan(h/2)·(d − c) and |b| ≤ tan(v/2)·(d − c), so the distance d is the largest of those
        bounds. Between fits the aim moves to the middle of the picture, so the margins come out even.
        """
        opts = self.view.opts
        width, height = max(1, self.view.width()), max(1, self.view.height())
        tan_h = math.tan(math.radians(opts["fov"]) / 2)
        tan_v = tan_h * height / width
        centre = np.array([opts["center"].x(), opts["center"].y(), opts["center"].z()])
        for _ in range(4):
            turn = QMatrix4x4()  # pyqtgraph's viewMatrix without its final step back by the distance
            turn.rotate(opts["elevation"] - 90, 1, 0, 0)
            turn.rotate(opts["azimuth"] + 90, 0, 0, -1)
            rotation = np.array(turn.data(), float).reshape(4, 4).T[:3, :3]  # Qt keeps matrices column by column
            p = (self._fit_points - centre) @ rotation.T
            a, b, c = p[:, 0], p[:, 1], p[:, 2]
            distance = float(np.max(np.maximum(c + np.abs(a) / (tan_h * FILL), c + np.abs(b) / (tan_v * FILL))))
            depth = distance - c
            x, y = a / (depth * tan_h), b / (depth * tan_v)  # where each point lands, −1…1 across the view
            mid_x, mid_y = (x.max() + x.min()) / 2, (y.max() + y.min()) / 2
            if max(abs(mid_x), abs(mid_y)) < 0.01:
                break
            # the camera's right and up directions are the rotation's first two rows
            centre = centre + distance * (mid_x * tan_h * rotation[0] + mid_y * tan_v * rotation[1])
        self.view.setCameraPosition(pos=QVector3D(*centre), distance=distance)

    def _to_box(self, x, y):
        x0, x1 = self._xs[0], self._xs[-1]
        y0, y1 = self._ys[0], self._ys[-1]
        return (np.asarray(x) - x0) / (x1 - x0) * SPAN - SPAN / 2, (np.asarray(y) - y0) / (y1 - y0) * SPAN - SPAN / 2

    def set_surface(self, xs: np.ndarray, ys: np.ndarray, shown: np.ndarray, rgba: np.ndarray) -> None:
        """``shown[i, j]`` is the height at (xs[i], ys[j]) on the colour scale of the map; ``rgba`` its colours."""
        self._xs, self._ys = np.asarray(xs, float), np.asarray(ys, float)
        lo, hi = float(np.nanmin(shown)), float(np.nanmax(shown))
        self._lo, self._scale = lo, HEIGHT / (hi - lo) if hi > lo else 0.0
        heights = (np.nan_to_num(np.asarray(shown, float), nan=lo) - lo) * self._scale
        bx, by = self._to_box(self._xs, self._ys)
        if self.surface_item is not None:
            self.view.removeItem(self.surface_item)
        self.surface_item = self._gl.GLSurfacePlotItem(x=bx, y=by, z=heights, colors=rgba, computeNormals=False)
        self.view.addItem(self.surface_item)
        rows = np.unique(np.linspace(0, len(bx) - 1, FIT_GRID).astype(int))
        cols = np.unique(np.linspace(0, len(by) - 1, FIT_GRID).astype(int))
        X, Y = np.meshgrid(bx[rows], by[cols], indexing="ij")
        top = heights[np.ix_(rows, cols)] + PATH_LIFT  # the paths run just above the surface
        self._fit_points = np.column_stack([X.ravel(), Y.ravel(), top.ravel()])
        self.fit_camera()

    def set_paths(self, paths: dict) -> None:
        """name -> (points (n, 2) in surface coordinates, their heights on the map's scale, colour)."""
        for item in self.path_items.values():
            self.view.removeItem(item)
        self.path_items.clear()
        if self._xs is None:
            return
        for name, (points, shown, colour) in paths.items():
            bx, by = self._to_box(points[:, 0], points[:, 1])
            z = np.clip((np.asarray(shown, float) - self._lo) * self._scale, 0, HEIGHT * 1.1) + PATH_LIFT
            half = SPAN / 2
            on_map = np.isfinite(bx) & np.isfinite(by) & np.isfinite(z) & (np.abs(bx) <= half) & (np.abs(by) <= half)
            steps = np.flatnonzero(on_map[:-1] & on_map[1:])  # the steps that start and end over the surface
            if len(steps) == 0:
                continue
            pos = np.column_stack([bx, by, z])
            c = QColor(colour)
            item = self._gl.GLLinePlotItem(pos=pos[np.column_stack([steps, steps + 1]).ravel()], mode="lines",
                                           width=3, antialias=True, color=(c.redF(), c.greenF(), c.blueF(), 1.0))
            self.view.addItem(item)
            self.path_items[name] = item
