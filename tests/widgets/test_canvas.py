"""Drawing on the canvas with simulated mouse events, and the small digit view."""
import numpy as np
import pytest

from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from engine.data.preprocess import mnist_preprocess
from widgets.canvas import PLACEHOLDER, CanvasError, DigitCanvas, stamp_segment
from widgets.digit_image import DigitImage, DigitImageError


def send(widget, kind, pos, button=Qt.MouseButton.LeftButton):
    pos = QPointF(*pos)
    buttons = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseButtonRelease else button
    if kind == QEvent.Type.MouseMove:
        button_arg = Qt.MouseButton.NoButton
    else:
        button_arg = button
    event = QMouseEvent(kind, pos, widget.mapToGlobal(pos), button_arg, buttons, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)


@pytest.fixture
def canvas(show):
    widget = show(DigitCanvas(), 280, 280)
    return widget


def test_drawing_emits_during_the_move_before_release(qtbot, canvas):
    assert canvas.is_blank()
    send(canvas, QEvent.Type.MouseButtonPress, (60, 60))
    with qtbot.waitSignal(canvas.drawingChanged, timeout=1000) as blocker:
        send(canvas, QEvent.Type.MouseMove, (200, 200))
    img = blocker.args[0]
    assert isinstance(img, np.ndarray) and img.shape == (280, 280) and img.dtype == np.float32
    assert not canvas.is_blank()
    # the stroke is continuous along the segment, not just dots at the two positions
    diagonal = np.array([img[i, i] for i in range(70, 190, 5)])
    assert diagonal.min() > 0.9
    assert img[60, 200] == 0.0 and img.max() <= 1.0
    with qtbot.waitSignal(canvas.strokeFinished, timeout=1000) as finished:
        send(canvas, QEvent.Type.MouseButtonRelease, (200, 200))
    assert finished.args[0][130, 130] > 0.9


def test_every_move_emits_and_the_emitted_array_is_a_copy(qtbot, canvas):
    received = []
    canvas.drawingChanged.connect(received.append)
    send(canvas, QEvent.Type.MouseButtonPress, (50, 140))
    for x in range(60, 240, 20):
        send(canvas, QEvent.Type.MouseMove, (x, 140))
    assert len(received) == 1 + 9  # the press makes a dot, then one per segment
    received[-1][:] = 0.0
    assert canvas.image()[140, 150] > 0.9
    assert received[2].sum() < received[5].sum()  # the stroke grows as the mouse moves


def test_moving_without_a_button_draws_nothing(canvas):
    send(canvas, QEvent.Type.MouseMove, (100, 100), button=Qt.MouseButton.NoButton)
    assert canvas.is_blank()


def test_right_click_clears(qtbot, canvas):
    send(canvas, QEvent.Type.MouseButtonPress, (100, 100))
    send(canvas, QEvent.Type.MouseMove, (150, 180))
    send(canvas, QEvent.Type.MouseButtonRelease, (150, 180))
    assert not canvas.is_blank()
    with qtbot.waitSignal(canvas.drawingChanged, timeout=1000) as blocker:
        qtbot.mouseClick(canvas, Qt.MouseButton.RightButton, pos=QPoint(10, 10))
    assert canvas.is_blank() and not blocker.args[0].any()


def test_clear_slot_and_set_image(qtbot, canvas):
    digit = np.zeros((28, 28), dtype=np.float32)
    digit[4:24, 12:16] = 1.0  # a "1"
    with qtbot.waitSignal(canvas.drawingChanged, timeout=1000) as blocker:
        canvas.set_image(digit)
    shown = blocker.args[0]
    assert shown.shape == (280, 280)
    assert shown[140, 140] > 0.9 and shown[140, 40] == 0.0
    np.testing.assert_allclose(mnist_preprocess(shown), mnist_preprocess(digit), atol=1e-5)
    canvas.set_image((digit * 255).astype(np.uint8).reshape(784))  # flat uint8 rows work too
    assert canvas.image()[140, 140] > 0.9
    with qtbot.waitSignal(canvas.drawingChanged, timeout=1000):
        canvas.clear()
    assert canvas.is_blank()
    with pytest.raises(CanvasError, match="shape"):
        canvas.set_image(np.zeros((2, 3, 4)))
    with pytest.raises(CanvasError, match="NaN"):
        canvas.set_image(np.full((28, 28), np.nan))
    assert canvas.is_blank()  # a rejected image loses nothing and changes nothing


def test_drawing_maps_to_the_square_when_the_widget_is_not_square(qtbot, canvas):
    canvas.resize(560, 280)  # the square is 280 wide, centred: x from 140 to 420
    send(canvas, QEvent.Type.MouseButtonPress, (280, 140))
    send(canvas, QEvent.Type.MouseButtonRelease, (280, 140))
    img = canvas.image()
    ys, xs = np.nonzero(img > 0.5)
    assert abs(ys.mean() - 140) < 2 and abs(xs.mean() - 140) < 2


def test_brush_radius_and_hints(canvas):
    assert canvas.brush_radius == pytest.approx(10.0)
    canvas.brush_radius = 4
    assert canvas.brush_radius == 4.0
    with pytest.raises(CanvasError, match="brush radius"):
        canvas.brush_radius = 0
    assert canvas.minimumSizeHint().width() >= 200 and canvas.sizeHint().width() == 280
    assert "right-click" in canvas.toolTip().lower()


def test_soft_brush_profile():
    buf = np.zeros((100, 100), dtype=np.float32)
    assert stamp_segment(buf, (20.0, 50.0), (80.0, 50.0), radius=10.0)
    column = buf[:, 50]
    assert column[50] == pytest.approx(1.0) and column[49] == pytest.approx(1.0)
    assert 0.3 < column[60] < 0.7  # about half ink at the radius: a soft edge
    assert column[30] == 0.0 and column[70] == 0.0
    assert np.all(np.diff(column[50:70]) <= 1e-6)  # falls off monotonically
    assert not stamp_segment(buf, (-50.0, -50.0), (-40.0, -40.0), radius=3.0)  # fully outside


def test_digit_image_shows_and_clears(qtbot):
    view = DigitImage(caption="what the network sees")
    qtbot.addWidget(view)
    assert view.image() is None
    digit = np.zeros((28, 28), dtype=np.float32)
    digit[5:20, 10] = 0.5
    view.set_image(digit)
    np.testing.assert_allclose(view.image(), digit, atol=1 / 255)
    view.resize(140, 170)
    grabbed = view.grab().toImage()
    assert grabbed.width() == 140
    view.set_image(None)
    assert view.image() is None
    with pytest.raises(DigitImageError, match="shape"):
        view.set_image(np.zeros((3, 3, 3)))


def test_a_blank_canvas_says_what_to_do_and_how(canvas):
    assert canvas.is_blank()
    assert "Draw a digit here" in PLACEHOLDER and "right-click clears" in PLACEHOLDER
    blank = canvas.grab().toImage()
    centre = [blank.pixelColor(x, y).lightness() for x in range(100, 180, 2) for y in range(120, 160, 2)]
    assert max(centre) > 60  # the invitation is painted in the middle of the black pad
    assert "left mouse button" in canvas.toolTip()
