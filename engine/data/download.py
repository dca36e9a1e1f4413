"""Fetch files over HTTP: several mirrors, known checksums and sizes, time limits, progress, cancel.

A file only ever appears under its final name after its checksum matched: it is streamed to a
hidden ``.part`` file in the same folder, verified, then renamed. Whatever stops a transfer (a
wrong checksum, a server that sends too much, too slowly or nothing at all, a full disk, a cancel,
Ctrl+C) removes the ``.part`` file, and ``.part`` files a crashed run left behind are removed by
the next download into that folder. Each failure is worded for what it is: offline (no mirror
could be reached), server error (an HTTP status), stalled, too slow, too large, closed early,
checksum mismatch, disk full, cancelled.
"""
from __future__ import annotations

import errno
import hashlib
import os
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pooch

from engine.errors import DatasetError
from engine.util import as_cancel_check, printable

ProgressCallback = Callable[[int, int, str], None]  # (done_bytes, total_bytes, filename)
MIRRORS_ENV = "DIGITLAB_MIRRORS"
CHUNK_SIZE = 64 * 1024
SIZE_MARGIN_BYTES = 64 * 1024  # plus 1 %: a mirror may re-gzip a file a little larger; more is not the file
UNKNOWN_SIZE_CAP = 100_000_000  # bytes for a file of unknown size: the largest DigitLab downloads is 26 MB
STALE_PART_SECONDS = 600.0  # a live download rewrites its .part at least every stall timeout; older ones are dead
_QUEUE_CHUNKS = 4  # chunks the reading thread may run ahead of the writer: memory stays at 4 x CHUNK_SIZE


@dataclass(frozen=True)
class DownloadLimits:
    """How long a download may take. Every wait is checked at least every ``poll`` seconds, with cancel.

    The overall deadline of one attempt (one mirror) is ``deadline`` when given, else
    ``min_deadline + size / min_rate``: 60 s + 10 min for MNIST's 9.9 MB training images.
    """

    connect_timeout: float = 15.0  # seconds to look up the name, connect and get the response headers
    stall_timeout: float = 30.0  # seconds without a single byte, once connected, before giving up
    deadline: float | None = None  # fixed seconds for one attempt; None: derived from the size
    min_rate: float = 16_000.0  # bytes per second the derived deadline allows for (a very poor line)
    min_deadline: float = 60.0  # seconds every attempt gets on top of size / min_rate
    poll: float = 0.2  # seconds between checks of cancel and the clocks; a cancel is noticed this fast

    def deadline_for(self, size: int) -> float:
        if self.deadline is not None:
            return self.deadline
        return self.min_deadline + (size or UNKNOWN_SIZE_CAP) / self.min_rate


DEFAULT_LIMITS = DownloadLimits()


class DownloadError(DatasetError):
    """No mirror delivered a file with the expected checksum, or the file could not be saved."""


class OfflineError(DownloadError):
    """No mirror could even be reached: most likely there is no network."""


class DownloadCancelled(DatasetError):
    """The person (or the program) asked to stop the download; nothing partial was kept."""


@dataclass(frozen=True)
class RemoteFile:
    """One file on the mirrors: its name there and its published checksum ("sha256:..." or "md5:...")."""

    name: str
    known_hash: str
    size: int = 0  # bytes; also bounds how much a server may send (0 = unknown: UNKNOWN_SIZE_CAP)

    def __post_init__(self) -> None:
        alg, _, digest = self.known_hash.partition(":")
        if alg not in ("sha256", "md5") or not digest:
            raise ValueError(f"checksum for {self.name} must look like 'sha256:<hex>' or 'md5:<hex>', "
                             f"got {self.known_hash!r}")

    @property
    def byte_limit(self) -> int:
        """The most bytes accepted from a server for this file."""
        if not self.size:
            return UNKNOWN_SIZE_CAP
        return self.size + self.size // 100 + SIZE_MARGIN_BYTES


def resolve_mirrors(default: Sequence[str], mirrors: Sequence[str] | str | None = None) -> list[str]:
    """Mirror base URLs to try in order: the argument, else $DIGITLAB_MIRRORS, else the defaults."""
    if isinstance(mirrors, str):  # one URL, or several separated by spaces
        mirrors = mirrors.split()
    if mirrors:
        chosen = list(mirrors)
    elif os.environ.get(MIRRORS_ENV, "").split():
        chosen = os.environ[MIRRORS_ENV].split()
    else:
        chosen = list(default)
    if not chosen:
        raise DownloadError(f"no download mirrors configured (set {MIRRORS_ENV} or pass mirrors=[...])")
    return chosen


