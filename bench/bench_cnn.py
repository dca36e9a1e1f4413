"""CNN speed against PyTorch CPU: training epochs, DeepConvNet evaluation, prediction latency, the weight-file probe.

Every figure that has a PyTorch counterpart is measured on both sides in the same run: PyTorch in a
child process (its OpenMP threads and NumPy's OpenBLAS threads would otherwise spin against each
other on a small machine), with the same thread count, ``--repeat`` times interleaved with
DigitLab's runs; each side's best run counts (other programs on the machine only ever slow a run).

Keys of the JSON object (``--json``; seconds unless the name says ms; ratios are DigitLab / PyTorch):

- ``simple_convnet_epoch_seconds``, ``torch_epoch_seconds``, ``ratio_to_torch`` (target ≤ 0.9):
  the book's SimpleConvNet (conv 30×5×5 → ReLU → pool → 4320-100 → ReLU → 100-10), Adam 0.001,
  batch 100, float32, MNIST-shaped random data; ``--iterations`` steps (default 100) timed after a
  warm-up and extrapolated to a 60,000-image epoch (600 steps).
- ``lenet_epoch_seconds``, ``lenet_torch_epoch_seconds``, ``lenet_ratio_to_torch``: the same for
  ``lenet_spec()``, the network of the 99%-in-half-a-minute recipe.
- ``deep_convnet_eval_seconds``, ``deep_convnet_eval_torch_seconds``, ``deep_convnet_eval_ratio_to_torch``
  (target ≤ 2): the book's DeepConvNet scoring the 10,000 test images (``Network.evaluate``; PyTorch:
  ``model.eval()`` under ``torch.no_grad()`` in batches of 1,000, the book's eval-time dropout kept
  as a multiplication by 0.5). The MNIST test images when ``--data-dir`` holds them, else random ones.
- ``deep_convnet_epoch_seconds``, ``deep_convnet_torch_epoch_seconds``, ``deep_convnet_ratio_to_torch``:
  a DeepConvNet training epoch (Adam, batch 100, dropout), extrapolated from ``--deep-iterations`` steps,
  to compare with the book's own code (which takes hours per epoch on a CPU).
- ``deep_convnet_predict_ms_float32``, ``deep_convnet_predict_ms_float64``: DeepConvNet ``predict``
  on one 28×28 canvas image, median of ``--predictions`` calls (target < 20 ms).
- ``probe_seconds_deep_convnet``, ``probe_fraction_deep_convnet``, ``probe_seconds_mlp``,
  ``probe_fraction_mlp``: what ``engine.weightfiles.probe.choose`` costs when a book pickle is opened
  (DeepConvNet: its two input scales; an MLP 784-100-10: two activations × two scales), and that as
  a fraction of evaluating 10,000 images with the same network (target ≤ 0.1).
- ``threads``, ``timed_iterations``, ``repeat``, ``data``.

    python bench/bench_cnn.py [--iterations 100] [--repeat 3] [--data-dir DIR] [--json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from _common import blas_threads

from engine.nn.models import deep_convnet_spec, lenet_spec, make_cnn, simple_convnet_spec
from engine.nn.optimizers import make_optimizer

EPOCH, BATCH, LR = 60_000, 100, 0.001
EVAL_IMAGES = 10_000
DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "mnist-full"
NETS = {"simple": simple_convnet_spec, "lenet": lenet_spec, "deep": deep_convnet_spec}


def batches(iterations: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.random((iterations * BATCH, 784), dtype=np.float32)
    t = rng.integers(0, 10, iterations * BATCH)
    return [(x[i : i + BATCH], t[i : i + BATCH]) for i in range(0, len(x), BATCH)]


def test_images(data_dir: str | None) -> tuple[np.ndarray, np.ndarray, str]:
    """(10,000 images, labels, where from): MNIST's test set when ``data_dir`` has it, else random digits."""
    if data_dir and Path(data_dir).is_dir():
        from engine.data.catalog import load_data_dir

        ds = load_data_dir(data_dir)
        return ds.x_test[:EVAL_IMAGES], ds.t_test[:EVAL_IMAGES], str(data_dir)
    rng = np.random.default_rng(2)
    return rng.random((EVAL_IMAGES, 784), dtype=np.float32), rng.integers(0, 10, EVAL_IMAGES), "random images"


