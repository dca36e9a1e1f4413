"""Draw-and-predict wiring: canvas strokes -> MNIST-style 28×28 -> the current network -> bars and a verdict.

Kept apart from the window so the path a stroke takes is easy to follow and to time. Prediction
runs on the GUI thread: one image through the network takes well under a millisecond, and
``Network.predict`` keeps no state, so it is safe while the worker thread trains the same network.

Besides the ten probabilities, every update gives a ``Verdict``, one short line on what to make of
them: the network's answer, or that it is not trained yet, or that it is torn, or that the drawing
is not like a digit and why (``engine.data.digit_check``, about 1 ms per update).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QObject, Signal

from engine.data.digit_check import (MEASURED_NON_DIGITS_FLAGGED, MEASURED_REAL_FLAGGED, UNSURE, DigitCheck,
                                     DigitCheckError, DigitReference, default_reference)
from engine.data.dataset import DIGIT_CLASSES
from engine.data.preprocess import ink_bounds, is_blank, mnist_preprocess
from widgets.probability_bars import percent_text

log = logging.getLogger(__name__)

EMPTY = "Nothing drawn yet."
NO_NETWORK = "No network yet: train one (Start) or open a weight file."
UNTRAINED = "Not trained yet: its answers are guesses. Start (F5) trains it, or open a weight file."
NOT_A_DIGIT = "Not like a digit"
UNTRAINED_NOT_A_DIGIT = "Not trained yet, and not like a digit"
DRAW_BIGGER = "Drawn small: draw it bigger."
# ink spanning less of the canvas than this is "drawn small": MNIST digits fill 20 of their 28 pixels (71 %), and
# below half the pad the pen's fixed width makes every stroke thick once the drawing is scaled up to MNIST's size
SMALL_DRAWING = 0.5
SHORT_REASONS = {"stroke width": "strokes too thick (filled in)", "shape": "shaped unlike a digit"}  # verdict words


def check_help(reference: DigitReference) -> str:
    """How the 'not a digit' check decides, with the reference's own thresholds and the measured rates."""
    return ("The drawing is compared with MNIST's 60,000 training digits: its stroke width, separate pieces, "
            "closed loops and shape (the distance to the nearest real digits). It is 'not like a digit' when one "
            f"of them is as rare as in 1 of {10 ** reference.flag_score:,.0f} real digits, or 1 of "
            f"{10 ** reference.doubt_score:,.0f} while the network is torn (top answer under {UNSURE:.0%}). "
            f"Measured: {MEASURED_REAL_FLAGGED:.1%} of the 10,000 MNIST test digits are flagged, and "
            f"{MEASURED_NON_DIGITS_FLAGGED:.0%} of drawn scribbles, shapes and letters.")


def is_digit_classes(classes) -> bool:
    """True when ``classes`` are the digits 0-9: only then is a drawing compared with real digits."""
    return [str(c) for c in classes] == DIGIT_CLASSES


def check_drawing(image28: np.ndarray, probabilities: np.ndarray | None = None,
                  reference: DigitReference | None = None) -> tuple[DigitCheck | None, str]:
    """(the check of a 28×28 drawing against real digits, "") or (None, why the check is off)."""
    try:
        reference = reference or default_reference()
    except DigitCheckError as exc:
        return None, str(exc)
    return reference.check(image28, probabilities), ""


def short_reason(check: DigitCheck, drawn_small: bool = False) -> str:
    """Why a drawing is not like a digit, in a few words: 'strokes too thick (filled in), 3 separate pieces'.

    ``drawn_small``: thick strokes are then the pen's doing (scaled up with the drawing), not filling in.
    """
    texts = []
    for f in check.findings[:2]:
        if f.feature == "stroke width" and drawn_small:
            texts.append("strokes too thick")
        else:  # "3 separate pieces", "4 closed loops" are short already
            texts.append(SHORT_REASONS.get(f.feature, f.text))
    return ", ".join(texts) + (", and the network is torn" if check.network_unsure else "")


def not_a_digit_text(check: DigitCheck, trained: bool = True, drawn_small: bool = False) -> str:
    """The verdict line for a drawing that is not like a digit: short enough for three lines of the panel.

    A drawing small on the pad gets "draw it bigger" whatever was found: its strokes are thick for its size.
    """
    head = NOT_A_DIGIT if trained else UNTRAINED_NOT_A_DIGIT
    return f"{head}: {short_reason(check, drawn_small)}." + (f" {DRAW_BIGGER}" if drawn_small else "")


def check_details(check: DigitCheck, reference: DigitReference | None = None,
                  drawn_fraction: float | None = None) -> str:
    """The whole story of a check, for a tooltip: why (every finding, how rare), how the check decides."""
    reference = reference or default_reference()
    found = [f"{f.text}: {f.rarity}" for f in check.findings] or ["nothing unusual"]
    lines = []
    if not check.looks_like_digit:
        lines.append(f"{NOT_A_DIGIT}: {check.explain()}.")
        if drawn_fraction is not None and drawn_fraction < SMALL_DRAWING:
            lines.append(f"It is drawn small (its ink spans {drawn_fraction:.0%} of the pad; MNIST digits fill about "
                         "70 % of their square), so the pen's strokes are thick for its size: draw it bigger.")
        lines.append("")
    return "\n".join(lines + [check_help(reference), "", "This drawing: " + "; ".join(found) + "."])


@dataclass(frozen=True)
class Verdict:
    """What to make of the bars, in one line. ``kind``: empty, no network, error, untrained, not a digit,
    unsure or digit; ``details``: the longer story (a tooltip)."""

    kind: str
    text: str
    details: str = ""


