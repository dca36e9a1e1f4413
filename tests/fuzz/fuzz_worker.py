"""The fuzz harness's worker: imports DigitLab once, then opens each case in a forked child under limits.

Run as a script (``python tests/fuzz/fuzz_worker.py``), it answers one JSON line on stdout for each JSON
request line on stdin. Per case it ``os.fork()``s a child that caps its address space, CPU time and file
sizes, refuses to start programs or open sockets (an audit hook), sends its stdout/stderr to files and
runs one target:

* ``weights`` — ``inspect_weights`` then ``load_weights`` and a forward pass on a few digits;
* ``idx`` — ``read_idx`` on the file, then ``load_data_dir`` on its folder when one is given;
* ``image`` — ``engine.data.images.load_image``;
* ``cli`` — ``app.cli.main(argv)``, the ``digitlab`` command itself;
* ``misbehave`` — crash, hang, allocate or spawn on purpose, to show the harness catches it.

The child exits 0 (loaded), 1 (refused with a DigitLabError, message on stdout), 2 (any other exception,
traceback on stderr) or 3 (it tried to start a program or open a socket). The worker answers with the
exit status or signal, wall time, the child's peak RSS and what it wrote. The ``Worker`` class is the
pytest side: it starts this script and sends it cases.
"""
from __future__ import annotations

import json
import os
import re
import resource
import select
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

MEMORY_CAP = 2 << 30  # address space of a case: a real evaluate on MNIST's 70,000 digits maps up to ~1.5 GB
CASE_SECONDS = 10.0  # wall-clock limit of one case; real files load in well under a second
FILE_SIZE_CAP = 256 << 20  # a case may write the dataset cache (~20 MB), never gigabytes
OUTPUT_KEEP = 64 << 10  # bytes of a case's stdout/stderr sent back (enough to see a flood, not to store it)
EXIT_LOADED, EXIT_REFUSED, EXIT_CRASHED, EXIT_RAN_SOMETHING = 0, 1, 2, 3
RUNS_SOMETHING = {"os.system", "os.exec", "os.posix_spawn", "os.spawn", "subprocess.Popen", "os.fork",
                  "os.forkpty", "pty.spawn", "socket.connect", "socket.bind", "webbrowser.open"}
SINGLE_THREAD_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


# ----------------------------------------------------------------------------- the pytest side

@dataclass
class Outcome:
    """What one case did: exit code or signal, time, peak memory and output."""

    target: str
    args: list
    exit: int | None
    signal: int | None
    timed_out: bool
    seconds: float
    peak_mb: float
    stdout: str
    stderr: str

    def problem(self) -> str | None:
        """Why this outcome is not safe (None when it is): a crash, a hang, a traceback, a program run."""
        if self.timed_out:
            return f"hang: still running after {self.seconds:.0f} s"
        if self.signal is not None:
            return f"killed by signal {signal.Signals(self.signal).name}"
        if self.exit == EXIT_RAN_SOMETHING:
            return "tried to run something: " + self.stderr.strip().splitlines()[-1]
        if self.exit == EXIT_CRASHED or "Traceback (most recent call last)" in self.stderr:
            return f"exit {self.exit}, {_last_line(self.stderr) or '(nothing on stderr)'}{_where(self.stderr)}"
        if self.exit not in (EXIT_LOADED, EXIT_REFUSED):
            return f"exit code {self.exit}"
        return None


def _where(text: str) -> str:
    """' at FILE:LINE in FUNCTION' of a traceback's innermost frame in the project (or '')."""
    frames = re.findall(r'File "([^"]+)", line (\d+), in (\S+)', text)
    ours = [f for f in frames if "/site-packages/" not in f[0] and "/lib/python" not in f[0]] or frames
    if not ours:
        return ""
    path, line, function = ours[-1]
    return f" (at {'/'.join(Path(path).parts[-3:])}:{line} in {function})"


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


