"""Keep NumPy's BLAS to one thread while the window trains.

The networks trained here are small (batches of ~100×784 times 784×100): OpenBLAS's extra
threads win little on such matrices but spin on every core, so the training thread, the GUI
thread and the BLAS helpers fight over a laptop's few cores (on a 2-core machine one BLAS
thread trained several times faster and kept the event loop responsive). threadpoolctl
finds and sets whichever BLAS NumPy loaded. A user's own OPENBLAS_NUM_THREADS/OMP_NUM_THREADS wins.
"""
from __future__ import annotations

import os

from threadpoolctl import threadpool_limits

_limiter = None  # keeps the limit in force for the life of the process


def limit_blas_threads(threads: int = 1) -> bool:
    """Set the BLAS thread count unless the user chose one; True if it was set."""
    global _limiter
    if os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS"):
        return False
    _limiter = threadpool_limits(limits=int(threads), user_api="blas")
    return True
