"""Rows of the map: the UMAP layout, and rendering the map's points.

- UMAP: ours (`galexplore.maps.projection.umap_layout`: fit on a seeded sample, the rest placed by
  `transform`) against umap-learn fitted on every point, with the same settings (cosine,
  n_neighbors, min_dist, seeded and so single-threaded); time, and how many of a point's 10
  nearest neighbours in representation space stay among its 10 nearest on the map. Each fit
  runs in its own process (numba's compilation included, as a user's run pays it) under a
  time budget: one that passes it is stopped and reported as such.
- Rendering: datashader's aggregation and shading (`Canvas.points` + `shade`, as the app and the
  report draw the map) against numpy's `histogram2d` and a log stretch, in a fresh process, so
  that the first render pays what a first render pays (numba compiling datashader's kernels);
  then warm renders.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bench.measure import BudgetExceeded, Row, in_fresh_process, interleaved, timed

if TYPE_CHECKING:
    from bench.suite import Context

RECALL_K = 10  # neighbours compared between representation space and the map
RECALL_SAMPLE = 2000  # galaxies on which that is measured
WARM_UP_ROWS = 6000  # above 5,000 fitted rows (4,096 in umap-learn), transform searches an NNDescent index


def umap_rows(ctx: Context) -> list[Row]:
    from galexplore.config import ProjectConfig
    from galexplore.maps.projection import neighbourhood_recall

    s = ctx.sizes
    cfg = ProjectConfig()
    n, path = s.umap_n, ctx.embeddings_path()
    fit = max(cfg.n_neighbors + 1, int(round(n * s.umap_fit_fraction)))
    # numba caches its compiled kernels on disk: a small run of both first, so that neither timed
    # fit finds the kernels the other compiled (only each process's own compilation remains)
    small = min(n, WARM_UP_ROWS)
    in_fresh_process(warm_up, path, small, max(cfg.n_neighbors + 1, min(small - 1, 5000)), cfg, timeout=s.umap_budget_s)
    layouts: dict[str, Any] = {}
    seconds: dict[str, float | None] = {}
    stopped = []
    for name, function, args in (("ours", fit_sample_and_transform, (path, n, fit, cfg)),
                                 ("anchor", fit_all, (path, n, cfg))):
        try:
            seconds[name], layouts[name] = in_fresh_process(function, *args, timeout=s.umap_budget_s)
        except BudgetExceeded:
            seconds[name], layouts[name] = None, None
            stopped.append(f"{name} stopped at its budget of {s.umap_budget_s:.0f} s")
    x = np.asarray(np.load(path, mmap_mode="r")[:n], dtype=np.float32)
    recall = {name: neighbourhood_recall(x, layout, k=RECALL_K, sample=RECALL_SAMPLE) if layout is not None else None
              for name, layout in layouts.items()}
    notes: dict[str, Any] = {"fit sample": fit, "n_neighbors": cfg.n_neighbors, "min_dist": cfg.min_dist,
                             "threads": "1 (seeded)",
                             "process": "each fit in a fresh process after a small warm-up run of both "
                                        "(numba's disk cache); each process's own compilation included"}
    if stopped:
        notes["budget"] = "; ".join(stopped)
    ours_label = f"galexplore umap_layout, fit on {fit:,} + transform"
    return [
        Row("umap", "UMAP map, time", "s", seconds["ours"], ours_label, seconds["anchor"],
            "umap-learn fit_transform on all", n, x.shape[1], notes=notes),
        Row("umap", f"UMAP map, neighbourhood recall@{RECALL_K}", "recall", recall["ours"], ours_label,
            recall["anchor"], "umap-learn fit_transform on all", n, x.shape[1],
            notes={"sample": min(RECALL_SAMPLE, n), "meaning": "share of the 10 nearest in D that stay nearest in 2-D"}),
    ]


def fit_sample_and_transform(path: Path, n: int, fit: int, cfg: Any) -> tuple[float, np.ndarray]:
    """(seconds, layout (n, 2)) of our UMAP on the first n rows of the .npy at `path`."""
    from galexplore.maps.projection import umap_layout

    x = np.ascontiguousarray(np.load(path, mmap_mode="r")[:n], dtype=np.float32)
    return timed(lambda: umap_layout(x, n_neighbors=cfg.n_neighbors, min_dist=cfg.min_dist, seed=0,
                                     fit_sample=fit, chunk_rows=cfg.chunk_rows))


def warm_up(path: Path, n: int, fit: int, cfg: Any) -> None:
    """Both fits on the first n rows (ours fitted on `fit` of them): fills numba's on-disk cache."""
    fit_sample_and_transform(path, n, fit, cfg)
    fit_all(path, n, cfg)


def fit_all(path: Path, n: int, cfg: Any) -> tuple[float, np.ndarray]:
    """(seconds, layout (n, 2)) of umap-learn fitted on all n rows, as a user would call it."""
    import umap

    x = np.ascontiguousarray(np.load(path, mmap_mode="r")[:n], dtype=np.float32)
    reducer = umap.UMAP(n_neighbors=cfg.n_neighbors, min_dist=cfg.min_dist, metric="cosine", random_state=0, n_jobs=1)
    seconds, layout = timed(lambda: reducer.fit_transform(x))
    return seconds, np.asarray(layout, dtype=np.float32)


def render_rows(ctx: Context) -> list[Row]:
    s = ctx.sizes
    rows = []
    for n in s.render_n:
        result = in_fresh_process(render_times, n, s.render_pixels, s.render_repeat, timeout=s.render_budget_s)
        for when in ("first", "warm"):
            rows.append(Row("render", f"map render, {when}", "s", result[f"ours_{when}"],
                            "datashader Canvas.points count + shade (eq_hist)", result[f"anchor_{when}"],
                            "numpy histogram2d + log stretch", n, 2,
                            notes={"pixels": f"{s.render_pixels}x{s.render_pixels}",
                                   "first": "in a fresh process (numba compiles datashader's kernels)",
                                   **({"rounds": s.render_repeat} if when == "warm" else {})}))
    return rows


def render_times(n: int, pixels: int, repeat: int) -> dict[str, float]:
    """First and warm (median) seconds of datashader and of numpy drawing n clumped points."""
    import datashader as ds
    import datashader.transfer_functions as tf
    import pandas as pd

    from bench.inputs import map_points

    x, y = map_points(n)
    frame = pd.DataFrame({"x": x, "y": y})
    x_range, y_range = (float(x.min()), float(x.max())), (float(y.min()), float(y.max()))

    def ours() -> Any:
        canvas = ds.Canvas(plot_width=pixels, plot_height=pixels, x_range=x_range, y_range=y_range)
        return tf.shade(canvas.points(frame, "x", "y", agg=ds.count()), how="eq_hist")

    def anchor() -> np.ndarray:
        counts, _, _ = np.histogram2d(y, x, bins=pixels, range=[y_range, x_range])  # (pixels, pixels)
        stretched = np.log1p(counts)
        return (255 * stretched / max(stretched.max(), 1e-12)).astype(np.uint8)

    ours_first, _ = timed(ours)
    anchor_first, _ = timed(anchor)
    warm = interleaved({"ours": lambda r: ours(), "anchor": lambda r: anchor()}, repeat=repeat, warmup=0)
    return {"ours_first": ours_first, "anchor_first": anchor_first, "ours_warm": warm["ours"], "anchor_warm": warm["anchor"]}
