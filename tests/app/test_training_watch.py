"""Training you can watch, and labels that are true at every moment: the pace, paused, reset, lr changes."""
import re
import time

import numpy as np
import pytest
from PySide6.QtCore import QTimer

from app.main_window import MainWindow
from app.run_controls import DEFAULT_PACE, PACES
from app.training_task import EVERY_STEP_PACE
from engine.train.loop import Progress
from widgets.loss_plot import REDRAW_MS

from _training import configure, synthetic_dataset, wait_paused


@pytest.fixture
def window(quiet_window):
    quiet_window.datasets.use(synthetic_dataset())
    quiet_window.show()
    return quiet_window


def stop(qtbot, w):
    w.training.stop()
    qtbot.waitUntil(lambda: w.session.training_state == "stopped", timeout=5000)


# ----- the pace -----
def test_the_first_run_is_paced_to_be_watched_and_the_pace_is_remembered(qtbot, quiet_window):
    panel = quiet_window.panel
    assert panel.pace() == DEFAULT_PACE <= EVERY_STEP_PACE  # fresh settings: every step of the first run shows
    assert [panel.pace_combo.itemData(i) for i in range(panel.pace_combo.count())] == [p for p, _ in PACES]
    assert panel.pace_combo.itemText(0) == "As fast as possible" and panel.pace_combo.toolTip()
    panel.pace_combo.setCurrentIndex(panel.pace_combo.findData(3.0))
    quiet_window.close()
    again = MainWindow(load_dataset_on_start=False, with_tabs=False)
    qtbot.addWidget(again)
    assert again.panel.pace() == 3.0
    again.panel.set_pace(None)
    assert again.settings.pace(DEFAULT_PACE) is None
    again.close()


def test_a_slow_pace_shows_every_step_in_the_plot_the_weights_and_the_prediction(qtbot, window, monkeypatch):
    page = window.training_page
    drawn, updates, reports = [], [], []
    real_set = page.weight_grid.set_weights
    monkeypatch.setattr(page.weight_grid, "set_weights", lambda w, *a, **k: (drawn.append(w), real_set(w, *a, **k)))
    real_show = page.show_progress
    monkeypatch.setattr(page, "show_progress", lambda p: (reports.append(p), real_show(p)))
    window.session.weightsUpdated.connect(lambda: updates.append(window.training.iteration))
    configure(window, pace=10)
    window.training.start()
    assert page.loss_plot.redraw_interval() == REDRAW_MS  # not held to twice a second as a fast run's plot is
    qtbot.wait(1500)
    done = window.training.iteration
    assert 7 <= done <= 22  # about 15 at 10 steps a second; loose, the machine may be busy
    stepping = [r for r in reports if len(r.losses)]
    assert [len(r.losses) for r in stepping] == [1] * len(stepping)  # one report per step, none merged
    assert len(stepping) == done and page.loss_plot.iteration_count == done
    assert updates[:done] == list(range(1, done + 1))  # the live prediction and the Models page follow each step
    assert len(drawn) >= done  # the weights view redrew for every step
    shown = int(re.search(r"(\d+) it/s", page.rate_label.text()).group(1))
    assert 8 <= shown <= 12  # measured between reports: a slow first step on a busy machine tips it to 11
    stop(qtbot, window)


def test_the_window_stays_responsive_when_every_step_is_shown(qtbot, window):
    window.datasets.use(synthetic_dataset(n_train=4000, n_test=500))
    configure(window, pace=EVERY_STEP_PACE, hidden=[100], batch_size=100, epochs=100)
    window.draw.canvas.set_image(np.pad(np.ones((20, 8), np.float32), ((4, 4), (10, 10))))  # predicted every step
    gaps, last = [], [time.perf_counter()]

    def tick():
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(tick)
    window.training.start()
    timer.start()
    qtbot.wait(1500)
    timer.stop()
    assert window.training.iteration > 15  # it trained and showed steps all along
    stop(qtbot, window)
    assert max(gaps[1:]) < 0.25, f"the event loop stalled for {max(gaps[1:]) * 1000:.0f} ms"


