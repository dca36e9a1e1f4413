"""Errors in the window never pile up: one dialog at a time, later errors listed in it, none dropped."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QMimeData, QPoint, Qt, QTimer, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QApplication, QLabel, QMessageBox, QWidget

import app.controllers.weightfiles as weightfiles
from app.error_dialogs import PREVIEW, ErrorDialogs
from app.main_window import MainWindow


def test_errors_while_a_dialog_is_up_are_merged_into_it(qtbot):
    parent = QWidget()
    qtbot.addWidget(parent)
    statuses = []
    dialogs = ErrorDialogs(parent, statuses.append)
    shown = []
    dialogs.dialogShown.connect(shown.append)
    dialogs.report("Could not open the weight file", "/data/a.pkl\n\nnot a pickle\n\nThe current network is unchanged.")
    for i in range(9):
        dialogs.report("Could not open the weight file", f"/data/b{i}.pkl\n\ntruncated")
    dialogs.report("Could not open the image", "/data/c.png\n\nnot an image")
    [box] = shown
    assert box.isVisible() and box.textFormat() == Qt.TextFormat.PlainText
    assert box.text().startswith("/data/a.pkl") and dialogs.pending == 10
    qtbot.waitUntil(lambda: "10 more errors since this one" in box.informativeText(), timeout=2000)
    assert "/data/b0.pkl — truncated" in box.informativeText()
    assert f"… and {10 - PREVIEW} more" in box.informativeText()
    details = box.detailedText().splitlines()
    assert len(details) == 10 and details[-1] == "Could not open the image: /data/c.png — not an image"
    assert "(and 10 more errors)" in box.windowTitle()
    assert len(statuses) == 11 and statuses[-1].startswith("Could not open the image: /data/c.png")
    box.done(QMessageBox.StandardButton.Ok)
    qtbot.waitUntil(lambda: dialogs.dialog is None, timeout=2000)
    dialogs.report("Later", "a new problem after the first box was closed")
    assert len(shown) == 2 and dialogs.dialogs_shown == 2 and dialogs.pending == 0
    dialogs.close()


def failing_files(folder: Path, n: int) -> list[Path]:
    paths = []
    for i in range(n):
        path = folder / f"broken-{i:03d}.pkl"
        path.write_bytes(b"\x80\x04 not a pickle")
        paths.append(path)
    return paths


def test_two_hundred_failing_opens_give_one_dialog_that_counts_them_all(qtbot, tmp_path):
    w = MainWindow(load_dataset_on_start=False, with_tabs=False)
    qtbot.addWidget(w)
    shown = []
    w.error_dialogs.dialogShown.connect(shown.append)
    failed = []
    w.weightfiles.loadFailed.connect(lambda path, exc: failed.append(path))
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in failing_files(tmp_path, 200)])
    w.dropEvent(QDropEvent(QPoint(10, 10).toPointF(), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier))
    qtbot.waitUntil(lambda: len(failed) == 200, timeout=30_000)
    assert len(shown) == 1  # not 200 modal dialogs
    box = shown[0]
    qtbot.waitUntil(lambda: "199 more errors since this one" in box.informativeText(), timeout=2000)
    lines = [box.text().split("\n")[0], *box.detailedText().splitlines()]
    listed = {s[:s.index(".pkl") + 4] for s in lines}
    assert len(lines) == 200
    assert listed == {str(p) for p in tmp_path.glob("*.pkl")}  # every failure is named, none dropped
    assert all(label.textFormat() == Qt.TextFormat.PlainText for label in box.findChildren(QLabel) if label.text())
    assert "Could not open the weight file" in w.statusBar().currentMessage()
    assert w.weightfiles.pending() == 0
    w.close()
    assert not box.isVisible()


def test_a_burst_reads_only_a_few_files_at_a_time(qtbot, tmp_path, monkeypatch):
    w = MainWindow(load_dataset_on_start=False, with_tabs=False)
    qtbot.addWidget(w)
    w.show_error = lambda title, text: None
    for path in failing_files(tmp_path, 30):
        w.weightfiles.load(path, as_model=True)
    assert len(w.tasks.tasks()) <= weightfiles.MAX_PARALLEL_LOADS  # the rest wait in line
    qtbot.waitUntil(lambda: w.weightfiles.pending() == 0, timeout=30_000)
    w.close()


def test_questions_show_their_text_literally_and_return_the_answer(qtbot):
    w = MainWindow(load_dataset_on_start=False, with_tabs=False)
    qtbot.addWidget(w)
    seen = []

    def answer():
        box = QApplication.activeModalWidget()
        seen.append((box.textFormat(), box.text()))
        box.button(QMessageBox.StandardButton.Yes).click()

    QTimer.singleShot(50, answer)
    assert w.ask_yes_no("No network connection", "<b>offline</b>: use the sample?") is True
    assert seen == [(Qt.TextFormat.PlainText, "<b>offline</b>: use the sample?")]
    w.close()