def timed_epoch(step, data, warmup: int) -> float:
    """Seconds for a 600-step epoch, extrapolated from the steps after ``warmup``."""
    for x, t in data[:warmup]:
        step(x, t)
    start = time.perf_counter()
    for x, t in data[warmup:]:
        step(x, t)
    return (time.perf_counter() - start) / (len(data) - warmup) * (EPOCH // BATCH)


# ----- DigitLab


def epoch_digitlab(name: str, iterations: int, warmup: int = 5) -> float:
    net = make_cnn(NETS[name](), seed=0)
    opt = make_optimizer("adam", lr=LR)

    def step(x, t):
        net.gradient(x, t)
        opt.update(net.params, net.grads)

    return timed_epoch(step, batches(iterations + warmup), warmup)


def eval_digitlab(x: np.ndarray, t: np.ndarray) -> float:
    net = make_cnn(deep_convnet_spec(), seed=0)
    net.evaluate(x[:500], t[:500])  # warm-up
    start = time.perf_counter()
    net.evaluate(x, t)
    return time.perf_counter() - start


def digitlab_run(args, x, t) -> dict:
    return {
        "simple": epoch_digitlab("simple", args.iterations),
        "lenet": epoch_digitlab("lenet", args.iterations),
        "eval": eval_digitlab(x, t),
        "deep": epoch_digitlab("deep", args.deep_iterations, warmup=2),
    }


# ----- PyTorch (in a child process)


def torch_model(spec: dict):
    """The PyTorch twin of a DigitLab conv/pool/relu/affine/dropout spec (dropout as the book's: × (1 − ratio) at eval)."""
    import torch

    class BookDropout(torch.nn.Module):
        def __init__(self, ratio: float) -> None:
            super().__init__()
            self.ratio = ratio

        def forward(self, x):
            if self.training:
                return x * (torch.rand_like(x) > self.ratio)
            return x * (1.0 - self.ratio)

    layers, flat = [], False
    for layer in spec["layers"]:
        kind = layer["type"]
        if kind == "conv":
            layers.append(torch.nn.Conv2d(layer["channels"], layer["filters"], layer["size"], layer.get("stride", 1),
                                          layer.get("pad", 0)))
        elif kind == "pool":
            layers.append(torch.nn.MaxPool2d(layer["size"], layer.get("stride", layer["size"]), layer.get("pad", 0)))
        elif kind == "relu":
            layers.append(torch.nn.ReLU())
        elif kind == "dropout":
            layers.append(BookDropout(layer.get("ratio", 0.5)))
        elif kind == "affine":
            if not flat:
                layers.append(torch.nn.Flatten())
                flat = True
            layers.append(torch.nn.Linear(layer["in"], layer["out"]))
        else:
            raise ValueError(f"no PyTorch twin for layer type {kind!r}")
    return torch.nn.Sequential(*layers)


def torch_run(args, x, t) -> dict | None:
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(blas_threads())
    torch.manual_seed(0)

    def epoch(name: str, iterations: int, warmup: int = 5) -> float:
        model = torch_model(NETS[name]())
        opt = torch.optim.Adam(model.parameters(), lr=LR)
        loss_fn = torch.nn.CrossEntropyLoss()

        def step(xb, tb):
            opt.zero_grad()
            loss_fn(model(xb), tb).backward()
            opt.step()

        data = [(torch.from_numpy(xb.reshape(-1, 1, 28, 28)), torch.from_numpy(tb))
                for xb, tb in batches(iterations + warmup)]
        return timed_epoch(step, data, warmup)

    def evaluate() -> float:
        model = torch_model(deep_convnet_spec()).eval()
        images, labels = torch.from_numpy(x.reshape(-1, 1, 28, 28)), torch.from_numpy(t.astype(np.int64))
        loss_fn = torch.nn.CrossEntropyLoss(reduction="sum")

        def run(n):
            loss = correct = 0.0
            with torch.no_grad():
                for i in range(0, n, 1000):
                    scores = model(images[i : i + 1000])
                    loss += float(loss_fn(scores, labels[i : i + 1000]))
                    correct += int((scores.argmax(1) == labels[i : i + 1000]).sum())
            return loss / n, correct / n

        run(500)
        start = time.perf_counter()
        run(len(images))
        return time.perf_counter() - start

    return {"simple": epoch("simple", args.iterations), "lenet": epoch("lenet", args.iterations),
            "eval": evaluate(), "deep": epoch("deep", args.deep_iterations, warmup=2)}


def torch_isolated(args) -> dict | None:
    """``torch_run`` in a fresh interpreter (None when torch is not installed there)."""
    command = [sys.executable, __file__, "--torch-only", "--iterations", str(args.iterations),
               "--deep-iterations", str(args.deep_iterations)]
    if args.data_dir:
        command += ["--data-dir", args.data_dir]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


# ----- prediction latency and the probe (DigitLab only)


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


def probe_cost(spec: dict, candidates: list, x: np.ndarray, t: np.ndarray, repeat: int) -> tuple[float, float]:
    """(seconds of ``probe.choose`` over ``candidates``, seconds of evaluating ``x``), best of ``repeat``, same network."""
    from engine.nn.network import build_network
    from engine.weightfiles.probe import Candidate, choose

    params = make_cnn(spec, seed=0, dtype=np.float64).params  # a book pickle holds float64 arrays
    params = {k: np.array(v) for k, v in params.items()}

    def make(candidate: Candidate):
        activation = candidate.activation
        layers = [({**layer, "type": activation} if activation and layer["type"] in ("relu", "sigmoid") else layer)
                  for layer in spec["layers"]]
        return build_network({**spec, "layers": layers, "input_scale": candidate.scale}, params=params)

    candidates = [Candidate(activation, scale) for activation, scale in candidates]
    choose(candidates, make, None, [])  # warm-up: loads and caches the probe digits
    probe = evaluation = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        choose(candidates, make, None, [])
        probe = min(probe, time.perf_counter() - start)
        net = make(candidates[0])
        start = time.perf_counter()
        net.evaluate(x, t)
        evaluation = min(evaluation, time.perf_counter() - start)
    return probe, evaluation


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=100, help="timed training steps (extrapolated to 600)")
    parser.add_argument("--deep-iterations", type=int, default=10, help="timed DeepConvNet training steps")
    parser.add_argument("--predictions", type=int, default=200, help="single-image predictions to time")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved runs of each side; the best counts")
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA) if DEFAULT_DATA.is_dir() else None,
                        help="MNIST directory for the evaluation (default: ../shared/datasets/mnist-full if present)")
    parser.add_argument("--json", action="store_true", help="print one JSON object (last line) instead of text")
    parser.add_argument("--torch-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    x, t, source = test_images(args.data_dir)
    if args.torch_only:
        print(json.dumps(torch_run(args, x, t)))
        return 0

    ours: dict[str, float] = {}
    theirs: dict[str, float] | None = {}
    for _ in range(max(1, args.repeat)):
        run = torch_isolated(args)
        theirs = None if run is None else {k: min(v, theirs.get(k, v)) for k, v in run.items()}
        ours = {k: min(v, ours.get(k, v)) for k, v in digitlab_run(args, x, t).items()}
    from engine.nn.models import mlp_spec

    deep_probe, deep_eval = probe_cost(deep_convnet_spec(), [("relu", 1.0), ("relu", 255.0)], x, t, args.repeat)
    mlp_probe, mlp_eval = probe_cost(mlp_spec([784, 100, 10]), [(a, s) for a in ("sigmoid", "relu") for s in (1.0, 255.0)],
                                     x, t, max(10, args.repeat))  # milliseconds each: more runs for a steady best

    def ratio(key):
        return None if theirs is None else ours[key] / theirs[key]

    result = {
        "threads": blas_threads(),
        "timed_iterations": args.iterations,
        "repeat": args.repeat,
        "data": source,
        "simple_convnet_epoch_seconds": ours["simple"],
        "torch_epoch_seconds": None if theirs is None else theirs["simple"],
        "ratio_to_torch": ratio("simple"),
        "lenet_epoch_seconds": ours["lenet"],
        "lenet_torch_epoch_seconds": None if theirs is None else theirs["lenet"],
        "lenet_ratio_to_torch": ratio("lenet"),
        "deep_convnet_eval_seconds": ours["eval"],
        "deep_convnet_eval_torch_seconds": None if theirs is None else theirs["eval"],
        "deep_convnet_eval_ratio_to_torch": ratio("eval"),
        "deep_convnet_epoch_seconds": ours["deep"],
        "deep_convnet_torch_epoch_seconds": None if theirs is None else theirs["deep"],
        "deep_convnet_ratio_to_torch": ratio("deep"),
        "deep_convnet_predict_ms_float32": predict_latency(np.float32, args.predictions) * 1000,
        "deep_convnet_predict_ms_float64": predict_latency(np.float64, args.predictions) * 1000,
        "probe_seconds_deep_convnet": deep_probe,
        "probe_fraction_deep_convnet": deep_probe / deep_eval,
        "probe_seconds_mlp": mlp_probe,
        "probe_fraction_mlp": mlp_probe / mlp_eval,
    }
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{result['threads']} thread(s), best of {args.repeat} interleaved runs; batch {BATCH}, Adam, float32; "
          f"epochs of {EPOCH:,} extrapolated from {args.iterations} steps ({args.deep_iterations} for DeepConvNet)")
    if theirs is None:
        print("PyTorch CPU: not installed (pip install torch to compare)")
    rows = [("SimpleConvNet epoch", "simple", "≤ 0.9×"), ("LeNet-style epoch", "lenet", ""),
            (f"DeepConvNet evaluation of {len(x):,} images", "eval", "≤ 2×"), ("DeepConvNet epoch", "deep", "")]
    for label, key, target in rows:
        line = f"  {label:42s} DigitLab {ours[key]:8.2f} s"
        if theirs is not None:
            line += f"   PyTorch {theirs[key]:8.2f} s   ratio {ours[key] / theirs[key]:.2f}×"
            line += f" (target {target})" if target else ""
        print(line)
    print(f"  (evaluation images: {source})")
    print(f"DeepConvNet predict, one image, median of {args.predictions}: "
          f"{result['deep_convnet_predict_ms_float32']:.2f} ms float32, "
          f"{result['deep_convnet_predict_ms_float64']:.2f} ms float64 (target < 20 ms)")
    print(f"Weight-file probe: DeepConvNet {deep_probe:.3f} s = {deep_probe / deep_eval:.1%} of an evaluation, "
          f"MLP 784-100-10 {mlp_probe:.4f} s = {mlp_probe / mlp_eval:.1%} (target ≤ 10%)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
