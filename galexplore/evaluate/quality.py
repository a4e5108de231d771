"""How good an atlas is, measured against the truth a simulated survey carries.

Three questions, each answered from the atlas's own products:
- anomalies: what share of the top 1% by `anomaly_score` are injected rare objects?
- trust: is a kNN photo-z worse where trust is low (|dz| by trust decile, against true z)?
- neighbours: do a galaxy's most similar galaxies share its true type and redshift?
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from galexplore.maps.neighbors import knn_graph
from galexplore.maps.scores import labelled_neighbours, local_outlier_factor


def anomaly_precision(catalog: pd.DataFrame, top: float = 0.01, score: np.ndarray | None = None) -> dict[str, float]:
    """The share of injected anomalies (`is_anomaly`) among the top `top` fraction by `score`
    (default: the catalog's anomaly_score)."""
    score = np.asarray(catalog["anomaly_score"] if score is None else score, dtype=np.float64)
    truth = catalog["is_anomaly"].to_numpy(dtype=bool)
    n_top = max(1, int(round(top * len(catalog))))
    chosen = np.argsort(-score, kind="stable")[:n_top]
    result = {
        "top_fraction": top,
        "n_top": n_top,
        "precision": float(truth[chosen].mean()),
        "recall": float(truth[chosen].sum() / max(1, truth.sum())),
        "base_rate": float(truth.mean()),
    }
    if "has_neighbour" in catalog:  # what else a density score finds rare: a second galaxy in the stamp
        blended = catalog["has_neighbour"].to_numpy(dtype=bool)
        result.update(top_with_neighbour=float(blended[chosen].mean()), all_with_neighbour=float(blended.mean()))
    return result


def knn_photoz(x: np.ndarray, z_spec: np.ndarray, k: int = 20) -> np.ndarray:
    """Every row's kNN redshift: the median z_spec of its k nearest spec-z galaxies (leave-one-out)."""
    z_spec = np.asarray(z_spec, dtype=np.float64)
    labelled = np.isfinite(z_spec)
    rows, _ = labelled_neighbours(x, labelled, k)
    return np.median(z_spec[rows], axis=1)


def photoz_by_trust(
    catalog: pd.DataFrame, x: np.ndarray, trust_column: str = "trust_spec_z", k: int = 20, deciles: int = 10
) -> dict[str, Any]:
    """Median |dz| of a kNN photo-z against the true z, per decile of trust (lowest first)."""
    z_phot = knn_photoz(x, catalog["z_spec"].to_numpy(dtype=np.float64), k)
    z_true = catalog["z"].to_numpy(dtype=np.float64)
    dz = np.abs(z_phot - z_true) / (1 + z_true)
    trust = catalog[trust_column].to_numpy(dtype=np.float64)
    order = np.argsort(trust, kind="stable")
    bins = np.array_split(order, deciles)
    return {
        "trust_column": trust_column,
        "k": k,
        "median_abs_dz": [float(np.median(dz[b])) for b in bins],
        "outlier_fraction": [float(np.mean(dz[b] > 0.05)) for b in bins],
        "trust_upper": [float(trust[b].max()) for b in bins],
    }


def neighbour_agreement(catalog: pd.DataFrame, neighbors: np.ndarray, k: int = 10) -> dict[str, float]:
    """The share of each galaxy's k most similar that share its true type; their median |dz|."""
    kinds = pd.Categorical(catalog["type"]).codes
    z = catalog["z"].to_numpy(dtype=np.float64)
    nb = np.asarray(neighbors[:, :k])
    same = kinds[nb] == kinds[:, None]
    dz = np.abs(z[nb] - z[:, None]) / (1 + z[:, None])
    rng = np.random.default_rng(0)
    shuffled = rng.permutation(len(catalog))[: len(catalog)]
    random_same = float(np.mean(kinds[shuffled] == kinds))
    return {
        "k": k,
        "same_type": float(same.mean()),
        "same_type_random": random_same,
        "median_abs_dz": float(np.median(dz)),
        "median_abs_dz_random": float(np.median(np.abs(z[shuffled] - z) / (1 + z))),
    }


def anomaly_comparison(catalog: pd.DataFrame, spaces: dict[str, np.ndarray], ks: tuple[int, ...] = (10, 20, 50),
                       top: float = 0.01) -> dict[str, dict[str, float]]:
    """`anomaly_precision` of the local outlier factor (cosine, as the atlas scores it) with each k
    in each named space (the representations, their PCA copy, `baselines.pixel_pca`), keyed "space, LOF k=K".
    Says whether a miss lies in the score or in the space it is computed in."""
    result = {}
    for name, x in spaces.items():
        graph = knn_graph(np.asarray(x, dtype=np.float32), max(ks), method="exact")
        for k in ks:
            result[f"{name}, LOF k={k}"] = anomaly_precision(
                catalog, top, local_outlier_factor(graph.indices, graph.similarities, k))
    return result
