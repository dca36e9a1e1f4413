"""Loading a dataset off the GUI thread, with a cancellable progress dialog when it has to be downloaded.

The background job raises what stops it (``DownloadCancelled``, ``OfflineError``, any ``DatasetError``);
``BackgroundTask.failed`` carries that exception to the dataset controller, which tells them apart.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QProgressDialog, QWidget

import engine.data.catalog as catalog
from engine.data.data_file import load_data_file
from app.threads import BackgroundTask, TaskContext


def dataset_job(name: str) -> Callable[[TaskContext], object]:
    """A function for BackgroundTask: load a built-in dataset by name, a folder of IDX files or a dataset file by path.

    Progress is reported as (done_bytes, total_bytes, filename); ``ctx.cancelled`` stops a download
    with DownloadCancelled. Returns the Dataset.
    """

    def run(ctx: TaskContext):
        def progress(done: int, total: int, filename: str) -> None:
            ctx.report((int(done), int(total or 0), str(filename)))

        if name in catalog.DATASET_NAMES:
            return catalog.load_dataset(name, progress=progress, cancel=ctx.cancelled)
        if Path(name).is_file():
            return load_data_file(name)
        return catalog.load_dataset(data_dir=name, progress=progress, cancel=ctx.cancelled)

    return run


def needs_download(name: str) -> bool:
    return name in catalog.REMOTE_DATASETS and not catalog.is_cached(name)


class DownloadDialog(QProgressDialog):
    """Shows bytes downloaded for a dataset task; Cancel sets the task's cancel event."""

    def __init__(self, task: BackgroundTask, title: str, parent: QWidget | None = None) -> None:
        super().__init__(f"Connecting to download {title}…", "Cancel", 0, 0, parent)
        self.setWindowTitle(f"Downloading {title}")
        self.setWindowModality(Qt.WindowModal)
        self.setMinimumDuration(0)
        self.setAutoClose(False)
        self.setAutoReset(False)
        self.setMinimumWidth(420)
        self.task = task
        self.canceled.connect(task.cancel)
        task.progress.connect(self.on_progress)
        task.finished.connect(self.close)

    def on_progress(self, value) -> None:
        done, total, filename = value
        kb_total = max(total // 1024, 0)
        if kb_total:
            self.setMaximum(kb_total)
            self.setValue(min(done // 1024, kb_total))
            self.setLabelText(f"Downloading {filename}: {done / 1e6:.1f} of {total / 1e6:.1f} MB")
        else:
            self.setMaximum(0)  # unknown size: a busy bar
            self.setLabelText(f"Downloading {filename}: {done / 1e6:.1f} MB")
