"""The fuzz harness itself: it catches what it claims to catch, and a run's cases are the same every time."""
from __future__ import annotations

import pickle
import pickletools
import subprocess
import sys

import pytest

from fuzz_campaign import campaign, cli_problem, direct_problem
from fuzz_pickles import call, pickle_streams
from fuzz_worker import Outcome


@pytest.mark.parametrize("how, problem", [
    ("segfault", "killed by signal SIGSEGV"),
    ("hang", "hang: still running after 1 s"),
    ("allocate", "MemoryError"),
    ("spawn", "tried to run something: fuzz harness: the case tried os.system"),
])
def test_the_harness_reports_crashes_hangs_memory_bombs_and_programs(worker, how, problem):
    outcome = worker.run("misbehave", how, seconds=1.0)
    assert problem in (outcome.problem() or ""), outcome
    assert outcome.seconds < 5


def test_a_load_and_a_one_line_refusal_are_safe_outcomes(worker, valid_files, tmp_path):
    loaded = worker.run("weights", valid_files["weights"])
    assert (loaded.exit, loaded.problem()) == (0, None), loaded
    assert "784-8-10 MLP" in loaded.stdout
    payload = tmp_path / "payload.pkl"
    payload.write_bytes(b"cos\nsystem\n(S'touch /tmp/never'\ntR.")
    refused = worker.run("cli", "inspect", payload)
    assert (refused.exit, cli_problem(refused, "inspect")) == (1, None), refused
    assert refused.stderr.startswith(f"digitlab inspect: error: {payload}")


def _outcome(exit_code: int, stderr: str) -> Outcome:
    return Outcome("cli", [], exit_code, None, False, 0.1, 50.0, "", stderr)


@pytest.mark.parametrize("stderr, problem", [
    ("digitlab inspect: error: f.pkl: bad\nmore words\n", "is not one last line"),
    ("digitlab inspect: error: a\ndigitlab inspect: error: b\n", "is not one last line"),
    ("Traceback (most recent call last):\n  File \"x.py\", line 3, in f\nValueError: no\n", "ValueError: no"),
    ("digitlab inspect: error: key \x1b[2J\n", "raw terminal escape"),
    ("[70000 bytes cut]digitlab inspect: error: x\n", "flood"),
    ("/x/y.py:3: RuntimeWarning: overflow\n  z = a * b\ndigitlab inspect: error: x\n", "Python warning"),
    ("digitlab inspect: error: f.pkl: cannot be used (KeyError: 3); please report this\n", "unforeseen exception"),
])
def test_the_command_checks_flag_what_a_person_should_never_see(stderr, problem):
    assert problem in (cli_problem(_outcome(1, stderr), "inspect") or "")
    assert cli_problem(_outcome(1, "digitlab inspect: error: f.pkl: the file is empty\n"), "inspect") is None


def test_a_campaign_draws_the_same_cases_every_run(marker_dir):
    runs = []
    for _ in range(2):
        drawn = []
        campaign("reproducibility check", pickle_streams(str(marker_dir)), drawn.append, 30.0, record=False,
                 max_cases=25)
        runs.append(drawn)
    assert len(runs[0]) == 25 and runs[0] == runs[1]
    assert len(set(runs[0])) > 20  # and they are not all alike


def _opcode_names(data: bytes) -> set[str]:
    names = set()
    try:
        for op, _arg, _pos in pickletools.genops(data):
            names.add(op.name)
    except Exception:  # noqa: BLE001 — a stream may be cut or broken on purpose: count what parses
        pass
    return names


def test_the_generated_pickles_use_the_opcodes_and_names_they_should():
    drawn = []
    campaign("opcode coverage check", pickle_streams("/nonexistent"), drawn.append, 30.0, record=False, max_cases=80)
    used = set().union(*map(_opcode_names, drawn))
    assert {"PROTO", "FRAME", "MARK", "TUPLE", "TUPLE1", "LIST", "DICT", "EMPTY_DICT", "APPENDS", "SETITEM", "SETITEMS",
            "GLOBAL", "STACK_GLOBAL", "REDUCE", "BUILD", "NEWOBJ", "BINPUT", "BINGET", "MEMOIZE", "SHORT_BINBYTES",
            "SHORT_BINUNICODE", "BININT", "BINFLOAT", "LONG1", "NONE", "NEWTRUE", "STOP"} <= used
    text = b"".join(drawn)
    for name in (b"_reconstruct", b"OrderedDict", b"system", b"eval", b"TwoLayerNet", b"_reconstructor"):
        assert name in text, name


def test_the_pickle_payloads_are_live_so_an_empty_marker_folder_means_something(worker, tmp_path):
    """Real ``pickle.load`` runs the grammar's payloads and leaves marker files; DigitLab leaves none."""
    marker = tmp_path / "markers"
    marker.mkdir()
    payloads = {"os-system": ("os", "system"), "eval": ("builtins", "eval")}
    texts = {"os-system": f"touch {marker}/os-system", "eval": f"open({str(marker)!r} + '/eval', 'w').close()"}
    for name, (module, attr) in payloads.items():
        case = tmp_path / f"{name}.pkl"
        case.write_bytes(pickle.PROTO + b"\x02" + bytes(call(module, attr, texts[name])) + pickle.STOP)
        refused = worker.run("weights", case)
        assert (refused.exit, direct_problem(refused)) == (1, None), refused
        assert not (marker / name).exists()
        subprocess.run([sys.executable, "-c", "import pickle, sys; pickle.load(open(sys.argv[1], 'rb'))", case],
                       check=True, capture_output=True, timeout=60)
        assert (marker / name).exists()
