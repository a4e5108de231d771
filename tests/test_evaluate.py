"""kNN probes, photo-z metrics, the baselines comparison and the invariance diagnostic."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from galexplore.training.embed import load_encoder
from galexplore.evaluate.baselines import compare_with_baselines, pixel_pca
from galexplore.evaluate.invariance import invariance
from galexplore.scoring.knn import cross_validated_scores, knn_classify, knn_indices, knn_regress
from galexplore.scoring.figures import photoz_metrics
from galexplore.training.trainer import train
from tests.synthetic import tiny_config, tiny_survey


def test_knn_finds_the_known_neighbours_best_first() -> None:
    reference = np.array([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7], [-1.0, 0.0]])
    query = np.array([[1.0, 0.1], [0.0, -1.0]])
    idx = knn_indices(reference, query, k=2)
    assert idx[0].tolist() == [0, 2]
    assert knn_indices(reference, query, k=1)[1].tolist() in ([0], [3])  # equidistant: cos 0 to both
    assert knn_regress(reference, np.array([0.1, 0.2, 0.3, 0.4]), query[:1], k=2)[0] == pytest.approx(0.2)
    assert knn_classify(reference, np.array(["a", "b", "a", "b"]), query[:1], k=3)[0] == "a"


def test_photoz_metrics_closed_forms() -> None:
    z_true = np.full(1000, 0.1)
    dz = np.linspace(-0.03, 0.03, 1000)
    m = photoz_metrics(z_true + dz * 1.1, z_true)
    assert m["bias"] == pytest.approx(0.0, abs=1e-12)
    assert m["outlier_fraction"] == 0.0
    # MAD of a uniform on [-a, a] is a/2
    assert m["sigma_mad"] == pytest.approx(1.4826 * 0.015, rel=1e-2)
    assert photoz_metrics(np.array([0.3]), np.array([0.1]))["outlier_fraction"] == 1.0


def test_cross_validation_predicts_every_labelled_row_from_the_others() -> None:
    reps = np.eye(2)[np.arange(200) % 2]  # two tight clusters
    catalog = pd.DataFrame({"z_spec": np.where(np.arange(200) % 2, 0.3, 0.1),
                            "p_features": np.where(np.arange(200) % 2, 0.9, np.nan)})
    scores = cross_validated_scores(reps, catalog, {"redshift": "z_spec", "morphology": "p_features"}, k=5)
    assert scores["redshift"] == {"sigma_mad": 0.0, "outlier_fraction": 0.0, "bias": 0.0, "n": 200}
    assert scores["morphology"] == {"accuracy": 1.0, "n": 100}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    torch.set_num_threads(1)
    run = tmp_path_factory.mktemp("run")
    result = train(tiny_config(), run, survey=tiny_survey(), device=torch.device("cpu"))
    return load_encoder(result.encoder)


def test_invariance_is_one_for_identical_views_and_bounded(trained) -> None:
    backbone, cfg, normalization = trained
    result = invariance(backbone, cfg, normalization, tiny_survey(), torch.device("cpu"), n=32)
    assert set(result) == {"none", *cfg.augment.order, "all"}
    assert result["none"]["same"] == pytest.approx(1.0, abs=1e-5)
    for sims in result.values():
        assert -1.0 <= sims["different"] <= sims["same"] + 1e-6 <= 1.0 + 1e-5


def test_compare_with_baselines_scores_all_three_on_the_same_rows(trained) -> None:
    backbone, cfg, normalization = trained
    survey = tiny_survey()
    result = compare_with_baselines(backbone, cfg, normalization, survey, torch.device("cpu"))
    assert result["n_labelled"] == len(survey)
    for name in ("trained", "untrained", "pixel_pca"):
        assert result[name]["redshift"]["n"] == result["n_labelled"]  # each predicted once
        assert 0.0 <= result[name]["morphology"]["accuracy"] <= 1.0


def test_pixel_pca_keeps_the_requested_dimension() -> None:
    survey = tiny_survey()
    cfg = tiny_config()
    from galexplore.survey.normalize import Normalization

    norm = Normalization.fit(survey)
    reps = pixel_pca(survey, np.arange(10), norm, cfg.augment.crop_size, dim=8, seed=0)
    assert reps.shape == (10, 8)
