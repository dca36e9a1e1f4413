"""Fine-tuning: Start after opening a weight file (or after a run) asks whether to continue training that network."""
import numpy as np
import pytest

from app.controllers.training import CONTINUE, NEW
from engine.nn.network import make_mlp
from engine.train.config import TrainConfig
from engine.weightfiles.save import save_weights

from _training import synthetic_dataset


@pytest.fixture
def window(quiet_window):
    quiet_window.datasets.use(synthetic_dataset())
    quiet_window.panel.set_config(TrainConfig(hidden=[20], batch_size=10, epochs=1, optimizer="sgd", lr=0.1))
    quiet_window.panel.set_pace(None)
    quiet_window.asked = []
    quiet_window.answer = None

    def ask_choice(title, text, choices):
        quiet_window.asked.append((title, text, choices))
        return quiet_window.answer

    quiet_window.ask_choice = ask_choice
    quiet_window.show()
    return quiet_window


@pytest.fixture
def opened(qtbot, window, tmp_path):
    """A 784-24-10 sigmoid network saved to small.npz and opened in the window; returns the session's network."""
    path = tmp_path / "small.npz"
    save_weights(make_mlp([784, 24, 10], activation="sigmoid", seed=3), path)
    with qtbot.waitSignal(window.session.networkChanged, timeout=10_000):
        window.weightfiles.load(path)
    return window.session.network


def finish(qtbot, window, start=lambda w: w.training.start()):
    with qtbot.waitSignal(window.session.runAdded, timeout=10_000) as blocker:
        assert start(window)
    return blocker.args[0]


def test_an_opened_network_shows_read_only_in_the_panel_with_where_it_came_from(window, opened):
    panel = window.panel
    assert panel.shows_loaded_network
    assert panel.hidden.text() == "24" and panel.activation.currentData() == "sigmoid"
    for w in (panel.architecture, panel.hidden, panel.activation, panel.loss, panel.init):
        assert not w.isEnabled()
    for w in (panel.optimizer, panel.lr, panel.batch_size, panel.epochs, panel.seed):
        assert w.isEnabled()  # how to train it further stays the panel's
    note = panel.network_box.loaded_note
    assert note.isVisibleTo(panel) and "small.npz" in note.text() and "Reset for a new network" in note.text()
    assert not panel.init.isVisibleTo(panel)  # how its first weights were drawn no longer matters
    assert panel.config().hidden == [20]  # the panel's own settings wait aside, for a new network


def test_continuing_trains_the_opened_network_itself(qtbot, window, opened):
    before = opened.params["W1"].copy()
    window.answer = CONTINUE
    record = finish(qtbot, window)
    title, text, choices = window.asked[0]
    assert choices == ["Continue training it", "New network", "Cancel"] and "small.npz" in text
    assert window.session.network is opened  # the same object, its weights kept and trained further
    assert not np.array_equal(opened.params["W1"], before)
    assert record.name.startswith("Run 1: fine-tune of small.npz: 784-24-10 sigmoid, sgd lr=0.1")
    assert record.settings["fine_tune_of"] == "small.npz"
    assert record.settings["hidden"] == [24] and record.settings["activation"] == "sigmoid"
    assert window.session.network_label.startswith("fine-tune of small.npz")
    assert window.panel.shows_loaded_network  # still the file's layers


def test_a_new_network_from_the_panel_replaces_the_opened_one(qtbot, window, opened):
    window.answer = NEW
    record = finish(qtbot, window)
    assert window.session.network is not opened
    assert window.session.network.params["W1"].shape == (784, 20)
    assert record.name.startswith("Run 1: 784-20-10 relu") and "fine_tune_of" not in record.settings
    panel = window.panel
    assert not panel.shows_loaded_network and panel.hidden.text() == "20" and panel.hidden.isEnabled()
    assert not panel.network_box.loaded_note.isVisibleTo(panel)


def test_cancelling_the_question_starts_nothing(window, opened):
    window.answer = None
    assert not window.training.start()
    assert window.training.task is None and window.session.network is opened
    assert "cancelled" in window.statusBar().currentMessage()


def test_reset_gives_the_panel_back_its_own_settings(window, opened):
    window.panel.action_reset.trigger()
    panel = window.panel
    assert not panel.shows_loaded_network and panel.hidden.isEnabled() and panel.hidden.text() == "20"
    assert window.session.network is not opened and window.session.network_label == "784-20-10 relu (untrained)"
    window.training.start()
    assert window.asked == []  # a fresh network from Reset trains without a question
    window.training.stop()


def test_after_a_run_start_offers_to_continue_it(qtbot, window):
    first = finish(qtbot, window)
    assert window.asked == []  # the first run trained the fresh network: nothing to ask
    trained = window.session.network
    window.answer = CONTINUE
    second = finish(qtbot, window)
    assert window.session.network is trained
    assert second.name.startswith("Run 2: fine-tune of run 1: 784-20-10 relu")
    assert second.settings["fine_tune_of"] == "run 1" and first.status == second.status == "finished"


