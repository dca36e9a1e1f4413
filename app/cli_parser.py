"""The ``digitlab`` command line: its sub-commands, their options, and the exit statuses (see :mod:`app.cli`)."""
from __future__ import annotations

import argparse

from engine import registry
from engine.train.config import MAX_HIDDEN_LAYERS, MAX_PARAMETERS
from engine.weightfiles.probe import PIXELS_01, PIXELS_255, PIXELS_MNIST_NORMALISED, PIXELS_PLUS_MINUS_1

PIXEL_CHOICES = {"0-1": PIXELS_01, "0-255": PIXELS_255, "mnist-normalised": PIXELS_MNIST_NORMALISED,
                 "-1-1": PIXELS_PLUS_MINUS_1}
WEIGHTS_HELP = ("a weight file: .npz, a pickle (the book's, Nielsen's), PyTorch .pt/.pth, .safetensors, network2 "
                ".json; gzip/bz2/xz-compressed or zipped too")

EXIT_OK, EXIT_ERROR, EXIT_INTERNAL, EXIT_DIVERGED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_STATUS_HELP = """\
exit status:
  0    done (also when the output was closed early, as by | head)
  1    bad input: a file, an image, a folder or an argument; one line on stderr,
       "digitlab CMD: error: FILE: what is wrong" (and {"error": ...} on stdout with --json)
  2    internal error: a bug in DigitLab, please report it; --debug shows the traceback
  3    training diverged (train)
  130  interrupted (Ctrl+C)"""
MAX_BATCH_SIZE = 1_000_000  # more than any dataset here; beyond it NumPy's index arithmetic overflows
MAX_GRADCHECK_BATCH = 1000  # the numerical gradient runs two forward passes per weight on this batch
WINDOW_PACKAGES = ("PySide6", "shiboken6", "pyqtgraph")  # only the window needs them


class UsageError(Exception):
    """A bad command line, raised by the parser instead of argparse's exit(2) with a usage dump."""

    def __init__(self, prog: str, message: str):
        super().__init__(message)
        self.prog = prog


class _Formatter(argparse.HelpFormatter):
    """Wraps descriptions as usual but keeps the exit-status table as written."""

    def _fill_text(self, text, width, indent):
        if text == EXIT_STATUS_HELP:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # noqa: D102 - argparse's hook
        raise UsageError(self.prog, message)


# ----------------------------------------------------------------------------- the parser

def _choice_help(choices, default: str | None = None) -> str:
    """'relu (max(0, x): learns fastest), sigmoid (…); default relu' from a registry's choices."""
    text = ", ".join(f"{c.name} ({c.help.replace('%', '%%')})" if c.help else c.name for c in choices)  # argparse %
    return text + (f"; default {default}" if default else "")


def _add_data_options(p: argparse.ArgumentParser, default: str | None = "mnist-sample") -> None:
    g = p.add_argument_group("data")
    g.add_argument("--dataset", default=default, metavar="NAME", help=_choice_help(registry.DATASETS, default))
    g.add_argument("--data-dir", metavar="DIR", help="a folder of IDX files (train-*/t10k-*-ubyte[.gz]); wins over --dataset")
    g.add_argument("--data-file", metavar="FILE", help="a dataset file: Nielsen's mnist.pkl.gz (a pickled (training, "
                   "validation, test) tuple; read safely, never run); wins over --dataset and --data-dir")
    g.add_argument("--mirror", action="append", metavar="URL",
                   help="download from this base URL instead of the built-in mirrors (repeatable; env DIGITLAB_MIRRORS)")


def _add_network_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("network")
    for flag, choices, default in (("--architecture", registry.ARCHITECTURE_CHOICES, "mlp"),
                                   ("--activation", registry.ACTIVATION_CHOICES, "relu"),
                                   ("--loss", registry.LOSS_CHOICES, "cross-entropy"),
                                   ("--init", registry.INIT_CHOICES, "auto")):
        g.add_argument(flag, choices=registry.names(choices), default=default, help=_choice_help(choices, default))
    g.add_argument("--hidden", default="256,128", metavar="SIZES",
                   help=f"hidden layer sizes, e.g. 100 or 256,128 (MLP only; default 256,128; at most "
                        f"{MAX_HIDDEN_LAYERS} layers and {MAX_PARAMETERS:,} weights)")
    g.add_argument("--seed", type=int, default=0, help="seed for weights and batch order (default 0)")


