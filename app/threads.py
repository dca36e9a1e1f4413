"""Background work: a plain function on a QThread (``BackgroundTask``) and the window's one ``TaskRegistry``.

Modelled on superqt's ``thread_worker``: the function receives a ``TaskContext`` with
``report(obj)`` (emitted as ``progress`` on the GUI thread) and ``cancelled`` (a
``threading.Event`` set by ``cancel()``). A result comes back through ``succeeded``; an
exception through ``failed`` as the exception object itself (type and message kept), never
silently. An unexpected error's traceback is logged at WARNING; a ``DigitLabError`` (bad input,
shown to the person in one line) and anything raised after a cancel are logged without one.

Every task of the window goes through its ``TaskRegistry``: it starts tasks, keeps them alive
until their threads end, and on close cancels them all and waits with one overall time bound.
Pages may remember their current task for what they show, but never for lifetime or shutdown.

A task still running when that bound is over (a function that cannot notice the cancel in time,
e.g. one big NumPy call) is never destroyed: a QThread object destroyed while its thread runs
aborts the process ("QThread: Destroyed while thread is still running", exit 134). Such a task is
detached from its parent and kept in this module's list of stragglers for the rest of the
process; ``app.gui.main`` then leaves through ``os._exit`` once the window is gone and settings are
written, so nothing is torn down under a running thread.
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Callable

from PySide6.QtCore import QElapsedTimer, QObject, Qt, QThread, Signal, Slot

from engine.errors import DigitLabError

log = logging.getLogger(__name__)

SHUTDOWN_MS = 1_500  # closing waits this long for all background work together: the app must exit within 2 s

_STRAGGLERS: list["BackgroundTask"] = []  # tasks that outlived a shutdown: kept (never destroyed) until exit


def stragglers() -> list["BackgroundTask"]:
    """Tasks a shutdown gave up on whose threads still run (the process must not destroy them)."""
    _STRAGGLERS[:] = [t for t in _STRAGGLERS if not t.thread.isFinished()]
    return list(_STRAGGLERS)


class TaskContext:
    """What the background function sees: a way to report progress and to notice cancellation."""

    def __init__(self, emit: Callable[[Any], None]) -> None:
        self._emit = emit
        self.cancelled = threading.Event()

    def report(self, value: Any) -> None:
        self._emit(value)

    def is_cancelled(self) -> bool:
        return self.cancelled.is_set()


def describe_error(exc: BaseException) -> str:
    """One line for a person: the message of an input error, else the exception's type and message."""
    text = str(exc).strip()
    if isinstance(exc, (ValueError, OSError)) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def describe_file_error(path: str, exc: BaseException) -> str:
    """What went wrong with a file, naming it once (the engine's messages usually start with it already)."""
    reason = describe_error(exc)
    return reason if str(path) in reason else f"{path}\n\n{reason}"


class _Worker(QObject):
    progress = Signal(object)
    succeeded = Signal(object)
    failed = Signal(object)
    done = Signal()

    def __init__(self, fn: Callable, context: TaskContext, name: str) -> None:
        super().__init__()
        self._fn = fn
        self._name = name
        self.context = context

    @Slot()
    def run(self) -> None:
        try:
            result = self._fn(self.context)
        except Exception as exc:  # every error reaches the GUI as a signal
            if self.context.is_cancelled():  # stopping on request (e.g. DownloadCancelled) is no failure to log
                log.debug("background task %r stopped on cancel: %s", self._name, exc)
            elif isinstance(exc, DigitLabError):  # bad input, said in one line to the person: no traceback
                log.info("background task %r: %s", self._name, exc)
            else:
                log.warning("background task %r failed", self._name, exc_info=True)
            self.failed.emit(exc)
        else:
            self.succeeded.emit(result)
        finally:
            self.done.emit()


class BackgroundTask(QObject):
    """One function call on its own thread. Signals arrive on the thread that created the task (the GUI).

    ``failed`` carries the exception object; ``finished`` follows succeeded or failed once the thread
    has stopped. A task cancelled before it was started never runs.
    """

    progress = Signal(object)
    succeeded = Signal(object)
    failed = Signal(object)
    finished = Signal()

    def __init__(self, fn: Callable[[TaskContext], Any], name: str = "task", parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.context = TaskContext(self._emit_progress)
        self._thread = QThread()
        self._thread.setObjectName(name)
        self._worker = _Worker(fn, self.context, name)
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
        if self.context.cancelled.is_set():
            log.debug("task %r was cancelled before it started; not running it", self.name)
            return self
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
        """Block until the thread has stopped; True if it did (or never started)."""
        if not self._started:
            return True
        return self._thread.wait(max(0, int(msecs)))

    @property
    def thread(self) -> QThread:
        return self._thread

    def abandon(self) -> None:
        """Give up on a task that will not stop: its results no longer reach anyone, and deleting its
        former parent (the window) cannot delete it while its thread runs."""
        for signal in ("progress", "succeeded", "failed"):
            getattr(self._worker, signal).disconnect(getattr(self, signal))
        self.setParent(None)

    @Slot()
    def _on_thread_finished(self) -> None:
        self._running = False
        self.finished.emit()


class TaskRegistry(QObject):
    """The window's background tasks: started here, kept alive until their threads end, stopped together.

    ``create(fn, name)`` is the task factory handed to pages (they connect signals, then call
    ``start()``); ``run(fn, name)`` creates and starts in one go. After ``shutdown`` every new task
    is cancelled before it starts.
    """

    closing = Signal()  # shutdown has begun: no new task will run (e.g. close progress dialogs)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._tasks: set[BackgroundTask] = set()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def create(self, fn: Callable[[TaskContext], Any], name: str = "task") -> BackgroundTask:
        """A new task this registry keeps until its thread ends; the caller connects signals and starts it."""
        return self.adopt(BackgroundTask(fn, name, self))

    def adopt(self, task: BackgroundTask) -> BackgroundTask:
        """Track a task made elsewhere (e.g. a TrainingTask)."""
        if task not in self._tasks:
            self._tasks.add(task)
            task.finished.connect(lambda t=task: self._forget(t))
        if self._closed:
            task.cancel()  # the window is closing: it will never run
        return task

    def run(self, fn: Callable[[TaskContext], Any], name: str = "task") -> BackgroundTask:
        """Create and start a task at once (connect to its signals right after: they are queued)."""
        return self.start(self.create(fn, name))

    def start(self, task: BackgroundTask) -> BackgroundTask:
        """Track and start a task (one cancelled by a shutdown never runs)."""
        return self.adopt(task).start()

    def tasks(self) -> list[BackgroundTask]:
        """Every task being kept (created, running, or ending)."""
        return list(self._tasks)

    def running(self) -> list[BackgroundTask]:
        return [t for t in self._tasks if t.is_running()]

    def shutdown(self, timeout_ms: int = SHUTDOWN_MS) -> bool:
        """Cancel every task and wait for each thread, all within ``timeout_ms``; True if all ended in time."""
        if not self._closed:
            self._closed = True
            self.closing.emit()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        clock = QElapsedTimer()
        clock.start()
        ended = True
        for task in tasks:
            if task.wait(timeout_ms - clock.elapsed()):
                continue
            ended = False
            log.warning("background task %r did not stop within %d ms; leaving it to end on its own",
                        task.name, timeout_ms)
            task.abandon()
            self._tasks.discard(task)
            _STRAGGLERS.append(task)
        return ended

    def _forget(self, task: BackgroundTask) -> None:
        task.wait(5000)  # the thread is at its very end; drop the reference only once it is gone
        self._tasks.discard(task)
