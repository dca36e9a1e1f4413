"""The main window: the frame around DigitLab's parts, and nothing else.

Three columns: the settings panel on the left, the pages in tabs in the middle, draw-and-predict on
the right; menus; drag-and-drop of weight files and images; closing. The work is done elsewhere:
training, weight files, images and datasets by controllers (``app.controllers``), each page by its
own module (``app.tabs``), and every background task by the window's one ``TaskRegistry``, which
stops them all on close. Dialogs go through small overridable methods (``show_error``,
``ask_yes_no``, ``ask_open_path``, ``ask_image_path``, ``ask_save_path``) so tests can answer them
without blocking; errors never pile up (``app.error_dialogs``) and all text is plain.
"""
from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QDialog, QFileDialog, QFrame, QMainWindow, QMessageBox, QPlainTextEdit, QScrollArea,
                               QSplitter, QTabWidget, QVBoxLayout, QWidget)

from app.blas_threads import limit_blas_threads
from app.control_panel import ControlPanel, ControlPanelError
from app.controllers.datasets import DatasetController
from app.controllers.images import IMAGE_FILTERS, ImageController, is_image_path
from app.controllers.training import TrainingController
from app.controllers.weightfiles import WeightFileController
from app.draw_panel import DrawPanel, accept_file_drag, dropped_files
from app.error_dialogs import ErrorDialogs
from app.help_texts import about_text, guide_text
from app.navigation import COMPARE, EVALUATE, LABS, MODELS, TRAIN, Pages
from app.session import Session
from app.settings import AppSettings
from app.tabs.compare import ComparePage
from app.tabs.evaluation import EvaluationPage
from app.tabs.labs import create_lab_tabs
from app.tabs.models import ModelsPage
from app.tabs.training import TrainingPage
from app.threads import TaskRegistry
from widgets.plain_text import line, message_box, plain_label, plain_tooltip

log = logging.getLogger(__name__)

# the pages that read the canvas (Evaluate puts a mistake on it, the loss lab scores the drawing); elsewhere the
# page takes the room
DRAWING_PAGES = (TRAIN, EVALUATE, MODELS, "Loss functions")
WEIGHT_FILTERS = ("DigitLab weights (*.npz);;Book-compatible pickle (*.pkl *.pickle);;PyTorch state_dict (*.pt *.pth);;"
                  "safetensors (*.safetensors)")
OPEN_FILTERS = ("Weight files (*.npz *.pkl *.pickle *.pt *.pth *.safetensors *.json *.gz *.bz2 *.xz *.zip);;"
                "All files (*)")
DATASET_FILTERS = "Dataset files (*.pkl.gz *.pkl *.gz *.bz2 *.xz);;All files (*)"


