"""Pictures of digits: File ▸ Open image… and images dropped on the window or the canvas.

The picture is read in the background by ``engine.data.images.load_image`` (raster formats only,
pixel count capped, framed like MNIST) and put on the drawing canvas as if drawn, so the canvas,
the bars and every tab treat it like a drawing. The last picture asked for wins: one still being
read when another is asked for is cancelled and its result dropped. A file that cannot be read
changes nothing and says why; a blank or uniform picture says that no digit was found.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal

from app.controllers import Host
from app.session import Session
from app.threads import BackgroundTask, TaskRegistry, describe_file_error
from engine.data.images import load_image
from engine.data.preprocess import is_blank
from widgets.plain_text import line

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm", ".pnm")
IMAGE_FILTERS = f"Images ({' '.join('*' + s for s in IMAGE_SUFFIXES)});;All files (*)"


def is_image_path(path) -> bool:
    """Whether a dropped file is meant as a picture (by its suffix; the reader checks the content itself)."""
    return Path(str(path)).suffix.lower() in IMAGE_SUFFIXES


class ImageController(QObject):
    imageOpened = Signal(str, object)  # the path and the (28, 28) float32 image put on the canvas

    def __init__(self, session: Session, tasks: TaskRegistry, host: Host, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session, self.tasks, self.host = session, tasks, host
        self._request = 0  # the number of the newest request: only its result is shown
        self._task: BackgroundTask | None = None

    def open(self) -> BackgroundTask | None:
        """Ask for a picture and put it on the canvas."""
        path = self.host.ask_image_path()
        return self.load(path) if path else None

    def load(self, path) -> BackgroundTask | None:
        """Read a picture in the background and put it on the canvas (unless a newer one was asked for)."""
        if self.tasks.closed:
            return None
        path = str(path)
        self._request += 1
        request = self._request
        if self._task is not None:
            self._task.cancel()  # superseded: it stops before reading, or its result is dropped

        def run(ctx):
            return None if ctx.is_cancelled() else load_image(path)

        task = self._task = self.tasks.create(run, f"image {Path(path).name}")
        task.succeeded.connect(lambda image: self._loaded(request, path, image))
        task.failed.connect(lambda exc: self._failed(request, path, exc))
        self.host.show_status(f"Reading the image {line(path)}…")
        return self.tasks.start(task)

    def _loaded(self, request: int, path: str, image) -> None:
        if request != self._request or image is None:
            return
        self._task = None
        image = np.asarray(image, dtype=np.float32).reshape(28, 28)
        self.session.show_on_canvas(image)
        name = line(Path(path).name, 80)
        if is_blank(image):
            self.host.show_status(f"No digit found in {name}: the picture is blank or all one shade")
        else:
            self.host.show_status(f"Opened the image {name}: the network reads it like a drawing", 5000)
        self.imageOpened.emit(path, image)

    def _failed(self, request: int, path: str, exc: BaseException) -> None:
        if request == self._request:
            self._task = None
        # even a superseded request's failure is shown: the person asked for that file
        self.host.show_error("Could not open the image", f"{describe_file_error(path, exc)}\n\nThe canvas is unchanged.")
