"""One drawing, many models: every open network's probabilities for the same image, side by side."""
import numpy as np
import pytest
from PySide6.QtCore import Qt

from app.models_panel import ModelsPanel, describe_agreement
from app.session import Session
from engine.network import make_mlp
from engine.weights import save_weights



@pytest.fixture
def panel(qtbot, trained):
    session = Session()
    session.set_network(trained[1], "mine")
    p = ModelsPanel(session)
    qtbot.addWidget(p)
    yield p
    p.shutdown()


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


def test_blank_drawing_shows_no_prediction(panel, trained):
    panel.set_image(trained[0].x_test[1])
    panel.set_image(None)
    assert panel.bars.probabilities() is None and panel.digit.image() is None
    assert "Draw a digit" in panel.verdict.text()
    with pytest.raises(ValueError, match="28×28"):
        panel.set_image(np.zeros((5, 5)))


def test_open_weights_adds_a_model_and_close_removes_it(qtbot, panel, trained, tmp_path):
    ds, net = trained
    path = save_weights(net, tmp_path / "book.npz")
    with qtbot.waitSignal(panel.modelLoaded, timeout=20_000) as blocker:
        panel.open_weights(path)
    assert blocker.args == ["book"]
    img = ds.x_test[3]
    panel.set_image(img)
    np.testing.assert_allclose(panel.bars.probabilities("book"), panel.bars.probabilities("mine"), rtol=1e-5)
    panel.model_list.setCurrentRow(1)
    assert panel.remove_button.isEnabled()
    qtbot.mouseClick(panel.remove_button, Qt.MouseButton.LeftButton)
    assert panel.session.models == {} and panel.bars.series_names() == ["mine"]
    panel.model_list.setCurrentRow(0)
    assert not panel.remove_button.isEnabled()  # the trained network is not closed from here


def test_a_broken_weight_file_is_reported_and_changes_nothing(qtbot, panel, tmp_path, monkeypatch):
    bad = tmp_path / "broken.npz"
    bad.write_bytes(b"not a zip file at all")
    errors = []
    monkeypatch.setattr(panel, "show_error", lambda title, text: errors.append((title, text)))
    with qtbot.waitSignal(panel.loadFailed, timeout=20_000):
        panel.open_weights(bad)
    assert errors and "broken.npz" in errors[0][0]
    assert panel.session.models == {}


def test_describe_agreement():
    a = np.eye(10)[3] * 0.9 + 0.01
    b = np.eye(10)[5] * 0.9 + 0.01
    assert describe_agreement({"A": a, "B": a}).startswith("All 2 models say 3")
    assert describe_agreement({"A": a, "B": b}) == "The models disagree: A says 3 (91%), B says 5 (91%)."
    assert describe_agreement({"A": None}) == "No model can read this image."
