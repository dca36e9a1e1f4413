"""Keep NumPy's BLAS to one thread while the window trains.

The networks trained here are small (batches of ~100×784 times 784×100): OpenBLAS's extra
threads win little on such matrices but spin on every core, so the training thread, the GUI
thread and the BLAS helpers fight over a laptop's few cores. Measured on a 2-core machine:
one BLAS thread trains 3-5× faster and keeps the event loop responsive. Best effort: a user's
own OPENBLAS_NUM_THREADS wins, and a NumPy without OpenBLAS is left alone.
"""
from __future__ import annotations

import ctypes
import logging
import os

log = logging.getLogger(__name__)

_SETTERS = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads", "openblas_set_num_threads64_",
            "openblas_set_num_threads")


def _openblas_libraries() -> list[str]:
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as f:
            maps = f.read()
    except OSError:  # not Linux: nothing to find this way
        return []
    return sorted({line.split()[-1] for line in maps.splitlines() if "openblas" in line.lower() and "/" in line})


def limit_blas_threads(threads: int = 1) -> bool:
    """Set OpenBLAS's thread count unless the user chose one; True if it was set."""
    if os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS"):
        return False
    import numpy  # noqa: F401  (loads the BLAS library so it can be found)

    for path in _openblas_libraries():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in _SETTERS:
            setter = getattr(lib, name, None)
            if setter is not None:
                setter(ctypes.c_int(int(threads)))
                log.debug("BLAS threads set to %d via %s in %s", threads, name, path)
                return True
    return False
