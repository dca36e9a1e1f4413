"""Text that comes from files is data in the window: shown literally (never as HTML), short, without
control characters, in the model label, the Models tab, the status bar, dialogs and tooltips."""
from __future__ import annotations

import json
import pickle
import sys
import types

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from app.tabs.labs import create_lab_tabs
from app.tabs.models import ModelsPage
from engine.data.dataset import Dataset
from engine.nn.network import make_mlp
from engine.weightfiles.save import save_weights

LONGEST_LABEL = 2_000  # characters: far more than any label needs, far less than a 5 MB string
HTML_MODULE, HTML_CLASS = "<img src=x>", "<b>HTML</b>"


@pytest.fixture
def window(quiet_window):
    """The window with only the pages these tests look at (the rest show no file-derived text)."""
    w = quiet_window
    for title, page in create_lab_tabs(w.session, w.tasks.create):
        if title == "Gradients":  # the lab that shows file-derived text (a network's label, a dataset's name)
            w.add_tab(page, title)
        else:
            page.deleteLater()
    w.add_tab(ModelsPage(w.session, w.weightfiles), "Models")
    return w


def labels(window) -> list[QLabel]:
    return [label for label in window.findChildren(QLabel) if label.text()]


def assert_every_label_is_short(window) -> None:
    for label in labels(window):
        assert len(label.text()) < LONGEST_LABEL, (label.objectName(), label.text()[:100])


@pytest.fixture
def html_pickle(tmp_path, monkeypatch):
    """A book-style pickled network object whose class is called <b>HTML</b> in a module <img src=x>."""
    module = types.ModuleType(HTML_MODULE)
    cls = type(HTML_CLASS, (), {"__module__": HTML_MODULE, "__qualname__": HTML_CLASS})
    setattr(module, HTML_CLASS, cls)
    monkeypatch.setitem(sys.modules, HTML_MODULE, module)
    net = cls()
    source = make_mlp([784, 12, 10], seed=2)
    net.params = {k: np.asarray(v) for k, v in source.params.items()}
    path = tmp_path / "html.pkl"
    path.write_bytes(pickle.dumps(net, protocol=2))
    return path


def npz_with_metadata(tmp_path, name: str, **changes) -> str:
    """A DigitLab .npz whose JSON metadata has ``changes`` written into it."""
    path = tmp_path / name
    save_weights(make_mlp([784, 12, 10], seed=4), path)
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(str(arrays["__digitlab__"][()]))
    meta.update(changes)
    arrays["__digitlab__"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)
    return str(path)


def test_html_in_a_class_name_or_metadata_is_shown_literally(qtbot, window, html_pickle):
    with qtbot.waitSignal(window.session.networkChanged, timeout=10_000):
        window.weightfiles.load(html_pickle)
    label = window.draw.model_label
    assert label.textFormat() == Qt.TextFormat.PlainText
    assert f"pickled object {HTML_MODULE}.{HTML_CLASS}" in label.full_text()
    models = window.page("Models")
    with qtbot.waitSignal(window.weightfiles.modelAdded, timeout=10_000):
        window.weightfiles.load(html_pickle, as_model=True)
    assert models.status.textFormat() == Qt.TextFormat.PlainText
    assert f"{HTML_MODULE}.{HTML_CLASS}" in models.status.details()
    assert window.errors == []
    # half a megabyte of HTML in a DigitLab file's metadata: shown literally, and only its start
    path = npz_with_metadata(html_pickle.parent, "notes.npz", saved_at="<img src=y>" + "y" * 500_000)
    with qtbot.waitSignal(window.weightfiles.modelAdded, timeout=10_000):
        window.weightfiles.load(path, as_model=True)
    assert models.status.textFormat() == Qt.TextFormat.PlainText
    assert "saved <img src=y>yyy" in models.status.details()
    assert_every_label_is_short(window)


def test_a_five_megabyte_string_never_reaches_a_label_or_dialog_whole(qtbot, window, tmp_path):
    path = npz_with_metadata(tmp_path, "huge.npz", saved_at="<b>" + "z" * 5_000_000)
    outcome = []
    window.weightfiles.modelAdded.connect(lambda name, summary: outcome.append("opened"))
    window.weightfiles.loadFailed.connect(lambda p, exc: outcome.append("refused"))
    window.weightfiles.load(path, as_model=True)
    qtbot.waitUntil(lambda: bool(outcome), timeout=20_000)
    assert_every_label_is_short(window)
    assert len(window.statusBar().currentMessage()) < LONGEST_LABEL
    for title, text in window.errors:  # a refusal says so in a few lines
        assert len(text) < LONGEST_LABEL


def test_names_from_files_and_folders_are_plain_everywhere_they_show(qtbot, window):
    hostile = "<b>bold</b>\x1b[2J" + "n" * 5_000_000
    window.session.set_network(make_mlp([784, 10, 10], seed=1), hostile, "<img src=details>")
    rng = np.random.default_rng(0)
    x = rng.random((20, 784), dtype=np.float32)
    window.datasets.use(Dataset("<i>folder</i>", x, rng.integers(0, 10, 20), x, rng.integers(0, 10, 20),
                                source="/data/<i>folder</i>"))
    label = window.draw.model_label
    assert label.textFormat() == Qt.TextFormat.PlainText
    assert "Network: <b>bold</b>\\x1b[2J" in label.text() and "<img src=details>" in label.full_text()
    assert window.dataset_label.textFormat() == Qt.TextFormat.PlainText
    assert window.dataset_label.text().startswith("<i>folder</i>: 20 training")
    assert "&lt;i&gt;folder" in window.dataset_label.toolTip()  # a tooltip reads literally too
    gradients = window.page("Gradients")
    assert "<i>folder</i>" in gradients.data_label.text()
    assert gradients.data_label.textFormat() == Qt.TextFormat.PlainText
    assert len(gradients.network_box.itemText(0)) < 200
    assert_every_label_is_short(window)
