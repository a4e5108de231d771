"""PCA copy, UMAP map and neighbourhood recall: closed forms, known clusters, bad inputs.

UMAP costs seconds of numba compilation per process, so every UMAP fit is made once, in the
module fixture `maps`; the PCA and recall tests never import umap.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from galexplore.errors import GalexploreError
from galexplore.maps.projection import PCA, fit_pca, neighbourhood_recall, umap_layout

SCALES = np.array([5.0, 3.0, 2.0, 1.5, 1.0, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05, 0.02])  # sd per axis
N_PER_CLUSTER = 100


@pytest.fixture(scope="module")
def spread() -> np.ndarray:
    """(400, 12) float32: Gaussian, a distinct variance per (rotated) axis, off-centre."""
    rng = np.random.default_rng(0)
    rotation, _ = np.linalg.qr(rng.standard_normal((12, 12)))
    x = rng.standard_normal((400, 12)) * SCALES @ rotation + 3.0
    return x.astype(np.float32)


def clusters(seed: int = 0, dim: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """(300, dim) unit vectors in 3 tight clusters around random directions, and their labels.

    Random directions in 16-D are about 90 degrees apart; the noise moves a point by ~0.15 rad.
    """
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(3), N_PER_CLUSTER)
    x = rng.standard_normal((3, dim))[labels] + 0.15 * rng.standard_normal((len(labels), dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), labels


def exact_knn(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The atlas's neighbour graph of unit vectors `x`: (N, k) indices and similarities, self excluded."""
    similarity = x @ x.T
    np.fill_diagonal(similarity, -np.inf)
    indices = np.argsort(-similarity, axis=1)[:, :k]
    return indices, np.take_along_axis(similarity, indices, axis=1)


def knn_label_accuracy(layout: np.ndarray, labels: np.ndarray, k: int = 5) -> float:
    """Fraction of points whose k nearest others on the map (euclidean) mostly share their label."""
    d2 = ((layout[:, None, :] - layout[None, :, :]) ** 2).sum(axis=2)
    np.fill_diagonal(d2, np.inf)
    votes = labels[np.argsort(d2, axis=1)[:, :k]]  # (N, k)
    predicted = np.array([np.bincount(v, minlength=labels.max() + 1).argmax() for v in votes])
    return float(np.mean(predicted == labels))


# --- PCA ------------------------------------------------------------------------------------


def test_pca_matches_sklearn_on_the_full_data(spread: np.ndarray) -> None:
    from sklearn.decomposition import PCA as SklearnPCA

    pca = fit_pca(spread, dim=4)
    reference = SklearnPCA(n_components=4, svd_solver="full").fit(spread.astype(np.float64))
    np.testing.assert_allclose(pca.explained_variance_ratio, reference.explained_variance_ratio_, rtol=1e-5)
    np.testing.assert_allclose(pca.mean, reference.mean_, atol=1e-5)
    # the same sign convention: each component's largest-magnitude entry is positive
    np.testing.assert_allclose(pca.components, reference.components_, atol=1e-5)
    np.testing.assert_allclose(pca.components @ pca.components.T, np.eye(4), atol=1e-6)
    assert pca.components.dtype == np.float32 and pca.mean.dtype == np.float32
    assert np.all(np.diff(pca.explained_variance_ratio) < 0)
    # the leading variances are the axes' own: 25 / sum(SCALES^2), to sampling noise of 400 rows
    assert pca.explained_variance_ratio[0] == pytest.approx(SCALES[0] ** 2 / np.sum(SCALES**2), rel=0.15)


def test_transform_is_unit_norm_chunked_and_keeps_a_zero_projection_zero(spread: np.ndarray, tmp_path) -> None:
    pca = fit_pca(spread, dim=5)
    y = pca.transform(spread)
    assert y.shape == (400, 5) and y.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(y, axis=1), 1.0, atol=1e-6)
    memmap = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float32, shape=spread.shape)
    memmap[:] = spread
    np.testing.assert_allclose(pca.transform(memmap, chunk_rows=7), y, atol=1e-6)
    # the mean itself projects onto zero: it stays zero rather than becoming NaN
    assert np.array_equal(pca.transform(pca.mean[None, :]), np.zeros((1, 5), dtype=np.float32))
    with pytest.raises(GalexploreError, match=r"shape \(400, 11\); expected \(N, 12\)"):
        pca.transform(spread[:, :11])


def test_pca_survives_a_round_trip_through_npz(spread: np.ndarray, tmp_path) -> None:
    pca = fit_pca(spread, dim=3)
    np.savez(tmp_path / "pca.npz", **pca.to_arrays())
    with np.load(tmp_path / "pca.npz", allow_pickle=False) as arrays:
        again = PCA.from_arrays(arrays)
    for key, value in pca.to_arrays().items():
        assert np.array_equal(again.to_arrays()[key], value), key
    assert np.array_equal(again.transform(spread), pca.transform(spread))
    with pytest.raises(GalexploreError, match=r"\['components'\] missing"):
        PCA.from_arrays({"mean": pca.mean, "explained_variance_ratio": pca.explained_variance_ratio})
    with pytest.raises(GalexploreError, match="do not fit"):
        PCA.from_arrays({**pca.to_arrays(), "mean": pca.mean[:5]})


def test_a_sampled_fit_is_reproducible_for_its_seed(spread: np.ndarray) -> None:
    first, again = fit_pca(spread, dim=3, sample=150, seed=1), fit_pca(spread, dim=3, sample=150, seed=1)
    for key, value in first.to_arrays().items():
        assert np.array_equal(again.to_arrays()[key], value), key
    other = fit_pca(spread, dim=3, sample=150, seed=2)
    assert not np.array_equal(other.mean, first.mean)  # another seed, another sample of rows
    # a 150-row sample finds the same leading axis as all 400 rows
    full = fit_pca(spread, dim=3)
    assert abs(float(first.components[0] @ full.components[0])) > 0.99


