"""Small helpers the engine's packages share: atomic file writes, JSON-able values, cancel checks, safe text."""
from __future__ import annotations

import math
import os
import re
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import numpy as np


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None] | bytes | str) -> Path:
    """Write a file so that readers see the old one or the whole new one, never half of one.

    ``write`` is the content (bytes, or text written as UTF-8) or a function given the open binary file.
    The data goes to a temporary file beside ``path``, is flushed to disk, then renamed over ``path``;
    on any failure (a full disk, an exception in ``write``) the temporary file is removed, any existing
    file at ``path`` is unchanged, and the error propagates.
    """
    path = Path(path)
    if isinstance(write, str):
        write = write.encode("utf-8")
    if isinstance(write, bytes):
        data = write
        write = lambda f: f.write(data)  # noqa: E731
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)
    return path


def _fsync_folder(folder: Path) -> None:
    """Make a rename durable; not every platform can open a folder, which is fine."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def to_jsonable(value):
    """``value`` with NumPy arrays and scalars, paths and dates turned into plain JSON types.

    JSON has no NaN or infinity: non-finite floats become ``None`` (a diverged loss is stored as null).
    """
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (Path, datetime)):
        return str(value)
    return value


def as_cancel_check(cancel) -> Callable[[], bool]:
    """Turn None, a threading.Event or a callable returning True into one callable."""
    if cancel is None:
        return lambda: False
    if hasattr(cancel, "is_set"):
        return cancel.is_set
    if callable(cancel):
        return lambda: bool(cancel())
    raise TypeError(f"cancel must be a callable or a threading.Event, got {type(cancel).__name__}")


MAX_TEXT = 200  # file-derived text longer than this is shortened in messages: a 5 MB key name is data, not a message
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def shorten(text, limit: int = MAX_TEXT) -> str:
    """``str(text)`` cut to ``limit`` characters with "…(N more)" saying how much was left out."""
    text = str(text)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…({len(text) - limit:,} more characters)"


def printable(text, limit: int = MAX_TEXT) -> str:
    """File-derived text made safe for a terminal or a log line: shortened, control characters escaped.

    Escape sequences (ESC [ …), carriage returns, bidi overrides and other controls are shown as
    ``\\x1b``-style escapes so a file cannot move the cursor, recolour or hide text.
    """
    text = shorten(text, limit)
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)
