"""One browser session's explorer: its state, and the views on it put together as one page.

The shared, read-only atlas comes from `store.load`; everything a session changes (its colouring,
view, selection, query) lives on its `ExplorerState` (`state.py`). The views, the map
(`mapview.py`), the gallery (`gallery.py`), the selection (`selection.py`) and the sidebar
(`controls.py`), each depend on that state and change it, never one another; this module only
lays them out. The science (which rows a lasso holds, which galaxy a click means, what an export
contains) is the library's (`galexplore.explorer.queries`, `galexplore.atlas.export`).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import panel as pn

from galexplore.errors import GalexploreError
from galexplore.explorer.controls import WIDTH as SIDEBAR_WIDTH
from galexplore.explorer.controls import Controls
from galexplore.explorer.gallery import Gallery
from galexplore.explorer.markup import message_html
from galexplore.explorer.mapview import UNLABELLED_COLOUR, MapView, category_colours
from galexplore.explorer.selection import SelectionView
from galexplore.explorer.state import ExplorerState
from galexplore.explorer.store import AtlasData
from galexplore.explorer.toolbox import Toolbox

__all__ = ["UNLABELLED_COLOUR", "Explorer", "category_colours"]

PRESENTING = {"font-size": "150%"}


class Explorer(pn.viewable.Viewer):
    """One session: its state (`state`) and the views on it (`map`, `gallery`,
    `selection_panel`, `controls`). Keyword arguments set the state, as the page's URL does (`colour="trust"`).

    In a notebook it renders as the page does, and its state reads and sets from Python:
    `selection` (live), `clicked`, `select(ids)`, `click(id)`, `colour`."""

    def __init__(self, data: AtlasData, *, shared: bool = False, **params: object) -> None:
        super().__init__()
        self.data = data
        self.state = ExplorerState(data, **params)
        self.message = pn.pane.Alert(pn.bind(message_html, self.state.param.message),
                                     alert_type=self.state.param.message_kind,
                                     visible=pn.bind(bool, self.state.param.message), sizing_mode="stretch_width")
        self.map = MapView(state=self.state)
        self.gallery = Gallery(state=self.state)
        self.selection_panel = SelectionView(state=self.state)
        self.controls = Controls(state=self.state)
        self.toolbox = Toolbox(state=self.state, shared=shared)

    # -- from a notebook: the session's state, read and set --------------------------------------

    @property
    def selection(self) -> pd.DataFrame:
        """The selected galaxies' catalog rows (indexed by atlas row, `object_id` first), as
        the page shows them now: lasso on the map, read here."""
        return _rows_frame(self.data.catalog, self.state.selection)

    @property
    def clicked(self) -> pd.Series | None:
        """The clicked (or found) galaxy's catalog row, or None."""
        row = self.state.query
        return _rows_frame(self.data.catalog, [row]).iloc[0] if row >= 0 else None

    def select(self, ids: Iterable[object]) -> pd.DataFrame:
        """Select the galaxies with these object_ids (as the page's lasso mode says: replace, add
        or subtract) and return the selection; `GalexploreError` names an id not in the atlas."""
        self.state.select(_rows_of_ids(self.data.catalog["object_id"], list(ids)))
        return self.selection

    def click(self, object_id: object) -> pd.Series:
        """Show the galaxy with this object_id and its similar galaxies, as a click does."""
        self.state.query = int(_rows_of_ids(self.data.catalog["object_id"], [object_id])[0])
        return self.clicked

    @property
    def colour(self) -> str:
        """What colours the map (one of `colourings`); set it to recolour."""
        return self.state.colour

    @colour.setter
    def colour(self, name: str) -> None:
        self.state.colour = name

    @property
    def colourings(self) -> list[str]:
        return list(self.data.colourings)

    def layout(self) -> pn.viewable.Viewable:
        """The page: the sidebar, the message and the map, the gallery and selection tabs."""
        details = pn.Tabs(("Galaxy", self.gallery), ("Selection", self.selection_panel),
                          sizing_mode="stretch_height", width=480)
        sidebar = pn.Column(self.controls, pn.Column(self.toolbox, visible=self.state.param.present.rx.not_()),
                            width=SIDEBAR_WIDTH)
        return pn.Row(sidebar, pn.Column(self.message, self.map, sizing_mode="stretch_both"), details,
                      sizing_mode="stretch_both", css_classes=["galexplore"],
                      styles=pn.bind(_page_styles, self.state.param.present))

    def __panel__(self) -> pn.viewable.Viewable:
        return self.layout()


def _rows_frame(catalog: pd.DataFrame, rows: Iterable[int]) -> pd.DataFrame:
    rows = np.asarray(list(rows), np.int64)
    columns = ["object_id", *[c for c in catalog.columns if c != "object_id"]]
    return catalog.iloc[rows][columns]


def _rows_of_ids(ids: pd.Series, wanted: list[object]) -> np.ndarray:
    """Atlas rows of object ids given as numbers or text; `GalexploreError` naming the first
    id that is not in the atlas."""
    index = pd.Index(ids.astype(str))
    found = index.get_indexer([str(w).strip() for w in wanted])
    if (found < 0).any():
        missing = wanted[int(np.flatnonzero(found < 0)[0])]
        raise GalexploreError(f"object_id {missing!r} is not in this atlas ({len(ids):,} galaxies)")
    return found.astype(np.int64)


def _page_styles(present: bool) -> dict[str, str]:
    """Presentation mode: the whole page's text half as large again, for a projector."""
    return PRESENTING if present else {}
