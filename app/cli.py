"""The ``digitlab`` command: no arguments opens the window; sub-commands do the same work from a terminal.

Every sub-command takes ``--json`` (one JSON object on stdout at the end; human-readable
progress goes to stderr either way). Qt is imported only when the window is opened.
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

import numpy as np

from engine import registry
from engine.data.catalog import load_dataset, text_progress
from engine.data.images import load_image
from engine.errors import DigitLabError
from engine.util import to_jsonable
from engine.nn.optimizers import DEFAULT_LR
from engine.train.config import TrainConfig, parse_hidden
from engine.train.evaluation import evaluate_model
from engine.train.gradcheck import check_gradients
from engine.train.loop import TrainControl, train
from engine.weightfiles.recognise import inspect_weights, load_weights
from engine.weightfiles.save import save_weights

EXIT_OK, EXIT_ERROR, EXIT_DIVERGED = 0, 1, 3


class CliError(Exception):
    """A problem to report in one line, without a traceback."""


def _say(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


def _choice_help(choices, default: str | None = None) -> str:
    """'relu (max(0, x): learns fastest), sigmoid (…); default relu' from a registry's choices."""
    text = ", ".join(f"{c.name} ({c.help})" if c.help else c.name for c in choices)
    return text + (f"; default {default}" if default else "")


def _add_data_options(p: argparse.ArgumentParser, default: str | None = "mnist-sample") -> None:
    g = p.add_argument_group("data")
    g.add_argument("--dataset", default=default, metavar="NAME", help=_choice_help(registry.DATASETS, default))
    g.add_argument("--data-dir", metavar="DIR", help="a folder of IDX files (train-*/t10k-*-ubyte[.gz]); wins over --dataset")
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
                   help="hidden layer sizes, e.g. 100 or 256,128 (MLP only; default 256,128)")
    g.add_argument("--seed", type=int, default=0, help="seed for weights and batch order (default 0)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="digitlab",
        description="Watch a neural network learn to read handwritten digits. Without a command, opens the window.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("train", help="train a network and report test accuracy",
                       description="Train a network on a dataset; per-epoch progress goes to stderr.")
    _add_data_options(p)
    _add_network_options(p)
    g = p.add_argument_group("training")
    g.add_argument("--optimizer", choices=registry.names(registry.OPTIMIZER_CHOICES), default="adam",
                   help=_choice_help(registry.OPTIMIZER_CHOICES, "adam"))
    g.add_argument("--lr", type=float, default=None, help="learning rate (default: the optimizer's usual one)")
    g.add_argument("--momentum", type=float, default=0.9, help="for momentum and nesterov (default 0.9)")
    g.add_argument("--batch-size", type=int, default=100, help="default 100")
    g.add_argument("--epochs", type=int, default=10, help="default 10")
    g.add_argument("--save", metavar="PATH", help="write the weights here (.npz: DigitLab format; .pkl: book-compatible)")
    p.add_argument("--json", action="store_true", help="print one JSON object with the results on stdout")

    p = sub.add_parser("evaluate", help="accuracy and loss of a weight file on a test split")
    p.add_argument("weights", metavar="WEIGHTS", help="a weight file (.npz, .pkl)")
    _add_data_options(p)
    _add_override_options(p)
    p.add_argument("--json", action="store_true", help="print one JSON object with the results on stdout")

    p = sub.add_parser("predict", help="classify PNG/JPEG images of digits")
    p.add_argument("weights", metavar="WEIGHTS", help="a weight file (.npz, .pkl)")
    p.add_argument("images", metavar="IMAGE", nargs="+", help="PNG or JPEG files, any size, dark-on-light or light-on-dark")
    _add_override_options(p)
    p.add_argument("--json", action="store_true", help="print one JSON object with the results on stdout")

    p = sub.add_parser("gradcheck", help="backprop vs numerical gradient: per-parameter error and time")
    _add_network_options(p)
    p.set_defaults(hidden="10")
    p.add_argument("--batch", type=int, default=3, help="mini-batch size for the check (default 3)")
    p.add_argument("--json", action="store_true", help="print one JSON object with the results on stdout")

    p = sub.add_parser("inspect", help="what a weight file holds and how it was recognised (runs nothing from it)")
    p.add_argument("weights", metavar="WEIGHTS")
    p.add_argument("--json", action="store_true", help="print one JSON object with the results on stdout")
    return parser


