"""engine.data.images.load_image on hostile and unusual pictures: no Ghostscript, no bombs, no silent wrong answers."""
from __future__ import annotations

import gzip
import json
import os
import struct
import subprocess
import sys
import textwrap
import threading
import time
import types
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import GifImagePlugin, Image, ImageFile, ImageOps, PngImagePlugin

from engine.data import images
from engine.data.images import ImageError, load_image, to_ink
from engine.data.preprocess import is_blank, looks_like_digit, mnist_preprocess
from engine.errors import DigitLabError

ROOT = Path(__file__).resolve().parents[3]
CORPUS = Path(__file__).resolve().parent / "hostile_images"
NOT_CASES = {"MANIFEST.json", "make_hostile_images.py"}
MANIFEST = json.loads((CORPUS / "MANIFEST.json").read_text(encoding="utf-8"))
SHARED_MNIST = ROOT.parent / "shared" / "datasets" / "mnist" / "t10k-images-idx3-ubyte.gz"
POSTSCRIPT_CASES = sorted(n for n, case in MANIFEST.items() if case["expect"] == "refused: PostScript")


def _generator() -> types.ModuleType:
    """The corpus generator, a script inside the corpus folder (run from source: no __pycache__ there)."""
    path = CORPUS / "make_hostile_images.py"
    module = types.ModuleType("make_hostile_images")
    module.__file__ = str(path)
    exec(compile(path.read_text(encoding="utf-8"), path, "exec"), module.__dict__)  # noqa: S102 - our own script
    return module


def _mnist_digits(count: int) -> np.ndarray:
    """The first ``count`` real MNIST test digits (white on black, [0, 1], the first is a 7); else the drawn 7."""
    if not SHARED_MNIST.is_file():
        return _generator().drawn_seven()[None]
    with gzip.open(SHARED_MNIST) as f:
        raw = f.read(16 + 784 * count)
    return np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 28, 28).astype(np.float32) / 255


def _refusal(path) -> str:
    with pytest.raises(ImageError) as info:
        load_image(path)
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def _same_digit(a: np.ndarray, b: np.ndarray) -> bool:
    """The same drawing: a one-pixel shift of the crop (10-bit rounding can cause it) still correlates > 0.9."""
    return not is_blank(a) and float(np.corrcoef(a.ravel(), b.ravel())[0, 1]) > 0.9


# ----------------------------------------------------------------------------- the corpus

def test_corpus_is_complete_small_and_current(tmp_path):
    files = sorted(p.name for p in CORPUS.iterdir() if p.name not in NOT_CASES)
    assert files == sorted(MANIFEST) and len(files) >= 60
    assert all((CORPUS / n).stat().st_size <= 256 * 1024 for n in files)
    _generator().write(tmp_path)
    for name in files:
        assert (tmp_path / name).read_bytes() == (CORPUS / name).read_bytes(), f"{name} is stale: regenerate"
    assert json.loads((tmp_path / "MANIFEST.json").read_text(encoding="utf-8")) == MANIFEST
    kinds = {case["expect"].split(" ")[0] for case in MANIFEST.values()}
    assert kinds == {"refused:", "ink", "digit", "blank"}


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_corpus_case_gives_its_expected_outcome(name):
    expect = MANIFEST[name]["expect"]
    if expect.startswith("refused: "):
        message = _refusal(CORPUS / name)
        assert expect.removeprefix("refused: ") in message
        assert name in message
        return
    out = load_image(CORPUS / name)
    assert out.shape == (28, 28) and out.dtype == np.float32
    if expect == "blank":
        assert np.all(out == 0) and is_blank(out)
        assert looks_like_digit(None, out) == (False, "Draw a digit")
    elif expect.startswith("ink like "):
        np.testing.assert_allclose(out, load_image(CORPUS / expect.removeprefix("ink like ")), atol=0.02)
        assert not is_blank(out)
    else:
        reference = expect.removeprefix("digit like ")
        assert _same_digit(out, load_image(CORPUS / reference)), f"{name} does not read like {reference}"


# ----------------------------------------------------------------------------- Ghostscript and the allow-list

