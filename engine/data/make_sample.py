"""Build the offline MNIST sample shipped in ``engine/data/sample/`` from a copy of the full MNIST.

    python -m engine.data.make_sample --from ../shared/datasets/mnist-full

The sample is 10,000 of MNIST's 60,000 training digits and the whole official 10,000-digit test set, as
gzipped IDX files with MNIST's own names (so ``--data-dir engine/data/sample`` reads them too).

The selection is fixed and needs no random-number generator whose stream could change between NumPy
versions: per class, the 1,000 training digits whose SHA-256 of ``"digitlab-sample:<index>"`` (the digit's
0-based index in MNIST's training file) is smallest, kept in MNIST's order. The test set is copied whole.

Each file is written as gzip with a fixed header (no file name, mtime 0) around zlib's level-9 deflate, so
the same MNIST (however it was compressed) gives the same bytes: ``tests/engine/data/test_sample.py``
rebuilds the files and compares them byte for byte.
"""
from __future__ import annotations

import argparse
import hashlib
import struct
import sys
import zlib
from pathlib import Path

import numpy as np

from engine.data.catalog import SAMPLE_DIR
from engine.data.idx import read_images, read_labels
from engine.errors import DatasetError
from engine.util import atomic_write, printable

TRAIN_PER_CLASS = 1_000
SELECTION_KEY = "digitlab-sample:{index}"
FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
# SHA-256 of the uncompressed IDX files of the original MNIST (header and data; however they are compressed):
# a source whose contents differ (another dataset, a damaged copy) is refused instead of giving another sample.
MNIST_CONTENT_SHA256 = {
    "train-images": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "test-images": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "test-labels": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
_SOURCE_NAMES = {
    "train-images": ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    "train-labels": ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    "test-images": ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    "test-labels": ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}


def select_training_digits(labels: np.ndarray, per_class: int = TRAIN_PER_CLASS) -> np.ndarray:
    """Indices (ascending) of ``per_class`` digits of each class: those with the smallest SELECTION_KEY hash."""
    keys = [hashlib.sha256(SELECTION_KEY.format(index=i).encode()).digest() for i in range(len(labels))]
    chosen = []
    for cls in np.unique(labels):
        rows = np.flatnonzero(labels == cls)
        if len(rows) < per_class:
            raise DatasetError(f"class {int(cls)} has only {len(rows)} training digits; the sample takes {per_class}")
        chosen.extend(sorted(rows.tolist(), key=lambda i: keys[i])[:per_class])
    return np.array(sorted(chosen), dtype=np.int64)


def idx_bytes(array: np.ndarray) -> bytes:
    """An unsigned-byte array as IDX: magic 0x0000 08 <ndim>, one big-endian uint32 per dimension, the data."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    return bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes() + array.tobytes()


def gzip_bytes(data: bytes) -> bytes:
    """gzip with a fixed header (no name, mtime 0, OS unknown) around level-9 deflate: the same bytes every time."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS, 9, zlib.Z_DEFAULT_STRATEGY)
    body = deflate.compress(data) + deflate.flush()
    header = b"\x1f\x8b\x08\x00" + struct.pack("<I", 0) + b"\x02\xff"  # deflate, no flags, mtime 0, best, unknown OS
    return header + body + struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)


def _find(folder: Path, role: str) -> Path:
    for stem in _SOURCE_NAMES[role]:
        for name in (stem + ".gz", stem):
            if (folder / name).is_file():
                return folder / name
    raise DatasetError(f"{printable(folder)}: no {_SOURCE_NAMES[role][0]}[.gz]; give the folder holding the full "
                       "MNIST (all four IDX files)")


def read_source(folder: str | Path) -> dict[str, np.ndarray]:
    """The four MNIST arrays from ``folder``, checked to be the original MNIST (MNIST_CONTENT_SHA256)."""
    folder = Path(folder).expanduser()
    arrays = {}
    for role in MNIST_CONTENT_SHA256:
        path = _find(folder, role)
        array = read_images(path) if role.endswith("images") else read_labels(path)
        digest = hashlib.sha256(idx_bytes(array)).hexdigest()
        if digest != MNIST_CONTENT_SHA256[role]:
            raise DatasetError(f"{printable(path)}: not the original MNIST {role} (content SHA-256 {digest[:16]}…, "
                               f"expected {MNIST_CONTENT_SHA256[role][:16]}…)")
        arrays[role] = array
    return arrays


def build(source: str | Path) -> dict[str, bytes]:
    """The sample's files (name -> gzipped IDX bytes) from the full MNIST in ``source``."""
    arrays = read_source(source)
    chosen = select_training_digits(arrays["train-labels"])
    contents = (arrays["train-images"][chosen], arrays["train-labels"][chosen],
                arrays["test-images"], arrays["test-labels"])
    return {name: gzip_bytes(idx_bytes(array)) for name, array in zip(FILES, contents)}


def write(files: dict[str, bytes], out: str | Path = SAMPLE_DIR) -> list[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in files.items():
        atomic_write(out / name, data, what="sample file")
        written.append(out / name)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.data.make_sample",
                                     description="Rebuild DigitLab's offline MNIST sample from the full MNIST.")
    parser.add_argument("--from", dest="source", required=True, metavar="DIR",
                        help="a folder holding MNIST's four IDX files (train-*, t10k-*; .gz or not)")
    parser.add_argument("--out", default=str(SAMPLE_DIR), metavar="DIR", help=f"where to write (default {SAMPLE_DIR})")
    args = parser.parse_args(argv)
    try:
        paths = write(build(args.source), args.out)
    except (DatasetError, OSError) as exc:
        sys.stderr.write(f"make_sample: error: {exc}\n")
        return 1
    total = sum(p.stat().st_size for p in paths)
    sys.stdout.write(f"wrote {len(paths)} files, {total / 1e6:.2f} MB, to {args.out}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
