"""The left-hand panel: what to train on, which network, how to train it, and the run buttons.

It turns its controls into an ``engine.train.config.TrainConfig`` and back, and owns the run actions
(Start, Pause, ...) with their keyboard shortcuts; it never trains anything itself. While a run is
going, only the optimizer and its hyper-parameters stay editable: changing them emits
``hyperparametersChanged`` / ``optimizerChanged`` so the window can pass them to the running loop.
"""
from __future__ import annotations

import math
import re

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QKeySequence, QValidator
from PySide6.QtWidgets import (QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QGridLayout, QGroupBox,
                               QLineEdit, QSizePolicy, QSpinBox, QToolButton, QVBoxLayout, QWidget)

from engine.nn.optimizers import DEFAULT_LR, OPTIMIZERS
from engine.registry import (ACTIVATION_CHOICES, ARCHITECTURE_CHOICES, DATASETS, INIT_CHOICES, LOSS_CHOICES,
                             OPTIMIZER_CHOICES, Choice, names)
from engine.train.config import ConfigError, TrainConfig, parse_hidden
from widgets.plain_text import line, plain_tooltip

FOLDER_ITEM = "__folder__"
# Which hyper-parameter rows each optimizer uses (lr always).
OPTIMIZER_ROWS = {"momentum": ("momentum",), "nesterov": ("momentum",), "adam": ("beta1", "beta2")}
RUNNING_STATES = ("running", "paused")


