"""The learning-curve plot: buffered appends, timer-driven redraws, epochs, smoothing, markers."""
import time

import numpy as np
import pytest

from PIL import Image
from PySide6.QtWidgets import QStackedWidget, QWidget

from widgets.loss_plot import REDRAW_MS, LossPlot, LossPlotError


@pytest.fixture
def plot(qtbot):
    widget = LossPlot()
    qtbot.addWidget(widget)
    widget.resize(600, 400)  # not shown: the offscreen platform warns when a top-level window with a layout is shown
    return widget


def curve_data(plot):
    x, y = plot._smooth_curve.getOriginalDataset()
    return x, y


def test_100k_losses_in_chunks_redraws_bounded_by_the_timer(qtbot, plot):
    rng = np.random.default_rng(0)
    losses = 2.3 * np.exp(-np.arange(100_000) / 20_000) + 0.1 * rng.random(100_000)
    start = time.perf_counter()
    for chunk in np.split(losses, 10_000):  # 10 losses per report, as the trainer sends them
        plot.append_losses(chunk)
    elapsed = time.perf_counter() - start
    assert plot.iteration_count == 100_000
    # no event loop ran, so nothing was drawn yet: the appends themselves never redraw
    assert plot.redraw_count == 0
    assert elapsed < 5.0
    qtbot.waitUntil(lambda: plot.redraw_count >= 1, timeout=2000)
    x, y = curve_data(plot)
    assert len(x) == 100_000 and x[0] == 1 and x[-1] == 100_000
    assert plot.data()["smoothed"][-1] < 0.5  # the moving average follows the decay
    # with the event loop running, redraws are limited to one per REDRAW_MS however many appends arrive
    before = plot.redraw_count
    start = time.perf_counter()
    while time.perf_counter() - start < 0.5:
        plot.append_losses(np.full(10, 0.2))
        qtbot.wait(1)
    redraws = plot.redraw_count - before
    assert 1 <= redraws <= 0.5 / (REDRAW_MS / 1000) + 3
    assert plot.iteration_count > 100_000


def test_buffer_grows_and_iterations_continue(qtbot, plot):
    plot.append_losses(np.ones(3))
    plot.append_losses(np.array([0.5]))
    plot.append_losses(2.0)  # a single value works too
    plot.append_losses(np.full(10_000, 0.25))  # more than the initial capacity at once
    data = plot.data()
    np.testing.assert_array_equal(data["iterations"][:6], [1, 2, 3, 4, 5, 6])
    np.testing.assert_array_equal(data["losses"][:5], [1, 1, 1, 0.5, 2.0])
    assert plot.iteration_count == 10_005


def test_nan_and_inf_do_not_crash(qtbot, plot):
    plot.append_losses(np.array([2.0, np.nan, 1.0, np.inf, -np.inf, 0.5]))
    plot.add_epoch(1, 6, np.nan, 0.5, None, None)
    plot.set_log_scale(True)
    plot.append_losses(np.array([0.0, 0.3]))  # log of zero
    qtbot.waitUntil(lambda: plot.redraw_count >= 1, timeout=2000)
    data = plot.data()
    assert np.isnan(data["losses"][[1, 3, 4]]).all()
    assert np.isfinite(data["smoothed"]).all()  # NaN losses leave the average unchanged
    assert plot.log_scale()
    plot.grab()


def test_epochs_add_lines_and_points(qtbot, plot):
    plot.append_losses(np.linspace(2, 0.5, 600))
    plot.add_epoch(1, 300, 0.9, 0.80, 0.95, 0.78)
    plot.add_epoch(2, 600, 0.5, 0.90, None, None)
    assert plot.epoch_count() == 2
    qtbot.waitUntil(lambda: plot.redraw_count >= 1, timeout=2000)  # lines and points come with the redraw
    lines = [item for item in plot.loss_plot.items if type(item).__name__ == "InfiniteLine"]
    assert sorted(line.value() for line in lines) == [300, 600]
    assert any(type(item).__name__ == "InfiniteLine" for item in plot.accuracy_plot.items)
    x, y = plot._train_acc.getOriginalDataset()
    np.testing.assert_allclose(x, [300, 600])
    np.testing.assert_allclose(y, [80, 90])
    plot.reset()
    assert plot.iteration_count == 0 and plot.epoch_count() == 0
    assert not any(type(item).__name__ == "InfiniteLine" for item in plot.loss_plot.items)
    plot.append_losses(np.array([1.0]))
    assert plot.data()["iterations"][0] == 1


