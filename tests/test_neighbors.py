"""The neighbour graph: exact against brute force, IVF recall and reproducibility, blocks, errors."""

from __future__ import annotations

import numpy as np
import pytest

from galexplore.errors import GalexploreError
from galexplore.maps.neighbors import (
    build_index,
    ivf_nlist,
    iter_knn_blocks,
    knn_graph,
    measure_recall,
    search_vectors,
)


def unit_gaussian(n: int, dim: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def clustered(n: int, dim: int, clusters: int, spread: float, seed: int) -> np.ndarray:
    """Unit vectors scattered around `clusters` random unit centres."""
    rng = np.random.default_rng(seed)
    centres = unit_gaussian(clusters, dim, seed + 1)
    x = centres[rng.integers(0, clusters, n)] + rng.normal(0, spread, (n, dim)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def random500() -> np.ndarray:
    return unit_gaussian(500, 16, seed=0)


@pytest.fixture(scope="module")
def clustered20k() -> np.ndarray:
    return clustered(20_000, 32, clusters=200, spread=0.1, seed=3)


@pytest.fixture(scope="module")
def ivf_graph(clustered20k: np.ndarray):
    return knn_graph(clustered20k, k=10, method="ivf", nlist=64, nprobe=4, seed=7, recall_sample=500)


def brute_force(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    sim = x.astype(np.float64) @ x.T.astype(np.float64)  # (N, N)
    np.fill_diagonal(sim, -np.inf)
    order = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(sim, order, axis=1)


def test_exact_graph_equals_brute_force(random500: np.ndarray) -> None:
    graph = knn_graph(random500, k=10, method="exact", block_rows=128)
    expected_indices, expected_sims = brute_force(random500, 10)
    assert graph.method == "exact" and graph.recall is None
    assert graph.indices.dtype == np.int32 and graph.similarities.dtype == np.float32
    np.testing.assert_array_equal(graph.indices, expected_indices)
    np.testing.assert_allclose(graph.similarities, expected_sims, atol=1e-5)
    assert not (graph.indices == np.arange(500)[:, None]).any()
    assert (np.diff(graph.similarities, axis=1) <= 0).all()
    listed = np.einsum("nd,nkd->nk", random500, random500[graph.indices])  # dot products of the pairs
    np.testing.assert_allclose(graph.similarities, listed, atol=1e-5)


def test_unnormalised_and_zero_rows_give_cosine_and_no_nan(random500: np.ndarray) -> None:
    scaled = random500 * np.linspace(0.5, 20, 500, dtype=np.float32)[:, None]
    scaled[3] = 0.0
    graph = knn_graph(scaled, k=5, method="exact")
    unit = random500.copy()
    unit[3] = 0.0
    expected_indices, expected_sims = brute_force(unit, 5)
    assert np.isfinite(graph.similarities).all()
    others = np.arange(500) != 3  # the zero row's neighbours are all ties
    np.testing.assert_array_equal(graph.indices[others], expected_indices[others])
    np.testing.assert_allclose(graph.similarities, expected_sims, atol=1e-5)
    np.testing.assert_allclose(graph.similarities[3], 0.0)  # the zero row: cos 0 to everything


def test_duplicates_still_exclude_their_own_row() -> None:
    x = np.repeat(unit_gaussian(4, 8, seed=1), 12, axis=0)  # 4 vectors, 12 copies each
    graph = knn_graph(x, k=11, method="exact")
    assert not (graph.indices == np.arange(len(x))[:, None]).any()
    # a row's 11 neighbours are exactly its 11 twins
    assert (graph.indices // 12 == np.arange(len(x))[:, None] // 12).all()
    np.testing.assert_allclose(graph.similarities, 1.0, atol=1e-6)


def test_torch_path_matches_faiss_path_on_cpu(random500: np.ndarray) -> None:
    read_only = random500.copy()
    read_only.flags.writeable = False  # as a memory-mapped file's
    faiss_indices, faiss_sims = build_index(read_only, method="exact").search(read_only[:50], 7)
    torch_indices, torch_sims = build_index(read_only, method="exact", device="cpu").search(read_only[:50], 7)
    np.testing.assert_array_equal(torch_indices, faiss_indices)
    np.testing.assert_allclose(torch_sims, faiss_sims, atol=1e-5)


def test_ivf_reaches_its_recall_and_reports_it(clustered20k: np.ndarray, ivf_graph) -> None:
    assert ivf_graph.method == "ivf"
    assert 0.9 <= ivf_graph.recall <= 1.0
    exact = knn_graph(clustered20k[:2000], k=10, method="exact")  # independent check on a subset
    sub = knn_graph(clustered20k[:2000], k=10, method="ivf", nlist=20, nprobe=2, seed=7)
    found = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(sub.indices, exact.indices)])
    assert sub.recall == pytest.approx(found, abs=0.02)  # the sample's recall is the graph's
    assert not (ivf_graph.indices == np.arange(len(clustered20k))[:, None]).any()
    assert (np.diff(ivf_graph.similarities, axis=1) <= 0).all()


def test_ivf_is_reproducible_from_its_seed(clustered20k: np.ndarray, ivf_graph) -> None:
    again = knn_graph(clustered20k, k=10, method="ivf", nlist=64, nprobe=4, seed=7, recall_sample=500)
    np.testing.assert_array_equal(again.indices, ivf_graph.indices)
    np.testing.assert_array_equal(again.similarities, ivf_graph.similarities)
    assert again.recall == ivf_graph.recall


def test_measure_recall_counts_misses_and_forgives_ties() -> None:
    x = np.repeat(unit_gaussian(50, 8, seed=2), 2, axis=0)  # row 2j and 2j+1 are twins
    exact = knn_graph(x, k=3, method="exact")
    rows = np.arange(0, 100, 5)
    assert measure_recall(x, rows, exact.indices[rows]) == 1.0
    wrong = exact.indices[rows].copy()
    wrong[:, -1] = (rows + 50) % 100  # a far row in place of the third neighbour (random: not in the top 3)
    far_is_miss = ~(exact.indices[rows] == wrong[:, -1:]).any(axis=1)
    assert far_is_miss.any()
    assert measure_recall(x, rows, wrong) == pytest.approx(1 - far_is_miss.mean() / 3)


def test_small_collections_fall_back_to_exact() -> None:
    assert ivf_nlist(1000) == 25 and ivf_nlist(10_000_000_000) == 65_536
    assert build_index(unit_gaussian(500, 4, seed=0), method="ivf", nprobe=16).method == "exact"  # 12 cells <= 16


def test_blocks_from_a_start_row_equal_the_full_graph(random500: np.ndarray) -> None:
    graph = knn_graph(random500, k=6, method="exact")
    index = build_index(random500, method="exact")
    blocks = list(iter_knn_blocks(index, random500, k=6, start=230, block_rows=100))
    assert [(lo, hi) for lo, hi, _, _ in blocks] == [(230, 330), (330, 430), (430, 500)]
    np.testing.assert_array_equal(np.concatenate([b[2] for b in blocks]), graph.indices[230:])
    np.testing.assert_array_equal(np.concatenate([b[3] for b in blocks]), graph.similarities[230:])


def test_progress_counts_every_row_once(random500: np.ndarray) -> None:
    done: list[int] = []
    knn_graph(random500, k=3, block_rows=64, progress=done.append)
    assert sum(done) == 500 and len(done) == 8


def test_search_vectors_finds_the_base_row_itself_first(random500: np.ndarray) -> None:
    indices, sims = search_vectors(random500, random500[[17, 401]] * 3.0, k=4)
    assert indices.dtype == np.int64 and indices[:, 0].tolist() == [17, 401]
    np.testing.assert_allclose(sims[:, 0], 1.0, atol=1e-6)


def test_user_mistakes_are_named() -> None:
    x = unit_gaussian(50, 8, seed=0)
    with pytest.raises(GalexploreError, match="k = 60 needs at least 61 objects, found 50"):
        knn_graph(x, k=60)
    with pytest.raises(GalexploreError, match="k = 50 needs at least 51 objects, found 50"):
        knn_graph(x, k=50)
    with pytest.raises(GalexploreError, match="queries have D = 4 columns, the index holds D = 8"):
        search_vectors(x, np.ones((2, 4)), k=3)
    with pytest.raises(GalexploreError, match="2-D array"):
        knn_graph(x[0], k=3)
    with pytest.raises(GalexploreError, match="NaN or inf, the first at row 2"):
        knn_graph(np.where(np.arange(50)[:, None] == 2, np.nan, x), k=3)
    with pytest.raises(GalexploreError, match="'hnsw'"):
        build_index(x, method="hnsw")


@pytest.mark.gpu
def test_cuda_path_matches_faiss_path() -> None:
    x = clustered(50_000, 64, clusters=100, spread=0.2, seed=5)
    faiss_indices, faiss_sims = build_index(x, method="exact").search(x[:3000], 21)
    cuda_indices, cuda_sims = build_index(x, method="exact", device="cuda").search(x[:3000], 21)
    np.testing.assert_allclose(cuda_sims, faiss_sims, atol=1e-5)
    gap = -np.diff(faiss_sims, axis=1)  # (Q, 20)
    distinct = np.ones_like(faiss_sims, dtype=bool)
    distinct[:, 1:] &= gap > 1e-5
    distinct[:, :-1] &= gap > 1e-5
    distinct = distinct[:, :20]
    assert distinct.mean() > 0.5
    np.testing.assert_array_equal(cuda_indices[:, :20][distinct], faiss_indices[:, :20][distinct])  # same ranks


def test_nprobe_is_raised_until_the_recall_target_is_met():
    rng = np.random.default_rng(5)
    centres = rng.standard_normal((50, 32))
    x = (centres[rng.integers(0, 50, 20_000)] + 0.9 * rng.standard_normal((20_000, 32))).astype(np.float32)
    loose = knn_graph(x, 10, method="ivf", nlist=128, nprobe=1, recall_sample=300)
    tuned = knn_graph(x, 10, method="ivf", nlist=128, nprobe=1, recall_sample=300, recall_target=0.95)
    assert loose.recall < 0.95 <= tuned.recall
    assert loose.nprobe == 1 < tuned.nprobe


@pytest.mark.parametrize("n_queries", [1, 3, 40, 128, 129, 300])
def test_few_and_many_queries_find_what_faiss_finds(n_queries):
    """The exact CPU search answers a few queries by a partial sort and more through FAISS: the
    same neighbours, best first, either way (also with k = N)."""
    import faiss

    from galexplore.maps.neighbors import FlatIndex

    rng = np.random.default_rng(n_queries)
    base = rng.standard_normal((500, 16)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    queries = rng.standard_normal((n_queries, 16)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    for k in (1, 20, 500):
        rows, sims = FlatIndex(base).search(queries, k)
        want_sims, want_rows = faiss.knn(queries, base, k, metric=faiss.METRIC_INNER_PRODUCT)
        assert rows.dtype == np.int64 and rows.shape == (n_queries, k)
        np.testing.assert_allclose(sims, want_sims, rtol=1e-5, atol=1e-6)
        # the same rows, except where two similarities tie to float32 rounding (summation order)
        exact = queries.astype(np.float64) @ base.astype(np.float64).T
        kth = np.sort(exact, axis=1)[:, -k][:, None]
        ours = np.take_along_axis(exact, rows, axis=1)
        assert (ours >= kth - 1e-6).all() and (np.diff(ours, axis=1) <= 1e-6).all()
        assert (rows == want_rows).mean() > 0.99
        assert all(len(set(r)) == k for r in rows)
