"""Trust validation: photo-z and morphology error by trust decile, and the outlier ROC AUC."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from galexplore.evaluate.trust_validation import (
    morphology_error_by_trust,
    photoz_error_by_trust,
    trust_bins,
    validate_trust,
)

N = 5000


@pytest.fixture(scope="module")
def catalog() -> pd.DataFrame:
    """A simulated-survey-like catalog whose prediction errors grow steeply as trust falls; a
    fifth of the galaxies are labelled (z_spec, votes) and their predictions are near-perfect."""
    rng = np.random.default_rng(3)
    trust = rng.uniform(0, 1, N)
    z = rng.uniform(0.02, 0.4, N)
    scale = 0.005 + 0.3 * (1 - trust) ** 3  # |dz| scale: 0.305 at trust 0, 0.005 at trust 1
    z_phot = z + (1 + z) * scale * rng.standard_normal(N)
    labelled = rng.uniform(size=N) < 0.2
    p = rng.uniform(0, 1, N)
    p_pred = np.clip(p + 0.5 * (1 - trust) ** 2 * rng.standard_normal(N), 0, 1)
    return pd.DataFrame({
        "z": z, "z_spec": np.where(labelled, z + rng.normal(0, 1e-4, N), np.nan), "z_phot": z_phot,
        "trust_spec_z": trust, "trust_morphology": trust,
        "p_features": np.where(labelled, p, np.nan), "p_features_pred": p_pred,
    })


def test_photoz_error_rises_as_trust_falls_and_outlier_auc_is_high(catalog):
    result = photoz_error_by_trust(catalog)
    assert result["available"] and result["reference"] == "z"
    # truth is used on the unlabelled galaxies only: labelled ones' z_phot is in-sample
    assert result["n"] == int(catalog["z_spec"].isna().sum())
    bins = result["bins"]
    assert len(bins) == 10 and sum(b["n"] for b in bins) == result["n"]
    medians = [b["median_error"] for b in bins]  # lowest trust first
    assert all(a > b for a, b in zip(medians, medians[1:])), medians
    assert medians[0] > 10 * medians[-1]
    assert result["auc"]["catastrophic"] > 0.9
    assert result["auc"]["outlier"] > 0.9
    assert bins[0]["catastrophic_fraction"] > 0.3 and bins[-1]["catastrophic_fraction"] == 0.0
    # bins are ordered, contiguous ranges of trust
    assert all(a["trust_max"] <= b["trust_min"] for a, b in zip(bins, bins[1:]))


def test_verdict_reports_the_numbers(catalog):
    result = validate_trust(catalog)
    line = result["verdict"]
    assert line.startswith("low trust marks bad photo-z: AUC ")
    assert f"{result['photoz']['auc']['catastrophic']:.2f}" in line
    assert f"{result['photoz']['bins'][0]['median_error']:.3f}" in line
    assert "\n" not in line


def test_without_truth_falls_back_to_z_spec_and_says_so(catalog):
    result = photoz_error_by_trust(catalog.drop(columns="z"))
    assert result["available"] and result["reference"] == "z_spec"
    assert result["n"] == int(catalog["z_spec"].notna().sum())
    assert "z_spec" in result["note"] and "in-sample" in result["note"]
    assert "vs z_spec" in validate_trust(catalog.drop(columns="z"))["verdict"]


def test_random_trust_is_reported_as_not_marking_errors(catalog):
    shuffled = catalog.assign(trust_spec_z=np.random.default_rng(0).permutation(catalog["trust_spec_z"].to_numpy()))
    result = validate_trust(shuffled)
    assert abs(result["photoz"]["auc"]["catastrophic"] - 0.5) < 0.06
    assert result["verdict"].startswith("trust does not mark bad photo-z")


def test_tied_trust_values_share_one_bin():
    trust = np.r_[np.zeros(700), np.linspace(0.01, 1, 300)]
    bins = trust_bins(trust, 10)
    assert set(bins[:700]) == {0} and 0 not in set(bins[700:])
    assert bins.max() == 3  # 70% tied at zero, then the top three deciles
    assert np.all(np.diff(bins[700:]) >= 0)


def test_morphology_error_rises_as_trust_falls(catalog):
    result = morphology_error_by_trust(catalog)
    assert result["available"] and result["n"] == int(catalog["p_features"].notna().sum())
    medians = [b["median_error"] for b in result["bins"]]
    assert medians[0] > 5 * medians[-1]
    assert result["bins"][0]["disagree_fraction"] > result["bins"][-1]["disagree_fraction"]
    assert "vote fraction" in result["note"] and "simulated" in result["note"]


@pytest.mark.parametrize("drop, what, word", [
    (["z_phot"], "photoz", "z_phot"),
    (["trust_spec_z"], "photoz", "trust_spec_z"),
    (["p_features_pred"], "morphology", "p_features_pred"),
    (["p_features"], "morphology", "p_features"),
])
def test_absent_columns_give_a_note_not_an_error(catalog, drop, what, word):
    result = validate_trust(catalog.drop(columns=drop))
    assert result[what]["available"] is False and word in result[what]["note"]
    if what == "photoz":
        assert result["verdict"].startswith("trust not validated: ")


def test_no_redshift_to_compare_with_gives_a_note(catalog):
    result = photoz_error_by_trust(catalog.drop(columns=["z", "z_spec"]))
    assert result["available"] is False and "too few" in result["note"]


def test_out_of_fold_labelled_predictions_are_scored_and_said_to_be_held_out(catalog):
    scheme = {"z_spec": "5-fold out-of-fold", "p_features": "5-fold out-of-fold"}
    with_truth = photoz_error_by_trust(catalog, labelled=scheme)
    assert with_truth["n"] == len(catalog) and "5-fold out-of-fold" in with_truth["note"]
    without_truth = photoz_error_by_trust(catalog.drop(columns="z"), labelled=scheme)
    assert "in-sample" not in without_truth["note"] and "out-of-fold" in without_truth["note"]
    morphology = morphology_error_by_trust(catalog, labelled=scheme)
    assert "in-sample" not in morphology["note"] and "out-of-fold" in morphology["note"]
    assert "in-sample" in morphology_error_by_trust(catalog)["note"]  # an older atlas says what it is
