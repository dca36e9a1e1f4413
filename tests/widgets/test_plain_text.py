"""Text from files is shown as text: shortened, control characters escaped, never rendered as HTML."""
import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import Qt as QtGui
from PySide6.QtGui import QTextDocument
from PySide6.QtWidgets import QMessageBox

from widgets.confusion_matrix import ConfusionMatrixView
from widgets.loss_plot import LossPlot
from widgets.plain_text import MAX_LINE, MAX_LINES, block, legend_text, line, message_box, plain_label, plain_tooltip
from widgets.probability_bars import ProbabilityBars

HOSTILE = "<b>HTML</b> <img src=x.png> \x1b[31mred\x1b[0m"


def rendered(tooltip: str) -> str:
    """What a person reads in a tooltip: Qt renders it as HTML when it looks like HTML."""
    if not QtGui.mightBeRichText(tooltip):
        return tooltip
    doc = QTextDocument()
    doc.setHtml(tooltip)
    return doc.toPlainText()


def test_one_line_is_short_and_has_no_control_characters():
    assert line(HOSTILE) == "<b>HTML</b> <img src=x.png> \\x1b[31mred\\x1b[0m"
    assert line("a\nb\r\u202e") == "a\\nb\\r\\u202e"
    huge = line("x" * 5_000_000)
    assert len(huge) < MAX_LINE + 40 and huge.endswith("more characters)")


def test_a_block_keeps_its_lines_but_not_megabytes_of_them():
    assert block("first\nsecond \x1b[2J") == "first\nsecond \\x1b[2J"
    many = block("row\n" * 100_000).split("\n")
    assert len(many) == MAX_LINES + 1 and many[-1] == f"…({100_000 - MAX_LINES + 1:,} more lines)"
    assert len(block("y" * 5_000_000)) < MAX_LINE + 40


def test_labels_and_message_boxes_show_html_literally(qtbot):
    label = plain_label(HOSTILE)
    qtbot.addWidget(label)
    assert label.textFormat() == Qt.TextFormat.PlainText and label.text() == HOSTILE
    box = message_box(None, QMessageBox.Icon.Critical, "<i>title</i>", HOSTILE)
    qtbot.addWidget(box)
    assert box.textFormat() == Qt.TextFormat.PlainText
    assert box.text() == line(HOSTILE) and box.windowTitle() == "<i>title</i>"


def test_tooltips_read_literally_whether_or_not_they_look_like_html():
    assert plain_tooltip("/home/me/weights.npz") == "/home/me/weights.npz"
    assert rendered(plain_tooltip("<b>HTML</b> and <img src=x>")) == "<b>HTML</b> and <img src=x>"
    assert rendered(plain_tooltip("two\n<b>lines</b>")) == "two\n<b>lines</b>"


def test_legends_take_escaped_text():
    assert legend_text("<b>run</b> & co") == "&lt;b&gt;run&lt;/b&gt; &amp; co"


def test_widgets_that_show_class_or_run_names_keep_them_literal_and_short(qtbot):
    names = [HOSTILE] + [str(i) for i in range(1, 9)] + ["z" * 100_000]
    bars = ProbabilityBars()
    qtbot.addWidget(bars)
    bars.set_labels(names)
    assert bars.labels()[0] == line(HOSTILE, 40) and len(bars.labels()[-1]) < 80
    matrix = ConfusionMatrixView()
    qtbot.addWidget(matrix)
    matrix.set_matrix(np.eye(10, dtype=np.int64), names)
    assert matrix._labels[0] == line(HOSTILE, 40)
    plot = LossPlot()
    qtbot.addWidget(plot)
    plot.add_marker(3, "<b>lr</b> {value} 0.1 → 0.2")  # pyqtgraph formats a marker's label, then shows it as text
    plot._redraw()
    assert plot._marker_lines[0].label.textItem.toPlainText() == "<b>lr</b> {value} 0.1 → 0.2"


def test_a_help_line_is_muted_plain_wrapping_text_that_is_also_its_own_tooltip(qtbot):
    from widgets.plain_text import help_line

    label = help_line("<b>rows</b> are the true digit")
    qtbot.addWidget(label)
    assert label.textFormat() == Qt.TextFormat.PlainText and label.wordWrap()
    assert label.text() == "<b>rows</b> are the true digit"
    assert "rows" in label.toolTip() and "<b>" not in label.toolTip().replace("&lt;b&gt;", "")
    muted = label.palette().color(label.foregroundRole())
    assert muted != label.palette().color(label.palette().ColorRole.WindowText)
