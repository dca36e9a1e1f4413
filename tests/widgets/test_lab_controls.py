"""The labs' reusable pieces: the log slider keeps exact values, fmt picks a readable notation,
the plot is white and labelled and fits its slot, lines are cut to a box, and dragging a point
reports where it went (without moving it)."""
import math

import pytest

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPointF, QSize, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from widgets.draggable_points import DraggablePoints
from widgets.lab_controls import PALETTE, LogSlider, fmt, make_plot, value_label
from widgets.plot_fit import MIN_SIZE, FitPlot, PlotPanel, PlotRow, clip_polyline


# ----- fmt -----
@pytest.mark.parametrize("value, digits, text", [
    (1.35000079, 8, "1.35000079"),
    (2.5, 8, "2.50000000"),
    (0.0, 8, "0.00000000"),
    (-0.25, 2, "-0.25"),
    (1234567.0, 8, "1.2346e+06"),  # a diverging loss: scientific, at most 4 decimals
    (-3e12, 2, "-3.00e+12"),
    (1e-9, 8, "1.0000e-09"),  # too small for 8 fixed decimals
    (1e-8, 8, "0.00000001"),  # just representable
])
def test_fmt_fixed_for_ordinary_numbers_scientific_for_huge_or_tiny(value, digits, text):
    assert fmt(value, digits) == text


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_fmt_non_finite(value):
    assert fmt(value) == str(value)


# ----- LogSlider -----
@pytest.fixture
def slider(qtbot):
    s = LogSlider(1e-4, 0.05, 0.0229)
    qtbot.addWidget(s)
    return s


def test_log_slider_keeps_the_exact_value_and_places_the_handle_on_a_log_scale(slider):
    assert slider.value() == 0.0229  # not rounded to the nearest of 1000 ticks
    frac = (math.log(0.0229) - math.log(1e-4)) / (math.log(0.05) - math.log(1e-4))
    assert slider.slider.value() == round(frac * LogSlider.TICKS)
    slider.setValue(1.0)  # outside the range: kept, the handle sits at the end
    assert slider.value() == 1.0 and slider.slider.value() == LogSlider.TICKS


def test_log_slider_dragging_gives_three_significant_digits(qtbot, slider):
    with qtbot.waitSignal(slider.valueChanged, timeout=1000) as blocker:
        slider.slider.setValue(0)
    assert blocker.args == [pytest.approx(1e-4)]
    slider.slider.setValue(500)  # halfway on the log scale: the geometric mean
    assert slider.value() == float(f"{math.sqrt(1e-4 * 0.05):.3g}") == 0.00224
    slider.slider.setValue(LogSlider.TICKS)
    assert slider.value() == 0.05


def test_log_slider_set_value_signals_only_changes_and_rejects_bad_values(qtbot, slider):
    seen = []
    slider.valueChanged.connect(seen.append)
    slider.setValue(0.0229)  # unchanged: no signal
    slider.setValue(0.001)
    assert seen == [0.001]
    for bad in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="positive number"):
            slider.setValue(bad)
    assert slider.value() == 0.001 and seen == [0.001]
    with pytest.raises(ValueError, match="0 < low < high"):
        LogSlider(0.1, 0.01, 0.05)


def test_log_slider_mark_buttons_set_their_value_and_can_be_replaced(qtbot, slider):
    slider.set_marks([("small", 0.001), ("good", 0.0229)], tooltip="set the learning rate to {:g}")
    small, good = slider.mark_buttons
    assert (small.text(), small.toolTip()) == ("small", "set the learning rate to 0.001")
    with qtbot.waitSignal(slider.valueChanged, timeout=1000) as blocker:
        qtbot.mouseClick(small, Qt.MouseButton.LeftButton)
    assert blocker.args == [0.001] and slider.value() == 0.001
    slider.set_marks([("× 10", 10.0)])
    (ten,) = slider.mark_buttons
    assert ten.toolTip() == "set to 10"
    qtbot.mouseClick(ten, Qt.MouseButton.LeftButton)
    assert slider.value() == 10.0


