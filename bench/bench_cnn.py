"""SimpleConvNet training speed and DeepConvNet single-image prediction latency.

Training: the book's SimpleConvNet (conv 30×5×5 → ReLU → pool → 4320-100 → ReLU → 100-10),
Adam, batch 100, MNIST-shaped random data. ``--iterations`` steps (default 100) are timed
after a warm-up and extrapolated to a 60,000-sample epoch (600 steps); the same is done for
an equivalent PyTorch CPU model with the same thread count when torch is installed.
PyTorch runs in a child process: its OpenMP threads and NumPy's OpenBLAS threads would
otherwise spin against each other on a small machine. Target: ≤ 2× PyTorch's epoch time.

Prediction: DeepConvNet ``predict`` on one 28×28 canvas image, median of many calls
(float32 and the book's float64 weights). Target: < 20 ms.

    python bench/bench_cnn.py [--iterations 100] [--predictions 200] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

from engine.nn.models import deep_convnet_spec, make_cnn, simple_convnet_spec
from engine.nn.optimizers import make_optimizer

EPOCH, BATCH, LR = 60_000, 100, 0.001


def blas_threads() -> int:
    """Threads NumPy's BLAS uses (OpenBLAS honours these variables); default: all cores."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        if os.environ.get(var):
            return int(os.environ[var])
    return os.cpu_count() or 1


def batches(iterations: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.random((iterations * BATCH, 784), dtype=np.float32)
    t = rng.integers(0, 10, iterations * BATCH)
    return [(x[i : i + BATCH], t[i : i + BATCH]) for i in range(0, len(x), BATCH)]


def epoch_digitlab(iterations: int, warmup: int = 5) -> float:
    """Seconds for a 600-step epoch, extrapolated from ``iterations`` timed steps."""
    net = make_cnn(simple_convnet_spec(), seed=0)
    opt = make_optimizer("adam", lr=LR)
    data = batches(iterations + warmup)
    for x, t in data[:warmup]:
        net.gradient(x, t)
        opt.update(net.params, net.grads)
    start = time.perf_counter()
    for x, t in data[warmup:]:
        net.gradient(x, t)
        opt.update(net.params, net.grads)
    return (time.perf_counter() - start) / iterations * (EPOCH // BATCH)


def epoch_torch(iterations: int, warmup: int = 5) -> float | None:
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(blas_threads())
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 30, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2, 2), torch.nn.Flatten(),
        torch.nn.Linear(4320, 100), torch.nn.ReLU(), torch.nn.Linear(100, 10),
    )
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()
    data = [(torch.from_numpy(x.reshape(-1, 1, 28, 28)), torch.from_numpy(t)) for x, t in batches(iterations + warmup)]

    def step(x, t):
        opt.zero_grad()
        loss_fn(model(x), t).backward()
        opt.step()

    for x, t in data[:warmup]:
        step(x, t)
    start = time.perf_counter()
    for x, t in data[warmup:]:
        step(x, t)
    return (time.perf_counter() - start) / iterations * (EPOCH // BATCH)


def epoch_torch_isolated(iterations: int) -> float | None:
    """``epoch_torch`` in a fresh interpreter (None when torch is not installed there)."""
    done = subprocess.run([sys.executable, __file__, "--torch-only", "--iterations", str(iterations)],
                          capture_output=True, text=True, check=True)
    value = done.stdout.strip().splitlines()[-1]
    return None if value == "none" else float(value)


def predict_latency(dtype, count: int) -> float:
    """Median seconds for ``DeepConvNet.predict`` on one image."""
    net = make_cnn(deep_convnet_spec(), seed=0, dtype=dtype)
    image = np.random.default_rng(1).random((28, 28), dtype=np.float32)
    for _ in range(5):
        net.predict(image)
    times = []
    for _ in range(count):
        start = time.perf_counter()
        net.predict(image)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=100, help="timed training steps (extrapolated to 600)")
    parser.add_argument("--predictions", type=int, default=200, help="single-image predictions to time")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.add_argument("--torch-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.torch_only:
        seconds = epoch_torch(args.iterations)
        print("none" if seconds is None else seconds)
        return 0

    torch_time = epoch_torch_isolated(args.iterations)
    ours = epoch_digitlab(args.iterations)
    pred32 = predict_latency(np.float32, args.predictions)
    pred64 = predict_latency(np.float64, args.predictions)
    result = {
        "threads": blas_threads(),
        "timed_iterations": args.iterations,
        "simple_convnet_epoch_seconds": ours,
        "torch_epoch_seconds": torch_time,
        "ratio_to_torch": None if torch_time is None else ours / torch_time,
        "deep_convnet_predict_ms_float32": pred32 * 1000,
        "deep_convnet_predict_ms_float64": pred64 * 1000,
    }
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"SimpleConvNet, Adam, batch {BATCH}, {result['threads']} thread(s); "
          f"epoch of {EPOCH:,} extrapolated from {args.iterations} steps")
    print(f"  DigitLab (float32): {ours:6.2f} s/epoch")
    if torch_time is None:
        print("  PyTorch CPU: not installed (pip install torch to compare)")
    else:
        print(f"  PyTorch CPU:        {torch_time:6.2f} s/epoch   → DigitLab/PyTorch = {ours / torch_time:.2f}× "
              "(target ≤ 2×)")
    print(f"DeepConvNet predict, one image, median of {args.predictions}: "
          f"{pred32 * 1000:.2f} ms float32, {pred64 * 1000:.2f} ms float64 (target < 20 ms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
