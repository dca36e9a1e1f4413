"""Every error the engine raises for bad input is a DigitLabError, so the CLI and the window can report any of them
in one line without a traceback (and the window's dialogs name what was wrong)."""
from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest

from engine.errors import DatasetError, DigitLabError, UnsafePickleError, WeightFileError

ENGINE = Path(__file__).resolve().parents[2] / "engine"
MODULES = sorted(".".join(p.relative_to(ENGINE.parent).with_suffix("").parts) for p in ENGINE.rglob("*.py"))


def error_classes() -> dict[str, type]:
    found = {}
    for name in MODULES:
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            if inspect.isclass(value) and issubclass(value, Exception) and value.__module__ == module.__name__:
                found[f"{name}.{attr}"] = value
    return found


def test_the_engine_defines_its_errors():
    names = set(error_classes())
    assert {"engine.errors.DatasetError", "engine.errors.WeightFileError", "engine.train.runs.RunFileError"} <= names


@pytest.mark.parametrize("name", sorted(error_classes()))
def test_every_input_error_is_a_digitlab_error(name):
    cls = error_classes()[name]
    if "Cancelled" in cls.__name__ or cls.__name__.startswith("_"):
        return  # a cancel is a request, not bad input; private exceptions never leave their module
    assert issubclass(cls, DigitLabError), f"{name} should derive from engine.errors.DigitLabError"


def test_the_hierarchy_the_callers_rely_on():
    assert issubclass(UnsafePickleError, WeightFileError)
    for cls in (DatasetError, WeightFileError):
        error = cls("file.bin: what is wrong")
        assert isinstance(error, DigitLabError) and isinstance(error, ValueError) and str(error) == "file.bin: what is wrong"
