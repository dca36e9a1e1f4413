"""Running a fuzz campaign in a time budget, judging each case, and keeping reproducers of the bad ones.

A campaign draws cases from a hypothesis strategy in chunks of ``CHUNK`` examples; chunk ``i`` uses
``@seed(base + i)``, so the cases of a run are the same every time (a faster machine only runs more
chunks). Generation only: no shrinking (a hang would be re-run for every shrink step); every bad case
is saved as a file instead, and the test fails once at the end listing each kind of problem. Given
several workers, a campaign keeps one case running on each while it draws the next.
"""
from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, seed, settings

from fuzz_worker import Outcome, Worker

SECONDS_ENV = "DIGITLAB_FUZZ_SECONDS"  # total for the budgeted fuzz tests (split between them)
SEED_ENV = "DIGITLAB_FUZZ_SEED"  # another seed explores other cases
FINDINGS_ENV = "DIGITLAB_FUZZ_FINDINGS"  # a folder to keep reproducers in (default: pytest's tmp folder)
DEFAULT_SECONDS = 12.0  # CI: with the corpus runs, tests/fuzz takes about 25 s (the issue allows 60)
CHUNK = 10  # examples per hypothesis run; a budget is checked between them too


def budget_seconds(share: float) -> float:
    return float(os.environ.get(SECONDS_ENV, DEFAULT_SECONDS)) * share


def base_seed() -> int:
    return int(os.environ.get(SEED_ENV, "0")) * 1_000_003


@dataclass
class Stats:
    """What the fuzz tests did, for the terminal summary."""

    cases: int = 0
    seconds: float = 0.0
    by_test: dict = field(default_factory=dict)  # campaign name -> (cases, seconds)
    worst_peak_mb: float = 0.0
    worst_case: str = ""
    keep: Path | None = None  # where a copy of the case with the worst peak memory is kept
    slowest: tuple[float, str] = (0.0, "")  # seconds, case

    def add(self, outcome: Outcome, label: str, case: Path) -> None:
        self.slowest = max(self.slowest, (outcome.seconds, f"{label}: {' '.join(outcome.args)}"))
        if outcome.peak_mb <= self.worst_peak_mb:
            return
        self.worst_peak_mb, self.worst_case = outcome.peak_mb, f"{label}: {' '.join(outcome.args)}"
        if self.keep is not None and case.is_file():
            self.keep.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(case, self.keep / "worst-peak-memory.case")
            self.worst_case += f" (kept as {self.keep / 'worst-peak-memory.case'})"


STATS = Stats()


def _unforeseen(text: str) -> str | None:
    """An exception no check foresaw, caught by a catch-all and worded as 'please report': a bug all the same."""
    line = next((line for line in text.splitlines() if "please report" in line), None)
    return f"an unforeseen exception, caught as 'please report': {line[:300]}" if line else None


def cli_problem(outcome: Outcome, command: str) -> str | None:
    """Why a ``digitlab`` run is not acceptable: any harness problem, a flood, raw escapes, a many-line error."""
    problem = outcome.problem() or _unforeseen(outcome.stderr)
    if problem:
        return problem
    err = outcome.stderr
    if err.startswith("[") and "bytes cut]" in err[:40]:
        return "flood: more than 64 KB on stderr"
    if "\x1b" in err:
        return "a raw terminal escape sequence reached stderr"
    if re.search(r"^\S+\.py:\d+: \w*Warning: ", err, flags=re.M):
        return "a Python warning reached the terminal: " + re.search(r"\w*Warning: .*", err).group(0)[:200]
    if outcome.exit == 1:
        lines = [line for line in err.splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith(f"digitlab {command}: error: ")]
        if len(errors) != 1 or lines[-1] != errors[0]:
            return f"the error is not one last line 'digitlab {command}: error: …': {err[-300:]!r}"
    return None


def direct_problem(outcome: Outcome) -> str | None:
    """Why a direct call (weights/idx/image target) is not acceptable: harness problems, a many-line message."""
    problem = outcome.problem() or _unforeseen(outcome.stdout)
    if problem:
        return problem
    if outcome.exit == 1 and len(outcome.stdout.strip().splitlines()) != 1:
        return f"the refusal is not one line: {outcome.stdout[:300]!r}"
    return None


