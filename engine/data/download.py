"""Fetch files over HTTP with pooch: several mirrors, known checksums, progress, cancel.

A file only ever appears under its final name after its checksum matched: it is streamed to a
hidden temporary name in the same folder, verified, then renamed. A truncated transfer, a wrong
checksum, a cancel or a dead network therefore leave nothing behind that a later run would trust.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pooch

from engine.errors import DatasetError
from engine.util import as_cancel_check

ProgressCallback = Callable[[int, int, str], None]  # (done_bytes, total_bytes, filename)
MIRRORS_ENV = "DIGITLAB_MIRRORS"
DEFAULT_TIMEOUT = (10.0, 60.0)  # seconds to connect, seconds between received bytes
CHUNK_SIZE = 64 * 1024


class DownloadError(DatasetError):
    """No mirror delivered a file with the expected checksum."""


class OfflineError(DownloadError):
    """No mirror could even be reached: most likely there is no network."""


class DownloadCancelled(DatasetError):
    """The person (or the program) asked to stop the download; nothing partial was kept."""


@dataclass(frozen=True)
class RemoteFile:
    """One file on the mirrors: its name there and its published checksum ("sha256:..." or "md5:...")."""

    name: str
    known_hash: str
    size: int = 0  # bytes, for people and for progress when the server does not say; 0 = unknown

    def __post_init__(self) -> None:
        alg, _, digest = self.known_hash.partition(":")
        if alg not in ("sha256", "md5") or not digest:
            raise ValueError(f"checksum for {self.name} must look like 'sha256:<hex>' or 'md5:<hex>', "
                             f"got {self.known_hash!r}")


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


def file_matches(path: Path, known_hash: str) -> bool:
    """Whether a file exists and has the published checksum."""
    alg, _, digest = known_hash.partition(":")
    return path.is_file() and pooch.file_hash(str(path), alg=alg) == digest.lower()


def fetch_file(remote: RemoteFile, folder: str | os.PathLike, mirrors: Sequence[str],
               progress: ProgressCallback | None = None, cancel=None, hint: str = "",
               timeout=DEFAULT_TIMEOUT) -> Path:
    """The verified local copy of `remote` in `folder`, downloading it from the first mirror that works.

    Raises DownloadCancelled, OfflineError (no mirror reachable) or DownloadError (every mirror failed);
    `hint` is appended to those messages to tell people what else they can do.
    """
    cancelled = as_cancel_check(cancel)
    folder = Path(folder)
    target = folder / remote.name
    if file_matches(target, remote.known_hash):
        return target
    folder.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    unreachable = 0
    for base in mirrors:
        if cancelled():
            raise DownloadCancelled(f"download of {remote.name} cancelled")
        url = base.rstrip("/") + "/" + remote.name
        try:
            _download_verified(url, remote, target, progress, cancelled, timeout)
            return target
        except _Unreachable as exc:
            unreachable += 1
            failures.append(f"{url}: cannot connect ({exc})")
        except _Failed as exc:
            failures.append(f"{url}: {exc}")
    reasons = "\n  ".join(failures)
    if unreachable == len(mirrors):
        raise OfflineError(f"cannot download {remote.name}: no mirror could be reached; you seem to be offline."
                           f"\n  {reasons}{hint}")
    raise DownloadError(f"cannot download {remote.name}: every mirror failed.\n  {reasons}{hint}")


class _Unreachable(Exception):
    pass


class _Failed(Exception):
    pass


def _download_verified(url: str, remote: RemoteFile, target: Path, progress, cancelled, timeout) -> None:
    import requests  # pooch's HTTP backend; imported lazily like pooch does, to keep startup fast

    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{remote.name}.", suffix=".part")
    os.close(fd)
    tmp = Path(tmp_name)
    meter = _Meter(remote, progress, cancelled)
    downloader = pooch.HTTPDownloader(progressbar=meter, chunk_size=CHUNK_SIZE, timeout=timeout)
    try:
        try:
            downloader(url, str(tmp), None)
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            if meter.received:  # it had started: the transfer broke, the server is there
                raise _Failed(f"transfer interrupted after {meter.received} bytes ({_short(exc)})") from exc
            raise _Unreachable(_short(exc)) from exc
        except requests.exceptions.HTTPError as exc:
            raise _Failed(f"HTTP error {exc.response.status_code if exc.response is not None else '?'}") from exc
        except requests.exceptions.RequestException as exc:  # e.g. fewer bytes than Content-Length
            raise _Failed(f"transfer interrupted ({_short(exc)})") from exc
        if cancelled():
            raise DownloadCancelled(f"download of {remote.name} cancelled")
        alg, _, digest = remote.known_hash.partition(":")
        actual = pooch.file_hash(str(tmp), alg=alg)
        if actual != digest.lower():
            size = tmp.stat().st_size
            raise _Failed(f"{alg.upper()} checksum mismatch: got {actual} for {size} bytes, expected {digest}"
                          + (f" ({remote.size} bytes)" if remote.size else "")
                          + "; the file was incomplete or changed and has been discarded")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) < 200 else text[:200] + "..."


class _Meter:
    """The progress object pooch's HTTPDownloader drives (total/update/reset/close); also where cancel bites."""

    def __init__(self, remote: RemoteFile, callback: ProgressCallback | None, cancelled: Callable[[], bool]):
        self.remote, self.callback, self.cancelled = remote, callback, cancelled
        self.total = remote.size
        self.received = 0

    def update(self, n: int) -> None:
        if self.cancelled():
            raise DownloadCancelled(f"download of {self.remote.name} cancelled")
        self.received += n
        total = self.total or self.remote.size
        done = min(self.received, total) if total else self.received
        if self.callback is not None:
            self.callback(done, total, self.remote.name)

    def reset(self) -> None:
        if self.total:  # pooch then calls update(total) to fill the bar; with no Content-Length keep the count
            self.received = 0

    def close(self) -> None:
        pass
