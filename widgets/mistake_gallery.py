"""A gallery of test images with what the network answered, e.g. the misclassified ones, most confident first.

Backed by a list model and an icon-mode ``QListView`` that draws only the visible thumbnails,
so tens of thousands of entries scroll smoothly. Each entry reads like the book's check:
"true 3 / [5] 95.6%", with the runner-up classes in its tooltip.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPixmap
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QListView, QVBoxLayout, QWidget

from widgets.plain_text import line, plain_label, plain_tooltip

THUMB = 56  # pixels: 28×28 shown at 2×
SORTS = (("confidence", "Most confident first"), ("index", "Dataset order"))
_CACHE = 512  # thumbnails kept
LABEL_LENGTH = 40  # characters of a class name shown under a thumbnail


class GalleryModel(QAbstractListModel):
    """Entries ``(index, true, pred, top)``; thumbnails are made on demand and cached."""

    IndexRole = Qt.ItemDataRole.UserRole + 1

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._images: np.ndarray | None = None
        self._entries: list = []
        self._labels = [str(i) for i in range(10)]
        self._thumbs: OrderedDict[int, QPixmap] = OrderedDict()

    def set_entries(self, images: np.ndarray | None, entries: list, labels: list[str] | None = None) -> None:
        self.beginResetModel()
        self._images = images
        self._entries = list(entries)
        if labels is not None:
            self._labels = [line(s, LABEL_LENGTH) for s in labels]
        self._thumbs.clear()
        self.endResetModel()

    def entries(self) -> list:
        return list(self._entries)

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._entries)

    def _label(self, c: int) -> str:
        return self._labels[c] if 0 <= c < len(self._labels) else str(c)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or index.row() >= len(self._entries):
            return None
        i, true, pred, top = self._entries[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return f"true {self._label(true)}\n[{self._label(pred)}] {top[0][1] * 100:.2f}%"
        if role == Qt.ItemDataRole.DecorationRole:
            return self._thumbnail(i)
        if role == Qt.ItemDataRole.ToolTipRole:
            lines = [f"test image #{i}: true {self._label(true)}, answered {self._label(pred)}"]
            lines += [f"  {self._label(c)}: {p * 100:.2f}%" for c, p in top]
            lines.append("Click to put it on the drawing canvas.")
            return plain_tooltip("\n".join(lines))
        if role == Qt.ItemDataRole.ForegroundRole:
            return QColor(180, 30, 30) if true != pred else QColor(30, 120, 50)
        if role == self.IndexRole:
            return int(i)
        return None

    def _thumbnail(self, i: int) -> QPixmap | None:
        pix = self._thumbs.get(i)
        if pix is not None:
            self._thumbs.move_to_end(i)
            return pix
        if self._images is None:
            return None
        img = np.asarray(self._images[i], dtype=np.float32).reshape(28, 28)
        grey = np.ascontiguousarray(np.clip(img * 255.0, 0, 255).astype(np.uint8))
        qimg = QImage(grey.data, 28, 28, 28, QImage.Format.Format_Grayscale8).copy()
        pix = QPixmap.fromImage(qimg.scaled(THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio,
                                            Qt.TransformationMode.FastTransformation))
        self._thumbs[i] = pix
        if len(self._thumbs) > _CACHE:
            self._thumbs.popitem(last=False)
        return pix


class MistakeGallery(QWidget):
    """``set_entries(images, entries)``: images (N, 784) of the evaluated set; entries from engine.evaluation."""

    imageActivated = Signal(int)  # index into the evaluated set

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = GalleryModel(self)
        self.view = QListView()
        self.view.setModel(self.model)
        self.view.setViewMode(QListView.ViewMode.IconMode)
        self.view.setIconSize(QSize(THUMB, THUMB))
        self.view.setGridSize(QSize(THUMB + 44, THUMB + 40))
        self.view.setUniformItemSizes(True)
        self.view.setResizeMode(QListView.ResizeMode.Adjust)
        self.view.setMovement(QListView.Movement.Static)
        self.view.setLayoutMode(QListView.LayoutMode.Batched)  # lays out thousands of items in slices
        self.view.setBatchSize(200)
        self.view.setWordWrap(True)
        self.view.setSpacing(2)
        self.view.clicked.connect(self._on_clicked)
        self.title = plain_label(word_wrap=True)  # names classes: text, never HTML
        self.sort_box = QComboBox()
        for key, text in SORTS:
            self.sort_box.addItem(text, key)
        self.sort_box.setToolTip("Most confident first puts the network's surest wrong answers at the top.")
        self.sort_box.currentIndexChanged.connect(self._resort)
        top = QHBoxLayout()
        top.addWidget(self.title, 1)
        top.addWidget(self.sort_box)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.view, 1)
        self._images = None
        self._entries: list = []
        self._labels: list[str] | None = None

    def set_entries(self, images: np.ndarray | None, entries: list, title: str = "",
                    labels: list[str] | None = None) -> None:
        self._images, self._entries, self._labels = images, list(entries), labels
        self.title.setText(title)
        self._resort()

    def set_sort(self, key: str) -> None:
        keys = [k for k, _ in SORTS]
        if key not in keys:
            raise ValueError(f"unknown gallery sort {key!r}; choose one of {', '.join(keys)}")
        self.sort_box.setCurrentIndex(keys.index(key))

    def sort_key(self) -> str:
        return self.sort_box.currentData()

    def entries(self) -> list:
        """Entries in the order shown."""
        return self.model.entries()

    def entry_count(self) -> int:
        return self.model.rowCount()

    def activate_row(self, row: int) -> None:
        self._on_clicked(self.model.index(row, 0))

    def _resort(self) -> None:
        if self.sort_key() == "index":
            ordered = sorted(self._entries, key=lambda e: e[0])
        else:
            ordered = sorted(self._entries, key=lambda e: (-e[3][0][1], e[0]))
        self.model.set_entries(self._images, ordered, self._labels)
        self.view.scrollToTop()

    def _on_clicked(self, index: QModelIndex) -> None:
        if index.isValid():
            self.imageActivated.emit(int(self.model.data(index, GalleryModel.IndexRole)))
