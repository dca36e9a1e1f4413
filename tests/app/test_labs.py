"""The learning labs: each opens on its textbook example, reacts to its controls and never blocks the GUI."""
import threading

import numpy as np
import pytest

from PySide6.QtCore import QObject, QPointF, Qt, QTimer, Signal

from app.session import Session
from app.tabs.descent_lab import DescentLab, DescentLabError, describe_run
from app.tabs.gradients_lab import GradientLab, cancelled_text, timing_text
from app.tabs.labs import create_lab_tabs
from app.tabs.landscape_lab import LandscapeLab
from app.tabs.loss_lab import LossLab, LossLabError, parse_probabilities
from app.threads import TaskRegistry
from engine import registry
from engine.data.dataset import Dataset
from engine.labs.descent import (
    EXAMPLES,
    gradient_descent,
    least_squares_descent,
    line_descent,
    line_learning_rates,
    squared_error,
    squared_error_grad,
)
from engine.labs.landscape import SURFACES
from engine.nn.functions import cross_entropy_error
from engine.nn.network import make_mlp
from engine.train.gradcheck import GradCheck, ParamCheck
from widgets.plot_fit import FitPlot, PlotPanel
from widgets.surface_3d import opengl_available


@pytest.fixture
def tasks():
    """The main window's kind of task registry; ``tasks.create`` is the factory the labs get."""
    window_tasks = TaskRegistry()
    yield window_tasks
    assert window_tasks.shutdown(30_000), "a lab task outlived its test"


def recorded(factory):
    """``factory`` that also keeps every task it made in ``.made`` (the registry forgets finished ones)."""
    def make(fn, name):
        task = factory(fn, name)
        make.made.append(task)
        return task

    make.made = []
    return make


class FakeTask(QObject):
    """The task API, driven by hand: signals are delivered from the event loop, like a real task's."""

    progress = Signal(object)
    succeeded = Signal(object)
    failed = Signal(object)
    finished = Signal()

    def __init__(self, outcome) -> None:
        super().__init__()
        self.outcome = outcome  # an exception to fail with
        self.cancelled = False
        self._running = False

    def start(self) -> None:
        self._running = True
        QTimer.singleShot(0, self._end)

    def _end(self) -> None:
        self.failed.emit(self.outcome)
        self._running = False
        self.finished.emit()

    def cancel(self) -> None:
        self.cancelled = True

    def wait(self, msecs: int = 30_000) -> bool:
        return not self._running

    def is_running(self) -> bool:
        return self._running


def click_view(qtbot, plot, x, y):
    """Left-click a pyqtgraph PlotWidget at data coordinates (x, y)."""
    vb = plot.getPlotItem().vb
    pos = plot.mapFromScene(vb.mapViewToScene(QPointF(x, y)))
    qtbot.mouseClick(plot.viewport(), Qt.MouseButton.LeftButton, pos=pos)


# ----- gradient descent on a line -----
def test_descent_lab_runs_the_book_example_to_1174(qtbot):
    lab = DescentLab()
    qtbot.addWidget(lab)
    assert lab.loss_label.text() == "2.50000000"  # ½((1-2)² + (4-4)² + (4-6)² + (8-8)²) at w=(1, 1)
    assert "1174" in lab.note_label.text()
    qtbot.mouseClick(lab.run_button, Qt.MouseButton.LeftButton)
    assert lab.is_running() and not lab.at_end()  # Run returned at once: a QTimer animates it
    lab._timer.setInterval(0)  # at full speed: the animation's two seconds are not what this test is about
    with qtbot.waitSignal(lab.finished, timeout=20_000) as blocker:
        pass
    assert blocker.args == ["converged"]
    book = least_squares_descent()
    assert lab.steps_shown() == len(book.losses) - 1
    assert lab.loss_label.text() == "1.35000079"
    assert lab.w_label.text() == "(1.04986813, 0.04997460)"
    assert "iteration 1174" in lab.status_label.text()
    loss, w = lab.current()
    assert loss == book.loss
    np.testing.assert_array_equal(w, book.w)


