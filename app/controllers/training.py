"""Training from the left-hand panel: start, pause, step, stop and reset, and the run's progress on the Training page.

The run itself is a ``TrainingTask`` started through the window's ``TaskRegistry``; its reports
arrive already merged to the screen's pace (``app.coalescer``), so each one goes straight to the
page and the session. A network put into the session by someone else (a weight file) replaces
the one being trained: that run is stopped and forgotten.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject

from app.control_panel import ControlPanel
from app.controllers import Host
from app.session import Session
from app.settings import AppSettings
from app.tabs.training import TrainingPage, format_seconds
from app.threads import TaskRegistry, describe_error
from app.training_task import TrainingTask
from engine.nn.optimizers import make_optimizer
from engine.train.config import TrainConfig
from engine.train.loop import Progress, TrainControl, TrainResult, iterations_per_epoch
from engine.train.runs import RunRecord

BANNER_TOPIC = "training"


class TrainingController(QObject):
    def __init__(self, session: Session, tasks: TaskRegistry, panel: ControlPanel, page: TrainingPage, host: Host,
                 settings: AppSettings, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session, self.tasks, self.panel, self.page, self.host = session, tasks, panel, page, host
        self.settings = settings
        self.task: TrainingTask | None = None  # the run being shown; None when idle
        self.config: TrainConfig | None = None  # the settings of the current (or last) run
        self.iteration = 0  # iterations done by the current run, as last reported
        self._network = None  # the network this controller put into the session
        self._run_count = 0
        for action, slot in ((panel.action_start, self.start), (panel.action_pause, self.pause),
                             (panel.action_resume, self.resume), (panel.action_step, self.step),
                             (panel.action_step_epoch, self.step_epoch), (panel.action_stop, self.stop),
                             (panel.action_reset, self.reset_network)):
            action.triggered.connect(lambda _checked=False, slot=slot: slot())
        panel.hyperparametersChanged.connect(self._hyperparameters_changed)
        panel.optimizerChanged.connect(self._optimizer_changed)
        session.trainingStateChanged.connect(panel.set_state)
        session.networkChanged.connect(self._network_changed)

    @property
    def is_training(self) -> bool:
        return self.task is not None

    # ----- commands -----
    def start(self, step: str | None = None) -> bool:
        """Train a new network from the panel's settings; ``step`` ("one"/"epoch") starts paused and steps."""
        if self.is_training:
            return False
        dataset = self.session.dataset
        if dataset is None:
            self.host.show_error("No dataset", "Wait for the dataset to load, or choose one in the Dataset list.")
            return False
        try:
            dataset.require_train()
            config = self.panel.config()
            network = config.make_network()
            optimizer = config.make_optimizer()
        except ValueError as exc:
            self.host.show_error("Cannot start training", str(exc))
            return False
        control = TrainControl()
        if step == "one":
            control.step(1)
        elif step == "epoch":
            control.step_epoch()
        run = config.settings()
        task = TrainingTask(network, optimizer, dataset.x_train, dataset.t_train, dataset.x_test, dataset.t_test,
                            run, control, name="training")
        task.progress.connect(lambda p, t=task: self._progress(t, p))
        task.succeeded.connect(lambda r, t=task: self._done(t, r))
        task.failed.connect(lambda exc, t=task: self._failed(t, exc))
        self.task, self.config, self.iteration = task, config, 0
        self.page.begin_run(iterations_per_epoch(len(dataset.x_train), run.batch_size) * run.epochs)
        self.page.clear_banner(BANNER_TOPIC)
        self._network = network
        self.session.set_network(network, f"{config.describe()} (training)")
        self.session.set_training_state("paused" if step else "running")
        self.settings.set_train_config(config)
        self.host.show_status(f"Training {config.describe()} on {dataset.name}")
        self.tasks.start(task)
        return True

    def pause(self) -> None:
        if self.task is not None:
            self.task.control.pause()
            self.session.set_training_state("paused")
            self.host.show_status("Paused: Resume (F8) carries on, Step (F10) trains one mini-batch")

    def resume(self) -> None:
        if self.task is not None:
            self.task.control.resume()
            self.session.set_training_state("running")
            self.host.show_status("Training…")

    def step(self) -> None:
        """One mini-batch, then pause (starts a paused run when idle)."""
        if self.task is None:
            self.start(step="one")
            return
        self.task.control.step(1)
        self.session.set_training_state("paused")

    def step_epoch(self) -> None:
        if self.task is None:
            self.start(step="epoch")
            return
        self.task.control.step_epoch()
        self.session.set_training_state("paused")

    def stop(self) -> None:
        if self.task is not None:
            self.task.control.stop()
            self.host.show_status("Stopping…")

    def reset_network(self) -> None:
        """A fresh, untrained network from the panel's settings (keeps the old one if the settings are bad)."""
        if self.is_training:
            return
        try:
            config = self.panel.config()
            network = config.make_network()
        except ValueError as exc:
            self.host.show_status(f"Cannot build the network: {exc}")
            return
        self.iteration = 0
        self.page.clear_run()
        self.page.clear_banner(BANNER_TOPIC)
        self._network = network
        self.session.set_network(network, f"{config.describe()} (untrained)")
        self.session.set_training_state("idle")

    # ----- changes while running -----
    def _hyperparameters_changed(self, values: dict) -> None:
        if self.task is not None and values:
            self.task.control.set_hyperparameters(**values)
            shown = ", ".join(f"{k}={v:g}" for k, v in values.items())
            self.host.show_status(f"From the next mini-batch: {shown}", 4000)

    def _optimizer_changed(self, name: str) -> None:
        if self.task is None:
            return
        optimizer = make_optimizer(name, **self.panel.hyperparameters())
        # Values queued for the previous optimizer (e.g. Adam's beta1 while paused) may still be
        # pending in the control; the new optimizer must skip the ones it does not have.
        known, set_all = optimizer.limits, optimizer.set
        optimizer.set = lambda **values: set_all(**{k: v for k, v in values.items() if k in known})
        self.task.control.set_optimizer(optimizer)
        self.host.show_status(f"Switched to {name} from the next mini-batch (fresh optimizer state)", 4000)

    def _network_changed(self, network) -> None:
        """Someone else's network (a weight file) replaces the one trained here: stop and forget the run."""
        if network is self._network:
            return
        self._network = None
        if self.task is not None:
            self.task.control.stop()
            self.task = None
            self.session.set_training_state("stopped")
        self.iteration = 0
        self.page.clear_run()

    # ----- reports from the run -----
    def _progress(self, task: TrainingTask, p: Progress) -> None:
        if task is not self.task:
            return
        self.iteration = p.iteration
        self.page.show_progress(p)
        for m in p.epochs:
            if m.test_accuracy is not None:
                self.session.set_test_accuracy(m.test_accuracy)
            self.session.epochFinished.emit(m)
        self.session.weightsUpdated.emit()

    def _done(self, task: TrainingTask, result: TrainResult) -> None:
        if task is not self.task:
            return
        self.task = None
        self.iteration = result.iterations
        final = result.final
        if result.status == "diverged":
            self.page.show_banner(f"Training diverged. {result.message}", "error", BANNER_TOPIC)
            self.host.show_status("Training diverged: try a smaller learning rate")
        elif result.status == "finished":
            acc = f"; test accuracy {final.test_accuracy:.1%}" if final and final.test_accuracy is not None else ""
            self.host.show_status(f"Finished {len(result.epochs)} epochs in {format_seconds(result.elapsed)}{acc}")
        else:
            self.host.show_status(f"Stopped after {result.iterations:,} iterations")
        self.page.show_result(result.status, result.iterations, result.elapsed)
        self.session.weightsUpdated.emit()
        self.session.set_network_label(f"{self.config.describe()} ({result.status}, {len(result.epochs)} epochs)")
        self.session.set_training_state(result.status)
        self._record_run(result)

    def _failed(self, task: TrainingTask, exc: BaseException) -> None:
        if task is not self.task:
            return
        self.task = None
        message = describe_error(exc)
        self.page.show_banner(f"Training stopped with an error: {message}", "error", BANNER_TOPIC)
        self.host.show_status(f"Training failed: {message}")
        self.session.set_training_state("error")

    def _record_run(self, result: TrainResult) -> None:
        self._run_count += 1
        config = self.config
        record = RunRecord(name=f"Run {self._run_count}: {config.describe()}", settings=config.to_dict(),
                           losses=np.asarray(result.losses), epochs=[m.to_dict() for m in result.epochs],
                           status=result.status)
        self.session.add_run(record)
