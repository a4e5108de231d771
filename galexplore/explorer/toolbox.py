"""The astronomer's toolbox in the sidebar: SAMP with TOPCAT and Aladin, and a catalogue overlay.

SAMP (`galexplore.explorer.samp`): connect to the desktop's hub, send the selection, the clicked
galaxy with its similar galaxies or the whole catalogue as a VOTable, point Aladin at the
clicked galaxy; a row selection or highlight made in TOPCAT on a table sent from here selects or
clicks those galaxies, and a position Aladin points at is found as the search box finds it. The
hub calls back on its own thread: the change is handed to the page's document.

Overlay (`galexplore.explorer.overlay`): a catalogue uploaded in the page (or given to
`galexplore serve --overlay`) is matched by position or id; its matches are marked on the map and
can be selected. A bad catalogue is a message; nothing else changes.
"""

from __future__ import annotations

import html
from collections.abc import Callable

import numpy as np
import panel as pn
import param

from galexplore.errors import GalexploreError
from galexplore.explorer.overlay import MATCH_RADIUS_ARCSEC, OverlayMatch, match_overlay, overlay_name, read_overlay
from galexplore.explorer.samp import SampLink
from galexplore.explorer.state import ExplorerState

UPLOAD_SUFFIXES = ".csv,.fits,.fit,.fts,.vot,.votable,.xml,.parquet"


class Toolbox(pn.viewable.Viewer):
    """SAMP and the catalogue overlay over one session's state. `shared` says the server is
    reachable from other machines (SAMP then stays off: the hub here is not the user's)."""

    state = param.ClassSelector(class_=ExplorerState, doc="the session these tools read and change")
    shared = param.Boolean(default=False)
    samp_status = param.String(default="not connected to a SAMP hub")
    overlay_summary = param.String(default="")

    def __init__(self, hub_params: dict[str, str] | None = None, **params: object) -> None:
        super().__init__(**params)
        self.data = self.state.data
        self.overlays: dict[str, OverlayMatch] = {}  # by layer name: every catalogue loaded, in order
        self._doc = pn.state.curdoc
        self.samp = SampLink(self.data.name, on_rows=self._later(self._rows_from_samp),
                             on_row=self._later(self._row_from_samp),
                             on_position=self._later(self._position_from_samp),
                             hub_params=hub_params, shared=self.shared)
        self.samp_status = self.samp.status.message

    # -- SAMP --------------------------------------------------------------------------------------

    def connect(self, *_: object) -> None:
        self.samp_status = self.samp.connect().message

    def send_selection(self, *_: object) -> None:
        self._send(self.state.selection, f"{self.data.name} selection")

    def send_similar(self, *_: object) -> None:
        query = self.state.query
        if query < 0:
            self.state.say("no galaxy chosen: click one on the map first", "info")
            return
        rows, _ = self.state.similar_to(query)
        self._send(np.concatenate([[query], rows]), f"{self.data.name} galaxy {query} and similar")
        self._try(lambda: self.samp.point_at(*self._position(query)))

    def send_catalogue(self, *_: object) -> None:
        self._send(np.arange(self.data.n), f"{self.data.name} catalogue")

    def _send(self, rows: np.ndarray, name: str) -> None:
        if len(rows) == 0:
            self.state.say("the selection is empty: nothing to send", "info")
            return
        self._try(lambda: self.samp.send_table(self.data.catalog, np.asarray(rows, np.int64), name))

    def _try(self, action: Callable[[], object]) -> None:
        try:
            action()
        except GalexploreError as exc:
            self.state.say(str(exc), "warning")

    def _position(self, row: int) -> tuple[float, float]:
        return float(self.data.catalog["ra"].iat[row]), float(self.data.catalog["dec"].iat[row])

    def _later(self, change: Callable[..., None]) -> Callable[..., None]:
        """`change` run on the page's document (the hub calls from its own thread), or at once
        where there is no page (a notebook, a test)."""
        def run(*args: object) -> None:
            if self._doc is None:
                change(*args)
            else:
                self._doc.add_next_tick_callback(lambda: change(*args))
        return run

    def _rows_from_samp(self, rows: np.ndarray) -> None:
        self.state.select(rows)

    def _row_from_samp(self, row: int) -> None:
        self.state.query = row

    def _position_from_samp(self, ra: float, dec: float) -> None:
        self.state.search(f"{ra} {dec}")

    # -- the overlay -------------------------------------------------------------------------------

    def load_overlay(self, data: bytes, filename: str, radius_arcsec: float = MATCH_RADIUS_ARCSEC,
                     name: str | None = None) -> None:
        """Read and match a catalogue (`name`: its layer's name, else the file's); the matches of
        every catalogue loaded are the map's overlay layer. A catalogue under a name already
        loaded replaces it."""
        try:
            table = read_overlay(data, filename)
            match = match_overlay(table, overlay_name(name or filename), self.data.catalog, self.data.index,
                                  radius_arcsec=radius_arcsec, source=filename)
        except GalexploreError as exc:
            self.state.say(str(exc), "danger")
            return
        self.overlays[match.name] = match
        self.overlay_summary = "; ".join(m.summary() for m in self.overlays.values())
        self.state.overlay = np.unique(np.concatenate([m.rows for m in self.overlays.values()]))

    def select_matches(self, *_: object) -> None:
        if not self.overlays:
            self.state.say("no catalogue loaded: upload one first", "info")
            return
        self.state.select(self.state.overlay)

    def __panel__(self) -> pn.Card:
        connect = pn.widgets.Button(label="Connect to SAMP", disabled=self.shared)
        connect.on_click(self.connect)
        buttons = []
        for label, action in (("Send selection", self.send_selection), ("Send galaxy + similar", self.send_similar),
                              ("Send catalogue", self.send_catalogue)):
            button = pn.widgets.Button(label=label, disabled=self.shared)
            button.on_click(action)
            buttons.append(button)
        upload = pn.widgets.FileInput(accept=UPLOAD_SUFFIXES, sizing_mode="stretch_width")
        radius = pn.widgets.FloatInput(label="match radius (arcsec)", value=MATCH_RADIUS_ARCSEC, start=0.01, step=0.5)
        upload.param.watch(lambda event: event.new and self.load_overlay(event.new, upload.filename or "upload",
                                                                          radius.value), "value")
        select = pn.widgets.Button(label="Select the matches")
        select.on_click(self.select_matches)
        return pn.Card(
            pn.pane.HTML(pn.bind(lambda text: f"<small>{html.escape(text)}</small>", self.param.samp_status),
                         sizing_mode="stretch_width"),
            connect, pn.Column(*buttons),
            pn.pane.Markdown("**Overlay a catalogue** (RA/Dec or object_id)"), upload, radius,
            pn.pane.HTML(pn.bind(lambda text: f"<small>{html.escape(text)}</small>", self.param.overlay_summary),
                         sizing_mode="stretch_width"),
            select, title="TOPCAT, Aladin and catalogues", collapsed=True, sizing_mode="stretch_width")
