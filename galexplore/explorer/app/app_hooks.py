"""Bokeh's server hooks for the app/ directory: the Host check is installed when the server loads
the app, so a bare `panel serve app/` refuses a foreign Host from its first request on (main.py's
own call comes only with the first page, which a rebinding page could be the one to ask for)."""

from __future__ import annotations

from galexplore.explorer.hosts import guard_hosts


def on_server_loaded(server_context) -> None:
    guard_hosts()
