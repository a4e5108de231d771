"""The k most similar objects of every object, by cosine similarity: the atlas's neighbour graph.

Two searches over L2-normalised vectors, where cosine similarity is the inner product:
- "exact" (`galexplore.maps.exact`): brute force, FAISS's flat inner-product search on the CPU
  (queried in row blocks so memory stays bounded), or, given a torch device, a blocked matmul +
  topk on that device;
- "ivf" (`galexplore.maps.ivf`): FAISS's inverted-file index (IVF-Flat): spherical k-means cells,
  each query scans the `nprobe` cells nearest to it. Approximate; `knn_graph` measures its
  recall@k against the exact search on a seeded sample of rows.

This module chooses between them (`build_index`) and builds the graph (`knn_graph`); the names
of both search modules are also importable from here.

Vectors are normalised (`unit_rows`, a copy only where a row is not already unit length); an
all-zero row stays zero, similar (0) to everything, never NaN.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from galexplore.errors import GalexploreError
from galexplore.maps.exact import (
    BLOCK_ROWS,
    FlatIndex,
    SimilarityIndex,
    TorchIndex,
    unit_rows,
    without_self,
)
from galexplore.maps.ivf import (
    NPROBE,
    RECALL_TOLERANCE,
    IVFIndex,
    build_ivf,
    ivf_nlist,
    measure_recall,
    recall_sample_rows,
    tune_nprobe,
)

EXACT_MAX = 250_000  # "auto" searches exactly up to this many objects, with IVF beyond


@dataclass(frozen=True)
class NeighborGraph:
    """Every object's k most similar other objects.

    indices: (N, k) int32, best first; row i never contains i.
    similarities: (N, k) float32 cosine similarities, non-increasing along each row.
    method: "exact" or "ivf".
    recall: for "ivf", recall@k against the exact search on a seeded sample of rows; None for "exact".
    """

    indices: np.ndarray
    similarities: np.ndarray
    method: str
    recall: float | None
    nprobe: int | None = None  # for "ivf": the cells scanned per query after tuning


def build_index(
    base: np.ndarray,
    method: str = "auto",
    exact_max: int = EXACT_MAX,
    nlist: int = 0,
    nprobe: int = NPROBE,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> SimilarityIndex:
    """A search structure over `base` (N, D).

    method "auto" is "exact" up to `exact_max` vectors and "ivf" beyond. For "ivf", nlist 0 means
    about 4 sqrt(N) cells; any nlist is capped at N / 39 (k-means needs that many points per cell)
    and at 65536, and where the capped nlist is no more than `nprobe` (every cell would be scanned)
    the exact search is used instead. The cells are fitted on a seeded sample of at most 64 vectors
    per cell, so a build is reproducible from `seed`.

    device: None searches exactly with FAISS on the CPU; a torch device ("cuda") searches exactly
    with matmul + topk there. The IVF index always lives on the CPU (faiss-cpu).
    """
    if method not in ("auto", "exact", "ivf"):
        raise GalexploreError(f"neighbour search method must be 'auto', 'exact' or 'ivf', got {method!r}")
    if nprobe < 1:
        raise GalexploreError(f"nprobe must be at least 1, got {nprobe}")
    x = np.asarray(base)
    if x.ndim != 2:
        raise GalexploreError(f"base must be a 2-D array (N, D) of vectors, got shape {x.shape}")
    n = len(x)
    if n == 0:
        raise GalexploreError("base has no vectors to search")
    if method == "auto":
        method = "exact" if n <= exact_max else "ivf"
    if method == "ivf":
        nlist = ivf_nlist(n, nlist)
        if nlist > nprobe:
            return build_ivf(x, nlist, nprobe, seed)
    if device is None:
        return FlatIndex(unit_rows(x, "base"))
    return TorchIndex(unit_rows(x, "base"), torch.device(device))


def iter_knn_blocks(
    index: SimilarityIndex, x: np.ndarray, k: int, start: int = 0, block_rows: int = BLOCK_ROWS
) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
    """(start, stop, indices int32 (b, k), similarities float32 (b, k)) of rows start.. of `x`, block by block.

    `index` is built on `x`; each row's own index is left out (where duplicates tie with it and
    push it out of the k + 1 found, the last of them is left out instead).
    """
    x = np.asarray(x)
    if x.ndim != 2 or x.shape != (len(index), index.dim):
        raise GalexploreError(f"the index holds {len(index)} x {index.dim} vectors, x has shape {x.shape}")
    check_k(k, len(x))
    if isinstance(index, FlatIndex) and index.few_queries:
        index = FlatIndex(index.base, few_queries=False)  # the same base; every block through FAISS
    for lo in range(start, len(x), block_rows):
        hi = min(lo + block_rows, len(x))
        indices, similarities = without_self(index, x[lo:hi], np.arange(lo, hi), k)
        yield lo, hi, indices.astype(np.int32), similarities


def check_k(k: int, n: int) -> None:
    """A user's error unless 1 <= k < n: each of n objects has n - 1 others."""
    if k < 1:
        raise GalexploreError(f"k = {k} neighbours: k must be at least 1")
    if k >= n:
        raise GalexploreError(f"k = {k} needs at least {k + 1} objects, found {n}")


