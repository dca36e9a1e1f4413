"""One BLAS thread while a convolution runs its many small matrix products.

A convolution multiplies a chunk of a few images at a time (``engine.nn.im2col``): a fraction of a
millisecond per product. OpenBLAS splits each one over all its threads, which meet at the end of
every product; when anything else wants the same cores (another program, the GUI, PyTorch), a
thread that is not running stalls the others: a LeNet training step that took 15 ms on one thread
took 104 ms on two on a busy 2-core machine. So convolutions set the BLAS thread count (which is
process-wide) to one while they run, through threadpoolctl, and put it back when the last
convolution running in any thread is done; affine layers keep the count the process chose.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager

_lock = threading.Lock()
_libs: list = []  # [threadpoolctl's controllers of the BLAS libraries NumPy loaded], looked up once
_running = 0  # convolutions inside one_thread(), in all threads
_saved: list[int] = []  # the thread counts to restore when the last one leaves


def _blas_libraries() -> list:
    if not _libs:
        try:
            from threadpoolctl import ThreadpoolController

            _libs.append(ThreadpoolController().select(user_api="blas").lib_controllers)
        except (ImportError, OSError, AttributeError):  # no threadpoolctl, or a library it cannot read: leave BLAS be
            _libs.append([])
    return _libs[0]


@contextmanager
def one_thread():
    """Within the block, BLAS runs on one thread (shared, counted, by every thread inside such a block)."""
    global _running, _saved
    with _lock:
        libs = _blas_libraries()
        if _running == 0:
            _saved = [lib.get_num_threads() for lib in libs]
            for lib in libs:
                lib.set_num_threads(1)
        _running += 1
    try:
        yield
    finally:
        with _lock:
            _running -= 1
            if _running == 0:
                for lib, threads in zip(libs, _saved):
                    lib.set_num_threads(threads)
