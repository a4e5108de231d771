"""The selection of one session: how many, a histogram against all galaxies, the table of its
rows, and its export (CSV, FITS, VOTable, Parquet) as a download made when it is asked for."""

from __future__ import annotations

import datetime
import html
import io
import time

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import param

from galexplore.atlas.export import export_name, export_selection
from galexplore.explorer.mapview import SELECTION_COLOUR
from galexplore.explorer.state import ExplorerState

TABLE_PAGE = 15
EXPORT_KEPT_S = 30  # seconds an export stays on the server after its download starts
NO_SELECTION = "**no selection**: draw a lasso or a box on the map"


class SelectionView(pn.viewable.Viewer):
    """The selection panel: it follows the state's selection, histogram column and export format."""

    state = param.ClassSelector(class_=ExplorerState, doc="the session whose selection this shows")

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        self.data = self.state.data
        self.count = pn.pane.Markdown(NO_SELECTION)
        self.histogram = pn.pane.HoloViews(height=220, sizing_mode="stretch_width")
        self.table = pn.widgets.Tabulator(pd.DataFrame(), pagination="remote", page_size=TABLE_PAGE,
                                          disabled=True, sizing_mode="stretch_width", show_index=False)
        self.download = pn.widgets.FileDownload(callback=self.export_file, filename="selection.csv",
                                                label="Download the selection", color="primary",
                                                embed=False, disabled=True)
        self.download.param.watch(self._forget_export, "_transfers")

    def __panel__(self) -> pn.Column:
        return pn.Column(
            self.count,
            pn.Row(pn.widgets.Select.from_param(self.state.param.hist_column, label="histogram of"),
                   pn.widgets.Select.from_param(self.state.param.export_format, label="export as"), self.download),
            self.histogram, self.table, sizing_mode="stretch_width",
        )

    @param.depends("state.selection", watch=True)
    def _show(self) -> None:
        selection = self.state.selection
        n = len(selection)
        self.count.object = f"**{n:,} selected** of {self.data.n:,} galaxies" if n else NO_SELECTION
        table = self.data.catalog.iloc[selection] if n else pd.DataFrame()
        # Tabulator writes column titles into the page as HTML: a column's name is catalog text too
        self.table.titles = {column: html.escape(str(column)) for column in table.columns}
        self.table.value = table
        self.download.disabled = n == 0
        self._show_histogram()

    @param.depends("state.hist_column", watch=True)
    def _show_histogram(self) -> None:
        column, selection = self.state.hist_column, self.state.selection
        if column is None:
            self.histogram.object = None
            return
        counts, edges = self.data.histogram_of_all(column)
        width = np.diff(edges)
        everyone = hv.Histogram((edges, counts / max(1, counts.sum()) / width), label="all galaxies")
        layers = everyone.opts(alpha=0.35, color="#888888", line_alpha=0)
        if len(selection):
            values = pd.to_numeric(self.data.catalog[column].iloc[selection], errors="coerce").to_numpy(dtype=np.float64)
            chosen, _ = np.histogram(values[np.isfinite(values)], bins=edges)
            layers = layers * hv.Histogram((edges, chosen / max(1, chosen.sum()) / width), label="selection").opts(
                alpha=0.6, color=SELECTION_COLOUR, line_alpha=0)
        self.histogram.object = layers.opts(hv.opts.Overlay(responsive=True, height=220, xlabel=column,
                                                            ylabel="density", legend_position="top_right"))

    # -- the export --------------------------------------------------------------------------------

    def export_file(self) -> io.BytesIO | None:
        """The selection in the chosen format, made when the download button asks for it."""
        if not len(self.state.selection):
            self.state.say("the selection is empty: nothing to export", "warning")
            return None
        start = time.perf_counter()
        data = export_selection(self.data.catalog, self.state.selection, self.state.export_format)
        self._name_download()
        self.state.timings["export"] = time.perf_counter() - start
        return io.BytesIO(data)

    @param.depends("state.export_format", watch=True)
    def _name_download(self) -> None:
        now = datetime.datetime.now(datetime.timezone.utc)
        self.download.filename = export_name(self.data.name, self.state.export_format, now)

    def _forget_export(self, _: object = None) -> None:
        """An export is held as base64 text (1.33x the file) in the widget and its Bokeh model:
        once its download has started, drop it, so a session keeps no more than its selection."""
        doc = pn.state.curdoc
        if doc is not None and doc.session_context is not None:  # served; in tests the test clears it
            doc.add_timeout_callback(self._clear_export, int(EXPORT_KEPT_S * 1000))

    def _clear_export(self) -> None:
        self.download.data = ""  # the Bokeh model's data is a str: "" is none
