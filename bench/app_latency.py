"""Server-side latencies and memory of the explorer on an atlas (default: the 1,000,000-galaxy scale atlas).

    .venv/bin/python bench/app_latency.py [ATLAS] [--repeat 5] [--sessions 10] [--out FILE]

The atlas is loaded and prepared (`AtlasData.prepare`) as a served app does in the background
after start-up; then each session's layout is rendered into a Bokeh document in this process (the server's code path,
without the websocket), and streams are fired as the browser would fire them: a pan/zoom range,
a colour change, a tap, a lasso around about 10% of the galaxies. Times are from the event to the
updated models, the median of --repeat warm runs (the first, cold run is reported apart).
Memory: the process's resident memory with one session and with --sessions. Start-up: `panel serve`
with app/setup.py (as `galexplore serve` runs it) until the page answers. Build the scale atlas with bench/scale_check.py.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def session(data):
    from bokeh.document import Document
    from galexplore.explorer.page import Explorer

    explorer = Explorer(data)
    root = explorer.layout().get_root(Document())
    return explorer, root


def timed(action, repeat: int) -> dict[str, float]:
    times = []
    for _ in range(repeat + 1):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return {"cold_s": round(times[0], 4), "median_s": round(statistics.median(times[1:]), 4),
            "max_s": round(max(times[1:]), 4)}


def lasso_polygon(data, target: float = 0.16) -> np.ndarray:
    """A box-shaped lasso around the map's centre holding about `target` of the galaxies."""
    x, y = data.catalog["umap_x"].to_numpy(), data.catalog["umap_y"].to_numpy()
    cx, cy = np.median(x), np.median(y)
    sx, sy = np.std(x), np.std(y)
    lo, hi = 0.01, 3.0
    for _ in range(30):
        half = (lo + hi) / 2
        share = np.mean((abs(x - cx) < half * sx) & (abs(y - cy) < half * sy))
        lo, hi = (half, hi) if share < target else (lo, half)
    h = (lo + hi) / 2
    return np.array([[cx - h * sx, cy - h * sy], [cx + h * sx, cy - h * sy], [cx + h * sx, cy + h * sy],
                     [cx, cy], [cx - h * sx, cy + h * sy]])  # a notch: not convex


def startup_seconds(atlas: Path) -> tuple[float, float]:
    """(seconds until the server answers HTTP, seconds until the first page is served whole)."""

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.perf_counter()
    # the Host check (explorer/hosts.py) refuses a host the server was not told: tell it the one asked for
    server = subprocess.Popen([sys.executable, "-m", "panel", "serve", str(ROOT / "app"), "--port", str(port),
                               "--allow-websocket-origin", f"127.0.0.1:{port}",
                               "--setup", str(ROOT / "app" / "setup.py"), "--args", "--atlas", str(atlas)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/static/missing", timeout=30)
            except urllib.error.HTTPError:
                break  # a 404: the server is answering
            except OSError:
                time.sleep(0.05)
        answering = time.perf_counter() - start
        urllib.request.urlopen(f"http://127.0.0.1:{port}/app", timeout=60)
        return answering, time.perf_counter() - start
    finally:
        server.terminate()
        server.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("atlas", nargs="?", type=Path, default=ROOT / "data" / "scale" / "atlas-1000000")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sessions", type=int, default=10, help="sessions open when memory is read the second time")
    parser.add_argument("--out", type=Path, help="also write the JSON to this file")
    args = parser.parse_args()
    import panel as pn
    from galexplore.explorer.store import load

    pn.extension("tabulator")
    start = time.perf_counter()
    before = rss_mb()
    data = load(args.atlas)
    load_s = time.perf_counter() - start
    data.prepare()  # as a served app does in the background after start-up (app/setup.py)
    prepare_s = time.perf_counter() - start - load_s
    start = time.perf_counter()
    explorer, _ = session(data)
    first_session_s = time.perf_counter() - start
    one = rss_mb()
    others = [session(data) for _ in range(args.sessions - 1)]  # kept open while memory is read
    many = rss_mb()
    x0, x1, y0, y1 = data.bounds
    views = iter([(x0 + f * (x1 - x0), x1 - f * (x1 - x0), y0 + f * (y1 - y0), y1 - f * (y1 - y0))
                  for f in np.linspace(0.02, 0.3, 200)])

    import holoviews as hv

    def range_streams():
        """Every layer's RangeXY stream: a pan or zoom in the browser updates them all at once."""
        seen, stack, found = set(), [explorer.map.pane.object], []
        while stack:
            item = stack.pop()
            if id(item) in seen:
                continue
            seen.add(id(item))
            found += [s for s in getattr(item, "streams", []) if isinstance(s, hv.streams.RangeXY)]
            stack += list(getattr(getattr(item, "callback", None), "inputs", []))
        return found

    def pan_zoom():
        a, b, c, d = next(views)
        streams = range_streams()
        for stream in streams:
            stream.update(x_range=(a, b), y_range=(c, d))
        hv.streams.Stream.trigger(streams)

    colours = iter([c for c in ["trust", "label_availability", "anomaly_score", "density", "z_spec"] * 5
                    if c in data.colourings])

    def recolour():
        explorer.state.colour = next(colours)

    cat = data.catalog
    rng = np.random.default_rng(0)

    def tap():
        row = int(rng.integers(len(cat)))
        explorer.map.streams["tap"].event(x=float(cat["umap_x"].iloc[row]), y=float(cat["umap_y"].iloc[row]))

    polygon = lasso_polygon(data)

    def lasso():
        explorer.map.streams["lasso"].event(geometry=polygon)

    result = {
        "atlas": str(args.atlas), "n": data.n,
        "load_s": round(load_s, 2), "prepare_s": round(prepare_s, 2), "first_session_s": round(first_session_s, 2),
        "rss_mb": {"before_load": round(before), "one_session": round(one), "sessions": 1 + len(others),
                   "all_sessions": round(many), "per_extra_session_mb": round((many - one) / max(len(others), 1), 1)},
        "pan_zoom": timed(pan_zoom, args.repeat),
        "colour_change": timed(recolour, args.repeat),
        "click_to_gallery": timed(tap, args.repeat),
        "lasso": {**timed(lasso, args.repeat), "selected": int(len(explorer.state.selection))},
        "lasso_library_s": explorer.state.timings.get("lasso"),
    }
    answering, first_page = startup_seconds(args.atlas)
    result["startup_s"] = {"server_answering": round(answering, 2), "first_page_served": round(first_page, 2)}
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
