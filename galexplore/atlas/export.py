"""Catalog files in and out of the explorer: a selection of an atlas's catalog as a CSV, FITS,
VOTable or Parquet file with its download name, and a user's uploaded catalog read back.

object_id, ra and dec come first, then every other catalog column; missing values stay missing.
FITS and VOTable go through astropy Tables (VOTable packed with numpy, checked against astropy's
own writer on a sample of every export); CSV through pyarrow; Parquet keeps categories.

An upload (`read_uploaded_catalog`) is size-capped and parsed as data only (no pickles, no code),
and must give every row a position.
"""

from __future__ import annotations

import base64
import datetime
import io
import re
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from galexplore.errors import GalexploreError

FIRST_COLUMNS = ("object_id", "ra", "dec")
MAX_NAME_CHARS = 80  # of the atlas name inside an export file name
MAX_UPLOAD_BYTES = 64 * 2**20  # a catalog of about a million positions as CSV


class ExportFormat(NamedTuple):
    suffix: str
    mime: str


EXPORT_FORMATS = {
    "csv": ExportFormat(".csv", "text/csv"),
    "fits": ExportFormat(".fits", "application/fits"),  # RFC 4047
    "votable": ExportFormat(".vot", "application/x-votable+xml"),  # IVOA VOTable 1.4
    "parquet": ExportFormat(".parquet", "application/vnd.apache.parquet"),
}


def export_selection(catalog: pd.DataFrame, rows: np.ndarray, fmt: str) -> bytes:
    """The catalog rows `rows` as a file of format `fmt` (a key of `EXPORT_FORMATS`):
    object_id, ra, dec first, then every other column in catalog order.

    Missing values stay missing: empty CSV fields, NaN or TNULL in FITS, null in VOTable and
    Parquet. Categorical and string columns are written as text (Parquet keeps categories).
    """
    if fmt not in EXPORT_FORMATS:
        raise GalexploreError(f"unknown export format {fmt!r}; expected one of {', '.join(EXPORT_FORMATS)}")
    rows = np.asarray(rows, dtype=np.int64).ravel()
    if rows.size == 0:
        raise GalexploreError("the selection is empty: nothing to export")
    if rows.min() < 0 or rows.max() >= len(catalog):
        bad = int(rows[(rows < 0) | (rows >= len(catalog))][0])
        raise GalexploreError(f"row {bad} is outside the catalog's {len(catalog)} rows")
    columns = [c for c in FIRST_COLUMNS if c in catalog.columns]
    columns += [c for c in catalog.columns if c not in FIRST_COLUMNS]
    table = catalog.iloc[rows][columns].reset_index(drop=True)
    buffer = io.BytesIO()
    if fmt == "parquet":
        table.to_parquet(buffer, engine="pyarrow", index=False)
    elif fmt == "csv":
        import pyarrow as pa
        import pyarrow.csv

        # pyarrow writes CSV ~10x faster than pandas; categories become their text
        arrow = pa.Table.from_pandas(spreadsheet_safe(_categories_as_text(table)), preserve_index=False)
        pyarrow.csv.write_csv(arrow, buffer)
    elif fmt == "fits":
        # FITS text is ASCII; other characters go in as UTF-8, which astropy reads back
        _astropy_table(table, text_as_bytes=True).write(buffer, format="fits")
    else:
        return _votable_bytes(_astropy_table(table, text_as_bytes=False))
    return buffer.getvalue()


#: a spreadsheet reads a cell that starts with one of these as a formula (OWASP, "CSV Injection")
FORMULA_STARTS = "=+-@\t\r"


