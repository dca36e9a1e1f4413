"""engine.util: files are written as an editor would (umask, links, atomic), read only when regular, and
text from files is shown safely."""
from __future__ import annotations

import errno
import io
import json
import math
import os
import stat
import threading

import numpy as np
import pytest

import engine.util
from engine.errors import DigitLabError
from engine.util import (MAX_TEXT, InputFileError, WriteError, atomic_write, bounded_jsonable, check_can_write,
                         check_regular_file, open_regular_file, os_error_words, printable, read_limited)

ESC = "\x1b[2J"


def mode_of(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask():
    """Set the process umask for one test (restored after it)."""
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


def leftovers(*folders) -> list[str]:
    return [p.name for folder in folders for p in folder.iterdir() if p.name.endswith(".tmp")]


# ----------------------------------------------------------------------------- permissions

@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_a_new_file_gets_0666_minus_the_umask_like_an_editor_makes_it(tmp_path, umask, mask, expected):
    umask(mask)
    path = atomic_write(tmp_path / "run.json", "{}")
    assert mode_of(path) == expected


def test_overwriting_keeps_the_files_permissions_whatever_the_umask(tmp_path, umask):
    path = tmp_path / "shared.csv"
    path.write_text("old")
    path.chmod(0o640)
    umask(0o077)
    atomic_write(path, "new")
    assert path.read_text() == "new" and mode_of(path) == 0o640


# ----------------------------------------------------------------------------- symbolic links

def test_saving_over_a_link_writes_the_file_it_points_to_and_keeps_the_link(tmp_path, umask):
    elsewhere, here = tmp_path / "models", tmp_path / "project"
    elsewhere.mkdir()
    here.mkdir()
    target = elsewhere / "best.npz"
    target.write_bytes(b"old")
    target.chmod(0o600)
    link = here / "current.npz"
    link.symlink_to(target)
    assert atomic_write(link, b"new") == link
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_bytes() == b"new" and mode_of(target) == 0o600
    assert leftovers(elsewhere, here) == []


def test_a_relative_link_is_followed_from_its_own_folder(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "real.json").write_text("old")
    link = tmp_path / "a" / "run.json"
    link.symlink_to("../b/real.json")
    atomic_write(link, "new")
    assert (tmp_path / "b" / "real.json").read_text() == "new" and link.is_symlink()


def test_a_dangling_link_creates_the_file_it_names(tmp_path):
    link = tmp_path / "model.npz"
    link.symlink_to(tmp_path / "target.npz")
    atomic_write(link, b"data")
    assert link.is_symlink() and (tmp_path / "target.npz").read_bytes() == b"data"


def test_a_dangling_link_into_a_missing_folder_says_so(tmp_path):
    link = tmp_path / "model.npz"
    link.symlink_to(tmp_path / "gone" / "target.npz")
    with pytest.raises(WriteError, match=r"model\.npz \(a link to .*target\.npz\): cannot save the file: the folder "
                                         r".*gone does not exist"):
        atomic_write(link, b"data")
    assert link.is_symlink()


def test_a_loop_of_links_is_refused(tmp_path):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    with pytest.raises(WriteError, match="loop"):
        atomic_write(tmp_path / "a", b"x")


def test_a_folder_or_a_fifo_is_never_replaced_by_a_file(tmp_path):
    folder = tmp_path / "model.npz"
    folder.mkdir()
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    with pytest.raises(WriteError, match="it is a folder; refusing to replace it"):
        atomic_write(folder, b"x")
    with pytest.raises(WriteError, match=r"named pipe \(FIFO\); refusing"):
        atomic_write(fifo, b"x")
    assert folder.is_dir() and stat.S_ISFIFO(os.stat(fifo).st_mode) and leftovers(tmp_path) == []


# ----------------------------------------------------------------------------- failures

@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "the disk is full"), (errno.EROFS, "the disk is read-only"),
                                         (errno.EACCES, "permission denied"), (errno.EIO, "input/output error")])
