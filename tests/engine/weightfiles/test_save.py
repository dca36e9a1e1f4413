"""Saving weights: permissions as an editor gives them, links written through, problems found before the work,
and a full disk reported in plain words with nothing half-written."""
from __future__ import annotations

import errno
import os
import stat

import numpy as np
import pytest

import engine.weightfiles.save as saver
from engine.errors import WeightFileError
from engine.nn.network import make_mlp
from engine.weightfiles.recognise import load_weights
from engine.weightfiles.save import check_save_path, save_format, save_weights


@pytest.fixture
def net():
    return make_mlp([784, 12, 10], "sigmoid", seed=3)


@pytest.fixture
def umask():
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


def mode_of(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("name", ["model.npz", "model.pkl"])
@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o077, 0o600)])
def test_saved_weights_respect_the_umask(tmp_path, umask, net, name, mask, expected):
    umask(mask)
    assert mode_of(save_weights(net, tmp_path / name)) == expected


def test_saving_again_keeps_the_permissions_someone_gave_the_file(tmp_path, umask, net):
    path = save_weights(net, tmp_path / "model.npz")
    path.chmod(0o664)
    umask(0o077)
    save_weights(net, path)
    assert mode_of(path) == 0o664


def test_saving_to_a_link_writes_through_to_its_target(tmp_path, net):
    store = tmp_path / "store"
    store.mkdir()
    target = save_weights(make_mlp([784, 12, 10], "sigmoid", seed=9), store / "v1.npz")
    link = tmp_path / "current.npz"
    link.symlink_to(target)
    save_weights(net, link)
    assert link.is_symlink()
    loaded = load_weights(target)
    for k, v in net.params.items():
        np.testing.assert_array_equal(loaded.network.params[k], v)
    assert sorted(p.name for p in store.iterdir()) == ["v1.npz"]


def test_the_format_comes_from_the_suffix_or_is_refused_clearly(tmp_path):
    assert save_format(tmp_path / "a.NPZ") == "npz" and save_format(tmp_path / "a.pickle") == "pickle"
    assert save_format(tmp_path / "a.weights", "npz") == "npz"
    with pytest.raises(WeightFileError, match=r"a\.txt: unknown weight file suffix '\.txt': use \.npz .* \.pkl"):
        save_format(tmp_path / "a.txt")
    with pytest.raises(WeightFileError, match="unknown weight file suffix '\\(none\\)'"):
        save_format(tmp_path / "model")
    with pytest.raises(WeightFileError, match="unknown weight format 'h5'"):
        save_format(tmp_path / "a.npz", "h5")


def test_check_save_path_finds_every_problem_before_training(tmp_path, monkeypatch):
    assert check_save_path(tmp_path / "m.pkl") == "pickle"
    (tmp_path / "taken.npz").mkdir()
    for path, fragment in ((tmp_path / "m.txt", "unknown weight file suffix"),
                           (tmp_path / "missing" / "m.npz", r"m\.npz: cannot save weights: the folder .*missing does "
                                                            "not exist"),
                           (tmp_path / "taken.npz", "it is a folder; refusing to replace it")):
        with pytest.raises(WeightFileError, match=fragment):
            check_save_path(path)
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # as when the folder is read-only (even for root)
    with pytest.raises(WeightFileError, match="is not writable"):
        check_save_path(tmp_path / "m.npz")
    assert list(tmp_path.iterdir()) == [tmp_path / "taken.npz"]


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "the disk is full"),
                                         (errno.EDQUOT, "your disk quota is used up"),
                                         (errno.EROFS, "the disk is read-only"),
                                         (errno.EACCES, "permission denied")])
def test_a_failed_save_names_the_file_says_why_and_leaves_nothing_half_written(tmp_path, monkeypatch, net, code,
                                                                                words):
    path = save_weights(make_mlp([784, 10], "relu", seed=1), tmp_path / "model.npz")
    before = path.read_bytes()

    def fails(f, params, meta_json):
        f.write(b"PK\x03\x04 half a zip")
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(saver, "_write_npz", fails)
    with pytest.raises(WeightFileError) as info:
        save_weights(net, path)
    message = str(info.value)
    assert message.startswith(f"{path}: cannot save weights: {words}") and "[Errno" not in message
    assert "nothing was written" in message and "unchanged" in message
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]


@pytest.mark.parametrize("metadata, why", [({"note": "A" * 2_000_000}, "characters"),
                                           ({"deep": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]},
                                            "nested")])
def test_metadata_the_reader_would_refuse_is_not_written(tmp_path, net, metadata, why):
    """Saving succeeds only when the file loads again: what the reader limits, the saver refuses up front."""
    path = tmp_path / "w.npz"
    with pytest.raises(WeightFileError, match=f"could not be read back.*{why}"):
        save_weights(net, path, metadata=metadata)
    assert not path.exists()
    save_weights(net, path, metadata={"note": "A" * 1000})
    assert load_weights(path).network.spec() == net.spec()


@pytest.mark.parametrize("path, message", [("", "no file name given"), ("   ", "no file name given"),
                                           ("out.npz/", "names a folder")])
def test_an_empty_name_or_a_folder_name_is_refused_before_training(tmp_path, monkeypatch, path, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(WeightFileError, match=message):
        check_save_path(path)
    assert list(tmp_path.iterdir()) == []
