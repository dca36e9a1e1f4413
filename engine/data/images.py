"""Read a picture of a handwritten digit (a photo, a scan, a PNG) as a 28×28 MNIST-style input."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from engine.data.preprocess import mnist_preprocess
from engine.errors import DigitLabError

NOISE_FLOOR = 0.15  # ink weaker than this share of the strongest stroke is JPEG ringing or paper texture
MAX_SIDE = 560  # larger pictures are shrunk first: the digit ends up 20 pixels tall anyway


class ImageError(DigitLabError):
    """The file is missing, unreadable or not an image."""


def _to_grey(image: Image.Image) -> np.ndarray:
    """Greyscale float32 in [0, 1]; transparent areas become the background colour of the ink's opposite."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32) / 255.0
        alpha = rgba[..., 3]
        grey = rgba[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        opaque = alpha > 0.5
        # light strokes on a transparent background go onto black, dark strokes onto white
        backdrop = 0.0 if opaque.any() and float(grey[opaque].mean()) > 0.5 else 1.0
        return grey * alpha + backdrop * (1.0 - alpha)
    return np.asarray(image.convert("L"), dtype=np.float32) / 255.0


def _border(grey: np.ndarray) -> np.ndarray:
    return np.concatenate([grey[0], grey[-1], grey[1:-1, 0], grey[1:-1, -1]])


def to_ink(grey: np.ndarray) -> np.ndarray:
    """Greyscale picture -> ink 1.0 on background 0.0, whichever way round the picture was.

    The border is taken as background: a light border means dark ink on paper, which is inverted.
    The background level (paper is rarely pure white) and a noise floor are subtracted and the
    contrast stretched so the strongest stroke is 1.
    """
    grey = np.asarray(grey, dtype=np.float32)
    background = float(np.median(_border(grey)))
    if background > 0.5:
        grey = 1.0 - grey
        background = 1.0 - background
    ink = grey - background
    peak = float(ink.max())
    if peak <= 0.0:
        return np.zeros_like(grey)
    floor = NOISE_FLOOR * peak
    return np.clip((ink - floor) / (peak - floor), 0.0, 1.0)


def load_image(path: str | os.PathLike) -> np.ndarray:
    """PNG/JPEG/... of any size -> (28, 28) float32 in [0, 1], white digit on black, framed like MNIST."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()
            if max(image.size) > MAX_SIDE:
                image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.BOX)
            grey = _to_grey(image)
    except FileNotFoundError:
        raise ImageError(f"no such image file: {path}") from None
    except IsADirectoryError:
        raise ImageError(f"{path} is a folder, not an image file") from None
    except UnidentifiedImageError:
        raise ImageError(f"{path} is not an image Pillow can read (PNG, JPEG, BMP, GIF, ...)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageError(f"cannot read image {path}: {exc}") from None
    if grey.ndim != 2 or min(grey.shape) < 1:
        raise ImageError(f"{path}: the image has no pixels")
    return mnist_preprocess(to_ink(grey))