def test_a_failed_write_says_why_in_plain_words_and_leaves_the_old_file(tmp_path, code, words):
    path = tmp_path / "run.json"
    path.write_text("old")

    def fails(f):
        f.write(b"half of it")
        raise OSError(code, os.strerror(code))

    with pytest.raises(WriteError) as info:
        atomic_write(path, fails, what="the run")
    message = str(info.value)
    assert message.startswith(f"{path}: cannot save the run: {words}")
    assert message.endswith("nothing was written, the existing file is unchanged") and "[Errno" not in message
    assert isinstance(info.value, OSError) and isinstance(info.value, DigitLabError)  # old callers catch OSError
    assert path.read_text() == "old" and leftovers(tmp_path) == []


def test_a_bug_in_the_writer_propagates_as_itself_and_leaves_nothing(tmp_path):
    def buggy(f):
        f.write(b"x")
        raise TypeError("not JSON serialisable")

    with pytest.raises(TypeError):
        atomic_write(tmp_path / "x.json", buggy)
    assert list(tmp_path.iterdir()) == []


def test_a_missing_folder_or_a_file_in_its_place_is_named(tmp_path):
    with pytest.raises(WriteError, match=r"cannot save weights: the folder .*nope does not exist$"):
        atomic_write(tmp_path / "nope" / "m.npz", b"x", what="weights")
    (tmp_path / "plain").write_text("x")
    with pytest.raises(WriteError, match=r"cannot save weights: the folder .*plain is not a folder$"):
        atomic_write(tmp_path / "plain" / "m.npz", b"x", what="weights")


def test_plain_words_for_os_errors():
    assert os_error_words(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))) == \
        f"the disk is full ({os.strerror(errno.ENOSPC)})"
    assert os_error_words(PermissionError(errno.EACCES, "Permission denied")) == "permission denied"
    assert os_error_words(OSError(errno.EDQUOT, "Disk quota exceeded")).startswith("your disk quota is used up")
    assert os_error_words(OSError(errno.EBADF, "Bad file descriptor")) == "Bad file descriptor"
    assert os_error_words(OSError("weird\x1bthing")) == "weird\\x1bthing"


# ----------------------------------------------------------------------------- checking before a long job

def test_check_can_write_finds_problems_before_any_work(tmp_path, monkeypatch):
    assert check_can_write(tmp_path / "m.npz") == tmp_path / "m.npz"
    (tmp_path / "file").write_text("x")
    (tmp_path / "dir.npz").mkdir()
    for path, fragment in ((tmp_path / "nope" / "m.npz", "nope does not exist"),
                           (tmp_path / "file" / "m.npz", "file is not a folder"),
                           (tmp_path / "dir.npz", "it is a folder; refusing to replace it")):
        with pytest.raises(WriteError, match=fragment):
            check_can_write(path, what="weights")
    monkeypatch.setattr(engine.util.os, "access", lambda path, mode: False)
    with pytest.raises(WriteError, match="is not writable"):
        check_can_write(tmp_path / "m.npz")


# ----------------------------------------------------------------------------- reading only regular files

def test_only_regular_files_are_opened(tmp_path):
    path = tmp_path / "m.npz"
    path.write_bytes(b"PK")
    assert check_regular_file(path) == path
    with open_regular_file(path) as f:
        assert f.read() == b"PK"
    fifo = tmp_path / "fifo.npz"
    os.mkfifo(fifo)
    cases = {tmp_path / "missing.npz": "missing.npz: no such file",
             tmp_path: "is a folder, not a file",
             fifo: r"fifo\.npz: is a named pipe \(FIFO\), not a regular file; refusing to read it",
             "/dev/zero": "/dev/zero: is a character device"}
    for bad, fragment in cases.items():
        with pytest.raises(InputFileError, match=fragment):
            check_regular_file(bad)


