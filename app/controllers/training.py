"""Training from the left-hand panel: start, pause, step, stop, reset and the pace, and the run's progress on the Train page.

The run itself is a ``TrainingTask`` started through the window's ``TaskRegistry``; its reports
arrive already merged to the screen's pace (``app.coalescer``), or one per step when the run is
paced slowly, so each one goes straight to the page and the session. The session's
``weightsUpdated`` (the weights view, the live predictions) follows a fast run at most every
``WEIGHTS_INTERVAL`` seconds, and every report of a slowly paced or paused run, and the run's end.
A network put into the session by someone else (a weight file) replaces the one being trained: that
run is stopped and forgotten, and the panel shows the file's architecture. Start on a network that
was opened or trained asks whether to continue training it (a fine-tune, same network object) or to start anew;
while it is continued, the panel shows the architecture being trained, read-only, whichever it is,
and the test accuracy measured before the run is cleared (the next epoch's end measures it again).

Every label says what is true now: the network label follows running / paused (with the iterations
so far) / finished, and learning-rate changes made during a run ("lr 0.001 → 0.05 at iteration
812") go into the label, the run's name and its record (``settings["lr_changes"]``).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject

from app.coalescer import WEIGHTS_INTERVAL
from app.control_panel import ControlPanel
from app.controllers import Host
from app.network_settings import network_shape, records_loss
from app.run_controls import DEFAULT_PACE, PACES
from app.session import Session
from app.settings import AppSettings
from app.tabs.training import TrainingPage, format_seconds
from app.threads import TaskRegistry, describe_error
from app.training_task import TrainingTask, shows_at_once
from engine.nn.optimizers import make_optimizer
from engine.train.config import TrainConfig
from engine.train.loop import Progress, TrainControl, TrainResult, counted, iterations_per_epoch
from engine.train.runs import RunRecord
from widgets.plain_text import line

BANNER_TOPIC = "training"
CONTINUE, NEW = 0, 1  # the answers of the Start question


class TrainingController(QObject):
    def __init__(self, session: Session, tasks: TaskRegistry, panel: ControlPanel, page: TrainingPage, host: Host,
                 settings: AppSettings, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session, self.tasks, self.panel, self.page, self.host = session, tasks, panel, page, host
        self.settings = settings
        self.task: TrainingTask | None = None  # the run being shown; None when idle
        self.config: TrainConfig | None = None  # the settings of the current (or last) run
        self.iteration = 0  # iterations done by the current run, as last reported
        self.changes: list[dict] = []  # settings changed during the current (or last) run, as train() reports them
        self.fine_tune_of: str | None = None  # what the current (or last) run continued training, if anything
        self._network = None  # the session's network as this controller knows it (made here, or adopted from a file)
        self._fresh = None  # the untrained network Reset made (Start trains a new one without asking)
        self._origin: str | None = None  # what the session's network is, when it is not fresh: a file, "run 2"
        self._run_count = 0
        self._hyper: dict = {}  # the running loop's hyper-parameters as last sent: a change reports only what changed
        self._weights_sent = float("-inf")  # when weightsUpdated was last emitted for the current run (monotonic)
        for action, slot in ((panel.action_start, self.start), (panel.action_pause, self.pause),
                             (panel.action_resume, self.resume), (panel.action_step, self.step),
                             (panel.action_step_epoch, self.step_epoch), (panel.action_stop, self.stop),
                             (panel.action_reset, self.reset_network)):
            action.triggered.connect(lambda _checked=False, slot=slot: slot())
        panel.set_pace(settings.pace(DEFAULT_PACE))
        panel.hyperparametersChanged.connect(self._hyperparameters_changed)
        panel.optimizerChanged.connect(self._optimizer_changed)
        panel.paceChanged.connect(self._pace_changed)
        session.trainingStateChanged.connect(panel.set_state)
        session.networkChanged.connect(self._network_changed)

    @property
    def is_training(self) -> bool:
        return self.task is not None

    # ----- commands -----
    def start(self, step: str | None = None) -> bool:
        """Train from the panel's settings; ``step`` ("one"/"epoch") starts paused and steps.

        If the current network was opened or trained (not the fresh one Reset made), first asks whether to
        continue training it or to start a new network; cancelling starts nothing.
        """
        if self.is_training:
            return False
        dataset = self.session.dataset
        if dataset is None:
            self.host.show_error("No dataset", "Wait for the dataset to load, or choose one in the Dataset list.")
            return False
        try:
            dataset.require_train()
            config = self.panel.config()
            optimizer = config.make_optimizer()
        except ValueError as exc:
            self.host.show_error("Cannot start training", str(exc))
            return False
        network, fine_tune_of = self.session.network, None
        if network is not None and network is not self._fresh:
            answer = self._ask_continue(network, config)
            if answer is None:
                self.host.show_status("Start cancelled: nothing was trained", 4000)
                return False
            if answer == CONTINUE:
                fine_tune_of = self._origin or "the current network"
        if fine_tune_of is None:
            try:
                network = config.make_network()
            except ValueError as exc:
                self.host.show_error("Cannot start training", str(exc))
                return False
        elif not records_loss(network) and network.loss_name != config.loss:
            network.set_loss(config.loss)  # the file did not say which loss: the panel's, as its Loss shows
        control = TrainControl(pace=self.panel.pace())
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
        self.task, self.config, self.iteration, self.changes = task, config, 0, []
        self.fine_tune_of, self._hyper = fine_tune_of, self.panel.hyperparameters()
        self._weights_sent = float("-inf")
        self.page.begin_run(iterations_per_epoch(len(dataset.x_train), run.batch_size) * run.epochs, control.pace)
        self.page.clear_banner(BANNER_TOPIC)
        self._network, self._fresh = network, None
        self.session.set_training_state("paused" if step else "running")
        if fine_tune_of is None:
            self._origin = None
            self.panel.clear_loaded_network()
            self.session.set_network(network, self.run_label(), trained=False)
        else:
            if not self.panel.shows_loaded_network:  # this session's own network: show what trains, not the panel's
                self.panel.show_loaded_network(network, fine_tune_of, own_run=True)
            self.session.set_network_label(self.run_label())  # the same network object trains on
            self.session.set_test_accuracy(None)  # measured on the weights before this run: no longer theirs
        self.settings.set_train_config(config)
        self.host.show_status(f"Training {line(self.describe(), 200)} on {line(dataset.name, 80)}")
        self.tasks.start(task)
        return True

    def _ask_continue(self, network, config: TrainConfig) -> int | None:
        """CONTINUE, NEW or None (cancelled): what Start does with a network that was opened or trained."""
        what = self.session.network_label or network.describe()
        settings = "optimizer, learning rate, batch size, epochs" + ("" if records_loss(network) else ", loss")
        text = (f"The current network is {what}.\n\n"
                f"Continue: train this network further, keeping its weights ({network.describe()}); the "
                f"{settings} and seed come from the panel.\n\n"
                f"New: a new network from the panel's settings ({config.describe_network()}), "
                f"starting from random weights.")
        answer = self.host.ask_choice("Continue training or start a new network?", text,
                                      ["Continue training it", "New network", "Cancel"])
        return answer if answer in (CONTINUE, NEW) else None

    def pause(self) -> None:
        if self.task is not None:
            self.task.control.pause()
            self.session.set_training_state("paused")
            self._update_label()
            self.host.show_status("Paused: Resume (F8) carries on, Step (F10) trains one mini-batch")

    def resume(self) -> None:
        if self.task is not None:
            self.task.control.resume()
            self.page.restart_speed(self.task.control.pace)  # steps made while paused say nothing of the speed
            self.session.set_training_state("running")
            self._update_label()
            self.host.show_status("Training…")

    def step(self) -> None:
        """One mini-batch, then pause (starts a paused run when idle)."""
        if self.task is None:
            self.start(step="one")
            return
        self.task.control.step(1)
        self.session.set_training_state("paused")
        self._update_label()

    def step_epoch(self) -> None:
        if self.task is None:
            self.start(step="epoch")
            return
        self.task.control.step_epoch()
        self.session.set_training_state("paused")
        self._update_label()

    def stop(self) -> None:
        if self.task is not None:
            self.task.control.stop()
            self.host.show_status("Stopping…")

    def reset_network(self) -> None:
        """A fresh, untrained network from the panel's own settings (keeps the old one if the settings are bad)."""
        if self.is_training:
            return
        try:
            config = self.panel.config()
            network = config.make_network()
        except ValueError as exc:
            self.host.show_status(f"Cannot build the network: {exc}")
            return
        self.iteration, self.changes, self._origin = 0, [], None
        self.page.show_reset()
        self.page.clear_banner(BANNER_TOPIC)
        self._network = self._fresh = network
        self.panel.clear_loaded_network()
        self.session.set_network(network, f"{config.describe_network()} (untrained)", trained=False)
        self.session.set_training_state("idle")
        self.host.show_status(f"New untrained network, {config.describe_network()}: Start (F5) trains it")

    # ----- what to call things -----
    def describe(self) -> str:
        """The current (or last) run: network, optimizer, learning rate with its changes, batch, seed."""
        config = self.config
        if config is None:
            return ""
        if self.fine_tune_of is None:
            return config.describe(self.changes)
        return (f"fine-tune of {self.fine_tune_of}: {self._network.describe()}, "
                f"{config.describe_training(self.changes)}")

    def run_label(self) -> str:
        """The network label for the run's state now: training, paused after n iterations, finished, ..."""
        state = self.session.training_state
        n = self.iteration
        done = counted(n, "iteration")
        words = {"running": "training", "paused": f"paused after {done}", "stopped": f"stopped after {done}",
                 "diverged": f"diverged after {done}", "error": "training failed"}
        return f"{self.describe()} ({words.get(state, state)})"

    def _update_label(self) -> None:
        if self.config is not None and self.session.network is self._network:
            self.session.set_network_label(self.run_label())

    # ----- changes while running -----
    def _hyperparameters_changed(self, values: dict) -> None:
        changed = {k: v for k, v in values.items() if self._hyper.get(k) != v}
        if self.task is not None and changed:
            self.task.control.set_hyperparameters(**changed)
            shown = ", ".join(f"{k} {self._hyper[k]:g} → {v:g}" if k in self._hyper else f"{k} {v:g}"
                              for k, v in changed.items())
            self._hyper.update(changed)
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
        self._hyper = self.panel.hyperparameters()
        self.host.show_status(f"Switched to {name} from the next mini-batch (fresh optimizer state)", 4000)

    def _pace_changed(self, pace: float | None) -> None:
        self.settings.set_pace(pace)
        if self.task is not None:
            self.task.control.set_pace(pace)
            self.page.restart_speed(pace)  # the speed shown is measured at the new pace only
            shown = dict(PACES)[pace] if pace in dict(PACES) else f"{pace:g} steps/s"
            shown = shown[:1].lower() + shown[1:]
            self.host.show_status(f"Pace: {shown}", 3000)

    def _network_changed(self, network) -> None:
        """Someone else's network (a weight file) replaces the one trained here: stop and forget the run."""
        if network is self._network:
            return
        self._network, self._fresh, self.config = network, None, None
        if self.task is not None:
            self.task.control.stop()
            self.task = None
            self.session.set_training_state("stopped")
        self.iteration, self.changes = 0, []
        self.page.clear_run()
        if network is None:
            self._origin = None
            self.panel.clear_loaded_network()
            return
        source = str(network.info.get("source", ""))
        if source in ("", "new"):  # built in code and handed over (a script, a test): its label says what it is
            self._origin = self.session.network_label or "another network"
        else:
            self._origin = Path(source).name or "a file"
        self.panel.show_loaded_network(network, self._origin)

    # ----- reports from the run -----
    def _progress(self, task: TrainingTask, p: Progress) -> None:
        if task is not self.task:
            return
        self.iteration = p.iteration
        if p.iteration > 0:
            self.session.mark_trained()
        self.page.show_progress(p)
        tested = [m.test_accuracy for m in p.epochs if m.test_accuracy is not None]
        if tested:  # of epochs merged into one report only the last accuracy is still true (each one re-predicts)
            self.session.set_test_accuracy(tested[-1])
        for m in p.epochs:
            self.session.epochFinished.emit(m)
        for c in p.changes:
            self.changes.append(c)
            if c["name"] == "lr":
                self.page.add_change(c["iteration"], f"lr {c['from']:g} → {c['to']:g}")
        if p.changes or self.session.training_state == "paused":
            self._update_label()
        now = time.monotonic()
        if shows_at_once(p, task.control.pace) or now - self._weights_sent >= WEIGHTS_INTERVAL:
            self._weights_sent = now
            self.session.weightsUpdated.emit()

    def _done(self, task: TrainingTask, result: TrainResult) -> None:
        if task is not self.task:
            return
        self.task = None
        self.iteration = result.iterations
        final = result.final
        if result.status == "diverged":
            message = result.message[:1].upper() + result.message[1:]
            self.page.show_banner(message, "error", BANNER_TOPIC)
            self.host.show_status(f"Training diverged after {counted(result.iterations, 'iteration')}: "
                                  "try a smaller learning rate")
        elif result.status == "finished":
            acc = f"; test accuracy {final.test_accuracy:.1%}" if final and final.test_accuracy is not None else ""
            self.host.show_status(f"Finished {counted(len(result.epochs), 'epoch')} in "
                                  f"{format_seconds(result.elapsed)}{acc}")
        else:
            self.host.show_status(f"Stopped after {counted(result.iterations, 'iteration')}")
        self.page.show_result(result.status, result.iterations, result.elapsed)
        self.session.weightsUpdated.emit()
        self.session.set_training_state(result.status)
        if result.status == "finished":
            self.session.set_network_label(f"{self.describe()} (finished, {counted(len(result.epochs), 'epoch')})")
        else:
            self._update_label()
        self._record_run(result)
        self._origin = f"run {self._run_count}"

    def _failed(self, task: TrainingTask, exc: BaseException) -> None:
        if task is not self.task:
            return
        self.task = None
        message = describe_error(exc)
        self.page.show_banner(f"Training stopped with an error: {message}", "error", BANNER_TOPIC)
        self.page.show_result("training failed", self.iteration)
        self.host.show_status(f"Training failed: {message}")
        self.session.set_training_state("error")
        self._update_label()

    def _record_run(self, result: TrainResult) -> None:
        """The run for the Compare page; ``settings["lr_changes"]`` holds ``{"iteration", "from", "to"}`` per change.

        "iteration" is the 1-based number of the first iteration trained with the new rate (as in
        ``RunRecord.iterations``). A fine-tune also says what it continued (``fine_tune_of``) and its network.
        """
        self._run_count += 1
        settings = self.config.to_dict()
        settings["network"] = self._network.describe()
        for name in ("lr", "optimizer"):
            settings[f"{name}_changes"] = [{"iteration": int(c["iteration"]), "from": c["from"], "to": c["to"]}
                                           for c in result.changes if c["name"] == name]
        if self.fine_tune_of is not None:
            shape = network_shape(self._network)
            settings["fine_tune_of"] = self.fine_tune_of
            settings.update(architecture=shape["architecture"] or shape["describe"], hidden=shape["hidden"],
                            loss=shape["loss"])
            if shape["activation"] is not None:
                settings["activation"] = shape["activation"]
        record = RunRecord(name=f"Run {self._run_count}: {self.describe()}", settings=settings,
                           losses=np.asarray(result.losses), epochs=[m.to_dict() for m in result.epochs],
                           status=result.status)
        self.session.add_run(record)
