"""The clicked galaxy and the galaxies most similar to it: its cutout, catalog row and sky links,
then a grid of its neighbours, each a button that makes it the query in turn."""

from __future__ import annotations

import html
import time

import numpy as np
import panel as pn
import param

from galexplore.explorer.markup import caption, cell, class_columns, findable, record_table, sky_lines
from galexplore.explorer.state import ExplorerState

GALLERY_COLUMNS = 4
HEADER_PX, BAND_PX, TILE_PX = 160, 72, 96  # the query's cutout, its per-band thumbnails, a neighbour's


class Gallery(pn.viewable.Viewer):
    """The gallery of one session's query: it follows the query, `k` and the per-band switch."""

    state = param.ClassSelector(class_=ExplorerState, doc="the session whose query this shows")

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        self.data = self.state.data
        self.column = pn.Column(sizing_mode="stretch_width")
        self._show()

    def __panel__(self) -> pn.Column:
        return self.column

    @param.depends("state.query", "state.k", "state.bands", watch=True)
    def _show(self) -> None:
        start = time.perf_counter()
        self.column[:] = self._items()
        self.state.timings["gallery"] = time.perf_counter() - start

    def _items(self) -> list:
        row = self.state.query
        if not 0 <= row < self.data.n:
            return [pn.pane.Markdown(f"Click a galaxy on the map, or find one by {findable(self.data)}.")]
        items: list = [self._header(row)]
        cutouts = self.data.cutouts
        if self.state.bands and cutouts.available:
            items.append(pn.Row(*[pn.Column(pn.pane.PNG(png, width=BAND_PX, height=BAND_PX), pn.pane.HTML(html.escape(band)))
                                  for band, png in (cutouts.band_pngs(row, size=BAND_PX) or {}).items()]))
        rows, sims = self.state.similar_to(row)
        items.append(pn.pane.Markdown(f"**{len(rows)} most similar** (cosine similarity of the representations)"))
        items.append(pn.GridBox(*self._tiles(rows, sims), ncols=GALLERY_COLUMNS))
        return items

    def _header(self, row: int) -> pn.Row:
        """The query's cutout beside its id, sky position and catalog row."""
        record = self.data.catalog.iloc[row]
        cutouts = self.data.cutouts
        image = cutouts.rgb_png(row, size=HEADER_PX) if cutouts.available else None
        picture = (pn.pane.PNG(image, width=HEADER_PX, height=HEADER_PX) if image else
                   pn.pane.Markdown(f"*no cutout: {html.escape(str(cutouts.reason))}*", width=HEADER_PX))
        sky = sky_lines(record) if self.data.has_positions else ""
        shown = record if self.data.has_positions else record.drop(["ra", "dec"])
        return pn.Row(picture, pn.Column(pn.pane.HTML(f"<b>{cell(record['object_id'])}</b>{sky}"),
                                         pn.pane.HTML(record_table(shown), max_height=240, styles={"overflow-y": "auto"}),
                                         sizing_mode="stretch_width"))

    def _tiles(self, rows: np.ndarray, sims: np.ndarray) -> list[pn.Column]:
        """One tile per similar galaxy: its cutout, caption and a button that explores it."""
        cutouts, catalog, classes = self.data.cutouts, self.data.catalog, class_columns(self.data)
        pictures = cutouts.rgb_pngs(rows, size=TILE_PX) if cutouts.available else [None] * len(rows)
        tiles = []
        for other, sim, png in zip(rows, sims, pictures):
            button = pn.widgets.Button(label="explore", color="light", width=TILE_PX, margin=(0, 2))
            button.on_click(lambda _event, other=int(other): setattr(self.state, "query", other))
            text = pn.pane.HTML(caption(catalog.iloc[other], float(sim), classes), width=TILE_PX + 4, margin=(0, 2))
            picture = (pn.pane.PNG(png, width=TILE_PX, height=TILE_PX, margin=2) if png
                       else pn.Spacer(width=TILE_PX, height=10))
            tiles.append(pn.Column(picture, text, button, width=TILE_PX + 8))
        return tiles
