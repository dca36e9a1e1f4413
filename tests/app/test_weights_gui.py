"""Weight files in the window: open (menu, recent list, drop), save, and errors that keep the current model."""
import pickle
import threading

import numpy as np
import pytest

from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
from PySide6.QtGui import QDropEvent

import app.controllers.weightfiles as weightfiles
from app.main_window import MainWindow
from engine.data.dataset import Dataset
from engine.nn.network import make_mlp
from engine.train.config import TrainConfig
from engine.weightfiles.save import save_weights


@pytest.fixture
def window(quiet_window):
    return quiet_window


@pytest.fixture
def weight_file(tmp_path):
    net = make_mlp([784, 24, 10], activation="sigmoid", seed=3)
    path = tmp_path / "small.npz"
    save_weights(net, path)
    return net, path


def put_digit(window):
    digit = np.zeros((28, 28), dtype=np.float32)
    digit[5:23, 10:18] = 1.0
    window.draw.canvas.set_image(digit)


def load_and_wait(qtbot, window, path):
    with qtbot.waitSignal(window.session.networkChanged, timeout=10_000):
        window.weightfiles.load(path)


def test_loading_a_file_updates_the_prediction_and_shows_what_it_is(qtbot, window, weight_file):
    net, path = weight_file
    put_digit(window)
    before = window.draw.predictor.probabilities.copy()
    load_and_wait(qtbot, window, path)
    expected = net.predict(window.draw.predictor.image28)
    np.testing.assert_allclose(window.draw.predictor.probabilities, expected, rtol=1e-5)
    assert not np.allclose(before, expected)
    assert window.weightfiles.loaded.activation == "sigmoid"
    assert "small.npz" in window.draw.model_label.text() and "sigmoid" in window.draw.model_label.text()
    assert "small.npz" in window.statusBar().currentMessage()
    assert window.settings.recent_files()[0] == str(path.resolve())
    assert [a.toolTip() for a in window.recent_menu.actions()] == [str(path.resolve())]


def test_test_accuracy_of_a_loaded_file_is_computed_in_the_background(qtbot, window, weight_file):
    net, path = weight_file
    rng = np.random.default_rng(1)
    x = rng.random((300, 784), dtype=np.float32)
    t = net.predict(x).argmax(axis=1)
    t[:100] = (t[:100] + 1) % 10  # the file's own answers, a third of them made wrong: accuracy 2/3
    window.datasets.use(Dataset("probe", x, t, x, t))
    load_and_wait(qtbot, window, path)
    qtbot.waitUntil(lambda: window.session.test_accuracy is not None, timeout=10_000)
    assert window.session.test_accuracy == pytest.approx(200 / 300)
    assert "66.7%" in window.draw.model_label.text()


def test_a_broken_file_shows_an_error_and_keeps_the_model(qtbot, window, tmp_path):
    bad = tmp_path / "broken.pkl"
    bad.write_bytes(b"\x80\x04not a pickle at all")
    current = window.session.network
    put_digit(window)
    before = window.draw.predictor.probabilities.copy()
    window.weightfiles.load(bad)
    qtbot.waitUntil(lambda: bool(window.errors), timeout=10_000)
    title, text = window.errors[0]
    assert "broken.pkl" in text and "unchanged" in text
    assert window.session.network is current
    np.testing.assert_array_equal(window.draw.predictor.probabilities, before)


def test_save_npz_and_pickle_then_load_back(qtbot, window, tmp_path):
    net = window.session.network
    window.ask_save_path = lambda: (str(tmp_path / "mine"), "DigitLab weights (*.npz)")
    saved = window.weightfiles.save()
    assert saved == tmp_path / "mine.npz" and saved.is_file()
    window.ask_save_path = lambda: (str(tmp_path / "book"), "Book-compatible pickle (*.pkl *.pickle)")
    saved_pkl = window.weightfiles.save()
    assert saved_pkl.suffix == ".pkl"
    with open(saved_pkl, "rb") as f:
        params = pickle.load(f)  # the book's `network.params = pickle.load(f)` works
    assert sorted(params) == sorted(net.params)
    np.testing.assert_array_equal(params["W1"], net.params["W1"])
    load_and_wait(qtbot, window, saved)
    for key, value in net.params.items():
        np.testing.assert_array_equal(window.session.network.params[key], value)
    assert window.session.network is not net
    assert window.errors == []


@pytest.mark.parametrize("chosen, suffix", [("PyTorch state_dict (*.pt *.pth)", ".pt"), ("safetensors (*.safetensors)",
                                                                                        ".safetensors")])
def test_save_for_pytorch_by_the_chosen_filter_then_load_back(qtbot, window, tmp_path, chosen, suffix):
    net = window.session.network
    window.ask_save_path = lambda: (str(tmp_path / "mine"), chosen)
    saved = window.weightfiles.save()
    assert saved == tmp_path / f"mine{suffix}" and saved.is_file()
    load_and_wait(qtbot, window, saved)
    x = np.random.default_rng(0).random((5, 784), dtype=np.float32)
    np.testing.assert_allclose(window.session.network.scores(x), net.scores(x), rtol=1e-5, atol=1e-6)
    assert window.weightfiles.loaded.activation_source == "file" and window.errors == []


