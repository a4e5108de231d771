"""What one browser session changes, apart from how it is shown: the explorer's state.

HoloViz's pattern for an app past one page: one `param.Parameterized` state per session, the
shared read-only store (`store.AtlasData`) and small views (`mapview`, `gallery`, `selection`,
`controls`) that depend on the state's parameters and change the session only through them and
the methods here, never by reaching into one another. The URL keeps the parameters that
`urlstate.URL_KEYS` names in step with the state (`pn.state.location.sync`, in `server.page`).

No Panel here: param only, so what a session does is tested without rendering a page.
"""

from __future__ import annotations

import numpy as np
import param

from galexplore.atlas.export import EXPORT_FORMATS
from galexplore.errors import GalexploreError
from galexplore.explorer.markup import findable
from galexplore.explorer.queries import combine, find, similar
from galexplore.explorer.store import AtlasData
from galexplore.explorer.urlstate import K_RANGE, THRESHOLD_RANGE, parse_view

ALERT_KINDS = ["light", "info", "warning", "danger"]


class ExplorerState(param.Parameterized):
    """The colouring, view, selection, query and message of one session over `data`."""

    colour = param.Selector(doc="what colours the map")
    equalize = param.Boolean(default=True, doc="histogram-equalised colour scale")
    trust_overlay = param.Boolean(default=False, doc="shade galaxies far from any labelled galaxy")
    trust_threshold = param.Number(default=0.05, bounds=THRESHOLD_RANGE, step=0.01)
    mode = param.Selector(default="replace", objects=["replace", "add", "subtract"], doc="what a new lasso does")
    query = param.Integer(default=-1, doc="the clicked galaxy's row (-1: none)")
    k = param.Integer(default=12, bounds=K_RANGE, doc="similar galaxies shown")
    view = param.String(default="", doc="x0,x1,y0,y1 of the map view (kept in the URL)")
    present = param.Boolean(default=False, doc="presentation mode")
    hist_column = param.Selector(doc="the column histogrammed for the selection")
    export_format = param.Selector(default="csv", objects=list(EXPORT_FORMATS))
    bands = param.Boolean(default=False, doc="per-band thumbnails of the clicked galaxy")
    selection = param.Array(default=np.zeros(0, np.int64), doc="the selected rows: sorted unique int64")
    hovered = param.Integer(default=-1, doc="the row under the cursor (-1: none)")
    overlay = param.Array(default=np.zeros(0, np.int64), doc="the rows a loaded catalogue overlay matched")
    tiles = param.Boolean(default=False, doc="draw the map as galaxies: the cutout nearest each cell's centre")
    message = param.List(default=[], item_type=str, doc="what the page says above the map: plain-text lines")
    message_kind = param.Selector(default="light", objects=ALERT_KINDS)

    def __init__(self, data: AtlasData, **params: object) -> None:
        self.data = data
        colours = list(data.colourings)
        numeric = [c for c, v in data.colourings.items() if v.kind == "continuous"]
        self.param.colour.objects = colours
        self.param.hist_column.objects = numeric or [None]
        params.setdefault("colour", "z_spec" if "z_spec" in colours else colours[0])
        params.setdefault("hist_column", "z_spec" if "z_spec" in numeric else (numeric or [None])[0])
        super().__init__(**params)
        self.timings: dict[str, float] = {}  # the last server-side latency of each interaction, seconds

    @param.depends("query", watch=True, on_init=True)
    def _keep_query_in_atlas(self) -> None:
        if not -1 <= self.query < self.data.n:  # set from outside (a URL, a script): never an error page
            self.say(f"galaxy row {self.query} is not in this atlas (rows 0 to {self.data.n - 1:,})", "warning")
            self.query = -1

    def ranges(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """(x0, x1), (y0, y1) of the map view; a view that is not one: the whole map."""
        x0, x1, y0, y1 = parse_view(self.view) or self.data.bounds
        return (x0, x1), (y0, y1)

    # -- the selection -----------------------------------------------------------------------------

    def select(self, rows: np.ndarray) -> None:
        """A new lasso's (or box's) rows replace, join or leave the selection, as `mode` says."""
        self.selection = combine(self.selection, rows, self.mode)

    def clear(self, *_: object) -> None:
        self.selection = np.zeros(0, dtype=np.int64)

    def select_similar(self, *_: object) -> None:
        """The query and its similar galaxies become (or join) the selection."""
        if not 0 <= self.query < self.data.n:
            self.say(f"no galaxy chosen, so none similar to select: click one on the map or find one by "
                     f"{findable(self.data).replace('`', '')} first", "info")
            return
        rows, _ = self.similar_to(self.query)
        self.select(np.append(rows, self.query))

    # -- the query ---------------------------------------------------------------------------------

    def similar_to(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """The `k` galaxies most similar to `row` and their similarities, or none, with the reason
        in the page, when the atlas's neighbour index is damaged."""
        try:
            return similar(self.data.atlas.neighbors, self.data.atlas.similarities, row, self.k)
        except GalexploreError as exc:
            self.say(str(exc), "danger")
            return np.zeros(0, np.int64), np.zeros(0, np.float32)

    def search(self, text: str) -> None:
        """An object_id or a sky position (degrees or sexagesimal), snapped to the nearest galaxy."""
        try:
            found = find(self.data.catalog, self.data.index, text)
        except GalexploreError as exc:
            self.say(str(exc), "danger")
            return
        self.query = found["row"]
        if found["separation_arcsec"] is not None:
            self.say(f"nearest galaxy to {text}: {found['separation_arcsec']:.2f} arcsec away", "info")
        else:
            self.message = []

    # -- what the page says ------------------------------------------------------------------------

    def say(self, text: str, kind: str) -> None:
        """Show `text` (plain text: the page escapes it, as it may quote a URL or a catalog)."""
        self.param.update(message=[text], message_kind=kind)

    def note(self, lines: list[str]) -> None:
        """Say what could not be used as given (URL values, catalog columns), one line each."""
        if lines:
            self.param.update(message=list(lines), message_kind="warning")