def test_postscript_never_reaches_ghostscript(tmp_path):
    """A fake `gs` first on PATH records any call; plain Pillow calls it, load_image never does."""
    bin_dir, marks = tmp_path / "bin", tmp_path / "marks"
    bin_dir.mkdir()
    marks.mkdir()
    gs = bin_dir / "gs"
    gs.write_text(f"#!/bin/sh\ntouch {marks}/gs-ran-$$\nexit 1\n")
    gs.chmod(0o755)
    script = textwrap.dedent("""
        import json, sys
        from PIL import Image
        from engine.data.images import ImageError, load_image
        results = {}
        for path in sys.argv[2:]:
            try:
                load_image(path)
                results[path] = "loaded"
            except ImageError as exc:
                results[path] = str(exc)
        try:  # the control: what Pillow does with the same file when nobody restricts the formats
            Image.open(sys.argv[1]).load()
        except Exception:
            pass
        print(json.dumps(results))
    """)
    paths = [str(CORPUS / n) for n in POSTSCRIPT_CASES]
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    out = subprocess.run([sys.executable, "-c", script, paths[0], *paths], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    results = json.loads(out.stdout)
    assert len(results) == len(POSTSCRIPT_CASES) >= 4
    assert all("PostScript" in message and "Ghostscript" in message for message in results.values())
    assert len(list(marks.iterdir())) == 1, "only the unrestricted Pillow control may start Ghostscript"


def test_images_are_opened_with_the_raster_allow_list_only(monkeypatch):
    calls = []
    real_open = Image.open

    def spy(fp, mode="r", formats=None):
        calls.append(formats)
        return real_open(fp, mode, formats)

    monkeypatch.setattr(Image, "open", spy)
    load_image(CORPUS / "digit-8bit.png")
    assert calls == [["PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP", "PPM"]]
    assert not {"EPS", "PS", "PDF", "SVG"} & set(calls[0])


# ----------------------------------------------------------------------------- size limits and bombs

def _png_header(width: int, height: int) -> bytes:
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def test_too_many_pixels_are_refused_from_the_header_before_decoding(tmp_path, monkeypatch):
    decoded = []
    real_load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: decoded.append(self.size) or real_load(self))
    (tmp_path / "over.png").write_bytes(_png_header(8001, 8000))  # just over 64 MP
    (tmp_path / "at.png").write_bytes(_png_header(8000, 8000))  # exactly 64 MP: allowed, then found empty
    for name in ("over.png", "header-bomb-13000-rgba.png", "zeros-bomb-12000.png", "zeros-bomb-20000.png"):
        folder = tmp_path if name == "over.png" else CORPUS
        assert "up to 64 megapixels" in _refusal(folder / name)
    assert decoded == []
    assert "damaged or cut short" in _refusal(tmp_path / "at.png")
    assert decoded == [(8000, 8000)]


def test_bombs_are_refused_within_a_memory_cap():
    """Under a 700 MB address-space cap: the 13000² RGBA header (676 MB if decoded) is refused by size,
    and the largest allowed picture (62 MP of 1-bit zeros, ~150 MB to decode) still loads."""
    script = textwrap.dedent("""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (700 * 2**20, 700 * 2**20))
        from engine.data.images import ImageError, load_image
        try:
            load_image(sys.argv[1])
        except ImageError as exc:
            print(exc)
        print("blank" if not load_image(sys.argv[2]).any() else "ink")
    """)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", script, str(CORPUS / "header-bomb-13000-rgba.png"),
                          str(CORPUS / "zeros-62mp.png")], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    refusal, verdict = out.stdout.splitlines()  # the address-space cap is the memory bound (RSS varies with THP)
    assert "up to 64 megapixels" in refusal and verdict == "blank"


def test_files_too_big_or_not_regular_are_refused_without_reading(tmp_path):
    huge = tmp_path / "huge.png"
    with huge.open("wb") as f:
        f.truncate(images.MAX_FILE_BYTES + 1)  # sparse: no disk used
    assert "DigitLab opens image files of up to" in _refusal(huge)
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    started = time.monotonic()
    assert "not a regular file" in _refusal(fifo)  # opening a FIFO for reading would wait for a writer forever
    assert time.monotonic() - started < 5
    assert "not a regular file" in _refusal("/dev/zero")
    loop = tmp_path / "loop.png"
    loop.symlink_to(tmp_path / "loop2.png")
    (tmp_path / "loop2.png").symlink_to(loop)
    assert "loop.png" in _refusal(loop)
    assert "folder" in _refusal(tmp_path)
    assert "missing.png: no such file" in _refusal(tmp_path / "missing.png")


def test_slow_python_decoders_are_capped_lower(tmp_path):
    path = tmp_path / "big-plain.pbm"
    path.write_bytes(b"P1\n2001 2000\n" + b"0" * 64)  # just over 4 MP of text: Pillow decodes it in Python
    assert "save it as PNG" in _refusal(path)


@pytest.mark.parametrize("error", [struct.error("bad"), zlib.error("bad"), EOFError(), IndexError("i"),
                                   KeyError("k"), OverflowError("o"), MemoryError(), RecursionError("r"),
                                   SyntaxError("s"), ValueError("v"), OSError("o"), TypeError("t")])
