"""Small helpers the engine's packages share: safe file writes and reads, JSON-able values, cancel checks, safe text."""
from __future__ import annotations

import errno
import math
import os
import re
import stat
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import numpy as np

from engine.errors import DigitLabError

NEW_FILE_MODE = 0o666  # what editors create files with; the kernel takes the umask off (0644 under umask 022)
_TEMP_TRIES = 100  # random temporary names tried before giving up (a clash is astronomically rare)


class InputFileError(DigitLabError):
    """A file to read is missing, a folder, unreadable, or not a regular file (a FIFO, a device)."""


class WriteError(DigitLabError, OSError):
    """A file could not be written (full disk, no permission, missing folder); nothing was written.

    Also an ``OSError``, so callers that catch ``OSError`` around a save keep catching it.
    """

    def __str__(self) -> str:  # OSError would print "[Errno …]"; the message is already the whole story
        return str(self.args[0]) if self.args else ""


# ----------------------------------------------------------------------------- plain words for OS errors

_OS_ERROR_WORDS = {
    errno.ENOSPC: "the disk is full",
    getattr(errno, "EDQUOT", -1): "your disk quota is used up",
    errno.EROFS: "the disk is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "the operation is not permitted",
    errno.ENOENT: "no such file or folder",
    errno.ENOTDIR: "a part of the path is not a folder",
    errno.EISDIR: "it is a folder",
    errno.ENAMETOOLONG: "the name is too long",
    errno.ELOOP: "the symbolic links form a loop",
    errno.EIO: "input/output error (is the disk failing, or was it removed?)",
    errno.EFBIG: "the file is too large for this disk",
    errno.EMFILE: "too many files are open",
    errno.ENFILE: "too many files are open",
}


def os_error_words(exc: OSError) -> str:
    """What an ``OSError`` means in plain words, e.g. "the disk is full (No space left on device)"."""
    words = _OS_ERROR_WORDS.get(exc.errno)
    system = exc.strerror or str(exc)
    if words is None:
        return printable(system)
    return words if system.lower() in words.lower() else f"{words} ({printable(system)})"


def _kind(mode: int) -> str:
    """What a non-regular file is, for messages."""
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


# ----------------------------------------------------------------------------- reading