def test_export_png_includes_data_appended_just_before(qtbot, plot, tmp_path):
    plot.append_losses(np.linspace(2.3, 0.2, 1000))
    path = plot.export_png(tmp_path / "curve.png")
    assert plot.redraw_count == 1  # export flushed the pending redraw
    with Image.open(path) as img:
        assert img.size[0] >= 600 and img.size[1] >= 400
    with pytest.raises(LossPlotError, match="could not write"):
        plot.export_png(tmp_path / "missing-folder" / "curve.png")


def test_bad_values_are_clear_errors(plot):
    with pytest.raises(LossPlotError, match="numbers"):
        plot.append_losses(["a", "b"])
    with pytest.raises(LossPlotError, match="smoothing"):
        plot.set_smoothing(1.0)


def test_ranges_follow_the_data_until_the_person_zooms(qtbot, plot):
    plot.append_losses(np.linspace(3.0, 0.5, 200))
    plot.add_epoch(1, 200, 0.6, 0.87, 0.7, 0.83)
    qtbot.waitUntil(lambda: plot.redraw_count >= 1, timeout=2000)
    (x0, x1), (y0, y1) = plot.loss_plot.viewRange()
    assert x0 <= 0 and x1 >= 200 and y0 <= 0 and y1 >= 3.0  # all the data is in view, losses from 0
    a0, a1 = plot.accuracy_plot.viewRange()[1]
    assert a0 <= 80 and a1 >= 100 - 1e-9
    plot.set_x_extent(1000)  # a run of known length: the axis shows all of it from the start
    qtbot.waitUntil(lambda: plot.loss_plot.viewRange()[0][1] >= 1000, timeout=2000)
    plot.loss_plot.getViewBox().sigRangeChangedManually.emit([True, True])  # the person zoomed
    plot.loss_plot.setYRange(1.0, 2.0, padding=0)
    plot.append_losses(np.full(50, 9.0))
    count = plot.redraw_count
    qtbot.waitUntil(lambda: plot.redraw_count > count, timeout=2000)
    assert plot.loss_plot.viewRange()[1] == pytest.approx([1.0, 2.0])  # their zoom stays
    plot.follow_data()
    qtbot.waitUntil(lambda: plot.loss_plot.viewRange()[1][1] >= 9.0, timeout=2000)


def smoothed(plot):
    return plot.data()["smoothed"]


def test_the_smoothed_curve_is_a_debiased_moving_average_checked_by_hand(plot):
    plot.set_smoothing(0.5)
    plot.append_losses([4.0, np.nan])
    plot.append_losses([2.0, 1.0])  # in pieces, as reports arrive
    # m_t = 0.5 m_(t-1) + 0.5 x_t from m_0 = 0, divided by 1 - 0.5^t (t counts the numbers, not the NaN):
    # 4/1 … 4 … (0.5·4 + 2)/1.5 … (0.25·4 + 0.5·2 + 1)/1.75
    np.testing.assert_allclose(smoothed(plot), [4.0, 4.0, 4.0 / 1.5, 3.0 / 1.75])
    plot.set_smoothing(0.0)  # recomputed from the losses kept: no smoothing is the losses themselves
    np.testing.assert_allclose(smoothed(plot), [4.0, 4.0, 2.0, 1.0])
    plot.reset()
    plot.set_smoothing(0.5)
    plot.append_losses([1.0])
    np.testing.assert_allclose(smoothed(plot), [1.0])  # a new run starts afresh


