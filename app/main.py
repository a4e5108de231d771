"""`panel serve app/ [--args --atlas ATLAS]`: the galexplore explorer.

With no --atlas it opens data/atlas/demo. A missing or damaged atlas gives a page that says
what is wrong and how to build one, never a traceback. The view (colouring, zoom, overlay,
clicked galaxy, presentation mode) is kept in the URL, so each view can be bookmarked; what the
URL says is checked first (`urlstate.read_url`), and the page says what it could not use.

Run by a bare `panel serve app/`, this listens on every network interface (Bokeh's default)
unless `--address 127.0.0.1` is given; `galexplore serve` gives it.
"""

from __future__ import annotations

import argparse
import sys
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import panel as pn  # noqa: E402
from hosts import guard_hosts  # noqa: E402
from store import DEFAULT_ATLAS, load  # noqa: E402
from urlstate import URL_KEYS, read_url  # noqa: E402

from galexplore.errors import GalexploreError  # noqa: E402


def atlas_path(argv: list[str]) -> Path:
    """The --atlas argument given after `panel serve app/ --args`, else the demo atlas."""
    parser = argparse.ArgumentParser(prog="panel serve app/ --args", add_help=False)
    parser.add_argument("--atlas", type=Path, default=DEFAULT_ATLAS)
    known, _ = parser.parse_known_args(argv)
    return known.atlas


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
    from explorer import Explorer

    path = atlas_path(sys.argv[1:])
    try:
        data = load(path)
    except GalexploreError as exc:
        return problem_page(path, exc)
    state = read_url(pn.state.session_args or {}, data.colourings, data.n)
    explorer = Explorer(data, **state.values)
    explorer.note([*data.notes, *state.notes])
    location = pn.state.location
    if location is not None:
        # the URL's own values are synced back onto the explorer: leave only the checked ones,
        # which `sync` then writes into the URL from the explorer
        others = {key: value for key, value in location.query_params.items() if key not in URL_KEYS}
        location.search = "?" + urllib.parse.urlencode(others) if others else ""
        location.sync(explorer, {name: key for key, name in URL_KEYS.items()})
    return explorer.layout()


if __name__.startswith("bokeh_app"):  # run by `panel serve`, not imported by setup.py or tests
    guard_hosts()  # `panel serve app/main.py` runs neither setup.py nor app_hooks.py: from the first page on
    pn.extension("tabulator", sizing_mode="stretch_width", notifications=False)
    page().servable(title="galexplore")
