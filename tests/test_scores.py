"""Trust and anomaly scores: ranges, monotonicity, calibration, planted outliers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from galexplore.maps.neighbors import knn_graph
from galexplore.maps.scores import (
    anomaly_scores,
    distance_to_labelled,
    label_availability,
    labelled_masks,
    trust_from_distance,
    trust_scores,
)


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def clusters() -> tuple[np.ndarray, np.ndarray]:
    """Two clusters on the sphere in 16-D; only the first carries labels (half of it)."""
    rng = np.random.default_rng(3)
    centres = _unit(rng.standard_normal((2, 16)))
    which = np.repeat([0, 1], 300)
    x = _unit(centres[which] + 0.15 * rng.standard_normal((600, 16)))
    labelled = (which == 0) & (rng.random(600) < 0.5)
    return x, labelled


def test_trust_is_in_unit_interval_and_low_far_from_labels(clusters):
    x, labelled = clusters
    columns, notes = trust_scores(x, {"spec-z": labelled}, k=5)
    trust = columns["trust_spec_z"]
    assert notes == {}
    assert np.all((trust >= 0) & (trust <= 1))
    # the unlabelled cluster is far from every labelled galaxy: nearly all of it below 0.05
    assert np.mean(trust[300:] < 0.05) > 0.95
    # the labelled cluster's unlabelled members sit where the labels are
    assert np.median(trust[:300][~labelled[:300]]) > 0.2
    # combined trust with a single kind is that kind's trust
    np.testing.assert_array_equal(columns["trust"], trust)


def test_trust_falls_as_a_galaxy_moves_away_from_the_labelled_set(clusters):
    x, labelled = clusters
    inside = _unit(x[labelled].mean(axis=0, keepdims=True))[0]  # the labelled cluster's centre
    outside = x[-1]
    path = _unit(np.stack([(1 - t) * inside + t * outside for t in np.linspace(0, 1, 11)]))
    both = np.concatenate([x, path])
    mask = np.concatenate([labelled, np.zeros(len(path), dtype=bool)])
    trust = trust_scores(both, {"spec-z": mask}, k=5)[0]["trust_spec_z"][len(x):]
    assert np.all(np.diff(trust) <= 0), trust
    assert trust[0] > 0.5 and trust[-1] == 0.0


def test_labelled_galaxies_are_scored_leaving_themselves_out(clusters):
    x, labelled = clusters
    d = distance_to_labelled(x, labelled, k=5)
    # a labelled galaxy never counts itself: its distance is positive (no duplicates here)
    assert np.all(d[labelled] > 1e-4)
    # calibrated on the labelled rows themselves, their trust is about uniform
    trust = trust_from_distance(d[labelled], d[labelled])
    assert abs(float(np.mean(trust)) - 0.5) < 0.05


def test_too_few_labels_give_nan_with_a_note(clusters):
    x, _ = clusters
    one = np.zeros(len(x), dtype=bool)
    one[0] = True
    columns, notes = trust_scores(x, {"morphology": one}, k=5)
    assert np.isnan(columns["trust_morphology"]).all()
    assert "1 labelled galaxies" in notes["trust_morphology"]


def test_anomaly_ranks_a_planted_outlier_first():
    rng = np.random.default_rng(0)
    centres = _unit(rng.standard_normal((5, 32)))
    x = _unit(centres[rng.integers(0, 5, 2000)] + 0.2 * rng.standard_normal((2000, 32)))
    x[1234] = _unit(rng.standard_normal((1, 32)))[0]  # belongs to no cluster
    graph = knn_graph(x, 10, method="exact")
    scores = anomaly_scores(graph.similarities, k=10)
    assert int(np.argmax(scores)) == 1234


def test_labelled_masks_and_availability_from_a_catalog():
    table = pd.DataFrame({"z_spec": [0.1, np.nan, 0.2], "p_features": [np.nan, np.nan, 0.7]})
    masks = labelled_masks(table, {"spec-z": "z_spec", "morphology": "p_features", "ring": "is_ring"})
    assert masks["spec-z"].tolist() == [True, False, True]
    assert masks["ring"].tolist() == [False, False, False]
    assert label_availability(masks, 3).tolist() == ["spec-z", "none", "spec-z+morphology"]


def test_local_outlier_factor_from_the_graph_equals_sklearns():
    from sklearn.neighbors import LocalOutlierFactor

    from galexplore.maps.scores import local_outlier_factor

    rng = np.random.default_rng(1)
    x = _unit(np.concatenate([rng.standard_normal((300, 8)), 0.2 * rng.standard_normal((200, 8)) + 3]))
    graph = knn_graph(x, 10, method="exact")
    ours = local_outlier_factor(graph.indices, graph.similarities, k=10)
    theirs = -LocalOutlierFactor(n_neighbors=10, metric="cosine").fit(x).negative_outlier_factor_
    np.testing.assert_allclose(ours, theirs, rtol=1e-4)
