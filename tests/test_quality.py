"""Atlas quality against a simulation's truth (galexplore.evaluate.quality): the anomaly comparison."""

from __future__ import annotations

import numpy as np
import pandas as pd

from galexplore.evaluate.quality import anomaly_comparison, anomaly_precision


def planted(n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Two tight clusters of unit vectors and 4 rows pointing elsewhere, flagged as the anomalies."""
    rng = np.random.default_rng(seed)
    centres = np.eye(8)[:2]
    x = centres[rng.integers(0, 2, n)] + 0.05 * rng.standard_normal((n, 8))
    odd = rng.choice(n, 4, replace=False)
    x[odd] = np.eye(8)[rng.integers(2, 8, 4)] + 0.05 * rng.standard_normal((4, 8))
    truth = np.zeros(n, dtype=bool)
    truth[odd] = True
    return pd.DataFrame({"is_anomaly": truth, "anomaly_score": 0.0}), x.astype(np.float32)


def test_precision_of_a_given_score_counts_the_injected_in_its_top():
    catalog, _ = planted()
    score = catalog["is_anomaly"].to_numpy(dtype=float)
    assert anomaly_precision(catalog, 0.01, score) == {"top_fraction": 0.01, "n_top": 4, "precision": 1.0,
                                                       "recall": 1.0, "base_rate": 0.01}
    assert anomaly_precision(catalog, 0.01, -score)["precision"] == 0.0
    catalog["has_neighbour"] = np.arange(len(catalog)) % 4 == 0
    found = anomaly_precision(catalog, 0.25, np.arange(len(catalog)) % 4 == 0)
    assert found["top_with_neighbour"] == 1.0 and found["all_with_neighbour"] == 0.25


def test_the_comparison_finds_planted_outliers_in_their_space_and_not_in_a_shuffled_one():
    catalog, x = planted()
    shuffled = x[np.random.default_rng(1).permutation(len(x))]  # the outliers' rows now hold ordinary points
    result = anomaly_comparison(catalog, {"planted": x, "shuffled": shuffled}, ks=(5, 10))
    assert set(result) == {"planted, LOF k=5", "planted, LOF k=10", "shuffled, LOF k=5", "shuffled, LOF k=10"}
    assert result["planted, LOF k=5"]["precision"] == 1.0
    assert result["shuffled, LOF k=5"]["precision"] < 0.5
