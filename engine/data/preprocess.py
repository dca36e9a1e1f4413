"""Turn a drawing or a photo of a digit into what an MNIST network was trained on.

MNIST digits were made by cropping the ink, scaling it (anti-aliased, aspect kept)
to fit a 20×20 box, and pasting it into a 28×28 frame so that its centre of mass
sits in the middle. A network only recognises a drawing that went through the
same steps, so the canvas and image files go through :func:`mnist_preprocess`.
"""
from __future__ import annotations

import numpy as np

from engine.errors import DigitLabError

FRAME = 28  # side of an MNIST image
BOX = 20  # the digit's longer side after scaling
INK_LEVEL = 0.05  # a pixel at or below this counts as background (sensor noise, faint anti-aliasing)
BLANK_LEVEL = 0.1  # is_blank: no pixel brighter than this means "nothing drawn"

# looks_like_digit thresholds, measured on the 10,000 MNIST test digits after mnist_preprocess:
MIN_CONFIDENCE = 0.5  # below this the model is guessing between several classes
MIN_INK = 0.02  # mean pixel of a 28×28 digit; the faintest MNIST test digit has 0.028
MAX_INK = 0.40  # a solid blob, a scribble over everything; the inkiest MNIST test digit has 0.33


class PreprocessError(DigitLabError):
    """The array cannot be an image of a digit (wrong shape, not finite, empty)."""


def _as_image(img: np.ndarray, where: str) -> np.ndarray:
    arr = np.asarray(img)
    if arr.ndim != 2:
        raise PreprocessError(f"{where}: expected a 2-D greyscale image, got shape {arr.shape}")
    if arr.size == 0:
        raise PreprocessError(f"{where}: the image is empty (shape {arr.shape})")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool) or np.iscomplexobj(arr):
        raise PreprocessError(f"{where}: expected real numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float32, copy=False)
    if not np.all(np.isfinite(arr)):
        raise PreprocessError(f"{where}: the image contains NaN or infinite values")
    return np.clip(arr, 0.0, 1.0)


def _tent_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) resampling matrix: a linear (tent) filter widened when shrinking, so it area-averages."""
    scale = n_out / n_in
    support = max(1.0, 1.0 / scale)  # shrinking: each output pixel covers 1/scale input pixels
    centres = (np.arange(n_out) + 0.5) / scale  # output pixel centres in input coordinates
    src = np.arange(n_in) + 0.5
    w = np.maximum(0.0, 1.0 - np.abs(src[None, :] - centres[:, None]) / support)
    sums = w.sum(axis=1, keepdims=True)
    # every row has weight >= 0 somewhere (support >= 1), but guard the division anyway
    return (w / np.where(sums > 0, sums, 1.0)).astype(np.float32)


def resize_image(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resample a 2-D array to (height, width), anti-aliased when shrinking, linear when enlarging."""
    arr = _as_image(img, "resize_image")
    if height < 1 or width < 1:
        raise PreprocessError(f"resize_image: target size must be at least 1×1, got {height}×{width}")
    rows = _tent_weights(arr.shape[0], int(height))
    cols = _tent_weights(arr.shape[1], int(width))
    return np.clip(rows @ arr @ cols.T, 0.0, 1.0).astype(np.float32, copy=False)


def is_blank(img: np.ndarray, threshold: float = BLANK_LEVEL) -> bool:
    """True when no pixel is brighter than ``threshold``: nothing to recognise."""
    arr = _as_image(img, "is_blank")
    return bool(arr.max() <= threshold)


def ink_bounds(img: np.ndarray, level: float = INK_LEVEL) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right) of pixels above ``level`` (bottom/right exclusive), None when there are none."""
    arr = np.asarray(img)
    rows = np.flatnonzero(np.any(arr > level, axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(np.any(arr > level, axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def mnist_preprocess(img: np.ndarray) -> np.ndarray:
    """Any-size white-on-black image in [0, 1] -> a (28, 28) float32 digit framed as in MNIST.

    Crop to the ink, scale so the longer side is 20 pixels (aspect kept, area-averaged),
    stretch so the brightest pixel is 1 (every MNIST digit reaches full ink), and place it
    in a 28×28 frame with its centre of mass in the middle, kept fully inside the frame.
    A blank image gives all zeros.
    """
    arr = _as_image(img, "mnist_preprocess")
    out = np.zeros((FRAME, FRAME), dtype=np.float32)
    bounds = ink_bounds(arr)
    if bounds is None:
        return out
    top, bottom, left, right = bounds
    crop = arr[top:bottom, left:right]
    h, w = crop.shape
    longer = max(h, w)
    new_h = max(1, int(round(h * BOX / longer)))
    new_w = max(1, int(round(w * BOX / longer)))
    digit = resize_image(crop, new_h, new_w)
    peak = float(digit.max())
    if peak <= 0.0:
        return out
    digit = digit / peak
    mass = float(digit.sum())
    cy = float(np.arange(new_h) @ digit.sum(axis=1)) / mass
    cx = float(np.arange(new_w) @ digit.sum(axis=0)) / mass
    centre = FRAME / 2.0  # MNIST digits have their centre of mass at pixel (14, 14), measured on the test set
    y0 = int(np.clip(np.floor(centre - cy + 0.5), 0, FRAME - new_h))
    x0 = int(np.clip(np.floor(centre - cx + 0.5), 0, FRAME - new_w))
    out[y0:y0 + new_h, x0:x0 + new_w] = digit
    return out


def looks_like_digit(probabilities: np.ndarray | None, image: np.ndarray) -> tuple[bool, str]:
    """(ok, reason): a plain check before showing a prediction as if it meant something.

    ``image`` is the network's input (28×28 after :func:`mnist_preprocess`; any other size is
    preprocessed first). Not a digit when: nothing is drawn; the ink covers too little or too much
    of the frame compared with real MNIST digits (a dot, a filled blob); or the model's top
    probability is below MIN_CONFIDENCE (it is torn between classes). ``reason`` is "" when ok.
    """
    arr = _as_image(image, "looks_like_digit")
    if is_blank(arr):
        return False, "Draw a digit"
    if arr.shape != (FRAME, FRAME):
        arr = mnist_preprocess(arr)
    ink = float(arr.mean())
    if ink < MIN_INK:
        return False, "Too little ink to be a digit: draw it bigger or with longer strokes"
    if ink > MAX_INK:
        return False, "Too much ink: this looks like a blob, not a digit"
    if probabilities is not None:
        p = np.asarray(probabilities, dtype=np.float64).reshape(-1)
        if p.size == 0 or not np.all(np.isfinite(p)):
            raise PreprocessError(f"looks_like_digit: probabilities must be finite numbers, got {p!r}")
        if float(p.max()) < MIN_CONFIDENCE:
            return False, "This does not look like any digit the model knows"
    return True, ""
