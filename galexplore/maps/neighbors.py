"""The k most similar objects of every object, by cosine similarity: the atlas's neighbour graph.

Two searches over L2-normalised vectors, where cosine similarity is the inner product:
- "exact": brute force, FAISS's flat inner-product search on the CPU (queried in row blocks so
  memory stays bounded), or, given a torch device, a blocked matmul + topk on that device;
- "ivf": FAISS's inverted-file index (IVF-Flat): spherical k-means cells, each query scans the
  `nprobe` cells nearest to it. Approximate; `knn_graph` measures its recall@k against the exact
  search on a seeded sample of rows.

Vectors are normalised here too (a copy only where a row is not already unit length); an all-zero
row stays zero, similar (0) to everything, never NaN.
"""

from __future__ import annotations

import abc

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import faiss
import numpy as np
import torch

from galexplore.errors import GalexploreError

EXACT_MAX = 250_000  # "auto" searches exactly up to this many objects, with IVF beyond
BLOCK_ROWS = 16_384  # query rows per search block
FEW_QUERIES = 128  # up to this many queries, the exact CPU search is a product and a partial sort
FEW_QUERIES_BLOCK = 1 << 24  # similarities held at once on that path: 64 MiB
NPROBE = 16
MIN_POINTS_PER_LIST = 39  # FAISS k-means warns, and fits cells poorly, below 39 training points per cell
TRAIN_POINTS_PER_LIST = 64  # IVF training sample per cell: k-means cost grows with sample x cells
MAX_NLIST = 65_536  # beyond this the coarse quantizer (itself a flat search) dominates each query
SIMILARITY_BUDGET = 1 << 28  # floats in one (queries x base) block of the torch path: 1 GiB
RECALL_TOLERANCE = 1e-5  # a neighbour this close to the exact k-th similarity is a tie, not a miss
_NORM_TOLERANCE = 1e-5  # rows whose norm is this close to 1 are used as they are


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


class SimilarityIndex(abc.ABC):
    """A search structure over base vectors (N, D): top-k by cosine similarity."""

    method: str

    def __init__(self, n: int, dim: int) -> None:
        self.n = n
        self.dim = dim

    def __len__(self) -> int:
        return self.n

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(indices int64 (Q, k), similarities float32 (Q, k)), best first. Queries are normalised here."""
        q = unit_rows(queries, "queries")
        if q.shape[1] != self.dim:
            raise GalexploreError(f"queries have D = {q.shape[1]} columns, the index holds D = {self.dim}")
        if not 1 <= k <= self.n:
            raise GalexploreError(f"k = {k} must be between 1 and the {self.n} objects of the index")
        if len(q) == 0:
            return np.empty((0, k), np.int64), np.empty((0, k), np.float32)
        return self._search(q, k)

    @abc.abstractmethod
    def _search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top k of unit-length queries q (Q, D): (indices int64, similarities float32), best first."""