def _add_override_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model overrides (when the file does not say)")
    g.add_argument("--activation", choices=registry.names(registry.ACTIVATION_CHOICES),
                   help="force the hidden activation")
    g.add_argument("--input-scale", type=float, choices=[1.0, 255.0], help="1 for pixels in [0,1], 255 for raw [0,255]")
    g.add_argument("--pixels", choices=list(PIXEL_CHOICES), help="the pixels the network expects: 0-1, 0-255, "
                   "mnist-normalised ((x-0.1307)/0.3081, PyTorch's usual transform) or -1-1 ((x-0.5)/0.5); wins over "
                   "--input-scale")


def _sub(sub, name: str, help: str, **kwargs) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help, epilog=EXIT_STATUS_HELP, formatter_class=_Formatter,
                       **kwargs)
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="digitlab", epilog=EXIT_STATUS_HELP, formatter_class=_Formatter,
        description="Watch a neural network learn to read handwritten digits. Without a command, opens the window.",
    )
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an internal error (also accepted after the command)")
    parser.add_argument("--version", action="store_true", help="print DigitLab's version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = _sub(sub, "train", "train a network and report test accuracy",
             description="Train a network on a dataset; per-epoch progress goes to stderr. Ctrl+C stops after "
                         "the current iteration and still reports (and saves); a second Ctrl+C aborts.")
    _add_data_options(p)
    _add_network_options(p)
    g = p.add_argument_group("training")
    g.add_argument("--optimizer", choices=registry.names(registry.OPTIMIZER_CHOICES), default="adam",
                   help=_choice_help(registry.OPTIMIZER_CHOICES, "adam"))
    g.add_argument("--lr", type=float, default=None, help="learning rate (default: the optimizer's usual one)")
    g.add_argument("--schedule", choices=registry.names(registry.SCHEDULE_CHOICES), default="constant",
                   help="learning-rate schedule; --lr is its peak: " + _choice_help(registry.SCHEDULE_CHOICES, "constant"))
    g.add_argument("--momentum", type=float, default=0.9, help="for momentum and nesterov (default 0.9)")
    g.add_argument("--batch-size", type=int, default=100, help="default 100")
    g.add_argument("--epochs", type=int, default=None, help="default 10; 20 for the book's CNNs")
    g.add_argument("--save", metavar="PATH", help="write the weights here, in the format its suffix names: .npz "
                   "(DigitLab's), .pkl (the book's), .pt/.pth (a PyTorch state_dict) or .safetensors; "
                   "checked before training starts; a link is written through to its file")
    p.add_argument("--json", action="store_true", help="print one JSON object with the results on stdout")

    p = _sub(sub, "evaluate", "accuracy and loss of a weight file on a test split")
    p.add_argument("weights", metavar="WEIGHTS", help=WEIGHTS_HELP)
    _add_data_options(p)
    _add_override_options(p)
    p.add_argument("--json", action="store_true", help="print one JSON object with the results on stdout")

    p = _sub(sub, "predict", "classify PNG/JPEG images of digits",
             description="Classify pictures of digits. A blank or uniform picture answers 'no digit found' (class "
                         "null). An unreadable image is reported in one line and the others are still classified; "
                         "the exit status is then 1.")
    p.add_argument("weights", metavar="WEIGHTS", help=WEIGHTS_HELP)
    p.add_argument("images", metavar="IMAGE", nargs="+", help="PNG or JPEG files, any size, dark-on-light or light-on-dark")
    _add_override_options(p)
    p.add_argument("--json", action="store_true", help="print one JSON object with the results on stdout")

    p = _sub(sub, "gradcheck", "backprop vs numerical gradient: per-parameter error and time")
    _add_network_options(p)
    p.set_defaults(hidden="10")
    p.add_argument("--batch", type=int, default=3, help=f"mini-batch size for the check (default 3, at most "
                                                        f"{MAX_GRADCHECK_BATCH})")
    p.add_argument("--json", action="store_true", help="print one JSON object with the results on stdout")

    p = _sub(sub, "inspect", "what a weight file holds and how it was recognised (runs nothing from it)")
    p.add_argument("weights", metavar="WEIGHTS", help=WEIGHTS_HELP)
    p.add_argument("--json", action="store_true", help="print one JSON object with the results on stdout")
    return parser
