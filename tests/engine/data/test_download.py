"""Downloads end to end against a local HTTP server: mirrors, checksums, broken transfers, cache, cancel.

The second half is servers that misbehave on purpose (endless, dripping, stalled, closing, erroring), a
full disk, a hanging name lookup and Ctrl+C: each ends in time, in words saying what happened, and leaves
no partial file behind.
"""
from __future__ import annotations

import errno
import gzip
import hashlib
import io
import os
import shutil
import socket
import threading
import time

import numpy as np
import pytest

from engine.data import catalog as datasets
from engine.data.catalog import (REMOTE_DATASETS, ROLES, DownloadCancelled, DownloadError, OfflineError, RemoteDataset,
                             cache_dir, is_cached, load_dataset, load_remote)
from engine.data import download
from engine.data.download import DownloadLimits, RemoteFile, fetch_file, remove_stale_parts
from engine.data.idx import write_idx
from _http_server import (FileServer, close_after, closed_port_url, drip, endless, silent_server, stall_after,
                          status)  # tests/engine/data is on sys.path (pytest rootdir import)

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
    half, whole = len(files[NAMES["train-images"]]) // 2, len(files[NAMES["train-images"]])
    assert "train-images-idx3-ubyte.gz" in str(info.value)
    assert f"the connection was closed early after {half:,} of {whole:,} bytes" in str(info.value)
    assert _leftovers(cache_dir() / "tiny") == []


def test_missing_file_on_the_server_is_an_http_error(tiny):
    files, _ = tiny
    served = {k: v for k, v in files.items() if k != NAMES["test-labels"]}
    with FileServer(served) as server, pytest.raises(DownloadError, match="server error: HTTP 404"):
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


# ----------------------------------------------------------------------------- hostile and broken servers

# tiny time limits keep these tests fast; the defaults (30 s stall, 60 s + size / 16 kB/s overall) are checked below
FAST = DownloadLimits(connect_timeout=2.0, stall_timeout=0.5, deadline=3.0, poll=0.05)
BODY = bytes(range(256)) * 20  # 5,120 bytes
ONE = RemoteFile("file.gz", "sha256:" + hashlib.sha256(BODY).hexdigest(), len(BODY))


def _fetch_one(folder, behave=None, limits=FAST, remote=ONE, **kwargs):
    """fetch_file of ONE from a local server misbehaving with `behave`; (exception, seconds, requests)."""
    started = time.monotonic()
    with FileServer({remote.name: BODY}, behave={remote.name: behave} if behave else None) as server:
        with pytest.raises(download.DatasetError) as info:
            fetch_file(remote, folder, [server.url], limits=limits, **kwargs)
    return info.value, time.monotonic() - started, server.requests


def _nothing_left(folder):
    return not folder.exists() or list(folder.iterdir()) == []


def test_endless_body_stops_at_the_known_size_plus_a_margin(tmp_path):
    written = []
    exc, seconds, _ = _fetch_one(tmp_path, endless(), progress=lambda done, total, name: written.append(done))
    limit = ONE.size + ONE.size // 100 + download.SIZE_MARGIN_BYTES
    assert type(exc) is download.DownloadError
    assert f"too large: the server sent more than {limit:,} bytes for file.gz (expected 5,120)" in str(exc)
    assert max(written) <= limit and _nothing_left(tmp_path) and seconds < 3


def test_a_body_announced_far_too_large_is_refused_before_reading(tmp_path):
    exc, _, _ = _fetch_one(tmp_path, endless(announce=10 ** 10))
    assert "too large: the server announced 10,000,000,000 bytes for file.gz (expected 5,120)" in str(exc)
    assert _nothing_left(tmp_path)


def test_an_unknown_size_is_capped_too():
    assert RemoteFile("x", "md5:0").byte_limit == download.UNKNOWN_SIZE_CAP
    assert RemoteFile("x", "md5:0", 9_912_422).byte_limit == 9_912_422 + 99_124 + 65_536


def test_one_byte_now_and_then_ends_at_the_overall_deadline(tmp_path):
    limits = DownloadLimits(stall_timeout=0.5, deadline=1.0, poll=0.05)
    exc, seconds, _ = _fetch_one(tmp_path, drip(every=0.1), limits=limits)
    assert type(exc) is download.DownloadError
    assert "too slow: only " in str(exc) and "of 5,120 bytes arrived within the 1 s allowed" in str(exc)
    assert 1.0 <= seconds < 2.0 and _nothing_left(tmp_path)


