"""Refuse every request whose Host header the server was not told to allow (DNS rebinding).

A page on evil.example, whose name its owner makes resolve to 127.0.0.1, reaches a server that
listens on localhost as if it were that server's own page: Tornado (6.6) does not ask Bokeh's
websocket allow-list when a websocket's Origin equals its Host (`_check_cross_origin` treats it
as same-origin), and Bokeh checks no Host for pages at all. So this checks the Host of every
HTTP and websocket request against the same list as --allow-websocket-origin (Bokeh's default,
localhost:PORT, when none is given; BOKEH_ALLOW_WS_ORIGIN when set) and answers anything else
with 403 before any handler runs.

`guard_hosts` wraps Bokeh's Tornado application class once per process: app/setup.py calls it
before the server is made (`galexplore serve`), app/app_hooks.py when a bare `panel serve app/`
loads the app (before its first request), and app/main.py with the first page of a
`panel serve app/main.py`, which has neither.
"""

from __future__ import annotations

from bokeh.server.tornado import BokehTornado
from bokeh.server.util import check_allowlist
from bokeh.settings import settings
from tornado import web

_GUARDED = "_galexplore_host_guard"


def allowed_hosts(application: BokehTornado) -> set[str]:
    """The hosts (host:port patterns) that may reach `application`."""
    from_environment = settings.allowed_ws_origin()
    return set(from_environment) if from_environment else set(application.websocket_origins)


def host_allowed(host: str, allowed: set[str]) -> bool:
    """Whether a request's Host header is one of `allowed` (no port means :80, as Bokeh reads it).

    >>> host_allowed("localhost:5006", {"localhost:5006"}), host_allowed("evil.example:5006", {"localhost:5006"})
    (True, False)
    """
    return bool(host) and check_allowlist(host.lower(), sorted(allowed))


class _Refused(web.RequestHandler):
    """403 for every method, websocket upgrades included."""

    def initialize(self, host: str) -> None:
        self.host = host

    def prepare(self) -> None:
        self.set_status(403)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(f"403: Host {self.host[:100]!r} is not allowed to reach this galexplore server; serve "
                    f"with --allow-websocket-origin {self.host[:100] or 'HOST:PORT'} to allow it\n")


def guard_hosts() -> None:
    """Check the Host header of every request to a Bokeh server in this process (idempotent)."""
    if getattr(BokehTornado.find_handler, _GUARDED, False):
        return
    original = BokehTornado.find_handler

    def find_handler(self, request, **kwargs):
        host = request.headers.get("Host", "")
        allowed = allowed_hosts(self)
        if allowed and not host_allowed(host, allowed):  # an empty list (a unix socket) is Bokeh's to judge
            return self.get_handler_delegate(request, _Refused, {"host": host})
        return original(self, request, **kwargs)

    setattr(find_handler, _GUARDED, True)
    BokehTornado.find_handler = find_handler
