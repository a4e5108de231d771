"""What the explorer does per interaction, as plain functions over an atlas: no Panel here.

- `MapIndex`: built once per process from the map (umap_x, umap_y) and sky (ra, dec) coordinates
  and shared read-only by every session: the galaxy nearest a click, the rows inside a lasso or a
  box, the galaxy nearest a sky position.
- `combine`, `find`, `parse_position`, `similar`: a session's selection, the search box, the
  similar-galaxy gallery.
- `export_selection`, `export_name`, `EXPORT_FORMATS`: a selection as CSV, FITS, VOTable or Parquet.
- `sky_links`: where to look at a galaxy in the SDSS and Legacy Survey viewers.
- `CutoutSource`: colour and per-band cutouts of atlas galaxies as PNG bytes, read from the survey
  the atlas was built from.

Every call's work is proportional to what it returns (a selection, a gallery), not to N, once
the index is built: a lasso around 10^5 of 10^6 galaxies takes tens of milliseconds.
"""

from __future__ import annotations

import base64
import collections
import datetime
import io
import math
import re
import threading
import tomllib
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from galexplore.errors import GalexploreError, SurveyError
from galexplore.render import DISPLAY_CHANNELS, lupton_rgb

ARCSEC_PER_RADIAN = 180.0 / math.pi * 3600.0
FIRST_COLUMNS = ("object_id", "ra", "dec")
COMBINE_MODES = ("replace", "add", "subtract")
POSITION_FORMS = ("decimal degrees '150.1 2.2' or '150.1, +2.2', or sexagesimal hours and degrees "
                  "'10h00m24s +02d12m00s' or '10:00:24.0 +02:12:00'")
MAX_NAME_CHARS = 80  # of the atlas name inside an export file name


# -- the map and the sky ---------------------------------------------------------------------------

