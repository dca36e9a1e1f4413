"""Is a drawing a digit at all? Compare it with real MNIST training digits before believing a prediction.

A network answers "4, 93 %" for anything, a scribble included. This check looks at the drawing
itself, the network's 28×28 input (after :func:`engine.data.preprocess.mnist_preprocess`):

* its stroke statistics (:mod:`engine.data.digit_features`): stroke width (a filled blob is
  "thick"), separate pieces, closed loops;
* its shape: the mean distance to the 3 nearest of 4,000 prototypes of the MNIST training digits,
  in a 64-number summary of where its strokes run in which direction.

Each number becomes a score, -log10 of the share of real digits at least as unusual (3 means
"1 in 1,000"), read off a reference built from MNIST's training digits only (shipped as
``digit_reference.npz``; ``python -m engine.data.make_digit_reference`` rebuilds it). A
drawing is not a digit when its strongest score reaches ``flag_score`` (reached by 0.5 % of held-out
training digits), or reaches ``doubt_score`` (1 %) while the network's top probability is below
``UNSURE``: the network is torn as well. ``tests/engine/data/test_digit_check.py`` measures it on the
10,000 MNIST test digits and on generated scribbles, shapes and letters.
"""
from __future__ import annotations

import functools
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.data import digit_features as feat
from engine.errors import DatasetError

REFERENCE_PATH = Path(__file__).with_name("digit_reference.npz")
REFERENCE_VERSION = 1
FLAG_SHARE = 0.005  # share of held-out real digits the drawing alone gets flagged for
DOUBT_SHARE = 0.01  # share of held-out real digits flagged when the network is torn too
UNSURE = 0.5  # the network's top probability below this: it is torn between classes
SHAPE_DIMS = 64  # the shape descriptor projected on its first principal components
PROTOTYPES_PER_CLASS = 400
NEIGHBOURS = 3
CALIBRATION_EVERY = 6  # every 6th training digit is held out to calibrate the scores (10,000 of 60,000)
LEVELS = np.linspace(0.0, 1.0, 401)  # quantile levels stored per statistic
TAIL = 0.01  # beyond the 99 % quantile the tail is exponential (fitted to the outer 1 %)
MAX_SCORE = 12.0
FEATURES = feat.STATS + ("shape",)
COUNTED = ("loops", "pieces")  # whole numbers: P(X >= x) read from counts
COUNT_TABLE = 16  # P(X >= k) stored for k = 0..15, extrapolated beyond
# measured by tests/engine/data/test_digit_check.py with the shipped reference (it asserts these figures)
MEASURED_REAL_FLAGGED = 0.0081  # of the 10,000 MNIST test digits
MEASURED_NON_DIGITS_FLAGGED = 0.903  # of 600 drawn scribbles, fills, blobs, shapes, letters and random strokes
DRAWN_SMALL = "drawn small, so its strokes are too thick: draw it bigger"


class DigitCheckError(DatasetError):
    """The digit reference is missing, damaged or does not fit this version."""


@dataclass(frozen=True)
class Finding:
    """One unusual thing about a drawing: a statistic, its value and how rare that is among real digits."""

    feature: str  # one of FEATURES
    value: float
    score: float  # -log10 of the share of real training digits at least this unusual

    @property
    def text(self) -> str:
        """What is unusual, in a few words: '3 separate pieces'."""
        if self.feature == "stroke width":
            return "strokes too thick (filled in)"
        if self.feature == "pieces":
            return f"{int(self.value)} separate pieces"
        if self.feature == "loops":
            return f"{int(self.value)} closed loops"
        return "shaped unlike any MNIST training digit"

    @property
    def rarity(self) -> str:
        """How rare among real digits: 'about 1 in 2,300 MNIST training digits'."""
        odds = 10.0 ** self.score
        if odds >= 1e6:
            return "fewer than 1 in a million MNIST training digits"
        return f"about 1 in {odds:,.0f} MNIST training digits"


