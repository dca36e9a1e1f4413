"""A surface z = f(x, y) in 3-D with coloured paths on it (pyqtgraph.opengl): the loss landscape lab's 3-D view.

Use it only where OpenGL really works: ``opengl_available()`` needs PyOpenGL (the ``3d`` extra)
and a GL context the platform can make; elsewhere (e.g. offscreen, or a remote session without
GL) a page should keep to a 2-D view.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtGui import QColor, QGuiApplication, QOffscreenSurface, QOpenGLContext, QVector3D
from PySide6.QtWidgets import QVBoxLayout, QWidget

NO_GL_PLATFORMS = ("offscreen", "minimal", "vnc")  # Qt platforms without QOpenGLWidget support
SPAN = 10.0  # the (x, y) box is drawn 10 × 10 units wide
HEIGHT = 4.0  # and the surface 4 units high


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
        self.view.setCameraPosition(pos=QVector3D(0, 0, HEIGHT / 2), distance=17, elevation=32, azimuth=-60)
        self.surface_item: gl.GLSurfacePlotItem | None = None
        self.path_items: dict = {}
        self._xs = self._ys = self._heights = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view)
        self.setToolTip("Drag to turn the surface, scroll to zoom")

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

    def set_paths(self, paths: dict) -> None:
        """name -> (points (n, 2) in surface coordinates, their heights on the map's scale, colour)."""
        for item in self.path_items.values():
            self.view.removeItem(item)
        self.path_items.clear()
        if self._xs is None:
            return
        for name, (points, shown, colour) in paths.items():
            bx, by = self._to_box(points[:, 0], points[:, 1])
            z = np.clip((np.asarray(shown, float) - self._lo) * self._scale, 0, HEIGHT * 1.1) + 0.05
            keep = np.isfinite(bx) & np.isfinite(by) & np.isfinite(z) & (np.abs(bx) <= SPAN) & (np.abs(by) <= SPAN)
            if keep.sum() < 2:
                continue
            c = QColor(colour)
            item = self._gl.GLLinePlotItem(pos=np.column_stack([bx, by, z])[keep], width=3, antialias=True,
                                           color=(c.redF(), c.greenF(), c.blueF(), 1.0))
            self.view.addItem(item)
            self.path_items[name] = item
