"""The right-hand column: draw a digit, see it as the network does, read the verdict and the ten probabilities.

The verdict line above the bars says what to make of them (the network's answer, "not trained
yet", "unsure", or "not like a digit" and why: ``app.predictor``); it has a fixed height, so the
bars never move. It follows the session: a new or retrained network re-predicts the drawing, a test image sent
by a tab lands on the canvas, and the drawing and prediction go back out for the other tabs
(``Session.canvasImageChanged`` / ``predictionChanged``). The stroke-to-bars path itself is in
``app.predictor``. Files dropped here (pictures of digits) go out as ``filesDropped`` for the
window to open onto the canvas.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.predictor import Predictor, Verdict, is_digit_classes
from app.session import Session
from widgets.canvas import DigitCanvas
from widgets.digit_image import DigitImage
from widgets.fitted_label import FittedLabel
from widgets.plain_text import line
from widgets.probability_bars import ProbabilityBars
from widgets.verdict_line import VerdictLine

MODEL_TIP = "The network the canvas predicts with"
MODEL_LINES = 3
VERDICT_LINES = 3
VERDICT_TIP = ("What to make of the bars: the network's answer, or why not to trust it (not trained yet, unsure "
               "between two classes, or the drawing is not like a digit, with the reason)")
TONES = {"empty": "quiet", "digit": "plain", "unsure": "warning", "untrained": "warning", "no network": "warning",
         "error": "error", "not a digit": "error"}


class DrawPanel(QWidget):
    filesDropped = Signal(list)  # local paths dropped on the panel (meant as pictures for the canvas)

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.setAcceptDrops(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        self.canvas = DigitCanvas()
        self.canvas.setToolTip("Draw a digit with the left mouse button; right-click or Clear (Ctrl+L) empties it. "
                               "Drop a picture of a digit here (or File ▸ Open image…) to read it.")
        layout.addWidget(self.canvas, 0, Qt.AlignHCenter)
        row = QHBoxLayout()
        self.digit_image = DigitImage()
        self.digit_image.setToolTip("Your drawing as the network sees it: cropped, scaled into 20×20 and "
                                    "centred by mass in 28×28, like the MNIST digits")
        self.digit_image.setFixedSize(112, 112)
        row.addWidget(self.digit_image)
        side = QVBoxLayout()
        sees = QLabel("What the network sees\n(28×28, centred)")
        sees.setToolTip(self.digit_image.toolTip())
        side.addWidget(sees)
        self.clear_button = QPushButton("Clear")
        self.clear_button.setShortcut(QKeySequence("Ctrl+L"))
        self.clear_button.setToolTip("Clear the drawing (Ctrl+L, or right-click on the canvas)")
        side.addWidget(self.clear_button)
        side.addStretch(1)
        row.addLayout(side)
        row.addStretch(1)
        layout.addLayout(row)
        self.verdict = VerdictLine(VERDICT_LINES)  # fixed height: the bars below never move
        self.verdict.setAccessibleName("Prediction verdict")
        layout.addWidget(self.verdict)
        self.bars = ProbabilityBars(message_lines=0)  # the verdict line above says what to make of them
        self.bars.setToolTip("How likely the current network thinks each class is for your drawing; "
                             "the highlighted bar is its answer")
        self.bars.setMinimumHeight(180)
        layout.addWidget(self.bars, 1)
        # a fixed number of lines (plain text: file names are not HTML): however long a file's name or details,
        # or once a test accuracy is known, the canvas and the bars above keep their size and place
        self.model_label = FittedLabel(MODEL_LINES, tooltip=MODEL_TIP)
        self.model_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        layout.addWidget(self.model_label)
        self.predictor = Predictor(self.canvas, self.digit_image, self.bars, self)

        self.clear_button.clicked.connect(self.canvas.clear)
        session.networkChanged.connect(self._network_changed)
        session.networkInfoChanged.connect(self.update_model_label)
        session.datasetChanged.connect(self._dataset_changed)
        session.weightsUpdated.connect(self.predictor.weights_updated)
        session.canvasImageRequested.connect(self.predictor.show_image)  # a test image, an opened picture
        self.predictor.imageChanged.connect(session.canvasImageChanged)
        self.predictor.predicted.connect(session.predictionChanged)
        self.predictor.verdictChanged.connect(self._show_verdict)
        self._show_verdict(self.predictor.verdict)
        self._network_changed(session.network)

    def _network_changed(self, network) -> None:
        self.predictor.set_network(network, trained=self.session.network_trained)
        self.update_model_label()

    def _dataset_changed(self, dataset) -> None:
        classes = list(dataset.classes)
        self.bars.set_labels(classes)
        self.predictor.set_digit_classes(is_digit_classes(classes))  # Fashion-MNIST: no digit check
        self.update_model_label()

    def _show_verdict(self, verdict: Verdict) -> None:
        self.verdict.set_verdict(verdict.text, TONES.get(verdict.kind, "plain"), verdict.details or VERDICT_TIP)

    def update_model_label(self) -> None:
        """The network's name and state, its test accuracy, then how a file was read (cut first when long)."""
        s = self.session
        if s.network is None:
            self.model_label.set_full_text("No network")
            return
        lines = [f"Network: {line(s.network_label or s.network.describe())}"]
        if s.test_accuracy is not None and s.dataset is not None:
            lines.append(f"Test accuracy on {line(s.dataset.name, 80)}: {s.test_accuracy:.1%}")
        if s.network_details:
            lines.append(line(s.network_details))
        self.model_label.set_full_text("\n".join(lines))

    # ----- pictures dropped on the canvas -----
    def dragEnterEvent(self, event) -> None:
        accept_file_drag(event)

    def dropEvent(self, event) -> None:
        if files := dropped_files(event):
            self.filesDropped.emit(files)


def accept_file_drag(event) -> None:
    """A drag-enter handler's answer: accepted when it carries local files, else ignored."""
    if local_files(event.mimeData()):
        event.acceptProposedAction()
    else:
        event.ignore()


def dropped_files(event) -> list[str]:
    """The local files of a drop, accepting it when there are any."""
    files = local_files(event.mimeData())
    if files:
        event.acceptProposedAction()
    return files


def local_files(mime) -> list[str]:
    """The local files (not folders) in a drag's data."""
    if mime is None or not mime.hasUrls():
        return []
    return [u.toLocalFile() for u in mime.urls() if u.isLocalFile() and Path(u.toLocalFile()).is_file()]