def file_matches(path: Path, known_hash: str, max_size: int = 0) -> bool:
    """Whether a file exists and has the published checksum (a file over `max_size` bytes, if given, is not read)."""
    alg, _, digest = known_hash.partition(":")
    if not path.is_file() or (max_size and path.stat().st_size > max_size):
        return False
    return pooch.file_hash(str(path), alg=alg) == digest.lower()


def fetch_file(remote: RemoteFile, folder: str | os.PathLike, mirrors: Sequence[str],
               progress: ProgressCallback | None = None, cancel=None, hint: str = "",
               limits: DownloadLimits | None = None) -> Path:
    """The verified local copy of `remote` in `folder`, downloading it from the first mirror that works.

    `cancel` is a threading.Event or a callable returning True; it is checked every ``limits.poll``
    seconds even while a server sends nothing, and ends the download with DownloadCancelled.
    Raises DownloadCancelled, OfflineError (no mirror reachable) or DownloadError (every mirror failed,
    or the file cannot be saved); `hint` is appended to those messages to tell people what else they can do.
    """
    cancelled = as_cancel_check(cancel)
    limits = limits or DEFAULT_LIMITS
    folder = Path(folder)
    target = folder / remote.name
    if file_matches(target, remote.known_hash, remote.byte_limit):
        return target
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _save_error(exc, remote, folder) from exc
    remove_stale_parts(folder)
    _check_room(remote, folder)
    failures: list[str] = []
    unreachable = 0
    for base in mirrors:
        if cancelled():
            raise DownloadCancelled(f"download of {remote.name} cancelled")
        url = base.rstrip("/") + "/" + remote.name
        try:
            _download_verified(url, remote, target, progress, cancelled, limits)
            return target
        except _Unreachable as exc:
            unreachable += 1
            failures.append(f"{printable(url)}: cannot connect ({exc})")
        except _Failed as exc:
            failures.append(f"{printable(url)}: {exc}")
    reasons = "; ".join(failures)
    if unreachable == len(mirrors):
        raise OfflineError(f"cannot download {remote.name}: no mirror could be reached; you seem to be offline "
                           f"({reasons}).{hint}")
    raise DownloadError(f"cannot download {remote.name}: every mirror failed ({reasons}).{hint}")


def remove_stale_parts(folder: Path, older_than: float = STALE_PART_SECONDS) -> list[Path]:
    """Remove the hidden ``.part``/``.tmp`` files a crashed or killed run left in `folder`; returns them.

    Only files untouched for `older_than` seconds go: a download running in another process keeps
    rewriting its own, and gives up long before that after its server stops sending.
    """
    removed = []
    now = time.time()
    for path in [*folder.glob(".*.part"), *folder.glob(".*.tmp")]:
        try:
            if path.is_file() and now - path.stat().st_mtime > older_than:
                path.unlink()
                removed.append(path)
        except OSError:
            pass  # gone already, or not ours to remove: neither stops a download
    return removed


class _Unreachable(Exception):
    """The mirror could not be reached at all (name lookup, refused or unanswered connection)."""


class _Failed(Exception):
    """The mirror answered but did not deliver the file; the message says how."""


def _check_room(remote: RemoteFile, folder: Path) -> None:
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return  # cannot tell; a full disk is still reported when a write fails
    if remote.size and free < remote.size:
        raise DownloadError(f"the disk is full: cannot save {remote.name} to {printable(folder)} "
                            f"(needs {remote.size:,} bytes, {free:,} free)")


def _save_error(exc: OSError, remote: RemoteFile, folder: Path) -> DownloadError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        needs = f"needs {remote.size:,} bytes" if remote.size else "size unknown"
        return DownloadError(f"the disk is full: cannot save {remote.name} to {printable(folder)} ({needs})")
    return DownloadError(f"cannot save {remote.name} to {printable(folder)}: {exc.strerror or exc}")