class Predictor(QObject):
    """Keeps the bars and the verdict in step with the drawing and the network.

    ``predicted`` carries the probabilities (or None), ``verdictChanged`` the Verdict.
    """

    predicted = Signal(object)
    imageChanged = Signal(object)  # the preprocessed 28×28 drawing, or None when blank
    verdictChanged = Signal(object)  # a Verdict

    def __init__(self, canvas, digit_image, bars, parent: QObject | None = None,
                 reference: DigitReference | None = None) -> None:
        super().__init__(parent)
        self.canvas = canvas
        self.digit_image = digit_image
        self.bars = bars
        self.network = None
        self.trained = True  # False for a fresh network until its first training update
        self.digit_classes = True  # the classes are the digits 0-9, so the drawing can be checked against MNIST
        self.image28: np.ndarray | None = None  # the preprocessed drawing, None while blank
        self.probabilities: np.ndarray | None = None
        self.check: DigitCheck | None = None  # the last drawing check (None: blank, or not checked)
        self.verdict = Verdict("empty", EMPTY)
        self.last_seconds = 0.0  # how long the last drawing -> bars update took
        self._reference = reference
        self._reference_problem = ""  # why the drawing check is off (a damaged install), "" when it works
        self._drawn_fraction = 1.0  # the ink's longer side as a share of the canvas's side
        self._given: np.ndarray | None = None  # a ready 28×28 digit being put on the canvas (show_image)
        canvas.drawingChanged.connect(self.on_drawing)

    @property
    def message(self) -> str:
        """The verdict's text (what the panel shows above the bars)."""
        return self.verdict.text

    def set_network(self, network, trained: bool = True) -> None:
        """A new network to predict with; ``trained`` False for a fresh one (its answers are random)."""
        self.network, self.trained = network, bool(trained)
        self.refresh()

    def weights_updated(self) -> None:
        """The network trained a little (a training report): it is no longer untrained; predict again."""
        self.trained = True
        self.refresh()

    def set_digit_classes(self, digits: bool) -> None:
        """Whether the classes are the ten digits: only then is a drawing checked against real digits."""
        self.digit_classes = bool(digits)
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
            bounds = ink_bounds(buffer) if given is None else None
            self._drawn_fraction = 1.0 if bounds is None else max(bounds[1] - bounds[0],
                                                                  bounds[3] - bounds[2]) / max(buffer.shape)
            self.digit_image.set_image(self.image28)
        self.imageChanged.emit(self.image28)
        self.refresh()
        self.last_seconds = time.perf_counter() - start

    def refresh(self) -> None:
        """Predict the current drawing again (after a training update or a new network)."""
        self.check = None
        if self.image28 is None:
            self._show(None, Verdict("empty", EMPTY))
            return
        if self.network is None:
            self._show(None, Verdict("no network", NO_NETWORK))
            return
        try:
            p = np.asarray(self.network.predict(self.image28), dtype=np.float64).reshape(-1)
        except ValueError as exc:  # e.g. a network whose input does not fit a 28×28 image
            log.debug("prediction failed: %s", exc)
            self._show(None, Verdict("error", f"This network cannot read a 28×28 drawing: {exc}"))
            return
        if not np.all(np.isfinite(p)):
            self._show(None, Verdict("error", "The network's output is not a number (its weights may have diverged)"))
            return
        if p.size != len(self.bars.labels()):
            self._show(None, Verdict("error", f"This network has {p.size} outputs for {len(self.bars.labels())} "
                                              "classes: open a dataset with as many classes"))
            return
        self.check = self._check(p)
        self._show(p, self._verdict(p))

    # ----- the verdict -----
    def _check(self, p: np.ndarray) -> DigitCheck | None:
        """The drawing against real digits (None when the classes are not digits or the check is unavailable)."""
        if not self.digit_classes or self._reference_problem:
            return None
        check, problem = check_drawing(self.image28, p if self.trained else None, self._reference)
        if problem:
            self._reference_problem = problem
            log.warning("the 'not a digit' check is off: %s", problem)
        return check

    def _verdict(self, p: np.ndarray) -> Verdict:
        check = self.check
        details = self._details(check)
        flagged = check is not None and not check.looks_like_digit
        small = self._drawn_fraction < SMALL_DRAWING
        if not self.trained:
            if flagged:  # short enough for the verdict's lines; the whole of UNTRAINED opens the tooltip
                return Verdict("untrained", not_a_digit_text(check, trained=False, drawn_small=small),
                               f"{UNTRAINED}\n{details}")
            return Verdict("untrained", UNTRAINED, details)
        if flagged:
            return Verdict("not a digit", not_a_digit_text(check, drawn_small=small), details)
        labels = self.bars.labels()
        order = np.argsort(-p, kind="stable")
        first = order[0]
        if p[first] < UNSURE and p.size > 1:
            second = order[1]
            return Verdict("unsure", f"Unsure: {labels[first]} ({percent_text(p[first])}) or {labels[second]} "
                                     f"({percent_text(p[second])}).", details)
        return Verdict("digit", f"Reads as {labels[first]} ({percent_text(p[first])}).", details)

    def _details(self, check: DigitCheck | None) -> str:
        if self._reference_problem:
            return f"The 'not a digit' check is off: {self._reference_problem}"
        if not self.digit_classes:
            return "These classes are not digits, so the drawing is not compared with MNIST digits."
        if check is None:
            return ""
        return check_details(check, self._reference, self._drawn_fraction)

    def _show(self, p: np.ndarray | None, verdict: Verdict) -> None:
        self.probabilities, self.verdict = p, verdict
        self.bars.set_probabilities(p, "")
        self.predicted.emit(p)
        self.verdictChanged.emit(verdict)