def test_descent_step_moves_by_lr_times_slope_and_reset_goes_back(qtbot):
    lab = DescentLab()
    qtbot.addWidget(lab)
    lab.example_box.setCurrentIndex(lab.example_box.findData("two-points"))
    assert lab.loss_label.text() == "36.00000000"
    X = np.array([[3.0, 1.0], [9.0, 1.0]])
    t = np.array([7.0, 13.0])
    w0 = np.array([3.0, -8.0])
    qtbot.mouseClick(lab.step_button, Qt.MouseButton.LeftButton)
    loss, w = lab.current()
    np.testing.assert_allclose(w, w0 - lab.learning_rate() * squared_error_grad(X, t, w0))
    assert loss == pytest.approx(squared_error(X, t, w)) and loss < 36
    assert lab.step_label.text().startswith("1 of")
    lab.run()
    assert lab.is_running()
    lab._timer.setInterval(0)  # at full speed: the animation's two seconds are not what this test is about
    qtbot.waitUntil(lab.at_end, timeout=20_000)
    _, w = lab.current()
    np.testing.assert_allclose(w, [1.0, 4.0], atol=2e-3)  # the line through both points
    qtbot.mouseClick(lab.reset_button, Qt.MouseButton.LeftButton)
    assert lab.steps_shown() == 0 and lab.loss_label.text() == "36.00000000"


def test_learning_rate_marks_crawl_and_diverge(qtbot):
    lab = DescentLab()
    qtbot.addWidget(lab)
    small, good, large = lab.lr_slider.mark_buttons
    qtbot.mouseClick(large, Qt.MouseButton.LeftButton)
    assert lab.learning_rate() == 0.024
    lab.step(10_000)
    assert lab.path.status == "diverged"
    assert "Diverged" in lab.status_label.text()
    assert lab.path.losses[-1] > 1e6 * lab.path.losses[0]
    qtbot.mouseClick(small, Qt.MouseButton.LeftButton)
    assert lab.learning_rate() == 0.001 and lab.steps_shown() == 0
    assert len(lab.path.losses) > 3 * len(least_squares_descent().losses)  # crawls
    qtbot.mouseClick(good, Qt.MouseButton.LeftButton)
    assert lab.path.stop_iteration == 1174
    lab.lr_slider.slider.setValue(0)  # the slider's low end
    assert lab.learning_rate() == pytest.approx(1e-4)


def test_clicking_adds_a_point_and_dropping_moves_one(show, qtbot):
    lab = show(DescentLab(), 1200, 700)
    lab.step(50)
    click_view(qtbot, lab.points_plot, 4.0, 8.5)
    xs, ts = lab.points_data()
    assert len(xs) == 5
    assert xs[-1] == pytest.approx(4.0, abs=0.15) and ts[-1] == pytest.approx(8.5, abs=0.15)
    assert lab.steps_shown() == 0  # the fit restarted, with η re-marked for the new, steeper valley
    lam = np.linalg.eigvalsh(np.column_stack([xs, np.ones_like(xs)]).T @ np.column_stack([xs, np.ones_like(xs)]))
    small, good, large = lab.learning_rate_marks()
    assert lab.learning_rate() == good == pytest.approx(2 / (lam[0] + lam[1]), rel=1e-2)
    assert large > 2 / lam[1] > good > small
    assert lab.path.status == "converged" and "η set to" in lab.status_label.text()
    X = np.column_stack([xs, np.ones_like(xs)])
    expected = gradient_descent(lambda w: squared_error(X, ts, w), lambda w: squared_error_grad(X, ts, w),
                                (1.0, 1.0), lab.learning_rate(), max_iter=20_000)
    np.testing.assert_allclose(lab.path.losses, expected.losses)
    lab.points.pointDropped.emit(0, 2.0, 3.0)  # what a finished drag reports
    xs, ts = lab.points_data()
    assert (xs[0], ts[0]) == (2.0, 3.0)
    with pytest.raises(DescentLabError, match="no point 9"):
        lab.move_point(9, 1.0, 1.0)
    with pytest.raises(DescentLabError, match="finite"):
        lab.add_point(np.inf, 1.0)
    assert len(lab.points_data()[0]) == 5  # nothing lost


def right_click_view(qtbot, plot, x, y):
    """Right-click a pyqtgraph PlotWidget at data coordinates (x, y)."""
    vb = plot.getPlotItem().vb
    pos = plot.mapFromScene(vb.mapViewToScene(QPointF(x, y)))
    qtbot.mouseClick(plot.viewport(), Qt.MouseButton.RightButton, pos=pos)


def expected_note(lab) -> str:
    """What the note under the example list must say: the run for the points and η shown, computed afresh."""
    xs, ts = lab.points_data()
    return describe_run(line_descent(xs, ts, (1.0, 1.0), lab.learning_rate(), 20_000, 400), (1.0, 1.0),
                        lab.learning_rate())


