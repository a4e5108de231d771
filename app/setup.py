"""`panel serve app/ --setup app/setup.py`: load the atlas and warm the renderer in the background.

The server starts answering at once; the first session waits only for what is not loaded yet
(the store's lock), instead of every start-up waiting for the whole load.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from main import atlas_path  # noqa: E402
from store import load  # noqa: E402


def warm() -> None:
    import datashader as ds

    from galexplore.errors import GalexploreError

    try:
        data = load(atlas_path(sys.argv))
    except GalexploreError:
        return  # the page will say what is wrong
    canvas = ds.Canvas(plot_width=400, plot_height=400)
    # compile datashader's kernels once per process: the count and a float mean (the first page's
    # colouring); other dtypes compile on first use
    canvas.points(data.catalog[["umap_x", "umap_y"]], "umap_x", "umap_y", agg=ds.count())
    first = next((c.column for c in data.colourings.values() if c.kind == "continuous"), None)
    if first is not None:
        canvas.points(data.catalog[["umap_x", "umap_y", first]], "umap_x", "umap_y", agg=ds.mean(first))


threading.Thread(target=warm, name="galexplore-warm", daemon=True).start()
