"""Write tests/engine/data/hostile_images/: pictures that try to run Ghostscript, exhaust memory, or lie.

Run ``python tests/engine/data/hostile_images/make_hostile_images.py`` to regenerate: the output is
deterministic and test_images.py checks the committed files are current. MANIFEST.json says, for
each file, what it is and what ``load_image`` must do with it:

- ``"refused: PHRASE"``: an ImageError whose one-line message names the file and contains PHRASE;
- ``"ink like FILE"``: the same 28×28 digit as FILE (an 8-bit picture of the same drawing), pixel for pixel;
- ``"digit like FILE"``: the same drawing, allowing a one-pixel shift of the crop (rounded values);
- ``"blank"``: all zeros, which ``is_blank`` reports as "no digit found".

Every file stays far below 256 KB: the bombs are headers that declare a huge picture, or zeros
that compress a thousandfold.
"""
from __future__ import annotations

import io
import json
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
MANIFEST = "MANIFEST.json"
MARKER = "/tmp/digitlab-image-marker"  # what the PostScript payloads would create if Ghostscript ran them
SIZE = 64  # side of the drawn digit pictures
REF = "digit-8bit.png"
REF_1BIT = "digit-1bit.png"
BOMB = "refused: up to 64 megapixels"
DAMAGED = "refused: damaged or cut short"
FOREIGN = "refused: not a picture DigitLab reads"
POSTSCRIPT = "refused: PostScript"


def drawn_seven(size: int = SIZE) -> np.ndarray:
    """Ink in [0, 1] (1 = ink), an anti-aliased 7 with a bar and a slanted stem, white paper around it."""
    yy, xx = (np.mgrid[0:size, 0:size] + 0.5) / size
    points = np.stack([yy, xx], axis=-1)
    width = 0.06
    distance = np.full((size, size), np.inf)
    for (y0, x0), (y1, x1) in (((0.2, 0.25), (0.2, 0.75)), ((0.2, 0.75), (0.82, 0.42))):
        a, b = np.array([y0, x0]), np.array([y1, x1])
        t = np.clip(((points - a) @ (b - a)) / float((b - a) @ (b - a)), 0.0, 1.0)
        distance = np.minimum(distance, np.linalg.norm(points - (a + t[..., None] * (b - a)), axis=-1))
    return np.clip((width - distance) * size / 1.5 + 0.5, 0.0, 1.0)


def _paper_u8(ink: np.ndarray) -> np.ndarray:
    return np.round(255 * (1.0 - ink)).astype(np.uint8)  # black ink on white paper


def _save(image: Image.Image, **kwargs) -> bytes:
    out = io.BytesIO()
    image.save(out, **kwargs)
    return out.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png(width: int, height: int, bit_depth: int, colour: int, raw: bytes, extra: bytes = b"") -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + extra + _chunk(b"IDAT", zlib.compress(raw, 9))
            + _chunk(b"IEND", b""))


def _zeros_png(side: int) -> bytes:
    """A 1-bit black square: ``side``² pixels from a file of about side²/8000 bytes."""
    row = b"\x00" * (1 + (side + 7) // 8)
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", body) + _chunk(b"IEND", b"")


def _tiff(width: int, height: int) -> bytes:
    """An uncompressed 8-bit greyscale TIFF header with no pixel data behind it."""
    tags = [(256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, 1), (262, 3, 1),
            (273, 4, 8), (277, 3, 1), (278, 4, height), (279, 4, width * height)]
    ifd = struct.pack("<H", len(tags)) + b"".join(struct.pack("<HHII", t, k, 1, v) for t, k, v in tags)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + b"\x00\x00\x00\x00"


def _jpeg_header(width: int, height: int) -> bytes:
    sof = struct.pack(">BHHB", 8, height, width, 1) + bytes([1, 0x11, 0])
    sos = struct.pack(">B", 1) + bytes([1, 0x00, 0, 63, 0])
    return (b"\xff\xd8" + b"\xff\xc0" + struct.pack(">H", len(sof) + 2) + sof
            + b"\xff\xda" + struct.pack(">H", len(sos) + 2) + sos + b"\x00" * 16 + b"\xff\xd9")


def _gif_header(width: int, height: int) -> bytes:
    return (b"GIF89a" + struct.pack("<HHBBB", width, height, 0, 0, 0) + b"," + struct.pack("<HHHHB", 0, 0, width,
            height, 0) + b"\x08\x02\x4c\x01\x00;")


def _bmp_header(width: int, height: int) -> bytes:
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + len(info) + 64, 0, 0, 14 + len(info)) + info + b"\x00" * 64


