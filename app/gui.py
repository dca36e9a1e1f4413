"""Entry point of the desktop app: ``python -m app.gui`` or ``digitlab`` with no sub-command."""
from __future__ import annotations

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


def main(argv: list[str] | None = None) -> int:
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
