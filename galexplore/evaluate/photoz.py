"""Photometric redshift as classes: Hayat et al. (2021)'s 180 bins over 0 <= z < 0.4.

A redshift probe is a softmax over `Z_BINS` bins; this module holds that encoding: the bin edges,
a redshift's bin, the Gaussian soft target around it (a neighbouring bin is a near miss, not a
wrong class) and the pdf read back as a mean and a width. Shared by the linear probe
(`galexplore.evaluate.linear_probe`) and fine-tuning (`galexplore.evaluate.finetune`).
"""

from __future__ import annotations

import numpy as np

#: redshift classes and their range (Hayat et al. 2021: 180 bins over 0 < z < 0.4)
Z_BINS = 180
Z_MAX = 0.4
#: width (in bins) of the Gaussian soft target around the true bin; 0 is a hard one-hot target
Z_SMOOTHING_BINS = 1.0


def redshift_bins(n_bins: int = Z_BINS, z_max: float = Z_MAX) -> np.ndarray:
    """Bin edges (n_bins + 1,) float64 of the redshift classes, 0 to z_max.

    >>> redshift_bins(4, 0.4).round(2).tolist()
    [0.0, 0.1, 0.2, 0.3, 0.4]
    """
    if n_bins < 1 or not z_max > 0:
        raise ValueError(f"need n_bins >= 1 and z_max > 0, got {n_bins} and {z_max}")
    return np.linspace(0.0, z_max, n_bins + 1)


def encode_redshift(z: np.ndarray, n_bins: int = Z_BINS, z_max: float = Z_MAX) -> np.ndarray:
    """Bin index (N,) int64 of each redshift; z >= z_max goes to the last bin.

    >>> encode_redshift(np.array([0.0, 0.05, 0.39, 0.7]), 4, 0.4).tolist()
    [0, 0, 3, 3]
    """
    z = np.asarray(z, dtype=np.float64)
    bad = ~np.isfinite(z) | (z < 0)
    if bad.any():
        raise ValueError(f"redshifts must be finite and >= 0; {int(bad.sum())} are not (first: {z[bad][0]})")
    return np.minimum(np.floor(z / (z_max / n_bins)), n_bins - 1).astype(np.int64)


def decode_redshift(pdf: np.ndarray, n_bins: int = Z_BINS, z_max: float = Z_MAX) -> tuple[np.ndarray, np.ndarray]:
    """(z_phot, z_width): each row's pdf-weighted mean of the bin centres and the pdf's standard deviation.

    `pdf` is (N, n_bins), non-negative; rows are normalised here.

    >>> z, w = decode_redshift(np.array([[0.0, 1.0, 1.0, 0.0]]), 4, 0.4)
    >>> round(float(z[0]), 3), round(float(w[0]), 3)
    (0.2, 0.05)
    """
    pdf = np.asarray(pdf, dtype=np.float64)
    if pdf.ndim != 2 or pdf.shape[1] != n_bins:
        raise ValueError(f"pdf must be (N, {n_bins}), got {pdf.shape}")
    edges = redshift_bins(n_bins, z_max)
    centres = 0.5 * (edges[:-1] + edges[1:])  # (n_bins,)
    pdf = pdf / pdf.sum(axis=1, keepdims=True)
    mean = pdf @ centres  # (N,)
    var = np.einsum("nb,nb->n", pdf, (centres[None, :] - mean[:, None]) ** 2)
    return mean, np.sqrt(np.maximum(var, 0.0))


def smoothed_targets(bins: np.ndarray, n_bins: int, width: float) -> np.ndarray:
    """Target rows (N, n_bins): a Gaussian of `width` bins around each true bin, normalised; one-hot at 0.

    >>> smoothed_targets(np.array([0]), 3, 0.0).tolist()
    [[1.0, 0.0, 0.0]]
    """
    if width <= 0:
        return np.eye(n_bins)[bins]
    offset = np.arange(n_bins)[None, :] - np.asarray(bins)[:, None]  # (N, n_bins)
    t = np.exp(-0.5 * (offset / width) ** 2)
    return t / t.sum(axis=1, keepdims=True)
