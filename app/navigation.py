"""The window's pages: a tab bar of five that fits the smallest window, the labs behind their own tabs.

``Pages`` is the top-level ``QTabWidget`` (Train, Evaluate, Compare, Models, Labs). A page added to a
group (the labs) goes into that group's own tab bar on one top-level tab. Every page is found by its
title, wherever it sits (``page``, ``titles``, ``show``), and ``pageChanged`` says which one is in front.
"""
from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFrame, QMenu, QScrollArea, QTabWidget, QWidget

TRAIN, EVALUATE, COMPARE, MODELS, LABS = "Train", "Evaluate", "Compare", "Models", "Labs"
LABS_TIP = "Small experiments from the book: loss functions, gradient descent, gradients, the loss landscape"
PAGE_TIPS = {
    TRAIN: "Train a network and watch it learn: the loss, the accuracy and what the first layer looks for",
    EVALUATE: "How the network does on the test set: which digits it confuses, and its worst mistakes",
    COMPARE: "Race optimizers or learning rates side by side, and compare saved runs",
    MODELS: "Open several weight files and see how each reads your drawing",
    "Loss functions": "Cross-entropy and squared error for a prediction you choose or draw",
    "Gradient descent": "Fit a line by gradient descent and see why the learning rate matters",
    "Gradients": "Check backprop's gradients against numerical differentiation",
    "Loss landscape": "Optimizers (SGD, Momentum, AdaGrad, Adam) finding the minimum of a 2-D function",
}


class Pages(QTabWidget):
    pageChanged = Signal(str)  # the title of the page now in front (a lab's own title for a lab)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setUsesScrollButtons(False)  # every page's name stays in sight: five fit the smallest window
        self.labs: QTabWidget | None = None  # the Labs page's own tab bar, made with the first lab
        self.currentChanged.connect(self._changed)

    def add(self, widget: QWidget, title: str, group: str | None = None, scroll: bool = True) -> int:
        """Add a page, inside a scroll area unless ``scroll`` is false (a page wider than the window scrolls
        instead of widening it); with ``group``, on that group's own tab bar."""
        if scroll:
            area = QScrollArea()
            area.setWidgetResizable(True)
            area.setFrameShape(QFrame.NoFrame)
            area.setWidget(widget)
            widget = area
        if group is None:
            index = self.addTab(widget, title)
            self.setTabToolTip(index, PAGE_TIPS.get(title, ""))
            return index
        if self.labs is None:
            self.labs = QTabWidget()
            self.labs.setDocumentMode(True)
            self.labs.setUsesScrollButtons(False)
            self.labs.currentChanged.connect(self._changed)
            self.addTab(self.labs, group)
            self.setTabToolTip(self.indexOf(self.labs), LABS_TIP)
        index = self.labs.addTab(widget, title)
        self.labs.setTabToolTip(index, PAGE_TIPS.get(title, ""))
        return index

    def entries(self) -> list[tuple[str, QWidget, QTabWidget]]:
        """(title, tab, its tab bar) for every page, the labs' own pages in place of the Labs page."""
        found = []
        for i in range(self.count()):
            tab = self.widget(i)
            if tab is self.labs:
                found += [(tab.tabText(j), tab.widget(j), tab) for j in range(tab.count())]
            else:
                found.append((self.tabText(i), tab, self))
        return found

    def page(self, title: str) -> QWidget | None:
        """The page shown under ``title`` (without its scroll area), or None."""
        for name, tab, _bar in self.entries():
            if name == title:
                return tab.widget() if isinstance(tab, QScrollArea) else tab
        return None

    def titles(self) -> list[str]:
        return [name for name, _tab, _bar in self.entries()]

    def show(self, title: str) -> None:
        """Bring a page (a lab too) to the front; an unknown title is a programming error (KeyError)."""
        for name, tab, bar in self.entries():
            if name == title:
                bar.setCurrentWidget(tab)
                if bar is self.labs:
                    self.setCurrentWidget(self.labs)
                self._changed()
                return
        raise KeyError(title)

    def current_title(self) -> str:
        if self.labs is not None and self.currentWidget() is self.labs:
            return self.labs.tabText(self.labs.currentIndex())
        return self.tabText(self.currentIndex())

    def fill_menu(self, menu: QMenu) -> None:
        """One entry per page, the labs as "Labs ▸ …" (rebuilt when the menu opens: pages may come later)."""
        menu.clear()
        for name, _tab, bar in self.entries():
            action = menu.addAction(name if bar is self else f"{self.tabText(self.indexOf(bar))} ▸ {name}")
            action.setStatusTip(PAGE_TIPS.get(name, ""))
            action.triggered.connect(lambda _checked=False, name=name: self.show(name))

    def add_shortcuts(self, window: QWidget) -> None:
        """Ctrl+1… for the top-level pages, on ``window`` so they work with every menu shut."""
        for i in range(self.count()):
            action = QAction(window)
            action.setShortcut(QKeySequence(f"Ctrl+{i + 1}"))
            action.triggered.connect(lambda _checked=False, i=i: self.setCurrentIndex(i))
            window.addAction(action)

    def _changed(self, _index: int = -1) -> None:
        self.pageChanged.emit(self.current_title())


__all__ = ["COMPARE", "EVALUATE", "LABS", "MODELS", "PAGE_TIPS", "Pages", "TRAIN"]
