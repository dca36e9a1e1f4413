"""The Compare page as a person reads it: runs told apart, a legend beside the plot, focus, exact exports."""
import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QAbstractButton, QAbstractSpinBox, QComboBox, QLineEdit, QListWidget

from app.session import Session
from app.tabs.compare import PALETTE, ComparePage
from engine.train.config import TrainConfig
from engine.train.runs import RunRecord

CONFIG = TrainConfig(hidden=[100]).to_dict()


@pytest.fixture
def page(qtbot, small_dataset, tasks):
    session = Session()
    session.set_dataset(small_dataset)
    p = ComparePage(session, tasks)
    qtbot.addWidget(p)
    p.resize(1240, 600)
    return p


def run(n: int, level: float = 0.2, epochs_every: int = 100, **settings) -> RunRecord:
    losses = level + 2.0 * np.exp(-np.arange(n) / (n / 6))
    epochs = [{"epoch": i, "iteration": i * epochs_every, "test_accuracy": 0.8 + 0.01 * i}
              for i in range(1, n // epochs_every + 1)]
    return RunRecord(f"Run: {n}", {**CONFIG, **settings}, losses, epochs)


def drawn(page):
    page.plot.redraw_now()
    return page.plot


def test_runs_are_named_by_what_tells_them_apart(page):
    changed = {"lr": 0.05, "lr_changes": [{"iteration": 812, "from": 0.001, "to": 0.05}]}
    for rec in (run(1000), run(1000), run(1000, **changed), run(1000, optimizer="sgd", lr=0.1, seed=3)):
        page.session.add_run(rec)
    titles = [page.runs.label(k) for k in page.run_keys()]
    assert titles == ["Adam lr 0.001 · batch 100 · seed 0", "Adam lr 0.001 · batch 100 · seed 0 #2",
                      "Adam lr 0.001→0.05@812 · batch 100 · seed 0", "SGD lr 0.1 · batch 100 · seed 3"]
    assert [e.label for e in page.plot.legend_entries()] == titles  # the legend names what is drawn, as listed
    page.remove_run(page.run_keys()[0])
    assert page.runs.label(page.run_keys()[0]) == "Adam lr 0.001 · batch 100 · seed 0"  # no twin left: no #2


def test_a_selected_run_shows_its_history_with_each_learning_rate_change(page):
    page.session.add_run(run(2000, lr=0.05, lr_changes=[{"iteration": 812, "from": 0.001, "to": 0.05}]))
    key = page.run_keys()[0]
    assert "lr 0.001 → 0.05 at iteration 812" in page.runs.tooltip(key)
    assert "Select a run" in page.detail.full_text()
    page.runs.set_current(key)
    lines = page.detail.full_text().splitlines()
    assert lines[:3] == ["Adam lr 0.001→0.05@812 · batch 100 · seed 0", "lr 0.001 → 0.05 at iteration 812",
                         "2,000 iterations, finished, test accuracy 100.0%"]
    assert drawn(page).markers(key, shown=True) == [(812.0, "lr → 0.05")]  # and a dashed line where it changed


def test_focusing_a_short_run_fits_the_axes_to_it_and_dims_the_others(page):
    long_run, short = run(6000, level=0.5), run(300, level=0.1, epochs_every=50)
    page.session.add_run(long_run)
    page.session.add_run(short)
    old, new = page.run_keys()
    (x0, x1), _ = drawn(page).loss_plot.viewRange()
    assert x1 >= 6000  # nothing focused: every run fits
    page.runs.set_current(new)
    (x0, x1), (y0, y1) = drawn(page).loss_plot.viewRange()
    assert x1 <= 300 * 1.05, "the short run is squashed against the long one"
    assert drawn(page).accuracy_plot.viewRange()[0] == pytest.approx([x0, x1])  # both share the iteration axis
    assert y0 <= 0.1 and y1 >= page.plot.overlay_data(new, drawn=True)[1].max()
    states = {e.label: e.state for e in page.plot.legend_entries()}
    assert states == {page.title(new): "focus", page.title(old): "dim"}
    pens = {k: page.plot._curves[k].item.opts["pen"] for k in (old, new)}
    assert pens[old].color().alpha() < 100 < pens[new].color().alpha() and pens[new].widthF() > pens[old].widthF()
    page.runs.set_selected([])
    assert drawn(page).loss_plot.viewRange()[0][1] >= 6000
    assert {e.state for e in page.plot.legend_entries()} == {"normal"}


def test_a_race_is_focused_and_not_squashed_against_older_runs(qtbot, page):
    page.session.add_run(run(5000))
    race = page.race
    race.hidden_edit.setText("20")
    race.iterations_spin.setValue(60)
    with qtbot.waitSignal(page.raceFinished, timeout=60_000):
        page.start_race()
        assert page.plot.focus() == race.live_keys() and len(race.live_keys()) == 4
    qtbot.waitUntil(lambda: not page.is_racing())
    raced = page.run_keys()[1:]
    assert page.runs.selected_keys() == raced and page.plot.focus() == raced
    assert drawn(page).loss_plot.viewRange()[0][1] <= 60 * 1.05


def test_the_legend_sits_outside_the_plot_and_follows_what_is_drawn(qtbot, page):
    for n in (400, 500, 600):
        page.session.add_run(run(n))
    page.show()
    qtbot.waitExposed(page)
    plot = page.plot
    legend_box = plot.legend.geometry()
    for view in (plot.loss_view, plot.accuracy_view):
        assert not view.geometry().intersects(legend_box)  # it never covers a curve
    assert plot.legend.height() >= plot.legend.heightForWidth(plot.legend.width())  # no entry cut off
    keys = page.run_keys()
    page.runs.set_checked(keys[1], False)
    assert [e.label for e in plot.legend_entries()] == [page.title(keys[0]), page.title(keys[2])]
    assert [e.color for e in plot.legend_entries()] == [plot.overlay_color(keys[0]), plot.overlay_color(keys[2])]


def colour_pixels(path, colour: str) -> int:
    """How many pixels of the picture are (nearly) this colour."""
    img = QImage(str(path)).convertToFormat(QImage.Format.Format_RGB32)
    ptr = img.constBits()
    arr = np.frombuffer(ptr, dtype=np.uint8).reshape(img.height(), img.bytesPerLine())[:, :img.width() * 4]
    bgr = arr.reshape(img.height(), img.width(), 4)[..., :3].astype(int)
    c = QColor(colour)
    return int((np.abs(bgr - [c.blue(), c.green(), c.red()]).sum(axis=2) < 40).sum())


def test_export_pictures_exactly_the_selected_runs(page, tmp_path):
    for n in (300, 3000, 500):
        page.session.add_run(run(n))
    keys = page.run_keys()
    colours = [page.plot.overlay_color(k) for k in keys]
    assert colours == list(PALETTE[:3])  # three distinct colours
    page.runs.set_checked(keys[2], False)  # selected but not ticked: still exported, as asked
    page.runs.set_selected([keys[0], keys[2]])
    written = page.export_runs(page.runs.selected_keys(), tmp_path / "pair.json")
    assert [p.name for p in written] == ["pair-1.json", "pair-1-losses.csv", "pair-1-epochs.csv", "pair-2.json",
                                         "pair-2-losses.csv", "pair-2-epochs.csv", "pair.png"]
    assert RunRecord.from_json(tmp_path / "pair-2.json").losses.size == 500
    png = tmp_path / "pair.png"
    assert colour_pixels(png, colours[0]) > 200 and colour_pixels(png, colours[2]) > 200
    assert colour_pixels(png, colours[1]) == 0  # the long run that was not selected is not in the picture


def test_buttons_stay_put_whatever_the_page_says(qtbot, page):
    page.show()
    qtbot.waitExposed(page)
    buttons = [page.export_button, page.import_button, page.remove_button, page.race.race_button,
               page.race.stop_button, page.smooth_box]

    def places():
        qtbot.wait(10)
        return [(b.mapTo(page, QPoint(0, 0)), b.size()) for b in buttons]

    before = places()
    for i in range(12):
        page.session.add_run(run(200 + i, lr_changes=[{"iteration": 5 * j + 1, "from": 0.1, "to": 0.2}
                                                      for j in range(i)]))
    page.runs.set_current(page.run_keys()[-1])  # a long history in the detail line
    assert page.detail.full_text().count("\n") > 10 and places() == before
    page.set_status("Exported " + ", ".join(f"a-long-file-name-{i}.json" for i in range(30)))
    page.race.set_status("Race finished after 500 iterations. " + "; ".join(["SGD lr 0.01: loss 0.9"] * 20))
    assert page.race.status.is_cut() and page.status.is_cut() and places() == before
    page.runs.set_selected(page.run_keys()[:3])
    assert places() == before


def test_every_control_has_a_tooltip_and_every_plot_a_help_line(page):
    controls = [w for cls in (QAbstractButton, QComboBox, QLineEdit, QAbstractSpinBox, QListWidget)
                for w in page.findChildren(cls)
                if w.objectName() != "qt_spinbox_lineedit"]  # a spin box's own editor: the spin box explains
    missing = [f"{type(w).__name__} {getattr(w, 'text', lambda: '')()!r}" for w in controls if not w.toolTip()]
    assert not missing
    assert "Training loss per iteration" in page.plot.loss_help.text()
    assert "Test accuracy after each epoch" in page.plot.accuracy_help.text()
    assert page.plot.loss_view.toolTip() and page.plot.accuracy_view.toolTip() and page.plot.legend.toolTip()


def test_a_double_click_fits_the_focused_runs_again(qtbot, page):
    page.session.add_run(run(1000))
    page.show()
    qtbot.waitExposed(page)
    plot = drawn(page)
    plot.loss_plot.getViewBox().setXRange(100, 200)
    plot._stop_following()  # as after a drag or a wheel turn
    plot.redraw_now()
    assert plot.loss_plot.viewRange()[0][1] < 300
    viewport = plot.loss_view.viewport()
    centre = viewport.rect().center()
    qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=centre)
    qtbot.mouseDClick(viewport, Qt.MouseButton.LeftButton, pos=centre)
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=centre)
    qtbot.waitUntil(lambda: drawn(page).loss_plot.viewRange()[0][1] >= 1000, timeout=2000)


