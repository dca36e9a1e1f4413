"""Fuzzing every reader: generated pickles and mutated real files, each opened in a forked child under limits.

Each case must load or be refused with one line: never a signal, a hang past its time limit, a
traceback or a program started, and the payloads in generated pickles (which would create files in a
marker folder) must never run. ``DIGITLAB_FUZZ_SECONDS`` sets the total budget of these tests (default
20 s), ``DIGITLAB_FUZZ_SEED`` explores other cases, ``DIGITLAB_FUZZ_FINDINGS`` keeps bad cases there.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import strategies as st

from fuzz_campaign import STATS, Findings, budget_seconds, campaign, cli_problem, direct_problem
from fuzz_inputs import mutated_files
from fuzz_pickles import pickle_streams

SHARES = {"pickles": 0.3, "weights": 0.25, "idx": 0.1, "images": 0.1, "cli": 0.25}  # of the budget
SETUP_SECONDS = 120  # on top of a test's budget before pytest-timeout stops it (worker start, one slow case)


def within_budget(share: str):
    return pytest.mark.timeout(budget_seconds(SHARES[share]) + SETUP_SECONDS)
COUNTERPART = {"images": "t10k-labels-idx1-ubyte.gz", "labels": "t10k-images-idx3-ubyte.gz"}


def _suffix(seed_name: str) -> str:
    return "".join(Path(seed_name).suffixes) or ".bin"


def _idx_folder(folder: Path, seed_name: str, data: bytes, seeds: dict) -> Path:
    """A data folder holding the mutated IDX file under its seed's name and a valid file of the other role."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    (folder / seed_name).write_bytes(data)
    other = COUNTERPART["images" if "images" in seed_name else "labels"]
    (folder / other).write_bytes(seeds["idx"][other])
    return folder


@pytest.fixture
def no_payload_ran(marker_dir):
    yield
    assert not list(marker_dir.iterdir()), "a payload from a fuzzed file ran: it created a marker file"


def _judge(name: str, outcome, findings: Findings, case: Path, reproduce: str) -> None:
    STATS.add(outcome, name, case)
    problem = direct_problem(outcome)
    if problem:
        findings.add(problem, case, reproduce)


# Each ``run(case, slot)`` below writes its case under a name of its own ``slot`` (``campaign`` keeps one case in
# flight per worker), yields the request for a worker and judges the outcome it is sent back.

@within_budget("pickles")
def test_generated_pickle_streams_load_or_are_refused_in_one_line(workers, fuzz_home, marker_dir, tmp_path,
                                                                  no_payload_ran):
    findings = Findings("pickle-streams", fuzz_home / "findings")

    def run(data: bytes, slot: int):
        case = tmp_path / f"case{slot}.pkl"
        case.write_bytes(data)
        outcome = yield "weights", case
        _judge("generated pickle", outcome, findings, case, reproduce=f"python -m app.cli inspect {case}")

    assert campaign("pickle opcode streams", pickle_streams(str(marker_dir)), run, budget_seconds(SHARES["pickles"]),
                    workers=workers)
    assert not findings, findings.report()


@within_budget("weights")
def test_mutated_weight_files_load_or_are_refused_in_one_line(workers, fuzz_home, seeds, tmp_path, no_payload_ran):
    findings = Findings("weight-mutations", fuzz_home / "findings")

    def run(case_data, slot: int):
        seed_name, data = case_data
        case = tmp_path / f"case{slot}{_suffix(seed_name)}"
        case.write_bytes(data)
        outcome = yield "weights", case
        _judge(f"mutated {seed_name}", outcome, findings, case, reproduce=f"python -m app.cli inspect {case}")

    assert campaign("weight file mutations", mutated_files(seeds["weights"]), run, budget_seconds(SHARES["weights"]),
                    workers=workers)
    assert not findings, findings.report()


@within_budget("idx")
def test_mutated_idx_files_load_or_are_refused_in_one_line(workers, fuzz_home, seeds, valid_files, tmp_path):
    findings = Findings("idx-mutations", fuzz_home / "findings")

    def run(case_data, slot: int):
        seed_name, data = case_data
        folder = _idx_folder(tmp_path / f"data{slot}", seed_name, data, seeds)
        outcome = yield "idx", folder / seed_name, folder
        STATS.add(outcome, f"mutated {seed_name}", folder / seed_name)
        problem = direct_problem(outcome)
        if problem:
            findings.add(problem, folder, f"python -m app.cli evaluate {valid_files['weights']} --data-dir {folder}")

    assert campaign("IDX mutations", mutated_files(seeds["idx"]), run, budget_seconds(SHARES["idx"]), workers=workers)
    assert not findings, findings.report()


@within_budget("images")
def test_mutated_images_load_or_are_refused_in_one_line(workers, fuzz_home, seeds, valid_files, tmp_path):
    findings = Findings("image-mutations", fuzz_home / "findings")

    def run(case_data, slot: int):
        seed_name, data = case_data
        case = tmp_path / f"case{slot}{_suffix(seed_name)}"
        case.write_bytes(data)
        outcome = yield "image", case
        _judge(f"mutated {seed_name}", outcome, findings, case,
               reproduce=f"python -m app.cli predict {valid_files['weights']} {case}")

    assert campaign("image mutations", mutated_files(seeds["image"]), run, budget_seconds(SHARES["images"]),
                    workers=workers)
    assert not findings, findings.report()


@within_budget("cli")
def test_the_digitlab_command_answers_fuzzed_files_with_one_line(workers, fuzz_home, seeds, valid_files, marker_dir,
                                                                 tmp_path, no_payload_ran):
    """A sample of every kind through the real sub-commands: exit 0 or 1, one error line, nothing raw."""
    findings = Findings("cli", fuzz_home / "findings")
    weights = st.one_of(pickle_streams(str(marker_dir)).map(lambda data: ("generated.pkl", data)),
                        mutated_files(seeds["weights"]))
    cases = st.one_of(st.tuples(st.sampled_from(["inspect", "predict", "evaluate"]), weights),
                      st.tuples(st.just("predict-image"), mutated_files(seeds["image"])),
                      st.tuples(st.just("evaluate-data"), mutated_files(seeds["idx"])))

    def run(drawn, slot: int):
        how, (seed_name, data) = drawn
        case = tmp_path / f"case{slot}{_suffix(seed_name)}"
        if how == "evaluate-data":
            case = _idx_folder(tmp_path / f"data{slot}", seed_name, data, seeds)
        else:
            case.write_bytes(data)
        argv = {"inspect": ["inspect", case], "predict": ["predict", case, valid_files["image"]],
                "evaluate": ["evaluate", case, "--data-dir", valid_files["data"]],
                "predict-image": ["predict", valid_files["weights"], case],
                "evaluate-data": ["evaluate", valid_files["weights"], "--data-dir", case]}[how]
        outcome = yield "cli", *argv
        STATS.add(outcome, f"digitlab {how} on mutated {seed_name}", case)
        problem = cli_problem(outcome, argv[0])
        if problem:
            findings.add(problem, case, "python -m app.cli " + " ".join(map(str, argv)))

    assert campaign("digitlab sub-commands", cases, run, budget_seconds(SHARES["cli"]), workers=workers)
    assert not findings, findings.report()