def open_regular_file(path: str | os.PathLike, error: type[DigitLabError] = InputFileError) -> BinaryIO:
    """Open ``path`` for binary reading if it is a regular file; ``error`` (one clear line) if not.

    Refuses folders, FIFOs, devices (``/dev/zero`` never ends, a FIFO blocks forever) and sockets
    before reading a byte: the type is checked without opening, then again on the open file (opened
    non-blocking, so a FIFO swapped in between cannot hang the open).
    """
    path = Path(path)
    where = printable(path)
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        raise error(f"{where}: no such file") from None
    except OSError as exc:
        raise error(f"{where}: cannot read it: {os_error_words(exc)}") from None
    except ValueError as exc:  # a NUL byte in the name
        raise error(f"{where}: not a usable file name ({exc})") from None
    if not stat.S_ISREG(mode):
        what = "a folder, not a file" if stat.S_ISDIR(mode) else f"{_kind(mode)}, not a regular file"
        raise error(f"{where}: is {what}; refusing to read it")
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOCTTY", 0)
    nonblocking = getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags | nonblocking)
    except OSError as exc:
        raise error(f"{where}: cannot read it: {os_error_words(exc)}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise error(f"{where}: is {_kind(mode)}, not a regular file; refusing to read it")
        if nonblocking:
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_limited(f: BinaryIO, limit: int, chunk: int = 1 << 20) -> bytes:
    """Up to ``limit + 1`` bytes of ``f`` (one more than allowed tells the caller it is too big).

    Read in chunks: ``f.read(limit + 1)`` would reserve the whole limit (a GiB) up front even for a
    25 KB file, which fails under a memory limit.
    """
    parts, total = [], 0
    while total <= limit:
        block = f.read(min(chunk, limit + 1 - total))
        if not block:
            break
        parts.append(block)
        total += len(block)
    return b"".join(parts)


def check_regular_file(path: str | os.PathLike, error: type[DigitLabError] = InputFileError) -> Path:
    """``path`` if it is a readable regular file, else ``error`` saying what it is (see :func:`open_regular_file`)."""
    open_regular_file(path, error).close()
    return Path(path)


# ----------------------------------------------------------------------------- writing


def write_target(path: str | os.PathLike, what: str = "the file") -> Path:
    """The file a write to ``path`` must replace: ``path`` itself, or the file a symbolic link points to.

    A save over a link writes through to the linked file (as editors do) and keeps the link; a
    dangling link creates the file it names. A loop of links raises :class:`WriteError`.
    """
    path = Path(path)
    if not os.path.islink(path):
        return path
    target = Path(os.path.realpath(path))
    if os.path.islink(target):
        raise WriteError(f"{printable(path)}: cannot save {what}: {_OS_ERROR_WORDS[errno.ELOOP]}")
    return target


def _where(path: Path, target: Path) -> str:
    return printable(path) if target == path else f"{printable(path)} (a link to {printable(target)})"


def check_can_write(path: str | os.PathLike, what: str = "the file") -> Path:
    """Fail early (before hours of training) if ``path`` cannot be saved to; returns the file that would be written.

    Checks that the folder exists, is a folder and is writable, and that ``path`` is not a folder or
    device. :class:`WriteError` says which; the save itself can still fail (a disk that fills up).
    """
    path = Path(path)
    target = write_target(path, what)
    where, folder = _where(path, target), target.parent
    if not folder.is_dir():
        reason = "does not exist" if not folder.exists() else "is not a folder"
        raise WriteError(f"{where}: cannot save {what}: the folder {printable(folder)} {reason}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise WriteError(f"{where}: cannot save {what}: the folder {printable(folder)} is not writable "
                         "(permission denied or a read-only disk)")
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        return target
    except OSError as exc:
        raise WriteError(f"{where}: cannot save {what}: {os_error_words(exc)}") from None
    if not stat.S_ISREG(mode):
        raise WriteError(f"{where}: cannot save {what}: it is {_kind(mode)}; refusing to replace it")
    return target


def _create_temp(folder: Path, name: str) -> tuple[int, Path]:
    """A new, empty temporary file beside the target, created 0666 minus the umask (not mkstemp's 0600)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0)
    for _ in range(_TEMP_TRIES):
        tmp = folder / f".{name[:100]}.{os.urandom(6).hex()}.tmp"
        try:
            return os.open(tmp, flags, NEW_FILE_MODE), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "could not create a temporary file", str(folder))


def _keep_mode_and_owner(fd: int, old: os.stat_result | None) -> None:
    """Give the new file the old file's permissions (and owner, when allowed), as editors do."""
    if old is None:
        return
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, stat.S_IMODE(old.st_mode) & 0o777)
        if hasattr(os, "fchown") and (old.st_uid, old.st_gid) != (os.getuid(), os.getgid()):
            os.fchown(fd, old.st_uid, old.st_gid)
    except OSError:
        pass  # a file system without permissions, or not allowed to give the file away: keep the defaults


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None] | bytes | str,
                 what: str = "the file") -> Path:
    """Write a file so that readers see the old one or the whole new one, never half of one.

    ``write`` is the content (bytes, or text written as UTF-8) or a function given the open binary file.
    The data goes to a temporary file beside the target, is flushed to disk, then renamed over it.
    The new file gets the permissions an editor would give it: those of the file it replaces, or
    0666 minus the umask. Writing to a symbolic link writes the file it points to (the link stays).
    An OS failure (a full disk, no permission, a missing folder) raises :class:`WriteError`, whose
    message says in plain words what went wrong (``what`` names the content: "cannot save weights");
    any other exception from ``write`` propagates. Either way the temporary file is removed and any
    existing file is unchanged. Returns ``path``.
    """
    path = Path(path)
    if isinstance(write, str):
        write = write.encode("utf-8")
    if isinstance(write, bytes):
        data = write
        write = lambda f: f.write(data)  # noqa: E731
    target = write_target(path, what)
    where = _where(path, target)
    try:
        old = os.stat(target)
    except (FileNotFoundError, NotADirectoryError):  # a missing folder is named when the temporary file fails
        old = None
    except OSError as exc:
        raise WriteError(f"{where}: cannot save {what}: {os_error_words(exc)}") from None
    if old is not None and not stat.S_ISREG(old.st_mode):
        raise WriteError(f"{where}: cannot save {what}: it is {_kind(old.st_mode)}; refusing to replace it")
    unchanged = "; nothing was written" + (", the existing file is unchanged" if old is not None else "")
    try:
        fd, tmp = _create_temp(target.parent, target.name)
    except OSError as exc:
        if not target.parent.is_dir():
            reason = "is not a folder" if target.parent.exists() else "does not exist"
            raise WriteError(f"{where}: cannot save {what}: the folder {printable(target.parent)} {reason}") from None
        raise WriteError(f"{where}: cannot save {what}: {os_error_words(exc)}{unchanged}") from exc
    try:
        _keep_mode_and_owner(fd, old)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, DigitLabError):
            raise WriteError(f"{where}: cannot save {what}: {os_error_words(exc)}{unchanged}") from exc
        raise
    _fsync_folder(target.parent)
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