def _add_override_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model overrides (when the file does not say)")
    g.add_argument("--activation", choices=registry.names(registry.ACTIVATION_CHOICES),
                   help="force the hidden activation")
    g.add_argument("--input-scale", type=float, choices=[1.0, 255.0], help="1 for pixels in [0,1], 255 for raw [0,255]")


def _hidden(args) -> list[int]:
    try:
        return parse_hidden(args.hidden)
    except ValueError as exc:
        raise CliError(f"--hidden: {exc}") from None


def _load_dataset(args, need_train: bool):
    ds = load_dataset(args.dataset, data_dir=args.data_dir, mirrors=args.mirror, progress=text_progress(sys.stderr))
    if need_train:
        ds.require_train()
    return ds


def _load_weights(args, probe=None):
    return load_weights(args.weights, activation=getattr(args, "activation", None),
                        input_scale=getattr(args, "input_scale", None), probe=probe)


def cmd_train(args) -> tuple[dict, int]:
    config = TrainConfig(
        dataset=args.data_dir or args.dataset, architecture=args.architecture, hidden=_hidden(args),
        activation=args.activation, loss=args.loss, optimizer=args.optimizer,
        lr=args.lr if args.lr is not None else DEFAULT_LR[args.optimizer], momentum=args.momentum,
        batch_size=args.batch_size, epochs=args.epochs, init=args.init, seed=args.seed,
    )
    ds = _load_dataset(args, need_train=True)
    network = config.make_network()
    _say(f"training {config.describe()} on {ds.name} ({len(ds.x_train)} train / {len(ds.x_test)} test images)")

    def on_progress(p):
        for e in p.epochs:
            test = f"  test loss {e.test_loss:.4f} acc {e.test_accuracy:.4f}" if e.test_accuracy is not None else ""
            _say(f"epoch {e.epoch:>3}/{config.epochs}  train loss {e.train_loss:.4f} acc {e.train_accuracy:.4f}{test}"
                 f"  ({e.seconds:.1f} s)")

    control = TrainControl()
    box: dict = {}

    def run():
        try:
            box["result"] = train(network, config.make_optimizer(), ds.x_train, ds.t_train, ds.x_test, ds.t_test,
                                  config.settings(report_every=50), control, on_progress)
        except BaseException as exc:  # handed to the main thread below
            box["error"] = exc

    worker = threading.Thread(target=run, name="training", daemon=True)
    start = time.perf_counter()
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.2)
    except KeyboardInterrupt:
        _say("interrupted: stopping after the current iteration (press Ctrl+C again to abort)")
        control.stop()
        worker.join()
    if "error" in box:
        raise box["error"]
    result = box["result"]
    seconds = time.perf_counter() - start
    final = result.final
    out = {"command": "train", "config": config.to_dict(), "dataset": ds.name, "status": result.status,
           "message": result.message, "iterations": result.iterations, "seconds": seconds,
           "epochs": [e.to_dict() for e in result.epochs],
           "test_accuracy": final.test_accuracy if final else None, "test_loss": final.test_loss if final else None,
           "saved_to": None}
    _say(result.message)
    if args.save and result.status != "diverged":
        path = save_weights(network, args.save, metadata={"config": config.to_dict(), "result": result.to_dict()})
        out["saved_to"] = str(Path(path).resolve())
    if final and final.test_accuracy is not None:
        _say(f"test accuracy {final.test_accuracy:.4f} after {seconds:.1f} s")
    if out["saved_to"]:
        _say(f"weights saved to {out['saved_to']}")
    elif args.save:
        _say("weights NOT saved: training diverged")
    return out, EXIT_DIVERGED if result.status == "diverged" else EXIT_OK


