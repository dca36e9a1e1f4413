"""Read a picture of a handwritten digit (a photo, a scan, a PNG) as a 28×28 MNIST-style input.

:func:`load_image` is the one way DigitLab opens a picture (``digitlab predict``, and the window's image opening).
A picture is untrusted input, so it only ever goes to Pillow's raster decoders named in
``FORMATS`` — never to EPS/PostScript/PDF, which Pillow hands to Ghostscript — and its size is
checked from the header before a single pixel is decoded. Whatever is wrong with a file, the
caller gets one :class:`ImageError` naming it; a blank or featureless picture gives all zeros.
"""
from __future__ import annotations

import logging
import os
import threading
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from engine.data.preprocess import BLANK_LEVEL, mnist_preprocess, resize_image
from engine.errors import DigitLabError
from engine.util import open_regular_file, printable

# Raster formats only (Pillow's names; "PPM" also reads PGM, PBM and PFM). EPS, PS and PDF are
# missing on purpose: Pillow renders them by running Ghostscript on the file.
FORMATS = ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP", "PPM")
FORMAT_NAMES = "PNG, JPEG, BMP, GIF, TIFF, WebP or PPM/PGM/PBM"
MAX_PIXELS = 64_000_000  # phone photos are 12–50 MP; 64 MP of RGBA decodes to 256 MB, peaks at ~520 MB shrinking
MAX_SLOW_PIXELS = 4_000_000  # Pillow decodes plain-text and odd-maxval PNM in Python, about 1 s per megapixel
MAX_JPEG_SCAN_PIXELS = 2_000_000_000  # libjpeg reads every pixel once per progressive scan (~1.6 ns each): ~3 s
MAX_FILE_BYTES = 8 * MAX_PIXELS + 2**20  # an uncompressed MAX_PIXELS picture at 16-bit RGBA, plus headers
MAX_SEGMENTS = 10_000  # PNG chunks before the pixels / JPEG Exif segments: real files have < 50; Pillow parses
# each in Python when opening (and joins JPEG Exif segments quadratically: 200,000 of them took 57 s)
FILE_SLACK = 4 * 2**20  # bytes a picture may carry besides its pixels (ICC profile, EXIF, XMP, a thumbnail)
_BYTES_PER_PIXEL = {"PNG": 8, "JPEG": 8, "MPO": 16, "BMP": 4, "PPM": 24}  # uncompressed 16-bit RGBA, 32-bit BMP,
# plain-text 16-bit PPM; GIF, TIFF and WebP may hold many frames of which only the first is read: not bounded here
MAX_SIDE = 560  # larger pictures are shrunk first: the digit ends up 20 pixels tall anyway
NOISE_FLOOR = 0.15  # ink weaker than this share of the strongest stroke is JPEG ringing or paper texture
MIN_CONTRAST = BLANK_LEVEL  # the canvas rule: ink within 0.1 of the paper (25 of 255 levels) is nothing drawn
EDGE_SIDE = 56  # strokes are looked for on the ink shrunk to this size, where noise has averaged out
MIN_EDGE = 0.25  # a stroke edge steps by >= 0.36 of peak ink (blurred MNIST); smooth gradients by <= 0.14
_ORIENTATION_TAG = 0x0112  # EXIF Orientation
_TRANSPOSE = {  # EXIF orientation -> what turns the stored picture upright (as ImageOps.exif_transpose does)
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_NOT_RASTER = (  # (leading bytes, what the file is) for a clearer refusal of files Pillow must not open
    (b"%!", "PostScript, which DigitLab never opens (Pillow would run Ghostscript on it)"),
    (b"\xc5\xd0\xd3\xc6", "PostScript (binary EPS), which DigitLab never opens (Pillow would run Ghostscript on it)"),
    (b"%PDF", "a PDF document, not a picture"),
    (b"<svg", "an SVG drawing, not a raster picture"),
    (b"<?xml", "an XML or SVG file, not a raster picture"),
)
_RASTER_MAGIC = (b"\x89PNG", b"\xff\xd8", b"GIF8", b"BM", b"II*\x00", b"MM\x00*", b"P1", b"P2", b"P3",
                 b"P4", b"P5", b"P6", b"Pf", b"PF")  # starts like a format we read, so it is damaged, not foreign


# Pillow logs some damage (e.g. a TIFF's absurd samples-per-pixel) at ERROR level before raising; with no
# logging set up Python would print that to stderr beside our one-line message. An app that sets up logging
# still gets it: a NullHandler only stops the last-resort print.
logging.getLogger("PIL").addHandler(logging.NullHandler())
# Pillow warns about damaged metadata; those warnings are silenced while it reads a picture. Before Python 3.14
# warnings.catch_warnings swaps one process-wide filter list, so pictures (read by the window in background
# threads) are decoded one at a time: two overlapping swaps could leave every warning silenced for good.
_ONE_AT_A_TIME = threading.Lock()


class ImageError(DigitLabError):
    """The file is missing, unreadable, too large, or not a picture DigitLab reads."""


class _BadPixels(ValueError):
    """Decoded pixels no picture has (NaN, infinity)."""


def _name(path: Path) -> str:
    return printable(path, limit=500)


def _open_regular_file(path: Path):
    """The file opened for binary reading: folders, FIFOs and devices refused without blocking, size bounded."""
    f = open_regular_file(path, ImageError)
    size = os.fstat(f.fileno()).st_size
    problem = None
    if size == 0:
        problem = "empty (0 bytes), not an image"
    elif size > MAX_FILE_BYTES:
        problem = f"{size / 2**20:,.0f} MB; DigitLab opens image files of up to {MAX_FILE_BYTES // 2**20} MB"
    if problem:
        f.close()
        raise ImageError(f"{_name(path)}: {problem}")
    return f


def _unidentified(f) -> str:
    f.seek(0)
    head = f.read(1024).lstrip(b"\xef\xbb\xbf \t\r\n")
    for magic, what in _NOT_RASTER:
        if head[:len(magic)].lower() == magic.lower():
            return f": {what}"
    if head.startswith(_RASTER_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return ": the picture is damaged or cut short (its header cannot be read)"
    return f": not a picture DigitLab reads ({FORMAT_NAMES})"


def _count_segments(f, name: str) -> None:
    """Refuse before Pillow opens the file: too many PNG chunks before the pixels, or JPEG Exif segments."""
    f.seek(0)
    head = f.read(8)
    count = 0
    if head == b"\x89PNG\r\n\x1a\n":
        while count <= MAX_SEGMENTS:
            header = f.read(8)
            if len(header) < 8 or header[4:] == b"IDAT":
                break
            count += 1
            f.seek(int.from_bytes(header[:4], "big") + 4, os.SEEK_CUR)  # the chunk's data and CRC
        what = "PNG chunks before its pixels"
    elif head[:2] == b"\xff\xd8":
        count = _count_marker(f, b"\xff\xe1", stop_after=MAX_SEGMENTS)
        what = "JPEG Exif segments"
    f.seek(0)
    if count > MAX_SEGMENTS:
        raise ImageError(f"{name}: more than {MAX_SEGMENTS:,} {what} (a real picture has a few dozen); "
                         "refusing a file built to be slow to open")


def _check_file_size(image: Image.Image, name: str, f) -> None:
    """A file far bigger than its pixels could need is padding meant to be slow to parse (chunks, RLE no-ops)."""
    per_pixel = _BYTES_PER_PIXEL.get(image.format)
    if per_pixel is None:
        return
    width, height = image.size
    if any(tile[0] == "bmp_rle" for tile in image.tile):  # RLE: at most ~1 byte per pixel plus 2 per row
        limit = 2 * width * height + 4 * height + 2**16
    else:
        limit = per_pixel * width * height + FILE_SLACK
    size = os.fstat(f.fileno()).st_size
    if size > limit:
        raise ImageError(f"{name}: {size / 2**20:,.1f} MB for a {width}×{height} picture, far more than its pixels "
                         f"can take (at most {limit / 2**20:,.1f} MB); refusing a file padded to be slow to read")


def _count_marker(f, marker: bytes, stop_after: int | None = None) -> int:
    """How often a two-byte JPEG marker occurs in the file (once past ``stop_after``, counting stops).

    Inside entropy-coded data 0xFF is always escaped, so a marker's bytes mean a marker.
    """
    where, count, tail = f.tell(), 0, b""
    f.seek(0)
    while (stop_after is None or count <= stop_after) and (block := f.read(1 << 20)):
        count += (tail + block).count(marker)
        tail = block[-1:]
    f.seek(where)
    return count


def _check_size(image: Image.Image, name: str, f) -> None:
    """Refuse from the header alone, before anything is decoded."""
    width, height = image.size
    pixels = width * height
    if width < 1 or height < 1:
        raise ImageError(f"{name}: the picture has no pixels ({width}×{height})")
    most = MAX_PIXELS // 2 if image.format == "WEBP" else MAX_PIXELS  # libwebp decodes into a buffer Pillow copies
    if pixels > most:
        kind = "WebP pictures" if image.format == "WEBP" else "pictures"
        raise ImageError(f"{name}: {width}×{height} pixels ({pixels / 1e6:,.0f} megapixels); DigitLab opens "
                         f"{kind} of up to {most // 1_000_000} megapixels: shrink it first")
    slow = any(tile[0] in Image.DECODERS for tile in image.tile)  # decoders written in Python, not C
    if slow and pixels > MAX_SLOW_PIXELS:
        raise ImageError(f"{name}: a {width}×{height} plain-text or odd-maxval PNM, which only decodes slowly; "
                         f"DigitLab reads those up to {MAX_SLOW_PIXELS // 1_000_000} megapixels: save it as PNG")
    if image.format in ("JPEG", "MPO") and (scans := _count_marker(f, b"\xff\xda")) * pixels > MAX_JPEG_SCAN_PIXELS:
        raise ImageError(f"{name}: a progressive JPEG of {scans:,} scans over {pixels / 1e6:,.1f} megapixels, "
                         f"far more than any camera writes (about 10): too slow to decode")


def _orientation(image: Image.Image) -> int:
    """EXIF orientation (1 = upright); a damaged EXIF block is ignored, the pixels are what matter."""
    try:
        value = image.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:  # noqa: BLE001 - Pillow's EXIF parser raises many kinds of errors on damaged metadata
        return 1
    return value if isinstance(value, int) and value in _TRANSPOSE else 1


def _shrunk(image: Image.Image) -> Image.Image:
    """Decoded, upright, at most MAX_SIDE on its longer side, in a mode _to_grey reads."""
    image.draft(None, (2 * MAX_SIDE, 2 * MAX_SIDE))  # JPEG: decode at 1/2–1/8 scale when that is still big enough
    image.load()
    orientation = _orientation(image)
    if image.mode == "P":  # resizing works on palette indices: go to grey (with alpha if any) first
        image = image.convert("LA" if "transparency" in image.info else "L")
    elif image.mode in ("1", "PA", "La"):
        image = image.convert("LA" if "A" in image.mode or "a" in image.mode else "L")
    if max(image.size) > MAX_SIDE:
        image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.BOX, reducing_gap=None)  # reduce() lacks I;16
    if orientation != 1:
        image = image.transpose(_TRANSPOSE[orientation])
    return image


def _unit_range(values: np.ndarray) -> np.ndarray:
    """16-bit, 32-bit or float pixels -> [0, 1] by the range they were stored in, never clipped at 255.

    Integers are read against the smallest bit depth holding their largest value (at least 8 bits):
    a 16-bit scan fills 0–65535, 12-bit camera data 0–4095, 8-bit data in a 16-bit file 0–255.
    Floats in [0, 1] are taken as they are, otherwise as 0–255 or 0–65535 data when they fit.
    """
    floating = values.dtype.kind == "f"
    values = values.astype(np.float64)
    if not np.all(np.isfinite(values)):
        raise _BadPixels("the picture has NaN or infinite pixel values")
    low, high = float(values.min()), float(values.max())
    if low < 0.0:  # signed data (e.g. normalised to [-1, 1]): its own range is all there is
        top = high
    elif floating and high <= 1.0:
        low, top = 0.0, 1.0
    elif high <= 65535.0:
        low, top = 0.0, float(max(255, 2 ** int(np.ceil(high)).bit_length() - 1))
    else:  # 32-bit or float data beyond 16 bits: no standard range to read it against
        low, top = 0.0, high
    if top <= low:
        return np.zeros(values.shape, dtype=np.float32)
    return ((values - low) / (top - low)).astype(np.float32)


def _to_grey(image: Image.Image) -> np.ndarray:
    """Greyscale float32 in [0, 1]; transparent areas become the background colour of the ink's opposite."""
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        return _unit_range(np.asarray(image))
    if image.mode in ("RGBA", "RGBa", "LA"):
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32) / 255.0
        alpha = rgba[..., 3]
        grey = rgba[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        opaque = alpha > 0.5
        # light strokes on a transparent background go onto black, dark strokes onto white
        backdrop = 0.0 if opaque.any() and float(grey[opaque].mean()) > 0.5 else 1.0
        return grey * alpha + backdrop * (1.0 - alpha)
    if image.mode != "L":
        image = image.convert("RGB").convert("L")  # CMYK, YCbCr, LAB, HSV, RGBX and RGB alike
    return np.asarray(image, dtype=np.float32) / 255.0


def _border(grey: np.ndarray) -> np.ndarray:
    return np.concatenate([grey[0], grey[-1], grey[1:-1, 0], grey[1:-1, -1]])


def has_strokes(ink: np.ndarray) -> bool:
    """True when the ink has edges like pen strokes, not only a smooth gradient or vignette.

    Looked at EDGE_SIDE pixels across (noise averages out), a stroke's edge changes by a good part
    of the peak ink from one pixel to the next; a lighting gradient changes by a few percent.
    """
    ink = np.asarray(ink, dtype=np.float32)
    scale = EDGE_SIDE / max(ink.shape)
    if scale < 1.0:
        ink = resize_image(ink, max(1, round(ink.shape[0] * scale)), max(1, round(ink.shape[1] * scale)))
    peak = float(ink.max())
    if peak <= 0.0:
        return False
    steps = [np.abs(np.diff(ink, axis=axis)).max(initial=0.0) for axis in (0, 1)]
    return max(steps) >= MIN_EDGE * peak


def to_ink(grey: np.ndarray) -> np.ndarray:
    """Greyscale picture in [0, 1] -> ink 1.0 on background 0.0, whichever way round the picture was.

    The border's median is the paper. The ink is whatever departs further from it, darker or
    lighter (a dark digit on light or dim paper is inverted). Ink fainter than MIN_CONTRAST, or
    without the sharp edges of strokes (a gradient, a vignette), is no ink: the result is all
    zeros. Otherwise a noise floor is subtracted and the contrast stretched so the strongest
    stroke is 1.
    """
    grey = np.asarray(grey, dtype=np.float32)
    background = float(np.median(_border(grey)))
    lighter, darker = float(grey.max()) - background, background - float(grey.min())
    ink = grey - background if lighter >= darker else background - grey
    peak = max(lighter, darker)
    if peak < MIN_CONTRAST:
        return np.zeros_like(grey)
    floor = NOISE_FLOOR * peak
    ink = np.clip((ink - floor) / (peak - floor), 0.0, 1.0)
    return ink if has_strokes(ink) else np.zeros_like(grey)


def _read_grey(path: Path) -> np.ndarray:
    name = _name(path)
    with _open_regular_file(path) as f, _ONE_AT_A_TIME, warnings.catch_warnings():
        # file-derived warnings (odd EXIF or TIFF tags, Pillow's bomb warning: MAX_PIXELS is lower) are not news
        warnings.simplefilter("ignore")
        try:
            _count_segments(f, name)
            with Image.open(f, formats=list(FORMATS)) as image:
                _check_size(image, name, f)
                _check_file_size(image, name, f)
                return _to_grey(_shrunk(image))
        except ImageError:
            raise
        except UnidentifiedImageError:
            raise ImageError(f"{name}{_unidentified(f)}") from None
        except Image.DecompressionBombError:
            raise ImageError(f"{name}: larger than {2 * Image.MAX_IMAGE_PIXELS / 1e6:,.0f} megapixels; DigitLab "
                             f"opens pictures of up to {MAX_PIXELS // 1_000_000} megapixels: shrink it first") from None
        except _BadPixels as exc:
            raise ImageError(f"{name}: {exc}") from None
        except MemoryError:
            raise ImageError(f"{name}: not enough memory to decode this picture") from None
        except Exception as exc:  # noqa: BLE001 - Pillow's decoders raise OSError, SyntaxError, struct.error,
            # zlib.error, EOFError, IndexError, ValueError… for a damaged file; each means the same to the person
            detail = printable(exc) or type(exc).__name__
            raise ImageError(f"{name}: the picture is damaged or cut short ({detail})") from None


def load_image(path: str | os.PathLike) -> np.ndarray:
    """PNG/JPEG/... of any size -> (28, 28) float32 in [0, 1], white digit on black, framed like MNIST.

    Raises :class:`ImageError` (one line, naming the file) for anything that is not a readable raster
    picture within the limits above. A blank, uniform or featureless picture gives all zeros, which
    :func:`engine.data.preprocess.is_blank` reports as "nothing to recognise".
    """
    path = Path(path)
    grey = _read_grey(path)
    if grey.ndim != 2 or min(grey.shape) < 1:
        raise ImageError(f"{_name(path)}: the picture has no pixels")
    return mnist_preprocess(to_ink(grey))