def spreadsheet_safe(table: pd.DataFrame) -> pd.DataFrame:
    """`table` with every text cell and column name that a spreadsheet would run as a formula
    (one starting with = + - @, a tab or a carriage return) prefixed with a single quote, as
    OWASP recommends: Excel, LibreOffice and Google Sheets then show it as the text it is. Only
    text changes: numbers stay numbers (a negative one is written as a number, not text). Text
    columns holding other objects (lists, mixed types) are written as each value's text.

    >>> spreadsheet_safe(pd.DataFrame({"name": ["=1+1", "NGC 1", "-x"], "z": [-0.5, 0.1, 0.2]})).to_dict("list")
    {'name': ["'=1+1", 'NGC 1', "'-x"], 'z': [-0.5, 0.1, 0.2]}
    """
    out = table.copy(deep=False)
    for name in out.columns:
        column = out[name]
        if _is_text(column):
            text = column.astype("string")
            out[name] = text.where(~text.str[:1].isin(list(FORMULA_STARTS)).fillna(False), "'" + text)
    return out.rename(columns={c: f"'{c}" for c in out.columns if str(c)[:1] in FORMULA_STARTS})


def _categories_as_text(table: pd.DataFrame) -> pd.DataFrame:
    out = table.copy(deep=False)
    for name in out.columns:
        column = out[name]
        if isinstance(column.dtype, pd.CategoricalDtype):
            out[name] = column.astype(object).where(column.notna(), None).astype("string")
    return out


def _is_text(column: pd.Series) -> bool:
    return isinstance(column.dtype, (pd.CategoricalDtype, pd.StringDtype)) or column.dtype == object


def _astropy_table(table: pd.DataFrame, text_as_bytes: bool) -> Any:
    """An astropy Table of `table`: text as fixed-width columns ("" and masked where missing),
    missing numbers of nullable types as masked values, float NaN as NaN."""
    from astropy.table import MaskedColumn, Table

    out = Table()
    for name in table.columns:
        column = table[name]
        missing = column.isna().to_numpy()
        if _is_text(column):
            values = column.astype(object).where(~missing, "").to_numpy()
            data = np.asarray([str(v) for v in values], dtype=str)
            if text_as_bytes:
                try:
                    data = data.astype("S")  # ASCII: a fast cast
                except UnicodeEncodeError:
                    data = np.char.encode(data, "utf-8")
            out[name] = MaskedColumn(data, mask=missing) if missing.any() else data
        elif isinstance(column.dtype, np.dtype) and column.dtype.kind in "biuf":
            out[name] = column.to_numpy()
        elif column.dtype.kind == "M":
            text = column.dt.strftime("%Y-%m-%dT%H:%M:%S.%f").where(~missing, "")
            out[name] = np.asarray(text, dtype="S" if text_as_bytes else "U")
        elif hasattr(column.dtype, "numpy_dtype"):  # pandas nullable Int64 / Float64 / boolean
            numpy_dtype = np.dtype(column.dtype.numpy_dtype)
            fill = False if numpy_dtype.kind == "b" else 0
            out[name] = MaskedColumn(column.to_numpy(dtype=numpy_dtype, na_value=fill), mask=missing)
        else:  # anything else (durations, periods, ...) as its text
            text = column.astype(str).where(~missing, "")
            out[name] = np.asarray(text, dtype="S" if text_as_bytes else "U")
    return out


#: VOTable numeric datatypes and their big-endian numpy types
_VOTABLE_NUMBERS = {"double": ">f8", "float": ">f4", "long": ">i8", "int": ">i4", "short": ">i2",
                    "unsignedByte": "u1"}
_STREAM = b'<STREAM encoding="base64">'


def _votable_bytes(table: Any) -> bytes:
    """A VOTable 1.4 (BINARY2) of an astropy Table, encoded a whole column at a time.

    astropy writes VOTable data a cell at a time in Python (about 20 s for 500,000 rows of 35
    columns); this packs the same BINARY2 stream with numpy: per row a null bitmask, then each
    field big-endian. astropy writes the header and a sample of rows (the first, and each
    column's first null), and the packed stream of that sample must equal astropy's; a table
    with a field this packer does not know is written by astropy whole (same file, slower).
    """
    sample = np.unique(np.concatenate([np.arange(min(len(table), 16)),
                                       [int(np.argmax(_mask(table[c]))) for c in table.colnames]]))
    reference = _votable_xml(table[sample])
    start = reference.index(_STREAM) + len(_STREAM)
    end = reference.index(b"</STREAM>", start)
    fields = _votable_fields(table)
    packed_sample = _binary2_stream(table[sample], fields)
    if packed_sample is None or packed_sample.tobytes() != base64.b64decode(reference[start:end]):
        return _votable_xml(table)
    stream = _binary2_stream(table, fields)
    assert stream is not None  # the sample had every field
    sample_text = reference[start:end]
    before = sample_text[:len(sample_text) - len(sample_text.lstrip())]  # astropy's whitespace,
    after = sample_text[len(sample_text.rstrip()):]                       # so the file is its own
    return b"".join([reference[:start], before, base64.b64encode(stream), after, reference[end:]])


