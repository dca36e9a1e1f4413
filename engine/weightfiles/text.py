"""Names and keys from a weight file, described for a one-line message: short, escaped, and never failing."""
from __future__ import annotations

from engine.util import printable

MAX_NAMES = 12  # names listed in one message


def describe_key(key) -> str:
    """A dictionary key from a file as text: strings shortened, bytes and other keys shown by kind."""
    if isinstance(key, str):
        return printable(key, 80)  # a key may hold a newline or an escape sequence
    if isinstance(key, bool) or key is None or isinstance(key, float):
        return repr(key)
    if isinstance(key, int):  # str() of an int of more than 4,300 digits raises
        return str(key) if key.bit_length() <= 64 else f"an integer of {key.bit_length():,} bits"
    if isinstance(key, (bytes, bytearray)):
        return f"bytes {printable(repr(bytes(key[:100])), 80)}"
    return f"a {type(key).__name__}"


def names(keys, limit: int = MAX_NAMES) -> str:
    """``a, b, c, … (N more)`` for a list of names from a file."""
    keys = list(keys)
    shown = ", ".join(describe_key(k) for k in keys[:limit])
    return shown + (f", … ({len(keys) - limit:,} more)" if len(keys) > limit else "")
