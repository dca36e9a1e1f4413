"""What the window does, apart from how it looks: training, weight files and datasets, one controller each.

A controller holds no widgets of its own beyond dialogs it owns; it works on the session, the task
registry and the widgets it is given, and asks the person things through a ``Host``, which the
main window implements (tests replace its methods to answer without blocking).
"""
from __future__ import annotations

from typing import Protocol


class Host(Protocol):
    """The dialogs and status line controllers use; ``app.main_window.MainWindow`` provides them."""

    def show_error(self, title: str, text: str) -> None: ...

    def show_info(self, title: str, text: str) -> None: ...

    def ask_yes_no(self, title: str, text: str) -> bool: ...

    def ask_choice(self, title: str, text: str, choices: list[str]) -> int | None: ...

    def ask_open_path(self) -> str | None: ...

    def ask_image_path(self) -> str | None: ...

    def ask_dataset_path(self) -> str | None: ...

    def ask_save_path(self) -> tuple[str | None, str]: ...

    def show_status(self, text: str, timeout_ms: int = 0) -> None: ...
