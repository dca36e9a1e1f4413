"""Time to accuracy on the whole of MNIST: the README's two `digitlab train` recipes, run as a user would run them.

Each recipe is run as a `digitlab train … --json` command in a child process; "seconds" is the training wall
time the command reports (data loading excluded, the per-epoch evaluation of 10,000 training and 10,000 test
images included), "accuracy" the test accuracy after the last epoch, "peak_rss_mb" the child's peak memory.
Targets: the CNN recipe reaches >= 99.0% in <= 30 s, the MLP recipe >= 98.0% in <= 10 s.

When PyTorch is installed, the same recipe (same layers, the same starting weights copied from DigitLab's
network, Adam with eps 1e-7, PyTorch's OneCycleLR without momentum cycling, the same batch order and the same
per-epoch evaluation) is timed in another child process with the same thread count; target: DigitLab's time
<= 1.0x PyTorch's. Runs of the two sides alternate; with --repeat N the best of N is kept for each.

    python bench/bench_time_to_accuracy.py --data-dir ../shared/datasets/mnist-full [--repeat 1] [--only cnn] [--json]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from _common import blas_threads, run_child

RECIPES = {  # kind -> (the arguments after `digitlab train --data-dir DIR`, accuracy target, seconds target)
    "cnn": (["--architecture", "lenet", "--optimizer", "adam", "--lr", "0.005", "--schedule", "one-cycle",
             "--epochs", "3", "--batch-size", "50"], 0.990, 30.0),
    "mlp": (["--architecture", "mlp", "--hidden", "256,128", "--optimizer", "adam", "--lr", "0.003",
             "--schedule", "one-cycle", "--epochs", "4", "--batch-size", "100"], 0.980, 10.0),
}
EVAL_TRAIN = 10_000  # the Stepper's default eval_train_limit: train metrics on this many samples per epoch
EVAL_CHUNK = 1000


def command(kind: str, data_dir: str) -> list[str]:
    return ["digitlab", "train", "--data-dir", data_dir, *RECIPES[kind][0]]


def run_digitlab(kind: str, data_dir: str) -> dict:
    argv = [sys.executable, "-m", "app.cli", *command(kind, data_dir)[1:], "--json"]
    stdout, rss = run_child(argv)
    result = json.loads(stdout.strip().splitlines()[-1])
    return {"accuracy": result["test_accuracy"], "seconds": result["seconds"], "peak_rss_mb": rss,
            "epochs": [(e["epoch"], round(e["seconds"], 2), e["test_accuracy"]) for e in result["epochs"]]}


def run_torch(kind: str, data_dir: str) -> dict | None:
    try:
        stdout, rss = run_child([sys.executable, __file__, "--torch-only", kind, "--data-dir", data_dir])
    except RuntimeError as exc:
        if "No module named 'torch'" in str(exc):
            return None
        raise
    result = json.loads(stdout.strip().splitlines()[-1])
    result["peak_rss_mb"] = rss
    return result


def _options(kind: str) -> dict:
    args = RECIPES[kind][0]
    return {args[i].lstrip("-"): args[i + 1] for i in range(0, len(args), 2)}


def torch_recipe(kind: str, data_dir: str) -> dict:
    """The recipe in PyTorch: same network and starting weights, same batches, same schedule and evaluation."""
    import torch

    from engine.data.catalog import load_data_dir
    from engine.train.config import TrainConfig
    from engine.train.stepper import iterations_per_epoch

    torch.set_num_threads(blas_threads())
    opts = _options(kind)
    hidden = [int(h) for h in opts.get("hidden", "100").split(",")]
    config = TrainConfig(architecture=opts["architecture"], hidden=hidden, optimizer="adam", lr=float(opts["lr"]),
                         batch_size=int(opts["batch-size"]), epochs=int(opts["epochs"]), schedule=opts["schedule"])
    ds = load_data_dir(data_dir)
    net = config.make_network()  # DigitLab's starting weights, copied into the PyTorch layers
    layers = []
    for spec, layer in zip(net.spec()["layers"], net.layers):
        kind_ = spec["type"]
        if kind_ == "conv":
            conv = torch.nn.Conv2d(spec["channels"], spec["filters"], spec["size"], spec["stride"], spec["pad"])
            conv.weight.data = torch.from_numpy(layer.params["W"].copy())
            conv.bias.data = torch.from_numpy(layer.params["b"].copy())
            layers.append(conv)
        elif kind_ == "affine":
            if layers and not isinstance(layers[-1], (torch.nn.Linear, torch.nn.ReLU)) or not layers:
                layers.append(torch.nn.Flatten())
            linear = torch.nn.Linear(spec["in"], spec["out"])
            linear.weight.data = torch.from_numpy(layer.params["W"].T.copy())
            linear.bias.data = torch.from_numpy(layer.params["b"].copy())
            layers.append(linear)
        elif kind_ == "relu":
            layers.append(torch.nn.ReLU())
        elif kind_ == "pool":
            layers.append(torch.nn.MaxPool2d(spec["size"], spec["stride"], spec["pad"]))
        else:
            raise ValueError(f"the PyTorch side has no {kind_} layer")
    model = torch.nn.Sequential(*layers)
    shape = (-1, *net.input_shape)
    x, t = torch.from_numpy(ds.x_train.reshape(shape)), torch.from_numpy(np.asarray(ds.t_train, dtype=np.int64))
    xt, tt = torch.from_numpy(ds.x_test.reshape(shape)), torch.from_numpy(np.asarray(ds.t_test, dtype=np.int64))
    batch, epochs = config.batch_size, config.epochs
    per_epoch = iterations_per_epoch(len(x), batch)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, eps=1e-7)  # DigitLab's (the book's) Adam eps
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=per_epoch * epochs,
                                                cycle_momentum=False)
    loss_fn = torch.nn.CrossEntropyLoss()
    rng, eval_rng = np.random.default_rng(config.seed), np.random.default_rng(config.seed + 1)

    def accuracy(images, labels) -> float:
        with torch.no_grad():
            correct = sum(int((model(images[i:i + EVAL_CHUNK]).argmax(1) == labels[i:i + EVAL_CHUNK]).sum())
                          for i in range(0, len(images), EVAL_CHUNK))
        return correct / len(images)

    start = time.perf_counter()
    epochs_done = []
    for epoch in range(epochs):
        order = torch.from_numpy(rng.permutation(len(x)))
        for b in range(per_epoch):
            idx = order[b * batch:(b + 1) * batch]
            opt.zero_grad(set_to_none=True)
            loss_fn(model(x[idx]), t[idx]).backward()
            opt.step()
            if epoch * per_epoch + b < per_epoch * epochs - 1:
                sched.step()
        sel = torch.from_numpy(np.sort(eval_rng.choice(len(x), EVAL_TRAIN, replace=False)))
        accuracy(x[sel], t[sel])
        test = accuracy(xt, tt)
        epochs_done.append((epoch + 1, round(time.perf_counter() - start, 2), test))
    return {"accuracy": epochs_done[-1][2], "seconds": time.perf_counter() - start, "epochs": epochs_done}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="a folder of the MNIST IDX files (all 70,000 digits)")
    parser.add_argument("--repeat", type=int, default=1, help="alternating runs of each side; best of each (default 1)")
    parser.add_argument("--only", choices=list(RECIPES), action="append", help="run only this recipe (repeatable)")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    parser.add_argument("--json", action="store_true", help="end with one JSON line: {\"runs\": [...]}")
    parser.add_argument("--torch-only", choices=list(RECIPES), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    data_dir = str(Path(args.data_dir).resolve())
    if args.torch_only:
        print(json.dumps(torch_recipe(args.torch_only, data_dir)))
        return 0

    runs = []
    print(f"time to accuracy on {data_dir}, {blas_threads()} thread(s), best of {args.repeat}", flush=True)
    for kind in args.only or list(RECIPES):
        _, target_acc, target_s = RECIPES[kind]
        ours, theirs = [], []
        for _ in range(max(1, args.repeat)):
            ours.append(run_digitlab(kind, data_dir))
            if not args.no_torch:
                theirs.append(run_torch(kind, data_dir))
        best = min(ours, key=lambda r: r["seconds"])
        torch_runs = [r for r in theirs if r is not None]
        torch_best = min(torch_runs, key=lambda r: r["seconds"]) if torch_runs else None
        row = {"kind": kind, "accuracy": best["accuracy"], "seconds": best["seconds"],
               "command": " ".join(command(kind, args.data_dir)), "peak_rss_mb": best["peak_rss_mb"],
               "target_accuracy": target_acc, "target_seconds": target_s,
               "met": best["accuracy"] >= target_acc and best["seconds"] <= target_s,
               "epochs": best["epochs"],
               "torch_seconds": torch_best["seconds"] if torch_best else None,
               "torch_accuracy": torch_best["accuracy"] if torch_best else None,
               "ratio_to_torch": best["seconds"] / torch_best["seconds"] if torch_best else None}
        runs.append(row)
        print(f"\n{kind}: {row['command']}")
        print(f"  DigitLab  {best['accuracy']:.2%} in {best['seconds']:.1f} s (target >= {target_acc:.1%} in "
              f"<= {target_s:.0f} s: {'met' if row['met'] else 'NOT met'}), peak RSS {best['peak_rss_mb']:.0f} MB")
        if torch_best:
            print(f"  PyTorch   {torch_best['accuracy']:.2%} in {torch_best['seconds']:.1f} s  "
                  f"-> DigitLab = {row['ratio_to_torch']:.2f}x PyTorch's time (target <= 1.0)")
        elif not args.no_torch:
            print("  PyTorch   not installed (pip install torch) - no comparison")
    if args.json:
        print(json.dumps({"runs": runs}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
