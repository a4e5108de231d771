"""The explorer's text as HTML: catalog values, the hover line, captions, sky lines, messages.

Catalog text is never markup: every value, column name and message passes through
`html.escape` here, so the views only place what these functions return. Plain Python (no Panel).
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from galexplore.explorer.queries import sky_links
from galexplore.explorer.store import AtlasData

HOVER_COLUMNS = ("object_id", "z_spec", "z_phot", "type", "p_features", "trust", "anomaly_score")
HOVER_HINT = "<span style='opacity:0.6'>point at a galaxy to see its values; click it for similar galaxies</span>"
CAPTION_COLUMNS = ("z_spec", "z", "type")


def cell(value: object) -> str:
    """A catalog value as escaped HTML text (catalog strings are never markup).

    >>> cell(0.123456789), cell(float("nan")), cell("<b>")
    ('0.12346', '', '&lt;b&gt;')
    """
    if isinstance(value, (float, np.floating)):
        return "" if np.isnan(value) else f"{value:.5g}"
    return html.escape(str(value))


def record_table(record: pd.Series) -> str:
    """A galaxy's catalog row as a two-column HTML table."""
    rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{cell(v)}</td></tr>" for k, v in record.items())
    return f"<table style='font-size:90%'>{rows}</table>"


def hover_line(record: pd.Series, extra: tuple[str, ...] = ()) -> str:
    """One line of a galaxy's values for the pointer: its id, then the hover columns it has."""
    columns = (*HOVER_COLUMNS[1:], *extra)
    return "under the cursor: " + " · ".join([f"<b>{cell(record['object_id'])}</b>", *values(record, columns)])


def caption(record: pd.Series, similarity: float, extra: tuple[str, ...] = ()) -> str:
    """A similar galaxy's caption in the gallery: its similarity, then its redshift and type."""
    return "<br>".join([f"sim {similarity:.3f}", *values(record, (*CAPTION_COLUMNS, *extra))])


def values(record: pd.Series, columns: tuple[str, ...]) -> list[str]:
    """'column value' (escaped) for each of `columns` the record has a value in (NaN: none)."""
    cells = ((column, cell(record[column])) for column in columns if column in record)
    return [f"{html.escape(column)} {text}" for column, text in cells if text != ""]


def class_columns(data: AtlasData) -> tuple[str, ...]:
    """The class columns, each with its predicted class and that class's probability: what
    the hover line and the gallery's captions add to their usual columns."""
    return tuple(c for column in data.classes for c in (column, f"{column}_pred", f"{column}_prob")
                 if c in data.catalog)


def findable(data: AtlasData) -> str:
    """What the search box takes: an object_id, and RA/Dec where the atlas has positions."""
    return "`object_id` or RA/Dec" if data.has_positions else "`object_id` (this atlas has no sky positions)"


def sky_lines(record: pd.Series) -> str:
    """A galaxy's RA/Dec and its sky-viewer links, each on a line of its own (HTML)."""
    links = " · ".join(f'<a href="{html.escape(url)}" target="_blank" rel="noopener">{html.escape(name)}</a>'
                       for name, url in sky_links(record["ra"], record["dec"]).items())
    return f"<br>RA {record['ra']:.5f}, Dec {record['dec']:+.5f}<br>{links}"


def message_html(lines: list[str]) -> str:
    """What the page says above the map: plain-text lines (they may quote a URL), escaped."""
    return "<br>".join(html.escape(line) for line in lines)


def bullet_list(lines: list[str]) -> str:
    """Plain-text lines as an HTML list without its indent (the report card's panel)."""
    items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
    return f"<ul style='padding-left:1.2em;margin:0'>{items}</ul>"
