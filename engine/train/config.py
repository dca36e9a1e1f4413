"""One description of a training run, shared by the command line, the GUI and run comparisons."""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields

from engine.errors import DigitLabError
from engine.nn.initializers import INITS, default_init
from engine.nn.layers import ACTIVATIONS, LOSSES
from engine.nn.models import ARCHITECTURES, architecture_spec
from engine.nn.network import Network, build_network
from engine.nn.optimizers import OPTIMIZERS, Optimizer, make_optimizer
from engine.train.loop import TrainSettings
from engine.train.schedule import SCHEDULES

_SIZES = re.compile(r"\s*\d+\s*([, ]\s*\d+\s*)*")


MAX_PARAMETERS = 20_000_000  # 80 MB of float32 weights, ~4× that while training: a typo like 99999999 is refused
MAX_HIDDEN_LAYERS = 32  # far deeper than any MLP that learns MNIST here; bounds the per-layer work and memory


CNN_NAMES = {"small-cnn": "small CNN", "lenet": "LeNet-style CNN", "simple-convnet": "SimpleConvNet",
             "deep-convnet": "DeepConvNet"}  # how a run's description names each fixed architecture


# The book trains its CNNs with these settings (ch07/train_convnet.py, ch08/train_deepnet.py): choosing one of
# them in the window or on the command line starts from the same, so its accuracy can be compared with the book's
BOOK_SETTINGS = {
    # weight_init_std=0.01 in train_convnet.py; the book reports ~98.9%
    "simple-convnet": {"optimizer": "adam", "lr": 0.001, "batch_size": 100, "epochs": 20, "init": "fixed"},
    # He initialisation, dropout 0.5; the book reports ~99.3%+
    "deep-convnet": {"optimizer": "adam", "lr": 0.001, "batch_size": 100, "epochs": 20, "init": "he"},
}


def book_defaults(architecture: str, epochs: int | None, init: str) -> tuple[int, str]:
    """(epochs, init) of a run: the book's for its CNNs unless given (``epochs`` None, ``init`` "auto"), else 10 epochs."""
    book = BOOK_SETTINGS.get(architecture, {})
    return (book.get("epochs", 10) if epochs is None else epochs, book.get("init", "auto") if init == "auto" else init)


class ConfigError(DigitLabError):
    """A training setting that cannot be used (unknown name, non-positive size, unparsable text)."""


def check_mlp_size(hidden: list[int]) -> None:
    """Refuse an MLP too big to build (ConfigError saying how big), before any memory is asked for."""
    if len(hidden) > MAX_HIDDEN_LAYERS:
        raise ConfigError(f"{len(hidden)} hidden layers is more than the {MAX_HIDDEN_LAYERS} allowed")
    sizes = [784, *hidden, 10]
    weights = sum(a * b + b for a, b in zip(sizes, sizes[1:]))
    if weights > MAX_PARAMETERS:
        raise ConfigError(f"that network has {weights:,} weights, more than the {MAX_PARAMETERS:,} allowed "
                          f"(it would need {weights * 16 / 2**30:,.1f} GiB to train)")


def parse_hidden(text: str) -> list[int]:
    """Hidden layer sizes from text such as ``100`` or ``256,128`` (commas or spaces); ConfigError if not."""
    if not isinstance(text, str) or not _SIZES.fullmatch(text):
        raise ConfigError(f"hidden layer sizes look like 100 or 256,128, got {text!r}")
    sizes = [int(s) for s in text.replace(",", " ").split()]
    if any(s < 1 for s in sizes):
        raise ConfigError(f"hidden layer sizes must be positive, got {text!r}")
    return sizes


