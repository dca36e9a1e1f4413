"""Shared fixtures. GUI tests run offscreen; engine tests never import Qt."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# CI replays the same examples every run (a landing must not hinge on luck); local runs keep exploring.
settings.register_profile("ci", derandomize=True, deadline=None)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

SHARED_MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "mnist"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own DigitLab cache and settings, never the user's."""
    root = tmp_path_factory.mktemp("digitlab-home")
    monkeypatch.setenv("DIGITLAB_CACHE_DIR", str(root / "cache"))
    monkeypatch.setenv("DIGITLAB_CONFIG_DIR", str(root / "config"))
    yield


@pytest.fixture
def shared_mnist_dir() -> Path:
    """The real MNIST test set beside the checkout; skips when it is absent."""
    if not (SHARED_MNIST / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"the real MNIST test set is not at {SHARED_MNIST} (see shared/datasets/README.md)")
    return SHARED_MNIST


@pytest.fixture
def show(qtbot):
    """``show(widget, width, height)``: the widget on screen at that size (closed after the test), once exposed."""
    def shown(widget, width: int, height: int):
        qtbot.addWidget(widget)
        widget.resize(width, height)
        widget.show()
        qtbot.waitExposed(widget)
        return widget

    return shown
