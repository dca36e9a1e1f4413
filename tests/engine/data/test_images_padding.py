"""Pictures padded to be slow to open or decode are refused up front; ordinary metadata is not."""
from __future__ import annotations

import io
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from engine.data import images
from engine.data.images import ImageError, load_image


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png(extra_chunks: int = 0, text_bytes: int = 0) -> bytes:
    """A 28×28 grey PNG of a bar, with empty private chunks or one big text chunk before its pixels."""
    pixels = np.zeros((28, 28), np.uint8)
    pixels[4:24, 12:16] = 255
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    data = buf.getvalue()
    ihdr_end = 8 + 25
    padding = _chunk(b"prIv", b"") * extra_chunks
    if text_bytes:
        padding += _chunk(b"tEXt", b"Comment\0" + b"x" * text_bytes)
    return data[:ihdr_end] + padding + data[ihdr_end:]


def _jpeg(exif_segments: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((28, 28), 200, np.uint8)).save(buf, format="JPEG")
    data = buf.getvalue()
    app1 = b"\xff\xe1" + struct.pack(">H", 8) + b"Exif\0\0"
    return data[:2] + app1 * exif_segments + data[2:]


def _rle_bmp(noops: int) -> bytes:
    """A 1×2 8-bit RLE BMP padded with ``noops`` runs clipped to nothing (Pillow reads them in Python)."""
    rle = b"\xff\x00" * noops + (b"\x01\xff" + b"\x00\x00") * 2 + b"\x00\x01"
    palette = b"".join(bytes((i, i, i, 0)) for i in range(256))
    offset = 14 + 40 + len(palette)
    header = struct.pack("<IiiHHIIiiII", 40, 1, 2, 1, 8, 1, len(rle), 2835, 2835, 256, 0)
    return b"BM" + struct.pack("<IHHI", offset + len(rle), 0, 0, offset) + header + palette + rle


@pytest.mark.parametrize("make, phrase", [
    (lambda: _png(extra_chunks=images.MAX_SEGMENTS + 1), "PNG chunks before its pixels"),
    (lambda: _jpeg(exif_segments=images.MAX_SEGMENTS + 1), "JPEG Exif segments"),
    (lambda: _rle_bmp(noops=100_000), "far more than its pixels can take"),
    (lambda: _png(text_bytes=images.FILE_SLACK + 100_000), "far more than its pixels can take"),
])
def test_padding_built_to_be_slow_is_refused_quickly_and_by_name(tmp_path, make, phrase):
    path = tmp_path / "padded.img"
    path.write_bytes(make())
    start = time.perf_counter()
    with pytest.raises(ImageError, match=f"padded.img: .*{phrase}"):
        load_image(path)
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("make", [lambda: _png(extra_chunks=50), lambda: _png(text_bytes=2**20),
                                  lambda: _jpeg(exif_segments=5), lambda: _rle_bmp(noops=0)])
def test_ordinary_metadata_and_a_few_segments_still_load(tmp_path, make):
    path = tmp_path / "fine.img"
    path.write_bytes(make())
    assert load_image(path).shape == (28, 28)


def test_webp_is_held_to_half_the_pixels_because_it_is_decoded_twice(tmp_path, monkeypatch):
    """libwebp decodes into its own buffer and Pillow copies it: 64 MP of WebP peaked at 1 GB, twice a PNG's."""
    monkeypatch.setattr(images, "MAX_PIXELS", 2_000)  # 40×40 = 1,600 pixels: within the limit, over half of it
    picture = Image.fromarray(np.zeros((40, 40), np.uint8))
    for fmt, suffix in (("WEBP", "webp"), ("PNG", "png")):
        picture.save(tmp_path / f"p.{suffix}", format=fmt)
    with pytest.raises(ImageError, match="p.webp: 40×40 pixels .*WebP pictures of up to"):
        load_image(tmp_path / "p.webp")
    assert not load_image(tmp_path / "p.png").any()
