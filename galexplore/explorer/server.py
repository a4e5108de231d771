"""The explorer served by Bokeh: the page `panel serve app/` makes for each session, the page that
says what is wrong when the atlas cannot be opened, and the background warm-up of app/setup.py.

`app/main.py`, `app/setup.py` and `app/app_hooks.py` are thin entry points onto this module, so
that the served app and an installed wheel run the same code.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
import urllib.parse
from pathlib import Path

import panel as pn

from galexplore.atlas.locations import atlas_folder
from galexplore.errors import GalexploreError
from galexplore.explorer.overlay import split_overlay
from galexplore.explorer.hosts import guard_hosts
from galexplore.explorer.store import load
from galexplore.explorer.urlstate import URL_KEYS, read_url


def atlas_path(argv: list[str]) -> Path:
    """The --atlas argument given after `panel serve app/ --args`, else the default atlas
    (`galexplore.atlas.locations`)."""
    parser = argparse.ArgumentParser(prog="panel serve app/ --args", add_help=False)
    parser.add_argument("--atlas", type=Path, default=atlas_folder())
    known, _ = parser.parse_known_args(argv)
    return known.atlas


def overlay_args(argv: list[str]) -> list[tuple[Path, str | None]]:
    """The --overlay FILE[:NAME] arguments given after `panel serve app/ --args` (`galexplore serve
    --overlay`): (file, layer name or None), in order."""
    parser = argparse.ArgumentParser(prog="panel serve app/ --args", add_help=False)
    parser.add_argument("--overlay", action="append", default=[])
    known, _ = parser.parse_known_args(argv)
    return [split_overlay(text) for text in known.overlay]


def problem_page(path: Path, error: Exception) -> pn.viewable.Viewable:
    return pn.Column(
        pn.pane.Markdown("# galexplore"),
        pn.pane.Alert(f"The atlas at `{path}` cannot be opened: {error}", alert_type="danger"),
        pn.pane.Markdown(
            "Build the demo atlas (about 4 minutes on 2 cores) and reload this page:\n\n"
            "```bash\nmake demo\n# or\ngalexplore build pipelines/demo.toml --out data/atlas/demo\n```\n\n"
            "Or serve another atlas: `galexplore serve ATLAS` (`panel serve app/ --args --atlas ATLAS`)."
        ),
        max_width=900,
    )


def page() -> pn.viewable.Viewable:
    from galexplore.explorer.page import Explorer

    path = atlas_path(sys.argv[1:])
    try:
        data = load(path)
    except GalexploreError as exc:
        return problem_page(path, exc)
    url = read_url(pn.state.session_args or {}, data.colourings, data.n)
    explorer = Explorer(data, shared=_browsed_from_elsewhere(), **url.values)
    explorer.state.note([*data.notes, *url.notes])
    for file, name in overlay_args(sys.argv[1:]):  # `galexplore serve --overlay`: checked there, read here
        try:
            explorer.toolbox.load_overlay(file.read_bytes(), file.name, name=name)
        except OSError as exc:
            explorer.state.say(f"{file}: cannot be read ({exc.strerror or exc})", "danger")
    location = pn.state.location
    if location is not None:
        # `sync` would set the state from the URL as typed: leave only the keys that are not the
        # state's, and `sync` writes the checked values into the URL from the state, then keeps both in step
        others = {key: value for key, value in location.query_params.items() if key not in URL_KEYS}
        location.search = "?" + urllib.parse.urlencode(others) if others else ""
        location.sync(explorer.state, {name: key for key, name in URL_KEYS.items()})
    return explorer.layout()


def _browsed_from_elsewhere() -> bool:
    """Whether this page was asked for by a name other than this machine's loopback: then the
    browser, and the user's SAMP hub, are likely on another machine."""
    request = getattr(getattr(pn.state.curdoc, "session_context", None), "request", None)
    host = (getattr(request, "headers", None) or {}).get("Host", "") if request is not None else ""
    name = host.rsplit(":", 1)[0].strip("[]").lower()
    return bool(name) and name not in ("localhost", "127.0.0.1", "::1")


def serve_page() -> None:
    """What app/main.py does when `panel serve` runs it: the Host check, Panel's extensions and
    this session's page."""
    guard_hosts()  # `panel serve app/main.py` runs neither setup.py nor app_hooks.py: from the first page on
    pn.extension("tabulator", sizing_mode="stretch_width", notifications=False)
    page().servable(title="galexplore")


def warm() -> None:
    start = time.perf_counter()
    try:
        data = load(atlas_path(sys.argv))
    except GalexploreError:
        return  # the page will say what is wrong
    data.prepare()
    print(f"galexplore: {data.name} warm in {time.perf_counter() - start:.1f} s", flush=True)


def start_warming() -> None:
    """What app/setup.py does before the server is made: the Host check on every request, then the
    atlas loaded and the renderer warmed in a background thread."""
    guard_hosts()
    threading.Thread(target=warm, name="galexplore-warm", daemon=True).start()
