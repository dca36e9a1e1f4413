"""The learning-curve plot: buffered appends, timer-driven redraws, epochs, overlays."""
import time

import numpy as np
import pytest

from PIL import Image

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


def test_overlays(qtbot, plot):
    plot.add_overlay("run1", "earlier run (SGD)", np.arange(1, 101), np.linspace(2, 1, 100))
    plot.add_overlay("run2", "Adam", np.arange(1, 51), np.linspace(2, 0.3, 50), color="#d62728")
    assert plot.overlay_keys() == ["run1", "run2"]
    plot.update_overlay("run1", np.arange(1, 201), np.linspace(2, 0.8, 200))
    x, _ = plot.overlay_data("run1")
    assert len(x) == 200
    legend_labels = [label.text for _, label in plot.loss_plot.legend.items]
    assert "Adam" in legend_labels
    plot.remove_overlay("run2")
    assert plot.overlay_keys() == ["run1"]
    assert "Adam" not in [label.text for _, label in plot.loss_plot.legend.items]
    plot.reset()
    assert plot.overlay_keys() == ["run1"]  # other runs stay for comparison
    with pytest.raises(LossPlotError, match="no overlay 'nope'"):
        plot.remove_overlay("nope")
    with pytest.raises(LossPlotError, match="3 iteration numbers but 2 losses"):
        plot.update_overlay("run1", [1, 2, 3], [1, 2])


def test_a_growing_overlay_appends_into_its_buffer_and_is_drawn_on_the_timer(qtbot, plot):
    plot.add_overlay("live", "racing")
    rng = np.random.default_rng(1)
    chunks = [rng.random(7) for _ in range(500)]
    capacities = set()
    for chunk in chunks:
        plot.append_overlay("live", chunk)
        capacities.add(plot.overlay_capacity("live"))
    x, y = plot.overlay_data("live")
    np.testing.assert_array_equal(y, np.concatenate(chunks))
    np.testing.assert_array_equal(x, np.arange(1, 3501))
    assert len(capacities) <= 12  # 3,500 points in buffers that double: a dozen sizes at most, not 500
    assert plot.redraw_count == 0  # appending never draws; the timer does
    plot.set_overlay_transform(lambda losses: losses * 10)  # applied when drawn, never to the data kept
    qtbot.waitUntil(lambda: plot.redraw_count >= 1, timeout=2000)
    np.testing.assert_allclose(plot.overlay_data("live", drawn=True)[1], 10 * y)
    np.testing.assert_array_equal(plot.overlay_data("live")[1], y)
    plot.append_overlay("live", [0.5, 0.25], iterations=[4000, 4001])  # explicit iteration numbers
    assert plot.overlay_data("live")[0][-1] == 4001
    with pytest.raises(LossPlotError, match="no overlay 'gone'"):
        plot.append_overlay("gone", [1.0])


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
