"""Photometric-redshift and classification metrics, as the photo-z literature defines them."""

from __future__ import annotations

import numpy as np

#: |dz| above this is a catastrophic outlier (Hayat et al. 2021; Pasquet et al. 2019)
OUTLIER_DZ = 0.05


def photoz_metrics(z_pred: np.ndarray, z_true: np.ndarray) -> dict[str, float]:
    """sigma_MAD, outlier fraction eta and bias of dz = (z_pred - z_true) / (1 + z_true).

    >>> m = photoz_metrics(np.array([0.1, 0.2, 0.3]), np.array([0.1, 0.2, 0.4]))
    >>> round(m["outlier_fraction"], 3), round(m["sigma_mad"], 3)
    (0.333, 0.0)
    """
    z_pred, z_true = np.asarray(z_pred, np.float64), np.asarray(z_true, np.float64)
    dz = (z_pred - z_true) / (1.0 + z_true)
    return {
        "sigma_mad": float(1.4826 * np.median(np.abs(dz - np.median(dz)))),
        "outlier_fraction": float(np.mean(np.abs(dz) > OUTLIER_DZ)),
        "bias": float(np.mean(dz)),
        "n": int(len(dz)),
    }


def accuracy(pred: np.ndarray, truth: np.ndarray) -> float:
    """Share of equal entries."""
    return float(np.mean(np.asarray(pred) == np.asarray(truth)))


def balanced_accuracy(pred: np.ndarray, truth: np.ndarray) -> float:
    """The mean over the true classes of each class's recall: a predictor that calls everything
    the commonest class scores 1 / n_classes, whatever that class's share.

    >>> balanced_accuracy(np.array([0, 0, 0, 0]), np.array([0, 0, 0, 1]))
    0.5
    """
    pred, truth = np.asarray(pred), np.asarray(truth)
    return float(np.mean([np.mean(pred[truth == c] == c) for c in np.unique(truth)]))
