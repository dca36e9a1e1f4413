"""The engine's error classes: one base, so a caller can catch every "your input is wrong" in one place.

``DigitLabError`` subclasses ``ValueError``: every one of them means a value (a file, a setting, an
array) that cannot be used, and its message says what and where in one line.
"""
from __future__ import annotations


class DigitLabError(ValueError):
    """Input DigitLab cannot use; the message says what is wrong and where."""


class DatasetError(DigitLabError):
    """A dataset could not be read, found or downloaded; the message says what and where."""


class WeightFileError(DigitLabError):
    """A weight file that cannot be read or understood; the message says what and where."""


class UnsafePickleError(WeightFileError):
    """A pickle that tries to run code or to build something a weight file never holds."""
