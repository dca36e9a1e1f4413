"""The settings panel's "Network" group: architecture, hidden layers, activation, loss, weight init, seed.

While the current network came from a weight file, or Start continues this session's own network, the
group shows that network's architecture, read-only, with a one-line note saying where it came from
("Reset for a new network"): those settings belong to the network, not to the panel. The panel's own
values are kept aside meanwhile and come back when that network is gone (Reset, or a new run);
``values()`` always answers with the panel's own. A file that does not record its loss (a book-style
``.pkl``) leaves the Loss editable: the panel's loss is what continuing to train it minimises.
"""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QFormLayout, QGroupBox, QLabel, QLineEdit, QSizePolicy, QSpinBox, QWidget

from engine.nn.layers import ACTIVATIONS
from engine.nn.models import CNN_SPECS
from engine.registry import ACTIVATION_CHOICES, ARCHITECTURE_CHOICES, INIT_CHOICES, LOSS_CHOICES, Choice
from widgets.plain_text import line, plain_tooltip

FILE_ARCHITECTURE = "__file__"  # the architecture list's entry for a network no built-in choice describes
LOADED_STYLE = "QLabel { color: #5a4500; background: #fff6d5; border: 1px solid #e6d38a; padding: 2px; }"


class ControlPanelError(ValueError):
    """A control holds a value that does not make a valid training configuration."""


def records_loss(network) -> bool:
    """Whether the network's loss is known: built here (a run, a script) or read from a DigitLab ``.npz``, which
    stores it; a book-style pickle holds only weights, so its loss is whatever the panel says."""
    info = network.info
    return str(info.get("source", "")) in ("", "new", "trained in DigitLab") or info.get("kind") == "DigitLab .npz"


def network_shape(network) -> dict:
    """What the panel can show of a network: ``architecture`` ("mlp", one of the CNNs or None for others), ``hidden``
    sizes, ``activation``, ``loss`` and ``describe`` (one line such as ``784-50-10 sigmoid``)."""
    specs = [layer.spec() for layer in network.layers]
    activations = [s["type"] for s in specs if s["type"] in ACTIVATIONS]
    is_mlp = all(s["type"] in ("affine", *ACTIVATIONS) for s in specs)
    hidden = [int(s["out"]) for s in specs if s["type"] == "affine"][:-1] if is_mlp else []
    cnn = next((name for name, make in CNN_SPECS.items() if specs == make()["layers"]), None)
    architecture = "mlp" if is_mlp else cnn
    return {"architecture": architecture, "hidden": hidden,
            "activation": activations[0] if activations else None, "loss": network.loss_name,
            "describe": network.describe()}


class OneLineNote(QLabel):
    """A one-line plain-text note whatever its length: cut to the label's width with "…" (the tooltip says it all).

    A second line would push the panel's Run group below a 1280×720 screen; the text quotes a file's name,
    so it is plain text, never HTML.
    """

    PADDING = 3  # LOADED_STYLE's padding and border, on each side

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setWordWrap(False)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)  # a long name never widens it
        self.setFixedHeight(self.fontMetrics().height() + 2 * self.PADDING + 2)
        self._full = ""

    def full_text(self) -> str:
        return self._full

    def set_full_text(self, text: str) -> None:
        self._full = line(text)
        self._fit()

    def is_cut(self) -> bool:
        return self.text() != self._full

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        room = self.contentsRect().width() - 2 * self.PADDING
        shown = self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideRight, max(room, 20))
        if shown != self.text():
            self.setText(shown)


