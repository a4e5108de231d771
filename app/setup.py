"""`panel serve app/ --setup app/setup.py`: refuse hosts not allowed, then load the atlas and warm
the renderer in the background.

The server starts answering at once; the first session waits only for what is not loaded yet
(the store's lock), instead of every start-up waiting for the whole load.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hosts import guard_hosts  # noqa: E402
from main import atlas_path  # noqa: E402
from store import load  # noqa: E402

guard_hosts()  # before the server is made: its every request has its Host checked


def warm() -> None:
    import time

    from galexplore.errors import GalexploreError

    start = time.perf_counter()
    try:
        data = load(atlas_path(sys.argv))
    except GalexploreError:
        return  # the page will say what is wrong
    data.prepare()
    print(f"galexplore: {data.name} warm in {time.perf_counter() - start:.1f} s", flush=True)


threading.Thread(target=warm, name="galexplore-warm", daemon=True).start()
