"""Keep the memory a training step frees for the next step, instead of handing it back to the system.

A training step allocates and frees the same few megabytes of temporaries every iteration. glibc's
``malloc`` gives large blocks straight back to the kernel (``mmap``/``munmap``, and trimming the
top of its heaps), so the next step's arrays start as untouched pages, each one a page fault the
kernel must zero. Its thresholds adapt only slowly: measured on full MNIST, a LeNet-style CNN
took about 1,000 page faults per step for its first 1,000 steps (13.4 s for an epoch that takes
10.0 s once the faults stop). Fixing the thresholds makes every step after the first reuse memory
the process already has; peak memory stays what the run needs (``bench/bench_memory.py``).

Process-wide and permanent, like any ``mallopt``; a no-op where glibc is not the C library.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import sys
import threading

MMAP_THRESHOLD = 32 << 20  # blocks this large or larger (a dataset, a big evaluation) still get their own mapping
TRIM_THRESHOLD = 64 << 20  # free memory kept at the top of a heap before any is given back
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # from glibc's <malloc.h>

_lock = threading.Lock()
_done: list[bool] = []  # [whether the thresholds were set], once per process


def keep_freed_memory() -> bool:
    """Set glibc's malloc thresholds once for this process (see the module doc); True when they were set."""
    with _lock:
        if not _done:
            _done.append(_set_thresholds())
        return _done[0]


def _set_thresholds() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other C libraries have no mallopt
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    # mallopt returns 1 on success, 0 on error
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
