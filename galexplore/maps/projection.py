"""From representations to the 2D map: a PCA-reduced copy, the UMAP layout, and its quality.

- `fit_pca` / `PCA`: a re-normalised PCA copy of the representations, which the neighbour
  search and the map are computed on (cheaper at scale, and less noisy than the full width).
- `umap_layout`: the 2D map, UMAP with the cosine metric. Up to `fit_sample` galaxies it is
  fitted on all of them and can reuse the atlas's neighbour graph (`knn`), so one graph serves
  both the similarity search and the map; beyond, it is fitted on a seeded sample and the other
  galaxies are placed by `UMAP.transform`, chunk by chunk.
- `neighbourhood_recall`: how many of a galaxy's k nearest neighbours in representation space
  are still among its k nearest on the map, to compare layouts.

Every input may be a memmap: rows are read in chunks, samples in sorted row order.
umap-learn is imported only inside `umap_layout` (the import costs seconds).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
import numpy as np

from galexplore.errors import GalexploreError

__all__ = ["PCA", "fit_pca", "neighbourhood_recall", "umap_layout"]

_CHUNK_ROWS = 65536  # rows read at a time where a function reads a whole array
_SEARCH_BLOCK = 4096  # rows per block of brute-force search: a (2000, 4096) float64 score is 66 MB

#: The warnings umap-learn emits on every use, silenced only around its import and its calls:
#: no TensorFlow (ParametricUMAP is not used), and a precomputed neighbour graph without its
#: NNDescent index (`transform` is never called on such a fit).
_KNOWN_UMAP_WARNINGS = (
    (ImportWarning, r"Tensorflow not installed"),
    (UserWarning, r"precomputed_knn\[2\] \(knn_search_index\) is not an NNDescent object"),
)


@dataclass(frozen=True, eq=False)
class PCA:
    """A fitted PCA: ``y = normalize((x - mean) @ components.T)``.

    ``mean`` (D,) float32; ``components`` (d, D) float32, orthonormal rows by decreasing
    variance; ``explained_variance_ratio`` (d,) float64, each component's share of the total
    variance of the fitted rows.
    """

    mean: np.ndarray
    components: np.ndarray
    explained_variance_ratio: np.ndarray

    def __post_init__(self) -> None:
        d, width = self.components.shape if self.components.ndim == 2 else (-1, -1)
        if self.mean.shape != (width,) or self.explained_variance_ratio.shape != (d,):
            raise GalexploreError(
                f"pca: mean {self.mean.shape}, components {self.components.shape} and "
                f"explained_variance_ratio {self.explained_variance_ratio.shape} do not fit; "
                f"expected (D,), (d, D) and (d,)"
            )

    @property
    def dim(self) -> int:
        """d, the width of the reduced representations."""
        return int(self.components.shape[0])

    def transform(self, x: np.ndarray, chunk_rows: int = _CHUNK_ROWS) -> np.ndarray:
        """Reduced, L2-normalised representations (N, d) float32 of `x` (N, D), read in chunks.

        A row projected onto exactly zero stays zero (no NaN).
        """
        if x.ndim != 2 or x.shape[1] != self.mean.shape[0]:
            raise GalexploreError(
                f"pca: representations of shape {tuple(x.shape)}; expected (N, {self.mean.shape[0]})"
            )
        out = np.empty((x.shape[0], self.dim), dtype=np.float32)
        for start, stop in _chunks(x.shape[0], chunk_rows):
            y = (np.asarray(x[start:stop], dtype=np.float32) - self.mean) @ self.components.T  # (n, d)
            out[start:stop] = _normalize_rows(y)
        return out

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The arrays to save (`np.savez`; no pickles)."""
        return {
            "mean": self.mean,
            "components": self.components,
            "explained_variance_ratio": self.explained_variance_ratio,
        }

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> PCA:
        """The inverse of `to_arrays`, e.g. from `np.load(path)`; a missing key is a `GalexploreError`."""
        keys = ("mean", "components", "explained_variance_ratio")
        missing = [key for key in keys if key not in arrays]
        if missing:
            raise GalexploreError(f"pca: arrays {missing} missing; expected {list(keys)}, found {sorted(arrays)}")
        return cls(
            mean=np.asarray(arrays["mean"], dtype=np.float32),
            components=np.asarray(arrays["components"], dtype=np.float32),
            explained_variance_ratio=np.asarray(arrays["explained_variance_ratio"], dtype=np.float64),
        )


