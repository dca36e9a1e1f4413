"""Every name a person chooses from, with the words the window and the command line show for it.

The sets themselves live where the code behind them is (optimizers in ``engine.nn.optimizers``,
datasets in ``engine.data.catalog``, …); this module pairs each name with a label and a one-line
help text, and fails at import if a name has no label, so a new optimizer or dataset cannot reach
the UI or the CLI half-described.
"""
from __future__ import annotations

from dataclasses import dataclass

from engine.data.catalog import DATASET_NAMES
from engine.nn.initializers import INITS
from engine.nn.layers import ACTIVATIONS, LOSSES
from engine.nn.models import ARCHITECTURES
from engine.nn.optimizers import OPTIMIZERS
from engine.train.schedule import SCHEDULES


@dataclass(frozen=True)
class Choice:
    name: str  # what the engine, the settings file and the CLI use
    label: str  # what the window shows
    help: str = ""  # one line for tooltips and --help


def _choices(names, texts: dict[str, tuple[str, str]], kind: str) -> tuple[Choice, ...]:
    missing = [n for n in names if n not in texts]
    if missing:
        raise RuntimeError(f"engine.registry: no label for {kind} {', '.join(missing)}")
    return tuple(Choice(n, *texts[n]) for n in names)


DATASETS = _choices(DATASET_NAMES, {
    "mnist-sample": ("MNIST sample (offline, 20,000 digits)",
                     "10,000 real MNIST training digits and the 10,000-digit test set, shipped for offline use"),
    "mnist": ("MNIST (70,000 digits, downloaded once)", "the handwritten digits, downloaded once and cached"),
    "fashion-mnist": ("Fashion-MNIST (clothes, downloaded once)", "10 kinds of clothing in MNIST's format"),
}, "dataset")
ARCHITECTURE_CHOICES = _choices(ARCHITECTURES, {
    "mlp": ("MLP (fully connected)", "every pixel connects to every hidden unit"),
    "small-cnn": ("Small CNN", "convolution filters over small patches, then a classifier"),
    "lenet": ("LeNet-style CNN", "two convolutions, each pooled, then a classifier: about 99% on MNIST in 3 epochs"),
    "simple-convnet": ("SimpleConvNet (the book's)", "the book's chapter-7 CNN: 30 5×5 filters, pool, 100 hidden"),
    "deep-convnet": ("DeepConvNet (the book's)", "the book's chapter-8 CNN: six 3×3 convolutions, dropout; slow"),
}, "architecture")
ACTIVATION_CHOICES = _choices(ACTIVATIONS, {
    "relu": ("ReLU", "max(0, x): learns fastest"),
    "sigmoid": ("Sigmoid", "the classic S-shaped curve from 0 to 1"),
    "tanh": ("Tanh", "an S-shaped curve from -1 to 1"),
}, "activation")
LOSS_CHOICES = _choices(LOSSES, {
    "cross-entropy": ("Cross-entropy", "the usual loss for classes"),
    "sum-of-squares": ("Sum of squares", "half the squared distance between probabilities and the one-hot label"),
}, "loss")
OPTIMIZER_CHOICES = _choices(OPTIMIZERS, {
    "sgd": ("SGD", "plain stochastic gradient descent"),
    "momentum": ("Momentum", "a ball rolling downhill: the previous step carries into the next"),
    "nesterov": ("Nesterov", "momentum that looks ahead before it steps"),
    "adagrad": ("AdaGrad", "a step size per weight that shrinks with its gradients so far"),
    "rmsprop": ("RMSprop", "AdaGrad that forgets old gradients"),
    "adam": ("Adam", "momentum plus RMSprop, with bias correction"),
}, "optimizer")
SCHEDULE_CHOICES = _choices(SCHEDULES, {
    "constant": ("Constant", "the same learning rate from start to end"),
    "one-cycle": ("One-cycle", "warm up from lr/25 to lr over the first 30%, then anneal to almost 0: fastest to a "
                               "good accuracy in a fixed number of epochs"),
    "cosine": ("Cosine decay", "from lr down to 0 along half a cosine"),
}, "schedule")
INIT_CHOICES = _choices(("auto", *INITS), {
    "auto": ("Auto (He for ReLU, else Xavier)", "He for ReLU, Xavier for sigmoid and tanh"),
    "fixed": ("Fixed (std 0.01)", "the book's first try: a small fixed spread"),
    "xavier": ("Xavier", "std √(1/n): suits sigmoid and tanh"),
    "he": ("He", "std √(2/n): suits ReLU"),
}, "weight init")


def names(choices: tuple[Choice, ...]) -> list[str]:
    return [c.name for c in choices]


def label(choices: tuple[Choice, ...], name: str) -> str:
    """The label of ``name``, or the name itself when it is not one of the choices."""
    return next((c.label for c in choices if c.name == name), name)