def test_the_books_note_is_what_the_lab_computes():
    book = EXAMPLES["book"]
    assert describe_run(least_squares_descent(), book.start, book.lr) == book.note


def test_after_adding_moving_or_removing_points_every_label_describes_the_points_shown(qtbot):
    lab = DescentLab()
    qtbot.addWidget(lab)
    lab.add_point(12.0, 20.0)
    assert lab.example_box.currentText() == "Your points (5)" and lab.example() == "custom"
    note = lab.note_label.text()
    assert note == "Your 5 points. " + expected_note(lab)
    assert "η = 0.00858" in note and "iteration 654" in note and "E = 7.41994415" in note
    assert "1174" not in note and "0.0229" not in note and "the book" not in lab.example_box.currentText()
    lab.step(100_000)
    assert "iteration 654" in lab.status_label.text() and lab.loss_label.text() == "7.41994415"

    lab.move_point(4, 9.0, 10.0)
    assert lab.example_box.currentText() == "Your points (5)"
    assert lab.note_label.text() == "Your 5 points. " + expected_note(lab)
    assert lab.learning_rate() == line_learning_rates(lab.points_data()[0])[1]
    lab.remove_point(0)
    assert lab.example_box.currentText() == "Your points (4)" and len(lab.points_data()[0]) == 4
    assert lab.note_label.text() == "Your 4 points. " + expected_note(lab)
    tip = lab.example_box.itemData(lab.example_box.currentIndex(), Qt.ItemDataRole.ToolTipRole)
    assert "(3, 4), (5, 4), (7, 8), (9, 10)" in tip
    lab.set_learning_rate(0.001)  # a new η for the same points: the note follows it
    assert "η = 0.001 " in lab.note_label.text() and lab.note_label.text() == "Your 4 points. " + expected_note(lab)

    lab.set_example("book")  # the book's points again: its own note, and the learner's points stay listed
    assert lab.note_label.text() == EXAMPLES["book"].note and lab.learning_rate() == 0.0229
    assert [lab.example_box.itemText(i) for i in range(lab.example_box.count())][-1] == "Your points (4)"
    lab.set_learning_rate(0.001)  # the book's points at another η: no longer the book's 1174 iterations
    assert "1174" not in lab.note_label.text() and lab.note_label.text() == expected_note(lab)
    lab.set_learning_rate(lab.learning_rate_marks()[2])
    assert "the loss rises" in lab.note_label.text() and lab.note_label.text() == expected_note(lab)
    lab.example_box.setCurrentIndex(lab.example_box.findData("custom"))  # back to the learner's points
    assert lab.points_data()[0].tolist() == [3.0, 5.0, 7.0, 9.0] and lab.example() == "custom"
    assert lab.note_label.text() == "Your 4 points. " + expected_note(lab)

    lab.set_example("two-points")  # the example's own note is true at its own η
    assert lab.note_label.text() == EXAMPLES["two-points"].note
    with pytest.raises(DescentLabError, match="at least 2 points"):
        lab.remove_point(0)
    with pytest.raises(DescentLabError, match="no point 5"):
        lab.remove_point(5)
    assert len(lab.points_data()[0]) == 2 and lab.example() == "two-points"


def test_right_clicking_a_point_removes_it_but_never_the_last_two(show, qtbot):
    lab = show(DescentLab(), 1200, 700)
    right_click_view(qtbot, lab.points_plot, 2.0, 2.0)  # empty space: nothing to remove, nothing added
    assert len(lab.points_data()[0]) == 4 and lab.example() == "book"
    right_click_view(qtbot, lab.points_plot, 5.0, 4.0)
    xs, ts = lab.points_data()
    assert xs.tolist() == [1.0, 3.0, 7.0] and ts.tolist() == [1.0, 4.0, 8.0]
    assert lab.example_box.currentText() == "Your points (3)" and "Your 3 points." in lab.note_label.text()
    right_click_view(qtbot, lab.points_plot, 7.0, 8.0)
    assert len(lab.points_data()[0]) == 2
    right_click_view(qtbot, lab.points_plot, 1.0, 1.0)
    assert len(lab.points_data()[0]) == 2 and "at least 2 points" in lab.status_label.text()


