"""A list of training runs with a checkbox and a colour swatch each: ticked runs are drawn, selected runs focused."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QListWidget, QListWidgetItem, QWidget

KEY_ROLE = Qt.ItemDataRole.UserRole + 1
TOOLTIP = ("Tick a run to draw its curves. Select runs to focus them (Ctrl- or Shift-click for several): "
           "the others are dimmed and the axes fit the selection. Export saves the selected runs.")


class RunList(QListWidget):
    """Rows keyed by a string; ``runToggled(key, checked)`` when a checkbox changes.

    Several rows can be selected at once; ``selectedRunsChanged(keys)`` gives them in list order.
    """

    runToggled = Signal(str, bool)
    currentRunChanged = Signal(str)  # "" when nothing is current
    selectedRunsChanged = Signal(list)  # the selected keys, in list order

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._items: dict[str, QListWidgetItem] = {}
        self._selected: list[str] = []
        self.setToolTip(TOOLTIP)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setWordWrap(True)  # a long name takes two lines: its end ("seed 0 #2") is what tells twins apart
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.itemChanged.connect(self._on_item_changed)
        self.itemSelectionChanged.connect(self._on_selection_changed)
        self.currentItemChanged.connect(
            lambda cur, _prev: self.currentRunChanged.emit(cur.data(KEY_ROLE) if cur is not None else ""))

    def add_run(self, key: str, label: str, color: str | QColor | None = None, checked: bool = True,
                tooltip: str = "") -> None:
        if key in self._items:
            raise ValueError(f"run key {key!r} is already in the list")
        item = QListWidgetItem(label)
        item.setData(KEY_ROLE, key)
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        if color is not None:
            pix = QPixmap(14, 14)
            pix.fill(QColor(color))
            item.setIcon(QIcon(pix))
        if tooltip:
            item.setToolTip(tooltip)
        self.blockSignals(True)
        item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
        self.addItem(item)
        self.blockSignals(False)
        self._items[key] = item

    def remove_run(self, key: str) -> None:
        item = self._items.get(key)
        if item is not None:
            self.takeItem(self.row(item))
            del self._items[key]
            self._on_selection_changed()

    def keys(self) -> list[str]:
        return [self.item(i).data(KEY_ROLE) for i in range(self.count())]

    def checked_keys(self) -> list[str]:
        return [k for k in self.keys() if self._items[k].checkState() == Qt.CheckState.Checked]

    def is_checked(self, key: str) -> bool:
        return self._items[key].checkState() == Qt.CheckState.Checked

    def set_checked(self, key: str, checked: bool) -> None:
        """Emits runToggled like a click would."""
        self._items[key].setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)

    def current_key(self) -> str:
        item = self.currentItem()
        return item.data(KEY_ROLE) if item is not None else ""

    def set_current(self, key: str) -> None:
        """Make ``key`` the current and only selected run (like a click on it)."""
        self.setCurrentItem(self._items[key])

    def selected_keys(self) -> list[str]:
        return [self.item(i).data(KEY_ROLE) for i in range(self.count()) if self.item(i).isSelected()]

    def set_selected(self, keys) -> None:
        """Select exactly ``keys`` (the first becomes current); emits selectedRunsChanged once."""
        keys = [k for k in keys if k in self._items]
        self.blockSignals(True)
        self.clearSelection()
        if keys:
            self.setCurrentItem(self._items[keys[0]])
        for k in keys:
            self._items[k].setSelected(True)
        self.blockSignals(False)
        self._on_selection_changed()
        self.currentRunChanged.emit(self.current_key())

    def label(self, key: str) -> str:
        return self._items[key].text()

    def set_label(self, key: str, label: str, tooltip: str | None = None) -> None:
        item = self._items[key]
        self.blockSignals(True)  # a new text is not a ticked or unticked box
        item.setText(label)
        if tooltip is not None:
            item.setToolTip(tooltip)
        self.blockSignals(False)

    def tooltip(self, key: str) -> str:
        return self._items[key].toolTip()

    def _on_item_changed(self, item: QListWidgetItem) -> None:
        key = item.data(KEY_ROLE)
        if key in self._items:
            self.runToggled.emit(key, item.checkState() == Qt.CheckState.Checked)

    def _on_selection_changed(self) -> None:
        selected = self.selected_keys()
        if selected != self._selected:
            self._selected = selected
            self.selectedRunsChanged.emit(selected)
