"""One browser session's explorer: the datashaded map, the selection, the gallery, the search box.

The shared, read-only atlas comes from `store.load`; everything a session changes (its colouring,
view, selection, query) lives on its `Explorer`. The science (which rows a lasso holds, which
galaxy a click means, what an export contains) is the library's (`galexplore.explorer.queries`); this
module wires it to widgets and plots.
"""

from __future__ import annotations

import datetime
import html
import io
import time
from collections.abc import Callable

import datashader as ds
import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import param
from holoviews.operation.datashader import dynspread, rasterize
from galexplore.explorer.store import AtlasData, Colouring
from galexplore.explorer.urlstate import parse_view

from galexplore.labels import UNLABELLED
from galexplore.errors import GalexploreError
from galexplore.explorer.queries import combine, find, similar, sky_links
from galexplore.atlas.export import EXPORT_FORMATS, export_name, export_selection

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
HOVER_COLUMNS = ("object_id", "z_spec", "z_phot", "type", "p_features", "trust", "anomaly_score")
HOVER_REACH = 0.012  # a galaxy is "under the cursor" within this share of the view's width and height
TABLE_PAGE = 15
EXPORT_KEPT_S = 30  # seconds an export stays on the server after its download starts
SELECT_TOOLS = ["lasso_select", "box_select", "tap"]
GALLERY_COLUMNS = 4
HOVER_HINT = "<span style='opacity:0.6'>point at a galaxy to see its values; click it for similar galaxies</span>"