# ----- the loss landscape -----
def test_landscape_opens_on_the_neuron_and_all_optimizers_descend_the_bowl(qtbot):
    lab = LandscapeLab()
    qtbot.addWidget(lab)
    assert lab.surface.key == "neuron" and lab.image.image.shape == (200, 200)
    assert sum(c.isVisible() for c in lab.contours) > 3
    lab.surface_box.setCurrentIndex(lab.surface_box.findData("bowl"))
    np.testing.assert_array_equal(lab.start(), [-7.0, 2.0])
    paths = lab.paths
    assert set(paths) == {"sgd", "momentum", "adagrad", "rmsprop", "adam"}
    for name, path in paths.items():
        assert path.final_value < 0.2 * path.values[0], name
        x, y = lab.path_items[name].getData()
        np.testing.assert_allclose(np.column_stack([x, y]), path.points)
    texts = [lab.key_labels[name].text() for name in paths]  # the colour key beside the map
    assert len(texts) == 5 and all("30 steps" in text for text in texts)
    titles = [registry.label(registry.OPTIMIZER_CHOICES, name) for name in paths]
    assert [text.split(" (η=")[0] for text in texts] == titles == ["SGD", "Momentum", "AdaGrad", "RMSprop", "Adam"]


def test_landscape_click_sets_the_start_and_lr_scale_changes_the_paths(show, qtbot):
    lab = show(LandscapeLab(), 1200, 700)
    lab.set_surface("bowl")
    with qtbot.waitSignal(lab.pathsChanged, timeout=2000):
        click_view(qtbot, lab.plot, 5.0, -3.0)
    np.testing.assert_allclose(lab.start(), [5.0, -3.0], atol=0.15)
    assert all(np.allclose(p.points[0], lab.start()) for p in lab.paths.values())
    sgd_before = lab.paths["sgd"].lr
    ten = [b for b in lab.lr_scale.mark_buttons if b.text() == "× 10"][0]
    qtbot.mouseClick(ten, Qt.MouseButton.LeftButton)
    assert lab.paths["sgd"].lr == pytest.approx(10 * sgd_before)
    assert lab.paths["sgd"].status == "diverged"
    assert "diverged" in lab.key_labels["sgd"].text() and "left the map" in lab.key_labels["sgd"].text()
    x, y = lab.path_items["sgd"].getData()  # drawn only as far as the map's edge
    s = lab.surface
    assert np.nanmin(x) >= s.x_range[0] and np.nanmax(x) <= s.x_range[1]
    assert np.nanmin(y) >= s.y_range[0] and np.nanmax(y) <= s.y_range[1]
    lab.set_steps(5)
    assert all(p.steps <= 5 for p in lab.paths.values())


def test_long_landscape_runs_are_computed_off_the_gui_thread_and_only_the_newest_is_shown(qtbot, tasks, monkeypatch):
    import app.tabs.landscape_lab as landscape_lab

    threads = []
    real = landscape_lab.compare_optimizers

    def recording(*args, **kwargs):
        threads.append(threading.get_ident())
        return real(*args, **kwargs)

    monkeypatch.setattr(landscape_lab, "compare_optimizers", recording)
    lab = LandscapeLab(task_factory=tasks.create)
    qtbot.addWidget(lab)
    assert threads == [threading.get_ident()] and not lab.is_computing()  # the neuron's 60 steps: at once
    threads.clear()
    lab.set_surface("rosenbrock")  # 1000 steps: on a background task
    assert lab.is_computing() and "computing 1,000 steps" in lab.results_label.text()
    drawn = [item.getData()[0] for item in lab.path_items.values()]
    assert lab.paths == {} and all(x is None or len(x) == 0 for x in drawn)  # no neuron paths on this map
    lab.set_steps(5000)
    lab.set_steps(3000)  # while one run computes, only the newest request waits
    ticks = []
    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start()
    with qtbot.waitSignal(lab.pathsChanged, timeout=60_000) as blocker:
        pass
    timer.stop()
    assert len(ticks) > 5  # the event loop kept ticking
    paths = blocker.args[0]
    assert max(p.steps for p in paths.values()) == 3000 and lab.paths.keys() == paths.keys()
    qtbot.waitUntil(lambda: not lab.is_computing(), timeout=10_000)
    assert len(threads) == 10 and threading.get_ident() not in threads  # 1000 then 3000 steps × 5 optimizers
    assert "30 steps" not in lab.key_labels["sgd"].text() and "3000 steps" in lab.key_labels["sgd"].text()


