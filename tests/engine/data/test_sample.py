"""The offline MNIST sample shipped in the package: 10,000 real training digits and the real test set,
rebuilt byte for byte by its script, with MNIST's attribution and licence beside it."""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest

from engine.data import catalog, make_sample
from engine.data.catalog import DatasetError, is_cached, load_data_dir, load_dataset, sample_available, sample_path
from engine.data.idx import IdxError

FULL_MNIST = Path(__file__).resolve().parents[3].parent / "shared" / "datasets" / "mnist-full"


def test_the_sample_ships_inside_the_package():
    assert sample_available() and sample_path() == catalog.SAMPLE_DIR
    assert catalog.SAMPLE_DIR == Path(catalog.__file__).resolve().parent / "sample"
    assert is_cached("mnist-sample")  # nothing to download, ever


def test_sample_is_10000_class_balanced_training_digits_and_the_10000_test_digits():
    ds = load_dataset("mnist-sample")
    assert ds.name == "mnist-sample" and ds.has_train and "digitlab package" in ds.source
    assert ds.x_train.shape == (10_000, 784) and ds.x_test.shape == (10_000, 784)
    assert ds.x_train.dtype == np.float32 and ds.t_train.dtype == np.int64
    assert 0.0 == ds.x_train.min() and ds.x_train.max() == 1.0
    assert np.bincount(ds.t_train).tolist() == [1_000] * 10
    # the official test set's class counts and its well-known first digits
    assert np.bincount(ds.t_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert ds.t_test[:5].tolist() == [7, 2, 1, 0, 4]


def test_sample_test_split_is_exactly_the_real_mnist_test_set(shared_mnist_dir):
    sample, real = load_dataset("mnist-sample"), load_dataset(data_dir=shared_mnist_dir)
    np.testing.assert_array_equal(sample.x_test, real.x_test)
    np.testing.assert_array_equal(sample.t_test, real.t_test)


def test_evaluating_reads_only_the_test_digits():
    ds = load_dataset("mnist-sample", test_only=True)
    assert ds.x_train is None and not ds.has_train and len(ds.x_test) == 10_000


def test_the_sample_folder_is_an_ordinary_folder_of_idx_files():
    as_folder, as_name = load_data_dir(catalog.SAMPLE_DIR), load_dataset("mnist-sample")
    np.testing.assert_array_equal(as_folder.x_train, as_name.x_train)
    np.testing.assert_array_equal(as_folder.t_test, as_name.t_test)


def test_missing_sample_files_say_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(catalog, "SAMPLE_DIR", tmp_path / "sample")
    assert sample_path() is None and not sample_available() and not is_cached("mnist-sample")
    with pytest.raises(DatasetError) as info:
        load_dataset("mnist-sample")
    text = str(info.value)
    assert "missing from this installation" in text and "reinstall" in text
    assert "make_sample" in text and "--data-dir" in text and "'mnist'" in text


def test_a_damaged_sample_file_is_a_clear_idx_error(tmp_path, monkeypatch):
    damaged = tmp_path / "sample"
    shutil.copytree(catalog.SAMPLE_DIR, damaged)
    data = (damaged / "train-images-idx3-ubyte.gz").read_bytes()
    (damaged / "train-images-idx3-ubyte.gz").write_bytes(data[: len(data) // 2])
    monkeypatch.setattr(catalog, "SAMPLE_DIR", damaged)
    with pytest.raises(IdxError, match="train-images-idx3-ubyte.gz.*(truncated|corrupt)"):
        load_dataset("mnist-sample")


def test_attribution_licence_and_checksums_sit_beside_the_data():
    readme = (catalog.SAMPLE_DIR / "README.md").read_text(encoding="utf-8")
    licence = (catalog.SAMPLE_DIR / "LICENSE").read_text(encoding="utf-8")
    for text in (readme, licence):
        assert "Yann LeCun" in text and "Corinna Cortes" in text and "CC BY-SA 3.0" in text
    assert "creativecommons.org/licenses/by-sa/3.0" in licence
    assert "make_sample --from" in readme
    for name in make_sample.FILES:  # the README's table names each file with its real size and SHA-256
        data = (catalog.SAMPLE_DIR / name).read_bytes()
        assert f"| {name} |" in readme and f"| {len(data)} | {hashlib.sha256(data).hexdigest()} |" in readme


def test_selection_is_per_class_by_hash_and_kept_in_file_order():
    labels = np.array([0, 1] * 6, np.uint8)
    chosen = make_sample.select_training_digits(labels, per_class=2)
    assert chosen.tolist() == sorted(chosen.tolist()) and np.bincount(labels[chosen]).tolist() == [2, 2]
    key = lambda i: hashlib.sha256(f"digitlab-sample:{i}".encode()).digest()  # noqa: E731 - the documented rule
    for cls in (0, 1):
        rows = np.flatnonzero(labels == cls).tolist()
        assert sorted(i for i in chosen.tolist() if labels[i] == cls) == sorted(sorted(rows, key=key)[:2])
    with pytest.raises(DatasetError, match="class 0 has only 6"):
        make_sample.select_training_digits(labels, per_class=7)


def test_gzip_output_has_a_fixed_header_and_round_trips():
    import gzip

    data = make_sample.idx_bytes(np.arange(12, dtype=np.uint8).reshape(3, 2, 2))
    packed = make_sample.gzip_bytes(data)
    assert packed[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" and gzip.decompress(packed) == data
    assert make_sample.gzip_bytes(data) == packed


def test_a_source_that_is_not_mnist_is_refused(tmp_path):
    from engine.data.idx import write_idx

    rng = np.random.default_rng(0)
    for prefix in ("train", "t10k"):
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (20, 28, 28), dtype=np.uint8))
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", (np.arange(20) % 10).astype(np.uint8))
    with pytest.raises(DatasetError, match="not the original MNIST train-images"):
        make_sample.build(tmp_path)
    assert make_sample.main(["--from", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")]) == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_the_script_rebuilds_the_shipped_files_byte_for_byte(tmp_path):
    if not (FULL_MNIST / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"rebuilding the sample needs the full MNIST at {FULL_MNIST} (see shared/datasets/README.md)")
    assert make_sample.main(["--from", str(FULL_MNIST), "--out", str(tmp_path)]) == 0
    for name in make_sample.FILES:
        rebuilt, shipped = (tmp_path / name).read_bytes(), (catalog.SAMPLE_DIR / name).read_bytes()
        assert rebuilt == shipped, f"{name}: the rebuilt file differs from the shipped one"
