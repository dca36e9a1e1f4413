"""Downloads end to end against a local HTTP server: mirrors, checksums, broken transfers, cache, cancel."""
from __future__ import annotations

import gzip
import hashlib
import threading

import numpy as np
import pytest

from engine.data import catalog as datasets
from engine.data.catalog import (REMOTE_DATASETS, ROLES, DownloadCancelled, DownloadError, OfflineError, RemoteDataset,
                             cache_dir, is_cached, load_dataset, load_remote)
from engine.data.download import RemoteFile, fetch_file
from engine.data.idx import write_idx
from _http_server import FileServer, closed_port_url  # tests/engine is on sys.path (pytest rootdir import)

NAMES = {"train-images": "train-images-idx3-ubyte.gz", "train-labels": "train-labels-idx1-ubyte.gz",
         "test-images": "t10k-images-idx3-ubyte.gz", "test-labels": "t10k-labels-idx1-ubyte.gz"}


@pytest.fixture
def tiny(tmp_path):
    """Small generated IDX .gz files, their bytes by name, and the arrays they hold."""
    rng = np.random.default_rng(7)
    arrays = {
        "train-images": rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
        "train-labels": np.array([0, 1, 2, 3, 4, 9], np.uint8),
        "test-images": rng.integers(0, 256, (4, 28, 28), dtype=np.uint8),
        "test-labels": np.array([5, 6, 7, 8], np.uint8),
    }
    src = tmp_path / "src"
    src.mkdir()
    files = {NAMES[role]: write_idx(src / NAMES[role], array).read_bytes() for role, array in arrays.items()}
    return files, arrays


def _remote(files, name="tiny", mirrors=(), hashes=None):
    hashes = hashes or {}
    entries = {role: RemoteFile(NAMES[role], hashes.get(role, "sha256:" + hashlib.sha256(files[NAMES[role]]).hexdigest()),
                                len(files[NAMES[role]]))
               for role in ROLES}
    return RemoteDataset(name, entries, tuple(mirrors), tuple(str(i) for i in range(10)))


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_decodes_the_served_files_and_reports_progress(tiny):
    files, arrays = tiny
    calls = []
    with FileServer(files) as server:
        ds = load_remote(_remote(files), mirrors=[server.url], progress=lambda *a: calls.append(a))
    assert sorted(server.requests) == sorted(files)
    np.testing.assert_array_equal(ds.t_train, arrays["train-labels"].astype(np.int64))
    np.testing.assert_allclose(ds.x_test * 255, arrays["test-images"].reshape(4, 784), atol=1e-3)
    assert ds.x_train.dtype == np.float32 and ds.x_train.shape == (6, 784) and ds.t_test.dtype == np.int64
    for name, data in files.items():  # each file's last report says it is complete
        last = [c for c in calls if c[2] == name][-1]
        assert last == (len(data), len(data), name)
        assert all(0 <= done <= total for done, total, n in calls if n == name)
    folder = cache_dir() / "tiny"
    assert not [n for n in _leftovers(folder) if n.endswith(".part")]
    assert set(files) <= set(_leftovers(folder))


def test_second_load_uses_the_cache_without_any_request(tiny):
    files, arrays = tiny
    remote = _remote(files)
    with FileServer(files) as server:
        first = load_remote(remote, mirrors=[server.url])
        n = len(server.requests)
        second = load_remote(remote, mirrors=[server.url])
        assert len(server.requests) == n
    third = load_remote(remote, mirrors=[closed_port_url()])  # server gone: still loads from cache
    for ds in (second, third):
        np.testing.assert_array_equal(ds.x_train, first.x_train)
        np.testing.assert_array_equal(ds.t_test, first.t_test)


def test_a_changed_cached_file_is_not_trusted_but_fetched_again(tiny):
    files, arrays = tiny
    remote = _remote(files)
    with FileServer(files) as server:
        load_remote(remote, mirrors=[server.url])
        victim = cache_dir() / "tiny" / NAMES["test-labels"]
        victim.write_bytes(gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 4, 1, 1, 1, 1])))
        n = len(server.requests)
        ds = load_remote(remote, mirrors=[server.url])
        assert server.requests[n:] == [NAMES["test-labels"]]
    np.testing.assert_array_equal(ds.t_test, [5, 6, 7, 8])


def test_checksum_mismatch_is_a_clear_error_and_leaves_nothing(tiny):
    files, _ = tiny
    remote = _remote(files, hashes={"train-images": "sha256:" + "0" * 64})
    with FileServer(files) as server, pytest.raises(DownloadError, match="SHA256 checksum mismatch") as info:
        load_remote(remote, mirrors=[server.url])
    assert not isinstance(info.value, OfflineError)
    assert "train-images-idx3-ubyte.gz" in str(info.value) and "mnist-sample" in str(info.value)
    assert NAMES["train-images"] not in _leftovers(cache_dir() / "tiny")
    assert not [n for n in _leftovers(cache_dir() / "tiny") if n.endswith(".part")]


