"""k-nearest-neighbour probes on frozen representations (cosine similarity).

A kNN probe asks what the representation space already knows without training anything on
top: a galaxy's redshift is the median of its k most similar labelled galaxies', its class their
majority vote. Used by the training monitor and to compare an encoder with its baselines.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from galexplore.scoring.figures import accuracy, photoz_metrics
from galexplore.maps.neighbors import search_vectors


def knn_indices(reference: np.ndarray, query: np.ndarray, k: int) -> np.ndarray:
    """Indices (Q, k) int64 of the k reference rows most cosine-similar to each query row, best first.

    k is capped at the number of reference rows. The exact search of the neighbour graph.
    """
    indices, _ = search_vectors(reference, query, min(k, len(reference)))
    return indices


def knn_regress(reference: np.ndarray, y: np.ndarray, query: np.ndarray, k: int) -> np.ndarray:
    """Median of the k nearest reference values, per query row."""
    return np.median(np.asarray(y)[knn_indices(reference, query, k)], axis=1)


def knn_classify(reference: np.ndarray, labels: np.ndarray, query: np.ndarray, k: int) -> np.ndarray:
    """Majority label among the k nearest reference rows (ties: the smaller label)."""
    labels = np.asarray(labels)
    classes, coded = np.unique(labels, return_inverse=True)
    votes = coded[knn_indices(reference, query, k)]  # (Q, k)
    counts = np.stack([(votes == c).sum(axis=1) for c in range(len(classes))], axis=1)
    return classes[np.argmax(counts, axis=1)]


def knn_scores(
    representations: np.ndarray, catalog: Any, is_reference: np.ndarray, k: int = 20
) -> dict[str, dict[str, float]]:
    """kNN photo-z and morphology scores of `representations` (N, D) of catalog rows.

    Rows with is_reference True are the labelled reference set, the others are scored.
    Redshift: z_spec where finite. Morphology: p_features > 0.5 where finite.
    """
    scores: dict[str, dict[str, float]] = {}
    ref = np.asarray(is_reference, dtype=bool)
    if "z_spec" in catalog:
        z = np.asarray(catalog["z_spec"], dtype=np.float64)
        has = np.isfinite(z)
        r, q = ref & has, ~ref & has
        if r.sum() >= k and q.sum() > 0:
            scores["redshift"] = photoz_metrics(knn_regress(representations[r], z[r], representations[q], k), z[q])
    if "p_features" in catalog:
        p = np.asarray(catalog["p_features"], dtype=np.float64)
        has = np.isfinite(p)
        r, q = ref & has, ~ref & has
        if r.sum() >= k and q.sum() > 0:
            pred = knn_classify(representations[r], p[r] > 0.5, representations[q], k)
            scores["morphology"] = {"accuracy": accuracy(pred, p[q] > 0.5), "n": int(q.sum())}
    return scores


def cross_validated_scores(
    representations: np.ndarray, catalog: Any, k: int = 20, folds: int = 5, seed: int = 0
) -> dict[str, dict[str, float]]:
    """kNN scores with every labelled row predicted from the other folds' rows.

    Lower variance than one held-out split: every labelled galaxy is scored once.
    """
    scores: dict[str, dict[str, float]] = {}
    fold = np.random.default_rng([seed, 0xF01D]).integers(0, folds, len(catalog))
    for column, name in (("z_spec", "redshift"), ("p_features", "morphology")):
        if column not in catalog:
            continue
        values = np.asarray(catalog[column], dtype=np.float64)
        has = np.isfinite(values)
        if has.sum() < 2 * k:
            continue
        pred = np.full(len(values), np.nan)
        for f in range(folds):
            ref, query = has & (fold != f), has & (fold == f)
            if not query.any():
                continue
            if name == "redshift":
                pred[query] = knn_regress(representations[ref], values[ref], representations[query], k)
            else:
                pred[query] = knn_classify(representations[ref], values[ref] > 0.5, representations[query], k)
        if name == "redshift":
            scores[name] = photoz_metrics(pred[has], values[has])
        else:
            scores[name] = {"accuracy": accuracy(pred[has] > 0.5, values[has] > 0.5), "n": int(has.sum())}
    return scores
