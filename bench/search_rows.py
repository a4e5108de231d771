"""Similarity search rows: a top-k query, the app's click, the all-pairs neighbour graph.

Ours is the library as the build and the app call it (`galexplore.maps.neighbors` with its defaults:
exact up to 250,000 vectors, FAISS IVF beyond, its recall measured); the anchors are what a user
would write instead: a FAISS `IndexFlatIP` (exact), or numpy's matmul and argpartition.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

from bench.measure import Goal, Row, interleaved, timed

if TYPE_CHECKING:
    from bench.suite import Context

FAISS_FLAT = "faiss IndexFlatIP"
NUMPY_TOPK = "numpy matmul + argpartition"


def numpy_topk(base: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k inner products of unit `queries` (Q, D) in `base` (N, D): (indices, similarities), best first.

    >>> numpy_topk(np.eye(3, dtype=np.float32), np.array([[0.0, 0.6, 0.8]], np.float32), 2)[0].tolist()
    [[2, 1]]
    """
    scores = queries @ base.T  # (Q, N)
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]  # (Q, k), unordered
    values = np.take_along_axis(scores, top, axis=1)
    order = np.argsort(-values, axis=1)
    return np.take_along_axis(top, order, axis=1), np.take_along_axis(values, order, axis=1)


def query_vectors(base: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """`count` unit queries near random base rows (as a galaxy like those of the atlas would be)."""
    rng = np.random.default_rng([seed, 0x9E7])
    q = base[np.sort(rng.choice(len(base), count, replace=count > len(base)))]
    q = q + 0.1 * rng.standard_normal(q.shape).astype(np.float32) / np.sqrt(base.shape[1])
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


def tie_aware_recall(found: np.ndarray, exact: np.ndarray) -> float:
    """Share of found similarities (Q, k) that reach the exact k-th one (a tie is not a miss)."""
    from galexplore.maps.neighbors import RECALL_TOLERANCE

    return float(np.mean(found >= exact[:, -1:] - RECALL_TOLERANCE))


def query_rows(ctx: Context) -> list[Row]:
    """Top-k cosine queries, one and a batch, against FAISS flat and numpy at each N."""
    import faiss

    from galexplore.maps.neighbors import build_index, search_vectors

    s = ctx.sizes
    rows = []
    for n in s.query_n:
        base = np.ascontiguousarray(ctx.embeddings(n), dtype=np.float32)  # (N, D), unit rows
        build_s, index = timed(lambda: build_index(base))
        flat = faiss.IndexFlatIP(base.shape[1])
        flat.add(base)
        for batch in s.query_batch:
            rounds = s.query_repeat + 1
            queries = query_vectors(base, batch * rounds).reshape(rounds, batch, -1)  # (rounds, B, D)
            times = interleaved({
                "ours": lambda r: search_vectors(base, queries[r], s.query_k, index=index),
                "faiss": lambda r: flat.search(queries[r], s.query_k),
                "numpy": lambda r: numpy_topk(base, queries[r], s.query_k),
            }, repeat=s.query_repeat)
            everything = queries.reshape(-1, base.shape[1])
            _, ours_sims = index.search(everything, s.query_k)
            exact_sims, _ = flat.search(everything, s.query_k)
            notes = {"index": index.method, "recall@k": tie_aware_recall(ours_sims, exact_sims),
                     "index build s": round(build_s, 2), "k": s.query_k, "rounds": s.query_repeat}
            if index.method == "ivf":
                notes["nprobe"] = index.nprobe
            else:
                notes["exact search"] = "faiss.knn: the anchor's own kernel, after input checks"
            label = f"galexplore search_vectors ({index.method})"
            what = f"similarity query top-{s.query_k}, batch of {batch}"
            rows.append(Row("query", f"{what} vs FAISS", "s", times["ours"], label, times["faiss"], FAISS_FLAT,
                            n, base.shape[1], Goal("ratio", "<=", 1.0), notes))
            rows.append(Row("query", f"{what} vs numpy", "s", times["ours"], label, times["numpy"], NUMPY_TOPK,
                            n, base.shape[1]))
    return rows


def click_rows(ctx: Context) -> list[Row]:
    """The app's click: a galaxy's similar galaxies read from the atlas's precomputed neighbours."""
    import faiss

    from galexplore.atlas.files import open_atlas
    from galexplore.explorer.queries import similar

    s = ctx.sizes
    atlas = open_atlas(ctx.scale_atlas(), require=("neighbors.npy", "similarities.npy"))
    neighbors, similarities = atlas.neighbors, atlas.similarities  # memory maps, as the app holds them
    n = len(neighbors)
    picks = np.random.default_rng(7).integers(n, size=s.click_repeat)
    times = []
    for row in picks:
        start = time.perf_counter()
        similar(neighbors, similarities, int(row), s.click_k)
        times.append(time.perf_counter() - start)
    space = atlas.reduced if atlas.reduced is not None else atlas.embeddings
    base = np.ascontiguousarray(space, dtype=np.float32)
    flat = faiss.IndexFlatIP(base.shape[1])
    flat.add(base)
    queries = base[picks[:20]]
    search = interleaved({"faiss": lambda r: flat.search(queries[r : r + 1], s.click_k + 1)}, repeat=len(queries) - 1)
    notes = {"p99": float(np.percentile(times, 99)), "max": float(max(times)), "clicks": len(times), "k": s.click_k}
    return [Row("click", "app click: similar galaxies (precomputed)", "s", float(np.median(times)),
                "galexplore.explorer.queries.similar on neighbors.npy", search["faiss"], f"{FAISS_FLAT}, 1 query",
                n, base.shape[1], Goal("ours", "<=", 1e-3), notes)]


def graph_rows(ctx: Context) -> list[Row]:
    """Every object's k most similar: our build's search against FAISS's exact search."""
    from galexplore.config import NeighborsConfig
    from galexplore.maps.neighbors import knn_graph

    s = ctx.sizes
    cfg = NeighborsConfig(k=s.graph_k)  # the build's defaults
    rows = []
    for n in s.graph_n:
        x = np.ascontiguousarray(ctx.embeddings(n), dtype=np.float32)
        ours_s, graph = timed(lambda: knn_graph(x, cfg.k, method=cfg.method, exact_max=cfg.exact_max, nlist=cfg.nlist,
                                                nprobe=cfg.nprobe, recall_target=cfg.recall_target))
        method, notes = graph.method, {"ours method": graph.method, "k": cfg.k}
        if graph.recall is not None:
            notes.update({"recall@k": graph.recall, "nprobe": graph.nprobe})
        del graph  # its (N, k) arrays are not kept while the anchor runs
        anchor_s, timed_rows = faiss_exact_graph_seconds(x, cfg.k, s.graph_anchor_budget_s)
        if timed_rows < n:
            notes["anchor"] = f"extrapolated from {timed_rows:,} of {n:,} query rows (time is linear in them)"
        rows.append(Row("graph", f"neighbour graph, all-pairs top-{cfg.k}", "s", ours_s,
                        f"galexplore knn_graph ({method})", anchor_s, f"{FAISS_FLAT} (exact)", n, x.shape[1],
                        notes=notes))
    return rows


def faiss_exact_graph_seconds(x: np.ndarray, k: int, budget_s: float, calibrate: int = 1000) -> tuple[float, int]:
    """(seconds, query rows timed) of FAISS's exact all-pairs top-(k + 1) over `x` (N, D).

    A first `calibrate` rows give the time per row; if the whole would pass `budget_s`, a seeded
    sample of rows that fits it is timed and scaled to N (an exact search's time is linear in
    the number of queries).
    """
    import faiss

    n = len(x)
    index = faiss.IndexFlatIP(x.shape[1])
    add_s, _ = timed(lambda: index.add(x))
    first = x[: min(calibrate, n)]
    per_row = timed(lambda: index.search(first, k + 1))[0] / len(first)
    rows = n if per_row * n <= budget_s else max(len(first), int(budget_s / per_row))
    sample = x if rows == n else x[np.sort(np.random.default_rng(3).choice(n, rows, replace=False))]
    search_s, _ = timed(lambda: index.search(sample, k + 1))
    return add_s + search_s * n / rows, rows
