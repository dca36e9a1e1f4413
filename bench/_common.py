"""What the bench scripts share: the BLAS thread count they run with, and running a child process for its peak memory.

The scripts are run as ``python bench/<name>.py``, so this folder is on ``sys.path`` and ``import _common`` works.
"""
from __future__ import annotations

import os
import subprocess
import tempfile


def blas_threads() -> int:
    """Threads NumPy's BLAS uses (OpenBLAS honours these variables); default: all cores."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        if os.environ.get(var):
            return int(os.environ[var])
    return os.cpu_count() or 1


def run_child(argv: list[str]) -> tuple[str, float]:
    """(stdout, peak RSS in MB) of a child process; raises RuntimeError with the end of its stderr when it fails."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        child = subprocess.Popen(argv, stdout=out, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)  # the rusage of this child alone
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if child.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[:4])}… failed ({child.returncode}): {err.read().decode()[-2000:]}")
        return out.read().decode(), usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux
