"""The "Models" tab: one drawing, many models — every open network's ten probabilities side by side.

The network being trained (session.network) and any weight files opened here (session.models)
classify the same preprocessed 28×28 drawing, so a person sees at a glance where, say, the book's
MLP and their own network disagree.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QFileDialog, QHBoxLayout, QLabel, QListWidget, QMessageBox, QPushButton, QVBoxLayout,
                               QWidget)

from app.threads import BackgroundTask
from engine.weights import load_weights
from widgets.digit_image import DigitImage
from widgets.probability_bars import ProbabilityBars

WEIGHT_FILTER = "Weight files (*.npz *.pkl *.pickle);;All files (*)"


class ModelsPanel(QWidget):
    modelLoaded = Signal(str)  # display name of a model added from a file
    loadFailed = Signal(str)

    def __init__(self, session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.image: np.ndarray | None = None
        self._tasks: list[BackgroundTask] = []

        self.open_button = QPushButton("Open weights…")
        self.open_button.setToolTip("Load another weight file (e.g. the book's sample_weight.pkl) to compare.")
        self.open_button.clicked.connect(self._open_clicked)
        self.remove_button = QPushButton("Close model")
        self.remove_button.setToolTip("Close the selected extra model (the trained network stays).")
        self.remove_button.clicked.connect(self._remove_clicked)
        self.model_list = QListWidget()
        self.model_list.setToolTip("The models that classify the drawing.")
        self.model_list.currentRowChanged.connect(lambda _row: self._update_buttons())
        self.digit = DigitImage(caption="what the models see")
        self.bars = ProbabilityBars()
        self.verdict = QLabel("Draw a digit on the Training tab.")
        self.verdict.setWordWrap(True)
        self.verdict.setTextFormat(Qt.TextFormat.PlainText)
        self.status = QLabel("")
        self.status.setWordWrap(True)

        side = QVBoxLayout()
        side.addWidget(QLabel("Open models"))
        side.addWidget(self.model_list, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.remove_button)
        side.addLayout(buttons)
        side.addWidget(self.digit)
        side.addWidget(self.status)
        main = QVBoxLayout()
        main.addWidget(self.verdict)
        main.addWidget(self.bars, 1)
        layout = QHBoxLayout(self)
        layout.addLayout(side, 1)
        layout.addLayout(main, 3)

        session.networkChanged.connect(self.refresh)
        session.modelsChanged.connect(self.refresh)
        session.canvasImageChanged.connect(self.set_image)  # the main window's preprocessed drawing
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
        self.model_list.clear()
        self.model_list.addItems(names)
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
                raise ValueError(f"ModelsPanel.set_image expects a 28×28 image, got shape {img28.shape}")
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
            self.bars.set_probabilities(None, "No model yet: train one or open a weight file.")
            self.verdict.setText("No model open.")
            return
        if self.image is None:
            self.bars.set_series({name: None for name in models}, "Draw a digit")
            self.verdict.setText("Draw a digit on the Training tab; every open model will read it.")
            return
        preds = self.predictions()
        self.bars.set_series(preds)
        self.verdict.setText(describe_agreement(preds))

    # ----- opening weight files -----
    def _open_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open weights", "", WEIGHT_FILTER)
        if path:
            self.open_weights(path)

    def open_weights(self, path) -> BackgroundTask:
        """Load a weight file on a worker thread; on success it becomes one of the session's models."""
        path = Path(path)
        self.status.setText(f"Loading {path.name}…")

        def work(_ctx):
            return load_weights(path)

        task = BackgroundTask(work, f"load {path.name}", self)
        task.succeeded.connect(lambda loaded: self._on_loaded(path, loaded))
        task.failed.connect(lambda message: self._on_load_failed(path, message))
        task.finished.connect(lambda: self._tasks.remove(task) if task in self._tasks else None)
        self._tasks.append(task)
        return task.start()

    def _on_loaded(self, path: Path, loaded) -> None:
        name = path.stem
        taken = set(self.session.models) | {self.session.network_label}
        n = 2
        while name in taken:
            name, n = f"{path.stem} ({n})", n + 1
        self.session.add_model(name, loaded.network)
        summary = loaded.summary() if hasattr(loaded, "summary") else ""
        self.status.setText(f"Opened {name}. {summary}".strip())
        self.modelLoaded.emit(name)

    def _on_load_failed(self, path: Path, message: str) -> None:
        self.status.setText(f"Could not open {path.name}.")
        self.loadFailed.emit(message)
        self.show_error(f"Could not open {path.name}", message)

    def show_error(self, title: str, text: str) -> None:
        """A modal message; tests replace it to record instead."""
        QMessageBox.warning(self, title, text)

    def shutdown(self, timeout_ms: int = 10_000) -> bool:
        """Wait for weight files still loading (loading cannot be interrupted); True if all ended in time."""
        ok = True
        for task in list(self._tasks):
            task.cancel()
            ok = task.wait(timeout_ms) and ok
        return ok


def describe_agreement(preds: dict) -> str:
    """'All 2 models say 3.' or 'The models disagree: A says 3 (95%), B says 5 (60%).'"""
    answers = {name: (int(np.argmax(p)), float(np.max(p))) for name, p in preds.items() if p is not None}
    if not answers:
        return "No model can read this image."
    parts = ", ".join(f"{name} says {c} ({p:.0%})" for name, (c, p) in answers.items())
    classes = {c for c, _ in answers.values()}
    if len(classes) == 1:
        c = classes.pop()
        return f"All {len(answers)} models say {c}: {parts}." if len(answers) > 1 else f"{parts}."
    return f"The models disagree: {parts}."
