"""RunRecord: JSON and CSV round trips, atomic writes, clear errors for broken files."""
import csv
import json

import numpy as np
import pytest

from engine.train.config import TrainConfig
from engine.train.runs import RunFileError, RunRecord


def _record():
    epochs = [{"epoch": 1, "iteration": 40, "train_loss": 0.5, "train_accuracy": 0.8, "test_loss": 0.6,
               "test_accuracy": 0.78, "seconds": 1.5},
              {"epoch": 2, "iteration": 80, "train_loss": 0.3, "train_accuracy": 0.9, "test_loss": None,
               "test_accuracy": None, "seconds": 3.0}]
    losses = np.linspace(2.3, 0.2, 80) + np.random.default_rng(0).normal(0, 0.01, 80)
    return RunRecord("adam lr=0.001", TrainConfig(hidden=[30]).to_dict(), losses, epochs, "finished")


def test_json_round_trip_keeps_everything(tmp_path):
    rec = _record()
    path = rec.to_json(tmp_path / "sub" / "run.json")
    back = RunRecord.from_json(path)
    assert back.name == rec.name and back.status == rec.status and back.created == rec.created
    assert back.settings == rec.settings
    np.testing.assert_array_equal(back.losses, rec.losses)  # repr of floats round-trips exactly
    assert back.epochs == rec.epochs
    assert back.final_test_accuracy == 0.78
    assert TrainConfig.from_dict(back.settings) == TrainConfig(hidden=[30])
    assert [p.name for p in path.parent.iterdir()] == ["run.json"]  # no temporary file left behind


def test_non_finite_losses_are_stored_as_null(tmp_path):
    rec = RunRecord("diverged", {"lr": np.float32(5.0)}, np.array([1.0, np.inf, np.nan]), [], "diverged")
    path = rec.to_json(tmp_path / "d.json")
    data = json.loads(path.read_text())
    assert data["losses"] == [1.0, None, None]
    back = RunRecord.from_json(path)
    assert back.losses[0] == 1.0 and np.isnan(back.losses[1:]).all()
    assert back.settings == {"lr": 5.0}


def test_csv_files(tmp_path):
    rec = _record()
    loss_path, epoch_path = rec.to_csv(tmp_path / "run.csv")
    assert loss_path.name == "run-losses.csv" and epoch_path.name == "run-epochs.csv"
    rows = list(csv.reader(loss_path.read_text().splitlines()))
    assert rows[0] == ["iteration", "loss"] and len(rows) == 81
    np.testing.assert_array_equal([float(r[1]) for r in rows[1:]], rec.losses)
    assert [int(r[0]) for r in rows[1:]] == list(range(1, 81))
    rows = list(csv.DictReader(epoch_path.read_text().splitlines()))
    assert len(rows) == 2
    assert float(rows[0]["test_accuracy"]) == 0.78 and rows[1]["test_accuracy"] == ""


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "expected a JSON object"),
    ('{"format": "other"}', "not a DigitLab run file"),
    ('{"format": "digitlab-run", "version": 99, "name": "x", "losses": []}', "version 99 is not supported"),
    ('{"format": "digitlab-run", "version": 1, "name": "", "losses": []}', "'name' must be a non-empty string"),
    ('{"format": "digitlab-run", "version": 1, "name": "x", "losses": ["a"]}', "'losses' must be a list of numbers"),
    ('{"format": "digitlab-run", "version": 1, "name": "x", "losses": [], "epochs": [1]}', "'epochs' must be"),
])
def test_broken_files_give_clear_errors(tmp_path, content, message):
    path = tmp_path / "broken.json"
    path.write_text(content)
    with pytest.raises(RunFileError, match=message) as info:
        RunRecord.from_json(path)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(RunFileError, match="no such run file"):
        RunRecord.from_json(tmp_path / "nope.json")


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = _record().to_json(tmp_path / "run.json")
    before = path.read_text()
    bad = RunRecord("x", {"obj": object()}, [1.0])
    with pytest.raises(TypeError):
        bad.to_json(path)
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]


def test_learning_rate_changes_round_trip_and_tell_the_history(tmp_path):
    settings = {**TrainConfig(hidden=[100], lr=0.001).to_dict(),
                "lr_changes": [{"iteration": np.int64(812), "from": np.float32(0.001), "to": 0.05}]}
    rec = RunRecord("Run 1", settings, np.linspace(2, 0.1, 1500))
    assert rec.lr_changes == [{"iteration": 812, "from": pytest.approx(0.001), "to": 0.05}]
    back = RunRecord.from_json(rec.to_json(tmp_path / "run.json"))
    assert back.lr_changes == rec.lr_changes and back.settings == rec.settings
    assert back.title() == "Adam lr 0.001→0.05@812 · batch 100 · seed 0"
    assert "lr 0.001 → 0.05 at iteration 812" in back.history()
    assert RunRecord("plain", {}, [1.0]).lr_changes == []


@pytest.mark.parametrize("changes, message", [
    ("0.05", "'lr_changes' must be a list"),
    ([5], r"lr_changes\[0\] must be an object"),
    ([{"iteration": -1, "from": 0.1, "to": 0.2}], "'iteration' must be a whole number"),
    ([{"iteration": 1.5, "from": 0.1, "to": 0.2}], "'iteration' must be a whole number"),
    ([{"iteration": True, "from": 0.1, "to": 0.2}], "'iteration' must be a whole number"),
    ([{"iteration": 3, "from": 0.1}], "'from' and 'to' must be learning rates"),
    ([{"iteration": 3, "from": 0.1, "to": "fast"}], "'from' and 'to' must be learning rates"),
    ([{"iteration": 3, "from": 0.1, "to": 0}], "'from' and 'to' must be learning rates"),
    ([{"iteration": 3, "from": 0.1, "to": 10**400}], "'from' and 'to' must be learning rates"),
    ([{"iteration": 9, "from": 0.1, "to": 0.2}, {"iteration": 3, "from": 0.2, "to": 0.3}], "comes before"),
])
def test_broken_learning_rate_changes_are_refused_like_other_fields(tmp_path, changes, message):
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"format": "digitlab-run", "version": 1, "name": "x", "losses": [1.0],
                                "settings": {"lr": 0.1, "lr_changes": changes}}))
    with pytest.raises(RunFileError, match=message) as info:
        RunRecord.from_json(path)
    assert str(info.value).startswith(f"{path}: ")
    with pytest.raises(RunFileError, match=message):
        RunRecord("x", {"lr_changes": changes}, [1.0])  # a run recorded in the window is held to the same rules
