"""The ``digitlab`` command: no arguments opens the window; sub-commands do the same work from a terminal.

Every sub-command takes ``--json`` (one JSON object on stdout at the end; human-readable
progress goes to stderr either way). Qt is imported only when the window is opened.

Whatever the input, a command ends with one of the exit statuses in ``EXIT_STATUS_HELP``: bad
input is one line on stderr (``digitlab CMD: error: FILE: what is wrong``), never a traceback;
text that comes from files is escaped and shortened before it reaches the terminal.
"""
from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import numpy as np

from app.cli_io import (MAX_ERROR_TEXT, MAX_SUMMARY_LINE, CliError, StderrStream, digitlab_version, emit_json,
                        error_text, fail, internal_error_text, reading, regular_file, reset_output, say, say_block,
                        say_out)
from app.cli_parser import (EXIT_DIVERGED, EXIT_ERROR, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK, MAX_BATCH_SIZE,
                            MAX_GRADCHECK_BATCH, PIXEL_CHOICES, WINDOW_PACKAGES, UsageError, build_parser)
from engine.data.catalog import load_dataset, text_progress
from engine.data.data_file import load_data_file
from engine.data.images import load_image
from engine.data.preprocess import is_blank
from engine.errors import DigitLabError
from engine.nn.optimizers import DEFAULT_LR
from engine.train.config import ConfigError, TrainConfig, book_defaults, check_mlp_size, parse_hidden
from engine.train.evaluation import evaluate_model
from engine.train.gradcheck import check_gradients
from engine.train.loop import TrainControl, train
from engine.util import bounded_jsonable, printable
from engine.weightfiles.recognise import inspect_weights, load_weights
from engine.weightfiles.save import check_save_path, save_weights

# ----------------------------------------------------------------------------- checks before any work

def _check_network(args, architecture: str) -> list[int]:
    """Hidden sizes and seed that can be built: refused here rather than as a 584 GiB MemoryError."""
    try:
        hidden = parse_hidden(args.hidden)
    except ValueError as exc:
        raise CliError(f"--hidden: {exc}") from None
    if args.seed < 0:
        raise CliError(f"--seed must be 0 or more, got {args.seed}")
    if architecture == "mlp":
        try:
            check_mlp_size(hidden)
        except ConfigError as exc:
            raise CliError(f"--hidden {printable(args.hidden)}: {exc}") from None
    return hidden


def _load_dataset(args, need_train: bool):
    if getattr(args, "data_file", None):
        with reading(args.data_file):
            ds = load_data_file(args.data_file)
    else:
        ds = load_dataset(args.dataset, data_dir=args.data_dir, mirrors=args.mirror,
                          progress=text_progress(StderrStream()), test_only=not need_train)
    if need_train:
        ds.require_train()
    return ds


def _load_weights(args, probe=None):
    with reading(args.weights):
        scale, shift = PIXEL_CHOICES.get(getattr(args, "pixels", None), (getattr(args, "input_scale", None), None))
        return load_weights(args.weights, activation=getattr(args, "activation", None), input_scale=scale, probe=probe,
                            input_shift=shift)


# ----------------------------------------------------------------------------- the commands

