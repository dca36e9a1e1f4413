"""The learning-lab tabs, wired to the session: the gradient lab sees the current network and dataset,
the loss lab follows the canvas's prediction (``Session.predictionChanged``)."""
from __future__ import annotations

from PySide6.QtWidgets import QWidget

from app.threads import BackgroundTask
from widgets.labs import DescentLab, GradientLab, LandscapeLab, LossLab


def background_task(fn, name: str = "lab task") -> BackgroundTask:
    """The task factory the labs get: ``fn(ctx)`` on a QThread, results as signals on the GUI thread."""
    return BackgroundTask(fn, name)


def create_lab_tabs(session) -> list[tuple[str, QWidget]]:
    """(title, widget) for each lab; cheap to build (each opens on its textbook example)."""
    descent = DescentLab()
    landscape = LandscapeLab()
    loss = LossLab()
    gradients = GradientLab(task_factory=background_task)
    if session is not None:
        gradients.set_network(session.network, session.network_label)
        gradients.set_dataset(session.dataset)
        session.networkChanged.connect(lambda net: gradients.set_network(net, session.network_label))
        session.datasetChanged.connect(gradients.set_dataset)
        session.predictionChanged.connect(loss.set_probabilities)  # the canvas's (10,) probabilities or None
    return [
        ("Gradient descent", descent),
        ("Loss landscape", landscape),
        ("Loss functions", loss),
        ("Gradients", gradients),
    ]
