"""Every page of the window fits a real screen: rendered offscreen at 1280×720 and 1920×1080, nothing is cut.

For each size the whole window is made that size (offscreen has no frame, so the window is the
screen) and every page, the labs included, is brought to the front in turn. On each page:

- every plot's view contains all its data: points, curves, bars, markers (its items' bounds, with
  their symbols' pixel padding, as pyqtgraph's auto-range computes them), within 1% of the view;
- every plot has room: at least 200×150 px, and its plot item (axes, title) fits inside the widget
  instead of being drawn into a narrower slot;
- no visible child widget is cut by its parent: its geometry lies inside the parent's rectangle.
  Widgets inside a scroll area's viewport are the scrolled contents and may extend past it;
- no text is cut: a label or button is at least as wide and tall as its text needs (a wrapping
  label as tall as its text needs at its width);
- in the labs, every item of a list (combo box) shows whole: the box is as wide as its longest item needs;
- the page needs no horizontal scroll bar (its width fits the window). A page may scroll
  vertically at 1280×720 — a page taller than 600 px is still readable — but the labs, built for
  this size, must not, and at 1920×1080 no page scrolls at all.

The pages are checked as the window opens and again with a dataset and a trained network. Each lab
is also checked alone, in a scroll area the size the Labs page gets at a 1280×720 screen with a
window frame (1240×560) and at a 2560×1440 one, in the states that stretch its plots most (a
diverging descent, a point far away, typed probabilities above 1, paths leaving the map).

Where a real X server with OpenGL is at hand (Xvfb and Mesa), the loss landscape's 3-D tab is checked
too, in a window opened on a 1280×720 and a 1920×1080 screen: its help line shows, nothing is cut,
and every surface is drawn whole inside the view, with a margin of background all round.
"""
from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pyqtgraph as pg
import pytest
import shiboken6
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractScrollArea,
    QApplication,
    QComboBox,
    QLabel,
    QScrollArea,
    QStyle,
    QStyleOptionComboBox,
    QWidget,
)

from app.main_window import MainWindow
from app.tabs.labs import create_lab_tabs
from app.threads import TaskRegistry

SIZES = [(1280, 720), (1920, 1080)]
LABS = ("Loss functions", "Gradient descent", "Gradients", "Loss landscape")
PAGES = ("Train", "Evaluate", "Compare", "Models", *LABS)
MIN_PLOT = (200, 150)
TOLERANCE = 0.01  # of the view's span: a point on the very edge still counts as shown
SLACK = 1  # px: rounding in Qt's layouts


