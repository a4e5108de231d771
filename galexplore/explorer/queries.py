"""What the explorer does per interaction, as plain functions over an atlas: no Panel here.

- `MapIndex`: built once per process from the map (umap_x, umap_y) and sky (ra, dec) coordinates
  and shared read-only by every session: the galaxy nearest a click, the rows inside a lasso or a
  box, the galaxy nearest a sky position.
- `combine`, `find`, `parse_position`, `similar`: a session's selection, the search box, the
  similar-galaxy gallery.
- `sky_links`: where to look at a galaxy: the SDSS and Legacy Survey viewers, Aladin Lite, SIMBAD, NED.

Exports and uploaded catalogs live in `galexplore.atlas.export`, cutouts for the gallery in
`galexplore.explorer.cutouts`.

Every call's work is proportional to what it returns (a selection, a gallery), not to N, once
the index is built: a lasso around 10^5 of 10^6 galaxies takes tens of milliseconds.
"""

from __future__ import annotations

import math
import re
import threading
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from galexplore.errors import GalexploreError

ARCSEC_PER_RADIAN = 180.0 / math.pi * 3600.0
COMBINE_MODES = ("replace", "add", "subtract")
#: why a search by position cannot be answered ("the atlas has ..."): its survey had no positions
NO_SKY_POSITIONS = ('no sky positions (its ra and dec are NaN: its survey was read with survey.positions = '
                    '"none"); find a galaxy by object_id, or on the map')
POSITION_FORMS = ("decimal degrees '150.1 2.2' or '150.1, +2.2', or sexagesimal hours and degrees "
                  "'10h00m24s +02d12m00s' or '10:00:24.0 +02:12:00'")


# -- the map and the sky ---------------------------------------------------------------------------