def test_each_surface_in_the_list_has_its_whole_description_as_a_tooltip(qtbot):
    lab = LandscapeLab()
    qtbot.addWidget(lab)
    box = lab.surface_box
    assert [box.itemData(i) for i in range(box.count())] == list(SURFACES)
    for i, surface in enumerate(SURFACES.values()):
        tip = box.itemData(i, Qt.ItemDataRole.ToolTipRole)
        assert box.itemText(i) == surface.title and tip.startswith(f"{surface.title}: {surface.formula}.")
    bowl = box.itemData(box.findData("bowl"), Qt.ItemDataRole.ToolTipRole)
    assert "the book's optimizer comparison (chapter 6, ch06)" in bowl and "x²/20 + y²" in bowl
    lab.set_surface("rosenbrock")  # the closed list's tooltip names the surface shown
    assert "Now: Rosenbrock's banana valley: f(x, y) = (1 − x)² + 100(y − x²)²." in box.toolTip()


@pytest.mark.parametrize("key", ["saddle", "rosenbrock"])
def test_landscape_other_surfaces_draw(qtbot, key):
    lab = LandscapeLab()
    qtbot.addWidget(lab)
    lab.set_surface(key)
    s = SURFACES[key]
    assert lab.plot.title() == s.formula
    assert np.all(np.isfinite(lab.image.image))
    assert lab.paths["adam"].steps > 0


# ----- loss functions -----
def test_loss_lab_shows_the_books_numbers(qtbot):
    lab = LossLab()
    qtbot.addWidget(lab)
    assert lab.sse_label.text() == "0.0975" and lab.cross_entropy == pytest.approx(0.510825, abs=1e-6)
    assert lab.cee_label.text().startswith("0.51")
    lab.example_box.setCurrentIndex(lab.example_box.findData("book-wrong"))
    assert lab.sse_label.text() == "0.5975" and lab.cee_label.text().startswith("2.30")
    assert lab.cross_entropy == pytest.approx(2.302584, abs=1e-6)
    assert "wrong (it says 7)" in lab.explain_label.text()


def test_loss_lab_teaches_the_books_formula_and_says_so(qtbot):
    lab = LossLab()
    qtbot.addWidget(lab)
    lab.set_text("0 0 0 0 0 0 0 0 0 1")  # the right answer (2) gets exactly 0
    y, t = lab.probabilities(), np.eye(10)[2]
    assert lab.cross_entropy == cross_entropy_error(y, t) == pytest.approx(-np.log(1e-7))  # finite, thanks to 10⁻⁷
    assert lab.cee_label.text() == "16.1181"
    note = lab.formula_note.text()
    assert "as in the book" in note.lower() and "log(y + 10⁻⁷)" in note
    assert "log(0)" in note and "exact log-softmax" in note
    assert "+ 10⁻⁷" in lab.explain_label.text()


def test_loss_lab_typed_vector_label_and_bad_input(qtbot):
    lab = LossLab()
    qtbot.addWidget(lab)
    lab.vector_edit.setText("0 0 0 1 0 0 0 0 0 0")
    lab.vector_edit.editingFinished.emit()
    assert lab.sum_squares == pytest.approx(1.0) and lab.example_box.currentData() == "typed"
    lab.label_box.setValue(3)
    assert lab.sum_squares == pytest.approx(0.0) and lab.cross_entropy == pytest.approx(0.0, abs=1e-6)
    before = (lab.sum_squares, lab.cross_entropy)
    assert not lab.set_text("0.1, 0.2, x")
    assert "not a number" in lab.error_label.text()
    assert not lab.set_text("0.5 0.5")
    assert "need 10 probabilities" in lab.error_label.text()
    assert (lab.sum_squares, lab.cross_entropy) == before  # nothing lost
    with pytest.raises(LossLabError, match="negative"):
        parse_probabilities("-0.1 0 0 0 0 0 0 0 0 1.1")


def test_loss_lab_follows_the_live_prediction(qtbot):
    lab = LossLab()
    qtbot.addWidget(lab)
    lab.set_example("live")
    assert "draw a digit" in lab.error_label.text().lower()
    p = np.full(10, 0.05)
    p[4] = 0.55
    lab.set_label(4)
    with qtbot.waitSignal(lab.lossesChanged, timeout=1000) as blocker:
        lab.set_probabilities(p.astype(np.float32))
    assert blocker.args[1] == pytest.approx(-np.log(0.55 + 1e-7))
    lab.set_example("book-right")
    lab.set_probabilities(np.eye(10)[0])  # not shown while a book example is chosen
    assert lab.sse_label.text() == "0.0975"