def cmd_train(args) -> tuple[dict, int]:
    hidden = _check_network(args, args.architecture)
    if not 1 <= args.batch_size <= MAX_BATCH_SIZE:
        raise CliError(f"--batch-size must be 1 to {MAX_BATCH_SIZE:,}, got {args.batch_size}")
    epochs, init = book_defaults(args.architecture, args.epochs, args.init)  # the book's CNNs: the book's own
    config = TrainConfig(
        dataset=args.data_dir or args.dataset, architecture=args.architecture, hidden=hidden,
        activation=args.activation, loss=args.loss, optimizer=args.optimizer,
        lr=args.lr if args.lr is not None else DEFAULT_LR[args.optimizer], momentum=args.momentum,
        batch_size=args.batch_size, epochs=epochs, schedule=args.schedule, init=init, seed=args.seed)
    if args.save is not None:
        check_save_path(args.save)  # a missing folder or an unknown suffix is found now, not after the training
    ds = _load_dataset(args, need_train=True)
    network = config.make_network()
    say(f"training {config.describe()} on {printable(ds.name)} ({len(ds.x_train)} train / {len(ds.x_test)} test images)")

    def on_progress(p):
        for e in p.epochs:
            test = f"  test loss {e.test_loss:.4f} acc {e.test_accuracy:.4f}" if e.test_accuracy is not None else ""
            say(f"epoch {e.epoch:>3}/{config.epochs}  train loss {e.train_loss:.4f} acc {e.train_accuracy:.4f}{test}"
                f"  ({e.seconds:.1f} s)")

    control = TrainControl()
    box: dict = {}
    done = threading.Event()

    def run():
        try:
            box["result"] = train(network, config.make_optimizer(), ds.x_train, ds.t_train, ds.x_test, ds.t_test,
                                  config.settings(report_every=50), control, on_progress)
        except BaseException as exc:  # handed to the main thread below
            box["error"] = exc
        finally:
            done.set()

    # The main thread waits on an Event, not Thread.join: a Ctrl+C inside join() can leave the thread
    # looking finished while it still runs (the result then goes missing).
    start = time.perf_counter()
    threading.Thread(target=run, name="training", daemon=True).start()
    try:
        while not done.wait(0.2):
            pass
    except KeyboardInterrupt:
        say("interrupted: stopping after the current iteration (press Ctrl+C again to abort)")
        control.stop()
        while not done.wait(0.2):  # a second Ctrl+C ends the command here (exit 130)
            pass
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
    say(printable(result.message))
    if args.save is not None and result.status != "diverged":
        path = save_weights(network, args.save, metadata={"config": config.to_dict(), "result": result.to_dict()})
        out["saved_to"] = str(Path(path).resolve())
    if final and final.test_accuracy is not None:
        say(f"test accuracy {final.test_accuracy:.4f} after {seconds:.1f} s")
    if out["saved_to"]:
        say(f"weights saved to {printable(out['saved_to'])}")
    elif args.save is not None:
        say("weights NOT saved: training diverged")
    return out, EXIT_DIVERGED if result.status == "diverged" else EXIT_OK


def cmd_evaluate(args) -> tuple[dict, int]:
    regular_file(args.weights)  # before a dataset download
    ds = _load_dataset(args, need_train=False)
    loaded = _load_weights(args, probe=(ds.x_test[:500], ds.t_test[:500]))
    say(f"{printable(loaded.architecture)} from {printable(args.weights)} ({printable(loaded.kind)})")
    for note in loaded.notes:
        say(f"  {printable(note, MAX_SUMMARY_LINE)}")
    ev = evaluate_model(loaded.network, ds.x_test, ds.t_test)
    say(f"{printable(ds.name)} test split: accuracy {ev.accuracy:.4f}  loss {ev.loss:.4f}  ({len(ds.x_test)} images)")
    return {"command": "evaluate", "weights": str(args.weights), "dataset": ds.name, "images": len(ds.x_test),
            "accuracy": ev.accuracy, "loss": ev.loss, "per_class_accuracy": list(map(float, ev.per_class_accuracy)),
            "architecture": loaded.architecture, "activation": loaded.activation,
            "input_scale": loaded.input_scale, "input_shift": loaded.input_shift, "kind": loaded.kind}, EXIT_OK


def cmd_predict(args) -> tuple[dict, int]:
    loaded = _load_weights(args)
    results, failed = [], 0
    for path in args.images:
        entry = {"image": str(path), "class": None, "probabilities": None}
        results.append(entry)
        try:
            with reading(path):
                img = load_image(path)
        except CliError as exc:  # this image is reported and skipped; the others are still classified
            failed += 1
            entry["error"] = str(exc)
            say(f"digitlab predict: error: {printable(exc, MAX_ERROR_TEXT)}")
            continue
        if is_blank(img):
            entry["note"] = "no digit found"
            say(f"{printable(path)}: no digit found")
            continue
        p = loaded.network.predict(img.reshape(-1))
        k = int(np.argmax(p))
        entry.update({"class": k, "probabilities": [round(float(v), 6) for v in p]})
        bars = "  ".join(f"{i}:{v * 100:5.1f}%" for i, v in enumerate(p))
        say(f"{printable(path)}: {k} ({p[k] * 100:.1f}%)\n  {bars}")
    return {"command": "predict", "weights": str(args.weights), "predictions": results, "failed": failed}, \
        EXIT_ERROR if failed else EXIT_OK


