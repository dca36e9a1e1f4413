"""The "Models" tab: one drawing, many models — every open network's ten probabilities side by side.

The network being trained (session.network) and any weight files opened here (session.models)
classify the same preprocessed 28×28 drawing, so a person sees at a glance where, say, the book's
MLP and their own network disagree. Files are opened by the window's weight-file controller, the
same way as File ▸ Open, only as an extra model.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtWidgets import QHBoxLayout, QLabel, QListWidget, QPushButton, QVBoxLayout, QWidget

from app.controllers.weightfiles import WeightFileController
from app.session import Session
from widgets.digit_image import DigitImage
from widgets.fitted_label import FittedLabel
from widgets.plain_text import help_line, line, plain_tooltip
from widgets.probability_bars import ProbabilityBars, percent_text

BARS_HELP = ("One row per digit, one bar per model in its colour: how likely each model thinks the drawing is "
             "that digit. The number is the highest of the models' values.")
NO_DRAWING = "Draw a digit on the canvas at the right; every open model will read it."


class ModelsPage(QWidget):
    def __init__(self, session: Session, weightfiles: WeightFileController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.weightfiles = weightfiles
        self.image: np.ndarray | None = None

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
        # fixed heights: a longer verdict or file summary never moves the bars or the buttons
        self.verdict = FittedLabel(2, NO_DRAWING, "What the models answer, and whether they agree.")
        self.status = FittedLabel(3, tooltip="What happened to the last weight file opened here.")

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
        session.weightsUpdated.connect(self._predict)  # the network being trained learned more
        session.modelsChanged.connect(self.refresh)
        session.canvasImageChanged.connect(self.set_image)  # the main window's preprocessed drawing
        weightfiles.modelAdded.connect(lambda name, summary: self.status.set_full_text(f"Opened {name}. {summary}"))
        weightfiles.loadFailed.connect(
            lambda path, _exc: self.status.set_full_text(f"Could not open {line(Path(path).name, 80)}."))
        self.refresh()

    # ----- models -----
    def models(self) -> dict:
        """Display name -> Network, the trained one first."""
        out = {}
        if self.session.network is not None:
            out[self.session.network_label or "current network"] = self.session.network
        for name, net in self.session.models.items():
            out[name if name not in out else f"{name} (file)"] = net
        return out

    def refresh(self, *_args) -> None:
        names = list(self.models())
        if names != [self.model_list.item(i).text() for i in range(self.model_list.count())]:
            self.model_list.clear()  # only when the names changed: a new test accuracy keeps the selection
            self.model_list.addItems(names)
            for i, name in enumerate(names):
                self.model_list.item(i).setToolTip(plain_tooltip(name))
        self._predict()
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
        self._predict()

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

    def _predict(self) -> None:
        models = self.models()
        if not models:
            self.bars.set_probabilities(None, "")
            self.verdict.set_full_text("No model yet: train one on the Train page or open a weight file.")
            return
        if self.image is None:
            self.bars.set_series({name: None for name in models}, "")  # the verdict above says what to do
            self.verdict.set_full_text(NO_DRAWING)
            return
        preds = self.predictions()
        self.bars.set_series(preds)
        self.verdict.set_full_text(describe_agreement(preds))


def describe_agreement(preds: dict) -> str:
    """'All 2 models say 3: …' or 'The models disagree: A says 3 (95.0 %), B says 5 (60.2 %).'

    Percentages are written as the bars write them (``percent_text``), so text and bars never disagree.
    """
    answers = {name: (int(np.argmax(p)), float(np.max(p))) for name, p in preds.items() if p is not None}
    if not answers:
        return "No model can read this image."
    parts = ", ".join(f"{name} says {c} ({percent_text(p)})" for name, (c, p) in answers.items())
    classes = {c for c, _ in answers.values()}
    if len(classes) == 1:
        c = classes.pop()
        return f"All {len(answers)} models say {c}: {parts}." if len(answers) > 1 else f"{parts}."
    return f"The models disagree: {parts}."