def test_a_network_no_choice_describes_shows_as_in_the_file(window):
    from engine.nn.models import small_cnn_spec
    from engine.nn.network import build_network

    spec = small_cnn_spec()
    spec["layers"][0] = {**spec["layers"][0], "filters": 4}  # not DigitLab's small CNN: the book's own, say
    spec["layers"][3] = {**spec["layers"][3], "in": 576}
    panel = window.panel
    cnn = build_network(spec)
    panel.show_loaded_network(cnn, "deep.pkl")
    assert panel.architecture.currentText() == "As in the file" and not panel.architecture.isEnabled()
    assert "conv → relu → pool" in panel.network_box.loaded_note.full_text()
    assert panel.hidden.styleSheet() == ""  # an empty hidden-layer field is not a mistake here
    panel.show_loaded_network(build_network(small_cnn_spec()), "small.npz")
    assert panel.architecture.currentData() == "small-cnn"
    panel.clear_loaded_network()
    assert panel.architecture.findData("__file__") < 0 and panel.architecture.currentData() == "mlp"
    assert panel.config().hidden == [20] and panel.architecture.isEnabled()


def test_continuing_this_sessions_network_shows_the_network_being_trained(qtbot, window):
    finish(qtbot, window)  # run 1: 784-20-10 relu
    panel = window.panel
    assert not panel.shows_loaded_network  # after a run the panel is the user's to edit, for a new network
    panel.hidden.setText("32")
    panel.activation.setCurrentIndex(panel.activation.findData("tanh"))
    window.answer = CONTINUE
    with qtbot.waitSignal(window.session.runAdded, timeout=10_000):
        assert window.training.start()
        # what trains is run 1's network: the panel shows it, read-only, not the edits waiting for a new one
        assert window.session.network.describe() == "784-20-10 relu"
        assert panel.shows_loaded_network
        assert panel.hidden.text() == "20" and panel.activation.currentData() == "relu"
        for w in (panel.architecture, panel.hidden, panel.activation, panel.loss):
            assert not w.isEnabled()
        note = panel.network_box.loaded_note
        assert note.isVisibleTo(panel)
        assert note.full_text() == "Run 1's network, continued — Reset for a new network"
        assert "run 1" in note.toolTip() and "784-20-10 relu" in note.toolTip()
    assert panel.shows_loaded_network and panel.hidden.text() == "20"  # still that network once the run ended
    panel.action_reset.trigger()  # the edits were kept aside: Reset builds them
    assert not panel.shows_loaded_network and panel.hidden.text() == "32" and panel.hidden.isEnabled()
    assert panel.activation.currentData() == "tanh"
    assert window.session.network.describe() == "784-32-10 tanh"


def test_continuing_forgets_the_test_accuracy_of_the_weights_before_the_run(qtbot, window):
    finish(qtbot, window)
    assert window.session.test_accuracy is not None
    assert "Test accuracy on synthetic" in window.draw.model_label.full_text()
    window.answer = CONTINUE
    with qtbot.waitSignal(window.session.runAdded, timeout=10_000):
        assert window.training.start()
        assert window.session.test_accuracy is None  # it was the accuracy before this run's first step
        assert "Test accuracy" not in window.draw.model_label.full_text()
    assert window.session.test_accuracy is not None  # the run's epoch measured the weights it trained


def test_a_long_file_name_keeps_the_note_to_one_line(qtbot, window, tmp_path):
    window.resize(1280, 720)
    path = tmp_path / "mnist-mlp-after-ten-epochs-adam-with-a-much-longer-name-than-fits.npz"
    save_weights(make_mlp([784, 24, 10], activation="sigmoid", seed=3), path)
    scroll = window.panel_column.verticalScrollBar()
    before = scroll.maximum()
    with qtbot.waitSignal(window.session.networkChanged, timeout=10_000):
        window.weightfiles.load(path)
    note = window.panel.network_box.loaded_note
    qtbot.waitUntil(lambda: note.isVisible() and note.is_cut())
    assert note.height() < 2 * note.fontMetrics().lineSpacing()  # one line, not two
    assert note.text().endswith("…") and note.full_text().endswith("— Reset for a new network")
    assert path.name in note.toolTip()  # all of it, in the tooltip
    qtbot.wait(50)
    assert scroll.maximum() == before  # the column did not grow (a scroll bar would hide the Run group's bottom)


def test_a_book_pickle_leaves_the_loss_editable_and_continuing_minimises_it(qtbot, window, tmp_path):
    panel = window.panel
    panel.loss.setCurrentIndex(panel.loss.findData("sum-of-squares"))
    path = tmp_path / "book.pkl"
    save_weights(make_mlp([784, 24, 10], activation="sigmoid", seed=3), path)
    with qtbot.waitSignal(window.session.networkChanged, timeout=10_000):
        window.weightfiles.load(path)
    opened = window.session.network
    assert panel.shows_loaded_network and not panel.hidden.isEnabled()
    assert panel.loss.isEnabled() and panel.loss.currentData() == "sum-of-squares"  # the file does not say: yours
    assert "does not record the loss" in panel.network_box.loaded_note.toolTip()
    window.answer = CONTINUE
    record = finish(qtbot, window)
    assert window.session.network is opened and opened.loss_name == "sum-of-squares"
    assert record.settings["loss"] == "sum-of-squares"
    assert "loss" in window.asked[0][1].split("New:")[0]  # the question says the loss comes from the panel
    panel.show_loaded_network(make_mlp([784, 24, 10], seed=3), "script")  # a network whose loss is known …
    assert not panel.loss.isEnabled() and panel.loss.currentData() == "cross-entropy"
    panel.clear_loaded_network()
    assert panel.loss.isEnabled() and panel.loss.currentData() == "sum-of-squares"  # … kept the user's choice


def test_a_digitlab_npz_fixes_the_loss_it_records(window, opened):
    panel = window.panel
    assert not panel.loss.isEnabled() and panel.loss.currentData() == opened.loss_name == "cross-entropy"
    assert "does not record the loss" not in panel.network_box.loaded_note.toolTip()