class Explorer(param.Parameterized):
    """The state of one session and the views on it."""

    colour = param.Selector(doc="what colours the map")
    equalize = param.Boolean(default=True, doc="histogram-equalised colour scale")
    trust_overlay = param.Boolean(default=False, doc="shade galaxies far from any labelled galaxy")
    trust_threshold = param.Number(default=0.05, bounds=(0.0, 1.0), step=0.01)
    mode = param.Selector(default="replace", objects=["replace", "add", "subtract"], doc="what a new lasso does")
    query = param.Integer(default=-1, doc="the clicked galaxy's row (-1: none)")
    k = param.Integer(default=12, bounds=(1, 50), doc="similar galaxies shown")
    view = param.String(default="", doc="x0,x1,y0,y1 of the map view (kept in the URL)")
    present = param.Boolean(default=False, doc="presentation mode")
    hist_column = param.Selector(doc="the column histogrammed for the selection")
    export_format = param.Selector(default="csv", objects=list(EXPORT_FORMATS))
    bands = param.Boolean(default=False, doc="per-band thumbnails of the clicked galaxy")

    def __init__(self, data: AtlasData, **params: object) -> None:
        self.data = data
        colours = list(data.colourings)
        numeric = [c for c, v in data.colourings.items() if v.kind == "continuous"]
        self.param.colour.objects = colours
        self.param.hist_column.objects = numeric or [None]
        params.setdefault("colour", "z_spec" if "z_spec" in colours else colours[0])
        params.setdefault("hist_column", "z_spec" if "z_spec" in numeric else (numeric or [None])[0])
        super().__init__(**params)
        self.selection = np.zeros(0, dtype=np.int64)
        self.hovered = -1  # the row under the cursor (-1: none)
        self.timings: dict[str, float] = {}  # the last server-side latency of each interaction, seconds
        self.streams: dict[str, hv.streams.Stream] = {}  # this build's lasso, box, tap and view streams
        self.message = pn.pane.Alert("", alert_type="light", visible=False, sizing_mode="stretch_width")
        self._under_cursor = pn.pane.HTML(HOVER_HINT, sizing_mode="stretch_width", height=28,
                                          css_classes=["under-cursor"], margin=(2, 10))
        self._selection_pipe = hv.streams.Pipe(data=self._points_frame([]))
        self._marks_pipe = hv.streams.Pipe(data=self._marks_frame())
        self._map_pane = pn.pane.HoloViews(sizing_mode="stretch_both", min_height=500)
        self._table = pn.widgets.Tabulator(pd.DataFrame(), pagination="remote", page_size=TABLE_PAGE,
                                           disabled=True, sizing_mode="stretch_width", show_index=False)
        self._count = pn.pane.Markdown("**no selection**: draw a lasso or a box on the map")
        self._histogram = pn.pane.HoloViews(height=220, sizing_mode="stretch_width")
        self._gallery = pn.Column(sizing_mode="stretch_width")
        self._download = pn.widgets.FileDownload(callback=self._export_file, filename="selection.csv",
                                                 label="Download the selection", color="primary",
                                                 embed=False, disabled=True)
        self._download.param.watch(self._forget_export, "_transfers")
        self._rebuild_map()
        self._update_gallery()

    # -- the map ---------------------------------------------------------------------------------

    def _ranges(self) -> tuple[tuple[float, float], tuple[float, float]]:
        x0, x1, y0, y1 = parse_view(self.view) or self.data.bounds  # a view that is not one: the whole map
        return (x0, x1), (y0, y1)

    @param.depends("colour", "equalize", "trust_overlay", watch=True)
    def _rebuild_map(self) -> None:
        """A colour change gives an Image or an ImageStack, and the trust overlay adds or drops a
        layer: build the plot anew, keeping the view."""
        start = time.perf_counter()
        self._map_pane.object = self._map()
        self.timings["colour"] = time.perf_counter() - start

    def _map(self) -> hv.Overlay:
        x_range, y_range = self._ranges()
        colouring = self.data.colourings[self.colour]
        column = colouring.column
        points = self.data.points(self.colour)
        common = {"x_range": x_range, "y_range": y_range, "dynamic": True}
        cnorm = "eq_hist" if self.equalize else "linear"
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
                base = dynspread(everyone, threshold=0.6, max_px=2).opts(cmap=["#5a5a5a"], colorbar=False) * base
        self.raster = raster
        self._streams(shown)
        if self.trust_overlay:  # a layer only while shown: each pan re-renders and sends every layer
            base = base * self._trust_layer(x_range, y_range)
        return (base * self._selection_layer(x_range, y_range) * self._marks_layer()).opts(
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
            self.view = ",".join(f"{v:.4g}" for v in (*x_range, *y_range))

    def _trust_layer(self, x_range: tuple, y_range: tuple) -> hv.Element:
        frame = self.data.catalog
        has_trust = "trust" in frame and bool(np.isfinite(frame["trust"].to_numpy(dtype=np.float64)).any())

        def untrusted(trust_threshold: float) -> hv.Points:
            if not has_trust:
                return hv.Points(self._points_frame([]), ["umap_x", "umap_y"])
            rows = np.flatnonzero(frame["trust"].to_numpy() < trust_threshold)
            return hv.Points(self._points_frame(rows), ["umap_x", "umap_y"])

        dmap = hv.DynamicMap(untrusted, streams=[hv.streams.Params(self, ["trust_threshold"])])
        raster = rasterize(dmap, aggregator=ds.count(), x_range=x_range, y_range=y_range)
        return dynspread(raster, threshold=0.6, max_px=2).opts(
            cmap=[UNTRUSTED_COLOUR], alpha=0.45, colorbar=False, clipping_colors={"min": "transparent"})

    def _selection_layer(self, x_range: tuple, y_range: tuple) -> hv.Element:
        dmap = hv.DynamicMap(lambda data: hv.Points(data, ["umap_x", "umap_y"]), streams=[self._selection_pipe])
        raster = rasterize(dmap, aggregator=ds.count(), x_range=x_range, y_range=y_range)
        return dynspread(raster, threshold=0.6, max_px=3).opts(cmap=[SELECTION_COLOUR], alpha=0.9, colorbar=False)

    def _marks_layer(self) -> hv.DynamicMap:
        return hv.DynamicMap(lambda data: hv.Points(data, ["umap_x", "umap_y"], ["role"]),
                             streams=[self._marks_pipe]).opts(
            color=hv.dim("role").categorize({"query": QUERY_COLOUR, "similar": "#ffffff"}),
            size=hv.dim("role").categorize({"query": 14, "similar": 8}), marker="circle",
            line_color="black", line_width=1)

    def _points_frame(self, rows: np.ndarray | list) -> pd.DataFrame:
        return self.data.catalog.iloc[np.asarray(rows, dtype=np.int64)][["umap_x", "umap_y"]]

    def _marks_frame(self) -> pd.DataFrame:
        if not 0 <= self.query < self.data.n:
            return pd.DataFrame({"umap_x": [], "umap_y": [], "role": []})
        rows, _ = self._similar(self.query)
        frame = self.data.catalog.iloc[np.concatenate([rows, [self.query]])][["umap_x", "umap_y"]].copy()
        frame["role"] = ["similar"] * len(rows) + ["query"]
        return frame

    # -- selecting -------------------------------------------------------------------------------

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
        self.set_selection(combine(self.selection, rows(), self.mode))
        self.timings[what] = time.perf_counter() - start

    def set_selection(self, rows: np.ndarray) -> None:
        self.selection = np.asarray(rows, dtype=np.int64)
        n = len(self.selection)
        self._selection_pipe.send(self._points_frame(self.selection))
        self._count.object = (f"**{n:,} selected** of {self.data.n:,} galaxies" if n
                              else "**no selection**: draw a lasso or a box on the map")
        table = self.data.catalog.iloc[self.selection] if n else pd.DataFrame()
        # Tabulator writes column titles into the page as HTML: a column's name is catalog text too
        self._table.titles = {column: html.escape(str(column)) for column in table.columns}
        self._table.value = table
        self._download.disabled = n == 0
        self._update_histogram()

    def clear(self, *_: object) -> None:
        self.set_selection(np.zeros(0, dtype=np.int64))

    @param.depends("hist_column", watch=True)
    def _update_histogram(self) -> None:
        column = self.hist_column
        if column is None:
            self._histogram.object = None
            return
        counts, edges = self.data.histogram_of_all(column)
        width = np.diff(edges)
        everyone = hv.Histogram((edges, counts / max(1, counts.sum()) / width), label="all galaxies")
        layers = everyone.opts(alpha=0.35, color="#888888", line_alpha=0)
        if len(self.selection):
            values = pd.to_numeric(self.data.catalog[column].iloc[self.selection], errors="coerce").to_numpy(dtype=np.float64)
            chosen, _ = np.histogram(values[np.isfinite(values)], bins=edges)
            layers = layers * hv.Histogram((edges, chosen / max(1, chosen.sum()) / width), label="selection").opts(
                alpha=0.6, color=SELECTION_COLOUR, line_alpha=0)
        self._histogram.object = layers.opts(hv.opts.Overlay(responsive=True, height=220, xlabel=column,
                                                             ylabel="density", legend_position="top_right"))

    def _export_file(self) -> io.BytesIO | None:
        if not len(self.selection):
            self._say("the selection is empty: nothing to export", "warning")
            return None
        start = time.perf_counter()
        data = export_selection(self.data.catalog, self.selection, self.export_format)
        self._download.filename = export_name(self.data.name, self.export_format, datetime.datetime.now(datetime.timezone.utc))
        self.timings["export"] = time.perf_counter() - start
        return io.BytesIO(data)

    def _forget_export(self, _: object = None) -> None:
        """An export is held as base64 text (1.33x the file) in the widget and its Bokeh model:
        once its download has started, drop it, so a session keeps no more than its selection."""
        doc = pn.state.curdoc
        if doc is not None and doc.session_context is not None:  # served; in tests the test clears it
            doc.add_timeout_callback(self._clear_export, int(EXPORT_KEPT_S * 1000))

    def _clear_export(self) -> None:
        self._download.data = ""  # the Bokeh model's data is a str: "" is none

    @param.depends("export_format", watch=True)
    def _rename_download(self) -> None:
        self._download.filename = export_name(self.data.name, self.export_format, datetime.datetime.now(datetime.timezone.utc))

    # -- clicking and finding ----------------------------------------------------------------------

    def click(self, x: float | None, y: float | None) -> None:
        """A click picks the galaxy nearest to it on the map."""
        if x is None or y is None:
            return
        start = time.perf_counter()
        row, _ = self.data.index.nearest(x, y)
        self.query = row
        self.timings["click"] = time.perf_counter() - start

    def hover(self, x: float | None, y: float | None) -> None:
        """The galaxy under the cursor: the nearest one, when it lies within reach of the pointer
        (`HOVER_REACH` of the view), shown as one line of its catalog values."""
        if x is None or y is None:
            return
        start = time.perf_counter()
        (x0, x1), (y0, y1) = self._ranges()
        row, _ = self.data.index.nearest(x, y)
        gx, gy = self.data.catalog["umap_x"].iat[row], self.data.catalog["umap_y"].iat[row]
        near = abs(gx - x) <= HOVER_REACH * (x1 - x0) and abs(gy - y) <= HOVER_REACH * (y1 - y0)
        self.hovered = row if near else -1
        record = self.data.catalog.iloc[row]
        self._under_cursor.object = _hover_line(record, self._class_columns()) if near else HOVER_HINT
        self.timings["hover"] = time.perf_counter() - start

    def search(self, text: str) -> None:
        """An object_id or a sky position (degrees or sexagesimal), snapped to the nearest galaxy."""
        try:
            found = find(self.data.catalog, self.data.index, text)
        except GalexploreError as exc:
            self._say(str(exc), "danger")
            return
        self.query = found["row"]
        if found["separation_arcsec"] is not None:
            self._say(f"nearest galaxy to {text}: {found['separation_arcsec']:.2f} arcsec away", "info")
        else:
            self.message.visible = False

    def select_similar(self, *_: object) -> None:
        """The query and its similar galaxies become (or join) the selection."""
        if not 0 <= self.query < self.data.n:
            self._say(f"no galaxy chosen, so none similar to select: click one on the map or find one by "
                      f"{self._findable().replace('`', '')} first", "info")
            return
        rows, _ = self._similar(self.query)
        self.set_selection(combine(self.selection, np.append(rows, self.query), self.mode))

    def _similar(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """`explore.similar` of `row`, or none, with the reason in the page, when the atlas's
        neighbour index is damaged."""
        try:
            return similar(self.data.atlas.neighbors, self.data.atlas.similarities, row, self.k)
        except GalexploreError as exc:
            self._say(str(exc), "danger")
            return np.zeros(0, np.int64), np.zeros(0, np.float32)

    @param.depends("query", "k", "bands", watch=True)
    def _update_gallery(self) -> None:
        if not -1 <= self.query < self.data.n:  # set from outside (a URL, a script): never an error page
            self._say(f"galaxy row {self.query} is not in this atlas (rows 0 to {self.data.n - 1:,})", "warning")
            self.query = -1
            return
        start = time.perf_counter()
        self._marks_pipe.send(self._marks_frame())
        self._gallery[:] = self._gallery_items()
        self.timings["gallery"] = time.perf_counter() - start

    def _gallery_items(self) -> list:
        if self.query < 0:
            return [pn.pane.Markdown(f"Click a galaxy on the map, or find one by {self._findable()}.")]
        catalog, row = self.data.catalog, self.query
        record = catalog.iloc[row]
        cutouts = self.data.cutouts
        image = cutouts.rgb_png(row, size=160) if cutouts.available else None
        header = pn.Row(
            pn.pane.PNG(image, width=160, height=160) if image else pn.pane.Markdown(f"*no cutout: {html.escape(str(cutouts.reason))}*", width=160),
            pn.Column(pn.pane.HTML(f"<b>{_cell(record['object_id'])}</b>{self._sky_lines(record)}"),
                      pn.pane.HTML(_record_table(record if self.data.has_positions else record.drop(["ra", "dec"])),
                                   max_height=240, styles={"overflow-y": "auto"}),
                      sizing_mode="stretch_width"),
        )
        items: list = [header]
        if self.bands and cutouts.available:
            items.append(pn.Row(*[pn.Column(pn.pane.PNG(png, width=72, height=72), pn.pane.HTML(html.escape(band)))
                                  for band, png in (cutouts.band_pngs(row, size=72) or {}).items()]))
        rows, sims = self._similar(row)
        pictures = cutouts.rgb_pngs(rows, size=96) if cutouts.available else [None] * len(rows)
        tiles, classes = [], self._class_columns()
        for other, sim, png in zip(rows, sims, pictures):
            button = pn.widgets.Button(label="explore", color="light", width=96, margin=(0, 2))
            button.on_click(lambda _event, other=int(other): setattr(self, "query", other))
            caption = pn.pane.HTML(_caption(catalog.iloc[other], float(sim), classes), width=100, margin=(0, 2))
            picture = pn.pane.PNG(png, width=96, height=96, margin=2) if png else pn.Spacer(width=96, height=10)
            tiles.append(pn.Column(picture, caption, button, width=104))
        items.append(pn.pane.Markdown(f"**{len(rows)} most similar** (cosine similarity of the representations)"))
        items.append(pn.GridBox(*tiles, ncols=GALLERY_COLUMNS))
        return items

    def _class_columns(self) -> tuple[str, ...]:
        """The class columns, each with its predicted class and that class's probability: what
        the hover line and the gallery's captions add to their usual columns."""
        return tuple(c for column in self.data.classes for c in (column, f"{column}_pred", f"{column}_prob")
                     if c in self.data.catalog)

    def _findable(self) -> str:
        """What the search box takes: an object_id, and RA/Dec where the atlas has positions."""
        return "`object_id` or RA/Dec" if self.data.has_positions else "`object_id` (this atlas has no sky positions)"

    def _sky_lines(self, record: pd.Series) -> str:
        """The clicked galaxy's RA/Dec and its sky-viewer links (HTML), or nothing in an atlas
        without sky positions."""
        if not self.data.has_positions:
            return ""
        links = " · ".join(f'<a href="{html.escape(url)}" target="_blank" rel="noopener">{html.escape(name)}</a>'
                           for name, url in sky_links(record["ra"], record["dec"]).items())
        return f"<br>RA {record['ra']:.5f}, Dec {record['dec']:+.5f}<br>{links}"

    def _say(self, text: str, kind: str) -> None:
        """Show `text` (plain text, escaped here: it may quote a URL or a catalog) above the map."""
        self.message.object, self.message.alert_type, self.message.visible = html.escape(text), kind, True

    def note(self, lines: list[str]) -> None:
        """Say what could not be used as given (URL values, catalog columns), one line each."""
        if lines:
            self.message.object = "<br>".join(html.escape(line) for line in lines)
            self.message.alert_type, self.message.visible = "warning", True

    # -- the page ----------------------------------------------------------------------------------

    def controls(self) -> pn.Column:
        placeholder = "object_id, or RA Dec (150.1 2.2 / 10:00:24 +02:12:00)" if self.data.has_positions else "object_id"
        find_box = pn.widgets.TextInput(placeholder=placeholder, sizing_mode="stretch_width")
        find_box.param.watch(lambda event: self.search(event.new), "value")
        clear = pn.widgets.Button(label="Clear selection")
        clear.on_click(self.clear)
        similar_button = pn.widgets.Button(label="Select these")
        similar_button.on_click(self.select_similar)
        return pn.Column(
            pn.pane.Markdown(f"### {html.escape(self.data.name)}\n{self.data.n:,} galaxies"),
            pn.widgets.Select.from_param(self.param.colour, label="Colour by"),
            pn.widgets.Checkbox.from_param(self.param.equalize, label="histogram-equalised colours"),
            pn.widgets.Checkbox.from_param(self.param.trust_overlay, label="shade galaxies far from labelled data"),
            pn.widgets.FloatSlider.from_param(self.param.trust_threshold, label="trust below"),
            *self._trust_note(),
            *self._card_panel(),
            pn.pane.Markdown("**Find a galaxy**"), find_box,
            pn.widgets.RadioButtonGroup.from_param(self.param.mode, label="a new lasso"),
            pn.Row(clear, similar_button),
            pn.widgets.IntSlider.from_param(self.param.k, label="similar galaxies"),
            pn.widgets.Checkbox.from_param(self.param.bands, label="per-band thumbnails"),
            pn.widgets.Checkbox.from_param(self.param.present, label="presentation mode"),
            width=300,
        )

    def _trust_note(self) -> list:
        """A line under the trust controls when trust is undefined (an atlas without labels)."""
        note = self.data.trust_note()
        if note is None:
            return []
        return [pn.pane.Markdown(f"*trust is undefined: {html.escape(note)}; set `[trust] labels` and rebuild*",
                                 sizing_mode="stretch_width")]

    def _card_panel(self) -> list:
        """How good is this map: the report card's verdict (the encoder against raw pixels and the
        untrained network on this atlas's labels) and its health, folded under the trust controls."""
        lines = self.data.card_lines()
        if lines is None:
            return []
        items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
        body = pn.pane.HTML(f"<ul style='padding-left:1.2em;margin:0'>{items}</ul>"
                            "<small><code>galexplore evaluate ATLAS</code> prints the whole card</small>",
                            sizing_mode="stretch_width")
        return [pn.Card(body, title="How good is this map", collapsed=True, sizing_mode="stretch_width")]

    def selection_panel(self) -> pn.Column:
        return pn.Column(
            self._count,
            pn.Row(pn.widgets.Select.from_param(self.param.hist_column, label="histogram of"),
                   pn.widgets.Select.from_param(self.param.export_format, label="export as"), self._download),
            self._histogram, self._table, sizing_mode="stretch_width",
        )

    def layout(self) -> pn.viewable.Viewable:
        sidebar = self.controls()
        sidebar.visible = not self.present
        details = pn.Tabs(("Galaxy", self._gallery), ("Selection", self.selection_panel()),
                          sizing_mode="stretch_height", width=480)
        page = pn.Row(sidebar, pn.Column(self.message, self._map_pane, self._under_cursor, sizing_mode="stretch_both"), details,
                      sizing_mode="stretch_both", css_classes=["galexplore"])

        def presenting(event: param.parameterized.Event) -> None:
            sidebar.visible = not event.new
            page.styles = {"font-size": "150%"} if event.new else {}

        self.param.watch(presenting, "present")
        if self.present:
            page.styles = {"font-size": "150%"}
        return page


def _cell(value: object) -> str:
    """A catalog value as escaped HTML text (catalog strings are never markup)."""
    if isinstance(value, (float, np.floating)):
        return "" if np.isnan(value) else f"{value:.5g}"
    return html.escape(str(value))


def _record_table(record: pd.Series) -> str:
    rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{_cell(v)}</td></tr>" for k, v in record.items())
    return f"<table style='font-size:90%'>{rows}</table>"


def category_colours(colouring: Colouring) -> list[str]:
    """The colours of a categorical colouring's categories, in order. A class column's classes
    take the palette without its greys, in the build's class order (so a class has the same
    colour in the label's map and in the prediction's), and its unlabelled galaxies grey."""
    if not colouring.classes:
        return CATEGORY_COLOURS[: len(colouring.categories)]
    return [UNLABELLED_COLOUR if name == UNLABELLED else CLASS_COLOURS[i % len(CLASS_COLOURS)]
            for i, name in enumerate(colouring.categories)]


def _hover_line(record: pd.Series, extra: tuple[str, ...] = ()) -> str:
    """One line of a galaxy's values for the pointer: its id, then the hover columns it has."""
    columns = (*HOVER_COLUMNS[1:], *extra)
    return "under the cursor: " + " · ".join([f"<b>{_cell(record['object_id'])}</b>", *_values(record, columns)])


def _caption(record: pd.Series, similarity: float, extra: tuple[str, ...] = ()) -> str:
    return "<br>".join([f"sim {similarity:.3f}", *_values(record, ("z_spec", "z", "type", *extra))])


def _values(record: pd.Series, columns: tuple[str, ...]) -> list[str]:
    """'column value' (escaped) for each of `columns` the record has a value in (NaN: none)."""
    cells = ((column, _cell(record[column])) for column in columns if column in record)
    return [f"{html.escape(column)} {text}" for column, text in cells if text != ""]
