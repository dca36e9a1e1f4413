"""A combo box whose width does not follow its longest item, so long item texts never widen a window."""
from __future__ import annotations

from PySide6.QtWidgets import QComboBox


def compact_combo_box(min_chars: int = 14) -> QComboBox:
    combo = QComboBox()
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(min_chars)
    return combo
