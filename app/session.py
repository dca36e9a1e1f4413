"""What the open window is working with: the current network and dataset, extra models and past runs.

One ``Session`` is shared by the main window and every tab (labs, evaluation, comparison), so they
learn about a new network, dataset or finished run through its signals instead of through each other.
It only holds references and emits signals; it never trains or loads anything itself.
"""
from __future__ import annotations

from PySide6.QtCore import QObject, Signal

TRAINING_STATES = ("idle", "running", "paused", "finished", "stopped", "diverged", "error")


class SessionError(ValueError):
    """A request the session cannot honour (unknown state, empty model name, ...)."""


class Session(QObject):
    networkChanged = Signal(object)  # the current Network (trained here or loaded); emitted on replace/load
    datasetChanged = Signal(object)  # engine.data.dataset.Dataset now in use
    epochFinished = Signal(object)  # engine.train.loop.EpochMetrics, while the current network trains
    trainingStateChanged = Signal(str)  # one of TRAINING_STATES
    canvasImageRequested = Signal(object)  # a (28, 28) float array to put on the drawing canvas
    modelsChanged = Signal()  # the set of extra open models changed
    runAdded = Signal(object)  # an engine.train.runs.RunRecord was added
    canvasImageChanged = Signal(object)  # the preprocessed (28, 28) drawing, or None when the canvas is blank
    predictionChanged = Signal(object)  # the current network's (10,) probabilities for the drawing, or None
    weightsUpdated = Signal()  # the current network's weights changed in place (a training report arrived)
    networkInfoChanged = Signal()  # network_label, network_details or test_accuracy changed

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.network = None
        self.network_label = ""
        self.network_details = ""  # e.g. how a weight file was read (activation, pixel scale)
        self.network_trained = True  # False while the network is fresh random weights (see set_network)
        self.test_accuracy: float | None = None  # of the current network on the current test split, when known
        self.dataset = None
        self.training_state = "idle"
        self.models: dict = {}
        self.runs: list = []

    def set_network(self, network, label: str = "", details: str = "", trained: bool = True) -> None:
        """Make ``network`` the one the canvas predicts with and the tabs look at (its test accuracy is unknown).

        ``trained`` is False for a network just made from random weights (Reset, or Start's new network): its
        answers are guesses until ``mark_trained`` says a training step changed it.
        """
        self.network = network
        self.network_label = label or (network.describe() if network is not None else "")
        self.network_details = details
        self.network_trained = bool(trained)
        self.test_accuracy = None
        self.networkChanged.emit(network)

    def mark_trained(self) -> None:
        """The current network has been trained at least one step (no longer random)."""
        if not self.network_trained:
            self.network_trained = True
            self.networkInfoChanged.emit()

    def set_network_label(self, label: str) -> None:
        self.network_label = label
        self.networkInfoChanged.emit()

    def set_test_accuracy(self, accuracy: float | None) -> None:
        """The current network's accuracy on the current dataset's test split (None: not known)."""
        self.test_accuracy = None if accuracy is None else float(accuracy)
        self.networkInfoChanged.emit()

    def set_dataset(self, dataset) -> None:
        """A new dataset; a test accuracy measured on the previous one no longer holds."""
        self.dataset = dataset
        self.test_accuracy = None
        self.datasetChanged.emit(dataset)

    def set_training_state(self, state: str) -> None:
        if state not in TRAINING_STATES:
            raise SessionError(f"unknown training state {state!r}; expected one of {', '.join(TRAINING_STATES)}")
        if state != self.training_state:
            self.training_state = state
            self.trainingStateChanged.emit(state)

    @property
    def is_training(self) -> bool:
        return self.training_state in ("running", "paused")

    def show_on_canvas(self, img28) -> None:
        """Ask the window to put this digit on the drawing canvas (e.g. a misclassified test image)."""
        self.canvasImageRequested.emit(img28)

    def add_model(self, name: str, network) -> None:
        if not name:
            raise SessionError("a model needs a non-empty display name")
        self.models[name] = network
        self.modelsChanged.emit()

    def remove_model(self, name: str) -> None:
        if self.models.pop(name, None) is not None:
            self.modelsChanged.emit()

    def add_run(self, record) -> None:
        self.runs.append(record)
        self.runAdded.emit(record)