def test_any_decoder_failure_is_one_image_error(monkeypatch, error):
    def fail(self):
        raise error
    monkeypatch.setattr(ImageFile.ImageFile, "load", fail)
    message = _refusal(CORPUS / "digit-8bit.png")
    assert "digit-8bit.png" in message


def test_image_error_is_a_digitlab_error():
    assert issubclass(ImageError, DigitLabError) and issubclass(ImageError, ValueError)


def test_file_names_with_control_characters_are_escaped(tmp_path):
    path = tmp_path / "evil\x1b[31m.png"
    path.write_bytes(b"not a picture")
    message = _refusal(path)
    assert "\x1b" not in message and "\\x1b[31m.png" in message


def test_warnings_from_files_are_kept_inside(recwarn):
    filters = list(warnings.filters)
    _refusal(CORPUS / "header-bomb-13000-rgba.png")  # Pillow warns about it as a possible bomb
    load_image(CORPUS / "digit-broken-exif.png")
    assert len(recwarn) == 0 and warnings.filters == filters


def test_pictures_read_in_several_threads_leave_the_warning_filters_alone():
    filters = list(warnings.filters)
    names = ["digit-broken-exif.png", "header-bomb-13000-rgba.png", "digit-16bit.png", "uniform-cmyk.jpg"] * 8
    results = []

    def read(name):
        try:
            results.append(load_image(CORPUS / name).shape)
        except ImageError:
            results.append("refused")

    threads = [threading.Thread(target=read, args=(n,)) for n in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(map(str, results)) == sorted(["(28, 28)"] * 24 + ["refused"] * 8)
    assert warnings.filters == filters


# ----------------------------------------------------------------------------- frames and orientation

def test_only_the_first_frame_is_decoded(monkeypatch):
    seeks = []
    for cls in (GifImagePlugin.GifImageFile, PngImagePlugin.PngImageFile):
        real = cls.seek
        monkeypatch.setattr(cls, "seek", lambda self, frame, real=real: seeks.append(frame) or real(self, frame))
    reference = load_image(CORPUS / "digit-8bit.png")
    for name in ("animated-300-frames.gif", "animated-300-frames.png"):
        np.testing.assert_allclose(load_image(CORPUS / name), reference, atol=1e-6)
    assert [f for f in seeks if f != 0] == []


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_like_pillow(tmp_path, orientation):
    ink = np.zeros((60, 40), np.float32)
    ink[10:16, 8:32] = 1.0  # an asymmetric "7": bar on top, stem down the right
    ink[16:50, 26:32] = 1.0
    picture = Image.fromarray(np.round(255 * (1 - ink)).astype(np.uint8))
    exif = Image.Exif()
    exif[0x0112] = orientation
    picture.save(tmp_path / "turned.png", exif=exif)
    with Image.open(tmp_path / "turned.png") as saved:
        upright = np.asarray(ImageOps.exif_transpose(saved), np.float32) / 255
    np.testing.assert_allclose(load_image(tmp_path / "turned.png"), mnist_preprocess(to_ink(upright)), atol=1e-6)


# ----------------------------------------------------------------------------- silent wrong answers (class 7)

def _variants(tmp_path: Path, paper: np.ndarray) -> dict[str, Path]:
    """One picture of black ink on white ``paper`` (uint8) in the bit depths and number types people send."""
    wide = paper.astype(np.uint16) * 257
    unit = paper.astype(np.float32) / 255
    h, w = paper.shape
    files = {
        "8bit.png": Image.fromarray(paper), "16bit.png": Image.fromarray(wide),
        "float-255.tif": Image.fromarray(unit * 255), "float-unit.tif": Image.fromarray(unit),
        "float-65535.tif": Image.fromarray(unit * 65535),
    }
    for name, picture in files.items():
        picture.save(tmp_path / name)
    (tmp_path / "16bit.pgm").write_bytes(b"P5\n%d %d\n65535\n" % (w, h) + wide.astype(">u2").tobytes())
    return {name: tmp_path / name for name in [*files, "16bit.pgm"]}


def test_16bit_and_float_digits_read_as_the_8bit_digit(tmp_path):
    digit = _mnist_digits(1)[0]  # MNIST test digit 0 is a 7
    paper = np.round(255 * (1 - digit)).astype(np.uint8)
    paths = _variants(tmp_path, paper)
    reference = load_image(paths["8bit.png"])
    assert _same_digit(reference, mnist_preprocess(digit))
    for name, path in paths.items():
        np.testing.assert_allclose(load_image(path), reference, atol=1e-3, err_msg=name)
    # what Pillow's own 8-bit conversion makes of the 16-bit file: everything above 255 clips to white
    with Image.open(paths["16bit.png"]) as wide:
        clipped = np.asarray(wide.convert("L"), np.float32) / 255
    assert np.abs(mnist_preprocess(to_ink(clipped)) - reference).max() > 0.25


def test_dim_and_12bit_pictures_keep_their_ink(tmp_path):
    digit = _mnist_digits(1)[0]
    reference = mnist_preprocess(digit)
    Image.fromarray(np.round(110 - 90 * digit).astype(np.uint8)).save(tmp_path / "dim.png")  # paper below 0.5
    Image.fromarray((np.round(4095 * (1 - digit))).astype(np.uint16)).save(tmp_path / "12bit.png")
    for name in ("dim.png", "12bit.png"):
        assert _same_digit(load_image(tmp_path / name), reference), name


@pytest.mark.parametrize("mode, colour", [
    ("1", 0), ("1", 1), ("L", 0), ("L", 255), ("L", 97), ("LA", (30, 255)), ("LA", (200, 0)), ("P", 7),
    ("RGB", (255, 255, 255)), ("RGB", (12, 180, 40)), ("RGBA", (255, 0, 0, 128)), ("CMYK", (0, 0, 0, 255)),
    ("I;16", 0), ("I;16", 65535), ("I;16", 1234), ("I", 70000), ("F", 0.25), ("F", 1e6), ("F", -3.5),
])
def test_uniform_pictures_have_no_digit(tmp_path, mode, colour):
    path = tmp_path / ("plain.tif" if mode in ("CMYK", "I", "F") else "plain.png")
    Image.new(mode, (40, 30), colour).save(path)
    out = load_image(path)
    assert np.all(out == 0) and is_blank(out)


@pytest.mark.parametrize("side", [28, 200, 900])
def test_near_uniform_noise_and_smooth_gradients_have_no_digit(tmp_path, side):
    rng = np.random.default_rng(side)
    yy, xx = np.mgrid[0:side, 0:side] / (side - 1)
    pictures = {
        "noise": 0.6 + rng.uniform(-0.045, 0.045, (side, side)),
        "ramp": 0.1 + 0.8 * xx, "ramp-down": 0.9 - 0.7 * yy, "diagonal": 0.2 + 0.35 * (xx + yy),
        "vignette": 0.95 - 0.8 * ((xx - 0.5) ** 2 + (yy - 0.5) ** 2), "spotlight": 0.2 + 0.7 * np.exp(
            -((xx - 0.4) ** 2 + (yy - 0.6) ** 2) * 4),
    }
    for name, grey in pictures.items():
        Image.fromarray(np.round(255 * grey).astype(np.uint8)).save(tmp_path / f"{name}.png")
        assert is_blank(load_image(tmp_path / f"{name}.png")), name


def test_real_and_faint_digits_are_not_taken_for_blank(tmp_path):
    digits = _mnist_digits(2000)
    assert all(to_ink(d).any() for d in digits)  # the stroke rule keeps every real digit
    faint = np.round(200 - 55 * digits[0]).astype(np.uint8)  # pencil on grey paper: a fifth of the range
    Image.fromarray(faint).save(tmp_path / "faint.png")
    assert _same_digit(load_image(tmp_path / "faint.png"), mnist_preprocess(digits[0]))
    blurred = Image.fromarray(np.round(255 * digits[0]).astype(np.uint8)).resize((560, 560), Image.BICUBIC)
    blurred.save(tmp_path / "big.png")
    assert _same_digit(load_image(tmp_path / "big.png"), mnist_preprocess(digits[0]))


def test_damaged_copies_of_every_case_only_ever_raise_image_errors(tmp_path):
    """Each corpus file cut short and with bytes flipped: a 28×28 image or one ImageError, nothing else."""
    rng = np.random.default_rng(11)
    outcomes = set()
    for name in sorted(MANIFEST):
        data = (CORPUS / name).read_bytes()
        if not data:
            continue
        flipped = bytearray(data)
        for at in rng.integers(0, len(data), 4):
            flipped[at] ^= 0xFF
        for i, mutant in enumerate((data[:len(data) // 3], data[:-7], bytes(flipped))):
            path = tmp_path / f"{i}-{name}"
            path.write_bytes(mutant)
            try:
                out = load_image(path)
            except ImageError as exc:
                assert "\n" not in str(exc) and path.name in str(exc)
                outcomes.add("refused")
            else:
                assert out.shape == (28, 28) and np.all((out >= 0) & (out <= 1))
                outcomes.add("loaded")
    assert outcomes == {"refused", "loaded"}