@pytest.fixture(scope="module", params=SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def window(request, qapp):
    """The window made the size of a screen, and each page brought to the front in turn and checked as it is shown.

    Made once per size and read by the tests below (a window takes a while to build): ``.problems``
    holds what ``check_page`` found on each page, ``.sizes`` the window's size with each page in front.
    """
    width, height = request.param
    w = MainWindow(load_dataset_on_start=False)
    w.show_error = lambda title, text: None
    w.setWindowState(Qt.WindowState.WindowNoState)  # offscreen's 800×800 screen is small: the window maximizes
    w.resize(width, height)
    w.show()
    assert QTest.qWaitForWindowExposed(w)
    settle()
    assert (w.width(), w.height()) == (width, height)
    problems, sizes = {}, {}
    for title in w.page_titles():
        try:
            problems[title] = check_page(w, title)
        except AssertionError as exc:  # the page is not shown at all
            problems[title] = [str(exc)]
        sizes[title] = (w.width(), w.height())
    yield SimpleNamespace(window=w, screen=(width, height), problems=problems, sizes=sizes)
    w.close()
    w.deleteLater()
    settle()


def settle() -> None:
    for _ in range(5):
        QApplication.processEvents()


def path(widget: QWidget, page: QWidget) -> str:
    """'Page › QGroupBox(Descent) › QLabel("Steps")': where a widget sits, for failure messages."""
    parts = []
    while widget is not None and widget is not page:
        name = type(widget).__name__
        text = widget.text() if hasattr(widget, "text") and callable(widget.text) else ""
        title = widget.title() if hasattr(widget, "title") and callable(widget.title) else ""
        parts.append(f"{name}({str(text or title)[:30]!r})" if (text or title) else name)
        widget = widget.parentWidget()
    return " › ".join(reversed(parts))


def in_scroll_viewport(widget: QWidget) -> bool:
    """True for the contents of a scroll area (they may be larger than the viewport showing them)."""
    parent = widget.parentWidget()
    grand = parent.parentWidget() if parent is not None else None
    return isinstance(grand, QAbstractScrollArea) and grand.viewport() is parent


def visible_children(page: QWidget) -> list[QWidget]:
    return [w for w in page.findChildren(QWidget) if w.isVisible() and not w.isWindow()]


def scroll_area_of(page: QWidget) -> QScrollArea | None:
    parent = page.parentWidget()
    area = parent.parentWidget() if parent is not None else None
    return area if isinstance(area, QScrollArea) else None


# ----- the checks, each returning a list of problems (empty: fine) -----
def plots_show_all_their_data(page: QWidget) -> list[str]:
    problems = []
    for plot in page.findChildren(pg.PlotWidget):
        if not plot.isVisible():
            continue
        item = plot.getPlotItem()
        vb = item.vb
        (x0, x1), (y0, y1) = vb.viewRange()
        title = item.titleLabel.text or plot.toolTip()[:40] or "untitled plot"
        for data in vb.addedItems:
            bounds = vb.childrenBounds(items=[data])
            for axis, (lo, hi), (v0, v1) in (("x", bounds[0] or (None, None), (x0, x1)),
                                             ("y", bounds[1] or (None, None), (y0, y1))):
                if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
                    continue
                tol = TOLERANCE * (v1 - v0)
                if lo < v0 - tol or hi > v1 + tol:
                    problems.append(f"plot {title!r}: {type(data).__name__} spans {axis} {lo:.4g}…{hi:.4g} "
                                    f"but the view shows {v0:.4g}…{v1:.4g}")
    return problems


def plots_have_room(page: QWidget) -> list[str]:
    problems = []
    for plot in page.findChildren(pg.PlotWidget):
        if not plot.isVisible():
            continue
        item = plot.getPlotItem()
        title = item.titleLabel.text or "untitled plot"
        if plot.width() < MIN_PLOT[0] or plot.height() < MIN_PLOT[1]:
            problems.append(f"plot {title!r} is squashed to {plot.width()}×{plot.height()} px")
        shape = item.geometry()
        view = plot.viewport().rect()
        if shape.width() > view.width() + SLACK or shape.height() > view.height() + SLACK:
            problems.append(f"plot {title!r} needs {shape.width():.0f}×{shape.height():.0f} px "
                            f"but is drawn into {view.width()}×{view.height()}")
    return problems


def nothing_cut_by_its_parent(page: QWidget) -> list[str]:
    problems = []
    for w in visible_children(page):
        parent = w.parentWidget()
        if parent is None or in_scroll_viewport(w):
            continue
        inner = parent.rect().adjusted(-SLACK, -SLACK, SLACK, SLACK)
        if not inner.contains(w.geometry()):
            g = w.geometry()
            problems.append(f"{path(w, page)} at {g.x()},{g.y()} {g.width()}×{g.height()} is cut by its parent "
                            f"({parent.width()}×{parent.height()})")
    return problems


def no_text_cut(page: QWidget) -> list[str]:
    problems = []
    for w in visible_children(page):
        if isinstance(w, QLabel) and w.wordWrap():
            need = w.heightForWidth(w.width())
            if need > w.height() + SLACK:
                problems.append(f"{path(w, page)}: its wrapped text needs {need} px of height, has {w.height()}")
        elif isinstance(w, (QLabel, QAbstractButton)) and w.text():
            need = w.minimumSizeHint()
            if need.width() > w.width() + SLACK or need.height() > w.height() + SLACK:
                problems.append(f"{path(w, page)}: its text needs {need.width()}×{need.height()} px, "
                                f"has {w.width()}×{w.height()}")
    return problems


def combo_items_show_whole(page: QWidget) -> list[str]:
    """Each item of each visible combo box fits the box's text field (the style draws the text there, cut at its edge)."""
    problems = []
    for combo in page.findChildren(QComboBox):
        if not combo.isVisible():
            continue
        option = QStyleOptionComboBox()
        combo.initStyleOption(option)
        field = combo.style().subControlRect(QStyle.ComplexControl.CC_ComboBox, option,
                                             QStyle.SubControl.SC_ComboBoxEditField, combo)
        for i in range(combo.count()):
            text = combo.itemText(i)
            need = combo.fontMetrics().horizontalAdvance(text) + 2  # the label keeps 1 px each side
            if need > field.width() + SLACK:
                problems.append(f"{path(combo, page)}: its item {text!r} needs {need} px, "
                                f"its text field is {field.width()} px wide")
    return problems


def scrolling(page: QWidget) -> tuple[bool, bool]:
    """(needs a horizontal scroll bar, needs a vertical one) for a page inside the window's scroll area."""
    area = scroll_area_of(page)
    if area is None:
        return False, False
    view = area.viewport()
    return page.width() > view.width() + SLACK, page.height() > view.height() + SLACK


def check_page(w: MainWindow, title: str) -> list[str]:
    w.show_page(title)
    settle()
    page = w.page(title)
    assert page.isVisible(), f"{title} is not shown by show_page"
    problems = (plots_show_all_their_data(page) + plots_have_room(page) + nothing_cut_by_its_parent(page)
                + no_text_cut(page))
    if title in LABS:
        problems += combo_items_show_whole(page)
    horizontal, vertical = scrolling(page)
    if horizontal:
        problems.append(f"needs a horizontal scroll bar: {page.width()} px wide in a "
                        f"{scroll_area_of(page).viewport().width()} px window")
    if vertical and (w.width() >= 1920 or title in LABS):
        problems.append(f"needs a vertical scroll bar: {page.height()} px tall in "
                        f"{scroll_area_of(page).viewport().height()} px")
    return problems


# ----- the tests -----
def test_the_window_keeps_the_screen_size(window):
    """No page's minimum size makes the window larger than the screen it opened on."""
    assert set(window.sizes.values()) == {window.screen}, window.sizes
    w = window.window
    assert w.minimumSizeHint().width() <= 1280 and w.minimumSizeHint().height() <= 720


def test_every_page_is_listed(window):
    titles = window.window.page_titles()
    assert set(LABS) <= set(titles)
    assert {"Train", "Evaluate", "Compare", "Models"} <= set(titles)


@pytest.mark.parametrize("title", PAGES)
def test_the_page_fits(window, title):
    assert title in window.problems, f"no page {title!r}: {list(window.problems)}"
    problems = window.problems[title]
    assert not problems, f"{title} at {window.screen[0]}×{window.screen[1]}:\n  " + "\n  ".join(problems)


def test_every_page_fits_with_a_dataset_and_a_trained_network(qtbot, trained):
    """The pages filled in: the evaluation, the models, the gradient lab's network, at the smaller screen."""
    dataset, net = trained
    w = MainWindow(load_dataset_on_start=False)
    qtbot.addWidget(w)
    w.show_error = lambda title, text: None
    w.setWindowState(Qt.WindowState.WindowNoState)
    w.resize(1280, 720)
    w.show()
    qtbot.waitExposed(w)
    w.session.set_dataset(dataset)
    w.session.set_network(net.copy(), "784-30-10 sigmoid, adam lr=0.001, batch 100, seed 0 (finished, 2 epochs)")
    failures = []
    for title in w.page_titles():
        w.show_page(title)
        qtbot.waitUntil(lambda: not w.tasks.running(), timeout=60_000)  # e.g. the evaluation of the network
        problems = check_page(w, title)
        if problems:
            failures.append(f"{title}:\n  " + "\n  ".join(problems))
    assert not failures, "\n".join(failures)
    w.close()


# ----- each lab alone, at the smallest and the largest page it gets, in the states that stretch its plots -----
def descent_states(lab):
    yield "the book's start"
    lab.step(10_000)
    yield "converged"
    lab.set_learning_rate(lab.learning_rate_marks()[2])
    lab.step(10_000)
    yield "diverged (too large a learning rate)"
    lab.add_point(30.0, -20.0)
    lab.step(10_000)
    yield "a point far from the others"


def loss_states(lab):
    yield "the book's example"
    lab.set_text("0 0 0 0 0 0 0 0 0 3")
    yield "a typed vector that adds up to 3"


def gradient_states(lab):
    yield "h = 1e-4"
    lab.set_step_size(1e-2)
    yield "h = 1e-2"
    lab.set_step_size(1e-50)
    yield "h = 1e-50 (flat tangents)"


def landscape_states(lab):
    for key in ("neuron", "bowl", "saddle", "rosenbrock"):
        lab.set_surface(key)
        yield key
        lab.lr_scale.setValue(10.0)
        yield f"{key}, every learning rate × 10"


LAB_STATES = {"Loss functions": loss_states, "Gradient descent": descent_states, "Gradients": gradient_states,
              "Loss landscape": landscape_states}
# A lab page at a 1280×720 screen (window frame, menu, status bar and both tab bars taken off) and at a
# 2560×1440 one. Loss functions follows the canvas, so the drawing column (about 320 px) stays beside it.
PAGE_SIZES = {"smallest": (1240, 560), "largest": (2520, 1300)}
SMALLEST = {"Loss functions": (920, 560)}


@pytest.fixture(scope="module")
def lab_set(request, qapp):
    """(page size, {title: lab}): the four labs as the window makes them, one set per page size.

    Each test below takes its own lab from the set and changes it; no lab is used twice.
    """
    registry = TaskRegistry()  # as the window's
    labs = dict(create_lab_tabs(None, registry.create))
    yield request.param, labs
    assert registry.shutdown(10_000), "a lab task did not stop"
    for lab in labs.values():
        if shiboken6.isValid(lab):  # not deleted with its test's scroll area
            lab.close()
            lab.deleteLater()
    settle()


@pytest.mark.parametrize("lab_set", PAGE_SIZES, indirect=True)
@pytest.mark.parametrize("title", LABS)
def test_each_lab_fits_from_the_smallest_page_to_the_largest(qtbot, lab_set, title):
    which, labs = lab_set
    size = SMALLEST.get(title, PAGE_SIZES[which]) if which == "smallest" else PAGE_SIZES[which]
    area = QScrollArea()  # as the window holds a page
    area.setWidgetResizable(True)
    area.setFrameShape(QScrollArea.Shape.NoFrame)
    area.setWidget(labs[title])
    qtbot.addWidget(area)
    area.resize(*size)
    area.show()
    qtbot.waitExposed(area)
    page = labs[title]
    for state in LAB_STATES[title](page):
        if title == "Loss landscape":  # long runs arrive from a background task
            qtbot.waitUntil(lambda: not page.is_computing(), timeout=30_000)
        settle()
        problems = (plots_show_all_their_data(page) + plots_have_room(page) + nothing_cut_by_its_parent(page)
                    + no_text_cut(page) + combo_items_show_whole(page))
        horizontal, vertical = scrolling(page)
        if horizontal or vertical:
            problems.append(f"needs scrolling: {page.width()}×{page.height()} px in {size[0]}×{size[1]}")
        assert not problems, f"{title} ({state}) at {size[0]}×{size[1]}:\n  " + "\n  ".join(problems)


# ----- the 3-D view, where OpenGL works: on a real (virtual) X server -----
THREE_D_SCRIPT = """
import importlib.util, sys, time
from PySide6.QtWidgets import QApplication
spec = importlib.util.spec_from_file_location("layout_checks", sys.argv[1])
checks = importlib.util.module_from_spec(spec)
spec.loader.exec_module(checks)
app = QApplication([])
from app.main_window import MainWindow
from engine.labs.landscape import SURFACES

w = MainWindow(load_dataset_on_start=False)
w.show_error = lambda title, text: None
w.show()
checks.settle()
w.show_page("Loss landscape")
lab = w.page("Loss landscape")
assert lab.view3d is not None, "OpenGL works here, so the 3-D view should be there"
lab.views.setCurrentIndex(1)
screen = app.primaryScreen().size()
print(f"window {w.width()}x{w.height()} on a {screen.width()}x{screen.height()} screen")
for key in SURFACES:
    lab.set_surface(key)
    while lab.is_computing():  # long runs arrive from a background task
        app.processEvents()
        time.sleep(0.005)
    for _ in range(10):
        app.processEvents()
    problems = checks.nothing_cut_by_its_parent(lab) + checks.no_text_cut(lab) + checks.combo_items_show_whole(lab)
    if any(checks.scrolling(lab)):
        problems.append(f"needs scrolling: {lab.width()}x{lab.height()}")
    view = lab.view3d.view
    panel = lab.view3d.parentWidget()
    help_label = panel.help_label
    if not (help_label.isVisible() and help_label.text().startswith("Drag to turn the surface")):
        problems.append("no help line under the 3-D view")
    if help_label.geometry().top() < lab.view3d.geometry().bottom() or not panel.rect().contains(help_label.geometry()):
        problems.append(f"the help line at {help_label.geometry()} is not under the view {lab.view3d.geometry()}")
    if view.height() < 300:
        problems.append(f"the 3-D view is squashed to {view.width()}x{view.height()}")
    image = view.grabFramebuffer()
    width, height = image.width(), image.height()
    white = image.pixel(0, 0)
    drawn = [(x, y) for x in range(0, width, 4) for y in range(0, height, 4) if image.pixel(x, y) != white]
    xs = [x for x, _ in drawn]
    ys = [y for _, y in drawn]
    margin = 4  # px of background the picture keeps from every edge
    if not drawn or min(xs) < margin or min(ys) < margin or max(xs) >= width - margin or max(ys) >= height - margin:
        problems.append(f"{key}: the surface is cut at the view's edge: drawn over x {min(xs, default=0)}…"
                        f"{max(xs, default=0)}, y {min(ys, default=0)}…{max(ys, default=0)} of {width}x{height}")
    elif max(xs) - min(xs) < 0.6 * width and max(ys) - min(ys) < 0.6 * height:
        problems.append(f"{key}: the surface fills too little of the view: {max(xs) - min(xs)}x{max(ys) - min(ys)} "
                        f"of {width}x{height}")
    if problems:
        print(f"{key}: " + "; ".join(problems))
        w.close()
        sys.exit(1)
w.close()
print("3-D fits")
"""


@pytest.fixture(scope="module", autouse=True)
def three_d_runs(request, under_x):
    """The 3-D check on each screen size, started under its own X server as this module starts: {size: run}.

    The runs (a few seconds each, mostly Python and Qt starting) go on beside the offscreen tests above.
    """
    wanted = [item.callspec.params["screen"] for item in request.session.items
              if getattr(item, "originalname", "") == "test_the_3d_view_fits_under_a_real_x_server"
              and getattr(item, "module", None) is request.module]
    return {screen: under_x(THREE_D_SCRIPT, [__file__], screen, Path(__file__).resolve().parents[2])
            for screen in wanted}


@pytest.mark.parametrize("screen", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_the_3d_view_fits_under_a_real_x_server(screen, three_d_runs):
    pytest.importorskip("OpenGL", reason="PyOpenGL (the 3d extra) is not installed")
    run = three_d_runs[screen]
    if run is None:
        pytest.skip("xvfb-run is not installed (Debian package xvfb): no X server to try OpenGL on")
    out = run.result()
    if "GLX" in out.stderr and out.returncode != 0:
        pytest.skip(f"the X server has no working OpenGL: {out.stderr.strip()[-200:]}")
    assert out.returncode == 0 and "3-D fits" in out.stdout, out.stdout[-2000:] + out.stderr[-2000:]