# ----- gradients -----
def test_gradient_check_runs_off_the_gui_thread_and_agrees(qtbot, tasks):
    factory = recorded(tasks.create)
    lab = GradientLab(task_factory=factory)
    qtbot.addWidget(lab)
    lab.select_network("new-10")
    assert not lab.subset_check.isChecked()
    ticks = []
    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start()
    with qtbot.waitSignal(lab.checkFinished, timeout=60_000) as blocker:
        qtbot.mouseClick(lab.check_button, Qt.MouseButton.LeftButton)
        assert lab.is_running() and not lab.check_button.isEnabled()
    timer.stop()
    assert len(ticks) > 5, (len(ticks), blocker.args[0].numerical_seconds)  # the event loop kept ticking
    assert lab.last_worker_thread != threading.get_ident()
    report = blocker.args[0]
    assert report.complete and report.max_rel_error < 1e-6
    assert [p.name for p in report.params] == ["W1", "b1", "W2", "b2"]
    assert lab.table.rowCount() == 4 and lab.table.item(0, 2).text() == "7,840 of 7,840"
    assert "backprop is right" in lab.summary_label.text()
    assert "faster" in lab.timing_label.text()
    qtbot.waitUntil(lambda: lab.check_button.isEnabled(), timeout=5000)
    assert [t.name for t in factory.made] == ["gradient check"]  # the lab's task came from the factory


def test_gradient_check_of_the_current_network_on_a_subset_of_the_dataset(qtbot, tasks):
    factory = recorded(tasks.run)  # hands out tasks already running
    lab = GradientLab(task_factory=factory)
    qtbot.addWidget(lab)
    rng = np.random.default_rng(3)
    x = (rng.random((5, 784)) * (rng.random((5, 784)) > 0.7)).astype(np.float32)  # sparse, like digits
    lab.set_dataset(Dataset("tiny", None, None, x, np.array([0, 1, 2, 3, 4])))
    assert "first 3 test images of tiny" in lab.data_label.text()
    lab.set_network(make_mlp([784, 50, 10], "sigmoid", seed=1), "my 784-50-10")
    lab.select_network("current")
    assert lab.subset_check.isChecked()  # 39,760 parameters: a subset by default
    lab.subset_box.setValue(40)
    with qtbot.waitSignal(lab.checkFinished, timeout=60_000) as blocker:
        lab.start_check()
    report = blocker.args[0]
    assert report.checked == {"W1": 40, "b1": 40, "W2": 40, "b2": 10}
    assert not report.complete and report.max_rel_error < 1e-6
    assert "estimated" in lab.timing_label.text()
    qtbot.waitUntil(lambda: lab.check_button.isEnabled(), timeout=5000)
    assert len(factory.made) == 1 and factory.made[0].wait(5000)  # started once, by the factory


def test_a_failed_check_shows_the_exception_message(qtbot):
    made = []

    def factory(fn, name):
        made.append(FakeTask(ValueError("the network has no parameters")))
        return made[-1]

    lab = GradientLab(task_factory=factory)
    qtbot.addWidget(lab)
    with qtbot.waitSignal(lab.checkFailed, timeout=2000) as blocker:
        lab.start_check()
        assert lab.is_running() and not lab.check_button.isEnabled()
    assert blocker.args == ["the network has no parameters"]
    assert lab.summary_label.text() == "The check failed: the network has no parameters"
    qtbot.waitUntil(lambda: lab.check_button.isEnabled(), timeout=2000)
    assert not lab.cancel_button.isEnabled() and lab.last_report is None


def test_a_check_asked_for_while_the_window_closes_never_runs(qtbot, tasks):
    lab = GradientLab(task_factory=tasks.create)
    qtbot.addWidget(lab)
    assert tasks.shutdown()  # closing: new tasks are cancelled before they start
    lab.start_check()
    assert not lab.is_running() and lab.check_button.isEnabled() and not lab.cancel_button.isEnabled()
    assert "did not start" in lab.summary_label.text() and lab.progress_bar.maximum() == 1


