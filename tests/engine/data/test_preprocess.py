"""MNIST-style preprocessing of drawings and image files."""
import gzip
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from engine.data.images import ImageError, load_image, to_ink
from engine.data.preprocess import (
    PreprocessError,
    is_blank,
    looks_like_digit,
    mnist_preprocess,
    resize_image,
)


def centre_of_mass(img):
    idx = np.arange(img.shape[0])
    mass = img.sum()
    return float(idx @ img.sum(axis=1) / mass), float(idx @ img.sum(axis=0) / mass)


def bounds(img, level=0.05):
    rows = np.flatnonzero(np.any(img > level, axis=1))
    cols = np.flatnonzero(np.any(img > level, axis=0))
    return rows[0], rows[-1] + 1, cols[0], cols[-1] + 1


def drawn_seven(size=280, top=20, left=190, height=60, width=30):
    """A small '7' near the top right corner of a big canvas, 2:1 tall."""
    img = np.zeros((size, size), dtype=np.float32)
    img[top:top + 6, left:left + width] = 1.0  # the bar
    for r in range(height):
        c = left + width - 3 - int(r * (width - 6) / height)
        img[top + r, c:c + 5] = 1.0  # the diagonal
    return img


def test_off_centre_digit_is_centred_by_mass_and_fits_20x20_keeping_aspect():
    img = drawn_seven()
    out = mnist_preprocess(img)
    assert out.shape == (28, 28) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() == pytest.approx(1.0)
    top, bottom, left, right = bounds(out)
    h, w = bottom - top, right - left
    assert max(h, w) <= 20 and h >= 19  # the longer side (height) becomes 20
    assert w / h == pytest.approx(30 / 60, abs=0.1)
    cy, cx = centre_of_mass(out)
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5


def test_position_of_the_drawing_does_not_matter():
    a = mnist_preprocess(drawn_seven(top=20, left=190))
    b = mnist_preprocess(drawn_seven(top=150, left=30))
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_blank_gives_zeros_without_nan():
    for img in (np.zeros((280, 280)), np.full((50, 40), 0.01), np.zeros((1, 1))):
        out = mnist_preprocess(img)
        assert out.shape == (28, 28) and np.all(out == 0)


def test_thin_line_stays_inside_the_frame():
    img = np.zeros((100, 100), dtype=np.float32)
    img[10:90, 50] = 1.0  # a 1-pixel wide vertical line: extreme aspect ratio
    out = mnist_preprocess(img)
    top, bottom, left, right = bounds(out)
    assert 0 <= top and bottom <= 28 and 0 <= left and right <= 28
    assert bottom - top == 20 and right - left == 1
    assert abs(centre_of_mass(out)[1] - 14) <= 0.5