def test_the_smoothed_curve_has_no_start_up_lag(plot):
    # a default run's loss falls from 2.3 to ~0.35 within 40 iterations; a plain moving average started at the
    # first loss was still at ~0.9 there
    losses = 0.35 + 1.95 * np.exp(-np.arange(40) / 6)
    plot.append_losses(losses)
    assert smoothed(plot)[-1] == pytest.approx(losses[-1], abs=0.03)
    assert smoothed(plot)[0] == losses[0]  # the first point is the first loss, not pulled towards 0


def test_the_legend_and_help_say_the_smoothing_window(plot):
    labels = [label.text for _, label in plot.loss_plot.legend.items]
    assert "smoothed (≈5-batch window)" in labels
    assert plot.smoothing_text() == "smoothed (≈5-batch window)"
    plot.set_smoothing(0.95)
    assert "smoothed (≈20-batch window)" in [label.text for _, label in plot.loss_plot.legend.items]


def test_markers_label_a_change_at_its_iteration_until_reset(qtbot, plot):
    plot.append_losses(np.linspace(2, 0.5, 100))
    plot.add_marker(40, "lr 0.001 → 0.05")
    assert plot.markers() == [(40, "lr 0.001 → 0.05")]
    qtbot.waitUntil(lambda: plot.redraw_count >= 1, timeout=2000)
    lines = [item for item in plot.loss_plot.items if type(item).__name__ == "InfiniteLine"]
    assert [line.value() for line in lines] == [40]
    assert lines[0].label.toPlainText() == "lr 0.001 → 0.05"
    plot.reset()
    assert plot.markers() == []
    assert not any(type(item).__name__ == "InfiniteLine" for item in plot.loss_plot.items)


def test_small_losses_are_numbered_as_they_are_not_scaled_by_a_unit_prefix(qtbot, plot):
    plot.append_losses(np.linspace(0.004, 0.001, 50))  # a continued run: every loss well below 1
    plot._redraw()
    axis = plot.loss_plot.getAxis("left")
    assert axis.autoSIPrefix is False and axis.autoSIPrefixScale == 1.0
    assert "x0.001" not in axis.labelString() and "(m" not in axis.labelString()


def test_a_longer_redraw_interval_spaces_redraws_out_and_loses_no_loss(qtbot, plot):
    plot.set_redraw_interval(300)  # what the Train page asks while a run goes as fast as it can
    assert plot.redraw_interval() == 300
    plot.append_losses(np.ones(10))
    qtbot.waitUntil(lambda: plot.redraw_count >= 1, timeout=2000)
    before = plot.redraw_count
    start = time.perf_counter()
    while time.perf_counter() - start < 0.9:
        plot.append_losses(np.full(10, 0.5))
        qtbot.wait(5)
    assert 1 <= plot.redraw_count - before <= 0.9 / 0.3 + 1  # not one per REDRAW_MS
    qtbot.waitUntil(lambda: not plot._dirty, timeout=2000)
    x, _ = curve_data(plot)
    assert len(x) == plot.iteration_count  # the next redraw shows every loss appended meanwhile
    plot.set_redraw_interval(None)
    assert plot.redraw_interval() == REDRAW_MS
    plot.set_redraw_interval(1)
    assert plot.redraw_interval() == REDRAW_MS  # never more often than REDRAW_MS


