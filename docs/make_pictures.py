"""Regenerate the README's pictures of the labs, evaluation, race and models views (grabbed by the app itself).

    QT_QPA_PLATFORM=offscreen python docs/make_pictures.py [labs] [confusion] [race] [models]
    xvfb-run -a python docs/make_pictures.py landscape-3d      # needs a display with OpenGL

The window screenshot comes from ``python bench/bench_gui.py --screenshot docs/screenshot-training.png``.
Run from the repository root; the pictures are written to docs/.
"""
from __future__ import annotations

import sys
import time

import numpy as np
from PySide6.QtCore import QEventLoop
from PySide6.QtWidgets import QApplication

ALL = ["labs", "confusion", "race", "models"]


def settle(app: QApplication, widget=None, size=None, rounds: int = 20) -> None:
    if widget is not None:
        if size:
            widget.resize(*size)
        widget.show()
    for _ in range(rounds):
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
        time.sleep(0.01)


def wait_for(app: QApplication, condition, seconds: float = 120) -> None:
    end = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("the view did not finish in time")
        settle(app, rounds=1)


def labs(app: QApplication, tasks) -> None:
    from app.session import Session
    from app.tabs.labs import create_lab_tabs

    tabs = dict(create_lab_tabs(Session(), tasks.create))
    d = tabs["Gradient descent"]
    settle(app, d, (1280, 720))
    d.step(100_000)
    settle(app, d)
    d.grab().save("docs/lab-descent.png")
    landscape = tabs["Loss landscape"]
    landscape.set_surface("bowl")
    settle(app, landscape, (1280, 720))
    landscape.grab().save("docs/lab-landscape.png")
    f = tabs["Loss functions"]
    f.set_example("book-wrong")
    settle(app, f, (1280, 720))
    f.grab().save("docs/lab-loss.png")
    g = tabs["Gradients"]
    settle(app, g, (1280, 720))
    g.start_check()
    wait_for(app, lambda: g.last_report is not None)
    settle(app, g)
    g.grab().save("docs/lab-gradients.png")


def landscape_3d(app: QApplication) -> None:
    from app.tabs.landscape_lab import LandscapeLab

    lab = LandscapeLab()
    if lab.view3d is None:
        raise SystemExit("no OpenGL here: run under a display with OpenGL (e.g. xvfb-run) with PyOpenGL installed")
    lab.set_surface("bowl")
    lab.run()
    settle(app, lab, (1200, 650))
    lab.view3d.parent().parent().setCurrentIndex(1)  # the 3-D tab
    settle(app, lab)
    lab.grab().save("docs/lab-landscape-3d.png")


def trained_session():
    from app.session import Session
    from engine.data.catalog import load_dataset
    from engine.nn.network import make_mlp
    from engine.nn.optimizers import Adam
    from engine.train.loop import TrainSettings, train

    ds = load_dataset("mnist-sample")
    net = make_mlp([784, 100, 10], seed=0)
    train(net, Adam(lr=0.001), ds.x_train, ds.t_train, settings=TrainSettings(batch_size=100, epochs=5))
    session = Session()
    session.set_dataset(ds)
    session.set_network(net, "784-100-10 relu (Adam, 5 epochs)")
    return session


def confusion(app: QApplication, session, tasks) -> None:
    from app.tabs.evaluation import EvaluationPage

    p = EvaluationPage(session, tasks)
    settle(app, p, (1150, 620))
    wait_for(app, lambda: p.evaluation is not None and not p.is_busy())
    cm = p.evaluation.confusion
    i, j = np.unravel_index((cm - np.diag(np.diag(cm))).argmax(), cm.shape)  # the most common mistake
    p.show_cell(int(i), int(j))
    settle(app, p)
    p.grab().save("docs/confusion.png")


def race(app: QApplication, session, tasks) -> None:
    from app.tabs.compare import ComparePage

    c = ComparePage(session, tasks)
    settle(app, c, (1150, 650))
    c.iterations_spin.setValue(1000)
    done = []
    c.raceFinished.connect(done.append)
    c.start_race()
    wait_for(app, lambda: bool(done))
    settle(app, c)
    c.grab().save("docs/race.png")


class _Host:
    """The dialogs a controller may ask for; making pictures never opens a file, so none is shown."""

    def show_error(self, title: str, text: str) -> None:
        raise RuntimeError(f"{title}: {text}")

    show_info = show_error

    def ask_yes_no(self, title: str, text: str) -> bool:
        return False

    def ask_open_path(self):
        return None

    def ask_save_path(self):
        return None, ""

    def show_status(self, text: str, timeout_ms: int = 0) -> None:
        pass


def models(app: QApplication, session, tasks) -> None:
    from app.controllers.weightfiles import WeightFileController
    from app.settings import AppSettings
    from app.tabs.models import ModelsPage
    from engine.nn.network import make_mlp
    from engine.nn.optimizers import SGD
    from engine.train.loop import TrainSettings, train

    ds, net = session.dataset, session.network
    book = make_mlp([784, 50, 100, 10], activation="sigmoid", seed=1)
    train(book, SGD(lr=0.5), ds.x_train, ds.t_train, settings=TrainSettings(batch_size=100, epochs=4))
    session.add_model("book MLP 784-50-100-10 sigmoid", book)
    m = ModelsPage(session, WeightFileController(session, tasks, AppSettings(), _Host()))
    pa, pb = net.predict(ds.x_test), book.predict(ds.x_test)
    disagree = np.flatnonzero(pa.argmax(1) != pb.argmax(1))  # a digit the two models read differently
    k = disagree[np.argmax(np.minimum(pa[disagree].max(1), pb[disagree].max(1)))] if len(disagree) else 0
    m.set_image(ds.x_test[k].reshape(28, 28))
    settle(app, m, (1000, 520))
    m.grab().save("docs/models.png")


def main(argv: list[str]) -> int:
    from app.threads import TaskRegistry

    which = argv or ALL
    app = QApplication.instance() or QApplication([])
    tasks = TaskRegistry()  # as in the window: every background task, stopped and waited for at the end
    try:
        if "labs" in which:
            labs(app, tasks)
        if "landscape-3d" in which:
            landscape_3d(app)
        if {"confusion", "race", "models"} & set(which):
            session = trained_session()
            for name, make in (("confusion", confusion), ("race", race), ("models", models)):
                if name in which:
                    make(app, session, tasks)
    finally:
        tasks.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
