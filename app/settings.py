"""Remembered state between runs of the window: the last TrainConfig and pace, window geometry, recent weight files.

``DIGITLAB_CONFIG_DIR`` (set by the tests) puts everything into ``digitlab.ini`` in that folder, so
a test never touches the user's real settings; otherwise Qt's native store for "DigitLab"/"DigitLab".
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

from engine.train.config import TrainConfig

log = logging.getLogger(__name__)

MAX_RECENT = 8


def open_settings() -> QSettings:
    folder = os.environ.get("DIGITLAB_CONFIG_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        return QSettings(str(Path(folder) / "digitlab.ini"), QSettings.IniFormat)
    return QSettings("DigitLab", "DigitLab")


class AppSettings:
    """Typed access to the few values the window keeps; bad stored values fall back to defaults."""

    def __init__(self, store: QSettings | None = None) -> None:
        self.store = store or open_settings()

    # ----- training configuration -----
    def train_config(self) -> TrainConfig:
        text = self.store.value("training/config", "")
        if not text:
            return TrainConfig()
        try:
            return TrainConfig.from_dict(json.loads(str(text)))
        except (ValueError, TypeError) as exc:  # a hand-edited or outdated file must not stop the window
            log.warning("ignoring stored training settings: %s", exc)
            return TrainConfig()

    def set_train_config(self, config: TrainConfig) -> None:
        self.store.setValue("training/config", json.dumps(config.to_dict()))

    # ----- pace -----
    def pace(self, default: float | None) -> float | None:
        """Steps per second training was last held to (None: as fast as possible); ``default`` if never set."""
        value = self.store.value("training/pace", "")
        if value in ("", None):
            return default
        if str(value) == "max":
            return None
        try:
            pace = float(value)
        except (TypeError, ValueError):
            log.warning("ignoring stored pace %r", value)
            return default
        return pace if 0 < pace < float("inf") else default

    def set_pace(self, steps_per_second: float | None) -> None:
        self.store.setValue("training/pace", "max" if steps_per_second is None else f"{float(steps_per_second):g}")

    # ----- window -----
    def geometry(self) -> QByteArray | None:
        value = self.store.value("window/geometry")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def set_geometry(self, data: QByteArray) -> None:
        self.store.setValue("window/geometry", data)

    # ----- recent files -----
    def recent_files(self) -> list[str]:
        value = self.store.value("files/recent", [])
        if isinstance(value, str):  # QSettings returns a lone entry as a plain string
            value = [value]
        return [str(v) for v in (value or []) if v][:MAX_RECENT]

    def add_recent_file(self, path: str | os.PathLike) -> list[str]:
        path = str(Path(path).resolve())
        files = [path] + [f for f in self.recent_files() if f != path]
        files = files[:MAX_RECENT]
        self.store.setValue("files/recent", files)
        return files

    def remove_recent_file(self, path: str) -> list[str]:
        files = [f for f in self.recent_files() if f != path]
        self.store.setValue("files/recent", files)
        return files

    def sync(self) -> None:
        self.store.sync()