def test_a_pace_chosen_during_a_run_applies_at_once(qtbot, window):
    configure(window, pace=1, epochs=2)  # 120 iterations: two minutes at one step a second
    window.training.start()
    qtbot.waitUntil(lambda: window.training.iteration >= 1, timeout=5000)
    qtbot.wait(300)
    assert window.training.iteration == 1
    window.panel.pace_combo.setCurrentIndex(0)  # as fast as possible
    assert window.training.task.control.pace is None
    qtbot.waitUntil(lambda: window.session.training_state == "finished", timeout=10_000)
    assert window.training.iteration == 120
    assert window.settings.pace(DEFAULT_PACE) is None


def test_the_speed_shown_follows_a_new_pace_within_seconds(window):
    page = window.training_page
    page.begin_run(2000)
    for second in range(1, 11):  # ten seconds at 1 step/s …
        page.show_progress(Progress(second, 1, 100, 2000, np.ones(1), [], float(second)))
    assert "· 1 it/s, 33:10 left" in page.rate_label.text()
    for tick in range(1, 41):  # … then four seconds at 100 steps/s
        page.show_progress(Progress(10 + 10 * tick, 1, 100, 2000, np.ones(10), [], 10 + tick / 10))
    assert "· 100 it/s, 0:16 left" in page.rate_label.text()  # not the 29 it/s average since the start


def test_no_speed_is_shown_before_half_a_second_of_reports_and_never_above_the_pace(window):
    page = window.training_page
    page.begin_run(120, pace=3.0)
    page.show_progress(Progress(1, 1, 60, 120, np.ones(1), [], 0.003))  # the first step goes at once
    assert page.rate_label.text() == "epoch 1/2 · iteration 1/120 · measuring the speed…"  # not "297 it/s"
    page.show_progress(Progress(2, 1, 60, 120, np.ones(1), [], 0.336))
    assert "it/s" not in page.rate_label.text()  # two reports, but only a third of a second apart
    page.show_progress(Progress(3, 1, 60, 120, np.ones(1), [], 0.669))
    assert page.rate_label.text().endswith("· 3 it/s, 0:39 left")


def test_a_new_pace_shows_in_the_speed_at_once_not_after_the_window(window):
    page = window.training_page
    page.begin_run(20_000)
    for tick in range(1, 31):  # three seconds as fast as possible, about 82 steps a second
        page.show_progress(Progress(8 * tick, 1, 100, 20_000, np.ones(8), [], tick / 10))
    assert "· 80 it/s" in page.rate_label.text()
    page.restart_speed(1.0)  # the pace is now 1 step/s
    page.show_progress(Progress(244, 1, 100, 20_000, np.ones(4), [], 3.03))  # fast steps still on their way
    assert "it/s" not in page.rate_label.text()
    page.show_progress(Progress(245, 1, 100, 20_000, np.ones(1), [], 4.03))
    assert page.rate_label.text().endswith("· 1 it/s, 5:29:15 left")  # not "82 it/s, 0:08 left"


def test_choosing_a_slow_pace_mid_run_shows_its_speed_within_two_seconds(qtbot, window):
    configure(window, pace=None, epochs=200)
    window.training.start()
    qtbot.waitUntil(lambda: window.training.iteration > 100, timeout=5000)
    qtbot.wait(500)
    window.panel.pace_combo.setCurrentIndex(window.panel.pace_combo.findData(1.0))
    label = window.training_page.rate_label
    qtbot.waitUntil(lambda: " 1 it/s, " in label.text(), timeout=2500)
    left = label.text().split("it/s, ")[1].split(" left")[0]
    assert len(left.split(":")) == 3  # hours left at one step a second, not seconds
    stop(qtbot, window)