class Worker:
    """A running fuzz_worker.py; ``run(target, *args)`` opens one case in a fresh forked child."""

    def __init__(self, workdir: Path, env: dict[str, str], wait: bool = True) -> None:
        self.workdir = workdir
        self.log = open(workdir / "worker.log", "wb")
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve())], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.log, cwd=workdir, env=env)
        self._buffer = b""
        self._seconds = CASE_SECONDS
        self.info: dict | None = None
        if wait:
            self.wait_started()

    def wait_started(self) -> None:
        """Waits for the worker's first line (``Worker(..., wait=False)`` lets several start side by side)."""
        try:
            self.info = self._answer(60.0)  # the imports, the probe digits, the memory it starts from
        except RuntimeError:
            self.proc.kill()
            self.close()
            raise RuntimeError("the fuzz worker did not start:\n" + _tail(Path(self.log.name))[-2000:]) from None

    def run(self, target: str, *args, seconds: float = CASE_SECONDS) -> Outcome:
        self.send(target, *args, seconds=seconds)
        return self.receive()

    def send(self, target: str, *args, seconds: float = CASE_SECONDS) -> None:
        """Starts one case; ``receive`` waits for its outcome (one case at a time per worker)."""
        request = {"target": target, "args": [str(a) for a in args], "seconds": seconds}
        self.proc.stdin.write((json.dumps(request) + "\n").encode())
        self.proc.stdin.flush()
        self._seconds = seconds

    def receive(self) -> Outcome:
        return Outcome(**self._answer(self._seconds + 30.0))

    def answered(self, timeout: float) -> bool:
        """True once the case sent has an answer waiting (False after ``timeout`` s without one)."""
        return b"\n" in self._buffer or bool(select.select([self.proc.stdout.fileno()], [], [], timeout)[0])

    def _answer(self, timeout: float) -> dict:
        fd = self.proc.stdout.fileno()
        end = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = end - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise RuntimeError(f"the fuzz worker did not answer within {timeout:.0f} s")
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                raise RuntimeError(f"the fuzz worker died (exit {self.proc.wait()}); see {self.log.name}")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    @staticmethod
    def first_answered(busy: list["Worker"]) -> "Worker":
        """The first of ``busy`` (each with a case sent) to answer, waiting for one if need be."""
        ready = [w for w in busy if w.answered(0.0)]
        if not ready:  # none in time: the first one's receive() then says it did not answer
            select.select([w.proc.stdout.fileno() for w in busy], [], [], CASE_SECONDS + 30.0)
            ready = [w for w in busy if w.answered(0.0)] or busy[:1]
        return ready[0]

    @staticmethod
    def run_side_by_side(workers: list["Worker"], cases: list[tuple]) -> list[Outcome]:
        """The outcome of each ``(target, *args)`` case, in order; each worker runs one case at a time, all at once.

        Every case is still a fresh forked child under the same limits: only the waiting is shared.
        """
        outcomes: list[Outcome | None] = [None] * len(cases)
        waiting = list(enumerate(cases))[::-1]
        busy: dict[Worker, int] = {}
        while waiting or busy:
            for worker in workers:
                if worker not in busy and waiting:
                    i, (target, *args) = waiting.pop()
                    worker.send(target, *args)
                    busy[worker] = i
            answered = Worker.first_answered(list(busy))
            outcomes[busy.pop(answered)] = answered.receive()
        return outcomes

    def close(self) -> None:
        for pipe in (self.proc.stdin, self.proc.stdout):
            try:
                pipe.close()
            except BrokenPipeError:  # the worker is gone already
                pass
        self.proc.wait(timeout=30)
        self.log.close()


# ----------------------------------------------------------------------------- the worker process