def test_a_long_check_can_be_cancelled_and_shutdown_cancels(qtbot, tasks):
    lab = GradientLab(task_factory=tasks.create)
    qtbot.addWidget(lab)
    lab.select_network("new-100")
    lab.subset_check.setChecked(False)
    with qtbot.waitSignal(lab.checkStarted, timeout=1000):
        lab.start_check()
    qtbot.waitUntil(lambda: lab.progress_bar.value() > 0, timeout=30_000)
    with qtbot.waitSignal(lab.checkFinished, timeout=30_000) as blocker:
        qtbot.mouseClick(lab.cancel_button, Qt.MouseButton.LeftButton)
    report = blocker.args[0]
    assert report.cancelled and report.elements_done > 0
    assert "Cancelled" in lab.summary_label.text()
    timing = lab.timing_label.text()  # what was measured, that it was cancelled, the ratio only as an estimate
    assert f"for {report.elements_done:,} elements before it was cancelled" in timing
    assert "(estimated from" in timing and " for 0 " not in timing
    qtbot.waitUntil(lambda: lab.check_button.isEnabled(), timeout=5000)
    lab.start_check()
    qtbot.waitUntil(lambda: lab.progress_bar.value() > 0, timeout=30_000)
    with qtbot.waitSignal(lab.checkFinished, timeout=30_000) as blocker:
        lab.cancel()  # cancels without blocking; the window's task registry does the waiting
    assert blocker.args[0].cancelled
    assert tasks.shutdown(10_000)  # what the window does on close


SIZES = {"W1": 78_400, "b1": 100, "W2": 1_000, "b2": 10}


def test_a_check_cancelled_before_any_element_times_nothing_and_compares_nothing():
    report = GradCheck([], backprop_seconds=0.0004, numerical_seconds=3.19, cancelled=True, sizes=SIZES,
                       elements_done=0)
    timing = timing_text(report)
    assert "nothing to time" in timing and "not measured" in timing and "×" not in timing
    assert "nothing was compared" in cancelled_text(report, None)


def test_a_check_cancelled_at_5_percent_reports_what_it_measured():
    report = GradCheck([], backprop_seconds=0.0004, numerical_seconds=3.19, cancelled=True, sizes=SIZES,
                       elements_done=3_976)
    timing = timing_text(report)
    assert "numerical: 3.19 s for 3,976 elements before it was cancelled" in timing
    assert "all 79,510 would take about 63.8 s (estimated)" in timing
    assert "about 159,480× faster (estimated from 3,976 elements)" in timing
    summary = cancelled_text(report, None)
    assert "3,976 numerical derivatives (5% of the check)" in summary and "nothing was compared" in summary
    finished = GradCheck([ParamCheck("W1", (784, 100), 2e-9, 1e-11, 300)], 0.0004, 0.5, cancelled=True,
                         sizes=SIZES, elements_done=320)
    summary = cancelled_text(finished, 300)
    assert "(45% of the check)" in summary  # 320 of 300 + 100 + 300 + 10 and "Compared: W1" in summary and "not checked" in summary


def test_a_complete_check_states_its_ratio_as_measured():
    params = [ParamCheck(k, (n,), 1e-9, 1e-12, n) for k, n in SIZES.items()]
    report = GradCheck(params, backprop_seconds=0.001, numerical_seconds=20.0, sizes=SIZES, elements_done=79_510)
    timing = timing_text(report)
    assert "numerical: 20.00 s for 79,510 elements\n" in timing and "backprop is 20,000× faster" in timing
    assert "estimated" not in timing and "cancelled" not in timing


def test_every_lab_plot_has_a_tooltip_and_a_help_line(qtbot, tasks):
    for title, lab in create_lab_tabs(None, tasks.create):
        qtbot.addWidget(lab)
        plots = lab.findChildren(FitPlot)
        assert plots, title
        for plot in plots:
            assert plot.toolTip().strip(), (title, plot.title())
            panel = plot.parentWidget()
            assert isinstance(panel, PlotPanel) and panel.help_label.text().strip(), (title, plot.title())


def test_central_and_forward_differences(qtbot):
    lab = GradientLab()
    qtbot.addWidget(lab)
    assert lab.diff_table.item(0, 1).text() == "0.1999999999990898"  # the book's value
    central, forward = lab.differences[10.0]
    assert central == pytest.approx(0.3, abs=1e-10) and forward == pytest.approx(0.3 + 0.01 * 1e-4, abs=1e-10)
    lab.h_box.setCurrentIndex(lab.h_box.findData(1e-50))
    assert lab.differences[5.0] == (0.0, 0.0)
    assert "rounds to x itself" in lab.diff_explain.text()
    with pytest.raises(ValueError, match="not offered"):
        lab.set_step_size(0.5)
    lab.start_check()  # no task factory: says so instead of blocking
    assert "cannot run background work" in lab.summary_label.text()


