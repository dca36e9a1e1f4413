"""Seconds per training epoch of the book's two CNNs: DigitLab against the book's own code.

"Deep Learning from Scratch" trains SimpleConvNet (ch07/train_convnet.py) and DeepConvNet
(ch08/train_deepnet.py) with Adam lr 0.001, batch 100, through ``common.trainer.Trainer``.
This bench times one training step — ``network.gradient`` then ``optimizer.update``, as the
Trainer does — on the same MNIST batches for both sides, after a warm-up, and extrapolates to
an epoch of 600 steps (60,000 images). The book computes in float64 (its weights are float64;
its loader gives [0, 1] float32 images), DigitLab in float32 (its default).

The book's Trainer also runs ``network.loss`` (a second forward pass) after every step just to
log the loss; that cost is reported separately ("book Trainer step") and is not part of the ratio.

The book's side runs in a child process with the book's folder as working directory and on
PYTHONPATH; nothing of the book is imported into this process. Its code is not part of
DigitLab: get it yourself with

    git clone https://github.com/oreilly-japan/deep-learning-from-scratch

Runs of both sides are interleaved, several times each, and the best of each is compared
(speed-up = book / DigitLab; also against DigitLab in float64, to separate the gain from
precision). Both sides use the BLAS threads the environment gives (OPENBLAS_NUM_THREADS=1 for
both is steadier on a busy machine). The book's DeepConvNet takes seconds per step on a small
CPU, so the default is a few dozen steps.

    python bench/bench_book.py --book-dir DIR --data-dir DIR [--iterations 30] [--repeats 3]
                               [--nets simple-convnet,deep-convnet] [--cli-epoch] [--json]

``--cli-epoch`` also times the whole command ``digitlab train --architecture simple-convnet
--data-dir DIR --epochs 1 --optimizer adam --lr 0.001`` (one real epoch, with its evaluation).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import blas_threads

from engine.data.catalog import load_data_dir
from engine.train.config import TrainConfig

EPOCH, BATCH, LR = 60_000, 100, 0.001
STEPS_PER_EPOCH = EPOCH // BATCH
WARMUP = 3
NETS = ("simple-convnet", "deep-convnet")
BOOK_URL = "https://github.com/oreilly-japan/deep-learning-from-scratch"
BOOK_FILES = {"simple-convnet": "ch07/simple_convnet.py", "deep-convnet": "ch08/deep_convnet.py"}

# Run by the child interpreter in the book's folder: builds the book's network and optimizer with the book's
# own classes and times its steps. argv: batches.npz, net name, warm-up steps. Prints one JSON line.
BOOK_CHILD = r"""
import json, sys, time
import numpy as np
from common.optimizer import Adam
path, name, warmup = sys.argv[1], sys.argv[2], int(sys.argv[3])
if name == "simple-convnet":
    from ch07.simple_convnet import SimpleConvNet
    np.random.seed(0)
    net = SimpleConvNet(input_dim=(1, 28, 28), conv_param={"filter_num": 30, "filter_size": 5, "pad": 0, "stride": 1},
                        hidden_size=100, output_size=10, weight_init_std=0.01)  # as ch07/train_convnet.py
else:
    from ch08.deep_convnet import DeepConvNet
    np.random.seed(0)
    net = DeepConvNet()  # as ch08/train_deepnet.py
opt = Adam(lr=0.001)
data = np.load(path)
x, t = data["x"], data["t"]
step = loss = 0.0
for i in range(0, len(x), 100):
    xb, tb = x[i:i + 100], t[i:i + 100]
    start = time.perf_counter()
    grads = net.gradient(xb, tb)
    opt.update(net.params, grads)
    middle = time.perf_counter()
    net.loss(xb, tb)  # the Trainer's logging forward pass
    end = time.perf_counter()
    if i >= warmup * 100:
        step += middle - start
        loss += end - middle