def test_more_components_than_width_or_rows_is_a_clear_error(spread: np.ndarray) -> None:
    with pytest.raises(GalexploreError, match="cannot keep 13 components of 400 rows of width 12"):
        fit_pca(spread, dim=13)
    with pytest.raises(GalexploreError, match="cannot keep 6 components of 5 rows of width 12"):
        fit_pca(spread, dim=6, sample=5)
    with pytest.raises(GalexploreError, match="cannot keep 0 components"):
        fit_pca(spread, dim=0)


# --- neighbourhood recall -------------------------------------------------------------------


def test_recall_is_one_for_a_map_that_keeps_every_neighbourhood() -> None:
    # points on a quarter circle: the cosine similarity falls with the angle, so the nearest by
    # angle on a line are the nearest by cosine on the circle
    angle = np.sort(np.random.default_rng(0).uniform(0, np.pi / 2, 500))
    high = np.stack([np.cos(angle), np.sin(angle), np.zeros_like(angle)], axis=1)
    low = np.stack([angle, np.zeros_like(angle)], axis=1)
    assert neighbourhood_recall(high, low, k=10, sample=200) == 1.0


def test_recall_of_a_shuffled_map_is_chance() -> None:
    x, _ = clusters()
    rng = np.random.default_rng(0)
    low = rng.standard_normal((len(x), 2))
    chance = 10 / (len(x) - 1)  # 0.033; over 300 queries of 10 the mean has an sd of ~0.003
    assert neighbourhood_recall(x, low, k=10) == pytest.approx(chance, abs=0.015)
    with pytest.raises(GalexploreError, match="300 representations but 299 map positions"):
        neighbourhood_recall(x, low[:-1])


# --- UMAP -----------------------------------------------------------------------------------


def test_importing_the_module_does_not_import_umap() -> None:
    code = "import sys, galexplore.maps.projection; assert 'umap' not in sys.modules, 'umap imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_too_few_galaxies_or_neighbours_is_a_clear_error() -> None:
    x, _ = clusters()
    with pytest.raises(GalexploreError, match="cannot map 5 galaxies with n_neighbors = 15; expected at least 16"):
        umap_layout(x[:5])
    with pytest.raises(GalexploreError, match="a fit sample of 10 galaxies"):
        umap_layout(x, fit_sample=10)
    with pytest.raises(GalexploreError, match=r"k >= n_neighbors - 1 = 14"):
        umap_layout(x, knn=exact_knn(x, 13))


@pytest.fixture(scope="module")
def maps() -> dict[str, np.ndarray]:
    """Every UMAP fit of this module, on 3 clusters of 100 points (one numba warm-up)."""
    x, labels = clusters()
    # a neighbour graph that disagrees with x: the clusters of another draw, whose labels are shuffled
    decoy = np.random.default_rng(1).permutation(labels)
    y = np.empty_like(x)
    y[np.argsort(decoy, kind="stable")] = clusters(seed=2)[0]
    rows_done: list[int] = []
    return {
        "x": x,
        "labels": labels,
        "decoy": decoy,
        "full": umap_layout(x, seed=0),
        "again": umap_layout(x, seed=0),
        "knn": umap_layout(x, seed=0, knn=exact_knn(x, 20)),
        "decoy_knn": umap_layout(x, seed=0, knn=exact_knn(y, 14)),
        "sampled": umap_layout(x, seed=0, fit_sample=150, chunk_rows=60, progress=rows_done.append),
        "rows_done": np.array(rows_done),
        "sampled_again": umap_layout(x, seed=0, fit_sample=150, chunk_rows=60),
    }


def test_umap_maps_are_deterministic_and_separate_the_clusters(maps: dict[str, np.ndarray]) -> None:
    full = maps["full"]
    assert full.shape == (300, 2) and full.dtype == np.float32 and np.all(np.isfinite(full))
    assert np.array_equal(maps["again"], full)  # same seed, bit for bit
    assert knn_label_accuracy(full, maps["labels"]) > 0.95


def test_the_atlas_neighbour_graph_is_the_one_umap_uses(maps: dict[str, np.ndarray]) -> None:
    assert maps["knn"].shape == (300, 2) and maps["knn"].dtype == np.float32
    assert knn_label_accuracy(maps["knn"], maps["labels"]) > 0.95
    # a graph drawn from other clusters than x's: the map follows the graph, not x
    assert knn_label_accuracy(maps["decoy_knn"], maps["decoy"]) > 0.95
    assert knn_label_accuracy(maps["decoy_knn"], maps["labels"]) < 0.6


def test_a_sample_fit_places_the_other_rows_in_their_clusters(maps: dict[str, np.ndarray]) -> None:
    sampled, labels = maps["sampled"], maps["labels"]
    assert sampled.shape == (300, 2) and sampled.dtype == np.float32 and np.all(np.isfinite(sampled))
    assert maps["rows_done"].tolist() == [60, 120, 150]  # 150 rows transformed in chunks of 60
    # same seed and chunks, same map (a row's place also depends on the chunk it shares)
    assert np.array_equal(maps["sampled_again"], sampled)
    # rows in x's order: the transformed rows sit among fitted rows of their own cluster
    assert knn_label_accuracy(sampled, labels) > 0.95
    centres = np.stack([sampled[labels == c].mean(axis=0) for c in range(3)])  # (3, 2)
    nearest = np.argmin(((sampled[:, None, :] - centres[None]) ** 2).sum(axis=2), axis=1)
    assert np.mean(nearest == labels) > 0.95