def test_the_default_deadline_is_generous_and_grows_with_the_size():
    assert download.DEFAULT_LIMITS.stall_timeout == 30
    assert 600 <= download.DEFAULT_LIMITS.deadline_for(9_912_422) <= 700  # ~10 min for MNIST's 9.9 MB
    assert DownloadLimits(deadline=5).deadline_for(10 ** 9) == 5


def test_a_stall_after_1000_bytes_says_stalled_not_offline(tmp_path):
    exc, seconds, _ = _fetch_one(tmp_path, stall_after(1000))
    assert type(exc) is download.DownloadError and "offline" not in str(exc)
    assert "stalled: no data for 0.5 s after 1,000 of 5,120 bytes" in str(exc)
    assert seconds < 2.5 and _nothing_left(tmp_path)


def test_a_server_that_accepts_but_never_answers_is_stalled_not_offline(tmp_path):
    url, close = silent_server()
    try:
        with pytest.raises(download.DownloadError) as info:
            fetch_file(ONE, tmp_path, [url], limits=FAST)
    finally:
        close()
    assert type(info.value) is download.DownloadError
    assert "stalled: no data for 0.5 s after 0 of 5,120 bytes" in str(info.value)


@pytest.mark.parametrize("after, words", [
    (None, "the connection was closed early after 0 of 5,120 bytes"),
    (0, "the connection was closed early after 0 of 5,120 bytes"),
    (1000, "the connection was closed early after 1,000 of 5,120 bytes"),
])
def test_a_closed_connection_says_closed_early_not_offline(tmp_path, after, words):
    exc, _, _ = _fetch_one(tmp_path, close_after(after))
    assert type(exc) is download.DownloadError and "offline" not in str(exc)
    assert words in str(exc) and _nothing_left(tmp_path)


@pytest.mark.parametrize("code, words", [(500, "server error: HTTP 500 Internal Server Error"),
                                         (404, "server error: HTTP 404 Not Found"),
                                         (403, "server error: HTTP 403 Forbidden")])
def test_http_errors_are_server_errors(tmp_path, code, words):
    exc, _, _ = _fetch_one(tmp_path, status(code))
    assert type(exc) is download.DownloadError and words in str(exc) and _nothing_left(tmp_path)


def test_refused_connection_is_offline_and_each_message_is_one_line(tmp_path):
    with pytest.raises(OfflineError) as info:
        fetch_file(ONE, tmp_path, [closed_port_url()], limits=FAST, hint=" Try the sample.")
    text = str(info.value)
    assert "no mirror could be reached; you seem to be offline" in text and "cannot connect (Connection refused)" in text
    assert "\n" not in text and text.endswith(" Try the sample.")


@pytest.fixture
def fake_dns(monkeypatch):
    """Name lookups of *.invalid behave as set in the returned dict: {"fail": True} or {"hang": seconds}."""
    real = socket.getaddrinfo
    how = {}

    def getaddrinfo(host, *args, **kwargs):
        if str(host).endswith(".invalid"):
            if how.get("hang"):
                time.sleep(how["hang"])
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return how


def test_an_unknown_host_name_is_offline(tmp_path, fake_dns):
    fake_dns["fail"] = True
    with pytest.raises(OfflineError) as info:
        fetch_file(ONE, tmp_path, ["http://mirror.invalid/"], limits=FAST)
    assert "cannot connect (the host name was not found: Name or service not known)" in str(info.value)


def test_a_hanging_name_lookup_ends_at_the_connect_limit_or_at_a_cancel(tmp_path, fake_dns):
    fake_dns["hang"] = 5.0
    started = time.monotonic()
    with pytest.raises(OfflineError, match=r"cannot connect \(no answer within 1 s\)"):
        fetch_file(ONE, tmp_path, ["http://mirror.invalid/"], limits=DownloadLimits(connect_timeout=0.5,
                                                                                     stall_timeout=0.5, poll=0.05))
    assert time.monotonic() - started < 1.5
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    started = time.monotonic()
    with pytest.raises(download.DownloadCancelled):
        fetch_file(ONE, tmp_path, ["http://mirror.invalid/"], cancel=stop)  # default limits: 45 s without the cancel
    assert time.monotonic() - started < 0.8 and _nothing_left(tmp_path)


def test_wrong_checksum_names_both_sums_and_keeps_nothing(tmp_path):
    wrong = RemoteFile(ONE.name, "md5:" + "0" * 32, ONE.size)
    exc, _, _ = _fetch_one(tmp_path, remote=wrong)
    assert f"MD5 checksum mismatch: got {hashlib.md5(BODY).hexdigest()} for 5,120 bytes" in str(exc)
    assert _nothing_left(tmp_path)


