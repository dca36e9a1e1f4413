"""An exception escaping a Qt slot reaches the person as one error dialog and the log, never only the terminal."""
from __future__ import annotations

import logging
import sys

from PySide6.QtCore import QTimer

from app.gui import REPORT_HINT, report_unexpected_errors


def test_an_exception_in_a_slot_becomes_an_error_dialog_and_a_log_record(qtbot, caplog):
    shown = []

    def boom() -> None:
        raise RuntimeError("a bug \x1b[2J in a slot")

    previous = report_unexpected_errors(lambda title, text: shown.append((title, text)))
    try:
        with caplog.at_level(logging.ERROR, logger="app.gui"):
            QTimer.singleShot(0, boom)
            qtbot.waitUntil(lambda: bool(shown))
    finally:
        sys.excepthook = previous
    [(title, text)] = shown
    assert title == "Something went wrong inside DigitLab"
    assert text.startswith("RuntimeError: a bug \\x1b[2J in a slot") and REPORT_HINT in text
    assert any(r.exc_info and r.exc_info[0] is RuntimeError for r in caplog.records)


def test_ctrl_c_is_left_to_the_quit_handler_not_shown_as_an_error():
    shown = []
    previous = report_unexpected_errors(lambda title, text: shown.append(title))
    try:
        sys.excepthook(KeyboardInterrupt, KeyboardInterrupt(), None)
    finally:
        sys.excepthook = previous
    assert shown == []
