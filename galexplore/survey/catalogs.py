"""Catalog files (CSV, a FITS table or Parquet), read into DataFrames with clear errors.

Shared by the FITS and image-folder readers, `build --catalog` and uploads: reading the file,
finding each object's RA/Dec (columns, or IAU names parsed into columns), and the column naming
each object's image file.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np
import pandas as pd

from galexplore.config import SurveyConfig
from galexplore.errors import SurveyError, reason
from galexplore.io import check_regular_file
from galexplore.survey.base import NO_POSITIONS_HINT, REQUIRED_COLUMNS, rename_columns, standard_columns
from galexplore.survey.coords import parse_iau_names

if TYPE_CHECKING:
    from astropy.table import Table

#: columns searched for IAU names when the catalog has no ra/dec and survey.name_column is unset
IAU_NAME_COLUMNS = ("iauname", "name")
FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fz")


def read_csv_catalog(path: Path, text_columns: tuple[str, ...] = ()) -> pd.DataFrame:
    """A UTF-8 CSV catalog as a DataFrame; `text_columns` are kept as strings (file names, ids)."""
    check_regular_file(path, "a CSV catalog file", SurveyError)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SurveyError(f"{path}: catalog file not found") from None
    except IsADirectoryError:
        raise SurveyError(f"{path}: is a folder, expected a CSV catalog file") from None
    return parse_csv_catalog(raw, str(path), text_columns)


def parse_csv_catalog(raw: bytes, source: str, text_columns: tuple[str, ...] = ()) -> pd.DataFrame:
    """The bytes of a UTF-8 CSV catalog as a DataFrame; `source` names it in error messages."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        # exc.start counts from after a BOM, if any; report the position in the file.
        start = exc.start + (3 if raw.startswith(b"\xef\xbb\xbf") else 0)
        line = raw[:start].count(b"\n") + 1
        raise SurveyError(
            f"{source}: not UTF-8 text: byte {start} (line {line}) is 0x{raw[start]:02x} "
            f"({exc.reason}); save the catalog as UTF-8"
        ) from None
    try:
        table = pd.read_csv(io.StringIO(text), dtype={c: str for c in text_columns if c}, low_memory=False)
        # pandas renames a repeated header name (ra, ra.1): read the header as written to catch it
        if any(_MANGLED.fullmatch(str(c)) for c in table.columns):
            header = pd.read_csv(io.StringIO(text), header=None, nrows=1, dtype=str, keep_default_na=False)
            check_unique_columns(header.iloc[0].tolist(), source)
    except pd.errors.EmptyDataError:
        raise SurveyError(f"{source}: the catalog is empty; expected a header row and one row per object") from None
    except (pd.errors.ParserError, ValueError) as exc:  # ValueError: e.g. a number beyond any dtype
        raise SurveyError(f"{source}: not a readable CSV catalog ({reason(exc)})") from None
    return table


_MANGLED = re.compile(r".+\.\d+")


def read_fits_catalog(path: Path | BinaryIO, source: str | None = None) -> Table:
    """The first table HDU of a FITS file (a path, or an open binary file named `source` in
    messages), as an astropy Table (convert with `table_to_frame`)."""
    from astropy.io import fits
    from astropy.table import Table

    source = source or str(path)
    if isinstance(path, (str, Path)):
        check_regular_file(path, "a FITS catalog file", SurveyError)
    try:
        with fits.open(path, memmap=False) as hdul:
            for hdu in hdul:
                if isinstance(hdu, (fits.BinTableHDU, fits.TableHDU)):
                    return Table.read(hdu)
    except FileNotFoundError:
        raise SurveyError(f"{source}: catalog file not found") from None
    except (OSError, ValueError) as exc:
        raise SurveyError(f"{source}: not a readable FITS file ({reason(exc)})") from None
    except TypeError as exc:  # numpy's, when a header declares more rows than the file holds
        raise SurveyError(f"{source}: the table header declares more data than the file holds ({reason(exc)}); "
                          f"the file is truncated or corrupt") from None
    raise SurveyError(f"{source}: no table HDU; expected a FITS binary table with one row per object")


def read_parquet_catalog(path: Path | BinaryIO, source: str | None = None) -> pd.DataFrame:
    """A Parquet catalog (a path, or an open binary file named `source` in messages)."""
    import pyarrow as pa

    source = source or str(path)
    if isinstance(path, (str, Path)):
        check_regular_file(path, "a Parquet catalog file", SurveyError)
    try:
        table = pd.read_parquet(path, engine="pyarrow")
    except FileNotFoundError:
        raise SurveyError(f"{source}: catalog file not found") from None
    except (OSError, ValueError, TypeError, pa.ArrowException) as exc:
        raise SurveyError(f"{source}: not a readable Parquet file ({reason(exc)})") from None
    check_unique_columns(list(table.columns), source)
    return table


def read_catalog_file(path: Path, text_columns: tuple[str, ...] = ()) -> pd.DataFrame | Table:
    """A CSV or Parquet (DataFrame) or FITS-table (astropy Table) catalog, chosen by the file's suffix."""
    if path.name.lower().endswith(FITS_SUFFIXES):
        return read_fits_catalog(path)
    if path.suffix.lower() == ".parquet":
        return read_parquet_catalog(path)
    return read_csv_catalog(path, text_columns)