def test_open_menu_uses_the_chosen_path(qtbot, window, weight_file):
    _net, path = weight_file
    window.ask_open_path = lambda: str(path)
    with qtbot.waitSignal(window.session.networkChanged, timeout=10_000):
        window.action_open.trigger()
    assert window.weightfiles.loaded.path.endswith("small.npz")


def test_dropping_a_file_on_the_window_loads_it(qtbot, window, weight_file):
    _net, path = weight_file
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    event = QDropEvent(QPoint(10, 10).toPointF(), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    with qtbot.waitSignal(window.session.networkChanged, timeout=10_000):
        window.dropEvent(event)
    assert window.weightfiles.loaded is not None and window.errors == []


def test_a_file_opened_mid_training_replaces_the_run(qtbot, window, weight_file, small_dataset):
    net, path = weight_file
    window.datasets.use(small_dataset)
    window.panel.set_config(TrainConfig(hidden=[20], batch_size=10, epochs=100, optimizer="sgd", lr=0.1))
    window.training.start()
    qtbot.waitUntil(lambda: window.training.iteration > 0, timeout=5000)
    thread = window.training.task.thread
    runs = []
    window.session.runAdded.connect(runs.append)
    load_and_wait(qtbot, window, path)
    assert not window.training.is_training and window.session.training_state == "stopped"
    assert window.training_page.loss_plot.iteration_count == 0  # the plot no longer shows the abandoned run
    qtbot.waitUntil(thread.isFinished, timeout=5000)
    qtbot.wait(50)
    assert runs == []  # ... and its end is not recorded as a run
    np.testing.assert_array_equal(window.session.network.params["W1"], net.params["W1"])


def test_recent_files_survive_a_restart(qtbot, window, weight_file):
    _net, path = weight_file
    load_and_wait(qtbot, window, path)
    window.close()
    again = MainWindow(load_dataset_on_start=False, with_tabs=False)
    qtbot.addWidget(again)
    actions = again.recent_menu.actions()
    assert [a.toolTip() for a in actions] == [str(path.resolve())]
    with qtbot.waitSignal(again.session.networkChanged, timeout=10_000):
        actions[0].trigger()
    again.close()


def test_the_last_file_asked_for_wins_even_when_an_older_one_finishes_later(qtbot, window, tmp_path, monkeypatch):
    first = save_weights(make_mlp([784, 16, 10], seed=1), tmp_path / "first.npz")
    second = save_weights(make_mlp([784, 24, 10], seed=2), tmp_path / "second.npz")
    real, release, reading, read = weightfiles.load_weights, threading.Event(), threading.Event(), []

    def load(path, probe=None):
        read.append(path)
        if path == str(first):
            reading.set()
            release.wait(10)  # the first file is the slow one
        return real(path, probe=probe)

    monkeypatch.setattr(weightfiles, "load_weights", load)
    superseded = []
    window.weightfiles.loadSuperseded.connect(superseded.append)
    window.weightfiles.load(first)
    assert reading.wait(5)
    with qtbot.waitSignal(window.session.networkChanged, timeout=10_000):
        window.weightfiles.load(second)
    release.set()
    qtbot.waitUntil(lambda: superseded == [str(first)], timeout=10_000)
    assert window.weightfiles.loaded.path.endswith("second.npz")
    assert window.session.network.params["W1"].shape == (784, 24) and window.errors == []
    assert "second.npz" in window.draw.model_label.text()
    assert read == [str(first), str(second)]


def test_open_recent_spam_reads_only_what_is_still_wanted(qtbot, window, tmp_path, monkeypatch):
    """Four quick requests while the first is being read: those replaced while waiting are never read."""
    paths = [save_weights(make_mlp([784, 8 + i, 10], seed=i), tmp_path / f"n{i}.npz") for i in range(5)]
    real, release, reading, read = weightfiles.load_weights, threading.Event(), threading.Event(), []

    def load(path, probe=None):
        read.append(path)
        if path in (str(paths[0]), str(paths[1])):
            reading.set()
            release.wait(10)
        return real(path, probe=probe)

    monkeypatch.setattr(weightfiles, "load_weights", load)
    window.weightfiles.load(paths[0])
    assert reading.wait(5)
    for path in paths[1:]:  # n1 takes the second reader; n2 and n3 wait and are replaced by n4
        window.weightfiles.load(path)
    release.set()
    qtbot.waitUntil(lambda: window.weightfiles.pending() == 0, timeout=10_000)
    assert read[0] == str(paths[0]) and read[-1] == str(paths[4])
    assert str(paths[2]) not in read and str(paths[3]) not in read
    assert window.weightfiles.loaded.path.endswith("n4.npz") and window.errors == []
