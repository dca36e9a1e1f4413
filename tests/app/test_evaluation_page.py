"""The Evaluation tab on a small network trained for a moment: its numbers must be the engine's numbers."""
import time

import numpy as np
import pytest
from PySide6.QtCore import Qt

from app.tabs.evaluation import EvaluationPage
from app.session import Session
from engine.nn.network import make_mlp
from engine.train.loop import EpochMetrics
from widgets.mistake_gallery import MistakeGallery



@pytest.fixture
def panel(qtbot, trained, tasks):
    ds, net = trained
    session = Session()
    p = EvaluationPage(session, tasks)
    qtbot.addWidget(p)
    session.set_dataset(ds)
    session.set_network(net, "784-30-10 test net")
    return p


def _evaluate(qtbot, panel):
    with qtbot.waitSignal(panel.evaluationReady, timeout=20_000) as blocker:
        qtbot.mouseClick(panel.evaluate_button, Qt.MouseButton.LeftButton)
    return blocker.args[0]


def test_hidden_panel_does_no_work_until_asked(panel):
    assert not panel.is_busy() and panel.evaluation is None
    assert panel.evaluate_button.isEnabled()


def test_numbers_match_a_direct_count(qtbot, panel, trained):
    ds, net = trained
    ev = _evaluate(qtbot, panel)
    pred = net.predict(ds.x_test).argmax(axis=1)
    t = ds.t_test
    cm = panel.matrix.matrix()
    assert cm.sum() == len(ds.x_test)
    direct = np.zeros((10, 10), int)
    np.add.at(direct, (t, pred), 1)
    np.testing.assert_array_equal(cm, direct)
    np.testing.assert_array_equal(ev.confusion, direct)
    for c in range(10):
        assert panel.matrix.per_class_accuracy()[c] == pytest.approx(np.mean(pred[t == c] == c))
    loss, acc = net.evaluate(ds.x_test, ds.t_test)
    assert ev.accuracy == pytest.approx(acc) and 0.5 < acc < 1.0
    assert f"{acc:.2%}" in panel.summary.text()
    # the gallery holds exactly the mistakes, most confident first
    entries = panel.gallery.entries()
    assert len(entries) == int(np.sum(pred != t)) > 0
    for index, true, guess, top in entries:
        assert true == t[index] and guess == pred[index] != true
    confs = [top[0][1] for *_, top in entries]
    assert confs == sorted(confs, reverse=True)
    panel.gallery.set_sort("index")
    assert [e[0] for e in panel.gallery.entries()] == sorted(e[0] for e in entries)


def test_clicking_a_cell_shows_its_images(show, qtbot, panel, trained):
    ds, net = trained
    show(panel, 900, 600)
    qtbot.waitUntil(lambda: panel.evaluation is not None and not panel.is_busy(), timeout=20_000)
    cm = panel.matrix.matrix()
    off = cm - np.diag(np.diag(cm))
    i, j = np.unravel_index(np.argmax(off), off.shape)
    with qtbot.waitSignal(panel.matrix.cellClicked) as blocker:
        qtbot.mouseClick(panel.matrix, Qt.MouseButton.LeftButton, pos=panel.matrix.cell_rect(i, j).center())
    assert blocker.args == [i, j]
    entries = panel.gallery.entries()
    assert len(entries) == cm[i, j]
    assert all(ds.t_test[e[0]] == i and e[2] == j for e in entries)
    # a diagonal cell shows right answers
    qtbot.mouseClick(panel.matrix, Qt.MouseButton.LeftButton, pos=panel.matrix.cell_rect(3, 3).center())
    assert panel.gallery.entry_count() == cm[3, 3]
    panel.show_all_mistakes()
    assert panel.gallery.entry_count() == off.sum()


def test_clicking_a_mistake_puts_it_on_the_canvas(show, qtbot, panel, trained):
    ds, _ = trained
    show(panel, 900, 600)
    qtbot.waitUntil(lambda: panel.evaluation is not None and not panel.is_busy(), timeout=20_000)
    view = panel.gallery.view
    row = 2
    index = panel.gallery.entries()[row][0]
    rect = view.visualRect(panel.gallery.model.index(row, 0))
    assert rect.isValid()
    with qtbot.waitSignal(panel.session.canvasImageRequested) as blocker:
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    img = blocker.args[0]
    assert img.shape == (28, 28)
    np.testing.assert_array_equal(img, ds.x_test[index].reshape(28, 28))


def test_visible_panel_follows_network_and_epochs(qtbot, panel, trained):
    ds, net = trained
    panel.show()
    qtbot.waitUntil(lambda: panel.evaluation is not None and not panel.is_busy(), timeout=20_000)
    fresh = make_mlp([784, 30, 10], seed=5)  # untrained: about 10 % right
    with qtbot.waitSignal(panel.evaluationReady, timeout=20_000) as blocker:
        panel.session.set_network(fresh, "untrained")
    assert blocker.args[0].accuracy == pytest.approx(fresh.accuracy(ds.x_test, ds.t_test))
    with qtbot.waitSignal(panel.evaluationReady, timeout=20_000):
        panel.session.epochFinished.emit(EpochMetrics(1, 10, 1.0, 0.5, 1.0, 0.5, 1.0))


def test_repeated_requests_coalesce_and_the_registry_stops_them(qtbot, panel, tasks):
    panel.evaluate()
    panel.evaluate()
    panel.evaluate()
    assert panel.is_busy() and len(tasks.running()) == 1  # one at a time; the others wait for one more round
    [task] = tasks.running()
    start = time.perf_counter()
    assert tasks.shutdown()
    assert time.perf_counter() - start < 5 and not task.thread.isRunning()
    qtbot.wait(50)  # the cancelled evaluation's end arrives: no second round once the window is closing
    panel.evaluate()
    assert tasks.running() == [] and not panel.summary.text().startswith("Evaluation failed")


def test_a_failed_evaluation_says_why(qtbot, panel, monkeypatch):
    import app.tabs.evaluation as page_module

    def broken(*args, **kwargs):
        raise ArithmeticError("the network's output has the wrong shape")

    monkeypatch.setattr(page_module, "evaluate_model", broken)
    with qtbot.waitSignal(panel.evaluationFailed, timeout=10_000) as blocker:
        panel.evaluate()
    assert isinstance(blocker.args[0], ArithmeticError)
    assert panel.summary.text() == "Evaluation failed: ArithmeticError: the network's output has the wrong shape"


def test_gallery_takes_ten_thousand_entries_without_freezing(qtbot):
    gallery = MistakeGallery()
    qtbot.addWidget(gallery)
    gallery.resize(600, 400)
    gallery.show()
    rng = np.random.default_rng(0)
    images = rng.random((10_000, 784)).astype(np.float32)
    entries = [(i, i % 10, (i + 1) % 10, ((int((i + 1) % 10), float(p)), (0, 0.0), (1, 0.0)))
               for i, p in enumerate(rng.random(10_000))]
    start = time.perf_counter()
    gallery.set_entries(images, entries, "many")
    qtbot.wait(50)
    assert time.perf_counter() - start < 2.0
    assert gallery.entry_count() == 10_000
    shown = gallery.entries()
    assert shown[0][3][0][1] == max(e[3][0][1] for e in entries)
    with qtbot.waitSignal(gallery.imageActivated) as blocker:
        gallery.activate_row(0)
    assert blocker.args == [shown[0][0]]
    with pytest.raises(ValueError, match="unknown gallery sort"):
        gallery.set_sort("size")
