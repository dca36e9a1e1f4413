"""The "Evaluation" tab: test accuracy, the confusion matrix and a gallery of the network's mistakes.

The evaluation runs on a worker thread on a copy of the current network (training may go on
meanwhile) and is redone when the network or dataset changes and after every epoch, but only
while the tab is visible; otherwise it waits until the tab is shown. The window's TaskRegistry
runs it and stops it on close; the page only remembers which evaluation it is waiting for.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QPushButton, QSplitter, QVBoxLayout, QWidget

from app.session import Session
from app.threads import BackgroundTask, TaskRegistry, describe_error
from engine.train.evaluation import (Evaluation, EvaluationCancelled, cell_indices, describe_entry, evaluate_model,
                                     misclassified, sort_indices)
from widgets.confusion_matrix import ConfusionMatrixView
from widgets.mistake_gallery import MistakeGallery
from widgets.plain_text import help_line, line, plain_label


HELP = ("Rows are the true digits, columns the network's answers: the diagonal is right, everything else a "
        "mistake. Click a cell to see its images; click an image to put it on the canvas and read its probabilities.")


class EvaluationPage(QWidget):
    evaluationReady = Signal(object)  # engine.train.evaluation.Evaluation
    evaluationFailed = Signal(object)  # the exception

    def __init__(self, session: Session, tasks: TaskRegistry, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.tasks = tasks
        self.evaluation: Evaluation | None = None
        self.images: np.ndarray | None = None  # the images the current evaluation was made on
        self.class_names: list[str] = [str(i) for i in range(10)]
        self._task: BackgroundTask | None = None  # the evaluation running now, for the button and summary
        self._dirty = True
        self._again = False

        self.evaluate_button = QPushButton("Evaluate")
        self.evaluate_button.setToolTip("Run the current network over the whole test set now.")
        self.evaluate_button.clicked.connect(self.evaluate)
        self.summary = plain_label("No evaluation yet.")  # names a network and classes: text, never HTML
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.all_button = QPushButton("All mistakes")
        self.all_button.setToolTip("Show every misclassified test image in the gallery again.")
        self.all_button.clicked.connect(self.show_all_mistakes)
        self.all_button.setEnabled(False)
        self.matrix = ConfusionMatrixView()
        self.matrix.cellClicked.connect(self.show_cell)
        self.gallery = MistakeGallery()
        self.gallery.imageActivated.connect(self._show_on_canvas)

        top = QHBoxLayout()
        top.addWidget(self.evaluate_button)
        top.addWidget(self.summary, 1)
        top.addWidget(self.all_button)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.matrix)
        split.addWidget(self.gallery)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(split, 1)
        layout.addWidget(help_line(HELP))

        session.networkChanged.connect(self._invalidate)
        session.datasetChanged.connect(self._invalidate)
        session.epochFinished.connect(self._invalidate)
        self._update_button()

    # ----- requests -----
    def _invalidate(self, *_args) -> None:
        self._dirty = True
        self._update_button()
        if self.isVisible():
            self.evaluate()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._dirty and self._can_evaluate():
            self.evaluate()

    def _can_evaluate(self) -> bool:
        ds = self.session.dataset
        return self.session.network is not None and ds is not None and ds.x_test is not None and len(ds.x_test) > 0

    def _update_button(self) -> None:
        self.evaluate_button.setEnabled(self._can_evaluate())

    def is_busy(self) -> bool:
        return self._task is not None

    def evaluate(self) -> None:
        """Start an evaluation of session.network on the session's test split (coalesces repeated requests)."""
        if self.tasks.closed:
            return
        if not self._can_evaluate():
            self.summary.setText("Nothing to evaluate: train or open a network and choose a dataset first.")
            return
        if self._task is not None:
            self._again = True  # one more round once the running one ends, with the newest weights
            return
        self._dirty = False
        network = self.session.network.copy()  # a snapshot: training may go on changing the live weights
        dataset = self.session.dataset
        x, t = dataset.x_test, dataset.t_test
        names = list(getattr(dataset, "classes", None) or self.class_names)

        def work(ctx):
            return evaluate_model(network, x, t, cancel=ctx.cancelled), x, names

        task = self.tasks.create(work, "evaluation")
        task.succeeded.connect(self._on_result)
        task.failed.connect(self._on_error)
        task.finished.connect(lambda: self._on_finished(task))
        self._task = task
        self.summary.setText(f"Evaluating {line(self.session.network_label or 'the network')} on {len(x)} test images…")
        self.evaluate_button.setEnabled(False)
        self.tasks.start(task)

    def _on_finished(self, task: BackgroundTask) -> None:
        if self._task is task:
            self._task = None
        self._update_button()
        if self._again:
            self._again = False
            self.evaluate()

    def _on_result(self, result) -> None:
        evaluation, images, names = result
        self.evaluation, self.images, self.class_names = evaluation, images, names
        self.matrix.set_matrix(evaluation.confusion, names)
        worst = int(np.nanargmin(evaluation.per_class_accuracy))
        self.summary.setText(
            f"Test accuracy {evaluation.accuracy:.2%} ({evaluation.correct} of {evaluation.size}), "
            f"loss {evaluation.loss:.4f}. Hardest class: {line(names[worst], 40)} "
            f"({evaluation.per_class_accuracy[worst]:.1%}).")
        self.all_button.setEnabled(True)
        self.show_all_mistakes()
        self.evaluationReady.emit(evaluation)

    def _on_error(self, exc: BaseException) -> None:
        if isinstance(exc, EvaluationCancelled):
            return
        self.summary.setText(f"Evaluation failed: {line(describe_error(exc))}")
        self.evaluationFailed.emit(exc)

    # ----- views -----
    def show_all_mistakes(self) -> None:
        ev = self.evaluation
        if ev is None:
            return
        self.matrix.set_selected(None)
        wrong = misclassified(ev, self.gallery.sort_key())
        self.gallery.set_entries(self.images, wrong, f"{len(wrong)} misclassified test images", self.class_names)

    def show_cell(self, true: int, pred: int) -> None:
        """Fill the gallery with the test images of one confusion-matrix cell (right answers on the diagonal)."""
        ev = self.evaluation
        if ev is None:
            return
        self.matrix.set_selected((true, pred))
        idx = sort_indices(ev, cell_indices(ev, true, pred), self.gallery.sort_key())
        entries = [describe_entry(ev, i) for i in idx]
        names = self.class_names
        what = "correctly recognised" if true == pred else f"taken for {names[pred]}"
        self.gallery.set_entries(self.images, entries, f"{len(entries)} test images of {names[true]} {what}",
                                 names)

    def _show_on_canvas(self, index: int) -> None:
        if self.images is not None:
            self.session.show_on_canvas(np.asarray(self.images[index], dtype=np.float32).reshape(28, 28))
