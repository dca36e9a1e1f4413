"""The per-class probability bars."""
import time

import numpy as np
import pytest

from PySide6.QtGui import QColor

from widgets.probability_bars import MESSAGE_COLOUR, TOP_COLOUR, ProbabilityBars, ProbabilityBarsError


@pytest.fixture
def bars(show):
    return show(ProbabilityBars(), 300, 300)


def colour_count(widget, colour: QColor) -> int:
    img = widget.grab().toImage()
    target = colour.rgb()
    return sum(img.pixel(x, y) == target for x in range(0, img.width(), 2) for y in range(0, img.height(), 2))


def test_top_class_is_highlighted(bars):
    p = np.full(10, 0.02)
    p[3] = 0.82
    bars.set_probabilities(p)
    assert bars.top_class() == 3
    assert bars.message() == ""
    np.testing.assert_allclose(bars.probabilities(), p)
    assert colour_count(bars, TOP_COLOUR) > 50  # the winning bar is painted in the highlight colour
    p2 = np.roll(p, 4)
    bars.set_probabilities(p2)
    assert bars.top_class() == 7


def test_highlight_grows_with_probability(bars):
    p = np.full(10, 0.05)
    p[0] = 0.55
    bars.set_probabilities(p)
    small = colour_count(bars, TOP_COLOUR)
    p = np.full(10, 0.01)
    p[0] = 0.91
    bars.set_probabilities(p)
    assert colour_count(bars, TOP_COLOUR) > small * 1.3


def test_none_shows_no_prediction(bars):
    bars.set_probabilities(np.eye(10)[5])
    bars.set_probabilities(None)
    assert bars.top_class() is None and bars.probabilities() is None
    assert bars.message() == ""  # no prompt of its own: whoever shows the bars says what to do
    assert colour_count(bars, TOP_COLOUR) == 0
    bars.set_probabilities(None, "Load a model first")
    assert bars.message() == "Load a model first"


def test_message_shown_while_bars_still_show(bars):
    bars.set_probabilities(np.full(10, 0.1), "This does not look like any digit the model knows")
    assert bars.top_class() == 0 and "does not look" in bars.message()
    assert bars.grab().width() == 300
    assert colour_count(bars, MESSAGE_COLOUR) > 0  # painted above the bars, in the message colour


def first_bar_row(widget) -> int:
    """The top pixel row of the highlighted bar (the winning class is 0, the first row)."""
    img = widget.grab().toImage()
    rows = [y for y in range(img.height()) if any(img.pixel(x, y) == TOP_COLOUR.rgb()
                                                  for x in range(0, img.width(), 3))]
    return rows[0]


def test_a_message_coming_or_going_never_moves_the_bars(bars):
    p = np.eye(10)[0] * 0.9 + 0.01
    bars.set_probabilities(p)
    without = first_bar_row(bars)
    bars.set_probabilities(p, "A message")
    assert first_bar_row(bars) == without
    bars.set_probabilities(p, "A long message that would need many lines at this width " * 6)
    assert first_bar_row(bars) == without  # cut short with "…" in its fixed area instead


def test_without_a_message_area_messages_are_not_painted(show):
    bars = show(ProbabilityBars(message_lines=0), 300, 300)
    p = np.eye(10)[0] * 0.9 + 0.01
    bars.set_probabilities(p)
    top = first_bar_row(bars)
    bars.set_probabilities(p, "Not painted")
    assert bars.message() == "Not painted" and colour_count(bars, MESSAGE_COLOUR) == 0
    assert first_bar_row(bars) == top
    assert bars.message_lines() == 0
    assert ProbabilityBars(message_lines=2).minimumSizeHint().height() > bars.minimumSizeHint().height()


def test_labels_and_bad_input(bars):
    names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    bars.set_probabilities(np.eye(10)[2])
    bars.set_labels(names)
    assert bars.labels() == names and bars.top_class() == 2
    bars.set_labels(["cat", "dog"])  # the shown 10 values no longer fit: dropped
    assert bars.top_class() is None
    with pytest.raises(ProbabilityBarsError, match="3 probabilities for 2 classes"):
        bars.set_probabilities(np.ones(3) / 3)
    with pytest.raises(ProbabilityBarsError, match="NaN"):
        bars.set_probabilities(np.array([np.nan, 1.0]))
    with pytest.raises(ProbabilityBarsError, match=r"\[0, 1\]"):
        bars.set_probabilities(np.array([-0.5, 1.5]))
    with pytest.raises(ProbabilityBarsError, match="at least one"):
        bars.set_labels([])


def test_several_models_side_by_side(bars):
    a = np.eye(10)[4] * 0.9 + 0.01
    b = np.eye(10)[9] * 0.6 + 0.04
    bars.set_series({"MLP": a, "Deep": b, "Untrained": None})
    assert bars.series_names() == ["MLP", "Deep", "Untrained"]
    assert bars.top_class("MLP") == 4 and bars.top_class("Deep") == 9
    assert bars.top_class("Untrained") is None
    assert bars.top_class() == 4  # the first shown series
    assert bars.grab().width() == 300
    with pytest.raises(ProbabilityBarsError, match="no series called 'CNN'"):
        bars.top_class("CNN")
    bars.set_series({"MLP": None})
    assert bars.message() == "" and bars.top_class() is None


def test_update_is_fast(bars):
    bars.show()
    rng = np.random.default_rng(0)
    ps = rng.dirichlet(np.ones(10), size=50)
    bars.set_probabilities(ps[0])
    bars.repaint()
    start = time.perf_counter()
    for p in ps:
        bars.set_probabilities(p)
        bars.repaint()  # paint synchronously: the real cost of one update
    assert (time.perf_counter() - start) / len(ps) < 0.002
