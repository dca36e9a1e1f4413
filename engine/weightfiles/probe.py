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

import math
import threading
from dataclasses import dataclass

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
OVERRIDE_HINT = "choose with --activation and --pixels (in Python activation=, input_scale=, input_shift=)"
SCREEN_ABOVE = 8  # more candidates than this are screened on a few digits first (an MLP's 8 share one product)
SCREEN_DIGITS = 100
MAX_NOTED = 4  # candidates named in a note: a CNN's layouts times four pixel conventions can make thirty
LABEL_FREE_KEEP = 0.75  # without labels, a candidate this varied (relative to the most varied) is not collapsed

# pixel conventions a file may expect, as (scale, shift) applied to pixels in [0, 1]: the book's [0, 1], raw
# [0, 255], and PyTorch's usual transforms.Normalize((0.1307,), (0.3081,)) (MNIST's mean and std) or ((0.5,), (0.5,))
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
PIXELS_01 = (1.0, 0.0)
PIXELS_255 = (255.0, 0.0)
PIXELS_MNIST_NORMALISED = (1.0 / MNIST_STD, -MNIST_MEAN / MNIST_STD)
PIXELS_PLUS_MINUS_1 = (2.0, -1.0)
BOOK_PIXELS = (PIXELS_01, PIXELS_255)
TORCH_PIXELS = (PIXELS_01, PIXELS_MNIST_NORMALISED, PIXELS_PLUS_MINUS_1, PIXELS_255)


def pixels_name(scale: float, shift: float = 0.0) -> str:
    """How a network expects its pixels, in words: "[0,1]", "[0,255]", "normalised (x-0.1307)/0.3081", …"""
    known = {PIXELS_01: "[0,1]", PIXELS_255: "[0,255]", PIXELS_PLUS_MINUS_1: "[-1,1]",
             PIXELS_MNIST_NORMALISED: f"normalised (x-{MNIST_MEAN})/{MNIST_STD}"}
    for (s, c), name in known.items():
        if math.isclose(scale, s, rel_tol=1e-6) and math.isclose(shift, c, rel_tol=1e-6, abs_tol=1e-12):
            return name
    return f"[0,1]×{scale:g}" + (f"{shift:+g}" if shift else "")


@dataclass(frozen=True)
class Candidate:
    """One reading of a file tried on the probe: which architecture, which hidden activation, which pixels."""

    activation: str | None
    scale: float = 1.0
    shift: float = 0.0
    arch: int = 0  # index into the architectures the shapes allow (a CNN's pads and pools are not stored)
    arch_label: str = ""

    @property
    def book_pixels(self) -> bool:
        return (self.scale, self.shift) == (BOOK_SCALE, 0.0)

    def name(self) -> str:
        parts = [self.arch_label] if self.arch_label else []
        parts += [self.activation] if self.activation else []
        return ", ".join(parts + [f"pixels {pixels_name(self.scale, self.shift)}"])


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

    Then each candidate only adds its scale, shift and bias: (s·x + c) @ W + b = s·(x @ W) + c·ΣW + b. For an MLP that
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
            first, dtype = network.layers[0].params, shared.dtype  # float32: the activation after it too
            scores = shared * np.asarray(network.input_scale, dtype) + first["b"].astype(dtype, copy=False)
            if network.input_shift:
                scores += (network.input_shift * first["W"].sum(axis=0)).astype(dtype)
            for layer in network.layers[1:]:
                scores = layer.forward(scores)
    if not np.all(np.isfinite(scores)):
        return None
    return scores


def _all_predictions(candidates: list, make, x: np.ndarray) -> list[np.ndarray | None]:
    """Each candidate's scores for the images ``x`` (None if any overflowed), computed as cheaply as they allow."""
    networks = [make(cand) for cand in candidates]
    shared = _shared_product(networks, x)  # 500×784 by 784×n: large enough for BLAS's threads to halve its time
    with one_thread():  # what is left makes small matrix products: extra BLAS threads only wait for each other
        if shared is None:  # each candidate runs whole: in float32 (after the shared product, the rest is tiny)
            networks = [_float32(net) for net in networks]
        return [_predictions(net, x, shared) for net in networks]


def _diversity(scores: np.ndarray | None) -> float:
    """Entropy (bits) of the predicted-class histogram: 0 when every input gets the same answer."""
    if scores is None:
        return -1.0
    p = np.bincount(scores.argmax(axis=1), minlength=NUM_CLASSES) / len(scores)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def _mean_loss(scores: np.ndarray | None, t: np.ndarray) -> float:
    """Mean cross-entropy of the labels under the scores' softmax: finer than accuracy for telling near-ties apart."""
    if scores is None:
        return float("inf")
    scores = scores.astype(np.float64)
    top = scores.max(axis=1, keepdims=True)  # subtracted before exp: no overflow (log-sum-exp)
    log_norm = top[:, 0] + np.log(np.exp(scores - top).sum(axis=1))
    return float(np.mean(log_norm - scores[np.arange(len(t)), t]))


def _indistinguishable(best: np.ndarray, other: np.ndarray) -> bool:
    """Whether the probe cannot say ``best`` (per-digit right/wrong) reads the digits better than ``other``.

    McNemar's test: only the digits one reading gets right and the other wrong count; if both were
    equally good, each would win half of them, with a standard deviation of sqrt(n)/2.
    """
    wins, losses = int(np.sum(best & ~other)), int(np.sum(other & ~best))
    lead = wins - losses
    return lead <= max(TIE_MARGIN_DIGITS, TIE_SIGMAS * np.sqrt(wins + losses))