def knn_graph(
    x: np.ndarray,
    k: int,
    method: str = "auto",
    exact_max: int = EXACT_MAX,
    nlist: int = 0,
    nprobe: int = NPROBE,
    seed: int = 0,
    block_rows: int = BLOCK_ROWS,
    progress: Callable[[int], object] | None = None,
    recall_sample: int = 1000,
    device: torch.device | str | None = None,
    recall_target: float = 0.0,
) -> NeighborGraph:
    """The k most similar other rows of every row of `x` (N, D); see `build_index` for the options.

    progress(n) is called after each block with the n rows it finished (tqdm's `update`). For "ivf",
    recall@k is measured against the exact search on `recall_sample` seeded rows; first, `nprobe`
    is doubled until that sample reaches `recall_target` (or every cell is scanned).

    >>> g = knn_graph(np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]]), k=1)
    >>> g.indices.ravel().tolist(), g.similarities.ravel().astype(np.float64).round(6).tolist()
    ([1, 0, 1], [0.8, 0.8, 0.6])
    """
    x = np.asarray(x)
    if x.ndim != 2:
        raise GalexploreError(f"x must be a 2-D array (N, D) of vectors, got shape {x.shape}")
    n = len(x)
    check_k(k, n)
    if n >= np.iinfo(np.int32).max:
        raise GalexploreError(f"{n} objects do not fit the graph's int32 indices")
    index = build_index(x, method, exact_max, nlist, nprobe, seed, device)
    if isinstance(index, IVFIndex) and recall_target > 0:
        tune_nprobe(index, x, k, recall_target, recall_sample_rows(n, recall_sample, seed))
    indices = np.empty((n, k), np.int32)
    similarities = np.empty((n, k), np.float32)
    for lo, hi, idx, sim in iter_knn_blocks(index, x, k, block_rows=block_rows):
        indices[lo:hi], similarities[lo:hi] = idx, sim
        if progress is not None:
            progress(hi - lo)
    recall = None
    if index.method == "ivf":
        rows = recall_sample_rows(n, recall_sample, seed)
        recall = measure_recall(x, rows, indices[rows])
    return NeighborGraph(indices, similarities, index.method, recall, getattr(index, "nprobe", None))


def search_vectors(
    base: np.ndarray, queries: np.ndarray, k: int, index: SimilarityIndex | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k of arbitrary `queries` (Q, D) among `base` (N, D): (indices int64, similarities float32), best first.

    A query equal to a base row finds that row (unlike `knn_graph`, nothing is excluded). Without
    `index`, the search is exact.

    >>> search_vectors(np.eye(3), np.array([[0.0, 2.0, 0.1]]), k=2)[0].tolist()
    [[1, 2]]
    """
    if index is None:
        index = build_index(base, method="exact")
    elif np.shape(base) != (len(index), index.dim):
        raise GalexploreError(f"the index holds {len(index)} x {index.dim} vectors, base has shape {np.shape(base)}")
    return index.search(queries, k)


__all__ = [
    "BLOCK_ROWS", "EXACT_MAX", "NPROBE", "RECALL_TOLERANCE", "FlatIndex", "IVFIndex", "NeighborGraph",
    "SimilarityIndex", "TorchIndex", "build_index", "build_ivf", "check_k", "iter_knn_blocks", "ivf_nlist",
    "knn_graph", "measure_recall", "recall_sample_rows", "search_vectors", "tune_nprobe", "unit_rows",
    "without_self",
]