def test_step_trains_one_mini_batch_at_once_whatever_the_pace(qtbot, window):
    configure(window, pace=1)
    window.training.start(step="one")
    wait_paused(qtbot, window)
    began = time.monotonic()
    for expected in (2, 3, 4):
        window.training.step()
        qtbot.waitUntil(lambda: window.training.iteration == expected, timeout=5000)
    assert time.monotonic() - began < 2.5  # not one second each
    stop(qtbot, window)


# ----- labels -----
def test_the_network_label_says_paused_with_the_iterations_so_far(qtbot, window):
    configure(window)
    window.training.start()
    qtbot.waitUntil(lambda: window.training.iteration > 0, timeout=5000)
    assert window.session.network_label.endswith("(training)")
    window.training.pause()
    wait_paused(qtbot, window)
    n = window.training.iteration
    assert window.session.network_label.endswith(f"(paused after {n:,} iterations)")
    assert "training" not in window.session.network_label.split("(")[-1]
    window.training.step()
    qtbot.waitUntil(lambda: window.session.network_label.endswith(f"(paused after {n + 1:,} iterations)"),
                    timeout=5000)
    window.training.resume()
    assert window.session.network_label.endswith("(training)")
    stop(qtbot, window)
    assert window.session.network_label.endswith(f"(stopped after {window.training.iteration:,} iterations)")


def test_reset_says_what_happened_instead_of_the_last_run(qtbot, window):
    configure(window)
    window.training.start()
    qtbot.waitUntil(lambda: window.training.iteration > 5, timeout=5000)
    stop(qtbot, window)
    assert window.statusBar().currentMessage().startswith("Stopped after")
    window.panel.action_reset.trigger()
    assert window.statusBar().currentMessage().startswith("New untrained network, 784-20-10 relu")
    assert window.session.network_label == "784-20-10 relu (untrained)"
    assert window.training_page.rate_label.text().startswith("New untrained network")
    assert window.training_page.loss_plot.iteration_count == 0 and window.session.training_state == "idle"


def test_a_learning_rate_changed_during_a_run_shows_in_its_label_name_history_and_record(qtbot, window):
    configure(window, lr=0.1, epochs=1)
    window.training.start(step="one")
    wait_paused(qtbot, window)
    window.training.step()
    qtbot.waitUntil(lambda: window.training.iteration == 2, timeout=5000)
    wait_paused(qtbot, window)
    window.panel.lr.setValue(0.05)
    window.training.step()
    change = "lr 0.1 → 0.05 at iteration 3"
    qtbot.waitUntil(lambda: change in window.session.network_label, timeout=5000)
    assert window.session.network_label.endswith("(paused after 3 iterations)")
    page = window.training_page
    assert page.history() == [change] and change in page.history_label.text()
    assert page.loss_plot.markers() == [(3, "lr 0.1 → 0.05")]
    with qtbot.waitSignal(window.session.runAdded, timeout=10_000) as blocker:
        window.training.resume()
    record = blocker.args[0]
    assert change in record.name and record.name.startswith("Run 1: 784-20-10 relu, sgd lr 0.1 → 0.05")
    assert record.settings["lr"] == 0.1  # the rate the run started with …
    assert record.settings["lr_changes"] == [{"iteration": 3, "from": 0.1, "to": 0.05}]  # … and what changed when
    assert record.settings["optimizer_changes"] == []
    assert change in window.session.network_label and "(finished, 1 epoch)" in window.session.network_label


def test_the_train_page_explains_its_plots(window):
    page = window.training_page
    assert "≈5-batch window" in page.loss_help.text() and page.loss_help.text().startswith("How to read it")
    assert page.weights_help.text().startswith("How to read it") and "Red" in page.weights_help.text()
    for widget in (window.panel.pace_combo, page.history_label, page.loss_plot, page.weight_grid,
                   *window.panel.buttons.values()):
        assert widget.toolTip(), widget