def _screen(candidates: list[Candidate], make, x: np.ndarray, t: np.ndarray, notes: list[str]) -> list[Candidate]:
    """The candidates worth the whole probe: with many (a CNN's layouts times the pixel conventions), the first
    ``SCREEN_DIGITS`` digits drop those clearly worse than the best (the same paired test), a quarter of the work."""
    if len(candidates) <= SCREEN_ABOVE or len(x) <= 2 * SCREEN_DIGITS:
        return candidates
    outs = _all_predictions(candidates, make, x[:SCREEN_DIGITS])
    right = [np.zeros(SCREEN_DIGITS, bool) if out is None else out.argmax(axis=1) == t[:SCREEN_DIGITS] for out in outs]
    top = max(range(len(candidates)), key=lambda i: (int(right[i].sum()), -i))
    kept = [c for c, r in zip(candidates, right) if _indistinguishable(right[top], r)]
    if len(kept) < len(candidates):
        notes.append(f"{len(candidates) - len(kept)} of {len(candidates)} readings were clearly worse on the first "
                     f"{SCREEN_DIGITS} probe digits and were not tried further")
    return kept


def choose(candidates: list[Candidate], make, probe, notes: list[str],
           ties: str = "book") -> tuple[Candidate, dict[str, float]]:
    """The candidate that classifies the probe best (``make(candidate)`` builds its network), with each one's score.

    Candidates the probe's accuracy cannot tell apart are settled by ``ties``: "book" (the book's conventions, for
    files from the book's code) or "loss" (the lowest mean cross-entropy on the probe digits, for PyTorch files,
    whose pixel conventions vary: normalised inputs read as [0, 1] lose a point of accuracy, rarely more).
    """
    if probe is None:
        probe, what = _default_probe()
    else:
        what = "given probe digits"
    scores: dict[str, float] = {}
    if probe is not None:
        x, t = probe
        x = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
        t = np.asarray(t)
        t = t.argmax(axis=1) if t.ndim == 2 else t.astype(np.int64)
        candidates = _screen(candidates, make, x, t, notes)
        right, losses = [], []
        for cand, out in zip(candidates, _all_predictions(candidates, make, x)):
            right.append(np.zeros(len(t), dtype=bool) if out is None else out.argmax(axis=1) == t)
            losses.append(_mean_loss(out, t) if ties == "loss" else 0.0)  # only "loss" ties read them
            scores[cand.name()] = float(np.mean(right[-1]))
        method = f"accuracy on {len(x)} {what}"
    else:
        x = scribbles()
        for cand, out in zip(candidates, _all_predictions(candidates, make, x)):
            scores[cand.name()] = _diversity(out)
        method = ("no labelled digits available (install the mnist-sample or pass probe=): a wrong input scale or "
                  "activation tends to collapse the answers to one class, so the first candidate (sigmoid before relu, "
                  "[0,1] before [0,255], the book's defaults) whose answers over synthetic scribbles vary at least "
                  f"{LABEL_FREE_KEEP:.0%} as much as the most varied one's won; a weak heuristic, scores are entropies")
    ranked = [scores[c.name()] for c in candidates]
    tied: list[int] = []
    if probe is not None:
        top = max(range(len(candidates)), key=lambda i: (ranked[i], -i))
        tied = [i for i in range(len(candidates)) if _indistinguishable(right[top], right[i])]
        if ties == "loss":
            best = min(tied, key=lambda i: (losses[i], i))
        else:  # the book's conventions win: [0, 1] pixels first, then the activations' given order
            best = min(tied, key=lambda i: (not candidates[i].book_pixels, i))
    else:  # the first candidate, in order of preference, that is not close to answering one class for everything
        best = next(i for i, v in enumerate(ranked) if v >= LABEL_FREE_KEEP * max(ranked))
    values = sorted(scores.values(), reverse=True)
    chosen = candidates[best]
    shown = sorted(scores.items(), key=lambda kv: -kv[1])[:MAX_NOTED]
    detail = ", ".join(f"{k} {v:.1%}" if probe is not None else f"{k} {v:.2f} bits" for k, v in shown)
    more = f" (and {len(scores) - len(shown)} more)" if len(scores) > len(shown) else ""
    notes.append(f"chose {chosen.name()} by {method}: {detail}{more}")
    if len(tied) > 1:
        rule = ("the lowest loss on the probe digits" if ties == "loss" else
                "the book's convention (pixels in [0, 1], sigmoid before relu)")
        names = ", ".join(candidates[i].name() for i in tied[:MAX_NOTED])
        notes.append(f"{len(tied)} readings ({names}{', …' if len(tied) > MAX_NOTED else ''}) scored too close to tell "
                     f"apart on {len(right[top])} digits (a paired test at about 95% confidence): chose by {rule}; "
                     f"{OVERRIDE_HINT} if you know better")
    elif len(values) > 1 and values[0] - values[1] < (0.01 if probe is not None else 0.05):
        notes.append(f"the probe could barely tell the best two candidates apart; {OVERRIDE_HINT} "
                     "if you know better")
    if probe is not None and values[0] < 0.5:
        notes.append(f"even the best candidate gets only {values[0]:.1%} right: these may not be MNIST weights")
    return chosen, scores