def _download_verified(url: str, remote: RemoteFile, target: Path, progress, cancelled, limits) -> None:
    try:
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{remote.name}.", suffix=".part")
    except OSError as exc:
        raise _save_error(exc, remote, target.parent) from exc
    tmp = Path(tmp_name)
    try:
        alg, _, digest = remote.known_hash.partition(":")
        hasher = hashlib.new(alg)
        out = os.fdopen(fd, "wb")

        def write(data: bytes) -> None:
            try:
                out.write(data)
            except OSError as exc:
                raise _save_error(exc, remote, target.parent) from exc
            hasher.update(data)

        try:
            received = _stream(url, remote, write, progress, cancelled, limits)
            try:
                out.flush()
                os.fsync(out.fileno())
            except OSError as exc:
                raise _save_error(exc, remote, target.parent) from exc
        finally:
            try:
                out.close()
            except OSError:
                pass  # a full disk again while flushing what is left: already reported above, and the file goes
        if hasher.hexdigest() != digest.lower() and remote.size and received < remote.size:
            raise _Failed(f"the connection was closed early after {received:,} of {remote.size:,} bytes")
        if hasher.hexdigest() != digest.lower():
            raise _Failed(f"{alg.upper()} checksum mismatch: got {hasher.hexdigest()} for {received:,} bytes, "
                          f"expected {digest}" + (f" ({remote.size:,} bytes)" if remote.size else "")
                          + "; the file was incomplete or changed and has been discarded")
        os.replace(tmp, target)
    finally:  # every failure, a cancel and Ctrl+C (KeyboardInterrupt) included
        tmp.unlink(missing_ok=True)


# Why not pooch's HTTPDownloader: its reads block for the whole read timeout, so a stalled server delays a
# cancel (and the window's exit) by that long; it has no overall deadline and no size limit (an endless body
# fills the disk); and it decodes a Content-Encoding, which would change the bytes whose checksum we know.
# So a worker thread makes the blocking requests calls (name lookup, connect, each read) and hands chunks
# over a small queue; this thread waits on the queue `limits.poll` seconds at a time and checks cancel, the
# stall clock, the deadline and the size. A worker left blocked after we give up holds no file and ends at
# its own read timeout (the stall timeout).
def _stream(url: str, remote: RemoteFile, write, progress, cancelled, limits: DownloadLimits) -> int:
    """Stream `url` into write(bytes); return the byte count, or raise _Unreachable/_Failed/DownloadCancelled."""
    chunks: queue.Queue = queue.Queue(maxsize=_QUEUE_CHUNKS)
    stop = threading.Event()
    threading.Thread(target=_reader, args=(url, limits, chunks, stop), name=f"download {remote.name}",
                     daemon=True).start()
    start = last = time.monotonic()
    deadline = start + limits.deadline_for(remote.size)
    limit, expected = remote.byte_limit, remote.size
    received, connected = 0, False
    try:
        while True:
            if cancelled():
                raise DownloadCancelled(f"download of {remote.name} cancelled")
            now = time.monotonic()
            if now > deadline:
                raise _Failed(f"too slow: only {_of(received, expected)} bytes arrived within the "
                              f"{round(deadline - start, 1):g} s allowed")
            if connected and now - last > limits.stall_timeout:
                raise _Failed(f"stalled: no data for {limits.stall_timeout:g} s after {_of(received, expected)} bytes")
            if not connected and now - start > limits.connect_timeout + limits.stall_timeout:
                # the worker's own timeouts end a slow connect or a silent server first: this is a name lookup
                raise _Unreachable(f"no answer within {limits.connect_timeout + limits.stall_timeout:g} s")
            try:
                kind, value = chunks.get(timeout=limits.poll)
            except queue.Empty:
                continue
            last = time.monotonic()
            if kind == "head":
                status, reason, length = value
                connected = True
                if status >= 400:
                    raise _Failed(f"server error: HTTP {status} {printable(reason)}".rstrip())
                if length is not None and length > limit:
                    wanted = f"{expected:,}" if expected else f"at most {limit:,}"
                    raise _Failed(f"too large: the server announced {length:,} bytes for {remote.name} "
                                  f"(expected {wanted})")
                expected = expected or (length or 0)
            elif kind == "data":
                if received + len(value) > limit:
                    raise _Failed(f"too large: the server sent more than {limit:,} bytes for {remote.name} "
                                  f"(expected {remote.size:,})" if remote.size else
                                  f"too large: the server sent more than {limit:,} bytes for {remote.name}")
                write(value)
                received += len(value)
                if progress is not None:
                    progress(min(received, expected) if expected else received, expected, remote.name)
            elif kind == "end":
                return received
            else:
                raise _classify(value, connected, received, expected, limits.stall_timeout, limits.connect_timeout)
    finally:
        stop.set()


