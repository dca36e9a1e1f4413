"""Entry point of the desktop app: ``python -m app.gui`` or ``digitlab`` with no sub-command."""
from __future__ import annotations

import os
import sys

from PySide6.QtCore import QCoreApplication, QEvent
from PySide6.QtWidgets import QApplication

from app.main_window import MainWindow


def create_application(argv: list[str] | None = None) -> QApplication:
    """The QApplication (reused if one exists), named so QSettings finds "DigitLab"/"DigitLab"."""
    app = QApplication.instance()
    if app is None:
        app = QApplication(list(sys.argv if argv is None else [sys.argv[0], *argv]))
    app.setApplicationName("DigitLab")
    app.setOrganizationName("DigitLab")
    app.setApplicationDisplayName("DigitLab")
    return app


NO_DISPLAY_MESSAGE = (
    "digitlab: no display to open the window on (neither DISPLAY nor WAYLAND_DISPLAY is set).\n"
    "Run it on a desktop, or under a virtual one (xvfb-run -a digitlab); the sub-commands need no display:\n"
    "digitlab train|evaluate|predict|gradcheck|inspect --help"
)


def has_display() -> bool:
    """False on a Linux/BSD machine without an X or Wayland display, where Qt would abort with a core dump."""
    if not sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return True
    return bool(os.environ.get("QT_QPA_PLATFORM") or os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def main(argv: list[str] | None = None) -> int:
    if QApplication.instance() is None and not has_display():
        print(NO_DISPLAY_MESSAGE, file=sys.stderr)
        return 1
    app = create_application(argv)
    window = MainWindow()
    window.show()
    code = int(app.exec())
    # Destroy the window (and its pyqtgraph items) while the QApplication still exists: left to
    # interpreter shutdown, graphics items can be torn down after Qt and crash on exit.
    window.close()  # a no-op when the user closed it; stops workers if the loop ended another way
    window.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.DeferredDelete)
    return code


if __name__ == "__main__":
    sys.exit(main())
