"""The explorer's view in the page's URL, read back as the browser sent it: checked, never trusted.

A URL is typed, edited and shared, so any key may hold anything: `?k=0`, `?below=nan`,
`?galaxy=99999999`, bytes that are not UTF-8, a megabyte of text. `read_url` turns the query
string into `ExplorerState` parameters that are always valid for the atlas being served: a value
out of range is clamped, one that cannot be read is ignored, and each gives a note for the page
to show. `pn.state.location.sync` then keeps the URL and the state in step (`server.page`); on
its own it would set the state from the URL as typed, and one bad value would drop every other.
Plain Python (no Panel), so it is tested directly and by property-based tests.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

# URL query key -> ExplorerState parameter
URL_KEYS = {"colour": "colour", "eq": "equalize", "trust": "trust_overlay", "below": "trust_threshold",
            "galaxy": "query", "k": "k", "view": "view", "present": "present"}
BOOLEAN_KEYS = ("eq", "trust", "present")
TRUE_WORDS, FALSE_WORDS = ("true", "1", "yes", "on"), ("false", "0", "no", "off")
K_RANGE = (1, 50)  # similar galaxies shown (ExplorerState.k's bounds)
THRESHOLD_RANGE = (0.0, 1.0)  # trust is a fraction (ExplorerState.trust_threshold's bounds)
MAX_CHARS = 200  # no view needs a longer value; a longer one is not read at all
MAX_COORDINATE = 1e12  # |view bound| in map units: UMAP maps span tens of units
MAX_NOTED = 60  # characters of a bad value quoted in its note


@dataclass(frozen=True)
class UrlState:
    """ExplorerState parameters read from a URL, and a note for every value that was not used as given."""

    values: dict[str, object] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def read_url(args: Mapping[str, list[bytes]], colourings: Collection[str], n: int) -> UrlState:
    """ExplorerState parameters from a query string's arguments (as Tornado gives them: key -> list of
    bytes; the first value of a key counts), for an atlas of `n` galaxies coloured by one of
    `colourings`. Never raises."""
    state = UrlState()
    for key, name in URL_KEYS.items():
        raw = args.get(key)
        if not raw:
            continue
        text = raw[0].decode("utf-8", "replace") if isinstance(raw[0], bytes) else str(raw[0])
        text = text.strip()
        if len(text) > MAX_CHARS:
            state.notes.append(f"?{key}= holds {len(text):,} characters: ignored (at most {MAX_CHARS})")
            continue
        value = _READERS[key](text, colourings, n, state.notes, key)
        if value is not None:
            state.values[name] = value
    return state


def _quoted(text: str) -> str:
    return repr(text if len(text) <= MAX_NOTED else text[:MAX_NOTED] + "...")


def _boolean(text: str, _colourings: Collection[str], _n: int, notes: list[str], key: str) -> bool | None:
    word = text.lower()
    if word in TRUE_WORDS or word in FALSE_WORDS:
        return word in TRUE_WORDS
    notes.append(f"?{key}={_quoted(text)}: ignored; expected true or false")
    return None


def _colour(text: str, colourings: Collection[str], _n: int, notes: list[str], key: str) -> str | None:
    if text in colourings:
        return text
    some = ", ".join(list(colourings)[:8]) + (", ..." if len(colourings) > 8 else "")
    notes.append(f"?{key}={_quoted(text)}: no such colouring, ignored; expected one of {some}")
    return None


def _integer(text: str) -> int | None:
    digits = text[1:] if text[:1] in ("+", "-") else text
    return int(text) if digits.isascii() and digits.isdigit() else None


def _galaxy(text: str, _colourings: Collection[str], n: int, notes: list[str], key: str) -> int | None:
    row = _integer(text)
    if row is None or not -1 <= row < n:
        notes.append(f"?{key}={_quoted(text)}: no such galaxy, ignored; expected a row from 0 to {n - 1:,}")
        return None
    return row


def _k(text: str, _colourings: Collection[str], _n: int, notes: list[str], key: str) -> int | None:
    k = _integer(text)
    lo, hi = K_RANGE
    if k is None:
        notes.append(f"?{key}={_quoted(text)}: ignored; expected a whole number of similar galaxies, {lo} to {hi}")
        return None
    if not lo <= k <= hi:
        notes.append(f"?{key}={_quoted(text)}: showing {min(max(k, lo), hi)} similar galaxies ({lo} to {hi})")
    return min(max(k, lo), hi)


def _threshold(text: str, _colourings: Collection[str], _n: int, notes: list[str], key: str) -> float | None:
    lo, hi = THRESHOLD_RANGE
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        notes.append(f"?{key}={_quoted(text)}: ignored; expected a trust threshold from {lo:g} to {hi:g}")
        return None
    if not lo <= value <= hi:
        notes.append(f"?{key}={_quoted(text)}: trust threshold set to {min(max(value, lo), hi):g} ({lo:g} to {hi:g})")
    return min(max(value, lo), hi)


def parse_view(text: str) -> tuple[float, float, float, float] | None:
    """x0, x1, y0, y1 of a map view written "x0,x1,y0,y1", or None unless they are finite, of
    sensible size, and x0 < x1, y0 < y1.

    >>> parse_view("0,1.5,-2,2"), parse_view("0,1,nan,2"), parse_view("1,0,0,1"), parse_view("a")
    ((0.0, 1.5, -2.0, 2.0), None, None, None)
    """
    parts = text.split(",")
    if len(parts) != 4:
        return None
    try:
        x0, x1, y0, y1 = (float(p) for p in parts)
    except ValueError:
        return None
    bounds = (x0, x1, y0, y1)
    if not all(math.isfinite(v) and abs(v) <= MAX_COORDINATE for v in bounds):
        return None
    if not (x1 - x0 > 1e-9 * max(1.0, abs(x0)) and y1 - y0 > 1e-9 * max(1.0, abs(y0))):
        return None
    return bounds


def _view(text: str, _colourings: Collection[str], _n: int, notes: list[str], key: str) -> str | None:
    if parse_view(text) is None:
        notes.append(f"?{key}={_quoted(text)}: ignored; expected x0,x1,y0,y1 with x0 < x1 and y0 < y1 (finite map coordinates)")
        return None
    return text


_READERS = {"colour": _colour, "eq": _boolean, "trust": _boolean, "below": _threshold, "galaxy": _galaxy,
            "k": _k, "view": _view, "present": _boolean}
