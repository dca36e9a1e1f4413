"""Loading a dataset off the GUI thread, with a cancellable progress dialog when it has to be downloaded.

The background job returns the expected dataset problems (offline, cancelled, bad folder) as
exception *values*, so the window can tell them apart; ``BackgroundTask.failed`` only carries text.
"""
from __future__ import annotations

from typing import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QProgressDialog, QWidget

from app.threads import BackgroundTask, TaskContext

BUILTIN_NAMES = ("mnist-sample", "mnist", "fashion-mnist")
DOWNLOADED_NAMES = ("mnist", "fashion-mnist")


def dataset_job(name: str) -> Callable[[TaskContext], object]:
    """A function for BackgroundTask: load a built-in dataset by name, or a folder of IDX files by path.

    Progress is reported as (done_bytes, total_bytes, filename); ``ctx.cancelled`` stops a download.
    Returns the Dataset, or the DatasetError that stopped it.
    """

    def run(ctx: TaskContext):
        from engine.datasets import DatasetError, load_dataset

        def progress(done: int, total: int, filename: str) -> None:
            ctx.report((int(done), int(total or 0), str(filename)))

        try:
            if name in BUILTIN_NAMES:
                return load_dataset(name, progress=progress, cancel=ctx.cancelled)
            return load_dataset(data_dir=name, progress=progress, cancel=ctx.cancelled)
        except DatasetError as exc:
            return exc

    return run


def needs_download(name: str) -> bool:
    if name not in DOWNLOADED_NAMES:
        return False
    from engine.datasets import is_cached

    return not is_cached(name)


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
        try:
            done, total, filename = value
        except (TypeError, ValueError):
            return
        kb_total = max(total // 1024, 0)
        if kb_total:
            self.setMaximum(kb_total)
            self.setValue(min(done // 1024, kb_total))
            self.setLabelText(f"Downloading {filename}: {done / 1e6:.1f} of {total / 1e6:.1f} MB")
        else:
            self.setMaximum(0)  # unknown size: a busy bar
            self.setLabelText(f"Downloading {filename}: {done / 1e6:.1f} MB")
