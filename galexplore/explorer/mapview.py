"""The datashaded map of one session: its colouring, the selection and the query drawn over it,
and the lasso, box, tap, pan and pointer streams that turn the browser's gestures into state.

The map depends on the state's colouring (a rebuild), selection (the highlight layer), query
(the marks) and hovered row (the line under the map); what a gesture means (which rows a
lasso holds, which galaxy a click is) is `queries.MapIndex`'s.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import datashader as ds
import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import param
from holoviews.operation.datashader import dynspread, rasterize

from galexplore.explorer.markup import HOVER_HINT, class_columns, hover_line
from galexplore.explorer.state import ExplorerState
from galexplore.explorer.store import Colouring
from galexplore.explorer.tiles import TileGrid, mosaic
from galexplore.labels import UNLABELLED

hv.extension("bokeh")

CONTINUOUS_CMAP = "viridis"
DENSITY_CMAP = "fire"
CATEGORY_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                    "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
                    "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5", "#393b79", "#637939", "#8c6d31", "#843c39"]
UNLABELLED_COLOUR = "#5a5a5a"  # a class column's galaxies without a label: the grey of missing values
CLASS_COLOURS = [c for c in CATEGORY_COLOURS if c not in ("#7f7f7f", "#c7c7c7")]  # no grey: it means unlabelled
SELECTION_COLOUR = "#00e5ff"
UNTRUSTED_COLOUR = "#ff2bd6"
QUERY_COLOUR = "#ff3030"
OVERLAY_COLOUR = "#ffd400"  # a catalogue overlay's matches
TILE_CELLS, TILE_PX = 12, 64  # galaxies on the map: cells along the view's longer side, pixels a tile
HOVER_REACH = 0.012  # a galaxy is "under the cursor" within this share of the view's width and height
SELECT_TOOLS = ["lasso_select", "box_select", "tap"]


class MapView(pn.viewable.Viewer):
    """The map pane and the line under it, over one session's state."""

    state = param.ClassSelector(class_=ExplorerState, doc="the session this map shows and changes")

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        self.data = self.state.data
        self.streams: dict[str, hv.streams.Stream] = {}  # this build's lasso, box, tap, range and pointer streams
        self.pane = pn.pane.HoloViews(sizing_mode="stretch_both", min_height=500)
        self.under_cursor = pn.pane.HTML(HOVER_HINT, sizing_mode="stretch_width", height=28,
                                         css_classes=["under-cursor"], margin=(2, 10))
        self.selection_pipe = hv.streams.Pipe(data=self._points_frame(self.state.selection))
        self.marks_pipe = hv.streams.Pipe(data=self._marks_frame())
        self.overlay_pipe = hv.streams.Pipe(data=self._points_frame(self.state.overlay))
        self._tile_grid: tuple[TileGrid, np.ndarray] | None = None  # the tiles on screen, for a click
        self._rebuild()

    def __panel__(self) -> pn.Column:
        return pn.Column(self.pane, self.under_cursor, sizing_mode="stretch_both")

    # -- the plot ----------------------------------------------------------------------------------

    @param.depends("state.colour", "state.equalize", "state.trust_overlay", "state.tiles", watch=True)
    def _rebuild(self) -> None:
        """A colour change gives an Image or an ImageStack, and the trust overlay adds or drops a
        layer: build the plot anew, keeping the view."""
        start = time.perf_counter()
        self.pane.object = self._map()
        self.state.timings["colour"] = time.perf_counter() - start

    def _map(self) -> hv.Overlay:
        x_range, y_range = self.state.ranges()
        colouring = self.data.colourings[self.state.colour]
        column = colouring.column
        points = self.data.points(self.state.colour)
        common = {"x_range": x_range, "y_range": y_range, "dynamic": True}
        cnorm = "eq_hist" if self.state.equalize else "linear"
        if colouring.kind == "categorical":
            raster = rasterize(points, aggregator=ds.by(column, ds.count()), **common)
            shown = base = dynspread(raster, threshold=0.6, max_px=2).opts(
                cmap=category_colours(colouring), show_legend=True, tools=SELECT_TOOLS)
        else:
            aggregator = ds.count() if column is None else ds.mean(column)
            # the hover tool shows the pixel's value; the galaxy under the cursor is `hover`'s line
            # (HoloViews' `selector` shows every field as undefined on holoviews 1.23, bokeh 3.9)
            raster = rasterize(points, aggregator=aggregator, **common)
            shown = base = dynspread(raster, threshold=0.6, max_px=2).opts(
                cmap=DENSITY_CMAP if column is None else CONTINUOUS_CMAP, cnorm=cnorm, colorbar=True,
                tools=["hover", *SELECT_TOOLS], clabel="galaxies per pixel" if column is None else column)
            if column is not None and self.data.has_missing(column):  # galaxies without a value: grey, underneath
                everyone = rasterize(self.data.points(None), aggregator=ds.count(), **common)
                base = dynspread(everyone, threshold=0.6, max_px=2).opts(cmap=[UNLABELLED_COLOUR], colorbar=False) * base
        self._streams(shown)
        if self.state.trust_overlay:  # a layer only while shown: each pan re-renders and sends every layer
            base = base * self._trust_layer(x_range, y_range)
        if self.state.tiles:
            base = base * hv.DynamicMap(self._tiles, streams=[hv.streams.Params(self.state, ["view"])])
        if len(self.state.overlay):  # as the trust layer: only while there is something to draw
            base = base * self._overlay_layer(x_range, y_range)
        layers = base * self._selection_layer(x_range, y_range)
        return (layers * self._marks_layer()).opts(
            hv.opts.Overlay(xlim=x_range, ylim=y_range, responsive=True, min_height=500,
                            xlabel="UMAP 1", ylabel="UMAP 2", active_tools=["wheel_zoom", "pan"],
                            bgcolor="#111111", title=""))

    def _streams(self, raster: hv.DynamicMap) -> None:
        """Lasso, box, tap and view streams on this build's displayed map (never on a shared element)."""
        self.streams = {"lasso": hv.streams.Lasso(source=raster), "box": hv.streams.BoundsXY(source=raster),
                        "tap": hv.streams.Tap(source=raster), "range": hv.streams.RangeXY(source=raster),
                        "pointer": hv.streams.PointerXY(source=raster)}
        self.streams["lasso"].add_subscriber(lambda geometry=None: self.lasso(geometry))
        self.streams["box"].add_subscriber(lambda bounds=None: self.box(bounds))
        self.streams["tap"].add_subscriber(lambda x=None, y=None: self.click(x, y))
        self.streams["range"].add_subscriber(self._on_range)
        self.streams["pointer"].add_subscriber(lambda x=None, y=None: self.hover(x, y))

    def _on_range(self, x_range: tuple | None = None, y_range: tuple | None = None) -> None:
        if x_range and y_range and None not in (*x_range, *y_range):
            self.state.view = ",".join(f"{v:.4g}" for v in (*x_range, *y_range))

    def _trust_layer(self, x_range: tuple, y_range: tuple) -> hv.Element:
        frame = self.data.catalog
        has_trust = "trust" in frame and bool(np.isfinite(frame["trust"].to_numpy(dtype=np.float64)).any())

        def untrusted(trust_threshold: float) -> hv.Points:
            if not has_trust:
                return hv.Points(self._points_frame([]), ["umap_x", "umap_y"])
            rows = np.flatnonzero(frame["trust"].to_numpy() < trust_threshold)
            return hv.Points(self._points_frame(rows), ["umap_x", "umap_y"])

        dmap = hv.DynamicMap(untrusted, streams=[hv.streams.Params(self.state, ["trust_threshold"])])
        raster = rasterize(dmap, aggregator=ds.count(), x_range=x_range, y_range=y_range)
        return dynspread(raster, threshold=0.6, max_px=2).opts(
            cmap=[UNTRUSTED_COLOUR], alpha=0.45, colorbar=False, clipping_colors={"min": "transparent"})

    def _selection_layer(self, x_range: tuple, y_range: tuple) -> hv.Element:
        dmap = hv.DynamicMap(lambda data: hv.Points(data, ["umap_x", "umap_y"]), streams=[self.selection_pipe])
        raster = rasterize(dmap, aggregator=ds.count(), x_range=x_range, y_range=y_range)
        return dynspread(raster, threshold=0.6, max_px=3).opts(cmap=[SELECTION_COLOUR], alpha=0.9, colorbar=False)

    def _tiles(self, view: str = "") -> hv.RGB:
        """The view tiled with galaxies (`tiles_image`); a click on a tile is a click on its galaxy."""
        start = time.perf_counter()
        image, self._tile_grid = tiles_image(self.data, self.state.ranges())
        self.state.timings["tiles"] = time.perf_counter() - start
        return image

    def _overlay_layer(self, x_range: tuple, y_range: tuple) -> hv.Element:
        """The galaxies a catalogue overlay matched, ringed in their own colour."""
        dmap = hv.DynamicMap(lambda data: hv.Points(data, ["umap_x", "umap_y"]), streams=[self.overlay_pipe])
        raster = rasterize(dmap, aggregator=ds.count(), x_range=x_range, y_range=y_range)
        return dynspread(raster, threshold=0.6, max_px=4).opts(cmap=[OVERLAY_COLOUR], alpha=0.95, colorbar=False)

    def _marks_layer(self) -> hv.DynamicMap:
        return hv.DynamicMap(lambda data: hv.Points(data, ["umap_x", "umap_y"], ["role"]),
                             streams=[self.marks_pipe]).opts(
            color=hv.dim("role").categorize({"query": QUERY_COLOUR, "similar": "#ffffff"}),
            size=hv.dim("role").categorize({"query": 14, "similar": 8}), marker="circle",
            line_color="black", line_width=1)

    def _points_frame(self, rows: np.ndarray | list) -> pd.DataFrame:
        return self.data.catalog.iloc[np.asarray(rows, dtype=np.int64)][["umap_x", "umap_y"]]

    def _marks_frame(self) -> pd.DataFrame:
        query = self.state.query
        if not 0 <= query < self.data.n:
            return pd.DataFrame({"umap_x": [], "umap_y": [], "role": []})
        rows, _ = self.state.similar_to(query)
        frame = self.data.catalog.iloc[np.concatenate([rows, [query]])][["umap_x", "umap_y"]].copy()
        frame["role"] = ["similar"] * len(rows) + ["query"]
        return frame

    # -- what the state shows ----------------------------------------------------------------------

    @param.depends("state.selection", watch=True)
    def _show_selection(self) -> None:
        self.selection_pipe.send(self._points_frame(self.state.selection))

    @param.depends("state.overlay", watch=True)
    def _show_overlay(self) -> None:
        frame = self._points_frame(self.state.overlay)
        if bool(len(self.overlay_pipe.data)) != bool(len(frame)):  # the layer comes or goes: a new plot
            self.overlay_pipe = hv.streams.Pipe(data=frame)
            self._rebuild()
        else:
            self.overlay_pipe.send(frame)

    @param.depends("state.query", "state.k", watch=True)
    def _show_query(self) -> None:
        self.marks_pipe.send(self._marks_frame())

    @param.depends("state.hovered", watch=True)
    def _show_hovered(self) -> None:
        row = self.state.hovered
        self.under_cursor.object = (hover_line(self.data.catalog.iloc[row], class_columns(self.data))
                                    if row >= 0 else HOVER_HINT)

    # -- gestures ----------------------------------------------------------------------------------

    def lasso(self, geometry: np.ndarray | None) -> None:
        """A lasso's polygon (data coordinates) selects the galaxies strictly inside it."""
        if geometry is None or len(geometry) < 3:
            return
        self._select(lambda: self.data.index.in_polygon(np.asarray(geometry, dtype=np.float64)), "lasso")

    def box(self, bounds: tuple | None) -> None:
        if bounds is None or None in bounds:
            return
        x0, y0, x1, y1 = bounds
        self._select(lambda: self.data.index.in_box(x0, x1, y0, y1), "box")

    def _select(self, rows: Callable[[], np.ndarray], what: str) -> None:
        start = time.perf_counter()
        self.state.select(rows())
        self.state.timings[what] = time.perf_counter() - start

    def click(self, x: float | None, y: float | None) -> None:
        """A click picks the galaxy nearest to it on the map."""
        if x is None or y is None:
            return
        start = time.perf_counter()
        on_tile = self._tile_grid[0].galaxy_at(self._tile_grid[1], x, y) if self.state.tiles and self._tile_grid else None
        self.state.query = on_tile if on_tile is not None else self.data.index.nearest(x, y)[0]
        self.state.timings["click"] = time.perf_counter() - start

    def hover(self, x: float | None, y: float | None) -> None:
        """The galaxy under the cursor: the nearest one, when it lies within reach of the pointer
        (`HOVER_REACH` of the view)."""
        if x is None or y is None:
            return
        start = time.perf_counter()
        (x0, x1), (y0, y1) = self.state.ranges()
        row, _ = self.data.index.nearest(x, y)
        gx, gy = self.data.catalog["umap_x"].iat[row], self.data.catalog["umap_y"].iat[row]
        near = abs(gx - x) <= HOVER_REACH * (x1 - x0) and abs(gy - y) <= HOVER_REACH * (y1 - y0)
        self.state.hovered = row if near else -1
        self.state.timings["hover"] = time.perf_counter() - start


