"""Run files from elsewhere are data: anything that is not a DigitLab run is one RunFileError naming the file,
never a hang (FIFO, device), a traceback (deep nesting, huge numbers) or gigabytes read."""
from __future__ import annotations

import os

import pytest

import engine.train.runs as runs
from engine.train.runs import RunFileError, RunRecord


@pytest.mark.parametrize("name, content, fragment", [
    ("deep.json", b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ("bigint.json", b'{"format": "digitlab-run", "version": ' + b"9" * 5000 + b"}", "not a run file: Exceeds the limit"),
    ("latin1.json", b'{"name": "caf\xe9"}', "not UTF-8 text"),
    ("cut.json", b'{"format": "digitlab-run", "losses": [1.0,', "not valid JSON"),
])
def test_broken_run_files_are_one_clear_error(tmp_path, name, content, fragment):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(RunFileError, match=fragment) as info:
        RunRecord.from_json(path)
    assert str(info.value).startswith(f"{path}: ")


def test_a_fifo_a_device_or_a_folder_is_refused_without_reading(tmp_path):
    fifo = tmp_path / "run.json"
    os.mkfifo(fifo)
    for path, fragment in ((fifo, "named pipe"), ("/dev/zero", "character device"), (tmp_path, "is a folder")):
        with pytest.raises(RunFileError, match=fragment):
            RunRecord.from_json(path)


def test_an_oversized_run_file_is_refused_before_parsing(tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "MAX_RUN_FILE_BYTES", 1000)
    path = tmp_path / "big.json"
    path.write_text("[" + "1.0," * 1000 + "1.0]")
    with pytest.raises(RunFileError, match="too large for a run file"):
        RunRecord.from_json(path)


def test_escapes_in_a_file_name_are_shown_escaped(tmp_path):
    with pytest.raises(RunFileError, match=r"evil\\x1b\[2J\.json: no such run file"):
        RunRecord.from_json(tmp_path / "evil\x1b[2J.json")
