"""Build ``engine/data/digit_reference.npz``, what the "not a digit" check compares drawings with.

    python -m engine.data.make_digit_reference --from ../shared/datasets/mnist-full

Reads MNIST's 60,000 training digits (never the test set: that is what the check is measured on)
and frames each one as the canvas frames a drawing (:func:`engine.data.preprocess.mnist_preprocess`).
Every 6th digit is held out: the others give the shape prototypes (k-means per class on the
shape descriptor's principal components), the held-out 10,000 the quantiles of every statistic
and the two thresholds, so no digit is compared with itself. Deterministic: the same digits give
the same reference (up to the floating-point rounding of the machine's BLAS). About 30 s.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from engine.data import digit_features as feat
from engine.data.digit_check import (CALIBRATION_EVERY, COUNT_TABLE, COUNTED, DOUBT_SHARE, FEATURES, FLAG_SHARE,
                                     LEVELS, PROTOTYPES_PER_CLASS, REFERENCE_PATH, REFERENCE_VERSION, SHAPE_DIMS, TAIL,
                                     DigitCheckError, DigitReference, save_reference)
from engine.data.idx import read_images, read_labels
from engine.data.preprocess import mnist_preprocess
from engine.errors import DatasetError
from engine.util import printable

TRAIN_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")


def training_digits(folder: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 28, 28) float32 in [0, 1], labels (N,)) of the training IDX files in ``folder``."""
    folder = Path(folder).expanduser()
    paths = []
    for stem in TRAIN_FILES:
        found = [folder / name for name in (stem + ".gz", stem) if (folder / name).is_file()]
        if not found:
            raise DatasetError(f"{printable(folder)}: no {stem}[.gz]; give the folder holding MNIST's training files")
        paths.append(found[0])
    images = read_images(paths[0]).astype(np.float32) / 255.0
    labels = read_labels(paths[1])
    if len(images) != len(labels):
        raise DatasetError(f"{printable(folder)}: {len(images):,} training images but {len(labels):,} labels")
    return images, labels


def build_reference(images: np.ndarray, labels: np.ndarray, source: str = "MNIST training digits") -> DigitReference:
    """A reference from real, labelled training digits already framed like the network's input (values in [0, 1])."""
    x = feat.as_images(images)
    y = np.asarray(labels).reshape(-1)
    if len(x) != len(y) or len(x) < 20 * CALIBRATION_EVERY:
        raise DigitCheckError(f"need at least {20 * CALIBRATION_EVERY} labelled digits, got {len(x)} images "
                              f"and {len(y)} labels")
    held = np.arange(len(x)) % CALIBRATION_EVERY == CALIBRATION_EVERY - 1
    described = feat.shape_descriptor(x[~held])
    mean = described.mean(axis=0)
    centred = (described - mean).astype(np.float64)
    eigenvectors = np.linalg.eigh(centred.T @ centred)[1][:, ::-1][:, :SHAPE_DIMS].T  # largest variance first
    strongest = np.abs(eigenvectors).argmax(axis=1)
    basis = eigenvectors * np.sign(eigenvectors[np.arange(SHAPE_DIMS), strongest])[:, None]  # a fixed sign
    z = (centred @ basis.T).astype(np.float32)
    prototypes = np.concatenate([kmeans(z[y[~held] == c], PROTOTYPES_PER_CLASS) for c in np.unique(y)])
    scale = float(np.abs(prototypes).max()) / 127.0
    arrays = {"version": np.array(REFERENCE_VERSION), "quantiles": np.zeros((len(FEATURES), LEVELS.size)),
              "tails": np.ones(len(FEATURES)), "counts": np.ones((len(COUNTED), COUNT_TABLE)),
              "shape_mean": mean, "shape_basis": basis.astype(np.float32),
              "prototypes": np.rint(prototypes / scale).astype(np.int8), "prototype_scale": np.array(scale),
              "flag_score": np.array(1.0), "doubt_score": np.array(1.0), "source": np.array(source)}
    values = DigitReference(arrays).measure(x[held])  # the held-out digits, with the stored (int8) prototypes
    for j, name in enumerate(FEATURES):
        v = values[:, j]
        arrays["quantiles"][j] = np.quantile(v, LEVELS)
        top = np.quantile(v, 1.0 - TAIL)
        arrays["tails"][j] = max(float(np.mean(v[v > top] - top)) if np.any(v > top) else 0.0, 1e-3)
    for i, name in enumerate(COUNTED):
        v = values[:, FEATURES.index(name)]
        # P(X >= k), counting one imaginary digit beyond the table so that no count is "impossible"
        arrays["counts"][i] = [(np.count_nonzero(v >= k) + 1) / (v.size + 1) for k in range(COUNT_TABLE)]
    strongest_scores = DigitReference(arrays).scores(values).max(axis=1)
    arrays["flag_score"] = np.array(np.quantile(strongest_scores, 1.0 - FLAG_SHARE))
    arrays["doubt_score"] = np.array(np.quantile(strongest_scores, 1.0 - DOUBT_SHARE))
    return DigitReference(arrays)


def kmeans(z: np.ndarray, k: int, rounds: int = 20) -> np.ndarray:
    """k centroids of the rows of z, started from evenly spaced rows (deterministic)."""
    k = min(k, len(z))
    centres = z[np.linspace(0, len(z) - 1, k).astype(np.int64)].copy()
    z_sq = (z ** 2).sum(axis=1)
    for _ in range(rounds):
        nearest = np.argmin(z_sq[:, None] + (centres ** 2).sum(axis=1)[None, :] - 2.0 * (z @ centres.T), axis=1)
        sums = np.zeros_like(centres)
        np.add.at(sums, nearest, z)
        counts = np.bincount(nearest, minlength=k)
        filled = counts > 0
        centres[filled] = sums[filled] / counts[filled, None]
    return centres


def build_from(folder: str | Path) -> DigitReference:
    images, labels = training_digits(folder)
    framed = np.stack([mnist_preprocess(img) for img in images])
    return build_reference(framed, labels, source=f"{len(images):,} MNIST training digits")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.data.make_digit_reference",
                                     description="Rebuild the reference of the 'not a digit' check from MNIST's "
                                                 "training digits.")
    parser.add_argument("--from", dest="source", required=True, metavar="DIR",
                        help="a folder holding train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz]")
    parser.add_argument("--out", default=str(REFERENCE_PATH), metavar="FILE",
                        help=f"where to write (default {REFERENCE_PATH})")
    args = parser.parse_args(argv)
    try:
        reference = build_from(args.source)
        path = save_reference(reference, args.out)
    except (DatasetError, OSError) as exc:
        sys.stderr.write(f"make_digit_reference: error: {exc}\n")
        return 1
    sys.stdout.write(f"wrote {path} ({path.stat().st_size / 1e3:.0f} kB) from {reference.source}; flags above "
                     f"score {reference.flag_score:.2f}, doubts above {reference.doubt_score:.2f}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
