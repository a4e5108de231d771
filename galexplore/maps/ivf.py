"""Approximate cosine search: FAISS's inverted-file index (IVF-Flat), and its recall measured.

Spherical k-means cells over the unit vectors; each query scans the `nprobe` cells nearest to it.
How many cells a query must scan depends on how clustered a survey's representations are, so
`tune_nprobe` measures recall@k against the exact search (`galexplore.maps.exact`) on a seeded
sample of rows and widens the scan until a target is reached.
"""

from __future__ import annotations

import math

import faiss
import numpy as np

from galexplore.maps.exact import BLOCK_ROWS, FlatIndex, SimilarityIndex, unit_rows, without_self

NPROBE = 16
MIN_POINTS_PER_LIST = 39  # FAISS k-means warns, and fits cells poorly, below 39 training points per cell
TRAIN_POINTS_PER_LIST = 64  # IVF training sample per cell: k-means cost grows with sample x cells
MAX_NLIST = 65_536  # beyond this the coarse quantizer (itself a flat search) dominates each query
RECALL_TOLERANCE = 1e-5  # a neighbour this close to the exact k-th similarity is a tie, not a miss


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


def ivf_nlist(n: int, nlist: int = 0) -> int:
    """IVF cells for n vectors: `nlist`, or about 4 sqrt(n) when 0; at most n / 39 and 65536.

    >>> ivf_nlist(1_000_000), ivf_nlist(1_000_000, nlist=100_000), ivf_nlist(1000)
    (4000, 25641, 25)
    """
    wanted = nlist if nlist > 0 else round(4 * math.sqrt(n))
    return max(1, min(wanted, n // MIN_POINTS_PER_LIST, MAX_NLIST))


def build_ivf(x: np.ndarray, nlist: int, nprobe: int, seed: int) -> IVFIndex:
    """An IVF index of `nlist` cells over `x` (N, D), scanning `nprobe` of them per query; its
    cells are fitted on a seeded sample of at most 64 vectors per cell, reproducible from `seed`."""
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


def tune_nprobe(index: IVFIndex, x: np.ndarray, k: int, target: float, rows: np.ndarray) -> float:
    """Double `index.nprobe` until recall@k on `rows` reaches `target` or every cell is scanned.

    Returns the recall reached. How clustered a survey's representations are decides how many
    cells a query must scan, so it is measured rather than guessed.
    """
    while True:
        found, _ = without_self(index, np.asarray(x[rows], dtype=np.float32), rows, k)
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
    _, exact_sims = without_self(exact, q, rows, k)  # (m, k)
    listed = np.einsum("md,mkd->mk", q, exact.base[indices])  # (m, k) similarities of the listed pairs
    found = listed >= exact_sims[:, -1:] - RECALL_TOLERANCE
    return float(found.mean())
