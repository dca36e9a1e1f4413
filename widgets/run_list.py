"""A list of training runs with a checkbox and a colour swatch each; checked runs are the ones plotted."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QWidget

KEY_ROLE = Qt.ItemDataRole.UserRole + 1


class RunList(QListWidget):
    """Rows keyed by a string; ``runToggled(key, checked)`` when a checkbox changes."""

    runToggled = Signal(str, bool)
    currentRunChanged = Signal(str)  # "" when nothing is selected

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._items: dict[str, QListWidgetItem] = {}
        self.setToolTip("Tick a run to overlay its loss curve; select one to export or remove it.")
        self.itemChanged.connect(self._on_item_changed)
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
        item = self._items.pop(key, None)
        if item is not None:
            self.takeItem(self.row(item))

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
        self.setCurrentItem(self._items[key])

    def label(self, key: str) -> str:
        return self._items[key].text()

    def _on_item_changed(self, item: QListWidgetItem) -> None:
        key = item.data(KEY_ROLE)
        if key in self._items:
            self.runToggled.emit(key, item.checkState() == Qt.CheckState.Checked)
