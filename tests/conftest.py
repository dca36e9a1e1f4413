"""Shared fixtures. GUI tests run offscreen; engine tests never import Qt."""
from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy  # noqa: F401 - loads the BLAS library that threadpool_limits below limits
import pytest
from hypothesis import settings
from threadpoolctl import threadpool_limits

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# One BLAS thread, as the window uses (app.blas_threads): the suite runs helper processes beside itself
# (fuzz workers, a reference rebuild, Xvfb checks), and two OpenBLAS threads that must meet after every small
# product then wait for each other: a 10-epoch MLP test took 45 s instead of 7 on this 2-core machine.
_BLAS_LIMIT = threadpool_limits(limits=1, user_api="blas")  # after NumPy's import: it loads the BLAS library

# CI replays the same examples every run (a landing must not hinge on luck); local runs keep exploring.
settings.register_profile("ci", derandomize=True, deadline=None)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

SHARED_MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "mnist"


@pytest.fixture(scope="session")
def _homes(tmp_path_factory):
    """(a folder, a counter): ``_isolated_cache`` makes each test's home in it (``mktemp`` would list every
    earlier one each time: seconds over the suite's ~1,700 tests)."""
    return tmp_path_factory.mktemp("digitlab-homes"), itertools.count()


@pytest.fixture(autouse=True)
def _isolated_cache(_homes, monkeypatch):
    """Every test gets its own DigitLab cache and settings, never the user's."""
    folder, numbers = _homes
    root = folder / str(next(numbers))
    root.mkdir()
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
