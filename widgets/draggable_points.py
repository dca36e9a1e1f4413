"""A pyqtgraph scatter whose points can be dragged with the left mouse button."""
from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal


class DraggablePoints(pg.ScatterPlotItem):
    """Scatter points that can be dragged; emits the index and new position (in data coordinates).

    Only the signals report a drag: the points themselves stay put until the owner calls
    ``setData`` (so it can check the new position first, or redraw while dragging).
    """

    pointMoved = Signal(int, float, float)  # while dragging
    pointDropped = Signal(int, float, float)  # at the end of a drag

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self._dragged: int | None = None

    def index_at(self, pos: QPointF) -> int | None:
        """The index of the point under ``pos`` (item coordinates), or None."""
        hits = self.pointsAt(pos)
        if len(hits) == 0:
            return None
        return int(hits[0].index())

    def mouseDragEvent(self, ev) -> None:
        if ev.button() != Qt.MouseButton.LeftButton:
            ev.ignore()
            return
        if ev.isStart():
            self._dragged = self.index_at(ev.buttonDownPos())
            if self._dragged is None:
                ev.ignore()
                return
        if self._dragged is None:
            ev.ignore()
            return
        ev.accept()
        pos = ev.pos()
        if ev.isFinish():
            index, self._dragged = self._dragged, None
            self.pointDropped.emit(index, pos.x(), pos.y())
        else:
            self.pointMoved.emit(self._dragged, pos.x(), pos.y())
