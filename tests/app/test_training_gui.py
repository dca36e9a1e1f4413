"""Live training in the main window: a worker thread, a responsive event loop, and buttons that do what they say."""
import threading
import time

import numpy as np
import pytest

from PySide6.QtCore import QEvent, QObject, QThread, QTimer
from PySide6.QtWidgets import QWidget

import app.controllers.training as training_controller
import app.training_task as training_task_module
from app.coalescer import VIEWS_INTERVAL, WEIGHTS_INTERVAL
from engine.train.loop import Progress, counted

from _training import configure, synthetic_dataset, wait_paused


@pytest.fixture
def window(quiet_window):
    quiet_window.datasets.use(synthetic_dataset())
    quiet_window.show()
    return quiet_window


def test_training_runs_on_a_worker_thread(qtbot, window, monkeypatch):
    threads = []
    real_train = training_task_module.train

    def spy(*args, **kwargs):
        threads.append(threading.get_ident())
        return real_train(*args, **kwargs)

    monkeypatch.setattr(training_task_module, "train", spy)
    configure(window, epochs=1)
    with qtbot.waitSignal(window.session.runAdded, timeout=10_000) as blocker:
        assert window.training.start()
    assert threads and threads[0] != threading.get_ident()
    assert blocker.args[0].status == "finished"
    assert window.session.training_state == "finished"
    assert window.training.iteration == 60  # 600 images / batch 10, one epoch
    assert window.training_page.loss_plot.iteration_count == 60  # every loss reached the plot


def test_event_loop_stays_responsive_while_training(qtbot, window):
    window.datasets.use(synthetic_dataset(n_train=4000, n_test=500))  # MNIST-sample sized: 40 iterations/epoch
    configure(window, hidden=[100], batch_size=100, epochs=100)
    gaps = []
    last = [time.perf_counter()]

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
    assert window.training.iteration > 20 and window.training.is_training  # it really trained all along
    window.training.stop()
    qtbot.waitUntil(lambda: window.session.training_state == "stopped", timeout=5000)
    assert len(gaps) > 10
    assert max(gaps[1:]) < 0.25, f"the event loop stalled for {max(gaps[1:]) * 1000:.0f} ms"


def test_pause_step_step_epoch_resume_and_stop(qtbot, window):
    configure(window)
    window.training.start()
    qtbot.waitUntil(lambda: window.training.iteration > 0, timeout=5000)
    window.panel.action_pause.trigger()
    assert window.session.training_state == "paused"
    wait_paused(qtbot, window)
    paused_at = window.training.iteration
    qtbot.wait(200)
    assert window.training.iteration == paused_at  # nothing trains while paused

    window.panel.action_step.trigger()
    qtbot.waitUntil(lambda: window.training.iteration == paused_at + 1, timeout=5000)
    wait_paused(qtbot, window)
    qtbot.wait(100)
    assert window.training.iteration == paused_at + 1  # exactly one mini-batch

    window.panel.action_step_epoch.trigger()
    qtbot.waitUntil(lambda: window.training.iteration % 60 == 0, timeout=5000)  # 60 iterations per epoch
    wait_paused(qtbot, window)
    epoch_end = window.training.iteration
    assert epoch_end > paused_at + 1 and epoch_end % 60 == 0

    window.panel.action_resume.trigger()
    assert window.session.training_state == "running"
    qtbot.waitUntil(lambda: window.training.iteration > epoch_end + 5, timeout=5000)

    with qtbot.waitSignal(window.session.runAdded, timeout=5000) as blocker:
        window.panel.action_stop.trigger()
    record = blocker.args[0]
    assert record.status == "stopped"
    assert window.session.training_state == "stopped"
    assert len(record.losses) == window.training.iteration
    assert window.panel.action_start.isEnabled() and not window.panel.action_stop.isEnabled()


def test_step_when_idle_starts_paused_after_one_iteration(qtbot, window):
    configure(window)
    window.panel.action_step.trigger()
    assert window.session.training_state == "paused"
    qtbot.waitUntil(lambda: window.training.iteration == 1, timeout=5000)
    wait_paused(qtbot, window)
    qtbot.wait(100)
    assert window.training.iteration == 1