@dataclass(frozen=True)
class DigitCheck:
    """The verdict on one drawing. ``findings``: all scores of at least ``doubt_score``, strongest first."""

    looks_like_digit: bool
    findings: tuple[Finding, ...]
    score: float  # the strongest score
    network_unsure: bool  # the network's top probability is below UNSURE (False when not given)

    @property
    def reason(self) -> str:
        """'' for a digit, else why not: '3 separate pieces; shaped unlike any MNIST training digit'."""
        return self.explain()

    def explain(self, drawn_small: bool = False) -> str:
        """``reason``; ``drawn_small``: the drawing was small on its canvas, so thick strokes are the pen's doing."""
        if self.looks_like_digit:
            return ""
        texts = [DRAWN_SMALL if drawn_small and f.feature == "stroke width" else f.text for f in self.findings[:2]]
        return "; ".join(texts) + ("; and the network is torn" if self.network_unsure else "")


class DigitReference:
    """What real digits look like: per-statistic quantiles, shape prototypes and the two thresholds."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        """From the arrays of ``arrays()`` (as saved in the .npz): checked, or DigitCheckError."""
        try:
            if int(arrays["version"]) != REFERENCE_VERSION:
                raise DigitCheckError(f"digit reference version {int(arrays['version'])}, expected {REFERENCE_VERSION}")
            self.quantiles = np.array(arrays["quantiles"], dtype=np.float64)  # (FEATURES, LEVELS)
            self.tails = np.array(arrays["tails"], dtype=np.float64)  # (FEATURES,): scale of the exponential tail
            self.counts = np.array(arrays["counts"], dtype=np.float64)  # (COUNTED, COUNT_TABLE): P(X >= k)
            self.mean = np.array(arrays["shape_mean"], dtype=np.float32)  # (DESCRIPTOR_SIZE,)
            self.basis = np.array(arrays["shape_basis"], dtype=np.float32)  # (SHAPE_DIMS, DESCRIPTOR_SIZE)
            self.prototype_codes = np.array(arrays["prototypes"], dtype=np.int8)  # (prototypes, SHAPE_DIMS)
            self.prototype_scale = float(arrays["prototype_scale"])
            self.flag_score = float(arrays["flag_score"])
            self.doubt_score = float(arrays["doubt_score"])
            self.source = str(arrays["source"])
        except KeyError as exc:
            raise DigitCheckError(f"the digit reference lacks {exc}") from None
        except (TypeError, ValueError) as exc:
            raise DigitCheckError(f"the digit reference holds a wrong value: {exc}") from None
        if (self.quantiles.shape != (len(FEATURES), LEVELS.size) or self.tails.shape != (len(FEATURES),)
                or self.counts.shape != (len(COUNTED), COUNT_TABLE) or self.mean.shape != (feat.DESCRIPTOR_SIZE,)
                or self.basis.shape != (SHAPE_DIMS, feat.DESCRIPTOR_SIZE)
                or self.prototype_codes.ndim != 2 or self.prototype_codes.shape[1] != SHAPE_DIMS
                or not all(np.all(np.isfinite(a)) for a in (self.quantiles, self.tails, self.counts, self.mean,
                                                            self.basis))
                or np.any(self.tails <= 0) or np.any(self.counts <= 0) or not self.prototype_scale > 0
                or not 0 < self.doubt_score <= self.flag_score <= MAX_SCORE):
            raise DigitCheckError("the digit reference's arrays do not fit together")
        self.prototypes = self.prototype_codes.astype(np.float32) * np.float32(self.prototype_scale)
        self._proto_sq = (self.prototypes ** 2).sum(axis=1)
        self._last: tuple = (None, None, None)  # (image bytes, values, scores) of the last drawing checked

    def arrays(self) -> dict[str, np.ndarray]:
        """Everything the reference is, as named arrays (what ``save_reference`` writes)."""
        return {"version": np.array(REFERENCE_VERSION), "quantiles": self.quantiles, "tails": self.tails,
                "counts": self.counts, "shape_mean": self.mean, "shape_basis": self.basis,
                "prototypes": self.prototype_codes, "prototype_scale": np.array(self.prototype_scale),
                "flag_score": np.array(self.flag_score), "doubt_score": np.array(self.doubt_score),
                "source": np.array(self.source)}

    # ----- measuring -----
    def shape_distance(self, images: np.ndarray) -> np.ndarray:
        """Mean distance to the 3 nearest real-digit prototypes, one per image."""
        z = (feat.shape_descriptor(images) - self.mean) @ self.basis.T
        d2 = (z ** 2).sum(axis=1)[:, None] + self._proto_sq[None, :] - 2.0 * (z @ self.prototypes.T)
        nearest = np.partition(d2, NEIGHBOURS - 1, axis=1)[:, :NEIGHBOURS]
        return np.sqrt(np.maximum(nearest, 0.0)).mean(axis=1)

    def measure(self, images: np.ndarray) -> np.ndarray:
        """(N, len(FEATURES)) raw values: the stroke statistics and the shape distance."""
        x = feat.as_images(images)
        stats = np.array([feat.stroke_stats(img) for img in x]).reshape(len(x), len(feat.STATS))
        return np.column_stack([stats, self.shape_distance(x)])

    def scores(self, values: np.ndarray) -> np.ndarray:
        """Scores for measured values (N, features): -log10 of the share of real digits at least as unusual."""
        values = np.atleast_2d(values)
        out = np.zeros(values.shape)
        for j, name in enumerate(FEATURES):
            v = values[:, j]
            if name in COUNTED:
                table = self.counts[COUNTED.index(name)]
                k = np.clip(v.astype(np.int64), 0, table.size - 1)
                p = table[k] * np.power(table[-1] / max(table[-2], 1e-300), np.maximum(v - (table.size - 1), 0))
            else:
                p = _tail_share(v, self.quantiles[j], float(self.tails[j]))
            out[:, j] = np.clip(-np.log10(np.maximum(p, 1e-300)), 0.0, MAX_SCORE)
        return out

    def check(self, image: np.ndarray, probabilities: np.ndarray | None = None) -> DigitCheck:
        """The verdict on one 28×28 drawing (the network's input); ``probabilities``: the network's, if trusted."""
        image = np.asarray(image)
        key = (image.dtype.str, image.shape, image.tobytes())
        seen, values, scores = self._last
        if key != seen:  # while a network trains, the same drawing is checked again with new probabilities
            values = self.measure(image)[0]
            scores = self.scores(values)[0]
            self._last = (key, values, scores)
        return self.verdict(values, scores, probabilities)

    def verdict(self, values: np.ndarray, scores: np.ndarray, probabilities: np.ndarray | None = None) -> DigitCheck:
        """The verdict from one drawing's measured values and their scores."""
        unsure = False
        if probabilities is not None:
            p = np.asarray(probabilities, dtype=np.float64).reshape(-1)
            if p.size == 0 or not np.all(np.isfinite(p)):
                raise ValueError(f"probabilities must be finite numbers, got {p!r}")
            unsure = bool(p.max() < UNSURE)
        order = np.argsort(-scores, kind="stable")
        findings = tuple(Finding(FEATURES[j], float(values[j]), float(scores[j]))
                         for j in order if scores[j] >= self.doubt_score)
        top = float(scores.max())
        flagged = top >= self.flag_score or (top >= self.doubt_score and unsure)
        return DigitCheck(not flagged, findings, top, unsure)


def _tail_share(v: np.ndarray, q: np.ndarray, scale: float) -> np.ndarray:
    """Share of real digits with a value >= v: interpolated quantiles, an exponential tail beyond the 99 % one."""
    top = np.interp(1.0 - TAIL, LEVELS, q)
    beyond = TAIL * np.exp(-np.maximum(v - top, 0.0) / scale)
    return np.clip(np.where(v > top, beyond, 1.0 - np.interp(v, q, LEVELS)), 0.0, 1.0)


def save_reference(reference: DigitReference, path: str | Path = REFERENCE_PATH) -> Path:
    path = Path(path)
    np.savez_compressed(path, **reference.arrays())
    return path


def load_reference(path: str | Path = REFERENCE_PATH) -> DigitReference:
    """A saved reference; DigitCheckError when it is missing, damaged or of another version."""
    try:
        with open(path, "rb") as file, np.load(file, allow_pickle=False) as data:  # closed even when not a zip
            return DigitReference({k: data[k] for k in data.files})
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:  # what np.load raises for damaged files
        raise DigitCheckError(f"cannot read the digit reference {path}: {exc}") from None


@functools.lru_cache(maxsize=1)
def default_reference() -> DigitReference:
    """The reference shipped with DigitLab (built from MNIST's 60,000 training digits)."""
    return load_reference(REFERENCE_PATH)


def check_digit(image: np.ndarray, probabilities: np.ndarray | None = None,
                reference: DigitReference | None = None) -> DigitCheck:
    """Does this 28×28 drawing look like a digit? See the module docstring."""
    return (reference or default_reference()).check(image, probabilities)