class MapIndex:
    """Spatial lookups on the 2-D map and on the sky for N galaxies, built once per process per
    atlas (about a second for 10^6) and shared read-only by all sessions.

    Rows whose coordinates are not finite are never returned. Every method returns atlas rows;
    a sky lookup where no galaxy has sky coordinates (`has_sky` False) raises `NO_SKY_POSITIONS`.
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
        self._x, self._y = x, y
        on_sky = np.flatnonzero(np.isfinite(ra) & np.isfinite(dec))
        self._ra, self._dec = ra, dec
        self._sky_rows = on_sky.astype(np.int64)
        self._trees: dict[str, cKDTree | None] = {}
        self._trees_lock = threading.Lock()

    def _tree(self, which: str) -> cKDTree | None:
        """The k-d tree of the map or the sky (None when no galaxy has such coordinates), built on
        first use (about half a second each for 10^6), so loading an atlas does not wait for them."""
        with self._trees_lock:
            if which not in self._trees:
                if which == "map":
                    rows = self._map_rows
                    points = np.column_stack([self._x[rows], self._y[rows]])
                else:  # sky: unit vectors, where the nearest chord is the nearest angle, across RA = 0/360 and the poles
                    rows = self._sky_rows
                    points = unit_vectors(self._ra[rows], self._dec[rows])
                self._trees[which] = cKDTree(points) if rows.size else None
            return self._trees[which]

    def build(self) -> None:
        """Build both trees now (a server warms them in the background)."""
        self._tree("map"), self._tree("sky")

    def __len__(self) -> int:
        return self.n

    @property
    def has_sky(self) -> bool:
        """Whether any galaxy has sky coordinates (none has in an atlas built without positions)."""
        return bool(self._sky_rows.size)

    def nearest(self, x: float, y: float) -> tuple[int, float]:
        """The row nearest map point (x, y) and its distance in map units."""
        tree = self._tree("map")
        if tree is None:
            raise GalexploreError("no galaxy has map coordinates")
        if not (math.isfinite(x) and math.isfinite(y)):
            raise GalexploreError(f"map point ({x}, {y}) is not finite")
        distance, k = tree.query([float(x), float(y)])
        return int(self._map_rows[k]), float(distance)

    def nearest_many(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each map point (M, 2), the nearest row (-1 when no galaxy is on the map) and its
        map coordinates (M, 2): one vectorised query (the map's galaxy tiles)."""
        points = np.asarray(points, np.float64).reshape(-1, 2)
        tree = self._tree("map")
        if tree is None:
            return np.full(len(points), -1, np.int64), np.full(points.shape, np.nan)
        _, k = tree.query(points)
        rows = self._map_rows[k]
        return rows, np.column_stack([self._x[rows], self._y[rows]])

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
        tree = self._sky_tree()
        if not (math.isfinite(ra) and math.isfinite(dec)):
            raise GalexploreError(f"sky position ({ra}, {dec}) is not finite")
        _, k = tree.query(unit_vectors(np.array([float(ra)]), np.array([float(dec)]))[0])
        row = int(self._sky_rows[k])
        return row, float(separations_arcsec(ra, dec, self._ra[row], self._dec[row]))

    def nearest_sky_of(self, ra: np.ndarray, dec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each of many sky positions (degrees, finite), the nearest row and the separation
        in arcsec: one vectorised query of the shared tree (10^5 positions against 10^6 galaxies
        in well under a second), as astropy's `match_to_catalog_sky` answers it."""
        ra, dec = np.asarray(ra, np.float64).ravel(), np.asarray(dec, np.float64).ravel()
        _, k = self._sky_tree().query(unit_vectors(ra, dec), workers=-1)
        rows = self._sky_rows[k]
        return rows, np.asarray(separations_arcsec(ra, dec, self._ra[rows], self._dec[rows]), np.float64)

    def _sky_tree(self) -> cKDTree:
        tree = self._tree("sky")
        if tree is None:
            raise GalexploreError(f"the atlas has {NO_SKY_POSITIONS}")
        return tree

    def within_sky(self, ra: float, dec: float, radius_arcsec: float) -> tuple[np.ndarray, np.ndarray]:
        """The rows within `radius_arcsec` of sky position (ra, dec) in degrees, nearest first:
        (rows int64, separations in arcsec float64)."""
        if not (math.isfinite(ra) and math.isfinite(dec)):
            raise GalexploreError(f"sky position ({ra}, {dec}) is not finite")
        if not (math.isfinite(radius_arcsec) and radius_arcsec >= 0):
            raise GalexploreError(f"radius {radius_arcsec} arcsec: expected a finite radius >= 0")
        tree = self._sky_tree()
        angle = min(radius_arcsec / ARCSEC_PER_RADIAN, math.pi)
        centre = unit_vectors(np.array([float(ra)]), np.array([float(dec)]))[0]
        # a chord a hair longer than the angle's, so rounding keeps a galaxy right on the edge
        found = np.asarray(tree.query_ball_point(centre, 2.0 * math.sin(angle / 2.0) * (1 + 1e-9) + 1e-15), np.int64)
        rows = self._sky_rows[found]
        separations = separations_arcsec(ra, dec, self._ra[rows], self._dec[rows])
        keep = separations <= radius_arcsec * (1 + 1e-9)
        order = np.argsort(separations[keep], kind="stable")
        return rows[keep][order], separations[keep][order]


def unit_vectors(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """(N, 3) unit vectors of sky positions (degrees)."""
    ra, dec = np.radians(ra), np.radians(dec)
    cos_dec = np.cos(dec)
    return np.column_stack([cos_dec * np.cos(ra), cos_dec * np.sin(ra), np.sin(dec)])


def separations_arcsec(ra: float, dec: float, ras: np.ndarray, decs: np.ndarray) -> np.ndarray:
    """Arcseconds from sky position (ra, dec) to each of (ras, decs), all in degrees: astropy's
    `angular_separation` (the Vincenty formula, accurate at every separation), vectorised."""
    from astropy.coordinates import angular_separation  # about a second to import: a search by position pays it

    return angular_separation(np.radians(ra), np.radians(dec), np.radians(ras), np.radians(decs)) * ARCSEC_PER_RADIAN


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
    type), or else the galaxy nearest a position (see `parse_position`), where the atlas has
    sky positions.

    Returns {"row": int, "separation_arcsec": float | None, "how": "object_id" | "position"};
    the separation (from the position typed) says how far the nearest galaxy is.
    """
    text = str(text).strip()
    if not text:
        raise GalexploreError("type an object_id or a position (ra dec) to find a galaxy")
    row = _row_of_id(catalog["object_id"], text)
    if row is not None:
        return {"row": row, "separation_arcsec": None, "how": "object_id"}
    if not index.has_sky:
        raise GalexploreError(f"no galaxy with object_id {text!r}, and the atlas has {NO_SKY_POSITIONS}")
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
    wrong = (rows < -1) | (rows >= n)  # -1 pads what an approximate search could not fill
    if wrong.any():
        raise GalexploreError(
            f"neighbors.npy row {row} holds {int(rows[wrong][0])}, which is not a galaxy of this atlas "
            f"(expected 0 to {n - 1}, or -1 for none): the neighbour index is corrupt; rebuild the atlas"
        )
    kept = rows >= 0
    return rows[kept], sims[kept]


def sky_links(ra: float, dec: float, hips: str = "CDS/P/SDSS9/color") -> dict[str, str]:
    """Viewers and databases of the sky at (ra, dec) in degrees, by name: the SDSS SkyServer
    navigator and the Legacy Surveys viewer (DR10), zoomed in on a galaxy; Aladin Lite on the
    survey's HiPS (`hips`, e.g. "CDS/P/DESI-Legacy-Surveys/DR10/color"); SIMBAD and NED, what
    they list within 10 arcsec."""
    ra, dec = f"{float(ra):.6f}", f"{float(dec):.6f}"  # no '+': a query string reads it as a space
    return {
        "SDSS SkyServer": f"https://skyserver.sdss.org/dr18/VisualTools/navi?ra={ra}&dec={dec}&scale=0.2",
        "Legacy Surveys": f"https://www.legacysurvey.org/viewer?ra={ra}&dec={dec}&layer=ls-dr10&zoom=16",
        "Aladin Lite": f"https://aladin.cds.unistra.fr/AladinLite/?target={ra}%20{dec}&fov=0.02&survey={quote(hips, safe='')}",
        "SIMBAD": f"https://simbad.cds.unistra.fr/simbad/sim-coo?Coord={ra}%20{dec}&Radius=10&Radius.unit=arcsec",
        "NED": (f"https://ned.ipac.caltech.edu/cgi-bin/objsearch?search_type=Near+Position+Search"
                f"&in_csys=Equatorial&in_equinox=J2000.0&lon={ra}d&lat={dec}d&radius=0.1667"),
    }
