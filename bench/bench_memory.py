"""Peak memory of a full-MNIST MLP run: ``digitlab train --data-dir DIR --epochs 1`` (default MLP 784-256-128-10).

Runs the command as a child process and reads its peak resident set size (the kernel's
``ru_maxrss`` of the waited-for child). Target: below the dataset's own float32 size (every
training and test image as 784 float32 pixels) plus 150 MB. MB here are 10⁶ bytes.

    python bench/bench_memory.py --data-dir /path/to/mnist-full [--json]
"""
from __future__ import annotations

import argparse
import gzip
import json
import shutil
import sys
import time
from pathlib import Path

from _common import run_child

MB = 1e6
BUDGET_EXTRA_MB = 150.0
PIXELS = 28 * 28
IMAGE_FILES = ("train-images-idx3-ubyte", "train-images.idx3-ubyte", "t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte")


def image_count(path: Path) -> int:
    """The image count in an IDX image file's header (plain or gzipped)."""
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as f:
        header = f.read(8)
    return int.from_bytes(header[4:8], "big")


def dataset_float32_mb(data_dir: Path) -> float:
    counted = set()
    total = 0
    for name in IMAGE_FILES:
        for path in (data_dir / (name + ".gz"), data_dir / name):
            split = name.split("-")[0]
            if path.is_file() and split not in counted:
                counted.add(split)
                total += image_count(path)
    if not total:
        raise SystemExit(f"{data_dir}: no train-images/t10k-images IDX files")
    return total * PIXELS * 4 / MB


def train_command(data_dir: Path, epochs: int) -> list[str]:
    exe = shutil.which("digitlab")
    head = [exe] if exe else [sys.executable, "-m", "app.cli"]
    return [*head, "train", "--data-dir", str(data_dir), "--epochs", str(epochs), "--json"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", required=True, type=Path, help="folder with MNIST's four IDX files")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = ap.parse_args(argv)
    data_mb = dataset_float32_mb(args.data_dir)
    budget = data_mb + BUDGET_EXTRA_MB
    command = train_command(args.data_dir, args.epochs)
    start = time.perf_counter()
    try:
        stdout, peak_mib = run_child(command)
    except RuntimeError as exc:
        raise SystemExit(f"the training command failed: {exc}") from None
    seconds = time.perf_counter() - start
    peak_mb = peak_mib * (1 << 20) / MB
    try:
        accuracy = json.loads(stdout.strip().splitlines()[-1]).get("test_accuracy")
    except (ValueError, IndexError, AttributeError):
        accuracy = None
    result = {"command": " ".join(["digitlab", *command[command.index("train"):-1]]), "peak_rss_mb": peak_mb,
              "dataset_float32_mb": data_mb, "budget_mb": budget, "within_budget": peak_mb < budget,
              "headroom_mb": budget - peak_mb, "seconds": seconds, "test_accuracy": accuracy}
    print(f"{result['command']}")
    print(f"  peak RSS           {peak_mb:7.1f} MB")
    print(f"  dataset as float32 {data_mb:7.1f} MB  (budget: that + {BUDGET_EXTRA_MB:.0f} MB = {budget:.1f} MB)")
    print(f"  {'within' if result['within_budget'] else 'OVER'} budget by {abs(budget - peak_mb):.1f} MB"
          f"; {seconds:.1f} s, test accuracy {accuracy}")
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
