"""DigitLab's JSON metadata inside an ``.npz``: parsed with bounds, and shortened for showing.

The metadata is text from a file: it may be nested 100,000 deep (``json.loads`` recurses), hold
``1e400`` (which becomes infinity), numbers of a million digits, or megabytes of strings meant for a
terminal. :func:`parse_metadata` bounds size and depth *before* parsing and refuses non-finite and
oversized numbers; :func:`for_display` makes a shortened copy (strings, keys, long lists) for
``digitlab inspect`` and the window.
"""
from __future__ import annotations

import json
import math

import numpy as np

from engine.errors import WeightFileError
from engine.util import shorten
from engine.weightfiles.npz import MAX_METADATA_CHARS
from engine.weightfiles.pickle_scan import short_error

MAX_JSON_DEPTH = 32  # DigitLab writes 4 levels (metadata > spec > layers > layer); json.loads recurses
MAX_NUMBER_CHARS = 40  # digits of one number: int("9" * 10**6) alone takes seconds
MAX_SHOWN_ITEMS = 100  # entries of one list or object shown by inspect
_DEPTH_CHUNK = 1 << 22  # bytes counted at a time: a 100 MB header costs a few chunks' arrays, not 8 bytes a byte
_QUOTE, _BACKSLASH = ord('"'), ord("\\")


class _BadNumber(WeightFileError):
    pass


def json_depth(text: str | bytes) -> int:
    """How deeply arrays and objects nest in JSON ``text`` (str, or bytes not yet decoded), counted without parsing.

    Brackets inside string literals do not count; a quote after an odd number of backslashes does not end one.
    The text is read a chunk at a time, carrying over whether a string is open and the backslashes just before,
    so the arrays stay a few times the chunk whatever the text holds (``json.loads`` reads the same strings up to
    the first thing that is not JSON, and goes no further: nothing past it can nest it deeper).
    """
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    codes = np.frombuffer(data, np.uint8)
    depth = deepest = 0
    inside, backslashes = 0, 0  # a string open at the chunk's start; backslashes that ended the last chunk
    for start in range(0, len(codes), _DEPTH_CHUNK):
        chunk = codes[start:start + _DEPTH_CHUNK]
        where = np.arange(len(chunk))
        # for each position, the last one at or before it that is not a backslash (-1: none in this chunk)
        last_other = np.maximum.accumulate(np.where(chunk == _BACKSLASH, -1, where))
        quotes = np.flatnonzero(chunk == _QUOTE)
        before = np.where(quotes > 0, last_other[np.maximum(quotes - 1, 0)], -1)
        run = quotes - 1 - before + np.where(before < 0, backslashes, 0)  # backslashes just before each quote
        toggles = np.zeros(len(chunk), np.int8)
        toggles[quotes[run % 2 == 0]] = 1  # an unescaped quote opens or closes a string
        in_string = (np.cumsum(toggles, dtype=np.int64) + inside) % 2 == 1
        steps = (chunk == ord("[")).astype(np.int32)
        steps += chunk == ord("{")
        steps -= chunk == ord("]")
        steps -= chunk == ord("}")
        steps[in_string] = 0
        running = np.cumsum(steps, dtype=np.int32)  # |value| <= chunk length: int32 cannot overflow
        deepest = max(deepest, depth + int(running.max()))
        depth += int(running[-1])
        inside = int(in_string[-1])
        backslashes = len(chunk) - 1 - int(last_other[-1]) + (backslashes if last_other[-1] < 0 else 0)
    return deepest


def _parse_int(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise _BadNumber(f"a number of {len(text):,} digits")
    return int(text)


def _parse_float(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise _BadNumber(f"a number of {len(text):,} characters")
    value = float(text)
    if not math.isfinite(value):
        raise _BadNumber(f"the number {shorten(text, 40)} is too large (it reads as infinity)")
    return value


def _no_constant(name: str):
    raise _BadNumber(f"{name} is not a number JSON allows")


def parse_metadata(text: str, where: str, key: str) -> dict:
    """The metadata object, or :class:`WeightFileError` saying why it cannot be used."""
    bad = f"{where}: the {key} entry is not valid JSON metadata"
    if len(text) > MAX_METADATA_CHARS:
        raise WeightFileError(f"{bad} ({len(text):,} characters; DigitLab writes a few thousand)")
    depth = json_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise WeightFileError(f"{bad} (nested {depth:,} levels deep; at most {MAX_JSON_DEPTH})")
    try:
        value = json.loads(text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_no_constant)
    except _BadNumber as exc:
        raise WeightFileError(f"{bad} ({exc})") from None
    except (ValueError, RecursionError) as exc:
        raise WeightFileError(f"{bad} ({short_error(exc)})") from None
    if not isinstance(value, dict):
        raise WeightFileError(f"{bad} (a JSON {type(value).__name__}, not an object)")
    return value


def for_display(value, depth: int = 0):
    """A copy of JSON-like data safe to print: strings and keys shortened, long lists and objects cut."""
    if depth > MAX_JSON_DEPTH:
        return "…"
    if isinstance(value, str):
        return shorten(value)
    if isinstance(value, dict):
        items = list(value.items())
        out = {shorten(k) if isinstance(k, str) else shorten(repr(k)): for_display(v, depth + 1)
               for k, v in items[:MAX_SHOWN_ITEMS]}
        if len(items) > MAX_SHOWN_ITEMS:
            out["…"] = f"{len(items) - MAX_SHOWN_ITEMS:,} more entries"
        return out
    if isinstance(value, (list, tuple)):
        out = [for_display(v, depth + 1) for v in value[:MAX_SHOWN_ITEMS]]
        if len(value) > MAX_SHOWN_ITEMS:
            out.append(f"… {len(value) - MAX_SHOWN_ITEMS:,} more items")
        return out
    return value
