"""The data behind the explorer: one atlas, loaded once per server process, shared by every session.

Everything here is read-only after loading, so sessions can share it without locks; what a
session changes (its selection, its query, its colouring) lives in its own `ExplorerState`.
"""

from __future__ import annotations

import ctypes
import gc
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from galexplore.atlas.files import Atlas, open_atlas
from galexplore.labels import UNLABELLED, shown_classes
from galexplore.explorer.cutouts import CutoutSource
from galexplore.explorer.queries import MapIndex

# The colourings an astronomer reaches for first, in this order, when the catalog has them.
PREFERRED = ("z_spec", "z_phot", "p_features", "p_features_pred", "p_edge_on", "p_edge_on_pred",
             "label_availability", "trust", "trust_spec_z", "trust_morphology", "anomaly_score", "type", "mag_r")
MAX_CATEGORIES = 24  # a text column with more distinct values is not offered as a colouring
NOT_COLOURINGS = {"object_id", "ra", "dec", "umap_x", "umap_y"}


@dataclass(frozen=True)
class Colouring:
    """One way to colour the map: a catalog column, continuous or categorical, or the density."""

    column: str | None  # None: the point density
    kind: str  # "density", "continuous", "categorical"
    categories: tuple[str, ...] = ()
    # a class column (probes.categorical) or its prediction: `categories` are its classes, in the
    # build's order, then UNLABELLED where some rows have no label, so a class has one colour in both
    classes: bool = False


