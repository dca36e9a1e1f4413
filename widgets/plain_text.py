"""Text that came from a file, shown as text: never as HTML, never with control characters, never megabytes long.

Qt guesses whether a label, message box or tooltip holds HTML (``Qt.mightBeRichText``), so a class
name like ``<img src=...>`` in a weight file would be rendered, not shown. Every place the window
shows file-derived text goes through here: ``plain_label`` (a QLabel fixed to plain text),
``plain_tooltip`` (a tooltip that shows its text literally), ``message_box`` (a QMessageBox in plain
text), ``line``/``block`` (shortened, control characters escaped) and ``legend_text`` (for pyqtgraph
legends and titles, which always take HTML).
"""
from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette, Qt as QtGui
from PySide6.QtWidgets import QLabel, QMessageBox, QSizePolicy, QWidget

from engine.util import printable

MAX_LINE = 300  # characters of one line of file-derived text a label, dialog or tooltip shows
MAX_LINES = 40  # lines of one message: a file's 100,000-line note is data, not a message


def line(text, limit: int = MAX_LINE) -> str:
    """One line: shortened, and control characters (newlines too) shown as ``\\x1b``-style escapes."""
    return printable(text, limit)


def block(text, limit: int = MAX_LINE, max_lines: int = MAX_LINES) -> str:
    """Several lines: each one like ``line``; newlines kept, at most ``max_lines`` of them."""
    text = str(text)
    shown: list[str] = []
    start = 0
    while start <= len(text) and len(shown) < max_lines:
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        shown.append(printable(text[start:end], limit))
        start = end + 1
    if start < len(text):
        shown.append(f"…({text.count(chr(10), start) + 1:,} more lines)")
    return "\n".join(shown)


def plain_label(text: str = "", parent: QWidget | None = None, word_wrap: bool = False) -> QLabel:
    """A QLabel that always shows its text literally (``Qt.TextFormat.PlainText``).

    A wrapping label takes the width its layout gives it: a file name with no spaces to break at
    is cut off at the edge instead of widening the window.
    """
    label = QLabel(parent)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setWordWrap(word_wrap)
    if word_wrap:
        label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    label.setText(text)
    return label


def help_line(text: str, parent: QWidget | None = None) -> QLabel:
    """The one-line "how to read it" under a plot or control: small, grey, wrapping, plain text.

    Its text is also its tooltip, so a line cut short by a narrow window can still be read in full.
    """
    label = plain_label(text, parent, word_wrap=True)
    label.setObjectName("helpLine")
    label.setForegroundRole(QPalette.ColorRole.PlaceholderText)  # the theme's muted text colour
    font = label.font()
    font.setPointSizeF(max(7.0, font.pointSizeF() * 0.9))
    label.setFont(font)
    label.setToolTip(plain_tooltip(text))
    return label


def message_box(parent: QWidget | None, icon: QMessageBox.Icon, title: str, text: str,
                buttons=QMessageBox.StandardButton.Ok) -> QMessageBox:
    """A message box showing ``title`` and ``text`` literally (shortened, plain text); call ``exec`` or ``open``."""
    box = QMessageBox(icon, line(title, 120), block(text), buttons, parent)
    box.setTextFormat(Qt.TextFormat.PlainText)
    return box


def plain_tooltip(text) -> str:
    """A tooltip string that Qt shows literally: plain text when Qt would not take it for HTML, else escaped."""
    text = block(text)
    return QtGui.convertFromPlainText(text) if QtGui.mightBeRichText(text) else text


def legend_text(text, limit: int = 80) -> str:
    """For pyqtgraph legends, labels and titles (rendered as HTML): one shortened line, HTML-escaped."""
    return html.escape(line(text, limit), quote=False)


def inf_line_label(text, limit: int = 40) -> str:
    """For a pyqtgraph InfiniteLine's label: shown as plain text, but first used as a ``str.format`` pattern."""
    return line(text, limit).replace("{", "{{").replace("}", "}}")
