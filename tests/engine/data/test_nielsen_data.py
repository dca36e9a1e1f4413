"""Nielsen's mnist.pkl.gz (decompressed): a Python 2 pickle of (training, validation, test) (images, labels) pairs."""
from __future__ import annotations

import gzip
import importlib.util
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.data.idx import pixels_to_float
from engine.data.nielsen_data import looks_like_nielsen_dataset, read_nielsen_dataset
from engine.errors import DatasetError

REPO = Path(__file__).resolve().parents[3]


def _fixtures():
    path = REPO / "tests" / "engine" / "weightfiles" / "nielsen_fixtures.py"
    spec = importlib.util.spec_from_file_location("nielsen_fixtures", path)
    module = importlib.util.module_from_spec(spec)  # a script in the weight files' tests, not a package
    spec.loader.exec_module(module)
    return module


FIXTURES = _fixtures()
dataset_pickle, network_pickle = FIXTURES.dataset_pickle, FIXTURES.network_pickle
SHARED = list(dict.fromkeys([Path("/work/shared/datasets"), (REPO.parent / "shared" / "datasets").resolve()]))


def part(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images as in mnist.pkl.gz: float32 (n, 784), multiples of 1/256 in [0, 1); int64 labels."""
    rng = np.random.default_rng(seed)
    images = (rng.integers(0, 256, (n, 784)) / 256).astype(np.float32)
    return images, rng.integers(0, 10, n).astype(np.int64)


TRAIN, VALID, TEST = part(30, 1), part(10, 2), part(10, 3)


def test_the_three_part_file_reads_back_exactly_with_validation_joined_to_training():
    data = dataset_pickle((TRAIN, VALID, TEST))
    assert data[:2] == b"\x80\x02" and b"cnumpy.core.multiarray\n_reconstruct\n" in data  # as cPickle wrote it
    assert b"numpy._core" not in data and looks_like_nielsen_dataset(data)
    ds = read_nielsen_dataset(data, "mnist.pkl.gz")
    np.testing.assert_array_equal(ds.x_train, np.concatenate([TRAIN[0], VALID[0]]))
    np.testing.assert_array_equal(ds.t_train, np.concatenate([TRAIN[1], VALID[1]]))
    np.testing.assert_array_equal(ds.x_test, TEST[0])
    np.testing.assert_array_equal(ds.t_test, TEST[1])
    for x, t in ((ds.x_train, ds.t_train), (ds.x_test, ds.t_test)):
        assert x.dtype == np.float32 and x.flags.c_contiguous and x.shape[1] == 784 and t.dtype == np.int64
    assert ds.name == "nielsen-mnist"
    assert ds.source == ("mnist.pkl.gz (Nielsen's mnist.pkl.gz: 30 training + 10 validation used for training, "
                         "10 test)")


def test_the_fixture_is_what_pythons_own_unpickler_reads_as_python3_users_load_mnist_pkl_gz():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # numpy 2 still resolves numpy.core.*, with a warning
        loaded = pickle.loads(dataset_pickle((TRAIN, VALID, TEST)), encoding="latin1")
    for (x, t), (x0, t0) in zip(loaded, (TRAIN, VALID, TEST)):
        np.testing.assert_array_equal(x, x0)
        np.testing.assert_array_equal(t, t0)
        assert x.dtype == np.float32 and t.dtype == np.int64


def test_variants_two_parts_uint8_square_images_and_one_hot_labels():
    images8 = np.random.default_rng(4).integers(0, 256, (12, 28, 28)).astype(np.uint8)
    one_hot = np.eye(10)[TEST[1]]  # float64 rows with a single 1
    ds = read_nielsen_dataset(dataset_pickle(((images8, TRAIN[1][:12]), (TEST[0], one_hot))), "two.pkl", name="mine")
    np.testing.assert_array_equal(ds.x_train, pixels_to_float(images8))  # the IDX reader's scaling exactly
    np.testing.assert_array_equal(ds.t_test, TEST[1])
    assert ds.name == "mine" and ds.source == "two.pkl (a Nielsen-style pickle: 12 training, 10 test)"
    float64 = read_nielsen_dataset(dataset_pickle(((TRAIN[0].astype(np.float64), TRAIN[1]), VALID, TEST)), "f64")
    assert float64.x_train.dtype == np.float32


def _with(index: int, images=None, labels=None) -> bytes:
    parts = [list(TRAIN), list(VALID), list(TEST)]
    if images is not None:
        parts[index][0] = images
    if labels is not None:
        parts[index][1] = labels
    return dataset_pickle([tuple(p) for p in parts])


BAD_LABELS = VALID[1].copy()
BAD_LABELS[3] = 12


@pytest.mark.parametrize("data, message", [
    (_with(1, labels=BAD_LABELS), "the validation labels hold 12, not a digit 0–9"),
    (_with(2, labels=np.concatenate([TEST[1][:9], [-1]])), "the test labels hold -1, not a digit 0–9"),
    (_with(0, labels=TRAIN[1].astype(np.float64)), "the training labels hold float64 values, not integer digits"),
    (_with(2, labels=np.eye(10)[TEST[1]] * 2), "the test labels have shape (10, 10) but are not one-hot"),
    (_with(2, labels=TEST[1].reshape(5, 2)), "the test labels have shape (5, 2), not (N,) digits or (N, 10) one-hot"),
    (_with(1, labels=VALID[1][:9]), "the validation part has 10 images but 9 labels"),
    (_with(0, images=TRAIN[0][:, :700]), "the training images have shape (30, 700), not (N, 784) or (N, 28, 28)"),
    (_with(0, images=TRAIN[0][:0], labels=TRAIN[1][:0]), "the training part holds no images"),
    (_with(2, images=(TEST[0] * 255).astype(np.int32)), "the test images hold int32 values; expected floats"),
    (_with(1, images=VALID[0] * 2), "outside the pixel range [0, 1]"),
    (_with(1, images=VALID[0] - 0.5), "the validation images hold -0.5, outside the pixel range [0, 1]"),
    (_with(0, images=np.where(TRAIN[0] > 0.99, np.nan, TRAIN[0]).astype(np.float32)), "NaN values"),
    (_with(0, images=np.full((30, 784), np.inf, np.float32)), "the training images hold inf, outside"),
    (_with(0, images=[[0.0] * 784] * 30), "the training images are a list of 30 items, not an array"),
    (_with(0, labels="0123"), "the training labels are a str, not an array"),
    (dataset_pickle((TRAIN, VALID, TEST, TEST)), "the pickle holds a tuple of 4 items, not 3 (or 2) parts"),
    (dataset_pickle((TRAIN, VALID, (TEST[0],))), "the test part is a tuple of 1 items, not an (images, labels) pair"),
    (pickle.dumps({"train_img": TRAIN[0], "train_label": TRAIN[1]}, protocol=2),
     "the pickle holds a dict (keys 'train_img', 'train_label'); expected Nielsen's (training, validation, test)"),
    (dataset_pickle((TRAIN, VALID, TEST))[:-40], "not a valid pickle: truncated or corrupt"),
    (b"", "the file is empty"),
    (b"\x80\x02cos\nsystem\nX\x02\x00\x00\x00idq\x01\x85R.", "refused"),
], ids=lambda v: v[:60] if isinstance(v, str) else "")
def test_each_problem_is_one_dataset_error_naming_the_part(data, message):
    with pytest.raises(DatasetError, match="^mnist.pkl: ") as err:
        read_nielsen_dataset(data, "mnist.pkl")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_other_pickles_are_not_taken_for_the_dataset_by_their_first_bytes():
    assert not looks_like_nielsen_dataset(network_pickle({b"sizes": [1, 2]}, 2))
    assert not looks_like_nielsen_dataset(b'{"sizes": [784, 30, 10]}')
    assert not looks_like_nielsen_dataset(b"")


@settings(max_examples=150, deadline=None)
@given(cut=st.integers(0, 200_000), flips=st.lists(st.tuples(st.integers(0, 200_000), st.integers(1, 255)),
                                                    max_size=3))
def test_corrupt_files_give_only_dataset_errors(cut, flips):
    data = bytearray(dataset_pickle((part(3, 5), part(2, 6), part(2, 7))))
    for pos, mask in flips:
        data[pos % len(data)] ^= mask
    try:
        read_nielsen_dataset(bytes(data[: cut % (len(data) + 1)]), "mnist.pkl")
    except DatasetError as exc:
        assert str(exc).startswith("mnist.pkl: ") and "\n" not in str(exc)


def _real_file() -> Path | None:
    for folder in SHARED:
        for path in (folder / "mnist.pkl.gz", *(folder / sub / "mnist.pkl.gz" for sub in ("mnist", "mnist-full"))):
            if path.is_file():
                return path
    return None


def test_the_real_mnist_pkl_gz_if_the_shared_folder_holds_one():
    path = _real_file()
    if path is None:
        pytest.skip(f"no mnist.pkl.gz in {' or '.join(str(f) for f in SHARED)} (it ships only the IDX files)")
    ds = read_nielsen_dataset(gzip.decompress(path.read_bytes()), str(path))
    assert ds.x_train.shape == (60_000, 784) and ds.x_test.shape == (10_000, 784)
    assert float(ds.x_train.max()) < 1.0 and float(ds.x_train.min()) == 0.0
    assert np.bincount(ds.t_test, minlength=10).sum() == 10_000
    assert "50,000 training + 10,000 validation used for training, 10,000 test" in ds.source
