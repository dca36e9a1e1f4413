"""Draw and predict: strokes on the canvas reach the current network, the probability bars and the verdict line."""
import numpy as np
import pytest

from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication, QLabel, QWidget

from app.draw_panel import TONES
from app.main_window import MainWindow
from app.predictor import DRAW_BIGGER, EMPTY, NOT_A_DIGIT, UNTRAINED, UNTRAINED_NOT_A_DIGIT, not_a_digit_text
from engine.data.dataset import FASHION_CLASSES, Dataset
from engine.data.digit_check import FEATURES, DigitCheck, Finding
from engine.nn.network import make_mlp
from engine.train.config import TrainConfig
from engine.weightfiles.save import save_weights
from widgets.canvas import PLACEHOLDER


@pytest.fixture
def window(qtbot, quiet_window):
    quiet_window.show()
    qtbot.waitExposed(quiet_window)
    return quiet_window


@pytest.fixture
def trained_window(window, trained):
    """The window predicting with a network trained on real digits (as if opened from a file)."""
    window.session.set_network(trained[1], "trained.npz: 784-30-10")
    return window


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
# the "dense scribble": back and forth across the box, rows close together
SCRIBBLE = [(0.2 if i % 2 == 0 else 0.8, 0.2 + 0.6 * i / 15) for i in range(16)]


def test_drawing_updates_the_probabilities_while_the_stroke_goes_on(qtbot, window):
    predictor = window.draw.predictor
    assert predictor.probabilities is None and predictor.verdict.kind == "empty" and predictor.message == EMPTY
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
    assert window.draw.verdict.full_text() == EMPTY
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


def test_a_dense_scribble_is_not_a_digit_and_the_panel_says_why(qtbot, trained_window):
    draw = trained_window.draw
    draw_stroke(draw.canvas, SCRIBBLE)
    assert draw.predictor.probabilities is not None  # the bars still show what the network says
    assert draw.predictor.verdict.kind == "not a digit"
    text = draw.verdict.full_text()
    assert text.startswith(NOT_A_DIGIT + ": ") and "strokes too thick" in text
    assert draw.verdict.tone() == "error"
    assert "MNIST" in draw.verdict.toolTip() and "1 in" in draw.verdict.toolTip()  # how rare, among real digits


def test_a_blob_and_a_star_are_not_digits(qtbot, trained_window):
    draw = trained_window.draw
    draw.canvas.set_image(np.ones((28, 28), dtype=np.float32))
    assert draw.predictor.probabilities is not None and draw.predictor.verdict.kind == "not a digit"
    assert "filled in" in draw.verdict.full_text()
    draw.clear_button.click()
    star = [(0.5, 0.15), (0.7, 0.8), (0.2, 0.4), (0.8, 0.4), (0.3, 0.8), (0.5, 0.15)]
    draw_stroke(draw.canvas, star)
    assert draw.predictor.verdict.kind == "not a digit"
    assert "shaped unlike a digit" in draw.verdict.full_text()
    assert "shaped unlike any MNIST training digit: about 1 in" in draw.verdict.toolTip()  # the long story


def test_a_digit_drawn_small_is_asked_to_be_drawn_bigger(qtbot, trained_window):
    small_z = [(0.48, 0.45), (0.52, 0.45), (0.55, 0.48), (0.52, 0.51), (0.48, 0.51), (0.45, 0.54), (0.48, 0.57),
               (0.52, 0.57)]  # about 30 of the pad's 280 pixels: the pen's strokes are fat for its size
    draw_stroke(trained_window.draw.canvas, small_z)
    assert trained_window.draw.predictor.verdict.kind == "not a digit"
    assert trained_window.draw.verdict.full_text().endswith(DRAW_BIGGER)
    assert "It is drawn small" in trained_window.draw.verdict.toolTip()


def scaled(strokes, factor):
    """Strokes shrunk by ``factor`` about the pad's centre."""
    return [[(0.5 + (x - 0.5) * factor, 0.5 + (y - 0.5) * factor) for x, y in points] for points in strokes]