def test_real_mnist_digits_come_back_unchanged(shared_mnist_dir):
    """Real MNIST digits are already framed this way, so preprocessing them again changes almost nothing."""
    with gzip.open(shared_mnist_dir / "t10k-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)[:500].astype(np.float32) / 255
    out = np.stack([mnist_preprocess(img) for img in x])
    assert np.mean(np.abs(out - x).max(axis=(1, 2)) < 0.2) > 0.99
    assert np.abs(out - x).mean() < 0.002


def test_fast_for_a_280x280_canvas():
    img = drawn_seven()
    mnist_preprocess(img)
    times = []
    for _ in range(30):
        start = time.perf_counter()
        mnist_preprocess(img)
        times.append(time.perf_counter() - start)
    assert np.median(times) < 0.002


@settings(max_examples=60, deadline=None)
@given(arrays(np.float32, st.tuples(st.integers(1, 60), st.integers(1, 60)), elements=st.floats(0, 1, width=32)))
def test_any_image_gives_a_valid_frame(img):
    out = mnist_preprocess(img)
    assert out.shape == (28, 28)
    assert np.all(np.isfinite(out)) and out.min() >= 0 and out.max() <= 1
    if out.max() > 0:
        top, bottom, left, right = bounds(out, level=0)
        assert max(bottom - top, right - left) <= 20


@pytest.mark.parametrize(
    "bad, words",
    [
        (np.zeros((3, 28, 28)), "2-D"),
        (np.zeros((0, 5)), "empty"),
        (np.array([[np.nan, 1.0]]), "NaN"),
        (np.array([["a", "b"]]), "dtype"),
    ],
)
def test_bad_input_is_a_clear_error(bad, words):
    with pytest.raises(PreprocessError, match=words) as info:
        mnist_preprocess(bad)
    assert isinstance(info.value, ValueError)
    assert "mnist_preprocess" in str(info.value)


def test_resize_area_averages_when_shrinking_and_keeps_constants():
    rng = np.random.default_rng(0)
    img = rng.random((280, 280)).astype(np.float32)
    small = resize_image(img, 28, 28)
    # with an exact factor of 10 every output pixel is close to the mean of its 10x10 block
    blocks = img.reshape(28, 10, 28, 10).mean(axis=(1, 3))
    np.testing.assert_allclose(small.mean(), img.mean(), atol=1e-3)
    assert np.abs(small - blocks).max() < 0.1
    np.testing.assert_allclose(resize_image(np.full((7, 13), 0.3), 50, 3), 0.3, atol=1e-6)
    with pytest.raises(PreprocessError, match="at least 1"):
        resize_image(img, 0, 5)


def test_is_blank():
    img = np.zeros((280, 280))
    assert is_blank(img)
    img[100, 100] = 0.05
    assert is_blank(img)
    img[100, 100] = 0.8
    assert not is_blank(img)
    assert is_blank(img, threshold=0.9)


def test_looks_like_digit():
    digit = mnist_preprocess(drawn_seven())
    confident = np.eye(10)[7] * 0.9 + 0.01
    assert looks_like_digit(confident, digit) == (True, "")
    ok, reason = looks_like_digit(np.full(10, 0.1), digit)
    assert not ok and "does not look like" in reason
    assert looks_like_digit(confident, np.zeros((28, 28))) == (False, "Draw a digit")
    blob = np.zeros((280, 280))
    blob[40:240, 40:240] = 1.0
    ok, reason = looks_like_digit(confident, blob)  # any size is preprocessed first
    assert not ok and "blob" in reason
    dot = np.zeros((28, 28))
    dot[14, 14] = 1.0
    ok, reason = looks_like_digit(confident, dot)
    assert not ok and "little ink" in reason
    with pytest.raises(PreprocessError, match="finite"):
        looks_like_digit(np.array([np.nan] * 10), digit)


def test_looks_like_digit_accepts_real_mnist(shared_mnist_dir):
    with gzip.open(shared_mnist_dir / "t10k-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28).astype(np.float32) / 255
    confident = np.eye(10)[0]
    accepted = [looks_like_digit(confident, img)[0] for img in x[::10]]
    assert all(accepted)


# ----- image files -----

def save_grey(path, ink_on_paper: np.ndarray, mode="L"):
    Image.fromarray((ink_on_paper * 255).astype(np.uint8), "L").convert(mode).save(path)


def test_load_image_inverts_black_on_white(tmp_path):
    seven = drawn_seven(size=280)
    save_grey(tmp_path / "paper.png", 1.0 - seven)  # black digit on white paper
    save_grey(tmp_path / "screen.png", seven)  # white digit on black
    paper = load_image(tmp_path / "paper.png")
    screen = load_image(tmp_path / "screen.png")
    assert paper.shape == (28, 28) and paper.dtype == np.float32
    assert paper[0, 0] == 0.0 and paper.max() == pytest.approx(1.0)
    np.testing.assert_allclose(paper, screen, atol=0.02)
    np.testing.assert_allclose(paper, mnist_preprocess(seven), atol=0.02)


def test_load_image_grey_paper_jpeg_and_rgb(tmp_path):
    seven = drawn_seven(size=200, top=10, left=100)
    photo = 0.85 - 0.7 * seven  # grey paper, dark grey ink
    path = tmp_path / "photo.jpg"
    save_grey(path, photo, mode="RGB")
    out = load_image(path)
    cy, cx = centre_of_mass(out)
    assert abs(cy - 14) < 1 and abs(cx - 14) < 1
    assert out[:3].max() < 0.1  # the paper became background
    assert np.corrcoef(out.ravel(), mnist_preprocess(seven).ravel())[0, 1] > 0.9


def test_load_image_transparent_background(tmp_path):
    seven = drawn_seven(size=100, top=10, left=50)
    rgba = np.zeros((100, 100, 4), dtype=np.uint8)  # black strokes on a transparent background
    rgba[..., 3] = (seven * 255).astype(np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "clear.png")
    out = load_image(tmp_path / "clear.png")
    np.testing.assert_allclose(out, mnist_preprocess(seven), atol=0.02)


def test_to_ink_of_a_plain_picture_is_blank():
    assert np.all(to_ink(np.full((10, 10), 0.9)) == 0)


def test_unreadable_files_are_image_errors(tmp_path):
    junk = tmp_path / "notes.png"
    junk.write_text("not an image")
    with pytest.raises(ImageError, match="notes.png"):
        load_image(junk)
    with pytest.raises(ImageError, match="missing.png: no such file"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(ImageError, match="folder"):
        load_image(tmp_path)
    truncated = tmp_path / "cut.png"
    save_grey(truncated, drawn_seven(size=100, top=10, left=50))
    truncated.write_bytes(truncated.read_bytes()[:60])
    with pytest.raises(ImageError, match="cut.png"):
        load_image(truncated)