# ----- wiring -----
def test_create_lab_tabs_wires_the_session(qtbot, tasks):
    session = Session()
    factory = recorded(tasks.create)
    tabs = create_lab_tabs(session, factory)
    for _, widget in tabs:
        qtbot.addWidget(widget)
    assert [title for title, _ in tabs] == ["Loss functions", "Gradient descent", "Gradients", "Loss landscape"]
    labs = dict(tabs)
    gradients, loss = labs["Gradients"], labs["Loss functions"]
    assert "none yet" in gradients.network_box.itemText(0)
    session.set_network(make_mlp([784, 10, 10]), "trained here (training)")
    gradients.select_network("current")
    assert gradients.network_info.text() == "trained here (training)"
    session.set_network_label("trained here (finished, 3 epochs)")  # the same network, a new label
    assert gradients.network_info.text() == "trained here (finished, 3 epochs)"
    loss.set_example("live")
    p = np.full(10, 0.1)
    session.predictionChanged.emit(p)
    np.testing.assert_allclose(loss.probabilities(), p)
    gradients.subset_check.setChecked(True)  # a few elements: the check itself is tested above, here its wiring
    gradients.subset_box.setValue(5)
    with qtbot.waitSignal(gradients.checkFinished, timeout=60_000):
        gradients.start_check()  # on a task from the factory it was given
    assert [t.name for t in factory.made] == ["gradient check"]


def test_create_lab_tabs_without_a_session(qtbot, tasks):
    tabs = create_lab_tabs(None, tasks.create)
    for _, widget in tabs:
        qtbot.addWidget(widget)
    labs = dict(tabs)
    assert list(labs) == ["Loss functions", "Gradient descent", "Gradients", "Loss landscape"]
    assert "none yet" in labs["Gradients"].network_box.itemText(0)
    assert labs["Gradients"].network_box.currentData() != "current"  # a new small network is checked instead
    assert "random images" in labs["Gradients"].data_label.text()


def test_no_opengl_offscreen_means_the_2d_map_only(qtbot):
    """The offscreen platform has no OpenGL widgets: the check must say so without Qt warnings."""
    assert not opengl_available()
    lab = LandscapeLab()
    qtbot.addWidget(lab)
    assert lab.view3d is None


THREE_D_SCRIPT = """
from PySide6.QtWidgets import QApplication
app = QApplication([])
from app.tabs.landscape_lab import LandscapeLab
lab = LandscapeLab(); lab.resize(1000, 600); lab.show()
assert lab.view3d is not None, "OpenGL works here, so the 3-D view should be there"
lab.set_surface("bowl"); lab.run()
for _ in range(10): app.processEvents()
assert sorted(lab.view3d.path_items) == sorted(lab.paths), (sorted(lab.view3d.path_items), sorted(lab.paths))
image = lab.view3d.view.grabFramebuffer()
assert image.width() > 100 and len({image.pixel(x, y) for x in range(0, image.width(), 7) for y in range(0, image.height(), 7)}) > 20
print("3-D ok")
"""


@pytest.fixture(scope="module", autouse=True)
def three_d_run(request, under_x, tmp_path_factory):
    """The 3-D check, started under its own X server as this module starts (it runs beside the tests above)."""
    if not any(getattr(item, "name", "") == "test_3d_surface_with_paths_under_a_real_x_server"
               and getattr(item, "module", None) is request.module for item in request.session.items):
        return None
    return under_x(THREE_D_SCRIPT, [], (1280, 800), tmp_path_factory.mktemp("three-d"))


def test_3d_surface_with_paths_under_a_real_x_server(three_d_run):
    """Where a display with OpenGL exists (Xvfb + Mesa here), the lab adds the 3-D surface and draws every path."""
    pytest.importorskip("OpenGL", reason="PyOpenGL (the 3d extra) is not installed")
    if three_d_run is None:
        pytest.skip("xvfb-run is not installed (Debian package xvfb): no X server to try OpenGL on")
    out = three_d_run.result()
    if "GLX" in out.stderr and out.returncode != 0:
        pytest.skip(f"the X server has no working OpenGL: {out.stderr.strip()[-200:]}")
    assert out.returncode == 0 and "3-D ok" in out.stdout, out.stderr[-2000:]
