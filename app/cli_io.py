"""What the ``digitlab`` command writes: output that survives ``| head``, file-derived text made safe,
and every failure as one line (``digitlab CMD: error: FILE: what is wrong``) instead of a traceback."""
from __future__ import annotations

import json
import os
import re
import sys
import traceback
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from engine.errors import DigitLabError
from engine.util import MAX_TEXT, bounded_jsonable, check_regular_file, os_error_words, printable

MAX_ERROR_TEXT = 600  # characters of one error line: room for a message naming two long paths, not for a 5 MB key
MAX_SUMMARY_LINES = 60  # lines of inspect's summary shown on the terminal (a file may hold 1,000 arrays); --json has all


class CliError(Exception):
    """A problem to report in one line, without a traceback."""


# ----------------------------------------------------------------------------- output

_closed: set[str] = set()  # "stdout"/"stderr" once the reader went away


def reset_output() -> None:
    """Forget closed streams (each in-process run of ``main`` starts with open ones)."""
    _closed.clear()


def _silence(name: str) -> None:
    """The reader of stdout/stderr is gone: send the rest (and Python's final flush) to the null device."""
    _closed.add(name)
    stream = getattr(sys, name)
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # not a real file (captured in tests): nothing to redirect
        pass


def _write(name: str, text: str) -> None:
    if name in _closed:
        return
    try:
        stream = getattr(sys, name)
        stream.write(text)
        stream.flush()
    except BrokenPipeError:  # `digitlab … | head`: the rest of the work still happens (a --save still saves)
        _silence(name)


class StderrStream:
    """A file-like stderr for the dataset download progress that keeps working after ``2>&1 | head``."""

    def write(self, text: str) -> None:
        _write("stderr", text)

    def flush(self) -> None:
        pass


def say(*parts) -> None:
    """One line of human-readable output on stderr (file-derived parts must already be ``printable``)."""
    _write("stderr", " ".join(map(str, parts)) + "\n")


MAX_SUMMARY_LINE = 500  # characters: a probe's note names four candidates and their scores; a file's names are cut earlier


def say_block(text: str) -> None:
    """File-derived lines, each escaped and shortened; a long listing is cut after MAX_SUMMARY_LINES lines."""
    lines = str(text).splitlines()
    for line in lines[:MAX_SUMMARY_LINES]:
        say(printable(line, MAX_SUMMARY_LINE))
    if len(lines) > MAX_SUMMARY_LINES:
        say(f"… {len(lines) - MAX_SUMMARY_LINES:,} more lines (--json lists everything)")


def say_out(line: str) -> None:
    """One line on stdout (what a command answers, as ``--version`` does)."""
    _write("stdout", line + "\n")


def emit_json(data: dict) -> None:
    """The one JSON object on stdout: strings from files shortened, nesting bounded (json escapes controls)."""
    _write("stdout", json.dumps(bounded_jsonable(data)) + "\n")


# ----------------------------------------------------------------------------- the version

_PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def digitlab_version() -> str:
    """The installed distribution's version; in a source tree that was never installed, pyproject.toml's."""
    try:
        return version("digitlab")
    except PackageNotFoundError:
        pass
    try:
        match = re.search(r'^version\s*=\s*"([^"]+)"', _PYPROJECT.read_text(encoding="utf-8"), re.MULTILINE)
    except OSError:
        match = None
    return f"{match.group(1)} (source tree, not installed)" if match else "unknown (not installed)"


# ----------------------------------------------------------------------------- errors

def error_text(exc: BaseException) -> str:
    """An input error's message; a bare OSError in plain words with the file it names."""
    if isinstance(exc, OSError) and not isinstance(exc, DigitLabError):
        words = os_error_words(exc)
        return f"{exc.filename}: {words}" if exc.filename else words
    return str(exc)


@contextmanager
def reading(path):
    """Any error while reading ``path`` becomes one CliError that names the file once: "FILE: what is wrong"."""
    try:
        yield
    except (DigitLabError, ValueError, OSError) as exc:
        text = error_text(exc)
        if any(name[:MAX_TEXT] in text or printable(name) in text for name in {str(path), str(Path(path))}):
            raise CliError(text) from exc
        raise CliError(f"{path}: {text}") from exc


def regular_file(path) -> None:
    """Refuse a missing file, a folder, an unreadable file, a FIFO or a device before reading a byte."""
    with reading(path):
        check_regular_file(path)


def internal_error_text(exc: BaseException, debug: bool) -> str:
    """"TypeError: … — please report this …" for an exception that means a bug in DigitLab."""
    try:
        detail = str(exc)
    except Exception:  # noqa: BLE001 - an exception whose str() fails is still reported
        detail = ""
    what = f"{type(exc).__name__}: {printable(detail)}" if detail else type(exc).__name__
    how = "please report this with the command you ran and the traceback above" if debug else \
        "please report this with the command you ran; rerun with --debug for the traceback"
    return f"{what} — {how}"


def fail(name: str, kind: str, text: str | None, code: int, want_json: bool,
         traceback_of: BaseException | None = None) -> int:
    """Report the end of a command: the traceback (only if asked for), one line, the JSON error object; ``code``."""
    if traceback_of is not None:
        _write("stderr", "".join(traceback.format_exception(traceback_of)))
    line = printable(text, MAX_ERROR_TEXT) if text is not None else None
    say(f"{name}: {kind}: {line}" if line is not None else f"{name}: {kind}")
    if want_json:
        emit_json({"command": name.partition(" ")[2] or None, "error": line or kind, "kind": kind, "exit_code": code})
    return code