SMALL_DIGITS = {  # the reviewer's 4, 6 and 8 at 40 % of their size: only the 6 and the 8 were asked to be bigger
    "4": [[(0.55, 0.2), (0.3, 0.6), (0.7, 0.6)], [(0.6, 0.35), (0.6, 0.82)]],
    "6": [[(0.6, 0.2), (0.42, 0.38), (0.35, 0.6), (0.42, 0.78), (0.57, 0.78), (0.63, 0.63), (0.52, 0.52), (0.38, 0.6)]],
    "8": [[(0.5 + 0.13 * np.sin(2 * t * np.pi / 40), 0.5 - 0.29 * np.cos(t * np.pi / 40)) for t in range(81)]],
}


@pytest.mark.parametrize("pen", [1.0, 1.4])
@pytest.mark.parametrize("digit", list(SMALL_DIGITS))
def test_every_small_digit_flagged_is_asked_to_be_drawn_bigger(qtbot, trained_window, digit, pen):
    draw = trained_window.draw
    draw.canvas.brush_radius *= pen  # 1.4: a broader pen, so the strokes are too thick for sure
    for points in scaled(SMALL_DIGITS[digit], 0.4):
        draw_stroke(draw.canvas, points)
    verdict = draw.predictor.verdict
    if pen > 1:
        assert verdict.kind == "not a digit" and "strokes too thick" in verdict.text
    if verdict.kind == "not a digit":  # the 4 (35 % of the pad) was told "filled in" while the 6 and 8 got the hint
        assert verdict.text.endswith(DRAW_BIGGER), verdict
        assert "filled in" not in verdict.text  # the pen made the strokes thick, not filling in


def test_a_digit_drawn_at_full_size_is_never_asked_to_be_bigger(qtbot, trained_window):
    draw = trained_window.draw
    draw_stroke(draw.canvas, SCRIBBLE)  # spans 60 % of the pad: thick strokes mean filled in, not drawn small
    assert draw.predictor.verdict.kind == "not a digit"
    assert DRAW_BIGGER not in draw.verdict.full_text() and "filled in" in draw.verdict.full_text()


def test_a_real_digit_reads_as_the_networks_answer(qtbot, trained_window, trained):
    dataset, net = trained
    p = net.predict(dataset.x_test[:200])
    i = int(np.flatnonzero((p.argmax(axis=1) == dataset.t_test[:200]) & (p.max(axis=1) > 0.9))[0])
    trained_window.session.show_on_canvas(dataset.x_test[i].reshape(28, 28))
    verdict = trained_window.draw.predictor.verdict
    assert verdict.kind == "digit", verdict
    assert verdict.text.startswith(f"Reads as {dataset.t_test[i]} (") and verdict.text.endswith(" %).")
    assert trained_window.draw.verdict.tone() == "plain"


def test_a_torn_network_is_shown_as_unsure_not_as_not_a_digit(qtbot, trained_window):
    torn = make_mlp([784, 30, 10], seed=0)  # answers the same whatever it is shown: 4 (40 %) or 9 (20 %)
    params = torn.params
    params["W2"] = np.zeros_like(params["W2"])
    params["b2"] = np.log([0.05, 0.05, 0.05, 0.05, 0.40, 0.05, 0.05, 0.05, 0.05, 0.20]).astype(params["b2"].dtype)
    torn.set_params(params)
    trained_window.session.set_network(torn, "torn.npz")
    draw_stroke(trained_window.draw.canvas, SEVEN)
    verdict = trained_window.draw.predictor.verdict
    assert verdict.kind == "unsure" and verdict.text == "Unsure: 4 (40.0 %) or 9 (20.0 %)."


def test_an_untrained_network_says_so_until_it_trains(qtbot, window):
    window.training.reset_network()  # what a new window starts with
    assert window.session.network_label.endswith("(untrained)")
    draw_stroke(window.draw.canvas, SEVEN)
    assert window.draw.predictor.verdict.kind == "untrained"
    assert window.draw.verdict.full_text().startswith(UNTRAINED)
    assert "does not look like any digit" not in window.draw.verdict.full_text()
    window.session.weightsUpdated.emit()  # a training report: it has learned something
    assert window.draw.predictor.verdict.kind != "untrained"
    window.training.reset_network()
    assert window.draw.predictor.verdict.kind == "untrained"


