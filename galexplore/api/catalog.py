"""The catalog queries of the notebook API: a galaxy by ``object_id``, by sky position or within
a radius, the galaxies inside a polygon on the map, and any answer as an astropy Table.

Every answer about galaxies is a pandas DataFrame of catalog rows indexed by atlas row, with
``object_id`` first (and ``separation_arcsec`` second where there is one). The examples run on an
atlas that tests/test_api.py builds.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from galexplore.atlas import reader
from galexplore.atlas.export import _astropy_table
from galexplore.atlas.files import CATALOG, AtlasError
from galexplore.errors import GalexploreError
from galexplore.explorer import queries as explore
from galexplore.explorer.queries import MapIndex, _row_of_id, parse_position

#: units of the catalog columns whose unit is known wherever they appear
UNITS = {"ra": "deg", "dec": "deg", "separation_arcsec": "arcsec", "ebv": "mag", "e_bv": "mag",
         "half_light_radius": "arcsec", "seeing": "arcsec", "inclination": "deg", "position_angle": "deg"}
#: descriptions of the columns the API adds
DESCRIPTIONS = {"similarity": "cosine similarity of the representations to the query",
                "separation_arcsec": "angular separation from the position asked"}


class CatalogAtlas(reader.Atlas):
    """An opened atlas with the catalog's questions as methods: by id, by position, by polygon."""

    # -- galaxies by id and by position ------------------------------------------------------

    def galaxy(self, object_id: Any) -> pd.Series:
        """The catalog row of the galaxy `object_id` (its name is the atlas row).

        An id typed as text is read in the id column's type, so ``"1003"`` finds 1003.

        >>> row = atlas.galaxy(atlas.catalog["object_id"].iloc[5])
        >>> row.name
        5
        """
        return self.catalog.iloc[self.row(object_id)]

    def row(self, object_id: Any) -> int:
        """The atlas row of galaxy `object_id`; `AtlasError` when the atlas has no such galaxy."""
        try:
            return int(self._ids.get_loc(object_id))
        except (KeyError, TypeError, pd.errors.InvalidIndexError):
            pass
        if isinstance(object_id, str):
            row = _row_of_id(self.catalog["object_id"], object_id.strip())
            if row is not None:
                return row
        example = self.catalog["object_id"].iloc[0] if len(self) else None
        example = example.item() if isinstance(example, np.generic) else example
        raise AtlasError(f"atlas {self.path}: no galaxy with object_id {object_id!r} among its {len(self):,} "
                         f"(its object_ids look like {example!r})")

    def rows(self, object_ids: Iterable[Any]) -> np.ndarray:
        """The atlas rows (int64) of several object_ids, in the order given; `AtlasError`
        naming the first id that is not in the atlas."""
        ids = list(object_ids)
        found = self._ids.get_indexer(ids) if ids else np.empty(0, np.int64)
        for k in np.flatnonzero(found < 0):
            found[k] = self.row(ids[k])  # a text id of a numeric column, or the error that names it
        return found.astype(np.int64)

    def nearest(self, ra: Any, dec: Any = None) -> pd.Series:
        """The galaxy nearest a sky position, with its ``separation_arcsec`` from it (an
        `AtlasError` where the atlas has no sky positions).

        The position: RA and Dec in degrees (numbers or astropy angles), one text such as
        ``"150.1 +2.2"`` or ``"10h00m24s +02d12m00s"`` (see `galexplore.explorer.queries.parse_position`),
        or an astropy ``SkyCoord``.

        >>> g = atlas.galaxy(atlas.catalog["object_id"].iloc[7])
        >>> hit = atlas.nearest(g["ra"], g["dec"])
        >>> hit.name, hit["separation_arcsec"] < 1e-6
        (7, True)
        """
        index = self._sky_index()
        lon, lat = sky_position(ra, dec)
        row, separation = index.nearest_sky(lon, lat)
        found = self.catalog.iloc[row].copy()
        found["separation_arcsec"] = separation
        return found

    def find(self, ra: Any, dec: Any = None, *, radius: Any) -> pd.DataFrame:
        """The galaxies within `radius` (arcsec, or an astropy angle) of a sky position (as in
        `nearest`), nearest first, with their ``separation_arcsec`` (an `AtlasError` where the
        atlas has no sky positions).

        >>> g = atlas.galaxy(atlas.catalog["object_id"].iloc[7])
        >>> cone = atlas.find(f"{g['ra']} {g['dec']}", radius=1.0)
        >>> int(cone.index[0]), list(cone.columns[:2])
        (7, ['object_id', 'separation_arcsec'])
        """
        index = self._sky_index()
        lon, lat = sky_position(ra, dec)
        rows, separations = index.within_sky(lon, lat, _angle(radius, "arcsec", "radius"))
        return self._frame(rows, "separation_arcsec", separations)

    # -- the map -----------------------------------------------------------------------------

    def select_polygon(self, vertices: Sequence[Sequence[float]] | np.ndarray) -> pd.DataFrame:
        """The galaxies strictly inside a polygon of (umap_x, umap_y) vertices on the map, in
        atlas order: a lasso without the mouse. Any simple or self-crossing polygon (see
        `galexplore.explorer.queries.MapIndex.in_polygon`); it closes itself.

        >>> x, y = atlas.catalog["umap_x"], atlas.catalog["umap_y"]
        >>> box = [(x.min() - 1, y.min() - 1), (x.max() + 1, y.min() - 1), (x.max() + 1, y.max() + 1)]
        >>> len(atlas.select_polygon(box + [(x.min() - 1, y.max() + 1)])) == len(atlas)
        True
        """
        points = np.asarray(vertices, dtype=np.float64)
        if points.ndim != 2 or points.shape[1] != 2:
            raise GalexploreError(f"a polygon is a list of (x, y) vertices, shape (n, 2); got shape {points.shape}")
        if not np.isfinite(points).all():
            raise GalexploreError("a polygon's vertices must be finite numbers")
        distinct = len(np.unique(points, axis=0))
        if distinct < 3:
            raise GalexploreError(f"a polygon needs at least 3 distinct vertices; got {distinct}")
        for column in ("umap_x", "umap_y"):
            if column not in self.catalog:
                raise AtlasError(f"atlas {self.path}: {CATALOG} has no {column}: the atlas has no map to select on")
        return self._frame(self._index.in_polygon(points))

    # -- out of the atlas --------------------------------------------------------------------

    def to_table(self, selection: Any = None) -> Any:
        """An astropy Table of a selection: a DataFrame this atlas returned (its own columns), a
        catalog row (`galaxy`, `nearest`), object_ids (their catalog rows), or None (the whole
        catalog). Units where known (ra, dec in deg, ...), and the atlas in ``meta``.

        >>> table = atlas.to_table(atlas.similar(atlas.catalog["object_id"].iloc[0], k=4))
        >>> len(table), table.colnames[:2], str(table["ra"].unit)
        (4, ['object_id', 'similarity'], 'deg')
        """
        if selection is None:
            frame = self.catalog
        elif isinstance(selection, pd.DataFrame):
            frame = selection
        elif isinstance(selection, pd.Series):
            frame = selection.to_frame().T.infer_objects()
        else:
            ids = [selection] if isinstance(selection, (str, bytes)) or np.ndim(selection) == 0 else list(selection)
            frame = self.catalog.iloc[self.rows(ids)]
        table = _astropy_table(frame.reset_index(drop=True), text_as_bytes=False)
        for name in table.colnames:
            if name in UNITS:
                table[name].unit = UNITS[name]
            elif name.startswith("mag_"):
                table[name].unit = "mag"
            if name in DESCRIPTIONS:
                table[name].description = DESCRIPTIONS[name]
        survey = (self.manifest.get("provenance") or {}).get("survey") or {}
        table.meta.update({"atlas": self.name, "atlas_path": str(self.path),
                           "code_version": self.manifest["code_version"],
                           **{key: survey[key] for key in ("bands", "pixel_scale") if survey.get(key) is not None}})
        return table

    # -- what is built on first use ----------------------------------------------------------

    @functools.cached_property
    def _ids(self) -> pd.Index:
        return pd.Index(self.catalog["object_id"])

    @functools.cached_property
    def _index(self) -> MapIndex:
        catalog, nothing = self.catalog, np.full(len(self), np.nan)
        x = catalog["umap_x"].to_numpy() if "umap_x" in catalog else nothing
        y = catalog["umap_y"].to_numpy() if "umap_y" in catalog else nothing
        return MapIndex(x, y, catalog["ra"].to_numpy(), catalog["dec"].to_numpy())

    def _sky_index(self) -> MapIndex:
        """The index, for a lookup by sky position; `AtlasError` where no galaxy has one (an
        atlas built with survey.positions = "none")."""
        if not self._index.has_sky:
            raise AtlasError(f"atlas {self.path} has {explore.NO_SKY_POSITIONS}")
        return self._index

    def _frame(self, rows: np.ndarray, column: str | None = None, values: np.ndarray | None = None) -> pd.DataFrame:
        """Catalog rows `rows` (index: atlas row), object_id first, then `column` if given."""
        frame = self.catalog.iloc[np.asarray(rows, dtype=np.int64)].copy()
        if column is not None:
            frame.insert(0, column, np.asarray(values))
        first = [c for c in ("object_id", column) if c is not None]
        return frame[first + [c for c in frame.columns if c not in first]]