@dataclass
class AtlasData:
    """An atlas ready to explore: its catalog, spatial indexes, colourings and cutouts."""

    atlas: Atlas
    catalog: pd.DataFrame
    index: MapIndex
    cutouts: CutoutSource
    colourings: dict[str, Colouring]
    bounds: tuple[float, float, float, float]  # x0, x1, y0, y1 of the map, padded
    notes: list[str] = field(default_factory=list)  # what the page should say about the atlas (skipped columns)
    classes: dict[str, tuple[str, ...]] = field(default_factory=dict)  # class column: its classes, as text
    unlabelled: tuple[str, ...] = ()  # the class columns' values that mean no label
    load_seconds: float = 0.0
    histograms: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    _points: dict[str | None, object] = field(default_factory=dict)
    _points_lock: threading.Lock = field(default_factory=threading.Lock)

    def points(self, name: str | None) -> object:
        """The map's points carrying colouring `name`'s column (None: coordinates only): one
        HoloViews element per colouring per process, shared by every session (streams attach to
        each session's own rasterized output, never to these)."""
        import holoviews as hv

        with self._points_lock:
            if name not in self._points:
                colouring = self.colourings[name] if name is not None else Colouring(None, "density")
                column = colouring.column
                frame = self.catalog[["umap_x", "umap_y"]].copy()
                if column in self.classes:  # unlabelled rows (empty or an unlabelled value) are a class of their own
                    categories = pd.CategoricalDtype(list(colouring.categories))
                    frame[column] = pd.Series(shown_classes(self.catalog[column], self.unlabelled), dtype=categories)
                elif colouring.kind == "categorical":
                    frame[column] = self.catalog[column].astype(str).astype(pd.CategoricalDtype(list(colouring.categories)))
                elif column is not None:
                    frame[column] = self.catalog[column]
                self._points[name] = hv.Points(frame, ["umap_x", "umap_y"], [column] if column else [])
            return self._points[name]

    def warm(self, names: list[str | None] | None = None) -> None:
        """Prepare colourings `names` (default: all) before anyone asks: their shared points, and
        datashader's kernels for their aggregators and for spreading their aggregates (compiled
        once per kernel and dtype per process, about a second each), so a session's first change
        to them costs what later ones do."""
        import datashader as ds
        import datashader.transfer_functions as tf

        canvas = ds.Canvas(plot_width=64, plot_height=64)
        for name in list(self.colourings) if names is None else names:
            colouring = self.colourings[name] if name is not None else Colouring(None, "density")
            frame = self.points(name).data
            column = colouring.column
            if colouring.kind == "categorical":
                aggregator = ds.by(column, ds.count())
            else:
                aggregator = ds.count() if column is None else ds.mean(column)
            aggregate = canvas.points(frame, "umap_x", "umap_y", agg=aggregator)
            flat = aggregate if aggregate.ndim == 2 else aggregate.sum(dim=column)
            tf.dynspread(flat, threshold=0.6, max_px=2)  # measures the density...
            tf.spread(flat, px=1)  # ...and spreads (a dense 64 x 64 canvas would not need to)

    def prepare(self) -> None:
        """Everything a served app does before anyone asks (`app/setup.py`, in the background):
        first what the first page shows (the density underlay and the default colouring), then
        the map and sky indexes (clicks, hovers, searches), then every other colouring."""
        first = next((name for name, c in self.colourings.items() if c.kind == "continuous"), None)
        self.warm([None, first] if first else [None])
        self.index.build()
        self.warm()
        # what is alive now (the atlas, the libraries, the compiled kernels) lives as long as the
        # server: keep it out of the cyclic collector's full passes, which otherwise stall an
        # interaction by ~0.3 s now and then scanning it
        gc.freeze()

    @property
    def name(self) -> str:
        return self.atlas.name

    @property
    def n(self) -> int:
        return len(self.catalog)

    @property
    def has_positions(self) -> bool:
        """Whether the galaxies have sky positions (none has in an atlas built with
        survey.positions = "none": its ra and dec are NaN)."""
        return self.index.has_sky

    def trust_note(self) -> str | None:
        """Why trust is undefined (no labelled galaxies, as the build recorded), or None when
        some galaxy has a trust value."""
        if "trust" in self.catalog and np.isfinite(self.catalog["trust"].to_numpy(dtype=np.float64)).any():
            return None
        notes = (self.atlas.stages.get("scores") or {}).get("notes") or {}
        return str(notes.get("trust") or "no galaxy has a trust value")

    def card_lines(self) -> list[str] | None:
        """The report card in a few sentences (plain text), or None for an atlas without one."""
        from galexplore.scoring.atlas_card import summary_lines

        result = (self.atlas.stages.get("card") or {}).get("card")
        if not isinstance(result, dict):
            return None
        try:
            return summary_lines(result) or ["no label column to score"]
        except (KeyError, TypeError, ValueError):  # a card of another shape (a hand-edited manifest)
            return ["the report card in this atlas's manifest could not be read"]

    def has_missing(self, column: str) -> bool:
        """Whether some galaxies have no value (NaN) in a numeric column."""
        key = f"missing:{column}"
        if key not in self.histograms:
            self.histograms[key] = bool(self.catalog[column].isna().any())
        return self.histograms[key]

    def histogram_of_all(self, column: str, bins: int = 40) -> tuple[np.ndarray, np.ndarray]:
        """(counts, edges) of a numeric column over all galaxies, computed once."""
        if column not in self.histograms:
            values = pd.to_numeric(self.catalog[column], errors="coerce").to_numpy(dtype=np.float64)
            values = values[np.isfinite(values)]
            lo, hi = (values.min(), values.max()) if len(values) else (0.0, 1.0)
            self.histograms[column] = np.histogram(values, bins=bins, range=(lo, hi if hi > lo else lo + 1))
        return self.histograms[column]


