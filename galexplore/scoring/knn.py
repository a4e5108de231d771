"""k-nearest-neighbour probes on frozen representations (cosine similarity).

A kNN probe asks what the representation space already knows without training anything on
top: a galaxy's redshift is the median of its k most similar labelled galaxies', its class their
majority vote. Used to compare an encoder with its baselines.
"""

from __future__ import annotations

from collections.abc import Mapping
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


def cross_validated_scores(
    representations: np.ndarray, catalog: Any, columns: Mapping[str, str], k: int = 20, folds: int = 5, seed: int = 0
) -> dict[str, dict[str, float]]:
    """kNN scores with every labelled row (a finite value) predicted from the other folds' rows.

    `columns` maps a score's name to the catalog column it reads: "redshift" is regressed (the
    median of the neighbours'), any other name is a fraction or flag, classified as value > 0.5
    by majority vote. Lower variance than one held-out split: every labelled galaxy is scored once.
    """
    scores: dict[str, dict[str, float]] = {}
    fold = np.random.default_rng([seed, 0xF01D]).integers(0, folds, len(catalog))
    for name, column in columns.items():
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