# ----------------------------------------------------------------------------- values


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


MAX_JSON_DEPTH = 64  # deeper file-derived structures are cut off in output: no legitimate report nests this far
MAX_JSON_TEXT = 1024  # strings in JSON output are cut here: room for any real path, not for a 5 MB key name
MAX_JSON_INT_BITS = 256  # larger integers in output become a note: no count or size in a report is this large


def bounded_jsonable(value, limit: int = MAX_JSON_TEXT, depth: int = MAX_JSON_DEPTH):
    """Like :func:`to_jsonable`, for reports that hold file-derived data: strings (and keys) are shortened,
    nesting deeper than ``depth`` is replaced by a note, and unknown objects become their shortened ``str``.
    """
    if isinstance(value, np.ndarray):
        value = value.tolist()
    elif isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (dict, list, tuple)) and depth <= 0:
        return "…(nested too deep)"
    if isinstance(value, dict):
        return {shorten(k, limit): bounded_jsonable(v, limit, depth - 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [bounded_jsonable(v, limit, depth - 1) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):  # a 5,000-digit integer cannot even be turned into text (Python refuses)
        return value if value.bit_length() <= MAX_JSON_INT_BITS else f"…(an integer of {value.bit_length():,} bits)"
    return shorten(value, limit)


def as_cancel_check(cancel) -> Callable[[], bool]:
    """Turn None, a threading.Event or a callable returning True into one callable."""
    if cancel is None:
        return lambda: False
    if hasattr(cancel, "is_set"):
        return cancel.is_set
    if callable(cancel):
        return lambda: bool(cancel())
    raise TypeError(f"cancel must be a callable or a threading.Event, got {type(cancel).__name__}")


# ----------------------------------------------------------------------------- text from files

MAX_TEXT = 200  # file-derived text longer than this is shortened in messages: a 5 MB key name is data, not a message
# C0/C1 controls (ESC starts terminal sequences), line/paragraph separators, bidi overrides and lone surrogates
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def shorten(text, limit: int = MAX_TEXT) -> str:
    """``str(text)`` cut to ``limit`` characters with "…(N more)" saying how much was left out."""
    text = str(text)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…({len(text) - limit:,} more characters)"


def printable(text, limit: int = MAX_TEXT) -> str:
    """File-derived text made safe for a terminal or a log line: shortened, control characters escaped.

    Escape sequences (ESC [ …), carriage returns, bidi overrides and other controls are shown as
    ``\\x1b``-style escapes so a file cannot move the cursor, recolour or hide text; so are lone
    surrogates (undecodable bytes in a file name), which a terminal could not print.
    """
    text = shorten(text, limit)
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape", "backslashreplace").decode("ascii"), text)
