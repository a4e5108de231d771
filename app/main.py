"""`panel serve app/ [--args --atlas ATLAS]`: the galexplore explorer.

With no --atlas it opens data/atlas/demo. A missing or damaged atlas gives a page that says
what is wrong and how to build one, never a traceback. The view (colouring, zoom, overlay,
clicked galaxy, presentation mode) is kept in the URL, so each view can be bookmarked.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import panel as pn  # noqa: E402
from store import DEFAULT_ATLAS, load  # noqa: E402

from galexplore.errors import GalexploreError  # noqa: E402

# URL query key -> Explorer parameter
URL_KEYS = {"colour": "colour", "eq": "equalize", "trust": "trust_overlay", "below": "trust_threshold",
            "galaxy": "query", "k": "k", "view": "view", "present": "present"}


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


def url_values(args: dict[str, list[bytes]], explorer_params: object) -> dict[str, object]:
    """Explorer parameters from the page's query string; values that do not parse are ignored."""
    values: dict[str, object] = {}
    for key, name in URL_KEYS.items():
        if key not in args:
            continue
        text = args[key][0].decode("utf-8", "replace")
        parameter = explorer_params[name]
        try:
            if isinstance(parameter.default, bool):
                values[name] = text.lower() in ("true", "1", "yes")
            elif isinstance(parameter.default, int):
                values[name] = int(text)
            elif isinstance(parameter.default, float):
                values[name] = float(text)
            else:
                values[name] = text
        except ValueError:
            continue
    return values


def page() -> pn.viewable.Viewable:
    from explorer import Explorer

    path = atlas_path(sys.argv[1:])
    try:
        data = load(path)
    except GalexploreError as exc:
        return problem_page(path, exc)
    values = url_values(pn.state.session_args or {}, Explorer.param)
    if values.get("colour") not in data.colourings:
        values.pop("colour", None)
    if not -1 <= int(values.get("query", -1)) < data.n:
        values.pop("query", None)
    explorer = Explorer(data, **values)
    if pn.state.location is not None:
        pn.state.location.sync(explorer, {name: key for key, name in URL_KEYS.items()})
    return explorer.layout()


if __name__.startswith("bokeh_app"):  # run by `panel serve`, not imported by setup.py or tests
    pn.extension("tabulator", sizing_mode="stretch_width", notifications=False)
    page().servable(title="galexplore")
