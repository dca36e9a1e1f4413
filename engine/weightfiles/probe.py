"""Guessing what a weight file does not say (its activation, its pixel scale) by trying each candidate.

A book file does not say which activation it was trained with, nor whether it expects pixels in
[0, 1] or [0, 255]. Guessing wrong gives a model that answers the same digit for every image, so
each candidate is tried on a held-out batch of labelled digits and the most accurate one wins.

Accuracy cannot always tell: a ReLU network without much bias reads [0, 255] pixels as 255× larger
scores, the same answers with saturated, 100 % probabilities (a network DigitLab trained on [0, 1]
scored 92.4 % and 92.6 % on the two scales), and a sigmoid network reads them as black-and-white
strokes, often as well. So candidates the probe cannot tell apart from the best count as tied and the
book's conventions decide among them: pixels in [0, 1] first, then the activations in the order given
(sigmoid before relu). "Cannot tell apart" is a paired (McNemar) test on the probe digits: of the digits
exactly one of the two readings gets right, the best must win more than 2 standard deviations beyond an
even split (about 95 % confidence), and by more than ``TIE_MARGIN_DIGITS`` digits.

It costs a few percent of evaluating 10,000 images with the same network (``bench/bench_cnn.py``):
the probe digits are read once per process, candidates run in float32 (they are only compared by
their answers), and candidates that share a first affine layer (an MLP read as sigmoid or relu, on
[0, 1] or [0, 255] pixels) share its product, the bulk of an MLP's arithmetic.
"""
from __future__ import annotations

import threading

import numpy as np

from engine.data.catalog import load_dataset
from engine.errors import DatasetError
from engine.nn.blas import one_thread
from engine.nn.layers import Affine
from engine.nn.network import Network
from engine.weightfiles.architectures import INPUT_PIXELS, NUM_CLASSES

PROBE_SIZE = 500
TIE_SIGMAS = 2.0  # the best beats a candidate only by more than this many standard deviations (see the module doc) …
TIE_MARGIN_DIGITS = 3  # … and by more than this many probe digits
BOOK_SCALE = 1.0  # the book's load_mnist(normalize=True): pixels in [0, 1]
LABEL_FREE_KEEP = 0.75  # without labels, a candidate this varied (relative to the most varied) is not collapsed

_probe_lock = threading.Lock()
_probe_digits: list = []  # the default probe, read once per process (decompressing the sample took 0.1 s a time)


