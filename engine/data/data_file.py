"""A dataset from one file: Nielsen's ``mnist.pkl.gz`` ("Neural Networks and Deep Learning"), read without running it.

The file is read whole (a regular file of at most ``MAX_DATA_FILE_BYTES``), unwrapped if it is gzip-,
bz2- or xz-compressed (told by its first bytes, with a bound on what it may inflate to), and unpickled
by the weight files' restricted unpickler, which never imports or calls what a file names
(:mod:`engine.data.nielsen_data` checks what comes out).
"""
from __future__ import annotations

import os
from pathlib import Path

from engine.data.dataset import Dataset
from engine.data.nielsen_data import read_nielsen_dataset
from engine.errors import DatasetError, WeightFileError
from engine.util import open_regular_file, printable, read_limited
from engine.weightfiles.compressed import unwrap

MAX_DATA_FILE_BYTES = 1 << 30  # Nielsen's file is 17 MB compressed (220 MB of arrays); a GiB is far beyond any MNIST


def read_data_bytes(path: str | os.PathLike) -> bytes:
    """A data file's bytes, decompressed: a regular file (never a FIFO or a device) within the size limits."""
    where = printable(path)
    try:
        with open_regular_file(path, DatasetError) as f:
            data = read_limited(f, MAX_DATA_FILE_BYTES)
    except OSError as exc:
        raise DatasetError(f"{where}: cannot read it: {exc.strerror or exc}") from None
    if len(data) > MAX_DATA_FILE_BYTES:
        raise DatasetError(f"{where}: larger than the {MAX_DATA_FILE_BYTES:,}-byte limit for a data file")
    if not data:
        raise DatasetError(f"{where}: the file is empty")
    try:
        return unwrap(data, where)[0]
    except WeightFileError as exc:  # the decompressor speaks of weight files' limits; here it is a dataset
        raise DatasetError(str(exc)) from None


def load_data_file(path: str | os.PathLike) -> Dataset:
    """The dataset in one file (``--data-file``, File ▸ Open dataset): Nielsen's mnist.pkl[.gz]."""
    data = read_data_bytes(path)
    return read_nielsen_dataset(data, printable(path), name=Path(path).name)
