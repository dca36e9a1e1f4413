"""The left-hand panel: what to train on, which network, how to train it, and the run buttons.

It turns its controls into an ``engine.train.config.TrainConfig`` and back, and owns the run actions
(Start, Pause, ...) with their keyboard shortcuts and the pace (``app.run_controls``); it never trains
anything itself. While a run is going, only the optimizer and its hyper-parameters (and the pace) stay
editable: changing them emits ``hyperparametersChanged`` / ``optimizerChanged`` / ``paceChanged`` so the
window can pass them to the running loop. A network opened from a file, or this session's network while
Start continues it, is shown read-only in the Network group (``app.network_settings``).
"""
from __future__ import annotations

import math
import re
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import (QDoubleSpinBox, QFileDialog, QFormLayout, QGroupBox, QSpinBox, QVBoxLayout,
                               QWidget)

from app.network_settings import ControlPanelError, NetworkSettings, combo, select
from app.run_controls import RunControls
from engine.nn.optimizers import DEFAULT_LR, OPTIMIZERS
from engine.registry import DATASETS, OPTIMIZER_CHOICES, SCHEDULE_CHOICES, names
from engine.train.config import BOOK_SETTINGS, ConfigError, TrainConfig, parse_hidden
from widgets.plain_text import line, plain_tooltip

__all__ = ["ControlPanel", "ControlPanelError", "LogSpinBox"]

FOLDER_ITEM = "__folder__"
# Which hyper-parameter rows each optimizer uses (lr always).
OPTIMIZER_ROWS = {"momentum": ("momentum",), "nesterov": ("momentum",), "adam": ("beta1", "beta2")}
RUNNING_STATES = ("running", "paused")