def _default_probe() -> tuple[tuple[np.ndarray, np.ndarray] | None, str]:
    """Up to 500 labelled digits from the offline sample's test split, spread over all classes."""
    with _probe_lock:
        if _probe_digits:
            return _probe_digits[0]
        try:
            ds = load_dataset("mnist-sample")
        except (DatasetError, OSError):  # no sample installed, an unwritable cache: the label-free heuristic instead
            return None, ""
        step = max(1, len(ds.x_test) // PROBE_SIZE)
        x, t = ds.x_test[::step][:PROBE_SIZE].copy(), ds.t_test[::step][:PROBE_SIZE].copy()
        x.flags.writeable = t.flags.writeable = False  # shared by every later probe
        _probe_digits.append(((x, t), "mnist-sample test digits"))
        return _probe_digits[0]


def scribbles(n: int = 200, seed: int = 0) -> np.ndarray:
    """Digit-like synthetic images: a few thick random strokes on a dark 28×28 field, pixels in [0, 1]."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 28, 28), dtype=np.float32)
    yy, xx = np.mgrid[0:28, 0:28]
    for img in images:
        points = rng.uniform(6, 22, size=(rng.integers(3, 6), 2))
        for (y0, x0), (y1, x1) in zip(points[:-1], points[1:]):
            for s in np.linspace(0.0, 1.0, 12):
                y, x = y0 + s * (y1 - y0), x0 + s * (x1 - x0)
                img[:] = np.maximum(img, np.clip(1.6 - np.hypot(yy - y, xx - x), 0.0, 1.0))
    return images.reshape(n, INPUT_PIXELS)


def _float32(network):
    """The network in float32: the probe only compares answers, and a book file's float64 costs twice the time."""
    if isinstance(network, Network) and network.dtype == np.float64:
        return network.copy(np.float32)
    return network


def _shared_product(networks: list, x: np.ndarray) -> np.ndarray | None:
    """``x @ W`` of a first affine layer every candidate has (they differ in activation and pixel scale), else None.

    Then each candidate only adds its scale and bias: (s·x) @ W + b = s·(x @ W) + b. For an MLP that
    layer is nearly all the arithmetic, done once instead of once per candidate.
    """
    firsts = [net.layers[0] if isinstance(net, Network) and net.layers else None for net in networks]
    if len(firsts) < 2 or not all(isinstance(layer, Affine) for layer in firsts):
        return None
    W, b = firsts[0].params["W"], firsts[0].params["b"]
    if not all(np.array_equal(layer.params["W"], W) and np.array_equal(layer.params["b"], b) for layer in firsts[1:]):
        return None
    # in float32, like the other candidates' answers: the product decides nothing finer than their argmax
    return x.reshape(len(x), -1).astype(np.float32, copy=False) @ W.astype(np.float32, copy=False)


def _predictions(network: Network, x: np.ndarray, shared: np.ndarray | None = None) -> np.ndarray | None:
    with np.errstate(all="ignore"):  # a wrong candidate may overflow; that only makes it lose
        if shared is None:
            scores = network.scores(x)
        else:  # the first layer from the shared product, then the rest of the network
            scores = shared * np.asarray(network.input_scale, shared.dtype) + network.layers[0].params["b"]
            for layer in network.layers[1:]:
                scores = layer.forward(scores)
    if not np.all(np.isfinite(scores)):
        return None
    return scores.argmax(axis=1)


def _all_predictions(candidates: list, make, x: np.ndarray) -> list[np.ndarray | None]:
    """Each candidate's answers for the images ``x``, computed as cheaply as the candidates allow."""
    networks = [make(*cand) for cand in candidates]
    with one_thread():  # 500 images make small matrix products: extra BLAS threads only wait for each other
        shared = _shared_product(networks, x)
        if shared is None:  # each candidate runs whole: in float32 (after the shared product, the rest is tiny)
            networks = [_float32(net) for net in networks]
        return [_predictions(net, x, shared) for net in networks]


def _diversity(pred: np.ndarray | None) -> float:
    """Entropy (bits) of the predicted-class histogram: 0 when every input gets the same answer."""
    if pred is None:
        return -1.0
    p = np.bincount(pred, minlength=NUM_CLASSES) / len(pred)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def _candidate_name(activation: str | None, scale: float) -> str:
    pixels = "[0,255]" if scale == 255.0 else "[0,1]" if scale == 1.0 else f"×{scale:g}"
    return f"{activation}, pixels {pixels}" if activation else f"pixels {pixels}"


def _indistinguishable(best: np.ndarray, other: np.ndarray) -> bool:
    """Whether the probe cannot say ``best`` (per-digit right/wrong) reads the digits better than ``other``.

    McNemar's test: only the digits one reading gets right and the other wrong count; if both were
    equally good, each would win half of them, with a standard deviation of sqrt(n)/2.
    """
    wins, losses = int(np.sum(best & ~other)), int(np.sum(other & ~best))
    lead = wins - losses
    return lead <= max(TIE_MARGIN_DIGITS, TIE_SIGMAS * np.sqrt(wins + losses))


def choose(candidates: list[tuple[str | None, float]], make, probe, notes: list[str]):
    """The candidate (activation, scale) that classifies the probe best, with the score of each."""
    if probe is None:
        probe, what = _default_probe()
    else:
        what = "the given probe digits"
    scores: dict[str, float] = {}
    if probe is not None:
        x, t = probe
        x = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
        t = np.asarray(t)
        t = t.argmax(axis=1) if t.ndim == 2 else t.astype(np.int64)
        right = []
        for cand, pred in zip(candidates, _all_predictions(candidates, make, x)):
            right.append(np.zeros(len(t), dtype=bool) if pred is None else pred == t)
            scores[_candidate_name(*cand)] = float(np.mean(right[-1]))
        method = f"accuracy on {len(x)} {what}"
    else:
        x = scribbles()
        for cand, pred in zip(candidates, _all_predictions(candidates, make, x)):
            scores[_candidate_name(*cand)] = _diversity(pred)
        method = ("no labelled digits available (install the mnist-sample or pass probe=): a wrong input scale or "
                  "activation tends to collapse the answers to one class, so the first candidate (sigmoid before relu, "
                  "[0,1] before [0,255], the book's defaults) whose answers over synthetic scribbles vary at least "
                  f"{LABEL_FREE_KEEP:.0%} as much as the most varied one's won; a weak heuristic, scores are entropies")
    ranked = [scores[_candidate_name(*c)] for c in candidates]
    tied: list[int] = []
    if probe is not None:
        top = max(range(len(candidates)), key=lambda i: (ranked[i], -i))
        tied = [i for i in range(len(candidates)) if _indistinguishable(right[top], right[i])]
        # among ties the book's conventions win: [0, 1] pixels first, then the activations' given order
        best = min(tied, key=lambda i: (candidates[i][1] != BOOK_SCALE, i))
    else:  # the first candidate, in order of preference, that is not close to answering one class for everything
        best = next(i for i, v in enumerate(ranked) if v >= LABEL_FREE_KEEP * max(ranked))
    values = sorted(scores.values(), reverse=True)
    chosen = candidates[best]
    detail = ", ".join(f"{k} {v:.1%}" if probe is not None else f"{k} {v:.2f} bits" for k, v in scores.items())
    notes.append(f"chose {_candidate_name(*chosen)} by {method}: {detail}")
    if len(tied) > 1:
        notes.append(f"{', '.join(_candidate_name(*candidates[i]) for i in tied)} scored too close to tell apart "
                     f"on {len(right[top])} digits (a paired test at about 95% confidence): chose the "
                     "book's convention (pixels in [0, 1], sigmoid before relu); pass activation=/input_scale= "
                     "if you know better")
    elif len(values) > 1 and values[0] - values[1] < (0.01 if probe is not None else 0.05):
        notes.append("the probe could barely tell the best two candidates apart; pass activation=/input_scale= "
                     "if you know better")
    if probe is not None and values[0] < 0.5:
        notes.append(f"even the best candidate gets only {values[0]:.1%} right: these may not be MNIST weights")
    return chosen, scores
