"""Work around PySide6 6.12 on Python 3.11: void Qt methods drop a reference to ``None``.

With PySide6-Essentials 6.12.0 every call of a method returning void (``label.setText``,
``processEvents``, ...) decrements ``None``'s reference count without having incremented it
(it relies on Python 3.12's immortal ``None``). On 3.11 ``None`` starts with a few thousand
references, so a GUI that updates widgets while training dies within seconds with
"Fatal Python error: none_dealloc". Giving the singletons a huge reference count makes them
effectively immortal, as Python 3.12 does. Harmless where not needed: they are never freed.
"""
from __future__ import annotations

import ctypes
import sys

_BALLAST = 1 << 40  # more void calls than any session will make
_done = False


def needs_singleton_guard() -> bool:
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return False
    import PySide6

    major, minor = (int(p) for p in PySide6.__version__.split(".")[:2])
    return (major, minor) >= (6, 12)


def protect_singletons() -> bool:
    """Make None/True/False immortal on CPython < 3.12 with PySide6 >= 6.12; True if applied."""
    global _done
    if _done or not needs_singleton_guard():
        return _done
    for obj in (None, True, False):
        # ob_refcnt is the first Py_ssize_t of every CPython object (non-debug builds).
        ctypes.c_ssize_t.from_address(id(obj)).value += _BALLAST
    _done = True
    return True