def test_content_encoding_is_not_decoded_the_checksum_is_of_the_bytes_sent(tmp_path):
    packed = gzip.compress(BODY, mtime=0)
    remote = RemoteFile("file.gz", "sha256:" + hashlib.sha256(packed).hexdigest(), len(packed))

    def gzip_encoded(handler, data, closing):
        handler.send_response(200)
        handler.send_header("Content-Encoding", "gzip")
        handler.send_header("Content-Length", str(len(packed)))
        handler.end_headers()
        handler.wfile.write(packed)

    with FileServer({}, behave={"file.gz": gzip_encoded}) as server:
        path = fetch_file(remote, tmp_path, [server.url], limits=FAST)
    assert path.read_bytes() == packed


@pytest.mark.parametrize("room, buffer", [(0, 1024), (1000, 1024), (5000, 1024), (1000, 8192)])
def test_a_full_disk_is_said_in_words_and_leaves_no_part_file(tmp_path, monkeypatch, room, buffer):
    class FullDisk(io.FileIO):
        """A file on a disk with `room` bytes left: later writes fail as a full disk does, flushes included."""

        def write(self, data):
            if self.tell() + len(data) > room:
                raise OSError(errno.ENOSPC, "No space left on device")
            return super().write(data)

    monkeypatch.setattr(download.os, "fdopen", lambda fd, mode="rb": io.BufferedWriter(FullDisk(fd, "wb"), buffer))
    exc, _, _ = _fetch_one(tmp_path)
    assert type(exc) is download.DownloadError and "Errno" not in str(exc)
    assert str(exc) == f"the disk is full: cannot save file.gz to {tmp_path} (needs 5,120 bytes)"
    assert _nothing_left(tmp_path)


def test_too_little_free_space_is_refused_before_any_request(tmp_path, monkeypatch):
    monkeypatch.setattr(download.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10 ** 9, 10 ** 9, 100))
    exc, _, requests = _fetch_one(tmp_path)
    assert f"the disk is full: cannot save file.gz to {tmp_path} (needs 5,120 bytes, 100 free)" in str(exc)
    assert requests == []


@pytest.mark.parametrize("server", ["stalled after 1,000 bytes", "accepts but never answers"])
def test_cancel_is_noticed_within_half_a_second_even_while_nothing_arrives(tmp_path, server):
    slow = DownloadLimits(stall_timeout=30, deadline=60, poll=0.2)  # only the cancel can end these in time
    stop = threading.Event()
    asked = []

    def cancel_later():
        time.sleep(0.4)
        asked.append(time.monotonic())
        stop.set()

    threading.Thread(target=cancel_later, daemon=True).start()
    if server == "accepts but never answers":
        url, close = silent_server()
        try:
            with pytest.raises(download.DownloadCancelled, match="download of file.gz cancelled"):
                fetch_file(ONE, tmp_path, [url], limits=slow, cancel=stop)
        finally:
            close()
    else:
        exc, _, _ = _fetch_one(tmp_path, stall_after(1000), limits=slow, cancel=stop)
        assert isinstance(exc, download.DownloadCancelled) and "download of file.gz cancelled" in str(exc)
    assert time.monotonic() - asked[0] < 0.5 and _nothing_left(tmp_path)


def test_ctrl_c_during_a_download_leaves_no_part_file(tmp_path):
    def interrupt(done, total, name):
        raise KeyboardInterrupt

    with FileServer({ONE.name: BODY}) as server, pytest.raises(KeyboardInterrupt):
        fetch_file(ONE, tmp_path, [server.url], limits=FAST, progress=interrupt)
    assert _nothing_left(tmp_path)


def test_stale_part_files_from_a_crash_are_removed_by_the_next_download(tmp_path):
    old = tmp_path / ".file.gz.k3j2h1g0.part"
    old_tmp = tmp_path / ".test-images.1234.npy.abcd.tmp"
    fresh = tmp_path / ".other.gz.a1b2c3d4.part"  # another process's live download: not ours to remove
    for path in (old, old_tmp, fresh):
        path.write_bytes(b"")
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    os.utime(old_tmp, (an_hour_ago, an_hour_ago))
    with FileServer({ONE.name: BODY}) as server:
        fetch_file(ONE, tmp_path, [server.url], limits=FAST)
    assert sorted(p.name for p in tmp_path.iterdir()) == [fresh.name, "file.gz"]
    assert remove_stale_parts(tmp_path, older_than=-1) == [fresh]