@dataclass
class TrainConfig:
    dataset: str = "mnist-sample"
    architecture: str = "mlp"  # one of engine.nn.models.ARCHITECTURES: "mlp", "small-cnn", "lenet", …
    hidden: list[int] = field(default_factory=lambda: [256, 128])  # ≥ 0.93 on real MNIST from the 4,000-image sample
    activation: str = "relu"
    loss: str = "cross-entropy"
    optimizer: str = "adam"
    lr: float = 0.001
    momentum: float = 0.9  # Momentum and Nesterov
    beta1: float = 0.9  # Adam
    beta2: float = 0.999  # Adam
    batch_size: int = 100
    epochs: int = 10
    schedule: str = "constant"  # learning-rate schedule (engine.train.schedule): lr is its peak
    init: str = "auto"  # "auto" = He for ReLU, Xavier otherwise
    seed: int = 0

    def __post_init__(self) -> None:
        self.hidden = [int(h) for h in self.hidden]
        if self.architecture not in ARCHITECTURES:
            raise ConfigError(f"unknown architecture {self.architecture!r}; choose one of {', '.join(ARCHITECTURES)}")
        if any(h < 1 for h in self.hidden):
            raise ConfigError(f"hidden layer sizes must be positive, got {self.hidden}")
        if self.architecture == "mlp":
            check_mlp_size(self.hidden)
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"unknown activation {self.activation!r}; choose one of {', '.join(ACTIVATIONS)}")
        if self.loss not in LOSSES:
            raise ConfigError(f"unknown loss {self.loss!r}; choose one of {', '.join(LOSSES)}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"unknown learning-rate schedule {self.schedule!r}; choose one of {', '.join(SCHEDULES)}")
        if self.init != "auto" and self.init not in INITS:
            raise ConfigError(f"unknown weight init {self.init!r}; choose auto or one of {', '.join(INITS)}")
        self.settings()  # validates batch size and epochs
        self.make_optimizer()  # validates the hyper-parameters

    @property
    def init_method(self) -> str:
        return default_init(self.activation) if self.init == "auto" else self.init

    def settings(self, report_every: int = 10) -> TrainSettings:
        return TrainSettings(batch_size=self.batch_size, epochs=self.epochs, seed=self.seed, report_every=report_every,
                             schedule=self.schedule)

    def make_optimizer(self) -> Optimizer:
        return make_optimizer(self.optimizer, lr=self.lr, momentum=self.momentum, beta1=self.beta1, beta2=self.beta2)

    def network_spec(self) -> dict:
        return architecture_spec(self.architecture, self.hidden, self.activation, self.loss)

    def make_network(self) -> Network:
        info = {"activation": self.activation, "source": "trained in DigitLab", "config": self.to_dict()}
        return build_network(self.network_spec(), init=self.init_method, seed=self.seed, info=info)

    def describe_network(self) -> str:
        if self.architecture != "mlp":
            return CNN_NAMES[self.architecture]  # ReLU throughout: the activation setting is the MLP's
        return "-".join(map(str, [784, *self.hidden, 10])) + f" {self.activation}"

    def describe_training(self, changes=()) -> str:
        """Optimizer, learning rate, batch and seed, with the changes made during the run (``train()``'s ``changes``).

        ``adam lr=0.001, batch 100, seed 0``, or ``adam lr 0.001 → 0.05 at iteration 812, batch 100, seed 0``.
        """
        changes = list(changes)
        optimizer = self.optimizer + "".join(f" → {c['to']} at iteration {c['iteration']:,}"
                                             for c in changes if c.get("name") == "optimizer")
        lr_changes = [c for c in changes if c.get("name") == "lr"]
        rate = f"lr {describe_changes(lr_changes, self.lr)}" if lr_changes else f"lr={self.lr:g}"
        joiner = ", " if optimizer != self.optimizer else " "
        schedule = "" if self.schedule == "constant" else f" {self.schedule}"
        return f"{optimizer}{joiner}{rate}{schedule}, batch {self.batch_size}, seed {self.seed}"

    def describe(self, changes=()) -> str:
        return f"{self.describe_network()}, {self.describe_training(changes)}"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        """Ignores unknown keys (settings written by newer versions) and validates the rest."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def describe_changes(changes, start: float | None = None) -> str:
    """A value's history from ``[{"iteration": 812, "from": 0.001, "to": 0.05}, ...]``.

    ``0.001 → 0.05 at iteration 812 → 0.01 at iteration 900`` (``start``, or the first change's "from", first).
    """
    changes = list(changes)
    if not changes:
        return "" if start is None else f"{start:g}"
    first = changes[0]["from"] if start is None else start
    steps = "".join(f" → {_number(c['to'])} at iteration {int(c['iteration']):,}" for c in changes)
    return f"{_number(first)}{steps}"


def _number(value) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)
