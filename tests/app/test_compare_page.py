"""The Compare page: races with identical seeds, live curves, run export and import."""
import json

import numpy as np
import pytest
from PySide6.QtCore import Qt

from app.session import Session
from app.tabs.compare import ComparePage, smooth_losses
from app.tabs.race_panel import ComparePageError, parse_rates
from engine.data.dataset import Dataset
from engine.registry import OPTIMIZER_CHOICES
from engine.train.runs import RunRecord


@pytest.fixture(scope="module")
def dataset(small_dataset):
    return small_dataset


@pytest.fixture
def panel(qtbot, dataset, tasks):
    session = Session()
    session.set_dataset(dataset)
    p = ComparePage(session, tasks)
    qtbot.addWidget(p)
    p.resize(1240, 600)
    return p


def live_keys(panel):
    return [k for k in panel.plot.overlay_keys() if k.startswith("race:")]


def test_optimizer_race_gives_one_curve_each_from_identical_weights(qtbot, panel):
    race = panel.race
    race.hidden_edit.setText("30")
    race.iterations_spin.setValue(60)
    race.batch_spin.setValue(64)
    updates = []
    panel.plot.append_overlay = _spy(panel.plot.append_overlay, updates)
    with qtbot.waitSignal(panel.raceFinished, timeout=60_000) as blocker:
        qtbot.mouseClick(race.race_button, Qt.MouseButton.LeftButton)
        assert panel.is_racing() and not race.race_button.isEnabled() and race.stop_button.isEnabled()
    result = blocker.args[0]
    assert result.status == "finished"
    qtbot.waitUntil(lambda: not panel.is_racing())
    assert [r.name for r in panel.session.runs] == ["SGD lr 0.01", "Momentum lr 0.01", "AdaGrad lr 0.01",
                                                    "Adam lr 0.001"]
    assert [panel.runs.label(k) for k in panel.run_keys()] == [
        "SGD lr 0.01 · batch 64 · seed 0", "Momentum lr 0.01 · batch 64 · seed 0",
        "AdaGrad lr 0.01 · batch 64 · seed 0", "Adam lr 0.001 · batch 64 · seed 0"]
    assert sorted(panel.plot.overlay_keys()) == sorted(panel.run_keys())  # live race curves replaced by runs
    assert updates, "the curves did not grow while the race ran"
    first = {r.losses[0] for r in panel.session.runs}
    assert len(first) == 1  # identical starting weights and first batch
    assert all(len(r.losses) == 60 and r.status == "finished" for r in panel.session.runs)
    assert all(r.epochs and r.epochs[-1]["test_accuracy"] is not None for r in panel.session.runs)
    assert "Race finished" in race.status.full_text()


def test_learning_rate_race_and_stop(qtbot, panel):
    race = panel.race
    race.mode_box.setCurrentIndex(race.mode_box.findData("rates"))
    race.optimizer_box.setCurrentIndex(race.optimizer_box.findData("sgd"))
    race.rates_edit.setText("0.1, 0.01")
    race.hidden_edit.setText("20")
    race.iterations_spin.setValue(100_000)
    with qtbot.waitSignal(panel.raceFinished, timeout=30_000) as blocker:
        panel.start_race()
        qtbot.waitUntil(lambda: any(len(panel.plot.overlay_data(k)[0]) for k in live_keys(panel)), timeout=10_000)
        qtbot.mouseClick(race.stop_button, Qt.MouseButton.LeftButton)
    result = blocker.args[0]
    assert result.status == "stopped" and result.iterations < 100_000
    assert [r.name for r in panel.session.runs] == ["SGD lr 0.1", "SGD lr 0.01"]
    assert all(r.status == "stopped" for r in panel.session.runs)
    a, b = panel.session.runs
    assert len(a.losses) == len(b.losses) == result.iterations and a.losses[0] == b.losses[0]