def test_settings_that_shape_the_network_are_frozen_while_running(qtbot, window):
    configure(window)
    panel = window.panel
    assert panel.architecture.isEnabled() and panel.hidden.isEnabled()
    window.training.start()
    for w in (panel.dataset, panel.architecture, panel.hidden, panel.activation, panel.batch_size, panel.epochs):
        assert not w.isEnabled()
    for w in (panel.optimizer, panel.lr):
        assert w.isEnabled()
    assert not panel.action_start.isEnabled() and not panel.action_reset.isEnabled()
    window.training.stop()
    qtbot.waitUntil(lambda: window.session.training_state == "stopped", timeout=5000)
    assert panel.architecture.isEnabled() and panel.hidden.isEnabled()


def test_learning_rate_and_optimizer_changes_reach_the_running_loop(qtbot, window, monkeypatch):
    optimizers = []

    class Spy(training_controller.TrainingTask):
        def __init__(self, network, optimizer, *args, **kwargs):
            optimizers.append(optimizer)
            super().__init__(network, optimizer, *args, **kwargs)

    monkeypatch.setattr(training_controller, "TrainingTask", Spy)
    configure(window, optimizer="momentum", lr=0.01)
    window.training.start()
    window.training.pause()
    wait_paused(qtbot, window)
    window.panel.lr.setValue(0.05)
    window.panel.momentum.setValue(0.5)
    start = window.training.iteration
    window.training.step()
    qtbot.waitUntil(lambda: window.training.iteration == start + 1, timeout=5000)
    assert optimizers[0].lr == pytest.approx(0.05) and optimizers[0].momentum == pytest.approx(0.5)

    swapped = []
    real_set_optimizer = window.training.task.control.set_optimizer
    window.training.task.control.set_optimizer = lambda opt: (swapped.append(opt), real_set_optimizer(opt))
    window.panel.optimizer.setCurrentIndex(window.panel.optimizer.findData("adam"))
    assert swapped and swapped[0].name == "adam" and swapped[0].lr == pytest.approx(0.001)
    window.training.step()
    qtbot.waitUntil(lambda: window.training.iteration == start + 2, timeout=5000)
    assert window.session.training_state == "paused"  # the swap did not break the loop
    window.training.stop()
    qtbot.waitUntil(lambda: window.session.training_state == "stopped", timeout=5000)


def test_switching_optimizer_after_queueing_its_own_values_keeps_training(qtbot, window):
    configure(window, optimizer="adam", lr=0.001)
    window.training.start(step="one")
    wait_paused(qtbot, window)
    window.panel.beta1.setValue(0.8)  # queued for Adam ...
    window.panel.optimizer.setCurrentIndex(window.panel.optimizer.findData("sgd"))  # ... which is replaced
    window.training.step()
    qtbot.waitUntil(lambda: window.training.iteration == 2, timeout=5000)
    wait_paused(qtbot, window)
    assert window.session.training_state == "paused" and not window.training_page.banner.isVisible()


def test_divergence_is_reported_in_words(qtbot, window):
    configure(window, lr=1e6, epochs=3)
    with qtbot.waitSignal(window.session.trainingStateChanged, timeout=10_000,
                          check_params_cb=lambda s: s == "diverged"):
        window.training.start()
    page, n = window.training_page, window.training.iteration
    assert page.banner.isVisible()
    assert "diverged" in page.banner.text() and "smaller" in page.banner.text()
    assert "smaller learning rate" in window.statusBar().currentMessage()
    # one count everywhere: the banner, the progress line, the plot and the network label agree
    assert page.banner.text().startswith(f"Training diverged after {n} iteration")
    assert f"the loss of iteration {n + 1} was" in page.banner.text()
    assert "diverged. training" not in page.banner.text().lower()
    assert page.rate_label.text().startswith(f"diverged after {n} iteration")
    assert page.loss_plot.iteration_count == n
    assert window.session.network_label.endswith(f"(diverged after {counted(n, 'iteration')})")
    assert "The learning rate, 10, is probably too large" in page.banner.text()  # the spin box stops at 10
    assert "(learning rate" not in page.banner.text()  # not "The learning rate (learning rate 10)"
    assert page.history_label.text() == "No setting changed during this run"  # it ended: no "yet"


def test_a_one_epoch_run_says_one_epoch_and_its_history_line_stays_true(qtbot, window):
    configure(window, epochs=1)
    with qtbot.waitSignal(window.session.runAdded, timeout=10_000):
        window.training.start()
        assert window.training_page.history_label.text() == "No setting changed during this run yet"
    assert window.statusBar().currentMessage().startswith("Finished 1 epoch in ")
    assert window.session.network_label.endswith("(finished, 1 epoch)")
    assert window.training_page.history_label.text() == "No setting changed during this run"