def _webp_header(width: int, height: int) -> bytes:
    bits = (width - 1) | (height - 1) << 14
    vp8l = b"\x2f" + struct.pack("<I", bits) + b"\x00" * 16
    body = b"WEBP" + b"VP8L" + struct.pack("<I", len(vp8l)) + vp8l
    return b"RIFF" + struct.pack("<I", len(body)) + body


POSTSCRIPT_WRITER = (f"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 28 28\n"
                     f"({MARKER}-eps) (w) file dup (ran) writestring closefile\nshowpage\n").encode()
LOOP = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 28 28\n{ } loop\n"


def _many_scans(side: int, extra: int) -> bytes:
    """A progressive JPEG whose last scan is repeated ``extra`` times: libjpeg re-reads the picture for each."""
    jpeg = _save(Image.new("L", (side, side), 128), format="JPEG", progressive=True, quality=50)
    last = jpeg.rindex(b"\xff\xda")
    return jpeg[:-2] + jpeg[last:-2] * extra + b"\xff\xd9"


def cases() -> dict[str, tuple[bytes, str, str]]:
    """file name -> (bytes, what it is, expected outcome)."""
    ink = drawn_seven()
    paper = _paper_u8(ink)
    grey = Image.fromarray(paper)
    wide = paper.astype(np.uint16) * 257  # 8-bit levels spread over 16 bits exactly (255 -> 65535)
    unit = paper.astype(np.float32) / 255
    noise = np.random.default_rng(11)
    ramp = np.linspace(0.2, 0.8, SIZE, dtype=np.float32)[None, :].repeat(SIZE, axis=0)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / (SIZE - 1)
    vignette = 0.95 - 0.6 * ((yy - 0.5) ** 2 + (xx - 0.5) ** 2)
    binary = Image.fromarray(paper > 127).convert("1")
    frames = [grey] + [Image.new("L", (SIZE, SIZE), 0) for _ in range(299)]
    for i, frame in enumerate(frames[2:]):  # each later frame differs from the one before by a pixel or two
        frame.putpixel((i % SIZE, i // SIZE), 128)
    turned = grey.transpose(Image.Transpose.ROTATE_90)  # stored on its side; EXIF says "rotate 270 to view"
    exif = Image.Exif()
    exif[0x0112] = 6
    looped = bytearray(_save(grey, format="TIFF"))
    first_ifd = struct.unpack("<I", looped[4:8])[0]
    count = struct.unpack("<H", looped[first_ifd:first_ifd + 2])[0]
    looped[first_ifd + 2 + 12 * count:first_ifd + 6 + 12 * count] = struct.pack("<I", first_ifd)  # next IFD = itself
    good_png = _save(grey, format="PNG")
    idat = good_png.index(b"IDAT")
    corrupt = bytearray(good_png)
    corrupt[idat + 12:idat + 40] = bytes(28)
    ztxt = _chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(b"\x00" * (16 << 20), 9))
    big_palette = _chunk(b"PLTE", bytes(range(256)) * 3 + bytes(3 * 44))  # 300 entries; PNG allows 256
    nan = unit.copy()
    nan[5, 5] = np.nan
    c = {
        REF: (good_png, "the drawn 7, 8-bit greyscale PNG, black ink on white", "ink like " + REF),
        "digit-16bit.png": (_save(Image.fromarray(wide), format="PNG"), "16-bit greyscale PNG (I;16)",
                            "ink like " + REF),
        "digit-16bit.pgm": (b"P5\n64 64\n65535\n" + wide.astype(">u2").tobytes(), "16-bit PGM (maxval 65535)",
                            "ink like " + REF),
        "digit-10bit.pgm": (b"P5\n64 64\n1023\n" + np.round(paper * (1023 / 255)).astype(">u2").tobytes(),
                            "10-bit PGM (maxval 1023): rounding may move the crop a pixel", "digit like " + REF),
        "digit-16bit-white-on-black.png": (_save(Image.fromarray(65535 - wide), format="PNG"),
                                           "16-bit PNG, white ink on black: clipping at 255 would fatten every stroke",
                                           "ink like " + REF),
        "digit-12bit-in-16bit.png": (_save(Image.fromarray(paper.astype(np.uint16) * 16), format="PNG"),
                                     "12-bit camera data in a 16-bit PNG (0..4080)", "ink like " + REF),
        "digit-float32-255.tif": (_save(Image.fromarray(unit * 255), format="TIFF"),
                                  "float32 TIFF with 0..255 values", "ink like " + REF),
        "digit-float-unit.tif": (_save(Image.fromarray(unit), format="TIFF"), "float32 TIFF in [0, 1]",
                                 "ink like " + REF),
        "digit-float-65535.tif": (_save(Image.fromarray(unit * 65535), format="TIFF"),
                                  "float32 TIFF with 0..65535 values", "ink like " + REF),
        "digit-float-signed.tif": (_save(Image.fromarray(unit * 2 - 1), format="TIFF"),
                                   "float32 TIFF normalised to [-1, 1]", "ink like " + REF),
        "digit-float.pfm": (_save(Image.fromarray(unit), format="PPM"), "portable float map (PFM)",
                            "ink like " + REF),
        "digit-int32.tif": (_save(Image.fromarray(wide.astype(np.int32)), format="TIFF"),
                            "32-bit integer TIFF (mode I) with 16-bit values", "ink like " + REF),
        "digit-cmyk.tif": (_save(grey.convert("RGB").convert("CMYK"), format="TIFF"), "CMYK TIFF",
                           "ink like " + REF),
        "digit-la.png": (_save(grey.convert("LA"), format="PNG"), "grey + opaque alpha PNG", "ink like " + REF),
        "digit-palette.png": (_save(grey.convert("P"), format="PNG"), "palette PNG", "ink like " + REF),
        "digit-palette-transparent.png": (_save(grey.convert("P"), format="PNG", transparency=255),
                                          "palette PNG, black strokes on a transparent background", "ink like " + REF),
        "digit-white-on-transparent.png": (_save(Image.fromarray(np.stack([np.full_like(paper, 255), 255 - paper],
                                                                          axis=-1)), format="PNG"),
                                           "grey+alpha PNG: white strokes on a transparent background",
                                           "ink like " + REF),
        "digit-rgb.ppm": (_save(grey.convert("RGB"), format="PPM"), "binary PPM (P6)", "ink like " + REF),
        "digit.bmp": (_save(grey, format="BMP"), "8-bit BMP", "ink like " + REF),
        "digit.gif": (_save(grey, format="GIF"), "greyscale GIF", "ink like " + REF),
        "digit.jpg": (_save(grey, format="JPEG", quality=90), "baseline JPEG", "digit like " + REF),
        "digit-progressive.jpg": (_save(grey.convert("RGB"), format="JPEG", quality=90, progressive=True),
                                  "progressive colour JPEG", "digit like " + REF),
        "digit-lossless.webp": (_save(grey.convert("RGB"), format="WEBP", lossless=True), "lossless WebP",
                                "ink like " + REF),
        "digit-dim-paper.png": (_save(Image.fromarray(np.round(115 - 90 * ink).astype(np.uint8)), format="PNG"),
                                "dark ink on dim paper (0.45): below half brightness, still paper",
                                "ink like " + REF),
        "digit-rotated-exif.png": (_save(turned, format="PNG", exif=exif), "stored on its side, EXIF orientation 6",
                                   "ink like " + REF),
        "digit-broken-exif.png": (good_png[:idat - 4] + _chunk(b"eXIf", b"MM\x00*\x00\x00\x00\x08\xff\xff")
                                  + good_png[idat - 4:], "EXIF block that claims 65535 entries",
                                  "ink like " + REF),
        "digit-tiff-ifd-loop.tif": (bytes(looped), "TIFF whose next-page pointer points at its own page",
                                    "ink like " + REF),
        "animated-300-frames.gif": (_save(frames[0], format="GIF", save_all=True, append_images=frames[1:],
                                          duration=10, loop=0),
                                    "300-frame GIF: the 7, then 299 black frames with a dot", "ink like " + REF),
        "animated-300-frames.png": (_save(frames[0], format="PNG", save_all=True, append_images=frames[1:]),
                                    "300-frame APNG: the 7, then 299 black frames with a dot", "ink like " + REF),
        "digit-big-ztxt.png": (good_png[:idat - 4] + ztxt + good_png[idat - 4:],
                               "zTXt chunk inflating to 16 MB (a text bomb before the pixels)", DAMAGED),
        REF_1BIT: (_save(binary, format="PNG"), "1-bit PNG of the 7", "ink like " + REF_1BIT),
        "digit-1bit.pbm": (_save(binary, format="PPM"), "binary PBM (P4)", "ink like " + REF_1BIT),
        "digit-1bit-plain.pbm": (b"P1\n64 64\n" + b"\n".join(b" ".join(b"1" if v else b"0" for v in row)
                                                               for row in (paper <= 127)) + b"\n",
                                 "plain-text PBM (P1)", "ink like " + REF_1BIT),
        # ---- blank: nothing to recognise
        "blank-white.png": (_save(Image.new("L", (SIZE, SIZE), 255), format="PNG"), "white page", "blank"),
        "blank-black.png": (_save(Image.new("L", (SIZE, SIZE), 0), format="PNG"), "black page", "blank"),
        "blank-transparent.png": (_save(Image.new("RGBA", (SIZE, SIZE), (0, 0, 0, 0)), format="PNG"),
                                  "fully transparent RGBA", "blank"),
        "uniform-grey.jpg": (_save(Image.new("L", (SIZE, SIZE), 140), format="JPEG"), "uniform grey JPEG", "blank"),
        "uniform-red.png": (_save(Image.new("RGB", (SIZE, SIZE), (200, 30, 30)), format="PNG"), "uniform red",
                            "blank"),
        "uniform-cmyk.jpg": (_save(Image.new("CMYK", (SIZE, SIZE), (10, 200, 30, 5)), format="JPEG"),
                             "uniform CMYK JPEG", "blank"),
        "uniform-16bit.png": (_save(Image.fromarray(np.full((SIZE, SIZE), 30000, np.uint16)), format="PNG"),
                              "uniform 16-bit grey", "blank"),
        "uniform-float.tif": (_save(Image.fromarray(np.full((SIZE, SIZE), 0.7, np.float32)), format="TIFF"),
                              "uniform float TIFF", "blank"),
        "uniform-palette.gif": (_save(Image.new("P", (SIZE, SIZE), 3), format="GIF"), "uniform palette GIF",
                                "blank"),
        "uniform-la.png": (_save(Image.new("LA", (SIZE, SIZE), (90, 255)), format="PNG"), "uniform grey + alpha",
                           "blank"),
        "blank-1bit.pbm": (_save(Image.new("1", (SIZE, SIZE), 1), format="PPM"), "white 1-bit PBM", "blank"),
        "near-uniform-noise.png": (_save(Image.fromarray((128 + noise.integers(-10, 11, (SIZE, SIZE))).astype(
            np.uint8)), format="PNG"), "grey ±10 levels of noise", "blank"),
        "near-uniform-float.tif": (_save(Image.fromarray((0.5 + noise.uniform(-0.04, 0.04, (SIZE, SIZE))).astype(
            np.float32)), format="TIFF"), "float grey ±0.04 of noise", "blank"),
        "gradient-horizontal.png": (_save(Image.fromarray(np.round(ramp * 255).astype(np.uint8)), format="PNG"),
                                    "smooth left-to-right gradient 0.2..0.8", "blank"),
        "gradient-diagonal-16bit.png": (_save(Image.fromarray(np.round((ramp + ramp.T) * 30000).astype(np.uint16)),
                                              format="PNG"),
                                        "smooth diagonal gradient, 16-bit", "blank"),
        "vignette.jpg": (_save(Image.fromarray(np.round(vignette * 255).astype(np.uint8)), format="JPEG",
                               quality=90), "paper lit in the middle, darker corners (JPEG)", "blank"),
        "zeros-62mp.png": (_zeros_png(7900), "7900×7900 black 1-bit PNG (62 MP, just under the cap) of ~8 KB",
                           "blank"),
        # ---- refused: never handed to Ghostscript or decoded past the limits
        "postscript-named.png": (POSTSCRIPT_WRITER, "EPS that writes a marker file, named .png", POSTSCRIPT),
        "postscript-named.jpg": (POSTSCRIPT_WRITER, "EPS that writes a marker file, named .jpg", POSTSCRIPT),
        "postscript.eps": (POSTSCRIPT_WRITER, "EPS that writes a marker file", POSTSCRIPT),
        "postscript-loop.png": (LOOP, "EPS running `{ } loop` forever, named .png", POSTSCRIPT),
        "binary-eps.tif": (b"\xc5\xd0\xd3\xc6" + struct.pack("<IIIIII", 30, len(LOOP), 0, 0, 0, 0) + b"\xff\xff"
                           + LOOP, "DOS binary EPS wrapping the loop, named .tif", POSTSCRIPT),
        "document.pdf": (b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n",
                         "a PDF document", "refused: PDF"),
        "drawing-named.png": (b'<svg xmlns="http://www.w3.org/2000/svg" width="28" height="28">'
                              b'<path d="M4 4 H24 L12 26" stroke="black"/></svg>\n', "SVG named .png",
                              "refused: SVG"),
        "xml-named.png": (b'<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY a "aaaa">]>\n<x>&a;</x>\n',
                          "XML with an entity, named .png", "refused: XML"),
        "header-bomb-13000-rgba.png": (_png(13000, 13000, 8, 6, b""), "PNG header declaring 13000×13000 RGBA "
                                       "(676 MB decoded; Pillow only warns)", BOMB),
        "header-bomb-65535.gif": (_gif_header(65535, 65535), "GIF declaring 65535×65535", BOMB),
        "header-bomb.bmp": (_bmp_header(30000, 30000), "BMP header declaring 30000×30000 RGB", BOMB),
        "header-bomb.tif": (_tiff(50000, 50000), "TIFF header declaring 50000×50000", BOMB),
        "header-bomb.jpg": (_jpeg_header(60000, 60000), "JPEG SOF declaring 60000×60000", BOMB),
        "header-bomb.pgm": (b"P5\n100000 100000\n255\n" + bytes(64), "PGM header declaring 100000×100000", BOMB),
        "header-bomb.webp": (_webp_header(16383, 16383), "lossless WebP header declaring 16383×16383", BOMB),
        "zeros-bomb-12000.png": (_zeros_png(12000), "12000×12000 1-bit zeros (144 MP) in ~18 KB", BOMB),
        "zeros-bomb-20000.png": (_zeros_png(20000), "20000×20000 1-bit zeros (400 MP, past Pillow's own error)",
                                 BOMB),
        "slow-plain.pgm": (b"P2\n3000 3000\n255\n" + b"0 " * 64, "plain-text PGM declaring 9 MP "
                           "(Pillow decodes it in Python)", "refused: save it as PNG"),
        "slow-maxval.pgm": (b"P5\n3000 3000\n1000\n" + bytes(64), "PGM with maxval 1000 declaring 9 MP",
                            "refused: save it as PNG"),
        "many-scans.jpg": (_many_scans(2000, 1000), "progressive JPEG with 1,006 scans of 4 MP "
                           "(~7 s of decoding in 30 KB)", "refused: too slow to decode"),
        "truncated.png": (good_png[:idat + 40], "PNG cut inside its pixel data", DAMAGED),
        "truncated.jpg": (_save(grey, format="JPEG")[:300], "JPEG cut after 300 bytes", DAMAGED),
        "truncated.gif": (_save(grey, format="GIF")[:200], "GIF cut after 200 bytes", DAMAGED),
        "truncated.tif": (_save(grey, format="TIFF")[:1000], "TIFF cut inside its pixel data", DAMAGED),
        "truncated.webp": (_save(grey.convert("RGB"), format="WEBP", lossless=True)[:60], "WebP cut after 60 bytes",
                           DAMAGED),
        "corrupt-pixels.png": (bytes(corrupt), "PNG whose compressed pixels are zeroed", DAMAGED),
        "oversized-palette.png": (_png(SIZE, SIZE, 8, 3, bytes(SIZE * (SIZE + 1)), big_palette),
                                  "palette PNG with a 300-entry PLTE", DAMAGED),
        "float-nan.tif": (_save(Image.fromarray(nan), format="TIFF"), "float TIFF with a NaN pixel",
                          "refused: NaN"),
        "empty.png": (b"", "an empty file", "refused: empty"),
        "random-bytes.png": (noise.bytes(4096), "4 KB of random bytes named .png", FOREIGN),
        "png-signature-only.png": (b"\x89PNG\r\n\x1a\n" + noise.bytes(100), "PNG signature then garbage", DAMAGED),
        "icon.ico": (_save(grey, format="ICO"), "a Windows icon (Pillow reads it; DigitLab does not)", FOREIGN),
    }
    return {name: (data, what, expect) for name, (data, what, expect) in c.items()}


def write(folder: Path = HERE) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {}
    for name, (data, what, expect) in cases().items():
        (folder / name).write_bytes(data)
        manifest[name] = {"what": what, "expect": expect}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    write(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
