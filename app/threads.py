"""Run a plain function on a QThread (``moveToThread``) and get its progress, result or error as signals.

Modelled on superqt's ``thread_worker``: the function receives a ``TaskContext``
with ``report(obj)`` (emitted as ``progress`` on the GUI thread) and ``cancelled``
(a ``threading.Event`` set by ``cancel()``). Errors come back through ``failed``, never silently.
"""
from __future__ import annotations

import logging
import threading
import traceback
from typing import Any, Callable

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

log = logging.getLogger(__name__)


class TaskContext:
    """What the background function sees: a way to report progress and to notice cancellation."""

    def __init__(self, emit: Callable[[Any], None]) -> None:
        self._emit = emit
        self.cancelled = threading.Event()

    def report(self, value: Any) -> None:
        self._emit(value)

    def is_cancelled(self) -> bool:
        return self.cancelled.is_set()


class _Worker(QObject):
    progress = Signal(object)
    succeeded = Signal(object)
    failed = Signal(str)
    done = Signal()

    def __init__(self, fn: Callable, context: TaskContext) -> None:
        super().__init__()
        self._fn = fn
        self.context = context

    @Slot()
    def run(self) -> None:
        try:
            result = self._fn(self.context)
        except Exception as exc:  # every error reaches the GUI as a signal
            log.debug("background task failed:\n%s", traceback.format_exc())
            self.failed.emit(_describe(exc))
        else:
            self.succeeded.emit(result)
        finally:
            self.done.emit()


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    if isinstance(exc, (ValueError, OSError)) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class BackgroundTask(QObject):
    """One function call on its own thread. Signals arrive on the thread that created the task (the GUI)."""

    progress = Signal(object)
    succeeded = Signal(object)
    failed = Signal(str)
    finished = Signal()  # after succeeded or failed, once the thread has stopped

    def __init__(self, fn: Callable[[TaskContext], Any], name: str = "task", parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.context = TaskContext(self._emit_progress)
        self._thread = QThread()
        self._thread.setObjectName(name)
        self._worker = _Worker(fn, self.context)
        self._worker.moveToThread(self._thread)
        self._thread.started.connect(self._worker.run)
        self._worker.progress.connect(self.progress)
        self._worker.succeeded.connect(self.succeeded)
        self._worker.failed.connect(self.failed)
        # direct: quit() is thread-safe, and a queued call would wait for the GUI thread, which may be in wait()
        self._worker.done.connect(self._thread.quit, Qt.ConnectionType.DirectConnection)
        self._thread.finished.connect(self._on_thread_finished)
        self._started = False
        self._running = False

    def _emit_progress(self, value: Any) -> None:
        self._worker.progress.emit(value)

    def start(self) -> "BackgroundTask":
        if self._started:
            raise RuntimeError(f"task {self.name!r} was already started")
        self._started = True
        self._running = True
        self._thread.start()
        return self

    def cancel(self) -> None:
        """Ask the function to stop; it must check ``context.cancelled`` (or a control object) itself."""
        self.context.cancelled.set()

    def is_running(self) -> bool:
        return self._running

    def wait(self, msecs: int = 30_000) -> bool:
        """Block until the thread has stopped (for closeEvent); True if it did."""
        if not self._started:
            return True
        return self._thread.wait(msecs)

    @property
    def thread(self) -> QThread:
        return self._thread

    @Slot()
    def _on_thread_finished(self) -> None:
        self._running = False
        self.finished.emit()


def run_in_background(fn: Callable[[TaskContext], Any], name: str = "task", parent: QObject | None = None,
                      on_result: Callable | None = None, on_error: Callable | None = None,
                      on_progress: Callable | None = None) -> BackgroundTask:
    """Start ``fn(context)`` on a new thread with optional slots connected; returns the running task."""
    task = BackgroundTask(fn, name, parent)
    if on_result is not None:
        task.succeeded.connect(on_result)
    if on_error is not None:
        task.failed.connect(on_error)
    if on_progress is not None:
        task.progress.connect(on_progress)
    return task.start()
