"""Is the trained encoder better than doing nothing? kNN scores against two baselines.

On the same labelled galaxies and the same kNN probe (k=20, cosine, 5-fold cross-validated so
every labelled galaxy is predicted once from the others):
- the trained encoder's representations;
- the same architecture, untrained (random weights: what the architecture alone gives);
- raw pixels (the normalised centre crop) reduced by PCA to the representation's dimension.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from galexplore.config import Config
from galexplore.config.label_kinds import FRACTION, label_columns
from galexplore.training.embed import prepare, represent
from galexplore.scoring.knn import cross_validated_scores
from galexplore.models import build_encoder
from galexplore.survey.normalize import Normalization
from galexplore.survey.base import Survey
from galexplore.training.trainer import MONITOR_K, monitor_split

FOLDS = 5
PCA_FIT_ROWS = 4000  # galaxies (labelled or not) the pixel PCA is fitted on


def pixel_pca(
    survey: Survey, rows: np.ndarray, normalization: Normalization, crop_size: int, dim: int, seed: int
) -> np.ndarray:
    """Raw-pixel representations of `rows`: normalised centre crops projected on `dim` principal axes."""
    rng = np.random.default_rng([seed, 0x9CA])
    fit_rows = np.sort(rng.choice(len(survey), size=min(len(survey), PCA_FIT_ROWS), replace=False))

    def pixels(r: np.ndarray) -> np.ndarray:
        x = prepare(torch.from_numpy(survey.read(r)), normalization, crop_size)
        return x.reshape(len(r), -1).numpy()

    fit = pixels(fit_rows)  # (n, P) float32: 4,000 x 20,480 is 330 MB
    mean = fit.mean(axis=0, dtype=np.float64).astype(np.float32)
    fit -= mean
    # the principal axes from the n x n Gram matrix (n << P): no P x P or n x P float64 copies
    values, vectors = np.linalg.eigh((fit @ fit.T).astype(np.float64))
    order = np.argsort(values)[::-1]
    values, vectors = values[order], vectors[:, order]
    keep = np.flatnonzero(values > values[0] * 1e-9)[:dim]  # axes with variance (n rows span n - 1)
    axes = ((vectors[:, keep] / np.sqrt(values[keep])).T.astype(np.float32) @ fit)  # (dim, P), unit rows
    out = np.empty((len(rows), len(keep)), dtype=np.float32)
    for start in range(0, len(rows), 1024):
        part = rows[start : start + 1024]
        out[start : start + len(part)] = (pixels(part) - mean) @ axes.T
    return out


def compare_with_baselines(
    backbone: nn.Module,
    config: Config,
    normalization: Normalization,
    survey: Survey,
    device: torch.device,
    n_labelled: int = 3000,
) -> dict[str, Any]:
    """kNN redshift and morphology scores of the encoder and of both baselines: the config's
    redshift column, and its first fraction or flag column (`config.label_kinds`) as "morphology"."""
    rows, _ = monitor_split(survey.catalog, config.seed, n=n_labelled, config=config)
    catalog = survey.catalog.iloc[rows].reset_index(drop=True)
    fractions = [column for column, kind in label_columns(config, catalog) if kind == FRACTION]
    columns = {"redshift": config.probes.redshift, **({"morphology": fractions[0]} if fractions else {})}
    crop = config.augment.crop_size
    trained = represent(backbone, survey, rows, normalization, crop, device)
    torch.manual_seed(config.seed)
    untrained_net = build_encoder(config.model, in_channels=survey.shape[0]).to(device)
    untrained = represent(untrained_net, survey, rows, normalization, crop, device)
    pca = pixel_pca(survey, rows, normalization, crop, trained.shape[1], config.seed)
    return {
        "n_labelled": int(len(rows)),
        "k": MONITOR_K,
        "folds": FOLDS,
        **{
            name: cross_validated_scores(reps, catalog, columns, MONITOR_K, FOLDS, config.seed)
            for name, reps in (("trained", trained), ("untrained", untrained), ("pixel_pca", pca))
        },
    }