def burn(seconds: float) -> None:
    """Keep this thread busy for ``seconds`` of its CPU time (what a dear redraw does)."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_dear_redraws_of_a_fast_run_are_spaced_out_to_one_percent_of_the_time(qtbot, plot):
    draw = plot._draw
    plot._draw = lambda: (draw(), burn(0.009))  # 9 ms of the GUI thread per redraw: 1 % of 0.9 seconds
    plot.set_redraw_interval(300)
    while plot.redraw_count < 3:  # the first redraws measure what one costs
        plot.append_losses(np.ones(10))
        qtbot.wait(10)
    before, start = plot.redraw_count, time.perf_counter()
    while time.perf_counter() - start < 0.85:
        plot.append_losses(np.full(10, 0.5))
        qtbot.wait(10)
    assert plot.redraw_count - before <= 1  # at 300 ms, two or three
    # as often as asked again when training is paced or over: then the GUI thread has the time
    plot.set_redraw_interval(None)
    qtbot.wait(1000)  # the redraw already scheduled
    before, start = plot.redraw_count, time.perf_counter()
    while time.perf_counter() - start < 0.5:
        plot.append_losses(np.full(10, 0.5))
        qtbot.wait(10)
    assert plot.redraw_count - before >= 4


def test_a_plot_on_a_page_not_showing_draws_when_the_page_is_shown(qtbot):
    pages, plot, other = QStackedWidget(), LossPlot(), QWidget()
    pages.addWidget(plot)
    pages.addWidget(other)
    qtbot.addWidget(pages)
    pages.resize(600, 400)
    pages.show()
    qtbot.waitExposed(pages)
    pages.setCurrentWidget(other)
    count = plot.redraw_count
    plot.append_losses(np.linspace(2, 1, 50))
    plot.add_epoch(1, 50, 1.0, 0.7)
    qtbot.wait(4 * REDRAW_MS)
    assert plot.redraw_count == count  # nothing handed to pyqtgraph while another page shows
    pages.setCurrentWidget(plot)
    qtbot.waitUntil(lambda: plot.redraw_count > count, timeout=2000)
    x, _ = curve_data(plot)
    assert len(x) == 50 and plot._train_points.getOriginalDataset()[0].tolist() == [50]


def test_a_log_axis_shows_the_smoothed_curve_below_the_lowest_positive_loss(plot):
    plot.set_smoothing(0.5)
    plot.append_losses([0.0, 1.0])  # smoothed: 0, then (0.5·0 + 1)/1.5 = 0.67, below the lowest positive loss
    plot.set_log_scale(True)
    plot._redraw()
    low, high = plot.loss_plot.viewRange()[1]
    assert low <= np.log10(2 / 3) and high >= 0.0  # log10 of 0.67 and of 1.0


def test_both_value_axes_share_one_width_that_only_grows(show, qtbot):
    plot = show(LossPlot(), 600, 400)

    def widths():
        return [p.getAxis("left").width() for p in (plot.loss_plot, plot.accuracy_plot)]

    def draw(losses):
        plot.reset()
        plot.append_losses(losses)
        plot.add_epoch(1, len(losses), losses[-1], 0.925, losses[-1], 0.9)
        for _ in range(2):  # the second redraw sees the labels the first one drew
            plot._dirty = True
            plot._redraw()
            plot.grab()
        qtbot.wait(20)  # the layout follows

    first = widths()
    assert first[0] == first[1]  # the loss and accuracy plots line up
    draw(np.linspace(2.3, 0.3, 100))  # labels "0" … "2" and "92.5": no other width, so no re-layout while training
    assert widths() == first
    draw(np.linspace(0.004, 0.001, 100))  # "0.004" needs more room
    wider = widths()
    assert wider[0] == wider[1] > first[0]
    draw(np.linspace(2.3, 0.3, 100))
    assert widths() == wider  # never narrower again: no re-layout back and forth


def test_a_new_run_keeps_the_value_ranges_until_its_values_arrive(plot):
    plot.append_losses(np.linspace(2.3, 0.3, 100))
    plot.add_epoch(1, 100, 0.3, 0.92, 0.35, 0.9)
    plot._redraw()
    shown = (plot.loss_plot.viewRange()[1], plot.accuracy_plot.viewRange()[1])
    plot.reset()
    plot.set_x_extent(500)
    plot.draw_now()  # what the Train page does before a run starts
    assert plot.redraw_count >= 2 and not plot._dirty
    assert plot.loss_plot.viewRange()[0][1] >= 500  # the new run's iteration axis, at once
    # the same labels as the last run's: its first losses change no axis (a re-layout and repaint of the plot)
    assert (plot.loss_plot.viewRange()[1], plot.accuracy_plot.viewRange()[1]) == shown
    plot.append_losses([5.0])
    plot._redraw()
    assert plot.loss_plot.viewRange()[1][1] >= 5.0  # values of its own: fitted to them
