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
- the page needs no horizontal scroll bar (its width fits the window). A page may scroll
  vertically at 1280×720 — a page taller than 600 px is still readable — but the labs, built for
  this size, must not, and at 1920×1080 no page scrolls at all.

The pages are checked as the window opens and again with a dataset and a trained network. Each lab
is also checked alone, in a scroll area the size the Labs page gets at a 1280×720 screen with a
window frame (1240×560) and at a 2560×1440 one, in the states that stretch its plots most (a
diverging descent, a point far away, typed probabilities above 1, paths leaving the map).
"""
from __future__ import annotations

import math

import pyqtgraph as pg
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractScrollArea,
    QApplication,
    QLabel,
    QScrollArea,
    QWidget,
)

from app.main_window import MainWindow
from app.tabs.labs import create_lab_tabs

SIZES = [(1280, 720), (1920, 1080)]
LABS = ("Loss functions", "Gradient descent", "Gradients", "Loss landscape")
MIN_PLOT = (200, 150)
TOLERANCE = 0.01  # of the view's span: a point on the very edge still counts as shown
SLACK = 1  # px: rounding in Qt's layouts


@pytest.fixture(params=SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def window(request, qtbot):
    width, height = request.param
    w = MainWindow(load_dataset_on_start=False)
    qtbot.addWidget(w)
    w.show_error = lambda title, text: None
    w.setWindowState(Qt.WindowState.WindowNoState)  # offscreen's 800×800 screen is small: the window maximizes
    w.resize(width, height)
    w.show()
    qtbot.waitExposed(w)
    settle()
    assert (w.width(), w.height()) == (width, height)
    yield w
    w.close()


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
    sizes = {}
    for title in window.page_titles():
        window.show_page(title)
        settle()
        sizes[title] = (window.width(), window.height())
    assert set(sizes.values()) == {(window.width(), window.height())}, sizes
    assert window.minimumSizeHint().width() <= 1280 and window.minimumSizeHint().height() <= 720


def test_every_page_is_listed(window):
    titles = window.page_titles()
    assert set(LABS) <= set(titles)
    assert {"Train", "Evaluate", "Compare", "Models"} <= set(titles)


@pytest.mark.parametrize("title", ["Train", "Evaluate", "Compare", "Models", *LABS])
def test_the_page_fits(window, title):
    problems = check_page(window, title)
    assert not problems, f"{title} at {window.width()}×{window.height()}:\n  " + "\n  ".join(problems)


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


@pytest.mark.parametrize("which", PAGE_SIZES)
@pytest.mark.parametrize("title", LABS)
def test_each_lab_fits_from_the_smallest_page_to_the_largest(qtbot, tasks, title, which):
    size = SMALLEST.get(title, PAGE_SIZES[which]) if which == "smallest" else PAGE_SIZES[which]
    labs = dict(create_lab_tabs(None, tasks.create))
    area = QScrollArea()  # as the window holds a page
    area.setWidgetResizable(True)
    area.setFrameShape(QScrollArea.Shape.NoFrame)
    for lab in labs.values():
        qtbot.addWidget(lab)
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
                    + no_text_cut(page))
        horizontal, vertical = scrolling(page)
        if horizontal or vertical:
            problems.append(f"needs scrolling: {page.width()}×{page.height()} px in {size[0]}×{size[1]}")
        assert not problems, f"{title} ({state}) at {size[0]}×{size[1]}:\n  " + "\n  ".join(problems)
