"""Entry point of the desktop app: ``python -m app.gui`` or ``digitlab`` with no sub-command.

Leaving: closing the window stops every background task within ``app.threads.SHUTDOWN_MS``.
Ctrl+C (SIGINT) or SIGTERM in the terminal closes the window the same way and exits with
128 + the signal's number, without a traceback: the C-level handler writes to a socket
(``signal.set_wakeup_fd``) that a ``QSocketNotifier`` watches, so Python gets control at once
even while Qt waits for events. If a task still runs after the shutdown bound (a function that
cannot notice its cancel in time), its thread is left alone and the process ends with
``os._exit`` once the window is gone: destroying a running QThread would abort instead.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import sys
from typing import Callable

from PySide6.QtCore import QCoreApplication, QEvent, QObject, QSocketNotifier
from PySide6.QtWidgets import QApplication

from app import display
from app.main_window import MainWindow
from app.threads import stragglers
from engine.util import printable

log = logging.getLogger(__name__)

QUIT_SIGNALS = tuple(s for s in (signal.SIGINT, getattr(signal, "SIGTERM", None)) if s is not None)


# A training thread holds Python's GIL between its NumPy calls; a thread asking for it gets it after at most this
# long (Python's default is 5 ms). A redraw of the loss plot takes the GIL back many times: with 5 ms waits, a
# 15 ms redraw could hold the event loop up for 40-50 ms while training ran.
GIL_SWITCH_SECONDS = 0.001


def create_application(argv: list[str] | None = None) -> QApplication:
    """The QApplication (reused if one exists), named so QSettings finds "DigitLab"/"DigitLab"."""
    sys.setswitchinterval(GIL_SWITCH_SECONDS)
    app = QApplication.instance()
    if app is None:
        app = QApplication(list(sys.argv if argv is None else [sys.argv[0], *argv]))
    app.setApplicationName("DigitLab")
    app.setOrganizationName("DigitLab")
    app.setApplicationDisplayName("DigitLab")
    return app


class QuitSignals(QObject):
    """While installed, SIGINT/SIGTERM call ``on_signal(signum)`` on the GUI thread instead of raising.

    Python's own handler only runs when Python code runs, and a Qt event loop waiting for events
    runs none: the wakeup socket makes the loop wake up and hand over. ``received`` is the first
    signal that came (0: none). ``uninstall()`` puts the previous handlers back.
    """

    def __init__(self, on_signal: Callable[[int], None], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.received = 0
        self._on_signal = on_signal
        self._reader, self._writer = socket.socketpair()
        for s in (self._reader, self._writer):
            s.setblocking(False)
        self._previous_fd = signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        self._previous = {s: signal.signal(s, self._note) for s in QUIT_SIGNALS}
        self._notifier = QSocketNotifier(self._reader.fileno(), QSocketNotifier.Type.Read, self)
        self._notifier.activated.connect(self._drain)

    def _note(self, signum, _frame) -> None:
        """Python's handler: nothing but a note; the notifier (woken by the same signal) acts on it."""
        self.received = self.received or signum

    def _drain(self, *_args) -> None:
        try:
            data = self._reader.recv(512)
        except (BlockingIOError, InterruptedError):
            data = b""
        signums = [b for b in data if b in QUIT_SIGNALS] or ([self.received] if self.received else [])
        if signums:
            self.received = self.received or signums[0]
            self._on_signal(self.received)

    def uninstall(self) -> None:
        self._notifier.setEnabled(False)
        for s, handler in self._previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
        signal.set_wakeup_fd(self._previous_fd)
        self._reader.close()
        self._writer.close()


REPORT_HINT = ("This is a bug in DigitLab, not a problem with your files. Please report it with what you "
               "were doing; the details were written to the terminal.")


def report_unexpected_errors(show_error: Callable[[str, str], None]):
    """Route exceptions that escape a Qt slot or callback to ``show_error`` (one dialog) and the log.

    Without this PySide prints the traceback to the terminal and the window carries on as if nothing
    happened: a failure the person never sees. Returns the previous ``sys.excepthook`` to put back.
    """
    previous = sys.excepthook

    def hook(exc_type, exc, tb) -> None:
        if issubclass(exc_type, KeyboardInterrupt):  # Ctrl+C is handled by QuitSignals; never a dialog
            return
        log.error("unexpected error in the window", exc_info=(exc_type, exc, tb))
        try:
            show_error("Something went wrong inside DigitLab",
                       f"{exc_type.__name__}: {printable(exc, 500)}\n\n{REPORT_HINT}")
        except Exception:  # the dialog itself failed: the log above still has it
            log.exception("could not show the error dialog")

    sys.excepthook = hook
    return previous


def main(argv: list[str] | None = None) -> int:
    if QApplication.instance() is None:
        problem = display.display_problem()  # `digitlab` checked before importing Qt; `python -m app.gui` here
        if problem is not None:  # Qt would abort (exit 134) with a misleading "xcb-cursor0 is needed"
            sys.stderr.write(f"digitlab: error: cannot open the window: {printable(problem, 600)}\n")
            return 1
    app = create_application(argv)
    display.release()  # Qt has its own connection to the display now
    windows: list[MainWindow] = []

    def on_signal(signum: int) -> None:
        log.info("signal %d: closing the window", signum)
        for window in windows:
            window.close()  # stops the background work, keeps the settings
        app.exit(128 + signum)  # also ends a modal dialog's loop, should one be open

    quit_signals = QuitSignals(on_signal)  # before the window: Ctrl+C while it is being built is handled too
    try:
        window = MainWindow()
        windows.append(window)
        previous_hook = report_unexpected_errors(window.show_error)
        window.show()
        try:
            code = int(app.exec())
        finally:
            sys.excepthook = previous_hook
    finally:
        quit_signals.uninstall()
    # Destroy the window (and its pyqtgraph items) while the QApplication still exists: left to
    # interpreter shutdown, graphics items can be torn down after Qt and crash on exit.
    window.close()  # a no-op when the user closed it; stops workers if the loop ended another way
    window.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.DeferredDelete)
    if quit_signals.received:
        code = 128 + quit_signals.received
    left = stragglers()
    if left:  # threads that did not stop in time: leave without destroying them (see the module doc)
        log.warning("leaving %d background task(s) running at exit: %s", len(left), ", ".join(t.name for t in left))
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