def test_bad_race_settings_are_explained(panel):
    race = panel.race
    race.mode_box.setCurrentIndex(race.mode_box.findData("rates"))
    race.rates_edit.setText("0.1, fast")
    panel.start_race()
    assert not panel.is_racing() and "'fast' is not a number" in race.status.full_text()
    with pytest.raises(ComparePageError, match="must be positive"):
        parse_rates("0.1 -2")
    with pytest.raises(ComparePageError, match="only once"):
        parse_rates("0.1, 0.10")
    assert parse_rates("0.1, 0.01 1e-3") == [0.1, 0.01, 0.001]
    race.rates_edit.setText("0.1")
    race.hidden_edit.setText("100, x")  # sizes are read as everywhere else (engine.train.config.parse_hidden)
    panel.start_race()
    assert not panel.is_racing() and "hidden layer sizes look like 100 or 256,128" in race.status.full_text()
    panel.session.set_dataset(Dataset("test-only", None, None, np.zeros((5, 784), np.float32), np.zeros(5, int)))
    assert not race.race_button.isEnabled()
    panel.start_race()
    assert not panel.is_racing() and "training images" in race.status.full_text()


def test_export_import_round_trip(qtbot, panel, tmp_path):
    rec = RunRecord("my run", {"optimizer": "adam", "lr": 0.001}, np.linspace(2, 0.1, 300),
                    [{"epoch": 1, "iteration": 300, "train_loss": 0.2, "train_accuracy": 0.9, "test_loss": 0.3,
                      "test_accuracy": 0.88, "seconds": 2.0}], "finished")
    panel.session.add_run(rec)
    key = panel.key_of(rec)
    assert key in panel.plot.overlay_keys()
    written = panel.export_run(key, tmp_path / "exported")
    assert {p.name for p in written} == {"exported.json", "exported-losses.csv", "exported-epochs.csv",
                                         "exported.png"}
    assert all(p.stat().st_size > 0 for p in written)
    back = panel.import_run(tmp_path / "exported.json")
    assert panel.session.runs[-1] is back and len(panel.run_keys()) == 2
    np.testing.assert_array_equal(back.losses, rec.losses)
    assert back.settings == rec.settings and back.epochs == rec.epochs
    assert panel.key_of(back) in panel.plot.overlay_keys()
    assert [panel.title(k) for k in panel.run_keys()] == ["Adam lr 0.001", "Adam lr 0.001 #2"]  # twins told apart


def test_import_of_a_broken_file_shows_an_error(qtbot, panel, tmp_path, monkeypatch):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "something else"}))
    errors = []
    monkeypatch.setattr(panel, "show_error", lambda title, text: errors.append((title, text)))
    monkeypatch.setattr("app.tabs.compare.QFileDialog.getOpenFileName", lambda *a, **k: (str(bad), ""))
    qtbot.mouseClick(panel.import_button, Qt.MouseButton.LeftButton)
    assert errors and "not a DigitLab run file" in errors[0][1]
    assert panel.session.runs == [] and panel.run_keys() == []


def test_checkboxes_toggle_the_curves_and_remove_takes_the_selection(qtbot, panel):
    runs = [RunRecord(f"run {i}", {}, np.linspace(2, 0.1 * i, 50)) for i in range(1, 5)]
    for r in runs:
        panel.session.add_run(r)
    keys = panel.run_keys()
    panel.runs.set_checked(keys[1], False)
    assert keys[1] not in panel.plot.overlay_keys() and keys[0] in panel.plot.overlay_keys()
    panel.runs.set_checked(keys[1], True)
    assert keys[1] in panel.plot.overlay_keys()
    assert not panel.export_button.isEnabled() and not panel.remove_button.isEnabled()  # nothing selected
    panel.runs.set_current(keys[2])
    assert panel.export_button.isEnabled()
    qtbot.mouseClick(panel.remove_button, Qt.MouseButton.LeftButton)
    assert panel.run_keys() == [keys[0], keys[1], keys[3]] and keys[2] not in panel.plot.overlay_keys()
    panel.runs.set_selected([keys[0], keys[3]])
    qtbot.mouseClick(panel.remove_button, Qt.MouseButton.LeftButton)
    assert panel.run_keys() == [keys[1]] and panel.plot.overlay_keys() == [keys[1]]
    assert [e.label for e in panel.plot.legend_entries()] == ["run 2"]