steps = len(x) // 100 - warmup
print(json.dumps({"step": step / steps, "loss": loss / steps, "dtype": str(net.params["W1"].dtype)}))
"""


def sample_batches(data_dir: str, steps: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``steps`` batches of 100 training images drawn as the book's Trainer draws them (with replacement).

    Images (N, 1, 28, 28) float32 in [0, 1] and integer labels: what the book's ``load_mnist(flatten=False)`` gives.
    """
    data = load_data_dir(data_dir)
    if data.x_train is None:
        raise SystemExit(f"bench_book: {data_dir} holds no training images (train-images-idx3-ubyte[.gz])")
    mask = np.random.default_rng(seed).integers(0, len(data.x_train), steps * BATCH)
    return data.x_train[mask].reshape(-1, 1, 28, 28), np.asarray(data.t_train[mask])


def step_digitlab(name: str, x: np.ndarray, t: np.ndarray, warmup: int = WARMUP, dtype=np.float32) -> float:
    """Seconds per DigitLab step (gradient + Adam update) over the batches after ``warmup``.

    float32 is what ``digitlab train`` uses; float64 shows how much of the speed-up is not precision.
    """
    config = TrainConfig(architecture=name, optimizer="adam", lr=LR, batch_size=BATCH)
    net, opt = config.make_network(), config.make_optimizer()
    if dtype != np.float32:
        net, x = net.copy(dtype=dtype), x.astype(dtype)
    total = 0.0
    for i in range(0, len(x), BATCH):
        start = time.perf_counter()
        net.gradient(x[i : i + BATCH], t[i : i + BATCH])
        opt.update(net.params, net.grads)
        if i >= warmup * BATCH:
            total += time.perf_counter() - start
    return total / (len(x) // BATCH - warmup)


def step_book(book_dir: Path, name: str, batches_file: Path, warmup: int = WARMUP) -> dict:
    """The book's step in a child interpreter: {"step": s, "loss": s, "dtype": ...} per step."""
    env = dict(os.environ, PYTHONPATH=str(book_dir))
    done = subprocess.run([sys.executable, "-c", BOOK_CHILD, str(batches_file), name, str(warmup)],
                          cwd=book_dir, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"bench_book: the book's {name} failed in {book_dir}:\n{done.stderr.strip()}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def book_commit(book_dir: Path) -> str | None:
    if shutil.which("git") is None:
        return None
    done = subprocess.run(["git", "-C", str(book_dir), "rev-parse", "HEAD"], capture_output=True, text=True)
    return (done.stdout.strip() or None) if done.returncode == 0 else None


def check_book_dir(book_dir: Path) -> None:
    missing = [f for f in (*BOOK_FILES.values(), "common/optimizer.py") if not (book_dir / f).is_file()]
    if missing:
        raise SystemExit(f"bench_book: {book_dir} is not a checkout of {BOOK_URL} (no {', '.join(missing)})")


def cli_epoch(data_dir: str) -> float:
    """Wall seconds of one real epoch of ``digitlab train --architecture simple-convnet`` (start-up and evaluation included)."""
    command = [sys.executable, "-m", "app.cli", "train", "--architecture", "simple-convnet", "--data-dir", data_dir,
               "--epochs", "1", "--optimizer", "adam", "--lr", str(LR), "--json"]
    digitlab = shutil.which("digitlab")
    if digitlab:
        command[:3] = [digitlab]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def measure(nets, data_dir: str, book_dir: Path | None, iterations: int, repeats: int) -> dict:
    x, t = sample_batches(data_dir, iterations + WARMUP)
    ours: dict[str, list[float]] = {n: [] for n in nets}
    ours64: dict[str, list[float]] = {n: [] for n in nets}
    book: dict[str, list[dict]] = {n: [] for n in nets}
    with tempfile.TemporaryDirectory(prefix="bench_book_") as tmp:
        batches_file = Path(tmp) / "batches.npz"
        np.savez(batches_file, x=x, t=t)
        for _ in range(repeats):
            for name in nets:  # interleaved: each repeat times both sides of every net
                if book_dir is not None:
                    book[name].append(step_book(book_dir, name, batches_file))
                ours[name].append(step_digitlab(name, x, t))
                ours64[name].append(step_digitlab(name, x, t, dtype=np.float64))
    result = {}
    for name in nets:
        key = name.replace("-", "_")
        best_ours = min(ours[name]) * STEPS_PER_EPOCH
        best64 = min(ours64[name]) * STEPS_PER_EPOCH
        result[f"{key}_epoch_seconds"] = best_ours
        result[f"{key}_float64_epoch_seconds"] = best64
        if book[name]:
            best_step = min(r["step"] for r in book[name]) * STEPS_PER_EPOCH
            best_trainer = min(r["step"] + r["loss"] for r in book[name]) * STEPS_PER_EPOCH
            result[f"{key}_book_epoch_seconds"] = best_step
            result[f"{key}_book_trainer_epoch_seconds"] = best_trainer
            result[f"{key}_book_dtype"] = book[name][0]["dtype"]
            result[f"{key}_speedup"] = best_step / best_ours
            result[f"{key}_float64_speedup"] = best_step / best64
        else:
            result.update({f"{key}_book_epoch_seconds": None, f"{key}_book_trainer_epoch_seconds": None,
                           f"{key}_book_dtype": None, f"{key}_speedup": None, f"{key}_float64_speedup": None})
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--book-dir", help=f"a checkout of {BOOK_URL} (without it only DigitLab is timed)")
    parser.add_argument("--data-dir", required=True, help="a folder of MNIST IDX files (train-*/t10k-*-ubyte[.gz])")
    parser.add_argument("--iterations", type=int, default=30, help="timed steps per run, after 3 warm-up steps "
                        "(extrapolated to 600; default 30)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs of each side; the best counts")
    parser.add_argument("--nets", default=",".join(NETS), help="comma-separated: simple-convnet, deep-convnet")
    parser.add_argument("--cli-epoch", action="store_true", help="also time one real epoch of digitlab train "
                        "--architecture simple-convnet")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args(argv)
    nets = [n.strip() for n in args.nets.split(",") if n.strip()]
    unknown = [n for n in nets if n not in NETS]
    if unknown or not nets or args.iterations < 1 or args.repeats < 1:
        parser.error(f"--nets takes {', '.join(NETS)}; --iterations and --repeats must be ≥ 1")
    book_dir = Path(args.book_dir).expanduser().resolve() if args.book_dir else None
    if book_dir is not None:
        check_book_dir(book_dir)
    else:
        print(f"No --book-dir: timing DigitLab only. To compare with the book's own code:\n"
              f"  git clone {BOOK_URL} /some/dir\n"
              f"  python bench/bench_book.py --book-dir /some/dir --data-dir {args.data_dir}", file=sys.stderr)

    result = {"threads": blas_threads(), "timed_iterations": args.iterations, "repeats": args.repeats,
              "book_commit": book_commit(book_dir) if book_dir else None}
    result.update(measure(nets, args.data_dir, book_dir, args.iterations, args.repeats))
    if args.cli_epoch:
        result["digitlab_cli_simple_convnet_epoch_seconds"] = cli_epoch(args.data_dir)

    print(f"Adam lr {LR}, batch {BATCH}, {result['threads']} thread(s); epoch of {STEPS_PER_EPOCH} steps extrapolated "
          f"from {args.iterations} (best of {args.repeats} interleaved runs)")
    if book_dir is not None:
        print(f"book: {book_dir} (commit {result['book_commit'] or 'unknown'})")
    for name in nets:
        key = name.replace("-", "_")
        print(f"{name}:")
        book = result[f"{key}_book_epoch_seconds"]
        print(f"  DigitLab (float32):               {result[f'{key}_epoch_seconds']:9.1f} s/epoch"
              + ("" if book is None else f"   → speed-up {result[f'{key}_speedup']:.1f}×"))
        print(f"  DigitLab (float64):               {result[f'{key}_float64_epoch_seconds']:9.1f} s/epoch"
              + ("" if book is None else f"   → speed-up {result[f'{key}_float64_speedup']:.1f}×"))
        if book is None:
            print("  book: not timed (no --book-dir)")
            continue
        print(f"  book ({result[f'{key}_book_dtype']}):                  {book:9.1f} s/epoch")
        print(f"  book Trainer step (+ loss pass):  {result[f'{key}_book_trainer_epoch_seconds']:9.1f} s/epoch")
    if args.cli_epoch:
        print(f"digitlab train --architecture simple-convnet --epochs 1: "
              f"{result['digitlab_cli_simple_convnet_epoch_seconds']:.1f} s (whole command)")
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
