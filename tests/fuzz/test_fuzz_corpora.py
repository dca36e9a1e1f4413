"""Every file of the project's hostile corpora through the ``digitlab`` sub-command that opens it.

Weight files go through ``inspect`` and ``evaluate``, pictures through ``predict``, IDX files (placed
in a data folder beside a valid partner file) through ``evaluate --data-dir``; each in a forked child
with the harness's memory cap and time limit. Each must exit 0 or 1 with its error as one line, no
traceback, and peak at no more than ``MEMORY_FACTOR`` times what the same command needs for a
legitimate file of that kind.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.data.idx import write_idx
from fuzz_campaign import STATS, cli_problem
from fuzz_worker import CASE_SECONDS, MEMORY_CAP, SINGLE_THREAD_ENV, Worker

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
CORPORA = {"weights": TESTS / "engine" / "weightfiles" / "hostile",
           "images": TESTS / "engine" / "data" / "hostile_images",
           "idx": TESTS / "engine" / "data" / "hostile_idx"}
MEMORY_FACTOR = 10  # the bound: no input may need more than ~10× what a legitimate file of its kind needs
NOT_CASES = ("MANIFEST.json", "README.md")  # and the make_*.py generators
IDX_NAMES = {"images": "t10k-images-idx3-ubyte", "labels": "t10k-labels-idx1-ubyte"}
PARTNER_COUNT = 3  # valid images/labels beside a hostile IDX file whose manifest entry names no count
REAL_COMMAND = ("import resource, runpy; resource.setrlimit(resource.RLIMIT_AS, ({0}, {0})); "
                "runpy.run_module('app.cli', run_name='__main__')").format(MEMORY_CAP)  # python -m app.cli, capped


def corpus_files(kind: str) -> tuple[list[Path], dict]:
    folder = CORPORA[kind]
    assert folder.is_dir(), f"the {kind} corpus folder {folder} is missing"
    manifest_path = folder / "MANIFEST.json"
    assert manifest_path.is_file(), f"{folder} has no MANIFEST.json"
    files = sorted(p for p in folder.iterdir() if p.name not in NOT_CASES and p.suffix != ".py"
                   and not p.name.startswith("."))
    assert files, f"the {kind} corpus {folder} holds no cases"
    return files, json.loads(manifest_path.read_text(encoding="utf-8"))


def _idx_role(path: Path, entry: dict) -> str:
    role = str(entry.get("role", ""))
    if role in IDX_NAMES:
        return role
    return "labels" if "label" in path.name or ".idx1" in path.name else "images"


def idx_folder(path: Path, entry: dict, folder: Path) -> Path:
    """A data folder with the hostile file in its role and a valid partner of the other role."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    role = _idx_role(path, entry)
    shutil.copyfile(path, folder / (IDX_NAMES[role] + (".gz" if path.name.endswith(".gz") else "")))
    count = entry.get("partner", PARTNER_COUNT)
    count = count if isinstance(count, int) and 0 <= count <= 1000 else PARTNER_COUNT
    if role == "images":
        write_idx(folder / (IDX_NAMES["labels"] + ".gz"), np.arange(count, dtype=np.uint8) % 10)
    else:
        write_idx(folder / (IDX_NAMES["images"] + ".gz"), np.zeros((count, 28, 28), dtype=np.uint8))
    return folder


def _commands(kind: str, path: Path, entry: dict, valid: dict, scratch: Path) -> list[list]:
    if kind == "weights":
        return [["inspect", path], ["evaluate", path, "--data-dir", valid["data"]]]
    if kind == "images":
        return [["predict", valid["weights"], path]]
    return [["evaluate", valid["weights"], "--data-dir", idx_folder(path, entry, scratch / path.name)]]


def _legitimate_peak(worker, kind: str, valid: dict) -> float:
    argv = {"weights": ["evaluate", valid["weights"], "--data-dir", valid["data"]],
            "images": ["predict", valid["weights"], valid["image"]],
            "idx": ["evaluate", valid["weights"], "--data-dir", valid["data"]]}[kind]
    outcome = worker.run("cli", *argv)
    assert outcome.exit == 0 and outcome.problem() is None, outcome
    return outcome.peak_mb


@pytest.mark.parametrize("kind", sorted(CORPORA))
def test_every_corpus_file_gets_one_line_or_loads_within_memory_and_time(kind, worker, workers, valid_files, tmp_path):
    files, manifest = corpus_files(kind)
    bound = MEMORY_FACTOR * _legitimate_peak(worker, kind, valid_files)
    cases = [(path, argv) for path in files
             for argv in _commands(kind, path, manifest.get(path.name, {}), valid_files, tmp_path)]
    outcomes = Worker.run_side_by_side(workers, [("cli", *argv) for _, argv in cases])
    problems, worst = [], None
    for (path, argv), outcome in zip(cases, outcomes):
        STATS.add(outcome, f"{kind} corpus {path.name}", path)
        worst = max(worst or (0.0, ""), (outcome.peak_mb, f"{path.name} ({argv[0]})"))
        problem = cli_problem(outcome, argv[0])
        if problem is None and outcome.peak_mb > bound:
            problem = (f"peak memory {outcome.peak_mb:.0f} MB, more than {bound:.0f} MB "
                       f"({MEMORY_FACTOR}× a real file)")
        if problem:
            problems.append(f"{path.name}: {problem}\n    reproduce: python -m app.cli {' '.join(map(str, argv))}")
    print(f"{kind} corpus: {len(files)} files; worst peak {worst[0]:.0f} MB ({worst[1]}); bound {bound:.0f} MB")
    assert not problems, f"{len(problems)} of the {kind} corpus's cases misbehave:\n" + "\n".join(problems)


@pytest.mark.parametrize("kind", sorted(CORPORA))
def test_python_m_app_cli_answers_as_the_harness_saw(kind, worker, valid_files, tmp_path):
    """The harness forks ``app.cli.main``; ``python -m app.cli`` itself (a sample) must answer the same."""
    files, manifest = corpus_files(kind)
    argvs = [[str(a) for a in _commands(kind, path, manifest.get(path.name, {}), valid_files, tmp_path)[0]]
             for path in files[:: max(1, len(files) // 3)][:3]]
    reals = [subprocess.Popen([sys.executable, "-c", REAL_COMMAND, *argv], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd=ROOT, env={**os.environ, **SINGLE_THREAD_ENV})
             for argv in argvs]  # all started at once: each is mostly Python starting up
    try:
        for argv, real in zip(argvs, reals):
            seen = worker.run("cli", *argv)
            _, stderr = real.communicate(timeout=CASE_SECONDS + 20)
            assert (real.returncode, stderr) == (seen.exit, seen.stderr), argv
            assert real.returncode in (0, 1) and "Traceback" not in stderr, stderr
    finally:
        for real in reals:
            if real.poll() is None:
                real.kill()
            real.communicate()
