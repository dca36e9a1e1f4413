"""Michael Nielsen's ``mnist.pkl.gz`` as a dataset, read without running anything from the file.

The file (from the Theano tutorials, used by "Neural Networks and Deep Learning") is the gzip of a
Python 2 pickle (cPickle protocol 2, numpy 1.x) of ``(training_data, validation_data, test_data)``,
each ``(images, labels)``: images float32 ``(N, 784)`` in [0, 1), labels int64 ``(N,)``, N = 50,000,
10,000 and 10,000. The 50,000 + 10,000 are MNIST's own 60,000 training images, so DigitLab trains on
both and tests on the 10,000.

:func:`read_nielsen_dataset` takes the *decompressed* pickle (the caller unwraps gzip with a bounded
decompressor), unpickles it with :mod:`engine.weightfiles.safe_pickle` (no code from the file is
ever run, the arrays may not add up to more than the file) and checks every part. Also accepted:
a 2-tuple ``(training, test)``, images ``(N, 28, 28)`` or uint8 0-255, one-hot labels ``(N, 10)``.
"""
from __future__ import annotations

import math

import numpy as np

from engine.data.dataset import Dataset
from engine.data.idx import pixels_to_float
from engine.errors import DatasetError, WeightFileError
from engine.util import printable
from engine.weightfiles.safe_pickle import loads

PIXELS = 784  # 28 x 28
_PARTS = {3: ("training", "validation", "test"), 2: ("training", "test")}
_RECONSTRUCT = (b"cnumpy.core.multiarray\n_reconstruct\n", b"cnumpy._core.multiarray\n_reconstruct\n")


def looks_like_nielsen_dataset(data: bytes) -> bool:
    """Cheap: a pickle (protocol 2, as cPickle wrote it) that begins with a numpy array, as a tuple of arrays does.

    A pickled tuple of weight arrays begins the same way; :func:`read_nielsen_dataset` decides.
    """
    return data[:2] == b"\x80\x02" and data[2:2 + len(_RECONSTRUCT[0])] in _RECONSTRUCT


def _describe(value) -> str:
    if isinstance(value, dict):
        keys = ", ".join(printable(repr(k), 40) for k in list(value)[:5])
        return f"a dict (keys {keys}{', …' if len(value) > 5 else ''})"
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)} items"
    return f"a {printable(type(value).__name__, 60)}"


def _images(arr, part: str, where: str) -> np.ndarray:
    """(N, 784) float32 in [0, 1], C-contiguous; or DatasetError naming the part."""
    if not isinstance(arr, np.ndarray):
        raise DatasetError(f"{where}: the {part} images are {_describe(arr)}, not an array")
    if arr.ndim == 3 and arr.shape[1:] == (28, 28):
        arr = arr.reshape(len(arr), PIXELS)
    elif arr.ndim != 2 or arr.shape[1] != PIXELS:
        raise DatasetError(f"{where}: the {part} images have shape {arr.shape}, not (N, 784) or (N, 28, 28)")
    if len(arr) == 0:
        raise DatasetError(f"{where}: the {part} part holds no images")
    if arr.dtype == np.uint8:  # 0-255 bytes: scaled exactly as DigitLab's IDX reader scales MNIST's own files
        return pixels_to_float(arr)
    if arr.dtype.kind != "f":
        raise DatasetError(f"{where}: the {part} images hold {arr.dtype} values; expected floats in [0, 1] "
                           "(or uint8 0–255)")
    lo, hi = float(arr.min()), float(arr.max())  # NaN propagates through min/max: no full-size temporary
    if math.isnan(lo) or math.isnan(hi):
        raise DatasetError(f"{where}: the {part} images hold {int(np.count_nonzero(np.isnan(arr))):,} NaN values")
    if lo < 0 or hi > 1:
        raise DatasetError(f"{where}: the {part} images hold {lo if lo < 0 else hi:g}, outside the pixel range "
                           "[0, 1]")
    return np.ascontiguousarray(arr, dtype=np.float32)


def _labels(arr, part: str, where: str) -> np.ndarray:
    """(N,) int64 digits 0-9 (one-hot (N, 10) rows become their index); or DatasetError naming the part."""
    if not isinstance(arr, np.ndarray):
        raise DatasetError(f"{where}: the {part} labels are {_describe(arr)}, not an array")
    if arr.ndim == 2 and arr.shape[1] == 10 and arr.dtype.kind in "biuf":
        # one-hot: exactly one 1 per row, zeros elsewhere (NaN fails both tests)
        if not (np.isin(arr, (0, 1)).all() and (arr.sum(axis=1) == 1).all()):
            raise DatasetError(f"{where}: the {part} labels have shape {arr.shape} but are not one-hot (a single "
                               "1 in each row, zeros elsewhere)")
        return arr.argmax(axis=1).astype(np.int64)
    if arr.ndim != 1:
        raise DatasetError(f"{where}: the {part} labels have shape {arr.shape}, not (N,) digits or (N, 10) one-hot")
    if arr.dtype.kind not in "iu":
        raise DatasetError(f"{where}: the {part} labels hold {arr.dtype} values, not integer digits 0–9")
    if len(arr):
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi > 9:
            raise DatasetError(f"{where}: the {part} labels hold {lo if lo < 0 else hi}, not a digit 0–9")
    return arr.astype(np.int64)


def _split(obj, where: str) -> list[tuple[str, object, object]]:
    layout = "expected Nielsen's (training, validation, test) tuple of (images, labels) pairs"
    if not isinstance(obj, (tuple, list)):
        raise DatasetError(f"{where}: the pickle holds {_describe(obj)}; {layout}")
    if len(obj) not in _PARTS:
        raise DatasetError(f"{where}: the pickle holds {_describe(obj)}, not 3 (or 2) parts; {layout}")
    parts = []
    for part, pair in zip(_PARTS[len(obj)], obj):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise DatasetError(f"{where}: the {part} part is {_describe(pair)}, not an (images, labels) pair")
        parts.append((part, pair[0], pair[1]))
    return parts


def read_nielsen_dataset(data: bytes, where: str, name: str = "nielsen-mnist") -> Dataset:
    """The dataset in a decompressed ``mnist.pkl.gz``: training + validation to train on, test to test on.

    Every problem is a one-line :class:`DatasetError` naming ``where`` and the part.
    """
    try:
        obj = loads(data, where)
    except WeightFileError as exc:  # already "<where>: what is wrong"
        raise DatasetError(str(exc)) from None
    checked = []
    for part, images, labels in _split(obj, where):
        x, t = _images(images, part, where), _labels(labels, part, where)
        if len(x) != len(t):
            raise DatasetError(f"{where}: the {part} part has {len(x):,} images but {len(t):,} labels")
        checked.append((x, t))
    (x_test, t_test), counts = checked[-1], [len(x) for x, _ in checked]
    if len(checked) == 3:
        x_train = np.concatenate([checked[0][0], checked[1][0]])  # C-contiguous float32, a fresh array
        t_train = np.concatenate([checked[0][1], checked[1][1]])
        source = (f"{where} (Nielsen's mnist.pkl.gz: {counts[0]:,} training + {counts[1]:,} validation used for "
                  f"training, {counts[2]:,} test)")
    else:
        x_train, t_train = checked[0]
        source = f"{where} (a Nielsen-style pickle: {counts[0]:,} training, {counts[1]:,} test)"
    return Dataset(name, x_train, t_train, x_test, t_test, source=source)
