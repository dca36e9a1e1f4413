"""Every control and plot explains itself: a tooltip on each, and Help ▸ Guide / About say the rest."""
from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtWidgets import (QAbstractButton, QAbstractSlider, QAbstractSpinBox, QComboBox, QLineEdit, QTabBar,
                               QWidget)

from app.main_window import MainWindow

CONTROLS = (QAbstractButton, QAbstractSlider, QAbstractSpinBox, QComboBox, QLineEdit, pg.GraphicsView)


def _explained(widget: QWidget) -> bool:
    """A tooltip on the control itself, or on the composite it is a part of (a spin box's line edit, …)."""
    while widget is not None:
        if widget.toolTip().strip():
            return True
        if isinstance(widget, (QAbstractSpinBox, QComboBox)) or widget.parent() is None:
            return bool(widget.toolTip().strip())
        widget = widget.parentWidget()
        if isinstance(widget, CONTROLS):
            continue
        return False
    return False


def test_every_control_and_plot_on_every_page_has_a_tooltip(qtbot):
    w = MainWindow(load_dataset_on_start=False)
    qtbot.addWidget(w)
    w.resize(1280, 720)
    w.show()
    qtbot.waitExposed(w)
    silent = set()
    for title in w.page_titles():
        w.show_page(title)
        for widget in w.findChildren(QWidget):
            if not isinstance(widget, CONTROLS) or isinstance(widget, QTabBar) or not widget.isVisible():
                continue
            if type(widget).__name__ in ("QScrollBar", "QToolButton") and widget.parentWidget() is not None \
                    and type(widget.parentWidget()).__name__ in ("QWidget", "QScrollArea", "QTabBar"):
                continue  # a scroll area's own bars and a tab bar's arrows
            if not _explained(widget):
                text = getattr(widget, "text", lambda: "")()
                silent.add(f"{title}: {type(widget).__name__} {text!r} ({widget.objectName() or type(widget.parentWidget()).__name__})")
    assert not silent, "controls without a tooltip:\n" + "\n".join(sorted(silent))
    w.close()