def test_an_untrained_network_still_says_when_the_drawing_is_not_a_digit(qtbot, window):
    window.training.reset_network()
    draw_stroke(window.draw.canvas, SCRIBBLE)
    text = window.draw.verdict.full_text()
    assert text == UNTRAINED_NOT_A_DIGIT + ": strokes too thick (filled in)." or \
        text.startswith(UNTRAINED_NOT_A_DIGIT + ": strokes too thick (filled in), ")
    assert not window.draw.verdict.is_cut()  # the why is read whole, not "shaped unlik…"
    assert window.draw.verdict.toolTip().startswith(UNTRAINED)  # the longer story: what to do about it
    assert "Not like a digit: strokes too thick (filled in)" in window.draw.verdict.toolTip()


def every_not_a_digit_check():
    """A DigitCheck for every pair of findings (two-digit counts), torn or not."""
    values = {"stroke width": 5.0, "pieces": 12, "loops": 10, "shape": 9.0}
    for first in FEATURES:
        for second in [None, *[f for f in FEATURES if f != first]]:
            findings = tuple(Finding(f, values[f], 4.0) for f in (first, second) if f is not None)
            for torn in (False, True):
                yield DigitCheck(False, findings, 4.0, torn)


def test_every_verdict_fits_its_lines_at_1280x720(qtbot):
    w = MainWindow(load_dataset_on_start=False)
    qtbot.addWidget(w)
    w.setWindowState(Qt.WindowState.WindowNoState)
    w.resize(1280, 720)
    w.show()
    qtbot.waitExposed(w)
    qtbot.wait(10)
    verdict = w.draw.verdict
    assert 250 <= verdict.width() <= 340  # the drawing column's width at this screen
    texts = [UNTRAINED, EMPTY]
    for check in every_not_a_digit_check():
        for small in (False, True):
            texts.append(not_a_digit_text(check, trained=True, drawn_small=small))
            if not check.network_unsure:  # an untrained network's answers are not asked
                texts.append(not_a_digit_text(check, trained=False, drawn_small=small))
    assert len(texts) > 90
    cut = []
    for text in texts:
        verdict.set_verdict(text, TONES["not a digit"], "details")
        if verdict.is_cut():
            cut.append(text)
    assert cut == []
    w.close()


def test_the_verdict_never_moves_the_bars(qtbot, trained_window):
    draw = trained_window.draw
    draw.resize(300, draw.height())  # a narrow column: the longest verdicts wrap onto every line they have
    qtbot.wait(1)
    places, verdicts = set(), []
    for strokes in ([], [SEVEN], [SCRIBBLE], [SEVEN, SCRIBBLE]):  # blank, a digit, not a digit (with reasons)
        draw.clear_button.click()
        for points in strokes:
            draw_stroke(draw.canvas, points)
        qtbot.wait(1)
        places.add((draw.bars.geometry().getRect(), draw.verdict.geometry().getRect()))
        verdicts.append(draw.predictor.verdict.kind)
    assert verdicts == ["empty", "digit", "not a digit", "not a digit"]
    assert len(places) == 1, places
    assert draw.bars.message() == ""  # the bars carry no message of their own to push them down
    height = draw.verdict.height()
    trained_window.training.reset_network()  # the longest of all: not trained yet, and not like a digit either
    assert draw.predictor.verdict.kind == "untrained" and draw.verdict.height() == height


def test_the_canvas_and_the_bars_keep_their_place_through_a_run_a_reset_and_a_file(qtbot, window, small_dataset,
                                                                                  trained, tmp_path):
    window.setWindowState(Qt.WindowState.WindowNoState)
    window.resize(1280, 720)  # a laptop screen: the canvas is as tall as the column lets it be
    window.datasets.use(small_dataset)
    window.panel.set_config(TrainConfig(hidden=[20], batch_size=100, epochs=2, optimizer="adam", lr=0.001))
    window.panel.set_pace(400)  # steps per second: each state below lasts long enough to be seen
    draw = window.draw
    draw_stroke(draw.canvas, SEVEN)

    def place():
        qtbot.wait(20)
        return [(w.mapTo(window, QPoint(0, 0)), w.size()) for w in (draw.canvas, draw.bars, draw.model_label)]

    places, labels = [place()], [draw.model_label.full_text()]

    def seen():
        places.append(place())
        labels.append(draw.model_label.full_text())

    with qtbot.waitSignal(window.session.trainingStateChanged, timeout=10_000):
        assert window.training.start()
    seen()  # "(training)", a longer name: optimizer, learning rate, batch, seed
    with qtbot.waitSignal(window.session.epochFinished, timeout=30_000):
        pass
    qtbot.waitUntil(lambda: window.session.test_accuracy is not None, timeout=30_000)
    seen()  # one more line: the test accuracy
    qtbot.waitUntil(lambda: window.session.training_state == "finished", timeout=60_000)
    seen()
    window.training.reset_network()
    seen()
    path = save_weights(trained[1], tmp_path / ("a-file-with-a-very-long-name-" + "x" * 120 + ".npz"))
    with qtbot.waitSignal(window.session.networkChanged, timeout=20_000):
        window.weightfiles.load(path)
    qtbot.waitUntil(lambda: window.session.test_accuracy is not None, timeout=30_000)
    seen()  # the file's name, how it was read, its test accuracy: four lines' worth, or more
    assert all(p == places[0] for p in places), places
    assert any("(training)" in t for t in labels) and any("Test accuracy" in t for t in labels)
    assert "a-file-with-a-very-long-name" in labels[-1] and draw.model_label.is_cut()
    assert "a-file-with-a-very-long-name-xxx" in draw.model_label.toolTip()  # all of it, in the tooltip