def test_an_unreadable_file_or_an_impossible_name_is_one_clear_error(tmp_path, monkeypatch):
    path = tmp_path / "secret.npz"
    path.write_bytes(b"PK")
    real_open = os.open

    def no_permission(name, *args, **kwargs):  # chmod 000 does not stop root, so the refusal is simulated
        if str(name) == str(path):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(name))
        return real_open(name, *args, **kwargs)

    monkeypatch.setattr(engine.util.os, "open", no_permission)
    with pytest.raises(InputFileError, match=r"secret\.npz: cannot read it: permission denied$"):
        check_regular_file(path)
    with pytest.raises(InputFileError, match="not a usable file name"):
        check_regular_file("bad\0name.npz")


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    done = threading.Event()

    def check():
        with pytest.raises(InputFileError):
            check_regular_file(fifo)
        done.set()

    thread = threading.Thread(target=check, daemon=True)
    thread.start()
    assert done.wait(5), "check_regular_file blocked on a FIFO"


def test_the_caller_chooses_the_error_class(tmp_path):
    class ImageProblem(DigitLabError):
        pass

    with pytest.raises(ImageProblem, match="no such file"):
        check_regular_file(tmp_path / "x.png", error=ImageProblem)


# ----------------------------------------------------------------------------- text from files

def test_printable_escapes_controls_and_shortens():
    text = printable(ESC + "A" * 5_000_000)
    assert "\x1b" not in text and text.startswith("\\x1b[2J") and len(text) < MAX_TEXT + 50
    assert printable("bad\udcffname\u202eevil\r\n") == "bad\\udcffname\\u202eevil\\r\\n"
    assert printable("ünïcode ok") == "ünïcode ok"


def test_bounded_jsonable_keeps_json_small_and_valid():
    deep: list = []
    node = deep
    for _ in range(10_000):
        node.append([])
        node = node[0]
    data = {ESC + "k" * 10_000: "v" * 5_000_000, "deep": deep, "big": 10 ** 5000, "nan": math.nan,
            "arr": np.arange(3), "f": np.float32(0.5), "obj": object()}
    out = bounded_jsonable(data)
    text = json.dumps(out)
    assert len(text) < 20_000 and "\x1b" not in text
    assert out["nan"] is None and out["arr"] == [0, 1, 2] and out["f"] == 0.5
    assert "bits" in out["big"] and "nested too deep" in text


def test_exported_runs_are_written_like_any_saved_file(tmp_path, umask):
    from engine.train.runs import RunRecord

    umask(0o022)
    record = RunRecord("run", {"lr": 0.1}, [1.0, 0.5], [{"epoch": 1, "test_accuracy": 0.5}])
    paths = [record.to_json(tmp_path / "run.json"), *record.to_csv(tmp_path / "run")]
    assert [mode_of(p) for p in paths] == [0o644] * 3
    (tmp_path / "blocker").write_text("a file where the folder should be")
    with pytest.raises(OSError, match=r"cannot create the folder .*blocker"):  # the window catches OSError
        record.to_json(tmp_path / "blocker" / "run.json")


@pytest.mark.parametrize("size, limit, chunk", [(10, 5, 4), (10, 10, 3), (10, 20, 1 << 20), (0, 5, 2)])
def test_read_limited_reads_at_most_one_byte_past_the_limit(size, limit, chunk):
    data = bytes(range(size))
    got = read_limited(io.BytesIO(data), limit, chunk)
    assert got == data[:limit + 1]


def test_read_limited_does_not_reserve_the_whole_limit_up_front():
    """A 1 GiB limit must not mean a 1 GiB read request for a small file (it fails under a memory cap)."""
    class Recorder(io.BytesIO):
        sizes: list = []

        def read(self, n=-1):
            self.sizes.append(n)
            return super().read(n)

    f = Recorder(b"x" * 100)
    assert read_limited(f, 1 << 30) == b"x" * 100
    assert max(f.sizes) <= 1 << 20


@pytest.mark.parametrize("mark", ["\u200e", "\u200f", "\u061c", "\u202e", "\u2066"])
def test_printable_escapes_direction_marks_and_overrides(mark):
    """Direction marks can make a file name read differently from what it is (e.g. 'exe.png' shown as 'gnp.exe')."""
    text = printable(f"photo{mark}gnp.exe")
    assert mark not in text and "\\u" in text
