"""Error dialogs that cannot flood the screen: one at a time, later errors collected into it.

Opening 200 broken files at once must not queue 200 modal dialogs. ``ErrorDialogs.report`` shows
the first error in a window-modal box that does not block (``QMessageBox.open``); every error that
arrives while that box is up is added to it ("199 more errors since this one", the first few named
in the box, all of them under Show Details) instead of opening another. Nothing is dropped: each
error is also logged and written to the status line, and the box counts those it cannot list.
All text is plain (``widgets.plain_text``): a file name or message is never taken for HTML.
"""
from __future__ import annotations

import logging
from typing import Callable

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QLabel, QMessageBox, QWidget

from widgets.plain_text import block, line, message_box

log = logging.getLogger(__name__)

PREVIEW = 5  # later errors named in the box itself; the rest are under Show Details
MAX_LISTED = 1_000  # later errors listed under Show Details; beyond this they are only counted
MESSAGE_LINES = 12  # lines of the first error's text shown in the box
REFRESH_MS = 100  # a burst of errors rewrites the open box at most this often, not once per error


class ErrorDialogs(QObject):
    """Shows errors for one window; ``dialog`` is the box on screen (None when there is none)."""

    dialogShown = Signal(object)  # a new QMessageBox went up (a merged error opens none)

    def __init__(self, parent: QWidget, status: Callable[[str], None] | None = None) -> None:
        super().__init__(parent)
        self._parent = parent
        self._status = status
        self.dialog: QMessageBox | None = None
        self.dialogs_shown = 0  # boxes opened so far
        self._title = ""
        self._later: list[str] = []  # one line per error merged into the open box
        self._later_count = 0
        self._common: set[str] = set()  # lines of the first error that later ones need not repeat
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(REFRESH_MS)
        self._refresh_timer.timeout.connect(self._refresh)

    @property
    def pending(self) -> int:
        """Errors merged into the open box after its first one."""
        return self._later_count

    def report(self, title: str, text: str) -> None:
        """Show an error: a new box, or one more line in the box already open."""
        title, shown = line(title, 120), block(text, max_lines=MESSAGE_LINES)
        summary = " — ".join(part.strip() for part in shown.split("\n") if part.strip())
        log.info("%s: %s", title, summary)
        if self._status is not None:
            self._status(line(f"{title}: {summary}"))
        if self.dialog is None:
            self._open(title, shown)
            return
        self._later_count += 1
        if len(self._later) < MAX_LISTED:
            entry = self._entry(shown)
            self._later.append(line(entry if title == self._title else f"{title}: {entry}"))
        if not self._refresh_timer.isActive():
            self._refresh_timer.start()

    def close(self) -> None:
        if self.dialog is not None:
            self.dialog.close()

    def _entry(self, text: str) -> str:
        """One line for a merged error: its own lines, without those it shares with the first error
        (such as "The current network is unchanged.") and without its file named twice."""
        common = self._common
        parts = [part.strip() for part in text.split("\n") if part.strip()]
        parts = [part for i, part in enumerate(parts) if i == 0 or part not in common]
        if len(parts) > 1 and parts[1].startswith(parts[0]):
            parts[1] = parts[1][len(parts[0]):].lstrip(": ")
        return " — ".join(part for part in parts if part)

    def _open(self, title: str, text: str) -> None:
        box = message_box(self._parent, QMessageBox.Icon.Critical, title, text)
        box.setWindowModality(Qt.WindowModality.WindowModal)
        box.finished.connect(lambda _result, b=box: self._closed(b))
        self.dialog, self._title, self._later, self._later_count = box, title, [], 0
        self._common = {part.strip() for part in text.split("\n")[1:] if part.strip()}
        self.dialogs_shown += 1
        box.open()
        self.dialogShown.emit(box)

    def _refresh(self) -> None:
        box, n = self.dialog, self._later_count
        if box is None or not n:
            return
        more = f"{n:,} more {'error' if n == 1 else 'errors'}"
        lines = [f"{more} since this one:"] + [f"• {s}" for s in self._later[:PREVIEW]]
        if n > PREVIEW:
            lines.append(f"… and {n - PREVIEW:,} more (Show Details lists them).")
        box.setInformativeText("\n".join(lines))
        for label in box.findChildren(QLabel):  # Qt versions differ in passing the text format on
            label.setTextFormat(Qt.TextFormat.PlainText)
        unlisted = n - len(self._later)
        box.setDetailedText("\n".join(self._later) + (f"\n… and {unlisted:,} more, not listed" if unlisted else ""))
        box.setWindowTitle(f"{self._title} (and {more})")

    def _closed(self, box: QMessageBox) -> None:
        if self.dialog is box:
            self.dialog = None
        box.deleteLater()