def test_draw_a_digit_is_said_once(qtbot, window):
    shown = [w.text() for w in window.draw.findChildren(QLabel) if w.isVisible()]
    shown += [window.draw.bars.message(), PLACEHOLDER]  # the bars' message and what the blank canvas paints
    assert sum(text.count("Draw a digit") for text in shown) == 1, shown


def test_every_part_of_the_draw_panel_explains_itself(qtbot, trained_window):
    draw_stroke(trained_window.draw.canvas, SEVEN)
    parts = [w for w in trained_window.draw.findChildren(QWidget) if w.isVisible()]
    assert len(parts) >= 7  # canvas, image, caption, Clear, verdict, bars, network label
    assert [type(w).__name__ for w in parts if not w.toolTip()] == []


def test_classes_that_are_not_digits_are_not_checked_against_digits(qtbot, trained_window):
    x = np.zeros((10, 784), np.float32)
    t = np.arange(10)
    trained_window.session.set_dataset(Dataset("fashion", x, t, x, t, classes=list(FASHION_CLASSES)))
    trained_window.draw.canvas.set_image(np.ones((28, 28), dtype=np.float32))
    verdict = trained_window.draw.predictor.verdict
    assert verdict.kind in ("digit", "unsure") and "not compared with MNIST digits" in verdict.details
    assert trained_window.draw.predictor.check is None


def test_a_network_with_other_classes_than_the_dataset_says_so(qtbot, trained_window):
    x = np.zeros((4, 784), np.float32)
    trained_window.session.set_dataset(Dataset("two", x, np.arange(4) % 2, x, np.arange(4) % 2, classes=["a", "b"]))
    draw_stroke(trained_window.draw.canvas, SEVEN)  # the 10-output network meets 2 classes: no bars, a reason
    assert trained_window.draw.predictor.probabilities is None
    assert trained_window.draw.predictor.verdict.kind == "error"
    assert "10 outputs for 2 classes" in trained_window.draw.verdict.full_text()


def test_a_test_image_sent_by_a_tab_lands_on_the_canvas(qtbot, window):
    digit = np.zeros((28, 28), dtype=np.float32)
    digit[6:22, 13:16] = 1.0  # a "1"
    window.session.show_on_canvas(digit)
    assert not window.draw.canvas.is_blank()
    assert window.draw.predictor.probabilities is not None


def test_draw_to_bars_is_fast(qtbot, trained_window):
    draw_stroke(trained_window.draw.canvas, SEVEN)
    times = []
    for i in range(20):
        draw_stroke(trained_window.draw.canvas, [(0.4, 0.3 + i / 100), (0.45, 0.5)])
        times.append(trained_window.draw.predictor.last_seconds)
    assert trained_window.draw.predictor.check is not None  # the digit check ran on every update
    assert np.median(times) < 0.02  # budget 10 ms on a quiet machine; generous for a shared one


def test_the_drawing_reaches_the_models_page_and_the_loss_lab(qtbot):
    w = MainWindow(load_dataset_on_start=False, with_tabs=True)
    qtbot.addWidget(w)
    assert {"Train", "Evaluate", "Compare", "Models", "Loss functions"} <= set(w.page_titles())
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
