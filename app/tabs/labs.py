"""The learning-lab pages, wired to the session: the gradient lab sees the current network and dataset
and runs its check on tasks from the window's ``task_factory``; the loss lab follows the canvas's
prediction (``Session.predictionChanged``)."""
from __future__ import annotations

from typing import Callable

from PySide6.QtWidgets import QWidget

from app.tabs.descent_lab import DescentLab
from app.tabs.gradients_lab import GradientLab
from app.tabs.landscape_lab import LandscapeLab
from app.tabs.loss_lab import LossLab


def create_lab_tabs(session, task_factory: Callable) -> list[tuple[str, QWidget]]:
    """(title, page) for each lab; cheap to build (each opens on its textbook example).

    ``task_factory(fn, name)`` returns a started or startable background task (see
    ``app.tabs.gradients_lab``) for the gradient check and the landscape's long runs; the main
    window passes one that registers the task, so the window waits for its thread at shutdown.
    ``session`` may be None (no wiring).
    """
    descent = DescentLab()
    landscape = LandscapeLab(task_factory=task_factory)
    loss = LossLab()
    gradients = GradientLab(task_factory=task_factory)
    if session is not None:
        gradients.set_network(session.network, session.network_label)
        gradients.set_dataset(session.dataset)
        # the label read when the signal arrives: "(training)" becomes "(finished, 3 epochs)" without a new network
        session.networkChanged.connect(lambda net: gradients.set_network(net, session.network_label))
        session.networkInfoChanged.connect(lambda: gradients.set_network(session.network, session.network_label))
        session.datasetChanged.connect(gradients.set_dataset)
        session.predictionChanged.connect(loss.set_probabilities)  # the canvas's (10,) probabilities or None
    return [  # in the book's order: what a loss is, descending it, computing its gradient, optimizers' paths
        ("Loss functions", loss),
        ("Gradient descent", descent),
        ("Gradients", gradients),
        ("Loss landscape", landscape),
    ]
