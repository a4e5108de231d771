"""The `Survey` abstraction: lazy, validated access to cutouts and a catalog.

Every source (HDF5, FITS, an image folder, arrays in memory) is read through the same interface:

- ``len(survey)`` objects, each a float32 cutout of shape ``survey.shape == (C, H, W)``;
- ``survey[i]`` one cutout, ``survey.read(indices)`` a batch (B, C, H, W), read on demand;
- ``survey.catalog``: a pandas DataFrame, one row per object, with ``object_id``, ``ra`` and
  ``dec`` (degrees; NaN in every row of a survey read with ``survey.positions = "none"``) and
  every other column the source holds, renamed as the config says.

Images are never all loaded into memory; the catalog is (it is small next to the pixels).
Non-finite pixels are rejected or replaced by zero, as the config's ``nonfinite`` says.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

import numpy as np
import pandas as pd

from galexplore.errors import SurveyError

REQUIRED_COLUMNS = ("object_id", "ra", "dec")
#: the way out offered wherever a catalog turns out to have no sky positions
NO_POSITIONS_HINT = 'for a catalog without sky positions, set survey.positions = "none" (ra and dec are then NaN)'
#: no cutout is larger than this on a side (as config's survey.image_size) or has more bands: a
#: bigger header is corrupt or not a cutout survey, refused before any pixel is read or allocated
MAX_CUTOUT_SIDE = 4096
MAX_BANDS = 256


class Survey(abc.ABC):
    """Lazy random access to a survey's cutouts (float32, (C, H, W)) and its catalog."""

    #: what the survey was read from, used in every error message (a path, or "<memory>")
    source: str
    #: band names, one per channel
    bands: tuple[str, ...]
    #: arcsec per pixel, when known
    pixel_scale: float | None
    #: (C, H, W) of every cutout
    shape: tuple[int, int, int]
    #: one row per object: object_id, ra, dec and every other column
    catalog: pd.DataFrame
    #: "reject" (raise on NaN/inf pixels) or "mask" (replace them by 0 and count them)
    nonfinite: str = "reject"
    #: how many non-finite pixels were replaced by 0 so far (nonfinite = "mask")
    nonfinite_masked: int = 0
    #: the step between pixel values when they are quantised (1/255 for 8-bit images), else None
    quantum: float | None = None
    #: True when the pixels are an already-stretched colour composite (display values, not fluxes)
    composite: bool = False

    def __len__(self) -> int:
        return len(self.catalog)

    def __getitem__(self, index: int) -> np.ndarray:
        """One cutout, float32 (C, H, W)."""
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"{self.source}: object index {index} out of range for {n} objects")
        return self.read([index % n])[0]

    def read(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Cutouts for `indices`, float32 (B, C, H, W), in the order asked, validated."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            bad = int(idx[(idx < 0) | (idx >= len(self))][0])
            raise IndexError(f"{self.source}: object index {bad} out of range for {len(self)} objects")
        batch = np.asarray(self._read(idx), dtype=np.float32)
        return self._check_batch(batch, idx)

    @abc.abstractmethod
    def _read(self, indices: np.ndarray) -> np.ndarray:
        """Raw cutouts for the valid indices `indices` (B,), as (B, C, H, W)."""

    def close(self) -> None:
        """Release open files. Reading after close is an error."""

    def __enter__(self) -> Survey:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        c, h, w = self.shape
        return f"<{type(self).__name__} {self.source!r}: {len(self)} x {c}x{h}x{w} ({','.join(self.bands)})>"

    def _check_batch(self, batch: np.ndarray, idx: np.ndarray) -> np.ndarray:
        if batch.shape[1:] != self.shape:
            raise SurveyError(
                f"{self.source}: cutout of object row {int(idx[0])} has shape {batch.shape[1:]}, "
                f"expected {self.shape} (C, H, W)"
            )
        finite = np.isfinite(batch)
        if not finite.all():
            per_object = (~finite).reshape(len(batch), -1).sum(axis=1)
            if self.nonfinite == "reject":
                row = int(idx[np.flatnonzero(per_object)[0]])
                oid = self.catalog["object_id"].iloc[row]
                raise SurveyError(
                    f"{self.source}: cutout of object row {row} (object_id {oid}) has "
                    f"{int(per_object.max())} non-finite (NaN/inf) pixels; expected none. Set "
                    f"survey.nonfinite = \"mask\" to replace them by 0"
                )
            self.nonfinite_masked += int(per_object.sum())
            batch = np.where(finite, batch, np.float32(0))
        return batch


def check_cutout_shape(shape: tuple[int, int, int], source: str) -> None:
    """Refuse a declared cutout shape (C, H, W) beyond `MAX_BANDS` x `MAX_CUTOUT_SIDE`^2."""
    c, h, w = shape
    if c > MAX_BANDS or h > MAX_CUTOUT_SIDE or w > MAX_CUTOUT_SIDE:
        raise SurveyError(
            f"{source}: cutouts of {c}x{h}x{w} (C x H x W) are absurdly large; expected at most "
            f"{MAX_BANDS} bands of {MAX_CUTOUT_SIDE}x{MAX_CUTOUT_SIDE} pixels. The file is corrupt or "
            f"not a cutout survey"
        )


def check_catalog(catalog: pd.DataFrame, n_images: int, source: str, positions: str = "catalog") -> pd.DataFrame:
    """Validate a catalog against its images: length, required columns, ids, coordinates.

    `positions` is survey.positions: "catalog" (every row has RA/Dec) or "none" (no row has).
    Returns the catalog with a fresh RangeIndex. Raises `SurveyError` naming the file, the
    column, the row and what was expected versus found.
    """
    if len(catalog) != n_images:
        raise SurveyError(
            f"{source}: catalog has {len(catalog)} rows but there are {n_images} images; "
            f"expected one catalog row per image"
        )
    for col in REQUIRED_COLUMNS:
        if col not in catalog.columns:
            hint = f"; {NO_POSITIONS_HINT}" if not {"ra", "dec"} & set(catalog.columns) else ""
            raise SurveyError(
                f"{source}: catalog has no '{col}' column; found columns: "
                f"{', '.join(map(str, catalog.columns)) or '(none)'}{hint}"
            )
    repeated = catalog.columns[catalog.columns.duplicated()]
    if len(repeated):
        raise SurveyError(f"{source}: column {str(repeated[0])!r} appears more than once; expected each column name once")
    catalog = catalog.reset_index(drop=True)
    ids = catalog["object_id"]
    missing = ids.isna().to_numpy(dtype=bool)
    if ids.dtype == object:  # e.g. lists from a Parquet file: not an id, and not hashable
        missing = missing | ~ids.map(lambda v: isinstance(v, (str, bytes, int, float, np.number))).to_numpy(dtype=bool)
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise SurveyError(
            f"{source}: column 'object_id' row {row} is {_plain(ids.iloc[row])!r}; expected an id "
            f"(a number or a string) in every row"
        )
    dup = ids.duplicated(keep=False)
    if dup.any():
        rows = np.flatnonzero(dup.to_numpy())[:2]
        raise SurveyError(
            f"{source}: duplicate object_id {_plain(catalog['object_id'].iloc[rows[0]])!r} in rows "
            f"{rows[0]} and {rows[1]}; expected unique ids"
        )
    if positions == "catalog" and len(catalog) and catalog[["ra", "dec"]].isna().all().any():
        col = "ra" if catalog["ra"].isna().all() else "dec"
        raise SurveyError(f"{source}: column '{col}' is empty (no row has a value); {NO_POSITIONS_HINT}")
    return check_coordinates(catalog, source, positions)


def check_coordinates(catalog: pd.DataFrame, source: str, positions: str = "catalog") -> pd.DataFrame:
    """Check that `catalog`'s ra and dec columns are finite degrees in range, or, with `positions`
    "none" (survey.positions), NaN in every row; make them float64 (in place; `catalog` is
    returned). Raises `SurveyError` naming the column and row."""
    for col, lo, hi in (("ra", 0.0, 360.0), ("dec", -90.0, 90.0)):
        if positions == "none":
            given = np.flatnonzero(catalog[col].notna().to_numpy())
            if given.size:
                row = int(given[0])
                raise SurveyError(
                    f"{source}: column '{col}' row {row} is {_plain(catalog[col].iloc[row])!r}, but "
                    f'survey.positions = "none" says the catalog has no sky positions; remove '
                    f"survey.positions to use them, or keep the column under another name "
                    f'(survey.rename = {{ {col} = "{col}_catalog" }})'
                )
            catalog[col] = np.full(len(catalog), np.nan)
            continue
        try:
            values = pd.to_numeric(catalog[col], errors="raise").to_numpy(dtype=np.float64)
        except (ValueError, TypeError):
            row = int(np.flatnonzero(pd.to_numeric(catalog[col], errors="coerce").isna())[0])
            raise SurveyError(
                f"{source}: column '{col}' row {row} is {_plain(catalog[col].iloc[row])!r}; expected degrees"
            ) from None
        ok = np.isfinite(values) & (values >= lo) & (values < hi if col == "ra" else values <= hi)
        if not ok.all():
            row = int(np.flatnonzero(~ok)[0])
            raise SurveyError(
                f"{source}: column '{col}' row {row} is {float(values[row])!r}; expected "
                f"{lo} <= {col} {'<' if col == 'ra' else '<='} {hi} degrees"
            )
        catalog[col] = values
    return catalog


def _plain(value: object) -> object:
    """A numpy scalar as the Python value it holds, so messages say 7, not np.int64(7)."""
    return value.item() if isinstance(value, np.generic) else value


def rename_columns(catalog: pd.DataFrame, rename: dict[str, str], source: str) -> pd.DataFrame:
    """Rename catalog columns as the config says (e.g. specz_redshift -> z_spec)."""
    missing = [k for k in rename if k not in catalog.columns]
    if missing:
        raise SurveyError(
            f"{source}: survey.rename names column '{missing[0]}', which the catalog lacks; "
            f"found columns: {', '.join(map(str, catalog.columns))}"
        )
    kept = [c for c in catalog.columns if c not in rename]
    taken = [(k, v) for k, v in rename.items() if v in kept or list(rename.values()).count(v) > 1]
    if taken:
        old, new = taken[0]
        raise SurveyError(
            f"{source}: survey.rename maps '{old}' to '{new}', a name another column already has "
            f"or gets; expected each new name once"
        )
    return catalog.rename(columns=rename)


def standard_columns(
    catalog: pd.DataFrame, id_column: str, ra_column: str, dec_column: str, source: str,
    positions: str = "catalog",
) -> pd.DataFrame:
    """Map the source's id/RA/Dec column names to object_id/ra/dec; ids default to row numbers.

    With `positions` "none" (survey.positions) the catalog has no sky positions: absent ra and
    dec columns are added, NaN throughout (`check_coordinates` refuses any value in them).
    """
    catalog = catalog.copy()
    if id_column in catalog.columns:
        if id_column != "object_id":
            catalog = catalog.rename(columns={id_column: "object_id"})
    elif "object_id" not in catalog.columns:
        catalog.insert(0, "object_id", np.arange(len(catalog), dtype=np.int64))
    for want, have in (("ra", ra_column), ("dec", dec_column)):
        if positions == "none":
            if want not in catalog.columns:
                catalog[want] = np.full(len(catalog), np.nan)
        elif have != want and have in catalog.columns:
            if want in catalog.columns:
                raise SurveyError(
                    f"{source}: catalog has both '{have}' (configured as {want}) and '{want}'; "
                    f"expected one of them"
                )
            catalog = catalog.rename(columns={have: want})
    front = [c for c in REQUIRED_COLUMNS if c in catalog.columns]
    return catalog[front + [c for c in catalog.columns if c not in front]]
