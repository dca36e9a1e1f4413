"""One drawing, many models: every open network's probabilities for the same image, side by side."""
import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QAbstractButton, QListWidget

from app.controllers.weightfiles import WeightFileController
from app.session import Session
from app.settings import AppSettings
from app.tabs.models import ModelsPage, describe_agreement
from widgets.probability_bars import percent_text
from engine.nn.network import make_mlp
from engine.weightfiles.save import save_weights


@pytest.fixture
def panel(qtbot, trained, tasks, host):
    session = Session()
    session.set_network(trained[1], "mine")
    p = ModelsPage(session, WeightFileController(session, tasks, AppSettings(), host))
    qtbot.addWidget(p)
    p.show()  # a hidden page predicts only once it is shown (see the test below)
    return p


def test_every_model_reads_the_same_image(panel, trained):
    ds, net = trained
    other = make_mlp([784, 10, 10], activation="sigmoid", seed=1)  # untrained: its own opinion
    panel.session.add_model("untrained", other)
    assert [panel.model_list.item(i).text() for i in range(panel.model_list.count())] == ["mine", "untrained"]
    img = ds.x_test[7].reshape(28, 28)
    panel.set_image(img)
    assert panel.bars.series_names() == ["mine", "untrained"]
    np.testing.assert_allclose(panel.bars.probabilities("mine"), net.predict(img), rtol=1e-6)
    np.testing.assert_allclose(panel.bars.probabilities("untrained"), other.predict(img), rtol=1e-6)
    mine, theirs = int(np.argmax(net.predict(img))), int(np.argmax(other.predict(img)))
    assert f"mine says {mine}" in panel.verdict.text() and f"untrained says {theirs}" in panel.verdict.text()
    assert panel.digit.image() is not None


def test_new_network_and_removed_model_update_the_bars(panel, trained):
    ds, net = trained
    panel.session.add_model("extra", net.copy())
    panel.set_image(ds.x_test[0])  # 784 values are fine too
    assert "All 2 models say" in panel.verdict.text()
    panel.session.remove_model("extra")
    assert panel.bars.series_names() == ["mine"]
    fresh = make_mlp([784, 5, 10], seed=3)
    panel.session.set_network(fresh, "fresh")
    np.testing.assert_allclose(panel.bars.probabilities("fresh"), fresh.predict(ds.x_test[0]), rtol=1e-6)


def test_the_network_in_training_is_read_again_as_it_learns_when_the_page_shows(panel, trained):
    ds, net = trained
    learner = net.copy()
    panel.session.set_network(learner, "learner (training)")
    img = ds.x_test[4].reshape(28, 28)
    panel.set_image(img)
    before = panel.bars.probabilities("learner (training)").copy()
    panel.hide()  # the person is on another page
    learner.params["b2"][:] += np.linspace(-3, 3, 10, dtype=learner.params["b2"].dtype)  # training moved the weights
    panel.session.weightsUpdated.emit()  # the page is hidden: nobody would see the new bars, so it waits …
    panel.session.set_test_accuracy(0.5)  # … as it does when an epoch ends …
    np.testing.assert_array_equal(panel.bars.probabilities("learner (training)"), before)
    panel.show()  # … until it is shown
    np.testing.assert_allclose(panel.bars.probabilities("learner (training)"), learner.predict(img), rtol=1e-6)
    assert not np.allclose(panel.bars.probabilities("learner (training)"), before)
    learner.params["b2"][:] -= 1.0
    panel.session.weightsUpdated.emit()  # shown: at once
    np.testing.assert_allclose(panel.bars.probabilities("learner (training)"), learner.predict(img), rtol=1e-6)
    panel.session.add_model("other", net)
    panel.model_list.setCurrentRow(1)
    panel.session.set_test_accuracy(0.9)  # an epoch ended: the person's selection stays
    assert panel.model_list.currentRow() == 1 and panel.remove_button.isEnabled()
    panel.session.set_network_label("learner (finished, 2 epochs)")
    assert panel.model_list.item(0).text() == "learner (finished, 2 epochs)"
    assert panel.bars.series_names()[0] == "learner (finished, 2 epochs)"


