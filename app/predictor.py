"""Draw-and-predict wiring: canvas strokes -> MNIST-style 28×28 -> the current network -> probability bars.

Kept apart from the window so the path a stroke takes is easy to follow and to time. Prediction
runs on the GUI thread: one image through the network takes well under a millisecond, and
``Network.predict`` keeps no state, so it is safe while the worker thread trains the same network.
"""
from __future__ import annotations

import logging
import time

import numpy as np
from PySide6.QtCore import QObject, Signal

from engine.data.preprocess import is_blank, looks_like_digit, mnist_preprocess

log = logging.getLogger(__name__)

DRAW_PROMPT = "Draw a digit"


class Predictor(QObject):
    """Keeps the bars in step with the drawing and the network; ``predicted`` carries the probabilities (or None)."""

    predicted = Signal(object)
    imageChanged = Signal(object)  # the preprocessed 28×28 drawing, or None when blank

    def __init__(self, canvas, digit_image, bars, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.canvas = canvas
        self.digit_image = digit_image
        self.bars = bars
        self.network = None
        self.image28: np.ndarray | None = None  # the preprocessed drawing, None while blank
        self.probabilities: np.ndarray | None = None
        self.message: str | None = None
        self.last_seconds = 0.0  # how long the last drawing -> bars update took
        self._given: np.ndarray | None = None  # a ready 28×28 digit being put on the canvas (show_image)
        canvas.drawingChanged.connect(self.on_drawing)

    def set_network(self, network) -> None:
        self.network = network
        self.refresh()

    def show_image(self, img28) -> None:
        """Put a ready 28×28 digit (a test image, an opened picture) on the canvas and predict it as it is.

        Framing it again from the enlarged canvas could move it by a pixel; the network reads exactly
        the digit given (what ``digitlab predict`` reads for the same picture). Drawing on top of it
        afterwards makes it a drawing like any other.
        """
        self._given = np.asarray(img28, dtype=np.float32).reshape(28, 28)
        try:
            self.canvas.set_image(self._given)  # emits drawingChanged -> on_drawing, which takes _given
        finally:
            self._given = None

    def on_drawing(self, buffer: np.ndarray) -> None:
        start = time.perf_counter()
        given = self._given
        if is_blank(buffer if given is None else given):
            self.image28 = None
            self.digit_image.set_image(None)
        else:
            self.image28 = mnist_preprocess(buffer) if given is None else given.copy()
            self.digit_image.set_image(self.image28)
        self.imageChanged.emit(self.image28)
        self.refresh()
        self.last_seconds = time.perf_counter() - start

    def refresh(self) -> None:
        """Predict the current drawing again (after a training update or a new network)."""
        if self.image28 is None:
            self._show(None, DRAW_PROMPT)
            return
        if self.network is None:
            self._show(None, "No network yet: train one or open a weight file")
            return
        try:
            p = np.asarray(self.network.predict(self.image28), dtype=np.float64).reshape(-1)
        except ValueError as exc:  # e.g. a network whose input does not fit a 28×28 image
            log.debug("prediction failed: %s", exc)
            self._show(None, f"This network cannot read a 28×28 drawing: {exc}")
            return
        if not np.all(np.isfinite(p)):
            self._show(None, "The network's output is not a number (its weights may have diverged)")
            return
        self._show(p, _digit_message(p, self.image28))

    def _show(self, p: np.ndarray | None, message: str | None) -> None:
        self.probabilities, self.message = p, message
        self.bars.set_probabilities(p, message)
        self.predicted.emit(p)


def _digit_message(p: np.ndarray, image28: np.ndarray) -> str | None:
    """None when the drawing looks like something the model knows, else the reason it does not."""
    ok, reason = looks_like_digit(p, image28)
    return None if ok else reason