# ----- plot, labels, palette -----
def test_make_plot_and_value_label(qtbot):
    plot = make_plot("Loss per step", "step", "E")
    qtbot.addWidget(plot)
    item = plot.getPlotItem()
    assert item.titleLabel.text == "Loss per step"
    assert item.getAxis("bottom").labelText == "step" and item.getAxis("left").labelText == "E"
    assert not item.getAxis("left").autoSIPrefix  # "(x1e+12)" beside a label is easy to miss
    assert plot.backgroundBrush().color().name() == "#ffffff"
    label = value_label("1.35000079")
    qtbot.addWidget(label)
    assert label.text() == "1.35000079" and label.textInteractionFlags() & Qt.TextInteractionFlag.TextSelectableByMouse
    assert len(set(PALETTE)) == len(PALETTE) == 8


def test_replaced_mark_buttons_leave_sight_at_once(qtbot, slider):
    slider.set_marks([("a", 1.0), ("b", 2.0)])
    old = slider.mark_buttons
    slider.show()
    slider.set_marks([("c", 3.0)])
    assert not any(button.isVisible() for button in old)  # deleted later, but never drawn over the new ones


# ----- plots that fit their slot -----
def test_a_long_title_is_shortened_to_the_plot_and_kept_whole_in_the_tooltip(show):
    title = "Loss over the slope w₁ (w₀ held at its current value)"
    plot = show(FitPlot(title, "w₁", "E", tooltip="what the plot shows"), 220, 180)
    shown = plot.shown_title()
    assert shown.endswith("…") and len(shown) < len(title) and plot.title() == title
    assert plot.toolTip() == f"{title}\nwhat the plot shows"
    assert plot.getPlotItem().geometry().width() <= plot.viewport().width() + 1  # drawn inside its slot
    plot.resize(700, 300)
    qtbot_wait(plot)
    assert plot.shown_title() == title


def qtbot_wait(widget):
    for _ in range(3):
        QApplication.processEvents()


def test_a_fit_plot_asks_the_layout_for_a_modest_size():
    plot = FitPlot(size_hint=(300, 200))
    assert plot.sizeHint() == QSize(300, 200) and plot.minimumSizeHint() == QSize(*MIN_SIZE)
    plot.deleteLater()


def test_fit_view_shows_all_the_data_and_a_single_value(show):
    plot = show(FitPlot("data"), 400, 300)
    plot.plot([0.0, 10.0], [5.0, -3.0])
    plot.addItem(pg.ScatterPlotItem(x=[4.0], y=[20.0], size=12))
    plot.fit_view(y_include=[0.0])
    (x0, x1), (y0, y1) = plot.getPlotItem().vb.viewRange()
    assert x0 < 0 and x1 > 10 and y0 < -3 and y1 > 20
    lone = show(FitPlot("one value"), 400, 300)
    lone.plot([2.0, 2.0], [1.0, 1.0])
    lone.fit_view()
    (x0, x1), (y0, y1) = lone.getPlotItem().vb.viewRange()
    assert x0 < 2 < x1 and y0 < 1 < y1


def test_a_plot_panel_puts_a_help_line_under_its_plot(qtbot):
    plot = FitPlot("p")
    panel = PlotPanel(plot, "how to read it")
    qtbot.addWidget(panel)
    assert panel.plot is plot and plot.parentWidget() is panel and panel.help_label.text() == "how to read it"
    assert panel.help_label.textFormat() == Qt.TextFormat.PlainText


def test_a_plot_row_stacks_its_plots_when_the_room_is_not_wide(show):
    row = show(PlotRow([FitPlot("a"), FitPlot("b")], ratio=1.6), 1000, 400)
    assert row.is_row()
    row.resize(700, 600)
    qtbot_wait(row)
    assert not row.is_row()


# ----- clip_polyline -----
BOX = (0.0, 10.0, 0.0, 5.0)


def test_a_polyline_inside_the_box_comes_back_unchanged():
    xs, ys = np.array([1.0, 2.0, 9.0]), np.array([1.0, 4.0, 0.0])
    x, y = clip_polyline(xs, ys, BOX)
    np.testing.assert_array_equal(x, xs)
    np.testing.assert_array_equal(y, ys)


