"""A finished (or stopped) training run kept for comparison: its settings, loss curve and epoch metrics.

A run's learning-rate changes (a person moved the slider mid-run) are kept in its settings as
``settings["lr_changes"] = [{"iteration": 812, "from": 0.001, "to": 0.05}, ...]``, checked like every
other field. Runs are saved as JSON (to reopen and compare with later runs) and as CSV (for spreadsheets).
Writes are atomic (temporary file, then rename) so a crash never leaves a half-written run file; new
files get the permissions an editor would give them, a link is written through to its file, and a
failure raises :class:`engine.util.WriteError` (a DigitLabError and an OSError) saying why in plain words.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from engine.errors import DigitLabError
from engine.train.run_names import run_history, run_title
from engine.util import (WriteError, atomic_write, open_regular_file, os_error_words, printable, read_limited,
                         to_jsonable)

FORMAT = "digitlab-run"
VERSION = 1
MAX_RUN_FILE_BYTES = 256 << 20  # a million iterations take ~25 MB as JSON; a bigger "run" is not one, only memory
LR_CHANGES = "lr_changes"  # the settings key of a run's learning-rate changes
EPOCH_COLUMNS = ("epoch", "iteration", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "seconds")


class RunFileError(DigitLabError):
    """A run file that cannot be read (missing, not JSON, not a DigitLab run, wrong field types)."""


def check_lr_changes(changes, where: str = "run") -> list[dict]:
    """A run's learning-rate changes as plain ``{"iteration": int, "from": float, "to": float}`` dicts.

    RunFileError unless ``changes`` is a list of such objects, iterations ≥ 0 and in order, rates finite and > 0.
    """
    if not isinstance(changes, (list, tuple)):
        raise RunFileError(f"{where}: 'lr_changes' must be a list, found {type(changes).__name__}")
    out: list[dict] = []
    for i, c in enumerate(changes):
        if not isinstance(c, dict):
            raise RunFileError(f"{where}: lr_changes[{i}] must be an object with iteration, from and to")
        it = c.get("iteration")
        if isinstance(it, (bool, np.bool_)) or not isinstance(it, (int, np.integer)) or it < 0:
            raise RunFileError(f"{where}: lr_changes[{i}]: 'iteration' must be a whole number ≥ 0")
        rates = [_rate(c.get("from")), _rate(c.get("to"))]
        if None in rates:
            raise RunFileError(f"{where}: lr_changes[{i}]: 'from' and 'to' must be learning rates > 0")
        if out and int(it) < out[-1]["iteration"]:
            raise RunFileError(f"{where}: lr_changes[{i}]: iteration {int(it)} comes before the previous change's "
                               f"{out[-1]['iteration']}")
        out.append({"iteration": int(it), "from": rates[0], "to": rates[1]})
    return out


def _rate(value) -> float | None:
    """A learning rate (finite, > 0) as a float, or None."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        return None
    try:
        rate = float(value)
    except OverflowError:  # an integer of 400 digits
        return None
    return rate if math.isfinite(rate) and rate > 0 else None


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
        if LR_CHANGES in self.settings:
            self.settings[LR_CHANGES] = check_lr_changes(self.settings[LR_CHANGES])
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

    @property
    def lr_changes(self) -> list[dict]:
        """``[{"iteration", "from", "to"}, ...]``: when and how the learning rate was changed during the run."""
        return [dict(c) for c in self.settings.get(LR_CHANGES, [])]

    def title(self) -> str:
        """'Adam lr 0.001→0.05@812 · batch 100 · seed 0' (the name when the settings do not say)."""
        return run_title(self.settings, self.name)

    def history(self) -> list[str]:
        """The run told one fact a line: name, network, settings, each learning-rate change, how it ended."""
        return run_history(self.settings, self.name, len(self.losses), self.status, self.final_test_accuracy)

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
        if LR_CHANGES in settings:
            settings = {**settings, LR_CHANGES: check_lr_changes(settings[LR_CHANGES], where)}
        status = data.get("status", "finished")
        created = data.get("created", "")
        if not isinstance(status, str) or not isinstance(created, str):
            raise RunFileError(f"{where}: 'status' and 'created' must be strings")
        loss_arr = np.array([math.nan if v is None else v for v in losses], dtype=np.float64)
        return cls(name, settings, loss_arr, epochs, status, created)

    def to_json(self, path) -> Path:
        path = Path(path)
        text = json.dumps(self.to_dict(), indent=1, allow_nan=False)
        _make_folder(path)
        atomic_write(path, text, what="the run")
        return path

    @classmethod
    def from_json(cls, path) -> "RunRecord":
        """Read a run file; RunFileError (one line naming the file) for anything that is not a DigitLab run."""
        path = Path(path)
        where = printable(path)
        if not os.path.lexists(path):
            raise RunFileError(f"{where}: no such run file")
        with open_regular_file(path, RunFileError) as f:  # a FIFO or a device is refused, never read
            try:
                raw = read_limited(f, MAX_RUN_FILE_BYTES)
            except OSError as exc:
                raise RunFileError(f"{where}: cannot read the run file: {os_error_words(exc)}") from None
        if len(raw) > MAX_RUN_FILE_BYTES:
            raise RunFileError(f"{where}: larger than {MAX_RUN_FILE_BYTES >> 20} MiB, too large for a run file")
        try:
            data = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise RunFileError(f"{where}: cannot read the run file: not UTF-8 text ({exc.reason} at byte "
                               f"{exc.start})") from None
        except json.JSONDecodeError as exc:
            raise RunFileError(f"{where}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
        except RecursionError:  # [[[[… 100,000 deep
            raise RunFileError(f"{where}: not a run file: its JSON is nested too deeply") from None
        except ValueError as exc:  # a number of 5,000 digits
            raise RunFileError(f"{where}: not a run file: {printable(exc)}") from None
        return cls.from_dict(data, where)

    # ----- CSV -----
    def to_csv(self, path_prefix) -> tuple[Path, Path]:
        """Writes ``<prefix>-losses.csv`` (iteration, loss) and ``<prefix>-epochs.csv``; returns both paths."""
        prefix = str(path_prefix)
        for suffix in (".csv", ".json"):
            if prefix.endswith(suffix):
                prefix = prefix[: -len(suffix)]
        loss_path, epoch_path = Path(prefix + "-losses.csv"), Path(prefix + "-epochs.csv")
        _make_folder(loss_path)
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["iteration", "loss"])
        writer.writerows(zip(self.iterations.tolist(), (repr(v) for v in self.losses.tolist())))
        atomic_write(loss_path, buf.getvalue(), what="the run's losses")
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(EPOCH_COLUMNS)
        for e in self.epochs:
            writer.writerow(["" if e.get(c) is None else e.get(c) for c in EPOCH_COLUMNS])
        atomic_write(epoch_path, buf.getvalue(), what="the run's epochs")
        return loss_path, epoch_path


def _make_folder(path: Path) -> None:
    """Create the folder ``path`` goes in (and its parents), or WriteError saying why not."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WriteError(f"{printable(path)}: cannot create the folder {printable(path.parent)}: "
                         f"{os_error_words(exc)}") from None
