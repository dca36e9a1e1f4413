"""Crash-class and memory-class hostile files, loaded in a child process under a memory cap.

A regression here would kill the test process (a C stack overflow from hashing a deep tuple) or
exhaust memory, so each batch runs in a child with ``RLIMIT_AS`` set: it must exit normally, print
no traceback, refuse each file with its expected message through both ``load_weights`` and
``inspect_weights``, and peak at no more than ``MAX_EXTRA_MIB`` above what a legitimate weight file
of a few MB needs (the child's ``VmHWM``: Linux only, like ``RLIMIT_AS``).
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

if not Path("/proc/self/status").exists():
    pytest.skip("needs Linux's /proc to measure a child's peak memory", allow_module_level=True)

HERE = Path(__file__).resolve().parent
HOSTILE = HERE / "hostile"
MANIFEST = json.loads((HOSTILE / "MANIFEST.json").read_text(encoding="utf-8"))
ISOLATED = sorted(name for name, entry in MANIFEST.items() if entry.get("isolate"))
ADDRESS_SPACE_MIB = 1536  # numpy and Python reserve ~500 MB of address space; bombs asked for 2 to 32 GiB
MAX_EXTRA_MIB = 100  # a bomb may cost this much more than a legitimate 6.6 MB weight file (which peaks ~65 MiB)

CHILD = r"""
import json, resource, sys
limit = int(sys.argv[1]) << 20
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from engine.errors import DigitLabError
from engine.util import to_jsonable
from engine.weightfiles.recognise import inspect_weights, load_weights

results = {}
for path in sys.argv[2:]:
    outcome = {}
    try:
        loaded = load_weights(path, activation="relu", input_scale=1.0)
        outcome["load"] = "loaded " + loaded.architecture
    except DigitLabError as exc:
        outcome["load"] = "error " + str(exc)
    try:
        info = inspect_weights(path)
        text = json.dumps(to_jsonable(info))
        outcome["inspect"] = ("loaded " if info["recognised"] else "error " + info["error"]) + f" ({len(text)} chars)"
    except DigitLabError as exc:
        outcome["inspect"] = "error " + str(exc)
    results[path] = outcome
# VmHWM: the peak of this program; ru_maxrss would also count the test process's pages shared at fork
with open("/proc/self/status") as status:
    peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps({"results": results, "peak_mib": peak / 1024}))
"""


def run_child(paths: list[Path]) -> dict:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", CHILD, str(ADDRESS_SPACE_MIB), *map(str, paths)],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, f"exit {proc.returncode} (a negative code is a signal): {proc.stderr[-2000:]}"
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def generator():
    spec = importlib.util.spec_from_file_location("make_hostile_corpus", HERE / "make_hostile_corpus.py")
    gen = importlib.util.module_from_spec(spec)  # a script beside this file, not a package
    spec.loader.exec_module(gen)
    return gen


@pytest.fixture(scope="module")
def legit_peak(tmp_path_factory) -> float:
    """Peak memory of a child loading a legitimate 784-1000-1000-10 float32 .npz (6.6 MB)."""
    from engine.nn.network import make_mlp
    from engine.weightfiles.save import save_weights

    path = save_weights(make_mlp([784, 1000, 1000, 10], "relu"), tmp_path_factory.mktemp("legit") / "big.npz")
    report = run_child([path])
    assert report["results"][str(path)]["load"].startswith("loaded 784-1000-1000-10 MLP")
    return report["peak_mib"]


def check(report: dict, expected: dict[str, str], legit_peak: float) -> None:
    for path, refusal in expected.items():
        outcome = report["results"][str(path)]
        for how in ("load", "inspect"):
            assert outcome[how].startswith("error ") and refusal in outcome[how], (path, how, outcome[how])
            assert "\n" not in outcome[how] and len(outcome[how]) < len(str(path)) + 400
    assert report["peak_mib"] <= legit_peak + MAX_EXTRA_MIB, report["peak_mib"]


def test_crash_and_memory_classes_of_the_corpus_are_refused_in_bounded_memory(legit_peak):
    assert len(ISOLATED) >= 8
    report = run_child([HOSTILE / name for name in ISOLATED])
    check(report, {HOSTILE / name: MANIFEST[name]["refusal"] for name in ISOLATED}, legit_peak)


def test_large_bombs_generated_at_test_time_are_refused_in_bounded_memory(tmp_path, legit_peak):
    """Too large for the repository: 200,000 zip records, a 1 GiB inflation, a 60,000-key hash flood, shared state."""
    bombs = generator().large_bombs()
    expected = {}
    for name, (data, _what, refusal) in bombs.items():
        (tmp_path / name).write_bytes(data)
        expected[tmp_path / name] = refusal
    check(run_child(list(expected)), expected, legit_peak)
