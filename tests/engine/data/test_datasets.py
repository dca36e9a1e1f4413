"""Named datasets: folders of IDX files, names and the cache, the real MNIST test set (the sample: test_sample.py)."""
from __future__ import annotations

import io
import json
import os
import runpy
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from engine.data import catalog as datasets
from engine.data.catalog import DatasetError, cache_dir, is_cached, load_dataset, text_progress
from engine.data.idx import IdxError, write_idx


def _write_set(folder, prefix, n, dotted=False, gz=True):
    rng = np.random.default_rng(n)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    sep = "." if dotted else "-"
    ext = ".gz" if gz else ""
    write_idx(folder / f"{prefix}-images{sep}idx3-ubyte{ext}", images)
    write_idx(folder / f"{prefix}-labels{sep}idx1-ubyte{ext}", labels)
    return images, labels


def test_data_dir_with_train_and_test_in_either_spelling(tmp_path):
    train_images, train_labels = _write_set(tmp_path, "train", 12, dotted=True, gz=False)
    test_images, test_labels = _write_set(tmp_path, "t10k", 5)
    ds = load_dataset("mnist", data_dir=tmp_path)  # data_dir wins over the name
    assert ds.source == str(tmp_path) and ds.has_train
    np.testing.assert_allclose(ds.x_train * 255, train_images.reshape(12, 784), atol=1e-3)
    np.testing.assert_array_equal(ds.t_test, test_labels)
    assert ds.t_train.dtype == np.int64 and ds.x_test.dtype == np.float32
    same = load_dataset(str(tmp_path))  # a folder given as the name also works
    np.testing.assert_array_equal(same.x_test, ds.x_test)


def test_data_dir_with_only_test_files_is_test_only(tmp_path):
    _write_set(tmp_path, "t10k", 5)
    ds = load_dataset(data_dir=tmp_path)
    assert ds.x_train is None and not ds.has_train and len(ds.x_test) == 5
    with pytest.raises(ValueError, match="only test files"):
        ds.require_train()


def test_empty_or_missing_data_dir_lists_what_was_looked_for(tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(DatasetError) as info:
        load_dataset(data_dir=tmp_path)
    text = str(info.value)
    for name in ("train-images-idx3-ubyte[.gz]", "t10k-labels-idx1-ubyte[.gz]", "t10k-images.idx3-ubyte[.gz]"):
        assert name in text
    assert "notes.txt" in text
    with pytest.raises(DatasetError, match="nope: no such folder"):
        load_dataset(data_dir=tmp_path / "nope")


def test_data_dir_with_mismatched_counts_is_an_idx_error(tmp_path):
    _write_set(tmp_path, "t10k", 5)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(4, np.uint8))
    with pytest.raises(IdxError, match="5 images but .* 4 labels"):
        load_dataset(data_dir=tmp_path)


def test_fifos_and_devices_in_a_data_dir_are_not_read(tmp_path):
    os.mkfifo(tmp_path / "t10k-images-idx3-ubyte")  # reading it would wait for a writer forever
    (tmp_path / "t10k-labels-idx1-ubyte").symlink_to("/dev/zero")  # reading it would never end
    with pytest.raises(DatasetError, match="does not hold an MNIST-style test set"):
        load_dataset(data_dir=tmp_path)


def test_an_unreadable_data_dir_is_a_one_line_dataset_error(tmp_path, monkeypatch):
    def denied(folder, role):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(datasets, "_find_idx", denied)
    with pytest.raises(DatasetError) as info:
        load_dataset(data_dir=tmp_path)
    assert str(info.value) == f"{tmp_path}: cannot read the data folder: Permission denied"


def test_names_in_a_data_dir_are_escaped_in_messages(tmp_path):
    (tmp_path / "evil\x1b[31mred").write_text("")
    with pytest.raises(DatasetError) as info:
        load_dataset(data_dir=tmp_path)
    assert "\x1b" not in str(info.value) and "evil\\x1b[31mred" in str(info.value)


def test_unknown_names_are_rejected_with_the_choices():
    with pytest.raises(DatasetError, match="mnist-sample, mnist, fashion-mnist"):
        load_dataset("cifar")
    with pytest.raises(DatasetError, match="unknown dataset"):
        is_cached("cifar")


