"""One training epoch (60,000 MNIST-shaped samples, batch 100) for 784-100-10 and 784-256-128-10 ReLU.

Prints seconds per epoch and samples/s for DigitLab's engine (float32, and book-style
float64), the same epoch's matrix multiplications alone (the floor for any engine on this
machine), and PyTorch CPU with the same thread count when torch is installed.
Targets: ≤ 0.8× PyTorch's epoch time, ≤ 2× the matmul-only time.
Also: the per-iteration time of ``train()`` against ``race()`` of one racer on the same data and
configuration (both drive the same Stepper; target: within 5%).

    python bench/bench_train.py [--repeat 3] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from engine.data.dataset import Dataset
from engine.nn.network import make_mlp
from engine.nn.optimizers import SGD
from engine.train.config import TrainConfig
from engine.train.loop import TrainSettings, iterations_per_epoch, train
from engine.train.race import race

N, BATCH, LR = 60_000, 100, 0.1
ARCHS = {"784-100-10": [784, 100, 10], "784-256-128-10": [784, 256, 128, 10]}


def blas_threads() -> int:
    """Threads NumPy's BLAS uses (OpenBLAS honours these variables); default: all cores."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        if os.environ.get(var):
            return int(os.environ[var])
    return os.cpu_count() or 1


def data(seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((N, 784), dtype=np.float32), rng.integers(0, 10, N)


def time_digitlab(sizes, x, t, dtype=np.float32) -> float:
    net = make_mlp(sizes, dtype=dtype)
    settings = TrainSettings(batch_size=BATCH, epochs=1, report_every=10**9, eval_train_limit=0)
    x = x.astype(dtype, copy=False)
    start = time.perf_counter()
    train(net, SGD(LR), x, t, settings=settings)
    return time.perf_counter() - start


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
    """The matmuls backprop needs per batch: forward x@W, dW = xᵀ·dout, dx = dout·Wᵀ (none for the first layer)."""
    rng = np.random.default_rng(1)
    acts = [rng.random((BATCH, s), dtype=np.float32) for s in sizes]
    Ws = [rng.random((a, b), dtype=np.float32) for a, b in zip(sizes[:-1], sizes[1:])]
    start = time.perf_counter()
    for _ in range(N // BATCH):
        for i, W in enumerate(Ws):
            acts[i] @ W
        for i in reversed(range(len(Ws))):
            acts[i].T @ acts[i + 1]
            if i > 0:
                acts[i + 1] @ Ws[i].T
    return time.perf_counter() - start


def time_torch(sizes, x, t, threads) -> float | None:
    try:
        import torch
    except ImportError:
        return None
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
    order = torch.from_numpy(np.random.default_rng(0).permutation(N))
    for b in range(N // BATCH):
        idx = order[b * BATCH : (b + 1) * BATCH]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(xt[idx]), tt[idx])
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="best of this many runs per figure (default 3)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    x, t = data()
    threads = blas_threads()
    report = {"threads": threads, "samples": N, "batch": BATCH, "archs": {}}
    print(f"one epoch, {N} samples, batch {BATCH}, {threads} thread(s); best of {args.repeat}")
    for name, sizes in ARCHS.items():
        best = lambda f: min(f() for _ in range(args.repeat))  # noqa: E731
        ours = best(lambda: time_digitlab(sizes, x, t))
        book = best(lambda: time_digitlab(sizes, x, t, np.float64))
        mm = best(lambda: time_matmuls(sizes))
        torch_s = time_torch(sizes, x, t, threads)
        torch_s = best(lambda: time_torch(sizes, x, t, threads)) if torch_s is not None else None
        row = {"digitlab_s": ours, "samples_per_s": N / ours, "float64_s": book, "matmul_only_s": mm,
               "torch_s": torch_s, "vs_matmul": ours / mm, "vs_torch": ours / torch_s if torch_s else None,
               "float64_vs_float32": book / ours}
        report["archs"][name] = row
        print(f"\n{name} ReLU")
        print(f"  DigitLab float32   {ours:7.3f} s/epoch  {N / ours:9,.0f} samples/s")
        print(f"  book-style float64 {book:7.3f} s/epoch  ({book / ours:.2f}x float32)")
        print(f"  matmuls alone      {mm:7.3f} s         DigitLab = {ours / mm:.2f}x the floor (target <= 2)")
        if torch_s:
            print(f"  PyTorch CPU        {torch_s:7.3f} s/epoch  DigitLab = {ours / torch_s:.2f}x PyTorch (target <= 0.8)")
        else:
            print("  PyTorch CPU        not installed (pip install torch) - no comparison")
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