class NetworkSettings(QGroupBox):
    """The network-shaping controls, and the read-only view of a network opened from a file."""

    FIELDS = ("architecture", "hidden", "activation", "loss", "init", "seed")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Network", parent)
        form = self._form = QFormLayout(self)
        self.loaded_note = OneLineNote()
        self.loaded_note.setStyleSheet(LOADED_STYLE)
        self.loaded_note.hide()
        form.addRow(self.loaded_note)
        self.architecture = combo(ARCHITECTURE_CHOICES)
        self.architecture.setToolTip("MLP: every pixel connects to every hidden unit. The CNNs: convolution "
                                     "filters that look at small patches, then a classifier. The book's two CNNs "
                                     "start from the book's settings (Adam, lr 0.001, batch 100, 20 epochs).")
        form.addRow("Architecture", self.architecture)
        self.hidden = QLineEdit()
        self.hidden.setPlaceholderText("e.g. 100 or 256,128")
        self.hidden.setToolTip("Hidden layer sizes of the MLP, separated by commas: 100 is one hidden layer of "
                               "100 units, 256,128 two layers.")
        form.addRow("Hidden layers", self.hidden)
        self.activation = combo(ACTIVATION_CHOICES)
        self.activation.setToolTip("The non-linearity after each hidden layer. ReLU learns fastest; sigmoid and "
                                   "tanh are the classic S-shaped curves.")
        form.addRow("Activation", self.activation)
        self.loss = combo(LOSS_CHOICES)
        self.loss.setToolTip("What training minimises: cross-entropy (the usual choice for classes) or the sum "
                             "of squared differences between probabilities and the one-hot label.")
        form.addRow("Loss", self.loss)
        self.init = combo(INIT_CHOICES)
        self.init.setToolTip("How the starting weights are drawn. He suits ReLU, Xavier suits sigmoid/tanh; a "
                             "fixed small spread (0.01) shows why scaling matters in deep nets.")
        form.addRow("Weight init", self.init)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setToolTip("Random seed for the starting weights and the mini-batch order: the same seed "
                             "gives the same run.")
        form.addRow("Seed", self.seed)
        self._own: dict | None = None  # the panel's own values while a file's network is shown
        self.loaded_from = ""  # the file's name (or "run 2") while its network is shown
        self.loss_fixed = False  # while a network is shown: its loss is known, so Loss is read-only too

    # ----- values -----
    def values(self) -> dict:
        """The panel's own network settings (architecture, hidden text, activation, loss, init, seed)."""
        if self._own is not None:  # the seed stays editable: it orders the mini-batches; so may the loss
            editable = {"seed": self.seed.value()} if self.loss_fixed else \
                {"seed": self.seed.value(), "loss": self.loss.currentData()}
            return {**self._own, **editable}
        return {"architecture": self.architecture.currentData(), "hidden": self.hidden.text(),
                "activation": self.activation.currentData(), "loss": self.loss.currentData(),
                "init": self.init.currentData(), "seed": self.seed.value()}

    def set_values(self, values: dict) -> None:
        """Set the panel's own values (kept aside, not shown, while a file's network is shown)."""
        if self._own is not None:
            self._own.update(values)
            self.seed.setValue(int(self._own["seed"]))  # the seed stays the panel's: it orders the mini-batches
            if not self.loss_fixed:
                select(self.loss, self._own["loss"])
            return
        self._show(values)

    def _show(self, values: dict) -> None:
        select(self.architecture, values["architecture"])
        self.hidden.setText(values["hidden"])
        select(self.activation, values["activation"])
        select(self.loss, values["loss"])
        select(self.init, values["init"])
        self.seed.setValue(int(values["seed"]))

    # ----- a network from a file -----
    @property
    def is_showing_loaded(self) -> bool:
        return self._own is not None

    def show_loaded(self, network, name: str, own_run: bool = False) -> None:
        """Show ``network``'s architecture read-only, with a note that it came from ``name`` (a file's name).

        ``own_run``: the network was trained in this session (``name`` is "run 2") and Start is continuing it.
        """
        if self._own is None:
            self._own = self.values()
        elif not self.loss_fixed:
            self._own["loss"] = self.loss.currentData()  # chosen for the previous file's network: the panel's own
        shape = network_shape(network)
        self.loaded_from = name
        self.loss_fixed = records_loss(network)
        index = self.architecture.findData(FILE_ARCHITECTURE)
        if shape["architecture"] is None and index < 0:
            self.architecture.addItem("As in the file", FILE_ARCHITECTURE)
        select(self.architecture, shape["architecture"] or FILE_ARCHITECTURE)
        self.hidden.setText(",".join(map(str, shape["hidden"])) if shape["architecture"] == "mlp" else "")
        if shape["activation"] is not None:
            select(self.activation, shape["activation"])
        select(self.loss, shape["loss"] if self.loss_fixed else self._own["loss"])
        layers = "" if shape["architecture"] == "mlp" else f" ({line(shape['describe'], 80)})"  # else the fields say
        if own_run:
            where, fixed_by = f"{line(name[:1].upper() + name[1:], 40)}'s network, continued{layers}", "this network"
            whence = f"Trained in this session ({line(name, 80)}): {shape['describe']}."
        else:
            where, fixed_by = f"From {line(name, 120)}{layers}", "the file"
            whence = f"From {name}: {shape['describe']}."
        loss = "" if self.loss_fixed else ("\nThe file does not record the loss it was trained with: the Loss "
                                           "below is what continuing to train it minimises.")
        self.loaded_note.set_full_text(f"{where} — Reset for a new network")
        self._form.setRowVisible(self.init, False)  # how its weights were first drawn no longer matters
        self.loaded_note.setToolTip(plain_tooltip(
            f"{self.loaded_note.full_text()}\n\n{whence}\nThe layers and activation come from {fixed_by} and cannot "
            f"change; the optimizer, learning rate, batch size, epochs and seed below apply when Start continues "
            f"training it.{loss}\nReset (Ctrl+Shift+R) makes a new network from your own settings."))
        self.loaded_note.show()

    def clear_loaded(self) -> None:
        """Back to the panel's own values, editable again."""
        if self._own is None:
            return
        own, self._own = self.values(), None
        self.loaded_from, self.loss_fixed = "", False
        self.loaded_note.hide()
        self._form.setRowVisible(self.init, True)
        self._show(own)
        index = self.architecture.findData(FILE_ARCHITECTURE)
        if index >= 0:
            self.architecture.removeItem(index)

    def update_enabled(self, running: bool) -> None:
        """Nothing that shapes the network changes during a run; a file's network never changes here."""
        fixed = running or self._own is not None
        for w in (self.architecture, self.init):
            w.setEnabled(not fixed)
        self.activation.setEnabled(not fixed and self.architecture.currentData() == "mlp")  # the CNNs use ReLU
        self.loss.setEnabled(not running and (self._own is None or not self.loss_fixed))
        self.hidden.setEnabled(not fixed and self.architecture.currentData() == "mlp")
        self.seed.setEnabled(not running)


def select(widget: QComboBox, value) -> None:
    index = widget.findData(value)
    if index < 0:
        raise ControlPanelError(f"{value!r} is not one of the choices of {widget.toolTip().split('.')[0]!r}")
    widget.setCurrentIndex(index)


def combo(choices: tuple[Choice, ...]) -> QComboBox:
    """A combo box of engine.registry choices: the label shown, the name as data, the help as item tooltip."""
    widget = QComboBox()
    for choice in choices:
        widget.addItem(choice.label, choice.name)
        widget.setItemData(widget.count() - 1, choice.help, Qt.ToolTipRole)
    return widget