def _votable(table: Any) -> Any:
    """astropy's VOTable of `table`, BINARY2, with booleans as "boolean" (T/F), not "bit"."""
    from astropy.io.votable import converters, from_table

    votable = from_table(table)
    first = votable.get_first_table()
    first.format = "binary2"
    for field in first.fields:
        if field.datatype == "bit":
            field.datatype = "boolean"
            field.converter = converters.get_converter(field)
    return votable


def _votable_xml(table: Any) -> bytes:
    buffer = io.BytesIO()
    _votable(table).to_xml(buffer)
    return buffer.getvalue()


def _votable_fields(table: Any) -> list[tuple[str, str | None]]:
    return [(f.datatype, f.arraysize) for f in _votable(table[:1]).get_first_table().fields]


def _mask(column: Any) -> np.ndarray:
    mask = getattr(column, "mask", None)
    return np.zeros(len(column), bool) if mask is None else np.asarray(mask, bool).reshape(len(column))


def _binary2_stream(table: Any, fields: list[tuple[str, str | None]]) -> np.ndarray | None:
    """The BINARY2 rows of `table` for VOTable `fields` (datatype, arraysize) as uint8, or None
    when a field is of a kind not packed here."""
    n = len(table)
    masks = np.column_stack([_mask(table[name]) for name in table.colnames])    # (n, columns)
    null_bits = np.packbits(masks, axis=1)                                       # (n, bytes), MSB first
    layout: list[tuple[str, Any]] = [("nulls", "u1", (null_bits.shape[1],))]   # type: ignore[list-item]
    values = [null_bits]
    for k, ((datatype, arraysize), name) in enumerate(zip(fields, table.colnames)):
        data = np.ma.getdata(table[name])                                       # under a mask: as written
        if datatype in _VOTABLE_NUMBERS and arraysize is None:
            layout.append((f"c{k}", _VOTABLE_NUMBERS[datatype]))
            values.append(data)
        elif datatype == "boolean" and arraysize is None:
            layout.append((f"c{k}", "S1"))
            values.append(np.where(data, b"T", b"F"))
        elif datatype == "unicodeChar" and arraysize is not None and arraysize.isdigit():
            width = int(arraysize)
            codes = np.ascontiguousarray(data.astype(f"U{width}")).view(np.uint32).reshape(n, width)
            if codes.size and codes.max() > 0xFFFF:
                return None  # needs UTF-16 surrogate pairs
            layout.append((f"c{k}", ">u2", (width,)))
            values.append(codes)
        else:
            return None
    rows = np.empty(n, dtype=np.dtype(layout))  # packed: no alignment padding
    for (field, *_), value in zip(layout, values):
        rows[field] = value
    return rows.view(np.uint8)


def read_catalog_bytes(data: bytes, filename: str, max_bytes: int = MAX_UPLOAD_BYTES) -> pd.DataFrame:
    """A catalog file's bytes as a DataFrame, in one of `EXPORT_FORMATS` chosen by the suffix of
    `filename` (.vot, .votable or .xml for VOTable; .fit, .fts for FITS), parsed as data only and
    refused beyond `max_bytes` or without rows. Raises `GalexploreError` naming the file."""
    name = display_name(filename)
    if len(data) > max_bytes:
        raise GalexploreError(f"{name}: {len(data):,} bytes; an uploaded catalog may have at most {max_bytes:,} bytes")
    suffix = ("." + name.rsplit(".", 1)[-1].lower()) if "." in name else ""
    fmt = next((f for f, spec in EXPORT_FORMATS.items() if suffix == spec.suffix), _UPLOAD_SUFFIXES.get(suffix))
    if fmt is None:
        expected = ", ".join(sorted({spec.suffix for spec in EXPORT_FORMATS.values()} | set(_UPLOAD_SUFFIXES)))
        raise GalexploreError(f"{name}: unknown catalog format {suffix or '(no suffix)'!r}; expected one of {expected}")
    table = _parse_upload(data, name, fmt)
    if len(table) == 0:
        raise GalexploreError(f"{name}: the catalog has no rows; expected one row per object")
    return table