class MapIndex:
    """Spatial lookups on the 2-D map and on the sky for N galaxies, built once per process per
    atlas (about a second for 10^6) and shared read-only by all sessions.

    Rows whose coordinates are not finite are never returned. Every method returns atlas rows.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, ra: np.ndarray, dec: np.ndarray) -> None:
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        ra, dec = np.asarray(ra, np.float64), np.asarray(dec, np.float64)
        if not (x.shape == y.shape == ra.shape == dec.shape and x.ndim == 1):
            raise ValueError(f"x, y, ra, dec must be 1-D of one length; got shapes "
                             f"{x.shape}, {y.shape}, {ra.shape}, {dec.shape}")
        self.n = len(x)
        # Map: rows sorted by x, so a box's x-range is one slice (searchsorted) and only its
        # candidates are tested against y and the polygon.
        on_map = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
        by_x = on_map[np.argsort(x[on_map], kind="stable")]
        self._order = by_x.astype(np.int64)               # (M,) rows by increasing x
        self._xs, self._ys = x[by_x], y[by_x]             # (M,) their coordinates
        self._map_rows = on_map.astype(np.int64)
        self._map_tree = cKDTree(np.column_stack([x[on_map], y[on_map]])) if on_map.size else None
        # Sky: unit vectors (3-D), where the nearest chord is the nearest angle, across RA = 0/360
        # and at the poles alike.
        on_sky = np.flatnonzero(np.isfinite(ra) & np.isfinite(dec))
        self._ra, self._dec = ra, dec
        self._sky_rows = on_sky.astype(np.int64)
        self._sky_tree = cKDTree(unit_vectors(ra[on_sky], dec[on_sky])) if on_sky.size else None

    def __len__(self) -> int:
        return self.n

    def nearest(self, x: float, y: float) -> tuple[int, float]:
        """The row nearest map point (x, y) and its distance in map units."""
        if self._map_tree is None:
            raise GalexploreError("no galaxy has map coordinates")
        if not (math.isfinite(x) and math.isfinite(y)):
            raise GalexploreError(f"map point ({x}, {y}) is not finite")
        distance, k = self._map_tree.query([float(x), float(y)])
        return int(self._map_rows[k]), float(distance)

    def in_box(self, x0: float, x1: float, y0: float, y1: float) -> np.ndarray:
        """Sorted int64 rows with x0 <= x <= x1 and y0 <= y <= y1 (corners in any order)."""
        (x0, x1), (y0, y1) = sorted((float(x0), float(x1))), sorted((float(y0), float(y1)))
        lo, hi = np.searchsorted(self._xs, x0, side="left"), np.searchsorted(self._xs, x1, side="right")
        ys = self._ys[lo:hi]
        return np.sort(self._order[lo:hi][(ys >= y0) & (ys <= y1)])

    def in_polygon(self, polygon: np.ndarray) -> np.ndarray:
        """Sorted int64 rows strictly inside `polygon` (n, 2), vertices in map coordinates.

        Any polygon, convex or not. A lasso that crosses itself selects everything its loops
        enclose (shapely's "structure" repair: a figure eight's two lobes, all of a lasso drawn
        twice around, the overlap of one that overshoots its start), as the nonzero winding rule
        does, not the even-odd rule, which would drop what is circled twice. Fewer than 3
        distinct vertices, or no area, select nothing.
        """
        import shapely

        vertices = np.asarray(polygon, np.float64).reshape(-1, 2)
        vertices = vertices[np.isfinite(vertices).all(axis=1)]
        if len(np.unique(vertices, axis=0)) < 3:
            return np.empty(0, np.int64)
        shape = shapely.polygons(vertices)
        if not shapely.is_valid(shape):
            shape = shapely.make_valid(shape, method="structure", keep_collapsed=False)
        if shape.is_empty or shape.area == 0.0:
            return np.empty(0, np.int64)
        x0, y0, x1, y1 = shape.bounds
        lo, hi = np.searchsorted(self._xs, x0, side="left"), np.searchsorted(self._xs, x1, side="right")
        ys = self._ys[lo:hi]
        box = np.flatnonzero((ys >= y0) & (ys <= y1)) + lo          # candidates, in x order
        shapely.prepare(shape)
        inside = shapely.contains_xy(shape, self._xs[box], self._ys[box])
        return np.sort(self._order[box[inside]])

    def nearest_sky(self, ra: float, dec: float) -> tuple[int, float]:
        """The row nearest sky position (ra, dec) in degrees, and its separation in arcsec."""
        if self._sky_tree is None:
            raise GalexploreError("no galaxy has sky coordinates")
        if not (math.isfinite(ra) and math.isfinite(dec)):
            raise GalexploreError(f"sky position ({ra}, {dec}) is not finite")
        _, k = self._sky_tree.query(unit_vectors(np.array([float(ra)]), np.array([float(dec)]))[0])
        row = int(self._sky_rows[k])
        return row, angular_separation(ra, dec, self._ra[row], self._dec[row]) * ARCSEC_PER_RADIAN


def unit_vectors(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """(N, 3) unit vectors of sky positions (degrees)."""
    ra, dec = np.radians(ra), np.radians(dec)
    cos_dec = np.cos(dec)
    return np.column_stack([cos_dec * np.cos(ra), cos_dec * np.sin(ra), np.sin(dec)])


def angular_separation(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    """The angle (radians) between two sky positions in degrees, by the Vincenty formula:
    accurate at every separation, as astropy's `SkyCoord.separation`."""
    l1, b1, l2, b2 = map(math.radians, (ra1, dec1, ra2, dec2))
    dl = l2 - l1
    num1 = math.cos(b2) * math.sin(dl)
    num2 = math.cos(b1) * math.sin(b2) - math.sin(b1) * math.cos(b2) * math.cos(dl)
    den = math.sin(b1) * math.sin(b2) + math.cos(b1) * math.cos(b2) * math.cos(dl)
    return math.atan2(math.hypot(num1, num2), den)


# -- selections, search, similar galaxies ----------------------------------------------------------

def combine(current: np.ndarray, new: np.ndarray, mode: str) -> np.ndarray:
    """A selection after a new lasso: "replace" it, "add" to it or "subtract" from it.
    Sorted unique int64 rows."""
    current, new = np.asarray(current, np.int64).ravel(), np.asarray(new, np.int64).ravel()
    if mode == "replace":
        return np.unique(new)
    if mode == "add":
        return np.union1d(current, new)
    if mode == "subtract":
        return np.setdiff1d(current, new)
    raise ValueError(f"combine mode {mode!r}; expected one of {', '.join(COMBINE_MODES)}")


_DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)")
_FIELDS = re.compile(r"\d+\.?\d*|\.\d+")


def parse_position(text: str) -> tuple[float, float]:
    """(ra, dec) in degrees from what a person types: decimal degrees, or sexagesimal with the
    RA in hours. `GalexploreError` saying why and what is expected otherwise.

    >>> parse_position("150.1, +2.2")
    (150.1, 2.2)
    >>> [round(v, 6) for v in parse_position("10:00:24.0 -02:12:00")]
    [150.1, -2.2]
    """
    try:
        return _parse_position(text)
    except _NotAPosition as exc:
        raise GalexploreError(f"cannot read {text!r} as a position: {exc}; expected {POSITION_FORMS}") from None


class _NotAPosition(ValueError):
    pass


def _parse_position(text: str) -> tuple[float, float]:
    from astropy import units as u
    from astropy.coordinates import Angle

    tokens = str(text).replace(",", " ").split()
    if len(tokens) == 2:
        ra_text, dec_text = tokens
    elif len(tokens) == 6:  # "10 00 24.0 +02 12 00"
        ra_text, dec_text = " ".join(tokens[:3]), " ".join(tokens[3:])
    else:
        raise _NotAPosition(f"{len(tokens)} part{'' if len(tokens) == 1 else 's'}, not an RA and a Dec")
    ra_unit = u.deg if _DECIMAL.fullmatch(ra_text) else u.hourangle  # units written in the text win
    for name, part in (("RA", ra_text), ("Dec", dec_text)):
        fields = [float(f) for f in _FIELDS.findall(part)]
        # astropy would carry a minute or second of 60 or more into the next field, with a warning
        if any(f >= 60.0 for f in fields[1:3]):
            raise _NotAPosition(f"{name} {part!r} has minutes or seconds of 60 or more")
    try:
        ra = Angle(ra_text, unit=ra_unit).degree
        dec = Angle(dec_text, unit=u.deg).degree
    except (ValueError, u.UnitsError) as exc:
        raise _NotAPosition(str(exc).rstrip(".")) from None
    if not (math.isfinite(ra) and 0.0 <= ra <= 360.0):
        raise _NotAPosition(f"RA {ra:g} deg is outside 0 to 360 deg (0h to 24h)")
    if not (math.isfinite(dec) and -90.0 <= dec <= 90.0):
        raise _NotAPosition(f"Dec {dec:g} deg is outside -90 to +90 deg")
    return float(ra % 360.0), float(dec)


def find(catalog: pd.DataFrame, index: MapIndex, text: str) -> dict[str, Any]:
    """The galaxy a search box means: an exact ``object_id`` (compared in the id column's own
    type), or else the galaxy nearest a position (see `parse_position`).

    Returns {"row": int, "separation_arcsec": float | None, "how": "object_id" | "position"};
    the separation (from the position typed) says how far the nearest galaxy is.
    """
    text = str(text).strip()
    if not text:
        raise GalexploreError("type an object_id or a position (ra dec) to find a galaxy")
    row = _row_of_id(catalog["object_id"], text)
    if row is not None:
        return {"row": row, "separation_arcsec": None, "how": "object_id"}
    try:
        ra, dec = _parse_position(text)
    except _NotAPosition as exc:
        raise GalexploreError(f"no galaxy with object_id {text!r}, and not a position ({exc}); "
                              f"expected an object_id or {POSITION_FORMS}") from None
    row, separation = index.nearest_sky(ra, dec)
    return {"row": row, "separation_arcsec": separation, "how": "position"}


def _row_of_id(ids: pd.Series, text: str) -> int | None:
    """The row whose id equals `text` read in the column's type, else None."""
    kind = ids.dtype.kind if isinstance(ids.dtype, np.dtype) else getattr(ids.dtype, "kind", "O")
    value: Any
    if kind in "iu":
        if not re.fullmatch(r"[+-]?\d+", text):
            return None
        value = int(text)
        info = np.iinfo(ids.dtype) if isinstance(ids.dtype, np.dtype) else np.iinfo(np.int64)
        if not info.min <= value <= info.max:
            return None
    elif kind == "f":
        try:
            value = float(text)
        except ValueError:
            return None
    else:
        value = text
    hits = np.flatnonzero((ids == value).to_numpy(dtype=bool, na_value=False))
    return int(hits[0]) if hits.size else None