def test_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("DIGITLAB_CACHE_DIR", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    assert not is_cached("mnist") and not is_cached("fashion-mnist")


def test_real_mnist_test_set(shared_mnist_dir):
    ds = load_dataset(data_dir=shared_mnist_dir)
    assert ds.x_train is None
    assert ds.x_test.shape == (10000, 784) and ds.x_test.dtype == np.float32
    assert ds.t_test.shape == (10000,) and sorted(set(ds.t_test.tolist())) == list(range(10))
    assert ds.x_test.min() == 0.0 and ds.x_test.max() == 1.0
    assert ds.t_test[:5].tolist() == [7, 2, 1, 0, 4]  # the well-known first digits of t10k


def test_text_progress_draws_a_bar_and_ends_each_file_with_a_newline():
    out = io.StringIO()
    report = text_progress(out)
    for done in (0, 500_000, 500_000, 1_000_000):
        report(done, 1_000_000, "a.gz")
    report(10, 0, "b.gz")  # unknown total
    text = out.getvalue()
    assert text.count("\ra.gz") == 3  # the repeated 50% is not redrawn
    assert "[###############               ]  50%" in text
    assert "100% 1.0/1.0 MB\n" in text
    assert text.endswith("\rb.gz 0.0 MB")


# ----------------------------------------------------------------------------- hostile IDX files in a data folder

HOSTILE = Path(__file__).resolve().parent / "hostile_idx"
MANIFEST = json.loads((HOSTILE / "MANIFEST.json").read_text(encoding="utf-8"))
GENERATOR = runpy.run_path(str(HOSTILE / "make_hostile_idx.py"))  # run_path: no __pycache__ in the corpus
ROOT = Path(__file__).resolve().parents[3]
STEMS = {"images": "t10k-images-idx3-ubyte", "labels": "t10k-labels-idx1-ubyte"}


def test_every_hostile_idx_file_is_in_the_manifest_and_regenerates_identically(tmp_path):
    files = sorted(p.name for p in HOSTILE.iterdir() if p.name not in ("MANIFEST.json", "make_hostile_idx.py"))
    assert files == sorted(MANIFEST) and len(files) >= 25
    assert all((HOSTILE / name).stat().st_size <= 256 * 1024 for name in files)
    GENERATOR["build"](tmp_path)
    assert (tmp_path / "MANIFEST.json").read_text(encoding="utf-8") == (HOSTILE / "MANIFEST.json").read_text(
        encoding="utf-8")
    for name in files:
        assert (tmp_path / name).read_bytes() == (HOSTILE / name).read_bytes(), f"{name} is stale: rerun the generator"


def _data_dir_with(folder: Path, name: str) -> Path:
    """A folder holding the corpus file `name` as its test images or labels, and a good partner file."""
    case = MANIFEST[name]
    folder.mkdir()
    target = folder / (STEMS[case["role"]] + (".gz" if name.endswith(".gz") else ""))
    shutil.copyfile(HOSTILE / name, target)
    n = case["partner"]
    if case["role"] == "images":
        write_idx(folder / "t10k-labels-idx1-ubyte.gz", (np.arange(n) % 10).astype(np.uint8))
    else:
        write_idx(folder / "t10k-images-idx3-ubyte.gz", np.full((n, 28, 28), 7, np.uint8))
    return target


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_each_hostile_idx_file_gives_its_expected_outcome_through_data_dir(tmp_path, name):
    case = MANIFEST[name]
    target = _data_dir_with(tmp_path / "data", name)
    if case["expect"] == "loads":
        ds = load_dataset(data_dir=target.parent)
        assert ds.x_test.shape == (case["partner"], 784) and len(ds.t_test) == case["partner"]
        return
    with pytest.raises(DatasetError) as info:
        load_dataset(data_dir=target.parent)
    text = str(info.value)
    assert case["expect"] in text, text
    assert "\n" not in text and len(text) < 400
    assert target.name in text or "t10k-labels-idx1-ubyte" in text  # which file is wrong (a count names both)
    assert "reshape" not in text and "array of size" not in text


_BOMB_CHILD = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))  # an uncapped inflate of the bomb fails here
from engine.data.catalog import load_dataset
from engine.errors import DatasetError
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    load_dataset(data_dir=sys.argv[1])
except DatasetError as exc:
    print("refused:", exc)
print("grew_kib:", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""


def test_a_gzip_bomb_in_a_data_dir_is_refused_after_inflating_only_what_the_header_declares(tmp_path):
    folder = tmp_path / "bomb"
    folder.mkdir()
    bomb = GENERATOR["write_bomb"](folder / "t10k-images-idx3-ubyte.gz", inflated=1 << 30, declared_images=60_000)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.zeros(60_000, np.uint8))
    assert bomb.stat().st_size < 2 << 20  # ~1 MB inflating to 1 GiB
    out = subprocess.run([sys.executable, "-c", _BOMB_CHILD, str(folder)], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0 and out.stderr == "", out.stderr
    refused, grew = out.stdout.splitlines()
    assert refused == (f"refused: {bomb} (gzip): header declares shape (60000, 28, 28) (47,040,000 bytes of data) "
                       "but more data follows (trailing data, or a file that is not what its header says)")
    assert int(grew.split()[1]) < 120 * 1024  # KiB: the declared 47 MB and change, not the 1 GiB it inflates to


def test_a_gzip_file_name_field_of_20_mb_is_skipped_fast(tmp_path):
    """gzip.GzipFile reads that field a byte per Python call (~3 s for 20 MB); the reader must not."""
    folder = tmp_path / "data"
    folder.mkdir()
    GENERATOR["write_long_name"](folder / "t10k-images-idx3-ubyte.gz", 20 << 20)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.array([1, 2, 3], np.uint8))
    started = time.monotonic()
    ds = load_dataset(data_dir=folder)
    assert time.monotonic() - started < 1.0 and ds.x_test.shape == (3, 784)