def fit_pca(x: np.ndarray, dim: int, sample: int = 200_000, seed: int = 0) -> PCA:
    """The `dim` leading principal components of `x` (N, D), fitted on at most `sample` rows.

    The rows are a seeded random choice, read in sorted order (kind to a memmap). The covariance
    is accumulated in float64 over chunks of rows and diagonalised; each component's sign makes
    its largest-magnitude entry positive (sklearn's convention), so a fit is reproducible.

    >>> x = np.random.default_rng(0).standard_normal((500, 8)).astype(np.float32)
    >>> pca = fit_pca(x, dim=3)
    >>> y = pca.transform(x)
    >>> y.shape, bool(np.allclose(np.linalg.norm(y, axis=1), 1.0, atol=1e-6))
    ((500, 3), True)
    """
    if x.ndim != 2:
        raise GalexploreError(f"pca: representations of shape {tuple(x.shape)}; expected (N, D)")
    n, width = x.shape
    rows = np.arange(n) if n <= sample else np.sort(np.random.default_rng(seed).choice(n, size=sample, replace=False))
    if not 1 <= dim <= min(width, len(rows)):
        raise GalexploreError(
            f"pca: cannot keep {dim} components of {len(rows)} rows of width {width}; expected "
            f"1 <= pca_dim <= {min(width, len(rows))}"
        )
    # two passes over the sampled rows: the mean, then the centred scatter matrix (D, D)
    total = np.zeros(width, dtype=np.float64)
    for part in _read_rows(x, rows):
        total += part.sum(axis=0)
    mean = total / len(rows)
    scatter = np.zeros((width, width), dtype=np.float64)
    for part in _read_rows(x, rows):
        centred = part - mean  # (n, D) float64
        scatter += centred.T @ centred
    variance, vectors = np.linalg.eigh(scatter / max(len(rows) - 1, 1))  # ascending
    order = np.argsort(variance)[::-1][:dim]
    components = vectors[:, order].T  # (d, D)
    signs = np.sign(components[np.arange(dim), np.argmax(np.abs(components), axis=1)])
    components *= np.where(signs == 0, 1.0, signs)[:, None]
    total_variance = float(np.trace(scatter)) / max(len(rows) - 1, 1)
    ratio = np.clip(variance[order], 0.0, None) / total_variance if total_variance > 0 else np.zeros(dim)
    return PCA(mean=mean.astype(np.float32), components=components.astype(np.float32), explained_variance_ratio=ratio)


