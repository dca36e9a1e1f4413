"""Datasets: load the one chosen in the panel in the background (downloads with a progress dialog); explain problems.

The dataset in use stays until the new one has arrived. A failure comes back as the exception
the engine raised: a cancelled download is no error, an offline one offers the sample shipped with DigitLab,
anything else is shown (in a dialog when the person asked, in the banner at start-up).
"""
from __future__ import annotations

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QWidget

import engine.data.catalog as catalog
from app.control_panel import ControlPanel
from app.controllers import Host
from app.download_dialog import DownloadDialog, dataset_job, needs_download
from app.session import Session
from app.tabs.training import TrainingPage
from app.threads import BackgroundTask, TaskRegistry, describe_error

SAMPLE_HINT = ("The offline MNIST sample is missing from this installation: reinstall DigitLab (pip install digitlab). "
               "Meanwhile choose MNIST (downloaded once) or a folder of IDX files in the Dataset list.")
BANNER_TOPIC = "dataset"


class DatasetController(QObject):
    def __init__(self, session: Session, tasks: TaskRegistry, panel: ControlPanel, page: TrainingPage, host: Host,
                 dialog_parent: QWidget | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session, self.tasks, self.panel, self.page, self.host = session, tasks, panel, page, host
        self._dialog_parent = dialog_parent
        self.task: BackgroundTask | None = None  # the load whose result will be used
        self.download_dialog: DownloadDialog | None = None
        self._key: str | None = None  # the name/path the current dataset was loaded from
        panel.datasetChosen.connect(lambda name: self.load(name, interactive=True))
        tasks.closing.connect(self._close_dialog)

    def load(self, name: str, interactive: bool = True) -> None:
        """Load a built-in dataset or a folder in the background; the current one stays until it arrives."""
        if self.tasks.closed:
            return
        if self.task is not None:
            self.task.cancel()  # its result will be ignored
            self.task = None
        if name == catalog.SAMPLE_NAME and not catalog.sample_available():
            self.host.show_status(SAMPLE_HINT)
            self.page.show_banner(SAMPLE_HINT, "info", BANNER_TOPIC)
            if interactive:
                self.host.show_info("The offline sample is not installed", SAMPLE_HINT)
            self._restore_choice()
            return
        task = self.tasks.create(dataset_job(name), f"dataset {name}")
        self.task = task
        task.succeeded.connect(lambda dataset, t=task: self._loaded(t, name, dataset))
        task.failed.connect(lambda exc, t=task: self._failed(t, name, exc, interactive))
        self.panel.set_dataset_ready(False)
        self.host.show_status(f"Loading {name}…")
        if needs_download(name):
            self._close_dialog()
            self.download_dialog = DownloadDialog(task, name, self._dialog_parent)
            self.download_dialog.show()
        self.tasks.start(task)

    def open_file(self) -> None:
        """File ▸ Open dataset: ask for a dataset file (Nielsen's mnist.pkl.gz) and load it in the background."""
        path = self.host.ask_dataset_path()
        if path:
            self.panel.select_dataset(path)
            self.load(path, interactive=True)

    def use(self, dataset) -> None:
        """Make ``dataset`` the one training and evaluation use (also called directly by tests)."""
        self.session.set_dataset(dataset)
        self.panel.set_dataset_ready(dataset.has_train)
        if dataset.has_train:
            self.host.show_status(f"Dataset {dataset.name} ready", 5000)
            self.page.clear_banner(BANNER_TOPIC)
        else:
            self.host.show_status(f"{dataset.name} has only test images: you can evaluate, not train")

    def _loaded(self, task: BackgroundTask, name: str, dataset) -> None:
        if task is not self.task:
            return
        self.task = None
        self._key = name
        self.use(dataset)

    def _failed(self, task: BackgroundTask, name: str, exc: BaseException, interactive: bool) -> None:
        if task is not self.task:
            return
        self.task = None
        self._restore_choice()
        if isinstance(exc, catalog.DownloadCancelled):
            self.host.show_status(f"Download of {name} cancelled")
            return
        text = describe_error(exc)
        self.host.show_status(f"Could not load {name}: {text}")
        if isinstance(exc, catalog.OfflineError) and catalog.sample_available():
            if interactive and self.host.ask_yes_no(
                    "No network connection", f"{text}\n\nUse the offline MNIST sample (20,000 digits) instead?"):
                self.panel.select_dataset(catalog.SAMPLE_NAME)
                self.load(catalog.SAMPLE_NAME, interactive=True)
            elif not interactive:
                self.page.show_banner(f"{text} The offline MNIST sample is available in the Dataset list.", "error",
                                      BANNER_TOPIC)
            return
        if interactive:
            self.host.show_error(f"Could not load {name}", text)
        else:
            self.page.show_banner(f"Could not load {name}: {text}", "error", BANNER_TOPIC)

    def _restore_choice(self) -> None:
        """Point the Dataset list back at what is loaded (or keep the choice if nothing is)."""
        if self._key is not None:
            self.panel.select_dataset(self._key)
        self.panel.set_dataset_ready(self.session.dataset is not None and self.session.dataset.has_train)

    def _close_dialog(self) -> None:
        if self.download_dialog is not None:
            self.download_dialog.close()
            self.download_dialog = None