class MainWindow(QMainWindow):
    def __init__(self, session: Session | None = None, settings: AppSettings | None = None,
                 load_dataset_on_start: bool = True, with_tabs: bool = True) -> None:
        super().__init__()
        limit_blas_threads(1)  # small matrices: extra BLAS threads only fight the GUI for cores
        self.setWindowTitle("DigitLab")
        self.setAcceptDrops(True)
        self.session = session or Session(self)
        self.settings = settings or AppSettings()
        self.tasks = TaskRegistry(self)
        self.error_dialogs = ErrorDialogs(self, self.show_status)
        self.panel = ControlPanel(self.settings.train_config())
        self.draw = DrawPanel(self.session)
        self.training_page = TrainingPage(self.session)
        self.training = TrainingController(self.session, self.tasks, self.panel, self.training_page, self,
                                           self.settings, self)
        self.datasets = DatasetController(self.session, self.tasks, self.panel, self.training_page, self,
                                          dialog_parent=self, parent=self)
        self.weightfiles = WeightFileController(self.session, self.tasks, self.settings, self, self)
        self.images = ImageController(self.session, self.tasks, self, self)
        self.draw.filesDropped.connect(self._drop_on_canvas)
        self.tabs = Pages()
        self.tabs.add(self.training_page, TRAIN, scroll=False)
        self.guide: QDialog | None = None  # Help ▸ Guide, made when first asked for
        self._build_layout()
        self._build_menus()
        geometry = self.settings.geometry()
        if geometry is None or not self.restoreGeometry(geometry):
            self._default_size()
        if with_tabs:
            self._add_pages()
        self.tabs.add_shortcuts(self)
        self._show_columns(self.tabs.current_title())
        self.training.reset_network()
        if load_dataset_on_start:
            QTimer.singleShot(0, self._load_initial_dataset)

    def _load_initial_dataset(self) -> None:
        if not self.tasks.closed:  # a window closed (and perhaps deleted) before the event loop ran loads nothing
            self.datasets.load(self.panel.dataset_name(), interactive=False)

    # ------------------------------------------------------------------ layout
    def _build_layout(self) -> None:
        scroll = QScrollArea()
        scroll.setWidget(self.panel)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.NoFrame)
        scroll.setMinimumWidth(self.panel.sizeHint().width() + 24)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.panel_column = scroll
        splitter = QSplitter(Qt.Horizontal)
        splitter.addWidget(scroll)
        splitter.addWidget(self.tabs)
        splitter.addWidget(self.draw)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setStretchFactor(2, 0)
        splitter.setCollapsible(1, False)
        self.setCentralWidget(splitter)
        self.tabs.pageChanged.connect(self._show_columns)
        self.dataset_label = plain_label("No dataset")
        self.dataset_label.setToolTip("The dataset in use")
        self.statusBar().addPermanentWidget(self.dataset_label)
        self.session.datasetChanged.connect(self._show_dataset)

    def _add_pages(self) -> None:
        """In the order a learner works: train, evaluate, compare runs, open models; the labs together."""
        self.add_tab(EvaluationPage(self.session, self.tasks), EVALUATE)
        self.add_tab(ComparePage(self.session, self.tasks), COMPARE)
        self.add_tab(ModelsPage(self.session, self.weightfiles), MODELS)
        for title, page in create_lab_tabs(self.session, self.tasks.create):
            self.add_tab(page, title, group=LABS)

    def _show_columns(self, title: str) -> None:
        """The settings column belongs to Train; the drawing to the pages that read it (``DRAWING_PAGES``)."""
        self.panel_column.setVisible(title == TRAIN)
        self.draw.setVisible(title in DRAWING_PAGES)

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.action_open = QAction("&Open weights…", self)
        self.action_open.setShortcut(QKeySequence.Open)
        self.action_open.setStatusTip("Load a weight file: DigitLab's .npz, the book's or Nielsen's pickle, PyTorch "
                                      ".pt/.pth, .safetensors, compressed too")
        self.action_open.triggered.connect(lambda: self.weightfiles.open())
        file_menu.addAction(self.action_open)
        self.recent_menu = file_menu.addMenu("Open &recent")
        self.action_open_image = QAction("Open &image…", self)
        self.action_open_image.setShortcut(QKeySequence("Ctrl+I"))
        self.action_open_image.setStatusTip("Put a picture of a digit (PNG, JPEG, …) on the canvas, as if drawn")
        self.action_open_image.triggered.connect(lambda: self.images.open())
        file_menu.addAction(self.action_open_image)
        self.action_open_dataset = QAction("Open &dataset…", self)
        self.action_open_dataset.setStatusTip("Train and evaluate on a dataset file: Nielsen's mnist.pkl.gz")
        self.action_open_dataset.triggered.connect(lambda: self.datasets.open_file())
        file_menu.addAction(self.action_open_dataset)
        self.action_save = QAction("&Save weights…", self)
        self.action_save.setShortcut(QKeySequence.Save)
        self.action_save.setStatusTip("Save the current network as .npz (with its settings), a book-style .pkl, a "
                                      "PyTorch .pt or .safetensors")
        self.action_save.triggered.connect(lambda: self.weightfiles.save())
        file_menu.addAction(self.action_save)
        file_menu.addSeparator()
        self.action_quit = QAction("&Quit", self)
        self.action_quit.setShortcut(QKeySequence.Quit)
        self.action_quit.triggered.connect(self.close)
        file_menu.addAction(self.action_quit)
        train_menu = self.menuBar().addMenu("&Training")
        for action in self.panel.run_actions:
            train_menu.addAction(action)
        self.page_menu = self.menuBar().addMenu("&View")
        self.page_menu.aboutToShow.connect(lambda: self.tabs.fill_menu(self.page_menu))
        help_menu = self.menuBar().addMenu("&Help")
        self.action_guide = help_menu.addAction("&Guide")
        self.action_guide.setShortcut(QKeySequence.HelpContents)
        self.action_guide.setStatusTip("What each page shows and how to read it, the shortcuts, where to read more")
        self.action_guide.triggered.connect(self.show_guide)
        about = help_menu.addAction("&About DigitLab")
        about.setStatusTip("DigitLab's version and the versions of what it runs on")
        about.triggered.connect(lambda: self.show_info("About DigitLab", about_text()))
        self.weightfiles.recentChanged.connect(self._rebuild_recent_menu)
        self._rebuild_recent_menu()

    def show_guide(self) -> None:
        """Help ▸ Guide: a window beside the main one (not modal: read it while trying what it says)."""
        if self.guide is None:
            self.guide = QDialog(self)
            self.guide.setWindowTitle("DigitLab guide")
            text = QPlainTextEdit(guide_text([self.tabs.tabText(i) for i in range(self.tabs.count())]))
            text.setReadOnly(True)
            layout = QVBoxLayout(self.guide)
            layout.addWidget(text)
            self.guide.resize(760, min(640, max(400, self.height() - 40)))
        self.guide.show()
        self.guide.raise_()

    def _rebuild_recent_menu(self) -> None:
        self.recent_menu.clear()
        files = self.weightfiles.recent_files()
        for i, f in enumerate(files):
            action = self.recent_menu.addAction(f"&{i + 1} {line(Path(f).name, 80).replace('&', '&&')}")
            action.setStatusTip(line(f))
            action.setToolTip(plain_tooltip(f))
            action.triggered.connect(lambda _checked=False, f=f: self.weightfiles.load(f))
        self.recent_menu.setEnabled(bool(files))

    def _show_dataset(self, dataset) -> None:
        n_train = len(dataset.x_train) if dataset.has_train else 0
        self.dataset_label.setText(f"{line(dataset.name, 80)}: {n_train:,} training / {len(dataset.x_test):,} test images")
        self.dataset_label.setToolTip(plain_tooltip(dataset.source or dataset.name))

    def _default_size(self) -> None:
        """A small screen (a 1280×720 laptop) is filled, every pixel is needed; a big one gets 90% of it,
        up to 1700×1050, centred."""
        screen = self.screen()
        if screen is None:
            self.resize(1400, 860)
            return
        avail = screen.availableGeometry()
        if avail.width() < 1480 or avail.height() < 940:
            self.setGeometry(avail)
            self.setWindowState(self.windowState() | Qt.WindowState.WindowMaximized)
            return
        width, height = min(1700, int(avail.width() * 0.9)), min(1050, int(avail.height() * 0.9))
        self.setGeometry(avail.x() + (avail.width() - width) // 2, avail.y() + (avail.height() - height) // 2,
                         width, height)

    # ------------------------------------------------------------------ pages (``app.navigation``)
    def add_tab(self, widget: QWidget, title: str, group: str | None = None) -> int:
        return self.tabs.add(widget, title, group)

    def page(self, title: str) -> QWidget | None:
        return self.tabs.page(title)

    def page_titles(self) -> list[str]:
        return self.tabs.titles()

    def show_page(self, title: str) -> None:
        self.tabs.show(title)

    def current_page_title(self) -> str:
        return self.tabs.current_title()

    @property
    def labs(self) -> QTabWidget | None:
        return self.tabs.labs

    # ------------------------------------------------------------------ dialogs (overridable in tests)
    def show_error(self, title: str, text: str) -> None:
        """One dialog at a time: errors arriving while it is up are listed in it (``app.error_dialogs``)."""
        self.error_dialogs.report(title, text)

    def show_info(self, title: str, text: str) -> None:
        self._message(QMessageBox.Icon.Information, title, text, QMessageBox.StandardButton.Ok)

    def ask_yes_no(self, title: str, text: str) -> bool:
        buttons = QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No
        return self._message(QMessageBox.Icon.Question, title, text, buttons) == QMessageBox.StandardButton.Yes

    def ask_choice(self, title: str, text: str, choices: list[str]) -> int | None:
        """The index of the button chosen among ``choices`` (the last one is Cancel), or None if closed."""
        box = message_box(self, QMessageBox.Icon.Question, title, text, QMessageBox.StandardButton.NoButton)
        buttons = [box.addButton(choice, QMessageBox.ButtonRole.ActionRole) for choice in choices]
        box.setEscapeButton(buttons[-1])
        box.setDefaultButton(buttons[0])
        box.exec()
        return buttons.index(box.clickedButton()) if box.clickedButton() in buttons else None

    def _message(self, icon, title: str, text: str, buttons) -> int:
        return message_box(self, icon, title, text, buttons).exec()  # plain text: file names are never HTML

    def ask_open_path(self) -> str | None:
        path, _ = QFileDialog.getOpenFileName(self, "Open weights", "", OPEN_FILTERS)
        return path or None

    def ask_dataset_path(self) -> str | None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a dataset file", "", DATASET_FILTERS)
        return path or None

    def ask_image_path(self) -> str | None:
        path, _ = QFileDialog.getOpenFileName(self, "Open an image of a digit", "", IMAGE_FILTERS)
        return path or None

    def ask_save_path(self) -> tuple[str | None, str]:
        path, chosen = QFileDialog.getSaveFileName(self, "Save weights", "digitlab-weights.npz", WEIGHT_FILTERS)
        return (path or None), chosen

    def show_status(self, text: str, timeout_ms: int = 0) -> None:
        text = " — ".join(part.strip() for part in str(text)[:10_000].split("\n") if part.strip())
        self.statusBar().showMessage(line(text, 500), timeout_ms)  # one line, however long a file's name

    # ------------------------------------------------------------------ drag and drop
    def dragEnterEvent(self, event) -> None:
        accept_file_drag(event)

    def dropEvent(self, event) -> None:
        if files := dropped_files(event):
            self.open_files(files)

    def open_files(self, files: list[str]) -> None:
        """Dropped files: an image goes on the canvas; one weight file becomes the network, several open as models."""
        images = [f for f in files if is_image_path(f)]
        weights = [f for f in files if not is_image_path(f)]
        if images:
            self._drop_on_canvas(images)
        if len(weights) == 1:
            self.weightfiles.load(weights[0])
        for path in weights if len(weights) > 1 else []:
            self.weightfiles.load(path, as_model=True)

    def _drop_on_canvas(self, files: list[str]) -> None:
        self.images.load(files[0])
        if len(files) > 1:
            self.show_status(f"{len(files)} images dropped: showing the first, {line(Path(files[0]).name, 80)}")

    # ------------------------------------------------------------------ closing
    def closeEvent(self, event) -> None:
        if not self.tasks.closed:
            try:
                self.settings.set_train_config(self.panel.config())
            except ControlPanelError:
                pass  # half-edited settings are not worth keeping
            self.settings.set_geometry(self.saveGeometry())
            self.settings.sync()
            self.error_dialogs.close()
            if not self.tasks.shutdown():
                log.warning("some background work did not stop in time")
        super().closeEvent(event)


__all__ = ["MainWindow"]
