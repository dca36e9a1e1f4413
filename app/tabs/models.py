"""The "Models" tab: one drawing, many models — every open network's ten probabilities side by side.

The network being trained (session.network) and any weight files opened here (session.models)
classify the same preprocessed 28×28 drawing, so a person sees at a glance where, say, the book's
MLP and their own network disagree. Files are opened by the window's weight-file controller, the
same way as File ▸ Open, only as an extra model. The verdict above the bars checks the drawing against
real digits first, as the canvas's verdict does (``app.predictor``): a scribble is "not like a digit"
whatever the models answer; and a network not trained yet is named as such, not counted as an opinion.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtWidgets import QHBoxLayout, QLabel, QListWidget, QPushButton, QVBoxLayout, QWidget

from app.controllers.weightfiles import WeightFileController
from app.predictor import check_details, check_drawing, is_digit_classes, not_a_digit_text
from app.session import Session
from widgets.digit_image import DigitImage
from widgets.plain_text import help_line, line, plain_tooltip
from widgets.probability_bars import ProbabilityBars, percent_text
from widgets.verdict_line import VerdictLine

BARS_HELP = ("One row per digit, one bar per model in its colour: how likely each model thinks the drawing is "
             "that digit. The number is the highest of the models' values.")
NO_DRAWING = "Draw a digit on the canvas at the right; every open model will read it."
NO_MODEL = "No model yet: train one on the Train page or open a weight file."
VERDICT_TIP = "What the models answer, and whether they agree."
STATUS_TIP = "What happened to the last weight file opened here."


class ModelsPage(QWidget):
    def __init__(self, session: Session, weightfiles: WeightFileController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.weightfiles = weightfiles
        self.image: np.ndarray | None = None
        self._stale = False  # something changed while the page was hidden: predict when it is shown

        self.open_button = QPushButton("Open weights…")
        self.open_button.setToolTip("Load another weight file (e.g. the book's sample_weight.pkl) to compare. "
                                    "It is added beside the network you train, not in its place.")
        self.open_button.clicked.connect(lambda: weightfiles.open(as_model=True))
        self.remove_button = QPushButton("Close model")
        self.remove_button.setToolTip("Close the selected extra model (the trained network stays).")
        self.remove_button.clicked.connect(self._remove_clicked)
        self.model_list = QListWidget()
        self.model_list.setToolTip("The models that classify the drawing: the network being trained first, then "
                                   "the weight files opened here. Select one to close it.")
        self.model_list.setWordWrap(True)  # a long file or network name takes two lines instead of a scroll bar
        self.model_list.currentRowChanged.connect(lambda _row: self._update_buttons())
        self.digit = DigitImage(caption="what the models see")
        self.digit.setToolTip("The drawing as the models get it: 28×28 pixels, centred like MNIST's digits.")
        self.bars = ProbabilityBars()
        self.bars.setToolTip(BARS_HELP)
        # fixed heights: a longer verdict or file summary never moves the bars or the buttons; the whole story
        # (how the drawing was checked, a file's layers and how it was read) is in their tooltips
        self.verdict = VerdictLine(2)
        self.verdict.set_verdict(NO_DRAWING, "quiet", VERDICT_TIP)
        self.status = VerdictLine(3)
        self.status.set_verdict("", "plain", STATUS_TIP)

        side = QVBoxLayout()
        side.addWidget(QLabel("Open models"))
        buttons = QHBoxLayout()
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.remove_button)
        side.addLayout(buttons)
        side.addWidget(self.model_list, 1)
        side.addWidget(self.digit)
        side.addWidget(self.status)
        main = QVBoxLayout()
        main.addWidget(self.verdict)
        main.addWidget(self.bars, 1)
        main.addWidget(help_line(BARS_HELP))
        layout = QHBoxLayout(self)
        layout.addLayout(side, 1)
        layout.addLayout(main, 3)

        session.networkChanged.connect(self.refresh)
        session.networkInfoChanged.connect(self.refresh)  # e.g. "(training)" became "(finished, 3 epochs)"
        session.weightsUpdated.connect(self._predict_when_shown)  # the network being trained learned more
        session.modelsChanged.connect(self.refresh)
        session.canvasImageChanged.connect(self.set_image)  # the main window's preprocessed drawing
        # digits or not: check the drawing against real digits or not
        session.datasetChanged.connect(lambda _dataset: self._predict_when_shown())
        weightfiles.modelAdded.connect(self._model_added)
        weightfiles.loadFailed.connect(
            lambda path, exc: self.status.set_verdict(f"Could not open {line(Path(path).name, 80)}.", "error",
                                                      str(exc)))
        self.refresh()

    def _model_added(self, name: str, summary: str) -> None:
        """'Opened book: 784-50-100-10 MLP, sigmoid.' (the summary's first line); all of it in the tooltip."""
        architecture = summary.strip().splitlines()[0].strip() if summary.strip() else ""
        text = f"Opened {name}: {architecture}." if architecture else f"Opened {name}."
        self.status.set_verdict(text, "plain", f"Opened {name}.\n{summary}")

    # ----- models -----
    def models(self) -> dict:
        """Display name -> Network, the trained one first."""
        out = {}
        if self.session.network is not None:
            out[self.current_name()] = self.session.network
        for name, net in self.session.models.items():
            out[name if name not in out else f"{name} (file)"] = net
        return out

    def current_name(self) -> str:
        """The display name of the network the Train page trains."""
        return self.session.network_label or "current network"

    def untrained(self) -> set:
        """Display names of the models that are random weights, not trained yet (their answers are guesses)."""
        s = self.session
        return {self.current_name()} if s.network is not None and not s.network_trained else set()

    def refresh(self, *_args) -> None:
        names = list(self.models())
        if names != [self.model_list.item(i).text() for i in range(self.model_list.count())]:
            self.model_list.clear()  # only when the names changed: a new test accuracy keeps the selection
            self.model_list.addItems(names)
            for i, name in enumerate(names):
                self.model_list.item(i).setToolTip(plain_tooltip(name))
        self._predict_when_shown()
        self._update_buttons()

    def _update_buttons(self) -> None:
        item = self.model_list.currentItem()
        self.remove_button.setEnabled(item is not None and item.text() in self.session.models)

    def _remove_clicked(self) -> None:
        item = self.model_list.currentItem()
        if item is not None:
            self.session.remove_model(item.text())

    # ----- the drawing -----
    def set_image(self, img28) -> None:
        """The preprocessed (28, 28) drawing in [0, 1], or None when the canvas is blank."""
        if img28 is not None:
            img28 = np.asarray(img28, dtype=np.float32)
            if img28.size != 784:
                raise ValueError(f"ModelsPage.set_image expects a 28×28 image, got shape {img28.shape}")
            img28 = img28.reshape(28, 28)
        self.image = img28
        self.digit.set_image(img28)
        self._predict_when_shown()

    def predictions(self) -> dict:
        """Display name -> probabilities (10,) for the current image, or None for a model that cannot read it."""
        if self.image is None:
            return {}
        out = {}
        for name, net in self.models().items():
            try:
                out[name] = np.asarray(net.predict(self.image), dtype=np.float64).reshape(-1)
            except ValueError:
                out[name] = None  # e.g. a model for another input size
        return out

    def _predict_when_shown(self) -> None:
        """Predict again (new weights, models, drawing or classes); while the page is hidden, once it is shown."""
        if self.isVisible():
            self._predict()
        else:
            self._stale = True

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._stale:
            self._predict()

    def _predict(self) -> None:
        self._stale = False
        models = self.models()
        if not models:
            self.bars.set_probabilities(None, "")
            self.verdict.set_verdict(NO_MODEL, "warning", VERDICT_TIP)
            return
        if self.image is None:
            self.bars.set_series({name: None for name in models}, "")  # the verdict above says what to do
            self.verdict.set_verdict(NO_DRAWING, "quiet", VERDICT_TIP)
            return
        preds = self.predictions()
        self.bars.set_series(preds)
        untrained = self.untrained()
        agreement = describe_agreement(preds, untrained)
        check, problem = self._check(preds, untrained)
        if check is not None and not check.looks_like_digit:
            self.verdict.set_verdict(f"{not_a_digit_text(check)} {agreement}", "error", check_details(check))
            return
        details = (f"The 'not a digit' check is off: {problem}" if problem else
                   check_details(check) if check is not None else VERDICT_TIP)
        trained_answers = [p for name, p in preds.items() if p is not None and name not in untrained]
        self.verdict.set_verdict(agreement, "plain" if trained_answers else "warning", details)

    def _check(self, preds: dict, untrained: set):
        """(the drawing checked against real digits, why the check is off); (None, "") for classes that are not
        digits. The network is 'torn' when even the surest trained model's top answer is under 50 %."""
        dataset = self.session.dataset
        if dataset is not None and not is_digit_classes(dataset.classes):
            return None, ""
        trained = [p for name, p in preds.items() if p is not None and name not in untrained]
        surest = max(trained, key=lambda p: float(np.max(p)), default=None)
        return check_drawing(self.image, surest)


def describe_agreement(preds: dict, untrained=frozenset()) -> str:
    """'All 2 models say 3: …' or 'The models disagree: A says 3 (95.0 %), B says 5 (60.2 %).'

    Models named in ``untrained`` are random weights: their guesses are not counted as opinions, only
    named as not trained yet. Percentages are written as the bars write them (``percent_text``), so text
    and bars never disagree.
    """
    readable = {name: p for name, p in preds.items() if p is not None}
    if not readable:
        return "No model can read this image."
    guessing = [name for name in readable if name in untrained]
    answers = {name: (int(np.argmax(p)), float(np.max(p))) for name, p in readable.items() if name not in untrained}
    if not answers:
        whose = "its" if len(guessing) == 1 else "their"
        return f"Not trained yet: {', '.join(guessing)}; {whose} answers are guesses."
    parts = ", ".join(f"{name} says {c} ({percent_text(p)})" for name, (c, p) in answers.items())
    classes = {c for c, _ in answers.values()}
    if len(classes) == 1:
        c = classes.pop()
        text = f"All {len(answers)} models say {c}: {parts}." if len(answers) > 1 else f"{parts}."
    else:
        text = f"The models disagree: {parts}."
    return text + (f" Not trained yet: {', '.join(guessing)}." if guessing else "")
