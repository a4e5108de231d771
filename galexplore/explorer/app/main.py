"""`panel serve app/ [--args --atlas ATLAS]`: the galexplore explorer.

With no --atlas it opens data/atlas/demo. A missing or damaged atlas gives a page that says
what is wrong and how to build one, never a traceback. The view (colouring, zoom, overlay,
clicked galaxy, presentation mode) is kept in the URL, so each view can be bookmarked; what the
URL says is checked first (`urlstate.read_url`), and the page says what it could not use.

Run by a bare `panel serve app/`, this listens on every network interface (Bokeh's default)
unless `--address 127.0.0.1` is given; `galexplore serve` gives it.
"""

from galexplore.explorer.server import serve_page

if __name__.startswith("bokeh_app"):  # run by `panel serve`, not imported by tests
    serve_page()