def test_a_line_is_cut_where_it_crosses_the_edge():
    x, y = clip_polyline([-10.0, 20.0], [2.5 - 10.0, 2.5 + 20.0], BOX)  # y = x + 2.5
    np.testing.assert_allclose(x, [0.0, 2.5])
    np.testing.assert_allclose(y, [2.5, 5.0])


def test_a_path_that_leaves_and_comes_back_is_drawn_in_pieces():
    x, y = clip_polyline([1.0, 3.0, 3.0, 5.0, 7.0], [1.0, 1.0, 9.0, 9.0, 1.0], BOX)
    pieces = np.split(np.column_stack([x, y]), np.flatnonzero(np.isnan(x)))
    pieces = [p[~np.isnan(p[:, 0])] for p in pieces]
    assert len(pieces) == 2
    np.testing.assert_allclose(pieces[0], [[1, 1], [3, 1], [3, 5]])
    np.testing.assert_allclose(pieces[1], [[6, 5], [7, 1]])


def test_a_path_wholly_outside_or_not_finite_draws_nothing_outside():
    x, y = clip_polyline([20.0, 30.0], [20.0, 30.0], BOX)
    assert len(x) == len(y) == 0
    x, y = clip_polyline([1.0, np.inf, 2.0, 3.0], [1.0, 1.0, 1.0, 1.0], BOX)
    finite = np.isfinite(x)
    assert finite.sum() == 2 and np.all((x[finite] >= 0) & (x[finite] <= 10))


# ----- DraggablePoints -----
@pytest.fixture
def dragged_plot(qtbot):
    plot = pg.PlotWidget(background="w")
    qtbot.addWidget(plot)
    plot.setMouseEnabled(x=False, y=False)
    plot.resize(400, 300)
    points = DraggablePoints(size=14)
    points.setData([1.0, 3.0], [1.0, 3.0])
    plot.addItem(points)
    plot.setXRange(0, 4, padding=0)
    plot.setYRange(0, 4, padding=0)
    plot.show()
    qtbot.waitExposed(plot)
    return plot, points


def drag(plot, start, end, steps=10):
    """Press at data point ``start``, move in steps to ``end`` and release: real mouse events, sent directly
    (QTest would warn that pyqtgraph leaves the press unaccepted, which is how its scene makes drags)."""
    vb = plot.getPlotItem().vb
    viewport = plot.viewport()

    def send(kind, x, y, buttons):
        local = QPointF(plot.mapFromScene(vb.mapViewToScene(QPointF(x, y))))
        button = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseMove else Qt.MouseButton.LeftButton
        event = QMouseEvent(kind, local, QPointF(viewport.mapToGlobal(local)), button, buttons,
                            Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(viewport, event)

    held, free = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    send(QEvent.Type.MouseButtonPress, *start, held)
    for i in range(1, steps + 1):
        f = i / steps
        send(QEvent.Type.MouseMove, start[0] + f * (end[0] - start[0]), start[1] + f * (end[1] - start[1]), held)
    send(QEvent.Type.MouseButtonRelease, *end, free)


def test_dragging_a_point_reports_its_index_and_where_it_was_dropped(dragged_plot):
    plot, points = dragged_plot
    moved, dropped = [], []
    points.pointMoved.connect(lambda *args: moved.append(args))
    points.pointDropped.connect(lambda *args: dropped.append(args))
    assert points.index_at(QPointF(3.0, 3.0)) == 1 and points.index_at(QPointF(2.0, 2.0)) is None
    drag(plot, (3.0, 3.0), (2.0, 1.5))
    assert moved and all(index == 1 for index, _, _ in moved)
    assert len(dropped) == 1
    index, x, y = dropped[0]
    assert index == 1 and x == pytest.approx(2.0, abs=0.05) and y == pytest.approx(1.5, abs=0.05)
    x, y = points.getData()
    assert list(x) == [1.0, 3.0] and list(y) == [1.0, 3.0]  # the owner decides whether the point moves


def test_dragging_empty_space_reports_nothing(dragged_plot):
    plot, points = dragged_plot
    events = []
    points.pointMoved.connect(lambda *args: events.append(args))
    points.pointDropped.connect(lambda *args: events.append(args))
    drag(plot, (2.0, 2.0), (0.5, 3.5))
    assert events == []
