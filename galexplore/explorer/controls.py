"""The sidebar of one session: the colouring and trust controls, the report card, the search box,
the lasso's mode and the gallery's options. Each widget is a parameter of the state or calls one
of its methods; the sidebar hides itself in presentation mode."""

from __future__ import annotations

import html

import panel as pn
import param

from galexplore.explorer.markup import bullet_list
from galexplore.explorer.state import ExplorerState

WIDTH = 300


class Controls(pn.viewable.Viewer):
    """The sidebar's widgets over one session's state."""

    state = param.ClassSelector(class_=ExplorerState, doc="the session these widgets change")

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        self.data = self.state.data

    def __panel__(self) -> pn.Column:
        state, data = self.state, self.data
        placeholder = "object_id, or RA Dec (150.1 2.2 / 10:00:24 +02:12:00)" if data.has_positions else "object_id"
        find_box = pn.widgets.TextInput(placeholder=placeholder, sizing_mode="stretch_width")
        find_box.param.watch(lambda event: state.search(event.new), "value")
        clear = pn.widgets.Button(label="Clear selection")
        clear.on_click(state.clear)
        similar = pn.widgets.Button(label="Select these")
        similar.on_click(state.select_similar)
        return pn.Column(
            pn.pane.Markdown(f"### {html.escape(data.name)}\n{data.n:,} galaxies"),
            pn.widgets.Select.from_param(state.param.colour, label="Colour by"),
            pn.widgets.Checkbox.from_param(state.param.equalize, label="histogram-equalised colours"),
            pn.widgets.Checkbox.from_param(state.param.trust_overlay, label="shade galaxies far from labelled data"),
            pn.widgets.FloatSlider.from_param(state.param.trust_threshold, label="trust below"),
            *self._trust_note(),
            *self._card_panel(),
            pn.pane.Markdown("**Find a galaxy**"), find_box,
            pn.widgets.RadioButtonGroup.from_param(state.param.mode, label="a new lasso"),
            pn.Row(clear, similar),
            pn.widgets.IntSlider.from_param(state.param.k, label="similar galaxies"),
            pn.widgets.Checkbox.from_param(state.param.bands, label="per-band thumbnails"),
            pn.widgets.Checkbox.from_param(state.param.tiles, label="galaxies on the map",
                                           disabled=not data.cutouts.available),
            pn.widgets.Checkbox.from_param(state.param.present, label="presentation mode"),
            width=WIDTH, visible=state.param.present.rx.not_(),
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
        body = pn.pane.HTML(f"{bullet_list(lines)}<small><code>galexplore evaluate ATLAS</code> prints the whole "
                            "card</small>", sizing_mode="stretch_width")
        return [pn.Card(body, title="How good is this map", collapsed=True, sizing_mode="stretch_width")]