def test_blank_drawing_shows_no_prediction(panel, trained):
    panel.set_image(trained[0].x_test[1])
    panel.set_image(None)
    assert panel.bars.probabilities() is None and panel.digit.image() is None
    assert "Draw a digit" in panel.verdict.text()
    with pytest.raises(ValueError, match="28×28"):
        panel.set_image(np.zeros((5, 5)))


def test_open_weights_adds_a_model_and_close_removes_it(qtbot, panel, trained, tmp_path, host):
    ds, net = trained
    path = save_weights(net, tmp_path / "book.npz")
    host.open_path = str(path)
    current = panel.session.network
    with qtbot.waitSignal(panel.session.modelsChanged, timeout=20_000):
        qtbot.mouseClick(panel.open_button, Qt.MouseButton.LeftButton)  # the window's one way of opening files
    assert list(panel.session.models) == ["book"] and panel.session.network is current  # added, not swapped in
    assert panel.status.full_text() == "Opened book: 784-30-10 MLP, relu."  # the rest in its tooltip
    assert panel.weightfiles.recent_files() == []  # an extra model is not the network File ▸ Open recent reopens
    img = ds.x_test[3]
    panel.set_image(img)
    np.testing.assert_allclose(panel.bars.probabilities("book"), panel.bars.probabilities("mine"), rtol=1e-5)
    panel.model_list.setCurrentRow(1)
    assert panel.remove_button.isEnabled()
    qtbot.mouseClick(panel.remove_button, Qt.MouseButton.LeftButton)
    assert panel.session.models == {} and panel.bars.series_names() == ["mine"]
    panel.model_list.setCurrentRow(0)
    assert not panel.remove_button.isEnabled()  # the trained network is not closed from here


def test_a_broken_weight_file_is_reported_and_changes_nothing(qtbot, panel, tmp_path, host):
    bad = tmp_path / "broken.npz"
    bad.write_bytes(b"not a zip file at all")
    with qtbot.waitSignal(panel.weightfiles.loadFailed, timeout=20_000):
        panel.weightfiles.load(bad, as_model=True)
    [(title, text)] = host.errors
    assert "broken.npz" in text and "No model was added" in text
    assert panel.session.models == {} and panel.status.text() == "Could not open broken.npz."


def test_two_files_with_one_name_get_distinct_names(qtbot, panel, trained, tmp_path):
    a = save_weights(trained[1], tmp_path / "net.npz")
    (tmp_path / "copy").mkdir()
    b = save_weights(trained[1], tmp_path / "copy" / "net.npz")
    for path in (a, b):
        with qtbot.waitSignal(panel.weightfiles.modelAdded, timeout=20_000):
            panel.weightfiles.load(path, as_model=True)
    assert list(panel.session.models) == ["net", "net (2)"]


def test_describe_agreement():
    a = np.eye(10)[3] * 0.9 + 0.01
    b = np.eye(10)[5] * 0.9 + 0.01
    assert describe_agreement({"A": a, "B": a}).startswith("All 2 models say 3")
    assert describe_agreement({"A": a, "B": b}) == "The models disagree: A says 3 (91.0 %), B says 5 (91.0 %)."
    assert describe_agreement({"A": None}) == "No model can read this image."


def test_an_untrained_model_is_named_as_such_not_counted_as_an_opinion():
    a = np.eye(10)[3] * 0.9 + 0.01
    b = np.eye(10)[5] * 0.9 + 0.01
    assert describe_agreement({"new": b, "A": a, "B": a}, untrained={"new"}) == \
        "All 2 models say 3: A says 3 (91.0 %), B says 3 (91.0 %). Not trained yet: new."
    assert describe_agreement({"new": b, "A": a}, untrained={"new"}) == "A says 3 (91.0 %). Not trained yet: new."
    assert describe_agreement({"new": b}, untrained={"new"}) == "Not trained yet: new; its answers are guesses."


def filled_square() -> np.ndarray:
    """A 28×28 'drawing' that is all ink in its box: filled in, nothing like a digit."""
    img = np.zeros((28, 28), dtype=np.float32)
    img[4:24, 6:22] = 1.0
    return img


