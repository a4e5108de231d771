"""The atlas from Python: what the explorer answers, as calls for a notebook or a script.

`open_atlas` validates an atlas folder (as `galexplore.atlas.files.open_atlas` does) and returns an
`Atlas` whose arrays are memory-mapped and whose catalog is read once. On it: a galaxy by
``object_id``, by sky position or within a radius; the galaxies most similar to one of its own
(the precomputed neighbour graph) or to a new cutout (embedded with the atlas's own encoder,
normalisation, crop and PCA, then searched exactly); the galaxies inside a polygon drawn on the
map; any of these as an astropy Table; and the explorer app itself, inline in Jupyter.

Every answer about galaxies is a pandas DataFrame of catalog rows indexed by atlas row, with
``object_id`` first (and ``similarity`` or ``separation_arcsec`` second where there is one).
A mistake (an unknown id, a cutout of the wrong shape, a polygon of two vertices) raises a
`GalexploreError` (an `AtlasError` where the atlas cannot answer) that says what and why.

>>> import galexplore as gx
>>> atlas = gx.open_atlas(atlas_path)  # e.g. "data/atlas/demo"
>>> len(atlas) == len(atlas.catalog)
True
>>> first = atlas.catalog["object_id"].iloc[0]
>>> atlas.galaxy(first).name  # the atlas row
0
>>> list(atlas.similar(first, k=3).columns[:2])
['object_id', 'similarity']
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from galexplore.atlas import files as atlas_files
from galexplore.atlas.files import CATALOG, EMBEDDING_CENTER, EMBEDDINGS, NEIGHBORS, REDUCED, SIMILARITIES, AtlasError
from galexplore.errors import GalexploreError
from galexplore.explorer import queries as explore
from galexplore.explorer.queries import MapIndex, _row_of_id, parse_position
from galexplore.atlas.export import _astropy_table

__all__ = ["Atlas", "open_atlas"]

#: units of the catalog columns whose unit is known wherever they appear
UNITS = {"ra": "deg", "dec": "deg", "separation_arcsec": "arcsec", "ebv": "mag", "e_bv": "mag",
         "half_light_radius": "arcsec", "seeing": "arcsec", "inclination": "deg", "position_angle": "deg"}
#: descriptions of the columns this module adds
DESCRIPTIONS = {"similarity": "cosine similarity of the representations to the query",
                "separation_arcsec": "angular separation from the position asked"}
ENCODER = ("encoder.npz", "encoder.json")
PCA_FILE = "pca.npz"


def open_atlas(path: str | Path) -> Atlas:
    """The atlas at `path`, validated (manifest, every file's size, fingerprint and shape) and
    ready to query; `AtlasError` naming the problem otherwise. Nothing large is read yet."""
    reader = atlas_files.open_atlas(path, require=(CATALOG, EMBEDDINGS, NEIGHBORS, SIMILARITIES))
    return Atlas(reader.path, reader.manifest)


class Atlas(atlas_files.Atlas):
    """An opened atlas with the explorer's questions as methods (see the module docstring).

    Everything of `galexplore.atlas.files.Atlas` (``catalog``, ``embeddings``, ``neighbors``,
    ``manifest``, ...) is here too. The map and sky indexes, the encoder and the search index
    are built on first use and kept.
    """

    def __len__(self) -> int:
        return self.n_objects

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

    # -- similar galaxies --------------------------------------------------------------------

    def similar(self, object_id: Any, k: int = 10) -> pd.DataFrame:
        """The `k` galaxies most similar to galaxy `object_id`, best first, with their cosine
        ``similarity``: the atlas's precomputed neighbours (itself excluded).

        >>> first = atlas.catalog["object_id"].iloc[0]
        >>> best = atlas.similar(first, k=2)
        >>> len(best), bool(best["similarity"].is_monotonic_decreasing)
        (2, True)
        """
        kept = self.neighbors.shape[1]
        if k > kept:
            raise AtlasError(f"atlas {self.path}: k = {k}, but the atlas keeps {kept} neighbours per galaxy; "
                             f"ask for at most {kept}, or rebuild with a larger neighbors.k")
        rows, sims = explore.similar(self.neighbors, self.similarities, self.row(object_id), k)
        return self._frame(rows, "similarity", sims)

    def similar_to_cutout(self, image: np.ndarray, k: int = 10) -> pd.DataFrame:
        """The `k` galaxies most similar to a new cutout, best first, with their ``similarity``.

        `image`: (C, H, W) in the units of the atlas's survey, with its bands in its order. It
        goes the way every galaxy of the atlas went: the encoder's normalisation, the embed
        stage's centre crop, the backbone, the PCA the neighbours were searched in; then an exact
        search. A galaxy's own cutout finds that galaxy first, with similarity 1 (to float32).

        >>> first = atlas.catalog["object_id"].iloc[0]
        >>> hits = atlas.similar_to_cutout(atlas.cutout(first), k=3)
        >>> int(hits.index[0]), round(float(hits["similarity"].iloc[0]), 4)  # itself first
        (0, 1.0)
        """
        from galexplore.maps.neighbors import search_vectors

        if not 1 <= k <= len(self):
            raise GalexploreError(f"k = {k}: expected 1 <= k <= {len(self):,}, the atlas's galaxies")
        vector = self.embed(image)                                  # (1, d)
        space = self._search_space
        rows, sims = search_vectors(space, vector, k, index=self._search_index)
        return self._frame(rows[0], "similarity", sims[0])

    def embed(self, image: np.ndarray) -> np.ndarray:
        """The search-space vector (1, d) float32, unit length, of a cutout (C, H, W): the one
        `similar_to_cutout` searches with (see there)."""
        from galexplore.training.embed import center_rows, represent
        from galexplore.survey.memory import ArraySurvey

        backbone, normalization, crop = self._encoder
        image = self._check_cutout(image, normalization.bands, crop)
        survey = ArraySurvey(image[None], bands=normalization.bands, source="the cutout")
        vector = represent(backbone, survey, np.arange(1), normalization, crop, next(backbone.parameters()).device)
        if self.has(EMBEDDING_CENTER):  # as the embed stage did (embed.center)
            vector = center_rows(vector, self.array(EMBEDDING_CENTER))
        if self._space_name == REDUCED:
            vector = self._pca.transform(vector)
        return vector

    def cutout(self, object_id: Any) -> np.ndarray:
        """Galaxy `object_id`'s cutout (C, H, W) float32 from the survey the atlas was built
        from; `AtlasError` saying why when that survey cannot be read."""
        return self._survey[self.row(object_id)]

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

    def explorer(self, **params: Any) -> Any:
        """The explorer app on this atlas as a Panel object: in Jupyter, run
        ``pn.extension("tabulator")`` once, then ``atlas.explorer()`` shows it inline (or
        ``.servable()`` / ``pn.serve`` it). `params` set the view (``colour="z_spec"``, ``k=8``,
        ``query=row``, ...), as the app's URL does. Needs Panel (``pip install galexplore[app]``).

        >>> import panel as pn
        >>> isinstance(atlas.explorer(), pn.viewable.Viewable)
        True
        """
        from galexplore.explorer.page import Explorer
        from galexplore.explorer.store import load

        return Explorer(load(self.path), **params).layout()

    def close(self) -> None:
        """Close the survey `cutout` opened, if any (the arrays are memory maps: nothing to close)."""
        survey = self.__dict__.pop("_survey", None)
        if survey is not None:
            survey.close()

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

    @functools.cached_property
    def _space_name(self) -> str:
        """The vectors the neighbours were searched in, as the neighbours stage recorded."""
        recorded = (self.stages.get("neighbors") or {}).get("space")
        return recorded or (REDUCED if self.has(REDUCED) else EMBEDDINGS)

    @functools.cached_property
    def _search_space(self) -> np.ndarray:
        return self.array(self._space_name)

    @functools.cached_property
    def _search_index(self) -> Any:
        from galexplore.maps.neighbors import build_index

        return build_index(self._search_space, method="exact")

    @functools.cached_property
    def _pca(self) -> Any:
        from galexplore.maps.projection import PCA

        if not self.has(PCA_FILE):
            raise AtlasError(f"atlas {self.path}: its neighbours were searched in {REDUCED} but it has no {PCA_FILE} "
                             f"to reduce a new cutout the same way; rebuild it with `galexplore build`")
        return PCA.from_arrays(self.npz(PCA_FILE))

    @functools.cached_property
    def _encoder(self) -> tuple[Any, Any, int]:
        """(backbone on the CPU in eval mode, normalisation, crop size) as the embed stage used them."""
        from galexplore.training.embed import load_encoder_arrays

        missing = [name for name in ENCODER if not self.has(name)]
        if missing:
            raise AtlasError(f"atlas {self.path}: no {missing[0]}: an atlas built from given embeddings has no "
                             f"encoder to embed a new cutout with; build it from a survey to search by image")
        backbone, config, normalization = load_encoder_arrays(
            self.npz(ENCODER[0]), self.json(ENCODER[1]), str(self.path / ENCODER[0]))
        crop = (self.stages.get("embed") or {}).get("crop_size") or config.augment.crop_size
        return backbone, normalization, int(crop)

    @functools.cached_property
    def _survey(self) -> Any:
        from galexplore.explorer.cutouts import _NoSurvey, _open_atlas_survey

        try:
            return _open_atlas_survey(self)
        except _NoSurvey as exc:
            raise AtlasError(f"atlas {self.path}: no cutouts: {exc}") from None

    def _check_cutout(self, image: Any, bands: tuple[str, ...], crop: int) -> np.ndarray:
        image = np.asarray(image)
        survey = (self.manifest.get("provenance") or {}).get("survey") or {}
        shape = survey.get("shape")
        expected = f"{len(bands)} x {shape[1]} x {shape[2]}" if shape else f"{len(bands)} x H x W (H, W >= {crop})"
        what = f"the atlas's survey has cutouts of {expected} ({', '.join(bands)})"
        if image.dtype.kind not in "fiu":
            raise GalexploreError(f"the cutout has dtype {image.dtype}; expected fluxes (numbers); {what}")
        if image.ndim != 3 or image.shape[0] != len(bands):
            raise GalexploreError(f"the cutout has shape {image.shape}, expected (C, H, W) with C = {len(bands)} "
                                  f"bands; {what}")
        if image.shape[1] != image.shape[2] or image.shape[1] < crop:
            raise GalexploreError(f"the cutout is {image.shape[1]} x {image.shape[2]} pixels; the encoder sees "
                                  f"the central {crop} x {crop} of a square cutout; {what}")
        if not np.isfinite(image).all():
            bad = int((~np.isfinite(image)).sum())
            raise GalexploreError(f"the cutout has {bad} NaN or infinite pixels; expected none")
        return image.astype(np.float32)

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