def tiles_image(data: object, ranges: tuple) -> tuple[hv.RGB, tuple[TileGrid, np.ndarray] | None]:
    """The view (x0, x1), (y0, y1) tiled with galaxies (`tiles.TileGrid`): one k-d tree query and
    one cached survey read for the cells on screen, and the grid with its galaxies (None without
    cutouts)."""
    (x0, x1), (y0, y1) = ranges
    grid = TileGrid.over((x0, x1, y0, y1), cells=TILE_CELLS)
    galaxies = grid.galaxies(data.index)
    cutouts = data.cutouts
    image = mosaic(galaxies, cutouts.rgb_arrays, TILE_PX) if cutouts.available else None
    shown = (grid, galaxies) if image is not None else None
    if image is None:
        image = np.zeros((1, 1, 4), np.uint8)
    return hv.RGB(image, bounds=(x0, y0, x1, y1), vdims=list("RGBA")), shown


def category_colours(colouring: Colouring) -> list[str]:
    """The colours of a categorical colouring's categories, in order. A class column's classes
    take the palette without its greys, in the build's class order (so a class has the same
    colour in the label's map and in the prediction's), and its unlabelled galaxies grey."""
    if not colouring.classes:
        return CATEGORY_COLOURS[: len(colouring.categories)]
    return [UNLABELLED_COLOUR if name == UNLABELLED else CLASS_COLOURS[i % len(CLASS_COLOURS)]
            for i, name in enumerate(colouring.categories)]
