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
    import time

    from galexplore.errors import GalexploreError

    start = time.perf_counter()
    try:
        data = load(atlas_path(sys.argv))
    except GalexploreError:
        return  # the page will say what is wrong
    # first what the first page shows (the density underlay and the default colouring), then the
    # rest, so that no session's first colour change waits for a compilation
    first = next((name for name, c in data.colourings.items() if c.kind == "continuous"), None)
    data.warm([None, first] if first else [None])
    data.index.build()  # clicks, hovers and searches
    data.warm()
    print(f"galexplore: {data.name} warm in {time.perf_counter() - start:.1f} s", flush=True)


threading.Thread(target=warm, name="galexplore-warm", daemon=True).start()