class LogSpinBox(QDoubleSpinBox):
    """A spin box whose arrows move along 1-2-5 steps per decade (learning rates span many decades)."""

    def __init__(self, minimum: float = 1e-6, maximum: float = 10.0, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setDecimals(12)
        self.setRange(minimum, maximum)
        self.setKeyboardTracking(False)

    def textFromValue(self, value: float) -> str:
        return f"{value:g}"

    def valueFromText(self, text: str) -> float:
        try:
            return float(text)
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int):
        try:
            value = float(text)
        except ValueError:
            ok = re.fullmatch(r"[0-9.eE+-]*", text) is not None
            return (QValidator.Intermediate if ok else QValidator.Invalid), text, pos
        inside = self.minimum() <= value <= self.maximum()
        return (QValidator.Acceptable if inside else QValidator.Intermediate), text, pos

    @staticmethod
    def ladder_step(value: float, steps: int) -> float:
        """The value ``steps`` rungs away on the 1-2-5 ladder (rounding onto it first)."""
        exponent = math.floor(math.log10(value))
        mantissa = value / 10**exponent
        rung = min(range(4), key=lambda i: abs([1, 2, 5, 10][i] - mantissa))
        index = exponent * 3 + rung + steps
        return [1, 2, 5][index % 3] * 10.0 ** (index // 3)

    def stepBy(self, steps: int) -> None:
        value = self.ladder_step(max(self.value(), self.minimum()), steps)
        self.setValue(min(max(value, self.minimum()), self.maximum()))


class ControlPanel(QWidget):
    configChanged = Signal()
    datasetChosen = Signal(str)  # a built-in dataset name or a folder path
    optimizerChanged = Signal(str)
    hyperparametersChanged = Signal(dict)  # e.g. {"lr": 0.01}; only keys the chosen optimizer has
    paceChanged = Signal(object)  # steps per second, or None for as fast as possible

    def __init__(self, config: TrainConfig | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._state = "idle"
        self._dataset_ready = False
        self._updating = False
        self.run_box = RunControls()
        for name in ("start", "pause", "resume", "step", "step_epoch", "stop", "reset"):
            setattr(self, f"action_{name}", getattr(self.run_box, f"action_{name}"))
        self.run_actions = self.run_box.actions
        self.buttons = self.run_box.buttons
        self.pace_combo = self.run_box.pace_combo
        self.run_box.paceChanged.connect(self.paceChanged)
        self._build_controls()
        self.set_config(config or TrainConfig())

    # ----- construction -----
    def _build_controls(self) -> None:
        outer = QVBoxLayout(self)
        outer.setContentsMargins(6, 6, 6, 6)

        data_box = QGroupBox("Data")
        form = QFormLayout(data_box)
        self.dataset = combo(DATASETS)
        self.dataset.addItem("A folder of IDX files…", FOLDER_ITEM)
        self.dataset.setToolTip("Which images to train on. The MNIST sample needs no download; MNIST and "
                                "Fashion-MNIST are downloaded once and kept; or pick a folder holding IDX files.")
        self.dataset.activated.connect(self._dataset_activated)
        form.addRow("Dataset", self.dataset)
        outer.addWidget(data_box)

        self.network_box = NetworkSettings()
        for name in NetworkSettings.FIELDS:
            setattr(self, name, getattr(self.network_box, name))
        outer.addWidget(self.network_box)

        opt_box = QGroupBox("Training")
        form = QFormLayout(opt_box)
        self._opt_form = form
        self.optimizer = combo(OPTIMIZER_CHOICES)
        self.optimizer.setToolTip("How gradients turn into weight updates. Can be changed while training (the "
                                  "new optimizer starts with fresh internal state).")
        form.addRow("Optimizer", self.optimizer)
        self.lr = LogSpinBox()
        self.lr.setToolTip("Learning rate: how big each update step is. The arrows move 1-2-5 per decade. "
                           "Takes effect from the next mini-batch, also while training.")
        form.addRow("Learning rate", self.lr)
        self.schedule = combo(SCHEDULE_CHOICES)
        self.schedule.setToolTip("How the learning rate moves during the run; the rate above is its peak. One-cycle "
                                 "warms up, then anneals to almost 0 by the last epoch.")
        form.addRow("LR schedule", self.schedule)
        self.momentum = QDoubleSpinBox()
        self.momentum.setRange(0.0, 0.999)
        self.momentum.setDecimals(3)
        self.momentum.setSingleStep(0.05)
        self.momentum.setToolTip("Momentum: how much of the previous update carries into the next one (0.9 is "
                                 "usual). Changes apply while training.")
        form.addRow("Momentum", self.momentum)
        self.beta1 = QDoubleSpinBox()
        self.beta1.setRange(0.0, 0.9999)
        self.beta1.setDecimals(4)
        self.beta1.setSingleStep(0.01)
        self.beta1.setToolTip("Adam's beta1: decay of the running mean of gradients (usually 0.9).")
        form.addRow("Beta 1", self.beta1)
        self.beta2 = QDoubleSpinBox()
        self.beta2.setRange(0.0, 0.99999)
        self.beta2.setDecimals(5)
        self.beta2.setSingleStep(0.001)
        self.beta2.setToolTip("Adam's beta2: decay of the running mean of squared gradients (usually 0.999).")
        form.addRow("Beta 2", self.beta2)
        self.batch_size = QSpinBox()
        self.batch_size.setRange(1, 10_000)
        self.batch_size.setToolTip("How many images each update averages over (mini-batch size).")
        form.addRow("Batch size", self.batch_size)
        self.epochs = QSpinBox()
        self.epochs.setRange(1, 1000)
        self.epochs.setToolTip("How many times training goes through the whole training set.")
        form.addRow("Epochs", self.epochs)
        outer.addWidget(opt_box)

        outer.addWidget(self.run_box)
        outer.addStretch(1)

        for w in (self.architecture, self.activation, self.loss, self.init):
            w.currentIndexChanged.connect(self._emit_changed)
        self.schedule.currentIndexChanged.connect(self._emit_changed)
        for w in (self.seed, self.batch_size, self.epochs):
            w.valueChanged.connect(self._emit_changed)
        self.architecture.activated.connect(self._architecture_chosen)  # a person's choice, not set_config's
        self.hidden.textChanged.connect(self._hidden_edited)
        self.architecture.currentIndexChanged.connect(self._update_enabled)
        self.optimizer.currentIndexChanged.connect(self._optimizer_changed)
        for w in (self.lr, self.momentum, self.beta1, self.beta2):
            w.valueChanged.connect(self._hyper_changed)

    # ----- config <-> controls -----
    def set_config(self, config: TrainConfig) -> None:
        self._updating = True
        try:
            self.select_dataset(config.dataset)
            self.network_box.set_values({
                "architecture": config.architecture, "hidden": ",".join(map(str, config.hidden)),
                "activation": config.activation, "loss": config.loss, "init": config.init, "seed": config.seed})
            select(self.optimizer, config.optimizer)
            self.lr.setValue(config.lr)
            select(self.schedule, config.schedule)
            self.momentum.setValue(config.momentum)
            self.beta1.setValue(config.beta1)
            self.beta2.setValue(config.beta2)
            self.batch_size.setValue(config.batch_size)
            self.epochs.setValue(config.epochs)
        finally:
            self._updating = False
        self._update_rows()
        self._update_enabled()

    def hidden_sizes(self) -> list[int]:
        try:
            return parse_hidden(self.network_box.values()["hidden"])
        except ConfigError as exc:
            raise ControlPanelError(str(exc)) from None

    def config(self) -> TrainConfig:
        """The settings as a validated TrainConfig; ControlPanelError says which control is wrong.

        While a file's network is shown, the network settings are the panel's own (what Reset would build).
        """
        net = self.network_box.values()
        try:
            return TrainConfig(
                dataset=self.dataset_name(), architecture=net["architecture"], hidden=self.hidden_sizes(),
                activation=net["activation"], loss=net["loss"],
                optimizer=self.optimizer.currentData(), lr=self.lr.value(), momentum=self.momentum.value(),
                beta1=self.beta1.value(), beta2=self.beta2.value(), batch_size=self.batch_size.value(),
                epochs=self.epochs.value(), schedule=self.schedule.currentData(), init=net["init"], seed=net["seed"],
            )
        except ControlPanelError:
            raise
        except ValueError as exc:
            raise ControlPanelError(f"the training settings are not valid: {exc}") from exc

    def hyperparameters(self) -> dict:
        """lr and the extra values of the chosen optimizer, as the running loop's optimizer.set() takes them."""
        name = self.optimizer.currentData()
        values = {"lr": self.lr.value(), "momentum": self.momentum.value(), "beta1": self.beta1.value(),
                  "beta2": self.beta2.value()}
        return {k: v for k, v in values.items() if k in OPTIMIZERS[name].limits}

    # ----- pace -----
    def pace(self) -> float | None:
        """Steps per second a run is held to, or None (as fast as possible)."""
        return self.run_box.pace()

    def set_pace(self, steps_per_second: float | None) -> None:
        self.run_box.set_pace(steps_per_second)

    # ----- a network from a file -----
    def show_loaded_network(self, network, name: str, own_run: bool = False) -> None:
        """Show a weight file's network read-only (its layers cannot change); the panel's own values wait aside.

        ``own_run``: it is this session's network (``name`` says which run), and Start is continuing it.
        """
        self._updating = True
        try:
            self.network_box.show_loaded(network, name, own_run)
        finally:
            self._updating = False
        self.hidden.setStyleSheet("")
        self._update_enabled()

    def clear_loaded_network(self) -> None:
        """The file's network is gone: the panel's own network settings are back and editable."""
        self._updating = True
        try:
            self.network_box.clear_loaded()
        finally:
            self._updating = False
        self._hidden_edited(self.hidden.text())
        self._update_enabled()

    @property
    def shows_loaded_network(self) -> bool:
        return self.network_box.is_showing_loaded

    # ----- dataset -----
    def dataset_name(self) -> str:
        """A built-in name ("mnist-sample", ...) or the path of a chosen folder."""
        return str(self.dataset.currentData())

    def select_dataset(self, name: str) -> None:
        """Select a built-in dataset, a folder or a dataset file (added to the list if new). Emits nothing."""
        index = self.dataset.findData(name)
        if index < 0:
            index = self.dataset.count() - 1  # folders and files go just before "A folder of IDX files…"
            kind = "File" if Path(name).is_file() else "Folder"
            self.dataset.insertItem(index, f"{kind}: {line(name, 80)}", name)
            self.dataset.setItemData(index, plain_tooltip(name), Qt.ToolTipRole)  # the full path, shown as text
        blocked = self.dataset.blockSignals(True)
        self.dataset.setCurrentIndex(index)
        self.dataset.blockSignals(blocked)
        self._last_dataset = name

    def ask_folder(self) -> str | None:
        """Ask for a folder of IDX files (tests replace this)."""
        path = QFileDialog.getExistingDirectory(self, "Folder with IDX files (train-*/t10k-*-ubyte[.gz])")
        return path or None

    def _dataset_activated(self, index: int) -> None:
        name = self.dataset.itemData(index)
        if name == FOLDER_ITEM:
            name = self.ask_folder()
            if not name:
                self.select_dataset(self._last_dataset)
                return
        elif name == self._last_dataset and name in names(DATASETS):
            return  # chosen again: nothing to load (a folder is re-read, its files may have changed)
        self.select_dataset(name)
        self.datasetChosen.emit(name)
        self._emit_changed()

    def set_dataset_ready(self, ready: bool) -> None:
        self._dataset_ready = ready
        self._update_enabled()

    # ----- run state -----
    def set_state(self, state: str) -> None:
        """Enable what makes sense: settings that shape the network are frozen while a run is going."""
        self._state = state
        self._update_enabled()

    @property
    def state(self) -> str:
        return self._state

    def _update_enabled(self) -> None:
        running = self._state in RUNNING_STATES
        for w in (self.dataset, self.batch_size, self.epochs, self.schedule):
            w.setEnabled(not running)
        self.network_box.update_enabled(running)
        self.run_box.update_enabled(self._state, self._dataset_ready, running)

    def _update_rows(self) -> None:
        rows = OPTIMIZER_ROWS.get(self.optimizer.currentData(), ())
        for name in ("momentum", "beta1", "beta2"):
            self._opt_form.setRowVisible(getattr(self, name), name in rows)

    # ----- reactions -----
    def _emit_changed(self, *_args) -> None:
        if not self._updating:
            self.configChanged.emit()

    def _hidden_edited(self, text: str) -> None:
        if self.network_box.is_showing_loaded:
            return  # the file's layers, not the panel's: nothing to check or to emit
        try:
            parse_hidden(text)
        except ConfigError:
            self.hidden.setStyleSheet("QLineEdit { background: #ffe0e0; }")
        else:
            self.hidden.setStyleSheet("")
        self._emit_changed()

    def _architecture_chosen(self, _index: int) -> None:
        """Choosing one of the book's CNNs starts from the book's own settings, so results compare with its."""
        book = BOOK_SETTINGS.get(self.architecture.currentData())
        if self._updating or book is None or self.network_box.is_showing_loaded:
            return
        select(self.optimizer, book["optimizer"])  # sets the optimizer's usual rate, then the book's below
        self._updating = True
        try:
            self.lr.setValue(book["lr"])
            self.batch_size.setValue(book["batch_size"])
            self.epochs.setValue(book["epochs"])
            select(self.init, book["init"])
        finally:
            self._updating = False
        self.hyperparametersChanged.emit(self.hyperparameters())
        self._emit_changed()

    def _optimizer_changed(self, _index: int) -> None:
        self._update_rows()
        if self._updating:
            return
        name = self.optimizer.currentData()
        self._updating = True
        try:
            self.lr.setValue(DEFAULT_LR.get(name, self.lr.value()))  # each optimizer has its usual step size
        finally:
            self._updating = False
        self.optimizerChanged.emit(name)
        self._emit_changed()

    def _hyper_changed(self, _value: float) -> None:
        if self._updating:
            return
        self.hyperparametersChanged.emit(self.hyperparameters())
        self._emit_changed()
