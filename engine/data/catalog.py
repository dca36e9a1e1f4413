"""Named datasets: the offline MNIST sample shipped in the package, MNIST and Fashion-MNIST downloads, and any folder of IDX files.

Every loader returns an engine.data.dataset.Dataset with pixels as (N, 784) float32 in [0, 1] and int64 labels.
Downloads and decoded arrays live in cache_dir(); decoded arrays are kept as .npy files whose names carry a
key made from the source files, so a changed source is decoded again instead of trusted stale.
"""
from __future__ import annotations

import hashlib
import heapq
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
from engine.data.idx import (IMAGE_SHAPE, IdxError, check_labels, load_idx_pair, pixels_to_float, read_images,
                              read_labels)
from engine.errors import DatasetError
from engine.util import atomic_write, printable

__all__ = [
    "DATASET_NAMES", "REMOTE_DATASETS", "RemoteDataset", "load_dataset", "load_remote", "load_data_dir",
    "load_sample", "cache_dir", "sample_available", "sample_path", "is_cached", "text_progress",
    "DatasetError", "DownloadError", "OfflineError", "DownloadCancelled", "DownloadLimits", "IdxError",
]

CACHE_ENV = "DIGITLAB_CACHE_DIR"
SAMPLE_NAME = "mnist-sample"
SAMPLE_DIR = Path(__file__).resolve().parent / "sample"  # built by engine.data.make_sample; see its README.md
SAMPLE_TRAIN_SIZE = SAMPLE_TEST_SIZE = 10_000
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
    " Ways forward: use the offline sample (dataset 'mnist-sample', 20,000 real digits shipped with DigitLab), "
    "point --data-dir at a folder holding the IDX files "
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
    (or the sample's) training files (evaluating needs only the test split; a folder's train files may be large).
    """
    if data_dir is not None:
        return load_data_dir(data_dir, test_only)
    if name == SAMPLE_NAME:
        return load_sample(test_only)
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


def _pair(x: np.ndarray, labels: np.ndarray, paths: dict, split: str, n_classes: int):
    check_labels(len(x), labels, paths[f"{split}-images"], paths[f"{split}-labels"], n_classes)
    return x, labels.astype(np.int64)


def _file_key(path: Path, known_hash: str) -> str:
    st = path.stat()
    text = f"{_DECODE_VERSION}|{known_hash}|{st.st_size}|{st.st_mtime_ns}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _decoded_path(folder: Path, role: str, key: str) -> Path:
    return folder / f"{role}.{key}.npy"


def _decoded_exists(folder: Path, role: str, key: str) -> bool:
    return _decoded_path(folder, role, key).is_file()


def _decoded(folder: Path, role: str, source: Path, known_hash: str) -> np.ndarray:
    """The array in `source` (already checksum-verified), from the .npy cache (of the uint8 array) when decoded
    from it before: labels as uint8, images as (N, 784) float32 pixels in [0, 1]."""
    images = role.endswith("images")
    key = _file_key(source, known_hash)
    cached = _decoded_path(folder, role, key)
    if cached.is_file():
        try:
            array = np.load(cached, allow_pickle=False, mmap_mode="r")  # the header first: shape and dtype
            if array.dtype == np.uint8 and not images and array.ndim == 1:
                return np.array(array)
            if array.dtype == np.uint8 and images and array.ndim == 3 and array.shape[1:] == IMAGE_SHAPE \
                    and len(array) and array.flags.c_contiguous:
                return _cached_pixels(cached, array.offset, len(array))
        except (OSError, ValueError):
            pass
        cached.unlink(missing_ok=True)  # damaged or not what this cache writes: decode again below
    array = read_images(source) if images else read_labels(source)
    for old in folder.glob(f"{role}.*.npy"):
        old.unlink(missing_ok=True)
    _save_npy_atomic(cached, array)
    return pixels_to_float(array) if images else array


_CACHE_ROWS = 4096  # images read from a .npy cache at a time


def _cached_pixels(path: Path, offset: int, count: int) -> np.ndarray:
    """The uint8 images cached in ``path`` (data at ``offset``) as float32 pixels, read a few thousand at a time:
    the whole set is never in memory as uint8 as well (nor mapped: mapped pages would count as the process's)."""
    size = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]
    x = np.empty((count, size), dtype=np.float32)
    with open(path, "rb") as f:
        f.seek(offset)
        for start in range(0, count, _CACHE_ROWS):
            rows = min(_CACHE_ROWS, count - start)
            data = np.fromfile(f, dtype=np.uint8, count=rows * size)
            if data.size != rows * size:
                raise ValueError(f"{path.name} ends early")
            x[start:start + rows] = pixels_to_float(data.reshape(rows, size))
    return x


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
    """The folder of the offline sample shipped inside this package, or None when its files are missing."""
    return SAMPLE_DIR if all(_sample_file(SAMPLE_DIR, role).is_file() for role in ROLES) else None


def _sample_file(folder: Path, role: str) -> Path:
    return folder / (_DIR_NAMES[role][0] + ".gz")  # MNIST's own names: train-images-idx3-ubyte.gz, ...


def sample_available() -> bool:
    """Whether the offline sample (20,000 real MNIST digits shipped in the package) can be loaded."""
    return sample_path() is not None


def load_sample(test_only: bool = False) -> Dataset:
    """The offline MNIST sample: 10,000 of MNIST's training digits (1,000 per class) and its 10,000 test digits.

    The files ship in the package (``engine/data/sample/``, built by ``python -m engine.data.make_sample``,
    whose docstring says how the training digits were chosen), so every run and every person gets the same
    digits, and accuracy on its test split is accuracy on the real MNIST test set. ``test_only`` skips the
    training digits (x_train is then None).
    """
    folder = sample_path()
    if folder is None:
        raise DatasetError(
            f"the offline MNIST sample is missing from this installation (expected the IDX files in "
            f"{printable(SAMPLE_DIR)}): reinstall DigitLab (pip install digitlab) or, from a source checkout, rebuild "
            "it with python -m engine.data.make_sample --from DIR. Alternatives: --data-dir DIR with the IDX files "
            "(train-images-idx3-ubyte.gz, ...), or the 'mnist' dataset, downloaded on first use."
        )
    x_train = t_train = None
    if not test_only:
        x_train, t_train = load_idx_pair(_sample_file(folder, "train-images"), _sample_file(folder, "train-labels"))
    x_test, t_test = load_idx_pair(_sample_file(folder, "test-images"), _sample_file(folder, "test-labels"))
    return Dataset(SAMPLE_NAME, x_train, t_train, x_test, t_test, list(DIGIT_CLASSES), f"digitlab package: {folder}")


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