def fixed_mmap_threshold(nbytes: int = 256 * 1024) -> bool:
    """Serve large allocations (a session's rasters, megabytes each, made anew on every pan) from
    their own memory maps, returned to the system when freed, on glibc; whether it was set.

    glibc raises its mmap threshold each time such a block is freed, after which the rasters come
    from the heap, which fragments and does not shrink: a server's memory grew by about 4 MB per
    pan per session (130 MB in 30 pans) with nothing of Python's left alive; with a fixed
    threshold it stays flat (6 MB).
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False  # not glibc: its allocator does something else
    M_MMAP_THRESHOLD = -3  # mallopt's parameter number in glibc's malloc.h; setting it fixes the threshold
    return bool(libc.mallopt(M_MMAP_THRESHOLD, nbytes))


fixed_mmap_threshold()

_LOADED: dict[Path, AtlasData] = {}
_LOCK = threading.Lock()


def load(path: str | Path) -> AtlasData:
    """The atlas at `path`, loaded and indexed on first use, then shared (one per process).

    Raises the atlas reader's error (naming the file) when the atlas is missing or damaged.
    """
    path = Path(path).resolve()
    with _LOCK:
        if path not in _LOADED:
            _LOADED[path] = _load(path)
        return _LOADED[path]


def _load(path: Path) -> AtlasData:
    start = time.perf_counter()
    atlas = open_atlas(path, require=("catalog.parquet", "neighbors.npy", "similarities.npy"))
    catalog = atlas.catalog
    missing = [c for c in ("umap_x", "umap_y") if c not in catalog]
    if missing:
        from galexplore.atlas.files import AtlasError

        raise AtlasError(f"atlas {path}: catalog.parquet has no {', '.join(missing)}; rebuild it with `galexplore build`")
    x, y = catalog["umap_x"].to_numpy(), catalog["umap_y"].to_numpy()
    index = MapIndex(x, y, catalog["ra"].to_numpy(), catalog["dec"].to_numpy())
    pad_x, pad_y = 0.03 * (np.nanmax(x) - np.nanmin(x)), 0.03 * (np.nanmax(y) - np.nanmin(y))
    bounds = (float(np.nanmin(x) - pad_x), float(np.nanmax(x) + pad_x),
              float(np.nanmin(y) - pad_y), float(np.nanmax(y) + pad_y))
    notes: list[str] = []
    probes = atlas.stages.get("probes") or {}
    classes = {str(column): tuple(str(c) for c in names) for column, names in (probes.get("classes") or {}).items()
               if column in catalog}
    unlabelled = tuple(str(v) for v in probes.get("unlabelled") or ())
    data = AtlasData(atlas, catalog, index, CutoutSource(atlas), colourings(catalog, notes, classes, unlabelled),
                     bounds, notes, classes, unlabelled)
    data.load_seconds = time.perf_counter() - start
    return data


def colourings(catalog: pd.DataFrame, notes: list[str] | None = None, classes: dict[str, tuple[str, ...]] | None = None,
               unlabelled: tuple[str, ...] = ()) -> dict[str, Colouring]:
    """The map's colour choices: density, then the preferred columns present, then the class
    columns and their predictions, then the rest.

    A class column (`classes`: column -> its classes, as the build listed them) is coloured by its
    classes, and its rows without a label (an empty value or one of `unlabelled`) as a class
    `UNLABELLED` of their own; its `<column>_pred` by the same classes, in the same order. A
    column whose values cannot colour a map (lists, arrays, mappings: they have no categories)
    is skipped, with a line for the page appended to `notes`."""
    by_class = _class_colourings(catalog, classes or {}, unlabelled)
    found: dict[str, Colouring] = {"density": Colouring(None, "density")}
    first = [c for c in PREFERRED if c in catalog] + list(by_class)
    ordered = list(dict.fromkeys(first)) + sorted(c for c in catalog if c not in first)
    for column in ordered:
        if column in NOT_COLOURINGS:
            continue
        if column in by_class:
            found[column] = by_class[column]
            continue
        values = catalog[column]
        if pd.api.types.is_bool_dtype(values):
            found[column] = Colouring(column, "categorical", ("False", "True"))
        elif pd.api.types.is_numeric_dtype(values):
            if np.isfinite(pd.to_numeric(values, errors="coerce")).any():
                found[column] = Colouring(column, "continuous")
        else:
            try:
                kinds = values.astype("category").cat.categories
            except TypeError:  # unhashable values
                example = type(values.dropna().iloc[0]).__name__ if values.notna().any() else "?"
                if notes is not None:
                    notes.append(f"column {column!r} holds {example} values, not numbers or text: it cannot colour "
                                 f"the map and is shown as text only")
                continue
            if 1 < len(kinds) <= MAX_CATEGORIES:
                found[column] = Colouring(column, "categorical", tuple(str(k) for k in kinds))
    return found


def _class_colourings(catalog: pd.DataFrame, classes: dict[str, tuple[str, ...]],
                      unlabelled: tuple[str, ...]) -> dict[str, Colouring]:
    """The colourings of the class columns and of their predictions (`colourings`)."""
    found = {}
    for column, names in classes.items():
        some_unlabelled = bool((shown_classes(catalog[column], unlabelled) == UNLABELLED).any())
        shown = (*names, UNLABELLED) if some_unlabelled else names
        found[column] = Colouring(column, "categorical", shown, classes=True)
        if f"{column}_pred" in catalog:
            found[f"{column}_pred"] = Colouring(f"{column}_pred", "categorical", names, classes=True)
    return found
