"""Exact cosine search over L2-normalised vectors, and the interface every search answers.

`SimilarityIndex` is that interface: top-k by cosine similarity, the inner product of unit rows.
`FlatIndex` searches exactly on the CPU (FAISS's flat inner-product scan, or a product and a
partial sort for a few queries); `TorchIndex` exactly on a torch device (a GPU) by a blocked
matmul + topk. The approximate search (IVF) is in `galexplore.maps.ivf`; `galexplore.maps.neighbors`
chooses between them and builds the neighbour graph.

Vectors are normalised here (`unit_rows`: a copy only where a row is not already unit length); an
all-zero row stays zero, similar (0) to everything, never NaN.
"""

from __future__ import annotations

import abc

import faiss
import numpy as np
import torch

from galexplore.errors import GalexploreError

BLOCK_ROWS = 16_384  # query rows per search block
FEW_QUERIES = 128  # up to this many queries, the exact CPU search is a product and a partial sort
FEW_QUERIES_BLOCK = 1 << 24  # similarities held at once on that path: 64 MiB
SIMILARITY_BUDGET = 1 << 28  # floats in one (queries x base) block of the torch path: 1 GiB
_NORM_TOLERANCE = 1e-5  # rows whose norm is this close to 1 are used as they are


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


def without_self(
    index: SimilarityIndex, queries: np.ndarray, rows: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Top k of base rows `rows` (given as `queries`) leaving out each row itself: (b, k) twice."""
    indices, similarities = index.search(queries, k + 1)  # (b, k + 1)
    is_self = indices == rows[:, None]
    is_self[~is_self.any(axis=1), -1] = True  # each row has exactly one True: its self, or its last
    keep = ~is_self
    return indices[keep].reshape(len(rows), k), similarities[keep].reshape(len(rows), k)