class FlatIndex(SimilarityIndex):
    """Exact search on the CPU: FAISS's blocked inner-product scan (BLAS) with a heap per query;
    up to `FEW_QUERIES` queries by a matrix product and a partial sort (numpy), which on a CPU
    took a third of FAISS's time for 1 query and 0.6x for 100 among 10^5 (its heap pass dominates
    there); an all-pairs graph still goes through FAISS."""

    method = "exact"

    def __init__(self, base: np.ndarray, few_queries: bool = True) -> None:
        super().__init__(*base.shape)
        self.base = base  # (N, D) unit rows
        # False for a neighbour graph: every block through one kernel, so a row's similarities do
        # not depend on the size of the block it was searched in (float32 summation order)
        self.few_queries = few_queries

    def _search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if len(q) > FEW_QUERIES or not self.few_queries:
            similarities, indices = faiss.knn(q, self.base, k, metric=faiss.METRIC_INNER_PRODUCT)
            return indices, similarities
        step = max(1, FEW_QUERIES_BLOCK // self.n)
        found = [_top_k(q[start : start + step] @ self.base.T, k) for start in range(0, len(q), step)]
        return np.concatenate([rows for rows, _ in found]), np.concatenate([sims for _, sims in found])


class TorchIndex(SimilarityIndex):
    """Exact search on a torch device (a GPU): matmul + topk over query blocks of bounded size."""

    method = "exact"

    def __init__(self, base: np.ndarray, device: torch.device) -> None:
        super().__init__(*base.shape)
        self.device = device
        self.base = torch.empty(base.shape, dtype=torch.float32, device=device)  # (N, D) unit rows
        for start in range(0, len(base), BLOCK_ROWS):
            self.base[start : start + BLOCK_ROWS] = _tensor(base[start : start + BLOCK_ROWS])

    @torch.inference_mode()
    def _search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        step = max(1, SIMILARITY_BUDGET // self.n)
        indices, similarities = [], []
        for start in range(0, len(q), step):
            block = _tensor(q[start : start + step]).to(self.device)  # (b, D)
            top = torch.topk(block @ self.base.T, k, dim=1, sorted=True)  # over (b, N)
            indices.append(top.indices.cpu().numpy())
            similarities.append(top.values.cpu().numpy())
        return np.concatenate(indices), np.concatenate(similarities)


def _top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k highest of each row of `scores` (Q, N): (columns int64, values), highest first."""
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    values = np.take_along_axis(scores, top, axis=1)
    order = np.argsort(-values, axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1).astype(np.int64), np.take_along_axis(values, order, axis=1)


def _tensor(rows: np.ndarray) -> torch.Tensor:
    """A CPU tensor of a few rows; copied, as torch refuses read-only arrays (a memory map's, say)."""
    return torch.from_numpy(np.array(rows, dtype=np.float32))


class IVFIndex(SimilarityIndex):
    """Approximate search: FAISS IVF-Flat, spherical k-means cells, `nprobe` cells scanned per query."""

    method = "ivf"

    def __init__(self, faiss_index: faiss.IndexIVFFlat, n: int, dim: int) -> None:
        super().__init__(n, dim)
        self.faiss_index = faiss_index
        self.nlist = int(faiss_index.nlist)

    @property
    def nprobe(self) -> int:
        return int(self.faiss_index.nprobe)

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        self.faiss_index.nprobe = int(min(max(1, value), self.nlist))

    def _search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        similarities, indices = self.faiss_index.search(q, k)
        # the scanned cells may hold fewer than k vectors (FAISS pads with -1): widen the scan for those rows
        nprobe = self.nprobe
        short = (indices < 0).any(axis=1)
        while short.any() and nprobe < self.nlist:
            nprobe = min(self.nlist, 4 * nprobe)
            params = faiss.SearchParametersIVF(nprobe=nprobe)
            similarities[short], indices[short] = self.faiss_index.search(q[short], k, params=params)
            short = (indices < 0).any(axis=1)
        return indices, similarities


def unit_rows(x: np.ndarray, name: str = "x") -> np.ndarray:
    """float32 (N, D) rows scaled to unit length; all-zero rows stay zero. No copy where already unit.

    >>> unit_rows(np.array([[3.0, 4.0], [0.0, 0.0]])).astype(np.float64).round(6).tolist()
    [[0.6, 0.8], [0.0, 0.0]]
    """
    x = np.asarray(x)
    if x.ndim != 2:
        raise GalexploreError(f"{name} must be a 2-D array (N, D) of vectors, got shape {x.shape}")
    if x.shape[1] == 0:
        raise GalexploreError(f"{name} has vectors of dimension 0")
    x = np.ascontiguousarray(x, dtype=np.float32)
    norm = np.sqrt(np.einsum("ij,ij->i", x, x, dtype=np.float64))  # (N,), float64: no overflow
    bad = ~np.isfinite(norm)
    if bad.any():
        first = int(np.argmax(bad))
        raise GalexploreError(f"{name} has {int(bad.sum())} rows with NaN or inf, the first at row {first}")
    if np.all(np.abs(norm - 1.0) <= _NORM_TOLERANCE):
        return x
    return (x / np.maximum(norm, 1e-30)[:, None]).astype(np.float32)


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
            return _build_ivf(x, nlist, nprobe, seed)
    if device is None:
        return FlatIndex(unit_rows(x, "base"))
    return TorchIndex(unit_rows(x, "base"), torch.device(device))


def ivf_nlist(n: int, nlist: int = 0) -> int:
    """IVF cells for n vectors: `nlist`, or about 4 sqrt(n) when 0; at most n / 39 and 65536.

    >>> ivf_nlist(1_000_000), ivf_nlist(1_000_000, nlist=100_000), ivf_nlist(1000)
    (4000, 25641, 25)
    """
    wanted = nlist if nlist > 0 else round(4 * math.sqrt(n))
    return max(1, min(wanted, n // MIN_POINTS_PER_LIST, MAX_NLIST))


def _build_ivf(x: np.ndarray, nlist: int, nprobe: int, seed: int) -> IVFIndex:
    n, dim = x.shape
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = seed
    index.cp.spherical = True  # unit centroids: cells by angle, as the search compares
    index.cp.max_points_per_centroid = TRAIN_POINTS_PER_LIST
    rng = np.random.default_rng([seed, 0x1F])
    sample = np.sort(rng.choice(n, size=min(n, nlist * TRAIN_POINTS_PER_LIST), replace=False))
    index.train(unit_rows(x[sample], "base"))
    for start in range(0, n, BLOCK_ROWS):
        index.add(unit_rows(x[start : start + BLOCK_ROWS], "base"))
    index.nprobe = nprobe
    return IVFIndex(index, n, dim)


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
        indices, similarities = _without_self(index, x[lo:hi], np.arange(lo, hi), k)
        yield lo, hi, indices.astype(np.int32), similarities


def _without_self(
    index: SimilarityIndex, queries: np.ndarray, rows: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Top k of base rows `rows` (given as `queries`) leaving out each row itself: (b, k) twice."""
    indices, similarities = index.search(queries, k + 1)  # (b, k + 1)
    is_self = indices == rows[:, None]
    is_self[~is_self.any(axis=1), -1] = True  # each row has exactly one True: its self, or its last
    keep = ~is_self
    return indices[keep].reshape(len(rows), k), similarities[keep].reshape(len(rows), k)


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


def tune_nprobe(index: IVFIndex, x: np.ndarray, k: int, target: float, rows: np.ndarray) -> float:
    """Double `index.nprobe` until recall@k on `rows` reaches `target` or every cell is scanned.

    Returns the recall reached. How clustered a survey's representations are decides how many
    cells a query must scan, so it is measured rather than guessed.
    """
    while True:
        found, _ = _without_self(index, np.asarray(x[rows], dtype=np.float32), rows, k)
        recall = measure_recall(x, rows, found)
        if recall >= target or index.nprobe >= index.nlist:
            return recall
        index.nprobe = 2 * index.nprobe


def recall_sample_rows(n: int, size: int, seed: int) -> np.ndarray:
    """Sorted seeded sample of min(size, n) rows of n, on which an approximate graph's recall is measured."""
    rng = np.random.default_rng([seed, 0x2EC])
    return np.sort(rng.choice(n, size=min(size, n), replace=False))


def measure_recall(x: np.ndarray, rows: np.ndarray, indices: np.ndarray) -> float:
    """recall@k of approximate neighbours `indices` (len(rows), k) of `rows` of `x`, against the exact search.

    A listed neighbour counts as found when its similarity reaches the exact k-th similarity (less
    RECALL_TOLERANCE), so a duplicate listed in place of its tied twin is not a miss.
    """
    rows = np.asarray(rows, dtype=np.int64)
    indices = np.asarray(indices, dtype=np.int64)
    if len(rows) == 0:
        return 1.0
    k = indices.shape[1]
    exact = FlatIndex(unit_rows(x, "x"))
    q = exact.base[rows]  # (m, D)
    _, exact_sims = _without_self(exact, q, rows, k)  # (m, k)
    listed = np.einsum("md,mkd->mk", q, exact.base[indices])  # (m, k) similarities of the listed pairs
    found = listed >= exact_sims[:, -1:] - RECALL_TOLERANCE
    return float(found.mean())


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