def test_runs_from_before_the_panel_are_listed(qtbot, dataset, tasks):
    session = Session()
    session.add_run(RunRecord("earlier", {}, np.ones(10)))
    p = ComparePage(session, tasks)
    qtbot.addWidget(p)
    assert [p.runs.label(k) for k in p.run_keys()] == ["earlier"]


def test_smoothing_keeps_length_and_level():
    y = np.r_[np.full(50, 2.0), np.full(50, 1.0)] + np.tile([0.1, -0.1], 50)
    s = smooth_losses(y)
    assert s.shape == y.shape
    assert np.abs(s[:40] - 2.0).max() < 0.05 and np.abs(s[-40:] - 1.0).max() < 0.05  # the ends are not pulled down
    np.testing.assert_array_equal(smooth_losses(np.array([1.0, 2.0])), [1.0, 2.0])


def test_live_curves_grow_in_place_while_the_race_runs(qtbot, panel):
    """Each report's new losses are appended to the curve's buffer; nothing re-joins the whole curve."""
    panel.race.hidden_edit.setText("20")
    panel.race.iterations_spin.setValue(1000)
    panel.race.batch_spin.setValue(32)
    plot, seen, capacities, replaced = panel.plot, {}, {}, []
    real_append = plot.append_overlay
    panel.plot.update_overlay = lambda *args, **kwargs: replaced.append(args)

    def append(key, losses, iterations=None):
        real_append(key, losses, iterations)
        seen.setdefault(key, []).append(np.array(losses))
        x, y = plot.overlay_data(key)
        np.testing.assert_array_equal(y, np.concatenate(seen[key]))  # the curve is every chunk so far, in order
        np.testing.assert_array_equal(x, np.arange(1, len(y) + 1))
        capacities.setdefault(key, set()).add(plot.overlay_capacity(key))

    plot.append_overlay = append
    with qtbot.waitSignal(panel.raceFinished, timeout=60_000) as blocker:
        panel.start_race()
    assert replaced == []
    for racer in blocker.args[0].racers:
        key = f"race:{racer.label}"
        assert len(seen[key]) > 2  # it grew in several steps
        np.testing.assert_array_equal(np.concatenate(seen[key]), racer.losses)  # and lost nothing on the way
        assert len(capacities[key]) <= int(np.log2(len(racer.losses))) + 1  # buffers double: few re-allocations
    assert live_keys(panel) == []  # finished: the runs take over from the live curves


def test_smoothing_is_applied_when_drawn_and_exports_stay_raw(qtbot, panel):
    rng = np.random.default_rng(0)
    losses = 1.0 + 0.5 * rng.random(300)
    panel.session.add_run(RunRecord("noisy", {}, losses))
    key = panel.run_keys()[0]
    qtbot.waitUntil(lambda: panel.plot.redraw_count > 0, timeout=2000)
    np.testing.assert_allclose(panel.plot.overlay_data(key, drawn=True)[1], smooth_losses(losses))
    assert "smoothed over 21 iterations" in panel.plot.loss_help.text()
    panel.smooth_box.setChecked(False)
    qtbot.waitUntil(lambda: np.array_equal(panel.plot.overlay_data(key, drawn=True)[1], losses), timeout=2000)
    np.testing.assert_array_equal(panel.plot.overlay_data(key)[1], losses)  # the plot keeps the raw values
    assert "raw" in panel.plot.loss_help.text()  # the help line says what is drawn


def test_the_optimizer_list_is_the_engine_registry(panel):
    box = panel.race.optimizer_box
    assert [(box.itemData(i), box.itemText(i)) for i in range(box.count())] == [
        (c.name, c.label) for c in OPTIMIZER_CHOICES]
    assert panel.race.mode_box.itemText(0) == "The book's optimizers"
    assert "SGD (lr 0.01), Momentum (lr 0.01), AdaGrad (lr 0.01), Adam (lr 0.001)" in panel.race.mode_box.toolTip()


def _spy(fn, calls):
    def wrapper(*args, **kwargs):
        calls.append(args[0])
        return fn(*args, **kwargs)
    return wrapper