def test_a_drawing_that_is_not_like_a_digit_is_said_so_whatever_the_models_answer(panel, trained):
    panel.session.add_model("copy", trained[1].copy())
    panel.set_image(filled_square())
    text = panel.verdict.full_text()
    assert text.startswith("Not like a digit: strokes too thick (filled in)"), text
    assert "mine says" in text and "copy says" in text  # the answers are still there, after the warning
    assert panel.verdict.tone() == "error"
    assert "MNIST" in panel.verdict.toolTip() and "1 in" in panel.verdict.toolTip()  # how rare, as on the canvas
    panel.set_image(trained[0].x_test[0])  # a real digit: no warning
    assert not panel.verdict.full_text().startswith("Not like a digit") and panel.verdict.tone() == "plain"


def test_the_untrained_network_is_named_not_counted_on_the_models_page(panel, trained):
    ds, net = trained
    panel.session.add_model("file", net)
    panel.session.set_network(make_mlp([784, 16, 10], seed=5), "784-16-10 relu (untrained)", trained=False)
    img = ds.x_test[0].reshape(28, 28)
    panel.set_image(img)
    answer = int(np.argmax(net.predict(img)))
    text = panel.verdict.full_text()
    assert text.startswith(f"file says {answer} (") and text.endswith("Not trained yet: 784-16-10 relu (untrained).")
    assert "disagree" not in text
    panel.session.remove_model("file")
    assert panel.verdict.full_text() == "Not trained yet: 784-16-10 relu (untrained); its answers are guesses."
    assert panel.verdict.tone() == "warning"
    panel.session.mark_trained()  # a training step: now it has an opinion
    assert panel.verdict.full_text().startswith("784-16-10 relu (untrained) says")


def test_the_verdict_writes_a_probability_exactly_as_its_bar_does(qtbot, panel, trained, monkeypatch):
    p = np.full(10, 0.003 / 9)
    p[5] = 0.997
    assert describe_agreement({"A": p}) == "A says 5 (99.7 %)."  # not "100%" beside a 99.7 % bar
    ds, net = trained
    img = ds.x_test[0].reshape(28, 28)
    panel.set_image(img)
    painted = []
    monkeypatch.setattr("widgets.probability_bars.percent_text", lambda v: painted.append(percent_text(v)) or "")
    panel.bars.resize(400, 300)
    panel.bars.grab()  # paint: record what each bar writes
    probs = net.predict(img).reshape(-1)
    top = percent_text(float(probs.max()))
    assert f"mine says {int(np.argmax(probs))} ({top})" in panel.verdict.full_text()
    assert top in painted


def test_draw_a_digit_is_said_once(panel, trained):
    panel.set_image(None)
    assert panel.bars.message() == "" and "Draw a digit" in panel.verdict.text()
    panel.session.set_network(None)
    assert panel.bars.message() == "" and "No model yet" in panel.verdict.text()


def test_open_weights_and_the_bars_stay_put_whatever_the_messages_say(qtbot, panel, trained, tmp_path):
    panel.resize(1000, 560)
    panel.show()
    qtbot.waitExposed(panel)

    def places():
        qtbot.wait(10)
        return [(w.mapTo(panel, QPoint(0, 0)), w.size()) for w in (panel.open_button, panel.remove_button, panel.bars)]

    before = places()
    for i, name in enumerate(["a.npz", "a-much-longer-name-" + "x" * 120 + ".npz"]):
        path = save_weights(trained[1], tmp_path / name)
        with qtbot.waitSignal(panel.weightfiles.modelAdded, timeout=20_000):
            panel.weightfiles.load(path, as_model=True)
        assert panel.status.full_text().startswith("Opened") and places() == before
        assert f"from {path}" in panel.status.details() and str(path) in panel.status.toolTip()  # the whole summary
        if name == "a.npz":  # "Opened a: 784-30-10 MLP, relu." is read whole, not cut at "(pick…"
            assert not panel.status.is_cut() and panel.status.text() == "Opened a: 784-30-10 MLP, relu."
    panel.set_image(trained[0].x_test[5])  # a verdict naming three models
    assert places() == before
    panel.set_image(None)
    assert places() == before


def test_every_control_explains_itself(panel):
    controls = panel.findChildren(QAbstractButton) + panel.findChildren(QListWidget) + [panel.bars, panel.digit]
    assert all(c.toolTip() for c in controls), [c for c in controls if not c.toolTip()]
    panel.session.add_model("a model with a long name " * 4, panel.session.network)
    item = panel.model_list.item(1)
    assert item.toolTip() and "a model with a long name" in item.toolTip()
