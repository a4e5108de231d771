"""One browser session's explorer: its state, and the views on it put together as one page.

The shared, read-only atlas comes from `store.load`; everything a session changes (its colouring,
view, selection, query) lives on its `ExplorerState` (`state.py`). The views, the map
(`mapview.py`), the gallery (`gallery.py`), the selection (`selection.py`) and the sidebar
(`controls.py`), each depend on that state and change it, never one another; this module only
lays them out. The science (which rows a lasso holds, which galaxy a click means, what an export
contains) is the library's (`galexplore.explorer.queries`, `galexplore.atlas.export`).
"""

from __future__ import annotations

import panel as pn

from galexplore.explorer.controls import Controls
from galexplore.explorer.gallery import Gallery
from galexplore.explorer.markup import message_html
from galexplore.explorer.mapview import UNLABELLED_COLOUR, MapView, category_colours
from galexplore.explorer.selection import SelectionView
from galexplore.explorer.state import ExplorerState
from galexplore.explorer.store import AtlasData

__all__ = ["UNLABELLED_COLOUR", "Explorer", "category_colours"]

PRESENTING = {"font-size": "150%"}


class Explorer(pn.viewable.Viewer):
    """One session: its state (`state`) and the views on it (`map`, `gallery`,
    `selection_panel`, `controls`). Keyword arguments set the state, as the page's URL does (`colour="trust"`)."""

    def __init__(self, data: AtlasData, **params: object) -> None:
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

    def layout(self) -> pn.viewable.Viewable:
        """The page: the sidebar, the message and the map, the gallery and selection tabs."""
        details = pn.Tabs(("Galaxy", self.gallery), ("Selection", self.selection_panel),
                          sizing_mode="stretch_height", width=480)
        return pn.Row(self.controls, pn.Column(self.message, self.map, sizing_mode="stretch_both"), details,
                      sizing_mode="stretch_both", css_classes=["galexplore"],
                      styles=pn.bind(_page_styles, self.state.param.present))

    def __panel__(self) -> pn.viewable.Viewable:
        return self.layout()


def _page_styles(present: bool) -> dict[str, str]:
    """Presentation mode: the whole page's text half as large again, for a projector."""
    return PRESENTING if present else {}