def _of(received: int, expected: int) -> str:
    return f"{received:,} of {expected:,}" if expected else f"{received:,}"


def _reader(url: str, limits: DownloadLimits, chunks: queue.Queue, stop: threading.Event) -> None:
    """The worker thread: every blocking network call, results handed over as (kind, value) pairs."""
    import requests  # pooch's HTTP backend; imported lazily like pooch does, to keep startup fast

    def hand_over(item) -> bool:
        while not stop.is_set():
            try:
                chunks.put(item, timeout=limits.poll)
                return True
            except queue.Full:
                continue
        return False

    try:
        with requests.get(url, stream=True, timeout=(limits.connect_timeout, limits.stall_timeout),
                          headers={"Accept-Encoding": "identity"}) as response:
            length = response.headers.get("Content-Length", "")
            known = length.isascii() and length.isdigit() and len(length) < 20  # else: an unknown length
            head = (response.status_code, response.reason or "", int(length) if known else None)
            if not hand_over(("head", head)) or response.status_code >= 400:
                return
            while not stop.is_set():
                data = response.raw.read1(CHUNK_SIZE, decode_content=False)  # what arrived, not a full chunk
                if not data:
                    hand_over(("end", None))
                    return
                if not hand_over(("data", data)):
                    return
    except Exception as exc:  # noqa: BLE001 - every failure goes to the waiting thread, which words it
        hand_over(("error", exc))


def _classify(exc: BaseException, connected: bool, received: int, expected: int,
              stall: float, connect: float) -> Exception:
    """Word an exception from the worker for what it means: unreachable, stalled, closed early, other."""
    import requests
    import urllib3

    reason = exc.args[0] if isinstance(exc, requests.exceptions.ConnectionError) and exc.args else exc
    reason = getattr(reason, "reason", reason)  # MaxRetryError wraps the real cause
    if isinstance(reason, urllib3.exceptions.NameResolutionError):
        return _Unreachable(f"the host name was not found: {_os_reason(reason)}")
    if isinstance(reason, urllib3.exceptions.NewConnectionError):  # a subclass of ConnectTimeoutError: first
        return _Unreachable(_os_reason(reason))
    if isinstance(exc, requests.exceptions.ConnectTimeout) or isinstance(reason, urllib3.exceptions.ConnectTimeoutError):
        return _Unreachable(f"no answer within {connect:g} s")
    if isinstance(exc, requests.exceptions.ProxyError):
        return _Unreachable(f"the proxy failed: {_short(reason)}")
    if isinstance(exc, requests.exceptions.SSLError):
        return _Failed(f"the secure connection failed: {_short(reason)}")
    if isinstance(exc, (requests.exceptions.ReadTimeout, urllib3.exceptions.ReadTimeoutError)):
        return _Failed(f"stalled: no data for {stall:g} s after {_of(received, expected)} bytes")
    if isinstance(exc, (requests.exceptions.ConnectionError, urllib3.exceptions.ProtocolError, ConnectionError)):
        return _Failed(f"the connection was closed early after {_of(received, expected)} bytes")
    if not connected and isinstance(exc, requests.exceptions.RequestException):
        return _Failed(f"cannot request it: {_short(exc)}")
    return _Failed(f"transfer failed after {_of(received, expected)} bytes: {type(exc).__name__}: {_short(exc)}")


def _short(exc: BaseException) -> str:
    return printable(exc)


def _os_reason(exc: BaseException) -> str:
    """The operating system's words for what broke ("Connection refused"), else the exception's own."""
    seen = exc
    for _ in range(5):  # urllib3 raises its errors `from` the OSError
        if isinstance(seen, OSError) and seen.strerror:
            return printable(seen.strerror)
        if seen.__cause__ is None and seen.__context__ is None:
            break
        seen = seen.__cause__ or seen.__context__
    return _short(exc)