def test_a_run_added_during_a_focus_joins_dimmed_and_a_reticked_selected_run_is_focused_again(page):
    page.session.add_run(run(300))
    first = page.run_keys()[0]
    page.runs.set_current(first)
    page.session.add_run(run(5000))  # e.g. a training run that ended meanwhile
    second = page.run_keys()[1]
    assert page.plot.focus() == [first] and drawn(page).loss_plot.viewRange()[0][1] <= 300 * 1.05
    assert {e.label: e.state for e in page.plot.legend_entries()}[page.title(second)] == "dim"
    page.runs.set_checked(first, False)
    assert page.plot.focus() == []
    page.runs.set_checked(first, True)
    assert page.plot.focus() == [first]


def test_small_losses_are_numbered_as_they_are_not_scaled_by_a_unit_prefix(qtbot):
    from app.tabs.compare_plot import ComparePlot

    plot = ComparePlot()
    qtbot.addWidget(plot)
    plot.add_overlay("run", "continued run", np.arange(1, 51), np.linspace(0.004, 0.001, 50))
    plot.show()
    qtbot.waitUntil(lambda: plot.redraw_count > 0, timeout=2000)
    for axis in (plot.loss_plot.getAxis("left"), plot.accuracy_plot.getAxis("bottom")):
        assert axis.autoSIPrefixScale == 1.0