class Findings:
    """Bad cases of one test: kept as files, grouped by kind of problem for the failure message."""

    def __init__(self, name: str, folder: Path) -> None:
        self.name = name
        self.folder = Path(os.environ.get(FINDINGS_ENV) or folder) / name
        self.groups: dict[str, list[str]] = {}

    def add(self, problem: str, case: Path, reproduce: str) -> None:
        key = re.sub(r"\d+", "#", re.sub(r"/\S+", "FILE", problem))[:160]
        n = sum(map(len, self.groups.values()))
        self.folder.mkdir(parents=True, exist_ok=True)
        kept = self.folder / f"{n:04d}-{case.name}"
        if case.is_dir():
            shutil.copytree(case, kept, dirs_exist_ok=True)
        else:
            shutil.copyfile(case, kept)
        again = reproduce.replace(str(case), str(kept))
        self.groups.setdefault(key, []).append(f"{problem[:300]}\n      reproduce: {again}")

    def __bool__(self) -> bool:
        return bool(self.groups)

    def report(self) -> str:
        lines = [f"{self.name}: {sum(map(len, self.groups.values()))} bad cases, kept in {self.folder}"]
        for key, cases in sorted(self.groups.items(), key=lambda kv: -len(kv[1])):
            lines.append(f"  [{len(cases)}×] {key}\n    e.g. {cases[0]}")
        return "\n".join(lines)


class _InFlight:
    """Cases sent to workers and not judged yet: at most one per worker, its slot."""

    def __init__(self, workers: list[Worker]) -> None:
        self.workers = workers
        self.judges: dict[int, object] = {}  # slot -> the case's run_case generator, waiting for its outcome

    def start(self, case, run_case) -> None:
        slot = self._free_slot()
        judge = run_case(case, slot)
        target, *args = next(judge)
        self.workers[slot].send(target, *args)
        self.judges[slot] = judge

    def finish(self) -> None:
        """Judges every case still in flight (the first error raised once all are judged)."""
        errors = []
        for slot in list(self.judges):
            try:
                self._judge(slot)
            except Exception as exc:  # noqa: BLE001 — re-raised below, after the other workers answered
                errors.append(exc)
        if errors:
            raise errors[0]

    def _free_slot(self) -> int:
        free = [slot for slot in range(len(self.workers)) if slot not in self.judges]
        if free:
            return free[0]
        answered = Worker.first_answered([self.workers[slot] for slot in self.judges])
        slot = self.workers.index(answered)
        self._judge(slot)
        return slot

    def _judge(self, slot: int) -> None:
        judge = self.judges.pop(slot)
        outcome = self.workers[slot].receive()
        try:
            judge.send(outcome)
        except StopIteration:
            return
        raise RuntimeError("run_case yielded a second request for one case")


def campaign(name: str, strategy, run_case, seconds: float, record: bool = True, max_cases: int | None = None,
             workers: list[Worker] | None = None) -> int:
    """Run ``run_case(case)`` on cases drawn from ``strategy`` for ``seconds``; the number of cases run.

    With ``workers``, ``run_case(case, slot)`` is a generator: it writes the case's files for ``slot`` (a
    number below ``len(workers)`` that no other case in flight has), yields one ``(target, *args)``
    request and is sent its Outcome to judge. Each case still runs alone in a forked child; the workers
    run theirs side by side while the next cases are drawn.
    """
    deadline = time.monotonic() + seconds
    start, count, chunk = time.monotonic(), 0, 0
    errors: list[Exception] = []  # raised past hypothesis, which would try to print a multi-megabyte example
    in_flight = _InFlight(workers) if workers else None
    while time.monotonic() < deadline and (max_cases is None or count < max_cases) and not errors:
        @seed(base_seed() + chunk)
        @settings(max_examples=CHUNK, database=None, derandomize=False, deadline=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(strategy)
        def one(case) -> None:
            nonlocal count
            if time.monotonic() < deadline and (max_cases is None or count < max_cases) and not errors:
                count += 1
                try:
                    if in_flight is None:
                        run_case(case)
                    else:
                        in_flight.start(case, run_case)
                except Exception as exc:  # noqa: BLE001 — a harness failure (the worker died…), re-raised below
                    errors.append(exc)

        one()
        chunk += 1
    if in_flight is not None:
        try:
            in_flight.finish()
        except Exception as exc:  # noqa: BLE001 — as above
            errors.append(exc)
    if errors:
        raise errors[0]
    elapsed = time.monotonic() - start
    if not record:
        return count
    STATS.cases += count
    STATS.seconds += elapsed
    STATS.by_test[name] = (count, elapsed)
    return count