def cmd_gradcheck(args) -> tuple[dict, int]:
    hidden = _check_network(args, args.architecture)
    if not 1 <= args.batch <= MAX_GRADCHECK_BATCH:
        raise CliError(f"--batch must be 1 to {MAX_GRADCHECK_BATCH}, got {args.batch}")
    config = TrainConfig(architecture=args.architecture, hidden=hidden, activation=args.activation,
                         loss=args.loss, init=args.init, seed=args.seed)
    network = config.make_network()
    rng = np.random.default_rng(args.seed)
    x = rng.random((args.batch, 784))
    t = rng.integers(0, 10, args.batch)
    total = sum(p.size for p in network.params.values())
    say(f"checking {network.describe()} ({total} parameters) on a batch of {args.batch}")
    report = check_gradients(network, x, t)
    say(f"{'param':<6} {'shape':<14} {'max rel error':>14} {'max abs error':>14}")
    for p in report.params:
        say(f"{p.name:<6} {str(p.shape):<14} {p.max_rel_error:>14.3e} {p.max_abs_error:>14.3e}")
    say(f"backprop {report.backprop_seconds * 1e3:.2f} ms, numerical {report.numerical_seconds:.2f} s: "
        f"backprop was {report.speedup:,.0f}x faster")
    verdict = "backprop agrees with the numerical gradient" if report.max_rel_error < 1e-4 else \
        "backprop and the numerical gradient disagree: check the layers' backward"
    say(verdict)
    return {"command": "gradcheck", "network": network.describe(), **report.to_dict()}, EXIT_OK


def cmd_inspect(args) -> tuple[dict, int]:
    with reading(args.weights):
        info = inspect_weights(args.weights)
    say_block(info.get("summary") or json.dumps(bounded_jsonable(info), indent=2))
    return {"command": "inspect", **info}, EXIT_OK


COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict, "gradcheck": cmd_gradcheck,
            "inspect": cmd_inspect}


# ----------------------------------------------------------------------------- main: every way a command can end

def _open_window() -> int:
    from app.display import display_problem  # standard library only: checked before Qt is loaded

    problem = display_problem()
    if problem is not None:  # Qt would abort (exit 134) with a misleading "xcb-cursor0 is needed"
        return fail("digitlab", "error", f"cannot open the window: {problem}", EXIT_ERROR, False)
    from app.gui import main as gui_main

    return gui_main([])


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit status (see ``EXIT_STATUS_HELP``); a traceback only with ``--debug``."""
    reset_output()
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    name, debug, want_json = "digitlab", "--debug" in argv, "--json" in argv
    try:
        args = build_parser().parse_args(argv)
        if args.version:
            say_out(f"digitlab {digitlab_version()}")
            return EXIT_OK
        if args.command is None:
            return _open_window()
        name, debug, want_json = f"digitlab {args.command}", args.debug, args.json
        out, code = COMMANDS[args.command](args)
        if want_json:
            emit_json(out)
        return code
    except UsageError as exc:
        return fail(exc.prog, "error", f"{printable(exc, 300)} (see {exc.prog} --help)", EXIT_ERROR, want_json)
    except KeyboardInterrupt:
        return fail(name, "interrupted", None, EXIT_INTERRUPTED, want_json)
    except (CliError, DigitLabError, ValueError, OSError) as exc:  # bad input: one line, no traceback
        return fail(name, "error", error_text(exc), EXIT_ERROR, want_json, exc if debug else None)
    except Exception as exc:  # a bug (also MemoryError, RecursionError): one line and how to report it
        if isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] in WINDOW_PACKAGES:
            return fail(name, "error", f"the window cannot open: {exc} (pip install digitlab installs it; the "
                        "sub-commands in digitlab --help work without it)", EXIT_ERROR, want_json, exc if debug else None)
        return fail(name, "internal error", internal_error_text(exc, debug), EXIT_INTERNAL, want_json,
                    exc if debug else None)


if __name__ == "__main__":
    sys.exit(main())
