"""Fixtures of the fuzz harness: one worker process for the session, the seed files, a folder nothing may write to."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from fuzz_campaign import STATS
from fuzz_inputs import make_seeds
from fuzz_worker import SINGLE_THREAD_ENV, Worker

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def fuzz_home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("fuzz")
    STATS.keep = home / "worst"
    return home


@pytest.fixture(scope="session")
def marker_dir(fuzz_home) -> Path:
    """Payloads in the generated pickles would create files here if anything from a file ever ran."""
    folder = fuzz_home / "markers"
    folder.mkdir()
    return folder


def _worker(home: Path) -> Worker:
    home.mkdir()
    env = {**os.environ, **SINGLE_THREAD_ENV, "PYTHONPATH": os.pathsep.join(filter(None, [
        str(ROOT), os.environ.get("PYTHONPATH")])), "DIGITLAB_CACHE_DIR": str(home / "cache"),
        "DIGITLAB_CONFIG_DIR": str(home / "config")}
    return Worker(home, env, wait=False)


@pytest.fixture(scope="session")
def workers(fuzz_home):
    """Two worker processes, started side by side: long lists of cases run on both (``Worker.run_side_by_side``)."""
    running = [_worker(fuzz_home / "worker"), _worker(fuzz_home / "worker-2")]
    try:
        for each in running:
            each.wait_started()
        yield running
    finally:
        for each in running:
            each.close()


@pytest.fixture(scope="session")
def worker(workers):
    """The worker most tests send their cases to, one at a time."""
    return workers[0]


@pytest.fixture(scope="session")
def seeds(fuzz_home) -> dict[str, dict[str, bytes]]:
    return make_seeds(fuzz_home / "seeds")


@pytest.fixture(scope="session")
def valid_files(fuzz_home, seeds) -> dict[str, Path]:
    """A legitimate weight file, picture and data folder to pair a fuzzed file with."""
    folder = fuzz_home / "valid"
    (folder / "data").mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (folder / "data" / name).write_bytes(seeds["idx"][name])
    (folder / "mlp.npz").write_bytes(seeds["weights"]["mlp.npz"])
    (folder / "digit.png").write_bytes(seeds["image"]["digit.png"])
    return {"weights": folder / "mlp.npz", "image": folder / "digit.png", "data": folder / "data"}


def pytest_terminal_summary(terminalreporter):
    if not STATS.by_test and not STATS.worst_case:
        return
    write = terminalreporter.write_line
    if STATS.by_test:
        rate = STATS.cases / STATS.seconds if STATS.seconds else 0.0
        write(f"fuzz harness: {STATS.cases} generated cases in {STATS.seconds:.1f} s ({rate:.0f} cases/s)")
    for name, (count, seconds) in STATS.by_test.items():
        write(f"  {name}: {count} cases in {seconds:.1f} s ({count / max(seconds, 1e-9):.0f}/s)")
    if STATS.worst_case:
        write(f"  worst peak memory of a case: {STATS.worst_peak_mb:.0f} MB ({STATS.worst_case})")
        write(f"  slowest case: {STATS.slowest[0]:.2f} s ({STATS.slowest[1]})")