def sky_position(ra: Any, dec: Any = None) -> tuple[float, float]:
    """(ra, dec) in degrees of a position given as numbers (degrees) or astropy angles, one text
    (`galexplore.explorer.queries.parse_position`), or a scalar astropy ``SkyCoord`` (taken in ICRS).

    >>> [round(v, 6) for v in sky_position("10:00:24 +02:12:00")]
    [150.1, 2.2]
    >>> sky_position(150.1, -2.2)
    (150.1, -2.2)
    """
    if hasattr(ra, "icrs") and dec is None:  # a SkyCoord
        if not ra.isscalar:
            raise GalexploreError(f"one position at a time; got a SkyCoord of shape {ra.shape}")
        icrs = ra.icrs
        return float(icrs.ra.deg), float(icrs.dec.deg)
    if dec is None:
        if not isinstance(ra, str):
            raise GalexploreError(f"a position is (ra, dec), a text, or a SkyCoord; got only {ra!r}")
        return parse_position(ra)
    if isinstance(ra, str) or isinstance(dec, str):
        return parse_position(f"{ra} {dec}")
    lon, lat = _angle(ra, "deg", "RA"), _angle(dec, "deg", "Dec")
    if not (math.isfinite(lon) and math.isfinite(lat) and -90.0 <= lat <= 90.0):
        raise GalexploreError(f"position ({lon}, {lat}) deg: expected finite values with -90 <= Dec <= 90")
    return lon % 360.0, lat


def _angle(value: Any, unit: str, name: str) -> float:
    """`value` in `unit` ("deg" or "arcsec"): a number already in it, or an astropy angle."""
    if hasattr(value, "unit"):  # an astropy Quantity or Angle
        from astropy import units as u

        try:
            return float(value.to_value(u.Unit(unit)))
        except u.UnitsError:
            raise GalexploreError(f"{name} {value!r} is not an angle") from None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise GalexploreError(f"{name} {value!r}: expected a number of {unit} or an astropy angle") from None
