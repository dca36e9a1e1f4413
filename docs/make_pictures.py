"""Regenerate the README's pictures of the labs, evaluation, race and models pages, grabbed from the window itself.

    QT_QPA_PLATFORM=offscreen python docs/make_pictures.py [labs] [confusion] [race] [models]
    xvfb-run -a python docs/make_pictures.py landscape-3d      # needs a display with OpenGL

Each picture is the whole main window at 1280×760 (a laptop screen) showing that page, as a person sees
it. The window mid-training comes from ``python bench/bench_gui.py --screenshot docs/screenshot-training.png``.
Run from the repository root; the pictures are written to docs/. The window's settings go to a temporary
folder, not yours.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time

import numpy as np
from PySide6.QtCore import QEventLoop, Qt
from PySide6.QtWidgets import QApplication

ALL = ["labs", "confusion", "race", "models"]
SIZE = (1280, 760)


def settle(app: QApplication, rounds: int = 25) -> None:
    for _ in range(rounds):
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
        time.sleep(0.01)


def wait_for(app: QApplication, condition, seconds: float = 120) -> None:
    end = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("the view did not finish in time")
        settle(app, rounds=1)


def labs(app: QApplication, window) -> None:
    d = window.page("Gradient descent")
    d.step(100_000)
    show(app, window, "Gradient descent", "docs/lab-descent.png")
    landscape = window.page("Loss landscape")
    landscape.set_surface("bowl")
    window.show_page("Loss landscape")
    wait_for(app, lambda: not landscape.is_computing())
    show(app, window, "Loss landscape", "docs/lab-landscape.png")
    window.page("Loss functions").set_example("book-wrong")
    window.draw.canvas.clear()  # the lab follows the canvas; the book's example is the picture
    show(app, window, "Loss functions", "docs/lab-loss.png")
    g = window.page("Gradients")
    window.show_page("Gradients")
    g.start_check()
    wait_for(app, lambda: g.last_report is not None)
    show(app, window, "Gradients", "docs/lab-gradients.png")


def landscape_3d(app: QApplication, window) -> None:
    lab = window.page("Loss landscape")
    if lab.view3d is None:
        raise SystemExit("no OpenGL here: run under a display with OpenGL (e.g. xvfb-run) with PyOpenGL installed")
    lab.set_surface("bowl")
    window.show_page("Loss landscape")
    wait_for(app, lambda: not lab.is_computing())
    lab.view3d.parent().parent().setCurrentIndex(1)  # the 3-D tab
    show(app, window, "Loss landscape", "docs/lab-landscape-3d.png")


def show(app: QApplication, window, title: str, path: str) -> None:
    window.show_page(title)
    settle(app)
    window.grab().save(path)


def train_network(window):
    """The offline sample and a 784-100-10 network trained for 5 epochs, as the window's dataset and network."""
    from engine.data.catalog import load_dataset
    from engine.nn.network import make_mlp
    from engine.nn.optimizers import Adam
    from engine.train.loop import TrainSettings, train

    ds = load_dataset("mnist-sample")
    net = make_mlp([784, 100, 10], seed=0)
    train(net, Adam(lr=0.001), ds.x_train, ds.t_train, settings=TrainSettings(batch_size=100, epochs=5))
    window.datasets.use(ds)
    window.session.set_network(net, "784-100-10 relu (Adam, 5 epochs)")
    return ds, net


def confusion(app: QApplication, window) -> None:
    p = window.page("Evaluate")
    window.show_page("Evaluate")
    wait_for(app, lambda: p.evaluation is not None and not p.is_busy())
    cm = p.evaluation.confusion
    i, j = np.unravel_index((cm - np.diag(np.diag(cm))).argmax(), cm.shape)  # the most common mistake
    p.show_cell(int(i), int(j))
    p.gallery.activate_row(0)  # its most confident mistake, on the canvas with its probabilities
    show(app, window, "Evaluate", "docs/confusion.png")


def race(app: QApplication, window) -> None:
    c = window.page("Compare")
    window.show_page("Compare")
    c.iterations_spin.setValue(1000)
    done = []
    c.raceFinished.connect(done.append)
    c.start_race()
    wait_for(app, lambda: bool(done))
    show(app, window, "Compare", "docs/race.png")


def models(app: QApplication, window, ds, net) -> None:
    from engine.nn.network import make_mlp
    from engine.nn.optimizers import SGD
    from engine.train.loop import TrainSettings, train

    book = make_mlp([784, 50, 100, 10], activation="sigmoid", seed=1)
    train(book, SGD(lr=0.5), ds.x_train, ds.t_train, settings=TrainSettings(batch_size=100, epochs=4))
    window.session.add_model("book MLP 784-50-100-10 sigmoid", book)  # beside the current network, listed first
    pa, pb = net.predict(ds.x_test), book.predict(ds.x_test)
    disagree = np.flatnonzero(pa.argmax(1) != pb.argmax(1))  # a digit the two models read differently
    k = disagree[np.argmax(np.minimum(pa[disagree].max(1), pb[disagree].max(1)))] if len(disagree) else 0
    window.session.show_on_canvas(ds.x_test[k].reshape(28, 28))
    show(app, window, "Models", "docs/models.png")


def main(argv: list[str]) -> int:
    os.environ.setdefault("DIGITLAB_CONFIG_DIR", tempfile.mkdtemp())  # the pictures' window has its own settings
    from app.gui import create_application
    from app.main_window import MainWindow

    which = argv or ALL
    app = QApplication.instance() or create_application([])
    window = MainWindow(load_dataset_on_start=False)
    window.setWindowState(Qt.WindowState.WindowNoState)  # offscreen screens are small: not maximised
    window.resize(*SIZE)
    window.show()
    settle(app)
    try:
        if "landscape-3d" in which:
            landscape_3d(app, window)
        if {"labs", "confusion", "race", "models"} & set(which):
            ds, net = train_network(window)
            if "labs" in which:
                labs(app, window)
            for name, make in (("confusion", confusion), ("race", race)):
                if name in which:
                    make(app, window)
            if "models" in which:
                models(app, window, ds, net)
    finally:
        window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