def _vm_kb(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _guard(event: str, args) -> None:
    if event in RUNS_SOMETHING:
        os.write(2, f"fuzz harness: the case tried {event} {str(args)[:200]}\n".encode())
        os._exit(EXIT_RAN_SOMETHING)


def _target_weights(path: str, probe) -> str:
    from engine.weightfiles.recognise import inspect_weights, load_weights

    info = inspect_weights(path, probe=probe)
    loaded = load_weights(path, probe=probe)
    if probe is not None:
        loaded.network.predict(probe[0][:5])
    return f"inspect recognised={info.get('recognised')}; loaded {loaded.architecture}"


def _target_idx(path: str, folder: str | None = None) -> str:
    from engine.data.catalog import load_data_dir
    from engine.data.idx import read_idx

    array = read_idx(path)
    text = f"read {array.dtype} {array.shape}"
    if folder:
        ds = load_data_dir(folder)
        text += f"; dataset of {len(ds.x_test)} test images"
    return text


def _target_image(path: str) -> str:
    from engine.data.images import load_image

    image = load_image(path)
    return f"image {image.shape} {image.dtype}"


def _misbehave(how: str) -> str:
    """What the harness must catch, done on purpose (its own tests use these)."""
    if how == "segfault":
        import ctypes

        ctypes.string_at(0)
    elif how == "hang":
        while True:
            pass
    elif how == "allocate":
        return str(len(bytearray(MEMORY_CAP)))
    elif how == "spawn":
        os.system("true")
    return "behaved"


def _run_case(request: dict, probe) -> int:
    from app.cli import main as cli_main
    from engine.errors import DigitLabError

    target, args = request["target"], request["args"]
    try:
        if target == "cli":
            code = cli_main(args)
            return code if isinstance(code, int) else EXIT_CRASHED
        result = {"weights": lambda: _target_weights(args[0], probe), "idx": lambda: _target_idx(*args),
                  "image": lambda: _target_image(args[0]), "misbehave": lambda: _misbehave(args[0])}[target]()
        print(result)
        return EXIT_LOADED
    except DigitLabError as exc:
        print(f"refused: {exc}")
        return EXIT_REFUSED
    except SystemExit as exc:  # argparse
        return exc.code if isinstance(exc.code, int) else EXIT_CRASHED
    except BaseException:  # noqa: BLE001 — any other exception is the finding; show it
        traceback.print_exc()
        return EXIT_CRASHED


def _child(request: dict, probe, out_path: Path, err_path: Path) -> None:
    code = EXIT_CRASHED
    try:
        for fd, path in ((1, out_path), (2, err_path)):
            os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), fd)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))
        cpu = int(request["seconds"]) + 2
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_CAP, FILE_SIZE_CAP))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        sys.addaudithook(_guard)
        code = _run_case(request, probe)
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def _tail(path: Path) -> str:
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - OUTPUT_KEEP))
        text = f.read().decode("utf-8", "replace")
    return text if size <= OUTPUT_KEEP else f"[{size - OUTPUT_KEEP} bytes cut]" + text


def _run_one(request: dict, probe, scratch: Path) -> dict:
    out_path, err_path = scratch / "case.stdout", scratch / "case.stderr"
    sys.stdout.flush()
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        _child(request, probe, out_path, err_path)
    pidfd = os.pidfd_open(pid)
    try:
        timed_out = not select.select([pidfd], [], [], request["seconds"])[0]
        if timed_out:
            os.kill(pid, signal.SIGKILL)
        _, status, usage = os.wait4(pid, 0)
    finally:
        os.close(pidfd)
    seconds = time.monotonic() - start
    return {"target": request["target"], "args": request["args"], "timed_out": timed_out, "seconds": seconds,
            "exit": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
            "signal": None if timed_out or not os.WIFSIGNALED(status) else os.WTERMSIG(status),
            "peak_mb": usage.ru_maxrss / 1024, "stdout": _tail(out_path), "stderr": _tail(err_path)}


def main() -> None:
    import importlib

    for name in ("numpy", "app.cli", "engine.weightfiles.recognise"):
        importlib.import_module(name)  # imported once here, shared by every forked case
    from engine.data.catalog import load_dataset, sample_available
    from PIL import Image

    Image.init()  # Pillow imports its format plugins lazily; once here, not in every case
    probe = None
    if sample_available():  # also fills the dataset cache, so `digitlab inspect` in a case reads it from there
        ds = load_dataset("mnist-sample")
        probe = (ds.x_test[:200], ds.t_test[:200])
    scratch = Path.cwd()
    answer = sys.stdout
    answer.write(json.dumps({"pid": os.getpid(), "vm_mb": _vm_kb("VmSize") / 1024, "rss_mb": _vm_kb("VmRSS") / 1024,
                             "memory_cap_mb": MEMORY_CAP >> 20, "probe": probe is not None}) + "\n")
    answer.flush()
    for line in sys.stdin:
        if line.strip():
            answer.write(json.dumps(_run_one(json.loads(line), probe, scratch)) + "\n")
            answer.flush()


if __name__ == "__main__":
    main()