def similar(neighbors: np.ndarray, similarities: np.ndarray, row: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The `k` galaxies most similar to `row` (fewer if the atlas kept fewer), best first:
    (rows int64 (k,), cosine similarities float32 (k,))."""
    n = len(neighbors)
    if not 0 <= row < n:
        raise GalexploreError(f"row {row} is outside the atlas's {n} galaxies")
    if k < 1:
        raise GalexploreError(f"k = {k}; expected at least 1 similar galaxy")
    rows = np.asarray(neighbors[row, :k], dtype=np.int64)
    sims = np.asarray(similarities[row, :k], dtype=np.float32)
    kept = rows >= 0  # an approximate search pads rows it could not fill with -1
    return rows[kept], sims[kept]


# -- export ----------------------------------------------------------------------------------------

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
        arrow = pa.Table.from_pandas(_categories_as_text(table), preserve_index=False)
        pyarrow.csv.write_csv(arrow, buffer)
    elif fmt == "fits":
        # FITS text is ASCII; other characters go in as UTF-8, which astropy reads back
        _astropy_table(table, text_as_bytes=True).write(buffer, format="fits")
    else:
        return _votable_bytes(_astropy_table(table, text_as_bytes=False))
    return buffer.getvalue()


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


def sky_links(ra: float, dec: float) -> dict[str, str]:
    """Viewers of the sky at (ra, dec) in degrees, by name: the SDSS SkyServer navigator and
    the Legacy Surveys viewer (DR10), both centred and zoomed in on a galaxy."""
    ra, dec = f"{float(ra):.6f}", f"{float(dec):.6f}"  # no '+': a query string reads it as a space
    return {
        "SDSS SkyServer": f"https://skyserver.sdss.org/dr18/VisualTools/navi?ra={ra}&dec={dec}&scale=0.2",
        "Legacy Surveys": f"https://www.legacysurvey.org/viewer?ra={ra}&dec={dec}&layer=ls-dr10&zoom=16",
    }


# -- cutouts ---------------------------------------------------------------------------------------

class CutoutSource:
    """Colour cutouts of atlas galaxies for the gallery, as PNG bytes.

    Reads the survey recorded in the atlas's manifest (with the config it was built with) by
    random access, and renders Lupton RGB composites (`galexplore.render.lupton_rgb`) or per-band
    grey images, keeping the last `cache_size` images. When the atlas has no survey (built from
    embeddings), or the survey is gone or no longer the one the atlas was built from, every
    method returns None and `reason` says why. Safe to share between sessions (one lock).
    """

    def __init__(self, atlas: Any, cache_size: int = 1024) -> None:
        self.reason: str | None = None
        self.bands: tuple[str, ...] = ()
        self._survey = None
        self._cache: collections.OrderedDict[tuple, Any] = collections.OrderedDict()
        self._cache_size = int(cache_size)
        self._lock = threading.Lock()
        self._n = atlas.n_objects
        self._path: Path | None = None
        try:
            self._survey = _open_atlas_survey(atlas)
        except _NoSurvey as exc:
            self.reason = str(exc)
            return
        self.bands = tuple(self._survey.bands)
        self._path = Path(atlas.manifest["provenance"]["survey"]["path"])

    @property
    def available(self) -> bool:
        return self._survey is not None

    def close(self) -> None:
        with self._lock:
            if self._survey is not None:
                self._survey.close()
                self._survey = None
                self.reason = "closed"

    def rgb_png(self, row: int, size: int = 96) -> bytes | None:
        """A (size x size) colour PNG of galaxy `row`, or None without a survey."""
        images = self.rgb_pngs([row], size)
        return None if images is None else images[0]

    def rgb_pngs(self, rows: Any, size: int = 96) -> list[bytes] | None:
        """Colour PNGs of several galaxies (a gallery) with one survey read, or None."""
        return self._images("rgb", [int(r) for r in rows], int(size))

    def band_pngs(self, row: int, size: int = 64) -> dict[str, bytes] | None:
        """A grey PNG per band of galaxy `row`, by band name, or None without a survey."""
        images = self._images("bands", [int(row)], int(size))
        return None if images is None else images[0]

    def _images(self, kind: str, rows: list[int], size: int) -> list[Any] | None:
        if not 8 <= size <= 1024:
            raise ValueError(f"size = {size}; expected 8 to 1024 pixels")
        for row in rows:
            if not 0 <= row < self._n:
                raise GalexploreError(f"row {row} is outside the atlas's {self._n} galaxies")
        with self._lock:
            if self._survey is None:
                return None
            found = {row: self._cache.get((kind, row, size)) for row in rows}
            missing = sorted({row for row, image in found.items() if image is None})
            if missing:
                try:
                    cutouts = self._survey.read(missing)  # (B, C, H, W)
                except (OSError, SurveyError) as exc:
                    if self._path is not None and self._path.exists():
                        raise  # the survey is there but unreadable: a fault to show, not hide
                    self.reason = f"the survey {self._path} is gone ({exc})"
                    self._survey = None
                    return None
                render = _rgb_png if kind == "rgb" else _band_pngs
                for row, cutout in zip(missing, cutouts):
                    found[row] = self._cache[(kind, row, size)] = render(cutout, self.bands, size)
            for row in rows:
                self._cache.move_to_end((kind, row, size))
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
            return [found[row] for row in rows]


class _NoSurvey(Exception):
    pass


def _open_atlas_survey(atlas: Any) -> Any:
    """The survey an atlas was built from, opened with the config it was built with, checked to
    be the same file and in the same row order; `_NoSurvey` with the reason otherwise."""
    from galexplore.atlas import file_fingerprint
    from galexplore.config import config_from_dict
    from galexplore.survey import open_path, open_survey

    provenance = atlas.manifest.get("provenance") or {}
    recorded = provenance.get("survey")
    if not isinstance(recorded, dict) or not recorded.get("path"):
        raise _NoSurvey("the atlas was built from embeddings, without a survey of images")
    path = Path(recorded["path"])
    if not path.exists():
        raise _NoSurvey(f"the survey {path} is gone")
    if path.is_file() and recorded.get("fingerprint") and file_fingerprint(path) != recorded["fingerprint"]:
        raise _NoSurvey(f"the survey {path} has changed since the atlas was built")
    try:
        config = config_from_dict(tomllib.loads(provenance["config"])) if provenance.get("config") else None
    except (tomllib.TOMLDecodeError, GalexploreError):
        config = None  # written by another version: read the file with the defaults for its kind
    try:
        survey = open_survey(config, path) if config is not None else open_path(path)
    except (OSError, GalexploreError) as exc:
        raise _NoSurvey(f"the survey {path} cannot be read ({exc})") from None
    atlas_ids = atlas.read_catalog(["object_id"])["object_id"].to_numpy()
    survey_ids = survey.catalog["object_id"].to_numpy()
    if len(survey_ids) != len(atlas_ids) or not np.array_equal(survey_ids, atlas_ids):
        survey.close()
        raise _NoSurvey(f"the survey {path} no longer lists the atlas's objects in the atlas's order")
    return survey


def _rgb_png(cutout: np.ndarray, bands: tuple[str, ...], size: int) -> bytes:
    return _png(lupton_rgb(cutout, bands), size)


def _band_pngs(cutout: np.ndarray, bands: tuple[str, ...], size: int) -> dict[str, bytes]:
    if bands == DISPLAY_CHANNELS:  # a colour composite: its channels, only rescaled
        rgb = lupton_rgb(cutout, bands)
        return {band: _png(rgb[..., k], size) for k, band in enumerate(bands)}
    # one band through the same asinh stretch fills all three channels alike: a grey image
    return {band: _png(lupton_rgb(cutout[k:k + 1], (band,))[..., 0], size) for k, band in enumerate(bands)}


def _png(image: np.ndarray, size: int) -> bytes:
    """PNG bytes of an 8-bit (H, W) or (H, W, 3) image scaled to size x size: pixel-true
    (nearest) when enlarging, antialiased when shrinking."""
    from PIL import Image

    picture = Image.fromarray(np.ascontiguousarray(image))
    if picture.size != (size, size):
        enlarge = size >= max(picture.size)
        picture = picture.resize((size, size), Image.Resampling.NEAREST if enlarge else Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()