def umap_layout(
    x: np.ndarray,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    seed: int = 0,
    fit_sample: int = 200_000,
    chunk_rows: int = 100_000,
    knn: tuple[np.ndarray, np.ndarray] | None = None,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """The 2D map (N, 2) float32 of `x` (N, D): UMAP, cosine metric, seeded (the same seed and
    chunk_rows, the same map, bit for bit).

    With N <= `fit_sample`, UMAP is fitted on every row. `knn`, the atlas's neighbour graph as
    ``(indices (N, k) int, similarities (N, k) float)`` with each row's own index excluded and
    the most similar first, then replaces UMAP's own neighbour search (it needs
    ``k >= n_neighbors - 1``: UMAP counts a point as its own first neighbour).

    With N > `fit_sample`, UMAP is fitted on a seeded random sample of `fit_sample` rows (with
    its own neighbour index; `knn` is not used), and the other rows are placed by
    ``UMAP.transform`` in chunks of `chunk_rows`, calling ``progress(rows_done)`` after each
    with the number of rows transformed so far (N - fit_sample in the end). Rows come back in
    the order of `x`. A transformed row's place depends slightly on the other rows of its chunk
    (they share UMAP's random negative samples), so another `chunk_rows` moves it a little.
    """
    if x.ndim != 2:
        raise GalexploreError(f"umap: representations of shape {tuple(x.shape)}; expected (N, D)")
    if n_neighbors < 2 or chunk_rows < 1:
        raise GalexploreError(f"umap: n_neighbors = {n_neighbors}, chunk_rows = {chunk_rows}; expected >= 2 and >= 1")
    n = x.shape[0]
    fitted = min(n, fit_sample)
    if fitted < n_neighbors + 1:
        what = f"{n} galaxies" if fitted == n else f"a fit sample of {fitted} galaxies"
        raise GalexploreError(
            f"umap: cannot map {what} with n_neighbors = {n_neighbors}; expected at least "
            f"{n_neighbors + 1} (lower project.n_neighbors or add galaxies)"
        )
    precomputed = _umap_knn(knn, n, n_neighbors) if knn is not None and n <= fit_sample else None

    with _known_umap_warnings():
        import umap

        # n_jobs=1: a seeded UMAP is single-threaded anyway (umap warns otherwise)
        reducer = umap.UMAP(
            n_neighbors=n_neighbors,
            min_dist=min_dist,
            metric="cosine",
            random_state=seed,
            n_jobs=1,
            precomputed_knn=precomputed if precomputed is not None else (None, None, None),
        )
        if n <= fit_sample:
            return np.asarray(reducer.fit_transform(np.asarray(x, dtype=np.float32)), dtype=np.float32)

        is_fit = np.zeros(n, dtype=bool)
        is_fit[np.random.default_rng(seed).choice(n, size=fit_sample, replace=False)] = True
        fit_rows, rest = np.flatnonzero(is_fit), np.flatnonzero(~is_fit)  # both sorted
        layout = np.empty((n, 2), dtype=np.float32)
        layout[fit_rows] = reducer.fit_transform(np.asarray(x[fit_rows], dtype=np.float32))
        for start, stop in _chunks(len(rest), chunk_rows):
            rows = rest[start:stop]
            layout[rows] = reducer.transform(np.asarray(x[rows], dtype=np.float32))
            if progress is not None:
                progress(stop)
    return layout


def neighbourhood_recall(high: np.ndarray, low: np.ndarray, k: int = 10, sample: int = 2000, seed: int = 0) -> float:
    """Mean fraction of a galaxy's k nearest neighbours in `high` (N, D), by cosine similarity,
    that are also among its k nearest in the map `low` (N, 2), by euclidean distance.

    Averaged over a seeded sample of at most `sample` galaxies, each excluded from its own
    neighbours; exact search in both spaces. 1 is a map that keeps every neighbourhood; a map
    unrelated to `high` scores about k / (N - 1).
    """
    n = high.shape[0]
    if low.shape[0] != n:
        raise GalexploreError(f"recall: {n} representations but {low.shape[0]} map positions")
    if not 1 <= k <= n - 1:
        raise GalexploreError(f"recall: k = {k} neighbours of {n} galaxies; expected 1 <= k <= {n - 1}")
    queries = np.sort(np.random.default_rng(seed).choice(n, size=min(sample, n), replace=False))
    high_nn = _nearest(high, queries, k, cosine=True)  # (q, k)
    low_nn = _nearest(low, queries, k, cosine=False)  # (q, k)
    kept = [np.intersect1d(a, b, assume_unique=True).size for a, b in zip(high_nn, low_nn)]
    return float(np.mean(kept)) / k


def _nearest(points: np.ndarray, queries: np.ndarray, k: int, cosine: bool) -> np.ndarray:
    """Indices (q, k) of the k rows of `points` (N, D) nearest to its rows `queries`, each
    excluded from its own list: highest cosine similarity, or smallest euclidean distance.

    Exact, blocked brute force. Cosine in float32 (a dot product of unit vectors); euclidean
    in float64, where |p|^2 - 2 q.p keeps close pairs apart only with the wider mantissa.
    """
    dtype = np.float32 if cosine else np.float64
    q = np.asarray(points[queries], dtype=dtype)  # (q, D)
    if cosine:
        q = _normalize_rows(q)
    best_score = np.empty((len(queries), 0), dtype=dtype)  # higher is nearer
    best_index = np.empty((len(queries), 0), dtype=np.int64)
    for start, stop in _chunks(points.shape[0], _SEARCH_BLOCK):
        block = np.asarray(points[start:stop], dtype=dtype)  # (b, D)
        if cosine:
            score = q @ _normalize_rows(block).T  # (q, b)
        else:
            score = 2 * q @ block.T - (block * block).sum(axis=1)  # -|q - p|^2 + |q|^2, (q, b)
        own = np.flatnonzero((queries >= start) & (queries < stop))
        score[own, queries[own] - start] = -np.inf
        score = np.concatenate([best_score, score], axis=1)  # (q, k + b)
        index = np.concatenate([best_index, np.broadcast_to(np.arange(start, stop), (len(queries), stop - start))], axis=1)
        top = np.argpartition(-score, min(k, score.shape[1]) - 1, axis=1)[:, :k]
        best_score = np.take_along_axis(score, top, axis=1)
        best_index = np.take_along_axis(index, top, axis=1)
    return best_index


def _umap_knn(knn: tuple[np.ndarray, np.ndarray], n: int, n_neighbors: int) -> tuple[np.ndarray, np.ndarray]:
    """The atlas's neighbour graph (self excluded, similarities) as UMAP's precomputed_knn:
    (N, n_neighbors) int32 indices and float32 cosine distances, each row starting with itself
    at distance 0. Cut to exactly n_neighbors columns: below 4096 rows UMAP uses every column it
    is given rather than the first n_neighbors."""
    indices, similarities = (np.asarray(a) for a in knn)
    k = n_neighbors - 1
    if indices.ndim != 2 or indices.shape != similarities.shape or indices.shape[0] != n or indices.shape[1] < k:
        raise GalexploreError(
            f"umap: a neighbour graph of indices {indices.shape} and similarities {similarities.shape} "
            f"for {n} galaxies; expected both ({n}, k) with k >= n_neighbors - 1 = {k}"
        )
    own = np.arange(n, dtype=np.int32)[:, None]
    umap_indices = np.concatenate([own, indices[:, :k].astype(np.int32)], axis=1)
    distances = np.clip(1.0 - similarities[:, :k].astype(np.float32), 0.0, None)
    umap_distances = np.concatenate([np.zeros((n, 1), dtype=np.float32), distances], axis=1)
    return umap_indices, umap_distances


@contextmanager
def _known_umap_warnings() -> Iterator[None]:
    """Silence `_KNOWN_UMAP_WARNINGS` inside the block; every other warning passes."""
    with warnings.catch_warnings():
        for category, message in _KNOWN_UMAP_WARNINGS:
            warnings.filterwarnings("ignore", message=message, category=category)
        yield


def _normalize_rows(y: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; an all-zero row stays zero."""
    norms = np.linalg.norm(y, axis=1, keepdims=True)
    return y / np.where(norms > 0, norms, 1)


def _chunks(n: int, size: int) -> Iterator[tuple[int, int]]:
    if size < 1:
        raise GalexploreError(f"chunk_rows = {size}; expected at least 1")
    for start in range(0, n, size):
        yield start, min(start + size, n)


def _read_rows(x: np.ndarray, rows: np.ndarray) -> Iterator[np.ndarray]:
    """The sorted `rows` of `x` in chunks, float64 (n, D)."""
    for start, stop in _chunks(len(rows), _CHUNK_ROWS):
        yield np.asarray(x[rows[start:stop]], dtype=np.float64)