def cmd_evaluate(args) -> tuple[dict, int]:
    ds = _load_dataset(args, need_train=False)
    loaded = _load_weights(args, probe=(ds.x_test[:500], ds.t_test[:500]))
    _say(f"{loaded.architecture} from {args.weights} ({loaded.kind})")
    for note in loaded.notes:
        _say(f"  {note}")
    ev = evaluate_model(loaded.network, ds.x_test, ds.t_test)
    _say(f"{ds.name} test split: accuracy {ev.accuracy:.4f}  loss {ev.loss:.4f}  ({len(ds.x_test)} images)")
    return {"command": "evaluate", "weights": str(args.weights), "dataset": ds.name, "images": len(ds.x_test),
            "accuracy": ev.accuracy, "loss": ev.loss, "per_class_accuracy": list(map(float, ev.per_class_accuracy)),
            "architecture": loaded.architecture, "activation": loaded.activation,
            "input_scale": loaded.input_scale}, EXIT_OK


def cmd_predict(args) -> tuple[dict, int]:
    loaded = _load_weights(args)
    results = []
    for path in args.images:
        img = load_image(path)
        p = loaded.network.predict(img.reshape(-1))
        k = int(np.argmax(p))
        results.append({"image": str(path), "class": k, "probabilities": [round(float(v), 6) for v in p]})
        bars = "  ".join(f"{i}:{v * 100:5.1f}%" for i, v in enumerate(p))
        _say(f"{path}: {k} ({p[k] * 100:.1f}%)\n  {bars}")
    return {"command": "predict", "weights": str(args.weights), "predictions": results}, EXIT_OK


def cmd_gradcheck(args) -> tuple[dict, int]:
    config = TrainConfig(architecture=args.architecture, hidden=_hidden(args), activation=args.activation,
                         loss=args.loss, init=args.init, seed=args.seed)
    network = config.make_network()
    rng = np.random.default_rng(args.seed)
    x = rng.random((args.batch, 784))
    t = rng.integers(0, 10, args.batch)
    total = sum(p.size for p in network.params.values())
    _say(f"checking {network.describe()} ({total} parameters) on a batch of {args.batch}")
    report = check_gradients(network, x, t)
    _say(f"{'param':<6} {'shape':<14} {'max rel error':>14} {'max abs error':>14}")
    for p in report.params:
        _say(f"{p.name:<6} {str(p.shape):<14} {p.max_rel_error:>14.3e} {p.max_abs_error:>14.3e}")
    _say(f"backprop {report.backprop_seconds * 1e3:.2f} ms, numerical {report.numerical_seconds:.2f} s: "
         f"backprop was {report.speedup:,.0f}x faster")
    verdict = "backprop agrees with the numerical gradient" if report.max_rel_error < 1e-4 else \
        "backprop and the numerical gradient disagree: check the layers' backward"
    _say(verdict)
    return {"command": "gradcheck", "network": network.describe(), **report.to_dict()}, EXIT_OK


def cmd_inspect(args) -> tuple[dict, int]:
    info = inspect_weights(args.weights)
    _say(info.get("summary") or json.dumps(info, indent=2, default=str))
    return {"command": "inspect", **info}, EXIT_OK


COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict, "gradcheck": cmd_gradcheck,
            "inspect": cmd_inspect}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        from app.gui import main as gui_main

        return gui_main([])
    try:
        out, code = COMMANDS[args.command](args)
    except (CliError, DigitLabError, ValueError, OSError) as exc:  # bad input: one line, no traceback
        _say(f"digitlab {args.command}: error: {exc}")
        if args.json:
            print(json.dumps({"command": args.command, "error": str(exc)}))
        return EXIT_ERROR
    if args.json:
        print(json.dumps(to_jsonable(out), default=str))
    return code


if __name__ == "__main__":
    sys.exit(main())