def table_to_frame(table: pd.DataFrame | Table, bands: tuple[str, ...]) -> pd.DataFrame:
    """A DataFrame from a DataFrame or an astropy Table; (N, k) columns split into k columns.

    A column with one value per band (e.g. ``flux`` of shape (N, C)) becomes ``flux_<band>``,
    any other width ``flux_0 .. flux_<k-1>``, as the HDF5 reader does.
    """
    if isinstance(table, pd.DataFrame):
        return table
    flat = [name for name in table.colnames if table[name].ndim == 1]
    frame = table[flat].to_pandas(index=False) if flat else pd.DataFrame(index=range(len(table)))
    for name in table.colnames:
        if name in flat:
            continue
        values = np.asarray(table[name]).reshape(len(table), -1)
        values = values.astype(values.dtype.newbyteorder("="))  # FITS is big-endian
        names = bands if values.shape[1] == len(bands) else [str(j) for j in range(values.shape[1])]
        for j, suffix in enumerate(names):
            frame[f"{name}_{suffix}"] = values[:, j]
    return frame


def column_values(table: pd.DataFrame | Table, column: str) -> list | None:
    """One column of a DataFrame or astropy Table as a Python list (None for missing column)."""
    names = table.columns if isinstance(table, pd.DataFrame) else table.colnames
    if column not in names:
        return None
    values = table[column]
    return values.tolist() if isinstance(table, pd.DataFrame) else list(np.asarray(values))


def file_names(table: pd.DataFrame | Table, file_column: str, source: str) -> np.ndarray:
    """Each object's file name (object array of str, stripped) from the catalog's file column."""
    values = column_values(table, file_column)
    if values is None:
        names = table.columns if isinstance(table, pd.DataFrame) else table.colnames
        raise SurveyError(
            f"{source}: catalog has no '{file_column}' column (survey.file_column) naming each "
            f"object's file; found columns: {', '.join(map(str, names)) or '(none)'}"
        )
    files = np.empty(len(values), dtype=object)
    for row, value in enumerate(values):
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        if not isinstance(text, str) or not text.strip():
            raise SurveyError(
                f"{source}: column '{file_column}' row {row} is {value!r}; expected a file name "
                f"relative to the survey folder"
            )
        name = text.strip()
        # a name that leaves the folder would let a shared catalog read any file on the machine
        normal = os.path.normpath(name.replace("\\", "/"))
        if os.path.isabs(normal) or normal == ".." or normal.startswith("../") or "\0" in name:
            raise SurveyError(
                f"{source}: column '{file_column}' row {row} is {name!r}, a path outside the survey "
                f"folder; expected a file name relative to the folder and inside it"
            )
        files[row] = name
    return files


def check_unique_columns(names: list, source: str) -> None:
    """Refuse a catalog whose header names a column twice (a reader would keep one, or rename
    the other, and the wrong values would be used silently)."""
    seen: dict[str, int] = {}
    for position, name in enumerate(map(str, names)):
        if name in seen:
            raise SurveyError(
                f"{source}: column {name!r} appears twice in the header (columns {seen[name] + 1} and "
                f"{position + 1}); expected each column name once"
            )
        seen[name] = position


def catalog_positions(catalog: pd.DataFrame, cfg: SurveyConfig, source: str) -> pd.DataFrame:
    """Rename columns as configured and make object_id/ra/dec, parsing IAU names when needed.

    RA/Dec come from the configured columns when both exist; otherwise from IAU names in
    survey.name_column, or in an ``iauname``/``name`` column found by itself. With
    survey.positions = "none" there are none: ra and dec are NaN (see `standard_columns`).
    """
    catalog = rename_columns(catalog, cfg.rename, source)
    catalog = standard_columns(catalog, cfg.id_column, cfg.ra_column, cfg.dec_column, source, cfg.positions)
    has = [c in catalog.columns for c in ("ra", "dec")]
    if all(has):
        return catalog
    if any(has):
        have, lack = ("ra", "dec") if has[0] else ("dec", "ra")
        raise SurveyError(
            f"{source}: catalog has '{have}' but no '{lack}' column (survey.{lack}_column = "
            f"{getattr(cfg, lack + '_column')!r}); expected both"
        )
    if cfg.name_column:
        if cfg.name_column not in catalog.columns:
            raise SurveyError(
                f"{source}: catalog has no '{cfg.name_column}' column (survey.name_column) and no "
                f"'{cfg.ra_column}'/'{cfg.dec_column}'; found columns: {', '.join(map(str, catalog.columns))}"
            )
        name_column = cfg.name_column
    else:
        lower = {str(c).lower(): c for c in catalog.columns}
        found = [lower[c] for c in IAU_NAME_COLUMNS if c in lower]
        if not found:
            raise SurveyError(
                f"{source}: catalog has no RA/Dec: expected columns '{cfg.ra_column}' and "
                f"'{cfg.dec_column}' (survey.ra_column, survey.dec_column) or IAU names in "
                f"survey.name_column (or an 'iauname'/'name' column); found columns: "
                f"{', '.join(map(str, catalog.columns))}; {NO_POSITIONS_HINT}"
            )
        name_column = found[0]
    ra, dec = parse_iau_names(catalog[name_column], source=f"{source}: column '{name_column}'")
    catalog = catalog.copy()
    catalog["ra"], catalog["dec"] = ra, dec
    front = [c for c in REQUIRED_COLUMNS if c in catalog.columns]
    return catalog[front + [c for c in catalog.columns if c not in front]]
