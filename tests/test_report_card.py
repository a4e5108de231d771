"""The report card's protocol on toys whose answers are known by hand, the pixel baseline, and
the health diagnostics on a collapsed toy (the atlas-level card is tested on the tiny atlas in
tests/test_api.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from galexplore.config import config_from_dict
from galexplore.training.embed import prepare_cutouts
from galexplore.scoring import card
from galexplore.scoring.atlas_card import label_columns, labelled, report_card, search_agreement, summary_lines
from galexplore.evaluate.baselines import pixel_pca
from galexplore.scoring.health import effective_rank, flags, health
from galexplore.survey.normalize import Normalization
from galexplore.survey.memory import ArraySurvey


def _on_circle(degrees) -> np.ndarray:
    angles = np.radians(np.asarray(degrees, dtype=np.float64))
    return np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)


def test_knn_and_precision_at_10_of_a_toy_counted_by_hand() -> None:
    # ten A galaxies at 0-9 degrees, ten B at 80-89, and one A at 84.5 among the Bs
    x = _on_circle([*range(10), *range(80, 90), 84.5])
    y = np.array(["A"] * 10 + ["B"] * 10 + ["A"])
    scores = card.categorical_scores(x, y, k=3, linear=False)
    # every galaxy's 3 nearest of the other folds are its cluster's: only the stray A is missed
    assert scores["knn"]["accuracy"] == pytest.approx(20 / 21)
    assert scores["knn"]["balanced_accuracy"] == pytest.approx((10 / 11 + 1) / 2)
    # an A of the cluster has its 9 fellows and the B at 80 degrees in its 10 most similar; the
    # stray A has ten Bs; a B has nine Bs and the stray A
    assert scores["precision_at_10"] == pytest.approx({"A": (10 * 0.9 + 0) / 11, "B": 0.9})
    assert scores["classes"] == {"A": 11, "B": 10} and scores["dropped"] == []


def test_a_class_of_one_is_dropped_and_balanced_accuracy_is_not_the_majority_share() -> None:
    x = _on_circle([*range(25), 2.5, 7.5, 12.5, 17.5, 22.5, 200])  # each spiral between two ellipticals
    y = np.array(["E"] * 25 + ["S"] * 5 + ["M"])
    scores = card.categorical_scores(x, y, k=5, linear=False)
    assert scores["dropped"] == ["M"] and scores["n"] == 30
    # all five spirals sit among 25 ellipticals: a majority vote calls every galaxy E
    assert scores["knn"]["accuracy"] == pytest.approx(25 / 30)
    assert scores["knn"]["balanced_accuracy"] == pytest.approx(0.5)


def test_redshift_and_vote_fraction_scores_of_separated_toys() -> None:
    rng = np.random.default_rng(0)
    z = rng.uniform(0.02, 0.3, 200)
    x = _on_circle(z * 300)  # redshift is the angle: the nearest galaxies share it
    result = card.redshift_scores(x, z, k=5)
    assert result["knn"]["sigma_mad"] < 0.005 and result["knn"]["outlier_fraction"] == 0.0
    p = (z > 0.15).astype(float)
    assert card.fraction_scores(x, p, k=5)["knn"]["auc"] > 0.99
    assert card.fraction_scores(rng.normal(size=(200, 2)), p, k=5)["knn"]["auc"] < 0.7


def test_pixel_pca_keeps_the_distances_of_the_normalised_crops() -> None:
    rng = np.random.default_rng(1)
    images = rng.normal(0, 1, (30, 2, 16, 16)).astype(np.float32)
    survey = ArraySurvey(images, pd.DataFrame({"ra": np.zeros(30), "dec": np.zeros(30)}), bands=["g", "r"])
    normalization = Normalization.fit(survey, seed=0)
    got = pixel_pca(survey, np.arange(30), normalization, 6, 128, seed=0)
    flat = prepare_cutouts(images, normalization, 6).reshape(30, -1).astype(np.float64)
    # 30 galaxies span 29 axes about their mean: the projection on all of them keeps every distance
    assert got.shape == (30, 29)
    want = np.linalg.norm(flat[:, None] - flat[None], axis=2)
    np.testing.assert_allclose(np.linalg.norm(got[:, None] - got[None], axis=2), want, rtol=1e-4, atol=1e-4)


def _halves_survey(n: int = 40) -> tuple[ArraySurvey, pd.DataFrame]:
    """Class L galaxies are bright on the left half, R on the right: pixels tell them apart."""
    rng = np.random.default_rng(2)
    cls = np.array(["L", "R"] * (n // 2))
    images = rng.normal(0, 0.05, (n, 1, 16, 16)).astype(np.float32)
    images[cls == "L", :, :, :8] += 5.0
    images[cls == "R", :, :, 8:] += 5.0
    catalog = pd.DataFrame({"ra": np.zeros(n), "dec": np.zeros(n), "cls": cls})
    catalog.loc[[0, 1], "cls"] = ["", "unknown"]  # no label
    return ArraySurvey(images, catalog, bands=["r"]), catalog


def test_the_card_puts_the_encoder_beside_pixels_on_the_same_galaxies() -> None:
    survey, catalog = _halves_survey()
    config = config_from_dict({"probes": {"morphology": [], "categorical": ["cls"], "unlabelled": ["unknown"]}})
    assert label_columns(config, catalog) == [("cls", "categorical")]
    normalization = Normalization.fit(survey, seed=0)
    asked: list[np.ndarray] = []

    def pixels(rows: np.ndarray) -> np.ndarray:
        asked.append(rows)
        return pixel_pca(survey, rows, normalization, 16, 128, seed=0)

    noise = np.random.default_rng(3).normal(size=(len(catalog), 16)).astype(np.float32)  # an encoder that learnt nothing
    result = report_card(config, catalog, noise, baselines={"pixels": pixels})
    entry = result["labels"]["cls"]
    assert entry["n"] == 38 and asked[0].tolist() == list(range(2, 40))  # the unlabelled two left out
    assert result["spaces"] == ["encoder", "pixels"]
    assert entry["pixels"]["knn"]["balanced_accuracy"] == 1.0 and entry["pixels"]["precision_at_10"] == {"L": 1.0, "R": 1.0}
    assert entry["encoder"]["knn"]["balanced_accuracy"] < 0.8
    verdict = result["verdict"]["cls"]
    assert verdict["metric"] == "balanced_accuracy" and verdict["vs_pixels"] < 0.8
    assert any(line.startswith("cls: kNN balanced accuracy") and "worse than pixels (1.000" in line
               for line in summary_lines(result))


def test_the_card_samples_at_most_card_rows_and_says_when_a_label_is_too_thin() -> None:
    survey, catalog = _halves_survey()
    catalog["z_spec"] = np.where(np.arange(40) < 6, 0.1, np.nan)  # six redshifts: too few for 5 folds
    config = config_from_dict({"card": {"rows": 20}, "probes": {"morphology": [], "categorical": ["cls"]}})
    result = report_card(config, catalog, np.random.default_rng(0).normal(size=(40, 4)))
    assert result["protocol"]["rows"] == 20 and result["labels"]["cls"]["n"] <= 20
    assert result["labels"]["z_spec"]["note"].endswith("too few to score")
    assert "z_spec" not in result["verdict"]


def test_labelled_rows_of_each_kind() -> None:
    assert labelled(pd.Series([0.1, np.nan, "x", 2.0]), "redshift").tolist() == [True, False, False, True]
    assert labelled(pd.Series([1, 2, None]), "categorical").tolist() == [True, True, False]


def test_a_collapsed_toy_is_flagged_and_a_healthy_one_is_not() -> None:
    rng = np.random.default_rng(4)
    healthy = rng.normal(size=(3000, 64))
    figures = health(healthy)
    assert figures["flags"] == [] and figures["effective_rank"] > 50
    assert abs(figures["random_cosine"]["mean"]) < 0.05 and figures["uniformity"] < -3.5
    # every galaxy near one direction, varying along two: what pooled ReLU features looked like
    collapsed = 5.0 + rng.normal(size=(3000, 2)) @ rng.normal(size=(2, 64)) * 0.3
    found = health(collapsed)
    assert found["effective_rank"] < 3 and found["random_cosine"]["mean"] > 0.9
    assert len(found["flags"]) == 3 and all(f.startswith("collapsed:") for f in found["flags"])
    assert effective_rank(np.zeros((10, 4))) == 0.0
    # a small sample spans few directions: its rank is not held to the full threshold
    assert flags({"dim": 64, "n": 12, "effective_rank": 6.5, "uniformity": -3.0, "random_cosine": {"mean": 0.0}}) == []


def test_search_agreement_of_a_reduction_that_keeps_or_loses_the_neighbours() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(400, 16))
    assert search_agreement(x, x * 3.0) == 1.0  # cosine neighbours do not see a scale
    # data of rank 4 (and a little noise) projected on its top 4 axes keeps nearly every neighbour
    data = rng.normal(size=(400, 4)) @ rng.normal(size=(4, 16)) + 1e-3 * x
    axes = np.linalg.svd(data, full_matrices=False)[2][:4]
    assert search_agreement(data, data @ axes.T) > 0.95
    assert search_agreement(x, x[:, :2]) < 0.3
