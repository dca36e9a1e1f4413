"""Draw and predict: strokes on the canvas reach the current network and the probability bars."""
import numpy as np
import pytest

from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from app.main_window import MainWindow
from app.predictor import DRAW_PROMPT
from engine.nn.network import make_mlp


@pytest.fixture
def window(qtbot, quiet_window):
    quiet_window.show()
    qtbot.waitExposed(quiet_window)
    return quiet_window


def _mouse(widget, kind, x, y, button, buttons):
    pos = QPointF(x, y)
    event = QMouseEvent(kind, pos, widget.mapToGlobal(pos), button, buttons, Qt.NoModifier)
    QApplication.sendEvent(widget, event)


def draw_stroke(canvas, points, seen=None):
    """Press, move through ``points`` (fractions of the canvas), release; returns emissions seen before release."""
    w, h = canvas.width(), canvas.height()
    xy = [(fx * w, fy * h) for fx, fy in points]
    left = Qt.LeftButton
    _mouse(canvas, QEvent.MouseButtonPress, *xy[0], left, left)
    for x, y in xy[1:]:
        _mouse(canvas, QEvent.MouseMove, x, y, Qt.NoButton, left)
    before_release = None if seen is None else len(seen)
    _mouse(canvas, QEvent.MouseButtonRelease, *xy[-1], left, Qt.NoButton)
    return before_release


SEVEN = [(0.3, 0.25), (0.5, 0.25), (0.7, 0.25), (0.6, 0.45), (0.5, 0.65), (0.45, 0.8)]


def test_drawing_updates_the_probabilities_while_the_stroke_goes_on(qtbot, window):
    predictor = window.draw.predictor
    assert predictor.probabilities is None and predictor.message == DRAW_PROMPT
    updates = []
    predictor.predicted.connect(updates.append)
    before_release = draw_stroke(window.draw.canvas, SEVEN, seen=updates)
    assert before_release >= len(SEVEN) - 1  # bars follow every stroke segment, not only the release
    p = predictor.probabilities
    assert p is not None and p.shape == (10,)
    np.testing.assert_allclose(p.sum(), 1.0, rtol=1e-5)
    np.testing.assert_allclose(p, window.session.network.predict(predictor.image28), rtol=1e-6)
    assert predictor.image28.shape == (28, 28) and predictor.image28.max() > 0.5


def test_clear_and_right_click_remove_the_prediction(qtbot, window):
    draw_stroke(window.draw.canvas, SEVEN)
    assert window.draw.predictor.probabilities is not None
    window.draw.clear_button.click()
    assert window.draw.predictor.probabilities is None and window.draw.predictor.image28 is None
    draw_stroke(window.draw.canvas, SEVEN)
    _mouse(window.draw.canvas, QEvent.MouseButtonPress, 20, 20, Qt.RightButton, Qt.RightButton)
    assert window.draw.canvas.is_blank()
    assert window.draw.predictor.probabilities is None


def test_a_new_network_re_predicts_the_same_drawing(qtbot, window):
    draw_stroke(window.draw.canvas, SEVEN)
    first = window.draw.predictor.probabilities.copy()
    other = make_mlp([784, 30, 10], seed=7)
    window.session.set_network(other, "another one")
    second = window.draw.predictor.probabilities
    assert not np.allclose(first, second)
    np.testing.assert_allclose(second, other.predict(window.draw.predictor.image28), rtol=1e-6)
    assert "another one" in window.draw.model_label.text()


def test_a_blob_is_not_taken_for_a_digit(qtbot, window):
    window.draw.canvas.set_image(np.ones((28, 28), dtype=np.float32))
    assert window.draw.predictor.probabilities is not None  # bars still show
    assert "blob" in (window.draw.predictor.message or "")


def test_a_test_image_sent_by_a_tab_lands_on_the_canvas(qtbot, window):
    digit = np.zeros((28, 28), dtype=np.float32)
    digit[6:22, 13:16] = 1.0  # a "1"
    window.session.show_on_canvas(digit)
    assert not window.draw.canvas.is_blank()
    assert window.draw.predictor.probabilities is not None


def test_draw_to_bars_is_fast(qtbot, window):
    draw_stroke(window.draw.canvas, SEVEN)
    times = []
    for i in range(20):
        draw_stroke(window.draw.canvas, [(0.4, 0.3 + i / 100), (0.45, 0.5)])
        times.append(window.draw.predictor.last_seconds)
    assert np.median(times) < 0.02  # budget 10 ms on a quiet machine; generous for a shared one


def test_the_drawing_reaches_the_models_tab_and_the_loss_lab(qtbot):
    w = MainWindow(load_dataset_on_start=False, with_tabs=True)
    qtbot.addWidget(w)
    titles = {w.tabs.tabText(i) for i in range(w.tabs.count())}
    assert {"Training", "Loss functions", "Evaluation", "Compare", "Models"} <= titles
    assert w.minimumSizeHint().width() <= 1280  # fits a laptop screen, whatever the pages want
    images, probs = [], []
    w.session.canvasImageChanged.connect(images.append)
    w.session.predictionChanged.connect(probs.append)
    w.show()
    qtbot.waitExposed(w)
    draw_stroke(w.draw.canvas, SEVEN)
    assert images and images[-1].shape == (28, 28)
    np.testing.assert_array_equal(images[-1], w.draw.predictor.image28)
    np.testing.assert_allclose(probs[-1], w.draw.predictor.probabilities)
    w.draw.clear_button.click()
    assert images[-1] is None and probs[-1] is None
    w.close()
