"""A finished (or stopped) training run kept for comparison: its settings, loss curve and epoch metrics.

Runs are saved as JSON (to reopen and compare with later runs) and as CSV (for spreadsheets).
Writes are atomic (temporary file, then rename) so a crash never leaves a half-written run file.
"""
from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from engine.errors import DigitLabError
from engine.util import atomic_write, to_jsonable

FORMAT = "digitlab-run"
VERSION = 1
EPOCH_COLUMNS = ("epoch", "iteration", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "seconds")


class RunFileError(DigitLabError):
    """A run file that cannot be read (missing, not JSON, not a DigitLab run, wrong field types)."""


def _now() -> str:
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")


@dataclass
class RunRecord:
    name: str
    settings: dict
    losses: np.ndarray  # per-iteration training loss
    epochs: list = field(default_factory=list)  # EpochMetrics.to_dict() entries
    status: str = "finished"
    created: str = field(default_factory=_now)

    def __post_init__(self) -> None:
        self.losses = np.asarray(self.losses, dtype=np.float64).reshape(-1)
        self.settings = dict(self.settings or {})
        self.epochs = [dict(e) for e in self.epochs]

    @property
    def iterations(self) -> np.ndarray:
        """1-based iteration numbers matching ``losses``."""
        return np.arange(1, len(self.losses) + 1)

    @property
    def final_test_accuracy(self) -> float | None:
        for e in reversed(self.epochs):
            acc = e.get("test_accuracy")
            if acc is not None and math.isfinite(acc):
                return float(acc)
        return None

    def summary(self) -> str:
        acc = self.final_test_accuracy
        acc_text = f", test {acc:.1%}" if acc is not None else ""
        return f"{self.name}: {len(self.losses)} iterations, {self.status}{acc_text}"

    # ----- JSON -----
    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "version": VERSION,
            "name": self.name,
            "status": self.status,
            "created": self.created,
            "settings": to_jsonable(self.settings),
            "losses": to_jsonable(self.losses),
            "epochs": to_jsonable(self.epochs),
        }

    @classmethod
    def from_dict(cls, data, where: str = "run") -> "RunRecord":
        if not isinstance(data, dict):
            raise RunFileError(f"{where}: expected a JSON object, found {type(data).__name__}")
        if data.get("format") != FORMAT:
            raise RunFileError(f"{where}: not a DigitLab run file (format {data.get('format')!r}, expected {FORMAT!r})")
        if not isinstance(data.get("version"), int) or data["version"] > VERSION:
            raise RunFileError(f"{where}: run file version {data.get('version')!r} is not supported (≤ {VERSION})")
        name = data.get("name")
        if not isinstance(name, str) or not name:
            raise RunFileError(f"{where}: 'name' must be a non-empty string")
        settings = data.get("settings", {})
        if not isinstance(settings, dict):
            raise RunFileError(f"{where}: 'settings' must be an object")
        losses = data.get("losses")
        if not isinstance(losses, list) or not all(v is None or isinstance(v, (int, float)) for v in losses):
            raise RunFileError(f"{where}: 'losses' must be a list of numbers")
        epochs = data.get("epochs", [])
        if not isinstance(epochs, list) or not all(isinstance(e, dict) for e in epochs):
            raise RunFileError(f"{where}: 'epochs' must be a list of objects")
        status = data.get("status", "finished")
        created = data.get("created", "")
        if not isinstance(status, str) or not isinstance(created, str):
            raise RunFileError(f"{where}: 'status' and 'created' must be strings")
        loss_arr = np.array([math.nan if v is None else v for v in losses], dtype=np.float64)
        return cls(name, settings, loss_arr, epochs, status, created)

    def to_json(self, path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(self.to_dict(), indent=1, allow_nan=False))
        return path

    @classmethod
    def from_json(cls, path) -> "RunRecord":
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise RunFileError(f"{path}: no such run file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise RunFileError(f"{path}: cannot read the run file ({exc})") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RunFileError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
        return cls.from_dict(data, str(path))

    # ----- CSV -----
    def to_csv(self, path_prefix) -> tuple[Path, Path]:
        """Writes ``<prefix>-losses.csv`` (iteration, loss) and ``<prefix>-epochs.csv``; returns both paths."""
        prefix = str(path_prefix)
        for suffix in (".csv", ".json"):
            if prefix.endswith(suffix):
                prefix = prefix[: -len(suffix)]
        loss_path, epoch_path = Path(prefix + "-losses.csv"), Path(prefix + "-epochs.csv")
        loss_path.parent.mkdir(parents=True, exist_ok=True)
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["iteration", "loss"])
        writer.writerows(zip(self.iterations.tolist(), (repr(v) for v in self.losses.tolist())))
        atomic_write(loss_path, buf.getvalue())
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(EPOCH_COLUMNS)
        for e in self.epochs:
            writer.writerow(["" if e.get(c) is None else e.get(c) for c in EPOCH_COLUMNS])
        atomic_write(epoch_path, buf.getvalue())
        return loss_path, epoch_path
