"""Help ▸ Guide and Help ▸ About: every page explained, every shortcut true, README pointers that exist,
and the versions a bug report needs."""
from __future__ import annotations

import platform
import re
from pathlib import Path

import numpy
import pyqtgraph
import PySide6
from PySide6.QtCore import qVersion
from PySide6.QtGui import QKeySequence

from app import help_texts
from app.cli_io import digitlab_version
from app.help_texts import FILE_SHORTCUTS, LABS, README_SECTIONS, RUN_SHORTCUTS, TOP_PAGES, about_text, guide_text

ROOT = Path(__file__).resolve().parents[2]


def test_the_guide_explains_every_page_and_lab_in_order():
    text = guide_text()
    assert text.startswith("DigitLab guide\n")
    positions = [text.index(f"\n{page} (Ctrl+{i + 1})\n") for i, page in enumerate(TOP_PAGES)]
    assert positions == sorted(positions)
    for lab in LABS:
        assert f"\n  {lab}\n" in text
    assert "Ctrl+1 to Ctrl+5" in text and "Ctrl+1…5" in text


def test_the_guide_covers_the_window_s_pages():
    from app import navigation

    assert set(TOP_PAGES) == {navigation.TRAIN, navigation.EVALUATE, navigation.COMPARE, navigation.MODELS,
                              navigation.LABS}
    assert set(TOP_PAGES) - {"Labs"} | set(LABS) == set(navigation.PAGE_TIPS)


def test_the_guide_follows_the_pages_it_is_given():
    text = guide_text(["Train", "Models"])
    assert "Train (Ctrl+1)" in text and "Models (Ctrl+2)" in text and "Ctrl+1 to Ctrl+2" in text
    assert "Evaluate (Ctrl+" not in text


def test_run_shortcuts_are_the_ones_the_run_buttons_have(qtbot):
    from app.run_controls import RunControls

    controls = RunControls()
    qtbot.addWidget(controls)
    assert [a.shortcut().toString() for a in controls.actions] == [keys for keys, _ in RUN_SHORTCUTS]


def test_every_key_set_anywhere_in_the_app_is_in_the_guide(qtbot):
    listed = {keys for keys, _ in RUN_SHORTCUTS + FILE_SHORTCUTS}
    source = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "app").rglob("*.py"))
    literal = set(re.findall(r'QKeySequence\("([^"{}]+)"\)', source))
    literal |= set(re.findall(r'action\("[^"]+", "([^"]+)"', source))  # app.run_controls' helper
    standard = {QKeySequence(getattr(QKeySequence.StandardKey, name)).toString()
                for name in re.findall(r"QKeySequence\.(Open|Save|Quit|Close|Copy|Paste|New|Print)\b", source)}
    standard.discard("")  # a standard key the platform (here: offscreen) binds to nothing, as Windows does Quit
    assert literal and standard
    assert literal | standard <= listed, sorted((literal | standard) - listed)
    assert 'QKeySequence(f"Ctrl+{i + 1}")' in source  # the page keys, which the guide numbers from its pages


def test_readme_sections_named_by_the_guide_exist():
    headings = {line.lstrip("#").strip() for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
                if line.startswith("#")}
    assert set(README_SECTIONS) <= headings, sorted(set(README_SECTIONS) - headings)
    for section in README_SECTIONS:
        assert f'"{section}"' in guide_text()


def test_the_guide_is_plain_text():
    text = guide_text()
    assert "<" not in text and "&nbsp;" not in text  # shown as plain text: a paragraph is one line, wrapped by the view


def test_about_names_every_version():
    text = about_text()
    assert text.startswith(f"DigitLab {digitlab_version()}\n")
    for fragment in (f"Python {platform.python_version()}", f"NumPy {numpy.__version__}",
                     f"PySide6 {PySide6.__version__}, Qt {qVersion()}", f"pyqtgraph {pyqtgraph.__version__}",
                     "PyOpenGL ", "CC BY-SA 3.0", "MIT"):
        assert fragment in text, fragment


def test_a_missing_optional_package_reads_not_installed():
    assert help_texts._version_of("no-such-distribution-digitlab") == "not installed"
