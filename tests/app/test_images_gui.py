"""Pictures of digits in the window: File ▸ Open image… and drops put them on the canvas as if drawn;
bad files give the one error dialog; the last picture asked for wins."""
from __future__ import annotations

import threading

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
from PySide6.QtGui import QDropEvent

import app.controllers.images as images_module
from engine.data.images import load_image


@pytest.fixture
def window(quiet_window):
    return quiet_window


def digit_png(path, seven: bool = False):
    """Dark ink on white paper, as a photo or scan of a digit is: a 1, or a 7."""
    pixels = np.full((200, 160), 255, dtype=np.uint8)
    pixels[30:170, 70:90] = 20
    if seven:
        pixels[30:50, 30:130] = 20
    Image.fromarray(pixels).save(path)
    return path


def drop(target, *paths) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    target.dropEvent(QDropEvent(QPoint(10, 10).toPointF(), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier))


def test_open_image_puts_the_picture_on_the_canvas_like_a_drawing(qtbot, window, tmp_path):
    path = digit_png(tmp_path / "one.png")
    window.ask_image_path = lambda: str(path)
    assert window.action_open_image.text() == "Open &image…"
    with qtbot.waitSignal(window.images.imageOpened, timeout=10_000) as opened:
        window.action_open_image.trigger()
    expected = load_image(path)
    np.testing.assert_allclose(opened.args[1], expected)
    predictor = window.draw.predictor
    assert not window.draw.canvas.is_blank()
    np.testing.assert_array_equal(predictor.image28, expected)  # read as opened, not framed again
    np.testing.assert_allclose(predictor.probabilities, window.session.network.predict(predictor.image28),
                               rtol=1e-5)
    assert "one.png" in window.statusBar().currentMessage() and window.errors == []


def test_a_picture_dropped_on_the_canvas_or_the_window_is_read(qtbot, window, tmp_path):
    one, seven = digit_png(tmp_path / "one.png"), digit_png(tmp_path / "seven.jpg", seven=True)
    with qtbot.waitSignal(window.images.imageOpened, timeout=10_000) as opened:
        drop(window.draw, one)
    assert opened.args[0] == str(one)
    with qtbot.waitSignal(window.images.imageOpened, timeout=10_000) as opened:
        drop(window, seven)  # an image suffix on the window: the canvas, not the weight files
    assert opened.args[0] == str(seven) and window.weightfiles.pending() == 0
    np.testing.assert_array_equal(window.draw.predictor.image28, load_image(seven))


def test_a_file_that_is_no_picture_gives_one_error_and_keeps_the_canvas(qtbot, window, tmp_path):
    fake = tmp_path / "drawing.png"
    fake.write_bytes(b"%!PS-Adobe-3.0\n/Helvetica findfont\n{ } loop\n")  # PostScript named .png
    digit = np.zeros((28, 28), dtype=np.float32)
    digit[4:24, 12:16] = 1.0
    window.draw.canvas.set_image(digit)
    before = window.draw.predictor.image28.copy()
    window.images.load(fake)
    qtbot.waitUntil(lambda: bool(window.errors), timeout=10_000)
    [(title, text)] = window.errors
    assert title == "Could not open the image" and str(fake) in text and "canvas is unchanged" in text
    np.testing.assert_array_equal(window.draw.predictor.image28, before)


def test_a_blank_picture_says_no_digit_was_found(qtbot, window, tmp_path):
    path = tmp_path / "paper.png"
    Image.new("L", (64, 64), 230).save(path)
    with qtbot.waitSignal(window.images.imageOpened, timeout=10_000):
        window.images.load(path)
    assert window.draw.canvas.is_blank() and window.draw.predictor.probabilities is None
    assert "No digit found in paper.png" in window.statusBar().currentMessage()


def test_the_last_picture_asked_for_wins(qtbot, window, tmp_path, monkeypatch):
    slow, fast = digit_png(tmp_path / "slow.png", seven=True), digit_png(tmp_path / "fast.png")
    release = threading.Event()

    def reader(path):
        if str(path) == str(slow):
            release.wait(10)  # the first picture takes longer than the second
        return load_image(path)

    monkeypatch.setattr(images_module, "load_image", reader)
    shown = []
    window.images.imageOpened.connect(lambda path, image: shown.append(path))
    window.images.load(slow)
    with qtbot.waitSignal(window.images.imageOpened, timeout=10_000):
        window.images.load(fast)
    release.set()
    qtbot.waitUntil(lambda: not window.tasks.running(), timeout=10_000)
    qtbot.wait(20)
    assert shown == [str(fast)]
    np.testing.assert_array_equal(window.draw.predictor.image28, load_image(fast))