def test_md5_checksums_are_accepted(tiny):
    files, arrays = tiny
    hashes = {r: "md5:" + hashlib.md5(files[NAMES[r]]).hexdigest() for r in ROLES}
    with FileServer(files) as server:
        ds = load_remote(_remote(files, hashes=hashes), mirrors=[server.url])
    np.testing.assert_array_equal(ds.t_train, arrays["train-labels"])


def test_interrupted_transfer_is_an_error_and_leaves_nothing(tiny):
    files, _ = tiny
    with FileServer(files, truncate={NAMES["train-images"]}) as server, pytest.raises(DownloadError) as info:
        load_remote(_remote(files), mirrors=[server.url])
    assert not isinstance(info.value, OfflineError)
    assert "train-images-idx3-ubyte.gz" in str(info.value) and "interrupted" in str(info.value)
    assert _leftovers(cache_dir() / "tiny") == []


def test_missing_file_on_the_server_is_an_http_error(tiny):
    files, _ = tiny
    served = {k: v for k, v in files.items() if k != NAMES["test-labels"]}
    with FileServer(served) as server, pytest.raises(DownloadError, match="HTTP error 404"):
        load_remote(_remote(files), mirrors=[server.url])


def test_no_server_at_all_is_offline_and_names_the_ways_forward(tiny):
    files, _ = tiny
    with pytest.raises(OfflineError, match="offline") as info:
        load_remote(_remote(files), mirrors=[closed_port_url(), closed_port_url()])
    text = str(info.value)
    assert "mnist-sample" in text and "--data-dir" in text
    assert _leftovers(cache_dir() / "tiny") == []


def test_first_mirror_down_second_works(tiny):
    files, arrays = tiny
    with FileServer({}) as empty, FileServer(files) as good:
        ds = load_remote(_remote(files), mirrors=[closed_port_url(), empty.url, good.url])
    assert sorted(good.requests) == sorted(files)
    assert empty.requests  # it was tried first
    np.testing.assert_array_equal(ds.t_test, arrays["test-labels"])


def test_cancel_during_download_raises_and_leaves_nothing(tiny):
    files, _ = tiny
    stop = threading.Event()
    with FileServer(files) as server, pytest.raises(DownloadCancelled):
        load_remote(_remote(files), mirrors=[server.url], progress=lambda *a: stop.set(), cancel=stop)
    assert server.requests == [NAMES["train-images"]]
    assert _leftovers(cache_dir() / "tiny") == []


def test_cancel_callable_already_true_makes_no_request(tiny):
    files, _ = tiny
    with FileServer(files) as server, pytest.raises(DownloadCancelled):
        load_remote(_remote(files), mirrors=[server.url], cancel=lambda: True)
    assert server.requests == []


def test_mirror_choice_argument_then_environment_then_defaults(monkeypatch):
    from engine.data.download import resolve_mirrors

    monkeypatch.delenv("DIGITLAB_MIRRORS", raising=False)
    assert resolve_mirrors(["http://d/"]) == ["http://d/"]
    monkeypatch.setenv("DIGITLAB_MIRRORS", " http://e1/\nhttp://e2/ ")
    assert resolve_mirrors(["http://d/"]) == ["http://e1/", "http://e2/"]
    assert resolve_mirrors(["http://d/"], "http://a/ http://b/") == ["http://a/", "http://b/"]
    assert resolve_mirrors(["http://d/"], ["http://a/"]) == ["http://a/"]


def test_fetch_file_reuses_a_verified_file(tmp_path, tiny):
    files, _ = tiny
    name = NAMES["test-labels"]
    remote = RemoteFile(name, "sha256:" + hashlib.sha256(files[name]).hexdigest())
    (tmp_path / name).write_bytes(files[name])
    assert fetch_file(remote, tmp_path, [closed_port_url()]) == tmp_path / name


def test_named_dataset_uses_the_mirror_environment_variable(tiny, monkeypatch):
    files, arrays = tiny
    with FileServer(files) as server:
        monkeypatch.setitem(REMOTE_DATASETS, "mnist", _remote(files, name="mnist", mirrors=["http://unused.invalid/"]))
        monkeypatch.setenv("DIGITLAB_MIRRORS", f"{closed_port_url()}  {server.url}")
        assert not is_cached("mnist")
        ds = load_dataset("mnist")
        assert is_cached("mnist")
    assert ds.name == "mnist" and len(ds.x_train) == 6
    assert ds.source == str(cache_dir() / "mnist")


def test_registry_holds_checksums_for_every_file():
    for name in ("mnist", "fashion-mnist"):
        remote = REMOTE_DATASETS[name]
        assert len(remote.mirrors) >= 2
        for role in ROLES:
            assert remote.files[role].known_hash.startswith("sha256:") and len(remote.files[role].known_hash) == 71
    assert REMOTE_DATASETS["fashion-mnist"].classes[0] == "T-shirt/top"
    assert datasets.DATASET_NAMES == ("mnist-sample", "mnist", "fashion-mnist")