class ControlPanelError(ValueError):
    """A control holds a value that does not make a valid training configuration."""


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

    def __init__(self, config: TrainConfig | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._state = "idle"
        self._dataset_ready = False
        self._updating = False
        self._build_actions()
        self._build_controls()
        self.set_config(config or TrainConfig())

    # ----- construction -----
    def _build_actions(self) -> None:
        def action(text: str, shortcut: str, tip: str) -> QAction:
            a = QAction(text, self)
            a.setShortcut(QKeySequence(shortcut))
            a.setToolTip(f"{tip} ({QKeySequence(shortcut).toString(QKeySequence.NativeText)})")
            a.setStatusTip(tip)
            return a

        self.action_start = action("Start", "F5", "Start training a new network with these settings")
        self.action_pause = action("Pause", "F6", "Pause training after the current mini-batch")
        self.action_resume = action("Resume", "F8", "Carry on training from where it was paused")
        self.action_step = action("Step", "F10", "Train exactly one mini-batch, then pause")
        self.action_step_epoch = action("Step epoch", "Shift+F10", "Train until the current epoch ends, then pause")
        self.action_stop = action("Stop", "Shift+F5", "Stop training; the network keeps what it has learned so far")
        self.action_reset = action("Reset", "Ctrl+Shift+R",
                                   "Throw the current network away and start again from fresh random weights")
        self.run_actions = [self.action_start, self.action_pause, self.action_resume, self.action_step,
                            self.action_step_epoch, self.action_stop, self.action_reset]

    def _build_controls(self) -> None:
        outer = QVBoxLayout(self)
        outer.setContentsMargins(6, 6, 6, 6)

        data_box = QGroupBox("Data")
        form = QFormLayout(data_box)
        self.dataset = _combo(DATASETS)
        self.dataset.addItem("A folder of IDX files…", FOLDER_ITEM)
        self.dataset.setToolTip("Which images to train on. The MNIST sample needs no download; MNIST and "
                                "Fashion-MNIST are downloaded once and kept; or pick a folder holding IDX files.")
        self.dataset.activated.connect(self._dataset_activated)
        form.addRow("Dataset", self.dataset)
        outer.addWidget(data_box)

        net_box = QGroupBox("Network")
        form = QFormLayout(net_box)
        self.architecture = _combo(ARCHITECTURE_CHOICES)
        self.architecture.setToolTip("MLP: every pixel connects to every hidden unit. Small CNN: convolution "
                                     "filters that look at small patches, then a classifier.")
        form.addRow("Architecture", self.architecture)
        self.hidden = QLineEdit()
        self.hidden.setPlaceholderText("e.g. 100 or 256,128")
        self.hidden.setToolTip("Hidden layer sizes of the MLP, separated by commas: 100 is one hidden layer of "
                               "100 units, 256,128 two layers.")
        form.addRow("Hidden layers", self.hidden)
        self.activation = _combo(ACTIVATION_CHOICES)
        self.activation.setToolTip("The non-linearity after each hidden layer. ReLU learns fastest; sigmoid and "
                                   "tanh are the classic S-shaped curves.")
        form.addRow("Activation", self.activation)
        self.loss = _combo(LOSS_CHOICES)
        self.loss.setToolTip("What training minimises: cross-entropy (the usual choice for classes) or the sum "
                             "of squared differences between probabilities and the one-hot label.")
        form.addRow("Loss", self.loss)
        self.init = _combo(INIT_CHOICES)
        self.init.setToolTip("How the starting weights are drawn. He suits ReLU, Xavier suits sigmoid/tanh; a "
                             "fixed small spread (0.01) shows why scaling matters in deep nets.")
        form.addRow("Weight init", self.init)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setToolTip("Random seed for the starting weights and the mini-batch order: the same seed "
                             "gives the same run.")
        form.addRow("Seed", self.seed)
        outer.addWidget(net_box)

        opt_box = QGroupBox("Training")
        form = QFormLayout(opt_box)
        self._opt_form = form
        self.optimizer = _combo(OPTIMIZER_CHOICES)
        self.optimizer.setToolTip("How gradients turn into weight updates. Can be changed while training (the "
                                  "new optimizer starts with fresh internal state).")
        form.addRow("Optimizer", self.optimizer)
        self.lr = LogSpinBox()
        self.lr.setToolTip("Learning rate: how big each update step is. The arrows move 1-2-5 per decade. "
                           "Takes effect from the next mini-batch, also while training.")
        form.addRow("Learning rate", self.lr)
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

        run_box = QGroupBox("Run")
        grid = QGridLayout(run_box)
        self.buttons = {}
        for i, a in enumerate(self.run_actions):
            b = QToolButton()
            b.setDefaultAction(a)
            b.setMinimumWidth(80)
            b.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
            self.buttons[a.text()] = b
            grid.addWidget(b, i // 2, i % 2)
        outer.addWidget(run_box)
        outer.addStretch(1)

        for w in (self.architecture, self.activation, self.loss, self.init):
            w.currentIndexChanged.connect(self._emit_changed)
        for w in (self.seed, self.batch_size, self.epochs):
            w.valueChanged.connect(self._emit_changed)
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
            _select(self.architecture, config.architecture)
            self.hidden.setText(",".join(str(h) for h in config.hidden))
            _select(self.activation, config.activation)
            _select(self.loss, config.loss)
            _select(self.init, config.init)
            self.seed.setValue(config.seed)
            _select(self.optimizer, config.optimizer)
            self.lr.setValue(config.lr)
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
            return parse_hidden(self.hidden.text())
        except ConfigError as exc:
            raise ControlPanelError(str(exc)) from None

    def config(self) -> TrainConfig:
        """The settings as a validated TrainConfig; ControlPanelError says which control is wrong."""
        try:
            return TrainConfig(
                dataset=self.dataset_name(), architecture=self.architecture.currentData(),
                hidden=self.hidden_sizes(), activation=self.activation.currentData(), loss=self.loss.currentData(),
                optimizer=self.optimizer.currentData(), lr=self.lr.value(), momentum=self.momentum.value(),
                beta1=self.beta1.value(), beta2=self.beta2.value(), batch_size=self.batch_size.value(),
                epochs=self.epochs.value(), init=self.init.currentData(), seed=self.seed.value(),
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

    # ----- dataset -----
    def dataset_name(self) -> str:
        """A built-in name ("mnist-sample", ...) or the path of a chosen folder."""
        return str(self.dataset.currentData())

    def select_dataset(self, name: str) -> None:
        """Select a built-in dataset or a folder path (added to the list if new). Emits nothing."""
        index = self.dataset.findData(name)
        if index < 0:
            index = self.dataset.count() - 1  # folders go just before "A folder of IDX files…"
            self.dataset.insertItem(index, f"Folder: {line(name, 80)}", name)
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
        for w in (self.dataset, self.architecture, self.activation, self.loss, self.init, self.seed,
                  self.batch_size, self.epochs):
            w.setEnabled(not running)
        self.hidden.setEnabled(not running and self.architecture.currentData() == "mlp")
        can_start = not running and self._dataset_ready
        self.action_start.setEnabled(can_start)
        self.action_pause.setEnabled(self._state == "running")
        self.action_resume.setEnabled(self._state == "paused")
        self.action_step.setEnabled(running or can_start)
        self.action_step_epoch.setEnabled(running or can_start)
        self.action_stop.setEnabled(running)
        self.action_reset.setEnabled(not running)
        if not self._dataset_ready:
            self.action_start.setToolTip("Start training (waiting for the dataset to load)")
        else:
            self.action_start.setToolTip("Start training a new network with these settings (F5)")

    def _update_rows(self) -> None:
        rows = OPTIMIZER_ROWS.get(self.optimizer.currentData(), ())
        for name in ("momentum", "beta1", "beta2"):
            self._opt_form.setRowVisible(getattr(self, name), name in rows)

    # ----- reactions -----
    def _emit_changed(self, *_args) -> None:
        if not self._updating:
            self.configChanged.emit()

    def _hidden_edited(self, text: str) -> None:
        try:
            parse_hidden(text)
        except ConfigError:
            self.hidden.setStyleSheet("QLineEdit { background: #ffe0e0; }")
        else:
            self.hidden.setStyleSheet("")
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


def _select(combo: QComboBox, value) -> None:
    index = combo.findData(value)
    if index < 0:
        raise ControlPanelError(f"{value!r} is not one of the choices of {combo.toolTip().split('.')[0]!r}")
    combo.setCurrentIndex(index)


def _combo(choices: tuple[Choice, ...]) -> QComboBox:
    """A combo box of engine.registry choices: the label shown, the name as data, the help as item tooltip."""
    combo = QComboBox()
    for choice in choices:
        combo.addItem(choice.label, choice.name)
        combo.setItemData(combo.count() - 1, choice.help, Qt.ToolTipRole)
    return combo