def display_name(filename: str) -> str:
    """The last part of a browser's or a user's file name: for messages only."""
    return re.split(r"[\\/]", str(filename))[-1] or "upload"


def read_uploaded_catalog(data: bytes, filename: str, max_bytes: int = MAX_UPLOAD_BYTES) -> pd.DataFrame:
    """A catalog a user uploaded (e.g. positions to cross-match), read by `read_catalog_bytes`.

    Its RA and Dec columns are found by name in any case (ra, RA, Dec, ...) and renamed ``ra``
    and ``dec``, float64 degrees, every row in range. Raises `GalexploreError` naming the file,
    and the column and row, otherwise.
    """
    name = display_name(filename)
    table = read_catalog_bytes(data, filename, max_bytes)
    by_lower: dict[str, list[str]] = {}
    for column in table.columns:
        by_lower.setdefault(str(column).lower(), []).append(column)
    found = ", ".join(map(str, table.columns)) or "(none)"
    for want in ("ra", "dec"):
        matches = by_lower.get(want, [])
        if len(matches) != 1:
            what = f"no {want!r} column" if not matches else f"{len(matches)} {want!r} columns ({', '.join(matches)})"
            raise GalexploreError(f"{name}: {what}; expected one column each of ra and dec in degrees "
                                  f"(any case); found columns: {found}")
        table = table.rename(columns={matches[0]: want})
    from galexplore.survey.base import check_coordinates

    return check_coordinates(table.reset_index(drop=True), name)


_UPLOAD_SUFFIXES = {".votable": "votable", ".xml": "votable", ".fit": "fits", ".fts": "fits"}


def _parse_upload(data: bytes, name: str, fmt: str) -> pd.DataFrame:
    """The bytes of a catalog file of format `fmt` as a DataFrame (data only)."""
    from galexplore.survey.catalogs import (
        parse_csv_catalog,
        read_fits_catalog,
        read_parquet_catalog,
        table_to_frame,
    )

    if fmt == "csv":
        return parse_csv_catalog(data, name)
    if fmt == "fits":
        return table_to_frame(read_fits_catalog(io.BytesIO(data), name), ())
    if fmt == "parquet":
        return read_parquet_catalog(io.BytesIO(data), name)
    from xml.parsers.expat import ExpatError

    from astropy.io.votable import parse_single_table

    try:
        return table_to_frame(parse_single_table(io.BytesIO(data)).to_table(), ())
    except (ValueError, IndexError, ExpatError) as exc:  # VOTable spec errors are ValueErrors
        raise GalexploreError(f"{name}: not a readable VOTable ({str(exc).splitlines()[0]})") from None


def export_name(atlas_name: str, fmt: str, when: datetime.datetime) -> str:
    """The download's file name, e.g. ``demo-selection-20261129T101500Z.fits``: only
    [A-Za-z0-9._-], so nothing that reaches it from a browser can become a path.

    >>> import datetime
    >>> export_name("../../etc/passwd", "csv", datetime.datetime(2026, 11, 29, 10, 15, tzinfo=datetime.timezone.utc))
    'etc_passwd-selection-20261129T101500Z.csv'
    """
    if fmt not in EXPORT_FORMATS:
        raise GalexploreError(f"unknown export format {fmt!r}; expected one of {', '.join(EXPORT_FORMATS)}")
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)  # a naive time is taken as UTC
    stamp = when.astimezone(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", str(atlas_name)).strip("._-")[:MAX_NAME_CHARS].strip("._-")
    return f"{name or 'atlas'}-selection-{stamp}{EXPORT_FORMATS[fmt].suffix}"
