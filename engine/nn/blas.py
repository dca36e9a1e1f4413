"""One BLAS thread while a convolution runs its many small matrix products, on worker threads of its own.

A convolution multiplies a chunk of a few images at a time (``engine.nn.im2col``): a fraction of a
millisecond per product. OpenBLAS splits each one over all its threads, which meet at the end of
every product; when anything else wants the same cores (another program, the GUI, PyTorch), a
thread that is not running stalls the others: a LeNet training step that took 15 ms on one thread
took 104 ms on two on a busy 2-core machine. So convolutions set the BLAS thread count (which is
process-wide) to one while they run, through threadpoolctl, and put it back when the last
convolution running in any thread is done. They split their images among the worker threads here
(``in_parallel``) instead.

A network whose convolutions go that way trains its whole step on one BLAS thread (``Network.gradient``,
``engine.nn.conv_pool.uses_workers``): OpenBLAS's threads, woken by an affine product between two
convolutions, spin on after it and take a core from the workers. Its large affine products are
shared out over the same workers meanwhile (``single``, ``together``); other networks' affine
layers keep the BLAS thread count the process chose.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

WORKERS = max(1, min(4, os.cpu_count() or 1))  # threads sharing a convolution's images or an affine layer's products
_pool: list[ThreadPoolExecutor] = []  # made on first use, shared by every layer of this process
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


def single() -> bool:
    """Whether BLAS is on one thread because some thread is inside ``one_thread()`` (then layers share out work)."""
    return _running > 0


def _workers() -> ThreadPoolExecutor:
    with _lock:
        if not _pool:
            _pool.append(ThreadPoolExecutor(WORKERS, thread_name_prefix="nn"))
    return _pool[0]


def in_parallel(work, n: int, images: int) -> list:
    """``work(first, end)`` over ``WORKERS`` contiguous parts of a batch of ``n`` (in this thread when small).

    NumPy lets go of the GIL while it copies and multiplies, so each thread keeps one core busy with
    its own chunks and its own scratch; run it inside ``one_thread()``, so that BLAS does not split them again.
    """
    parts = min(WORKERS, -(-n // images))  # no more parts than chunks
    if parts <= 1:
        return [work(0, n)]
    step = -(-n // parts)
    futures = [_workers().submit(work, i, min(n, i + step)) for i in range(step, n, step)]
    return [work(0, min(n, step))] + [f.result() for f in futures]


def together(*calls) -> None:
    """Run the callables ``calls`` at once, the first in this thread, the others on the worker threads."""
    futures = [_workers().submit(call) for call in calls[1:]]
    calls[0]()
    for future in futures:
        future.result()
