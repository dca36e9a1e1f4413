"""One training epoch (60,000 MNIST-shaped samples, batch 100) for 784-100-10 and 784-256-128-10 ReLU, SGD.

Prints seconds per epoch and samples/s for DigitLab's engine (float32, and book-style
float64), the same epoch's matrix multiplications alone (the floor for any engine on this
machine: per layer and batch x@W, xᵀ·dout and dout·Wᵀ, float32, nothing else), and PyTorch CPU
with the same thread count when torch is installed. PyTorch runs in a child process (its
OpenMP threads and NumPy's OpenBLAS threads would otherwise spin against each other on a small
machine); the runs of each side are interleaved and the best of each is compared, so a busy
moment on a shared machine hits both sides alike.
Targets: ≤ 0.7× PyTorch's epoch time and ≤ 1.6× the matmul-only time.
Also for reference, the same epoch as plain NumPy: the very operations of the engine's step written out in one
function (no layers, optimizer or Stepper), so what the engine's structure costs shows apart from what NumPy's
own gather, elementwise work and update cost on this machine.
Also: the per-iteration time of ``train()`` against ``race()`` of one racer on the same data and
configuration (both drive the same Stepper; target: within 5%).

    python bench/bench_train.py [--repeat 5] [--json]
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time

import numpy as np

from _common import blas_threads

from engine.data.dataset import Dataset
from engine.nn.functions import softmax_and_cross_entropy
from engine.nn.network import make_mlp
from engine.nn.optimizers import SGD, FlatParams
from engine.train.config import TrainConfig
from engine.train.loop import TrainSettings, iterations_per_epoch, train
from engine.train.race import race

N, BATCH, LR = 60_000, 100, 0.1
ARCHS = {"784-100-10": [784, 100, 10], "784-256-128-10": [784, 256, 128, 10]}
TARGET_VS_TORCH, TARGET_VS_MATMUL = 0.7, 1.6


def data(seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((N, 784), dtype=np.float32), rng.integers(0, 10, N)


def time_digitlab(sizes, x, t, dtype=np.float32) -> tuple[float, float]:
    """One epoch of ``train()`` (the loop the CLI and the window drive), without per-epoch evaluation.

    Returns (the epoch's training time as ``train()`` reports it, the whole call's time). The call also checks
    the training set for NaN and infinities once, before the clock starts, as ``digitlab train`` reports its
    seconds and ``bench_time_to_accuracy.py`` times them; PyTorch's and the floor's epochs check nothing.
    """
    net = make_mlp(sizes, dtype=dtype)
    settings = TrainSettings(batch_size=BATCH, epochs=1, report_every=10**9, eval_train_limit=0)
    x = x.astype(dtype, copy=False)
    start = time.perf_counter()
    result = train(net, SGD(LR), x, t, settings=settings)
    return result.elapsed, time.perf_counter() - start


def race_vs_train(x, t, runs: int) -> dict:
    """Seconds per iteration of train() and of race() with one racer, same config; runs interleaved, best of each."""
    cfg = TrainConfig(hidden=[100], activation="relu", optimizer="sgd", lr=LR, batch_size=BATCH, seed=0)
    iters = iterations_per_epoch(len(x), BATCH)
    dataset = Dataset("bench", x, t, x[:0], t[:0])
    settings = TrainSettings(batch_size=BATCH, epochs=1, seed=0, report_every=10**9, eval_train_limit=0)

    def one_train() -> float:
        start = time.perf_counter()
        train(cfg.make_network(), cfg.make_optimizer(), x, t, settings=settings)
        return (time.perf_counter() - start) / iters

    def one_race() -> float:
        start = time.perf_counter()
        race([cfg], dataset, iters, report_every=10**9, evaluate_every_epoch=False)
        return (time.perf_counter() - start) / iters

    trains, races = [], []
    for _ in range(runs):
        trains.append(one_train())
        races.append(one_race())
    best_train, best_race = min(trains), min(races)
    return {"train_s_per_iter": best_train, "race_s_per_iter": best_race, "race_vs_train_ratio": best_race / best_train}


def time_matmuls(sizes) -> float:
    """The matmuls backprop needs per batch: forward x@W, dW = xᵀ·dout, dx = dout·Wᵀ (none for the first layer).

    float32, the shapes of the real epoch, results into preallocated arrays (as the engine does): only
    the GEMMs themselves are timed, with nothing else in between.
    """
    rng = np.random.default_rng(1)
    acts = [rng.random((BATCH, s), dtype=np.float32) for s in sizes]
    Ws = [rng.random((a, b), dtype=np.float32) for a, b in zip(sizes[:-1], sizes[1:])]
    outs = [np.empty_like(a) for a in acts]
    dWs = [np.empty_like(W) for W in Ws]
    start = time.perf_counter()
    for _ in range(N // BATCH):
        for i, W in enumerate(Ws):
            np.matmul(acts[i], W, out=outs[i + 1])
        for i in reversed(range(len(Ws))):
            np.matmul(acts[i].T, acts[i + 1], out=dWs[i])
            if i > 0:
                np.matmul(acts[i + 1], Ws[i].T, out=outs[i])
    return time.perf_counter() - start


def time_plain_numpy(sizes, x, t) -> float:
    """One epoch of the engine's arithmetic written as one plain function: float32, buffers made beforehand, the
    parameters and gradients views of one flat buffer (a new network's, as the engine lays them out), SGD in two
    operations over it."""
    params = make_mlp(sizes, dtype=np.float32).params  # W1, b1, W2, b2, …: views of params.flat
    grads = FlatParams.gather(params, zeros=True)
    flat, step, layers = params.flat, np.empty_like(params.flat), len(sizes) - 1
    Ws, bs = [params[f"W{i + 1}"] for i in range(layers)], [params[f"b{i + 1}"] for i in range(layers)]
    gWs, gbs = [grads[f"W{i + 1}"] for i in range(layers)], [grads[f"b{i + 1}"] for i in range(layers)]
    batch = np.empty((BATCH, sizes[0]), dtype=np.float32)
    outs = [batch] + [np.empty((BATCH, s), dtype=np.float32) for s in sizes[1:]]
    masks = [np.empty((BATCH, s), dtype=np.bool_) for s in sizes[1:-1]]
    douts = [None] + [np.empty((BATCH, s), dtype=np.float32) for s in sizes[1:-1]]
    probs, rows = np.empty((BATCH, sizes[-1]), dtype=np.float32), np.arange(BATCH)
    start = time.perf_counter()
    order = np.random.default_rng(0).permutation(len(x))
    for b in range(len(x) // BATCH):
        idx = order[b * BATCH:(b + 1) * BATCH]
        x.take(idx, axis=0, out=batch, mode="clip")
        labels = t[idx]
        for i in range(layers):
            out = np.matmul(outs[i], Ws[i], out=outs[i + 1])
            out += bs[i]
            if i < layers - 1:
                np.greater(out, 0, out=masks[i])
                np.multiply(out, masks[i], out=out)
        dout, _ = softmax_and_cross_entropy(outs[-1], labels, out=probs)
        dout[rows, labels] -= 1
        dout *= 1 / BATCH
        for i in reversed(range(layers)):
            np.add.reduce(dout, axis=0, out=gbs[i])
            np.matmul(outs[i].T, dout, out=gWs[i])
            if i > 0:
                dout = np.matmul(dout, Ws[i].T, out=douts[i])
                np.multiply(dout, masks[i - 1], out=dout)
        flat -= np.multiply(grads.flat, LR, out=step)
    return time.perf_counter() - start


# ----------------------------------------------------------------------------- PyTorch, in a child process

def time_torch(sizes, x, t, threads) -> float:
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(torch.nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()
    xt, tt = torch.from_numpy(x), torch.from_numpy(t)
    start = time.perf_counter()
    order = torch.from_numpy(np.random.default_rng(0).permutation(len(x)))
    for b in range(len(x) // BATCH):
        idx = order[b * BATCH : (b + 1) * BATCH]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(xt[idx]), tt[idx])
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def torch_worker() -> int:
    """The child: reads an architecture name per line, answers with one epoch's seconds ("none": no torch)."""
    if importlib.util.find_spec("torch") is None:
        print("none", flush=True)
        return 0
    x, t = data()
    for sizes in ARCHS.values():  # warm-up: thread pool, allocator
        time_torch(sizes, x[:10 * BATCH], t[:10 * BATCH], blas_threads())
    print("ready", flush=True)
    for line in sys.stdin:
        print(time_torch(ARCHS[line.strip()], x, t, blas_threads()), flush=True)
    return 0


class TorchChild:
    """PyTorch in a fresh interpreter, kept for the whole bench so its epochs can alternate with ours."""

    def __init__(self) -> None:
        self._proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--torch-worker"],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.available = self._proc.stdout.readline().strip() == "ready"

    def epoch(self, arch: str) -> float | None:
        if not self.available:
            return None
        self._proc.stdin.write(arch + "\n")
        self._proc.stdin.flush()
        return float(self._proc.stdout.readline())

    def close(self) -> None:
        if self._proc.stdin:
            self._proc.stdin.close()
        self._proc.wait(timeout=60)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5, help="runs of each side, interleaved; best of each (default 5)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.torch_worker:
        raise SystemExit(torch_worker())
    x, t = data()
    threads = blas_threads()
    report = {"threads": threads, "samples": N, "batch": BATCH, "runs": args.repeat,
              "targets": {"vs_torch": TARGET_VS_TORCH, "vs_matmul": TARGET_VS_MATMUL}, "archs": {}}
    print(f"one epoch, {N} samples, batch {BATCH}, SGD, {threads} thread(s); "
          f"{args.repeat} interleaved runs of each side, best of each")
    child = TorchChild()
    try:
        for name, sizes in ARCHS.items():
            time_digitlab(sizes, x[:10 * BATCH], t[:10 * BATCH])  # warm-up: first allocations, BLAS threads
            runs: dict[str, list] = {"ours": [], "call": [], "matmul": [], "plain": [], "torch": [], "book": []}
            for i in range(args.repeat):
                epoch, call = time_digitlab(sizes, x, t)
                runs["ours"].append(epoch)
                runs["call"].append(call)
                runs["torch"].append(child.epoch(name))
                runs["matmul"].append(time_matmuls(sizes))
                runs["plain"].append(time_plain_numpy(sizes, x, t))
                if i < 2:  # the float64 figure is for information, not a target
                    runs["book"].append(time_digitlab(sizes, x, t, np.float64)[0])
            ours, mm, book, plain = min(runs["ours"]), min(runs["matmul"]), min(runs["book"]), min(runs["plain"])
            torch_s = None if None in runs["torch"] else min(runs["torch"])
            row = {"digitlab_s": ours, "digitlab_call_s": min(runs["call"]), "samples_per_s": N / ours,
                   "float64_s": book, "matmul_only_s": mm,
                   "torch_s": torch_s, "vs_matmul": ours / mm, "vs_torch": ours / torch_s if torch_s else None,
                   "float64_vs_float32": book / ours, "plain_numpy_s": plain, "plain_numpy_vs_matmul": plain / mm,
                   "vs_plain_numpy": ours / plain,
                   "all_runs_s": {k: v for k, v in runs.items() if None not in v}}
            row["meets_targets"] = row["vs_matmul"] <= TARGET_VS_MATMUL and (
                row["vs_torch"] is None or row["vs_torch"] <= TARGET_VS_TORCH)
            report["archs"][name] = row
            print(f"\n{name} ReLU")
            print(f"  DigitLab float32   {ours:7.3f} s/epoch  {N / ours:9,.0f} samples/s  "
                  f"(the train() call, with its one-off check of the data: {row['digitlab_call_s']:.3f} s)")
            print(f"  book-style float64 {book:7.3f} s/epoch  ({book / ours:.2f}x float32)")
            print(f"  matmuls alone      {mm:7.3f} s         DigitLab = {ours / mm:.2f}x the floor "
                  f"(target <= {TARGET_VS_MATMUL})")
            print(f"  plain NumPy step   {plain:7.3f} s         = {plain / mm:.2f}x the floor; "
                  f"DigitLab = {ours / plain:.2f}x plain NumPy")
            if torch_s:
                print(f"  PyTorch CPU        {torch_s:7.3f} s/epoch  DigitLab = {ours / torch_s:.2f}x PyTorch "
                      f"(target <= {TARGET_VS_TORCH})")
            else:
                print("  PyTorch CPU        not installed (pip install torch) - no comparison")
    finally:
        child.close()
    side = race_vs_train(x, t, max(5, args.repeat))
    report["race_vs_train"] = side
    report["race_vs_train_ratio"] = side["race_vs_train_ratio"]
    print(f"\n784-100-10 ReLU, SGD, one epoch: train() vs race() of one racer, best of {max(5, args.repeat)} interleaved")
    print(f"  train()            {side['train_s_per_iter'] * 1e3:7.3f} ms/iteration")
    print(f"  race(), 1 racer    {side['race_s_per_iter'] * 1e3:7.3f} ms/iteration  "
          f"ratio {side['race_vs_train_ratio']:.3f} (target within 5%)")
    if args.json:
        print(json.dumps(report))


if __name__ == "__main__":
    main()