def test_a_failed_run_ends_its_progress_and_history_lines(qtbot, window, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("out of cheese")

    monkeypatch.setattr(training_task_module, "train", broken)
    configure(window, epochs=1)
    window.training.start()
    qtbot.waitUntil(lambda: window.session.training_state == "error", timeout=10_000)
    page = window.training_page
    assert "out of cheese" in page.banner.text()
    assert page.rate_label.text() == "training failed after 0 iterations"
    assert page.history_label.text() == "No setting changed during this run"


def test_a_learning_rate_change_reports_only_what_changed(qtbot, window):
    configure(window, optimizer="adam", lr=0.001)
    window.training.start(step="one")
    wait_paused(qtbot, window)
    window.panel.lr.setValue(0.05)
    assert window.statusBar().currentMessage() == "From the next mini-batch: lr 0.001 → 0.05"
    window.panel.beta1.setValue(0.8)
    assert window.statusBar().currentMessage() == "From the next mini-batch: beta1 0.9 → 0.8"
    window.training.stop()
    qtbot.waitUntil(lambda: window.session.training_state == "stopped", timeout=5000)


def test_weights_and_plot_follow_training(qtbot, window, monkeypatch):
    shown = []
    real = window.training_page.weight_grid.set_weights
    monkeypatch.setattr(window.training_page.weight_grid, "set_weights", lambda w, *a, **k: (shown.append(w), real(w, *a, **k)))
    configure(window, hidden=[16], epochs=2)
    start_w1 = []
    window.session.networkChanged.connect(lambda net: start_w1.append(net.params["W1"].copy()))
    with qtbot.waitSignal(window.session.trainingStateChanged, timeout=10_000,
                          check_params_cb=lambda s: s == "finished"):
        window.training.start()
    w1 = window.session.network.params["W1"]
    assert shown[-1].shape == (784, 16)
    assert window.training_page.weight_change_check.isChecked()  # by default: how far each weight moved
    np.testing.assert_allclose(shown[-1], w1 - start_w1[0])
    window.training_page.weight_change_check.setChecked(False)  # the weights themselves
    np.testing.assert_array_equal(shown[-1], w1)
    assert shown[-1] is not w1  # a copy: the worker may write into W1 while it is drawn
    assert window.training_page.loss_plot.iteration_count == 120
    assert window.training_page.progress_bar.value() == window.training_page.progress_bar.maximum() == 120
    assert window.session.test_accuracy is not None and window.session.test_accuracy > 0.5


def test_closing_mid_training_ends_the_worker(qtbot, window):
    configure(window)
    window.training.start()
    qtbot.waitUntil(lambda: window.training.iteration > 0, timeout=5000)
    thread: QThread = window.training.task.thread
    assert thread.isRunning()
    window.close()
    assert thread.isFinished()
    qtbot.waitUntil(lambda: window.tasks.running() == [], timeout=2000)


def test_closing_while_paused_ends_the_worker(qtbot, window):
    configure(window)
    window.training.start(step="one")
    wait_paused(qtbot, window)
    thread = window.training.task.thread
    window.close()
    assert thread.isFinished()


def test_a_small_cnn_trains_live_and_shows_its_filters(qtbot, window, monkeypatch):
    shown = []
    real = window.training_page.weight_grid.set_weights
    monkeypatch.setattr(window.training_page.weight_grid, "set_weights", lambda w, *a, **k: (shown.append(w), real(w, *a, **k)))
    configure(window, architecture="small-cnn", epochs=1, optimizer="adam", lr=0.001)
    with qtbot.waitSignal(window.session.trainingStateChanged, timeout=20_000,
                          check_params_cb=lambda s: s == "finished"):
        window.training.start()
    net = window.session.network
    assert net.params["W1"].ndim == 4  # convolution filters (F, C, k, k)
    assert shown[-1].shape == net.params["W1"].shape
    assert window.training_page.weight_grid.tile_count() == net.params["W1"].shape[0]
    assert np.any(shown[-1])  # filters moved: the change since the start is not all zero
    assert window.training_page.loss_plot.iteration_count == 60
    page = window.training_page  # the words around the view speak of filters, not of 784 input weights
    assert "filters" in page.weights_title.text() and "784" not in page.weights_help.text()
    assert "filter" in page.weights_help.text() and "filter" in page.weight_grid.toolTip()


def test_a_fast_run_redraws_the_plot_twice_and_weights_and_predictions_once_a_second_copying_only_the_units_shown(
        qtbot, window, monkeypatch):
    page = window.training_page
    shown, updates = [], []
    real = page.weight_grid.set_weights
    monkeypatch.setattr(page.weight_grid, "set_weights", lambda w, *a, **k: (shown.append(w), real(w, *a, **k)))
    window.session.weightsUpdated.connect(lambda: updates.append(time.monotonic()))
    configure(window, hidden=[100], epochs=2000)  # as fast as possible, and far longer than the test watches
    window.training.start()
    assert page.loss_plot.redraw_interval() == round(VIEWS_INTERVAL * 1000)  # the plot too: each redraw takes the GIL
    qtbot.wait(2600)
    during = list(updates)
    start_w1 = page._w1_start
    window.training.stop()
    qtbot.waitUntil(lambda: window.session.training_state == "stopped", timeout=5000)
    assert window.training.iteration > 100  # many reports reached the window meanwhile …
    assert len(during) >= 2 and min(np.diff(during)) >= WEIGHTS_INTERVAL - 0.01  # … the weights followed once a second
    w1 = window.session.network.params["W1"]
    assert shown[-1].shape == (784, 64)  # a copy of the 64 units drawn, not of all 100
    np.testing.assert_allclose(shown[-1], w1[:, :64] - start_w1)  # the run's end shows its last weights
    assert page.weight_grid.caption().startswith("64 of 100 units")
    assert "hidden unit" in page.weights_title.text() and "784 input weights" in page.weights_help.text()


def test_the_weights_view_on_a_page_not_showing_draws_when_the_page_is_shown(qtbot, window, monkeypatch):
    page, other = window.training_page, QWidget()
    window.tabs.add(other, "Other", scroll=False)
    shown = []
    real = page.weight_grid.set_weights
    monkeypatch.setattr(page.weight_grid, "set_weights", lambda w, *a, **k: (shown.append(w), real(w, *a, **k)))
    configure(window, hidden=[16], epochs=1)
    start_w1 = window.session.network.params["W1"].copy()
    window.tabs.setCurrentWidget(other)
    qtbot.waitUntil(lambda: not page.weight_grid.isVisible(), timeout=2000)
    window.ask_choice = lambda *_args: training_controller.NEW
    with qtbot.waitSignal(window.session.trainingStateChanged, timeout=10_000,
                          check_params_cb=lambda s: s == "finished"):
        window.training.start()
    assert shown == []  # the whole run trained without copying or drawing a weight
    window.tabs.setCurrentWidget(page)
    qtbot.waitUntil(lambda: len(shown) == 1, timeout=2000)
    w1 = window.session.network.params["W1"]
    assert not np.array_equal(w1, start_w1)
    np.testing.assert_allclose(shown[0], w1 - page._w1_start)  # the last weights of the run, once


class Events(QObject):
    """Counts the events of one type a widget receives, e.g. LayoutRequest (a re-layout repaints all it moves)."""

    def __init__(self, widget, kind: QEvent.Type) -> None:
        super().__init__()
        self.kind, self.count = kind, 0
        widget.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:
        if event.type() == self.kind:
            self.count += 1
        return False


def test_a_progress_report_repaints_the_speed_line_without_laying_the_page_out_again(qtbot, window):
    page = window.training_page
    page.begin_run(6000)
    qtbot.wait(50)
    requests = Events(page, QEvent.Type.LayoutRequest)
    for tick in range(1, 31):  # texts of every length: "measuring the speed…", "82 it/s, 1:10 left", …
        page.show_progress(Progress(8 * tick, 1, 600, 6000, np.ones(8), [], tick / 10))
        qtbot.wait(1)
        # the bar shows it with the window's next update (not painted on its own at once), and keeps updating
        assert page.progress_bar.value() == 8 * tick and page.progress_bar.updatesEnabled()
    assert requests.count == 0
    assert "it/s" in page.rate_label.text()
    page.show_result("stopped by a person who had seen enough of it", 1_234_567, 45_296)  # a rare long text
    text = page.rate_label.text()
    assert text == "stopped by a person who had seen enough of it after 1,234,567 iterations in 12:34:56"
    assert page.rate_label.width() >= page.rate_label.fontMetrics().horizontalAdvance(text)  # widened to fit it
