"""Linear probes: redshift binning, the probes on toys with known answers, reproducibility, evaluation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from astropy.stats import mad_std

from galexplore.scoring.figures import photoz_metrics
from galexplore.evaluate.probes import (
    CROSS_FIT_FOLDS,
    Z_BINS,
    Z_MAX,
    LinearProbe,
    cross_fit_column,
    decode_redshift,
    encode_redshift,
    evaluate_probes,
    fit_morphology_probe,
    fit_redshift_probe,
    fold_ids,
    labelled_predictions,
    morphology_metrics,
    predict_all,
    redshift_bins,
    split_rows,
    sweep_rows,
)

BIN_WIDTH = Z_MAX / Z_BINS


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture()
def toy_redshift() -> tuple[np.ndarray, np.ndarray]:
    """x (1200, 8) Gaussian; z a linear function of x[:, 0] and x[:, 1] on about 0.05..0.35."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1200, 8)).astype(np.float32)
    z = np.clip(0.2 + 0.04 * x[:, 0] - 0.02 * x[:, 1], 0.01, 0.39)
    return x, z


@pytest.fixture()
def catalog() -> tuple[np.ndarray, pd.DataFrame]:
    """300 rows: 200 with z_spec, 150 with p_features, only 10 with p_edge_on (too few to probe)."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 16)).astype(np.float32)
    z = np.clip(0.15 + 0.05 * x[:, 0], 0.0, 0.39)
    z[200:] = np.nan
    p = 1.0 / (1.0 + np.exp(-3.0 * x[:, 1]))
    p[150:] = np.nan
    edge = np.full(300, np.nan)
    edge[:10] = 0.5
    return x, pd.DataFrame({"z_spec": z, "p_features": p, "p_edge_on": edge})


def test_photoz_metrics_match_hand_values_and_astropy_mad_std() -> None:
    z_spec = np.array([0.05, 0.1, 0.2, 0.3, 0.35])
    dz = np.array([-0.1, -0.01, 0.0, 0.02, 0.06])
    m = photoz_metrics(z_spec + dz * (1 + z_spec), z_spec)
    # median dz 0; |dz| sorted 0, 0.01, 0.02, 0.06, 0.1 -> MAD 0.02; |dz| > 0.05 twice; mean -0.03 / 5
    assert m["sigma_mad"] == pytest.approx(1.4826 * 0.02, rel=1e-9)
    assert m["outlier_fraction"] == pytest.approx(0.4)
    assert m["bias"] == pytest.approx(-0.006, abs=1e-12)
    rng = np.random.default_rng(0)
    z_spec = rng.uniform(0.0, 0.4, 1001)
    dz = rng.standard_t(3, 1001) * 0.02
    m = photoz_metrics(z_spec + dz * (1 + z_spec), z_spec)
    # 1.4826 vs astropy's 1 / Phi^-1(3/4) = 1.482602...: equal to 2e-6
    assert m["sigma_mad"] == pytest.approx(mad_std(dz), rel=1e-5)


def test_redshift_bins_cover_zero_to_z_max() -> None:
    edges = redshift_bins()
    assert edges.shape == (Z_BINS + 1,)
    assert edges[0] == 0.0 and edges[-1] == pytest.approx(Z_MAX)
    assert np.diff(edges) == pytest.approx(np.full(Z_BINS, BIN_WIDTH))


def test_one_hot_pdf_decodes_within_one_bin_of_the_encoded_redshift() -> None:
    z = np.random.default_rng(3).uniform(0.0, Z_MAX, 2000)
    pdf = np.eye(Z_BINS)[encode_redshift(z)]
    z_phot, width = decode_redshift(pdf)
    assert np.max(np.abs(z_phot - z)) <= BIN_WIDTH / 2 + 1e-12  # the bin centre
    assert np.all(width == 0.0)


def test_encode_sends_high_redshifts_to_the_last_bin_and_rejects_negative_ones() -> None:
    assert encode_redshift(np.array([Z_MAX, 0.5, 3.0, Z_MAX - 1e-9])).tolist() == [Z_BINS - 1] * 4
    assert encode_redshift(np.array([0.0])).tolist() == [0]
    with pytest.raises(ValueError, match=">= 0"):
        encode_redshift(np.array([0.1, -0.01]))
    with pytest.raises(ValueError, match="finite"):
        encode_redshift(np.array([np.nan]))


def test_uniform_pdf_decodes_to_the_middle_with_the_discrete_uniform_width() -> None:
    z_phot, width = decode_redshift(np.ones((1, Z_BINS)))
    assert z_phot[0] == pytest.approx(Z_MAX / 2)
    assert width[0] == pytest.approx(BIN_WIDTH * math.sqrt((Z_BINS**2 - 1) / 12))


def test_morphology_probe_separates_a_linearly_separable_toy_exactly() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(200, 5)).astype(np.float32) * np.array([1, 1, 1, 1, 100], np.float32)
    margin = x[:, 0] + 0.5 * x[:, 1]
    keep = np.abs(margin) > 0.2  # a margin, so "exactly" is well posed
    x, p = x[keep], np.where(margin[keep] > 0, 0.9, 0.1)  # soft fractions on either side
    probe = fit_morphology_probe(x, p)
    pred = probe.predict(x)
    assert pred.shape == (len(x),) and np.all((pred > 0) & (pred < 1))
    m = morphology_metrics(pred, p)
    assert m["accuracy"] == 1.0 and m["roc_auc"] == 1.0


def test_morphology_probe_rejects_fractions_outside_zero_one() -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fit_morphology_probe(np.zeros((3, 2), np.float32), np.array([0.1, 1.2, 0.5]))


def test_redshift_probe_learns_a_linear_toy(toy_redshift) -> None:
    x, z = toy_redshift
    probe = fit_redshift_probe(x[:900], z[:900])
    z_phot, width = probe.predict(x[900:])
    m = photoz_metrics(z_phot, z[900:])
    assert m["sigma_mad"] < 0.01  # 0.0074 here; the toy's z spread is 0.045
    assert m["outlier_fraction"] < 0.05
    assert abs(m["bias"]) < 0.005
    assert np.all((width > 0) & (width < 0.05))


def test_same_seed_gives_bitwise_identical_predictions(toy_redshift) -> None:
    x, z = toy_redshift
    a = fit_redshift_probe(x, z, seed=7, epochs=50).predict(x)
    b = fit_redshift_probe(x, z, seed=7, epochs=50).predict(x)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    p = 1.0 / (1.0 + np.exp(-x[:, 2]))
    assert np.array_equal(fit_morphology_probe(x, p, seed=3).predict(x), fit_morphology_probe(x, p, seed=3).predict(x))


def test_prediction_in_blocks_equals_one_block_in_the_same_row_order(toy_redshift, monkeypatch) -> None:
    import galexplore.evaluate.linear_probe as linear_probe

    x, z = toy_redshift
    redshift, morphology = fit_redshift_probe(x, z, epochs=30), fit_morphology_probe(x, (x[:, 0] > 0) * 0.8 + 0.1, epochs=30)
    whole_z, whole_p = redshift.predict(x), morphology.predict(x)
    monkeypatch.setattr(linear_probe, "PREDICT_ROWS", 7)  # blocks that do not divide the rows
    blocked_z, blocked_p = redshift.predict(x), morphology.predict(x)
    # equal to rounding: the matrix product's summation order may follow the block's shape
    assert all(np.allclose(a, b, rtol=1e-12, atol=1e-15) for a, b in zip(whole_z, blocked_z, strict=True))
    assert np.allclose(whole_p, blocked_p, rtol=1e-12, atol=1e-15)
    empty_z, empty_width = redshift.predict(x[:0])
    assert empty_z.shape == empty_width.shape == (0,) and morphology.predict(x[:0]).shape == (0,)


def test_arrays_round_trip_through_npz_gives_identical_predictions(toy_redshift, tmp_path) -> None:
    x, z = toy_redshift
    for probe in (fit_redshift_probe(x, z, epochs=30), fit_morphology_probe(x, (x[:, 0] > 0) * 0.8 + 0.1, epochs=30)):
        np.savez(tmp_path / "probe.npz", **probe.to_arrays())
        with np.load(tmp_path / "probe.npz", allow_pickle=False) as f:
            loaded = LinearProbe.from_arrays(dict(f))
        assert loaded.kind == probe.kind
        before, after = probe.predict(x), loaded.predict(x)
        assert all(np.array_equal(b, a) for b, a in zip(np.atleast_2d(before), np.atleast_2d(after), strict=True))
    with pytest.raises(ValueError, match="lack"):
        LinearProbe.from_arrays({"kind": np.array("redshift")})


def test_morphology_metrics_closed_forms() -> None:
    m = morphology_metrics(np.array([0.9, 0.4, 0.6, 0.1]), np.array([0.8, 0.7, 0.2, 0.1]))
    # thresholded: T F T F vs T T F F -> 2 of 4; ranking: positives 0.9, 0.4 vs negatives 0.6, 0.1 -> 3 of 4 pairs
    assert m == {"accuracy": 0.5, "roc_auc": 0.75, "n": 4}
    assert morphology_metrics(np.array([0.9, 0.1]), np.array([0.8, 0.9]))["roc_auc"] is None


def test_split_rows_is_a_seeded_partition() -> None:
    rows = np.arange(100, 200)
    train, test = split_rows(rows, 0.3, seed=5)
    assert len(test) == 30 and len(train) == 70
    assert np.array_equal(np.sort(np.concatenate([train, test])), rows)
    assert np.array_equal(split_rows(rows, 0.3, seed=5)[1], test)
    assert not np.array_equal(split_rows(rows, 0.3, seed=6)[1], test)


def test_evaluate_probes_scores_each_kind_with_enough_labels(catalog) -> None:
    x, cat = catalog
    r = evaluate_probes(x, cat, seed=0)
    assert set(r) == {"seed", "test_fraction", "z_spec", "p_features"}  # p_edge_on: 10 rows < 20
    assert r["z_spec"]["n_train"] == 140 and r["z_spec"]["n_test"] == 60
    assert set(r["z_spec"]["metrics"]) == {"sigma_mad", "outlier_fraction", "bias", "n"}
    assert set(r["p_features"]["metrics"]) == {"accuracy", "roc_auc", "n"}
    values = [*r["z_spec"]["metrics"].values(), *r["p_features"]["metrics"].values()]
    assert all(math.isfinite(v) for v in values)
    assert r["z_spec"]["metrics"]["sigma_mad"] < 0.02  # z is linear in x[:, 0]
    assert r["p_features"]["metrics"]["roc_auc"] > 0.9  # p is monotone in x[:, 1]
    import json

    json.dumps(r, allow_nan=False)  # JSON-able, strictly


def test_label_sweep_is_reproducible_and_grows_with_labels(catalog) -> None:
    x, cat = catalog
    a = evaluate_probes(x, cat, seed=1, label_counts=[20, 60, 1000])
    b = evaluate_probes(x, cat, seed=1, label_counts=[20, 60, 1000])
    assert a == b
    sweep = a["z_spec"]["sweep"]
    assert [s["n_train"] for s in sweep] == [20, 60]  # 1000 > 140 train rows: skipped
    assert sweep[1]["metrics"]["sigma_mad"] < sweep[0]["metrics"]["sigma_mad"]


def test_predict_all_predicts_every_row_of_the_kinds_with_enough_labels(catalog) -> None:
    x, cat = catalog
    out = predict_all(x, cat)
    assert set(out) == {"z_phot", "z_phot_width", "p_features_pred"}
    assert all(v.shape == (300,) and np.all(np.isfinite(v)) for v in out.values())
    unlabelled = np.isnan(cat["z_spec"].to_numpy())
    z_true = np.clip(0.15 + 0.05 * x[unlabelled, 0], 0, 0.39)
    assert photoz_metrics(out["z_phot"][unlabelled], z_true)["sigma_mad"] < 0.02
    with pytest.raises(ValueError, match="rows"):
        predict_all(x[:10], cat)


def test_labelled_rows_are_predicted_out_of_fold_and_unlabelled_ones_by_the_full_fit(catalog) -> None:
    x, cat = catalog
    p = cat["p_features"].to_numpy()
    rows = np.flatnonzero(np.isfinite(p))  # 150 labelled rows
    out = predict_all(x, cat, seed=3)
    full = fit_morphology_probe(x[rows], p[rows], seed=3).predict(x)
    unlabelled = np.setdiff1d(np.arange(len(x)), rows)
    np.testing.assert_array_equal(out["p_features_pred"][unlabelled], full[unlabelled])
    fold = fold_ids(len(rows), CROSS_FIT_FOLDS, seed=3)
    assert np.bincount(fold).tolist() == [30] * 5
    for k in (0, 4):  # each fold's rows: the probe fitted without that fold, not the full fit
        held, kept = rows[fold == k], rows[fold != k]
        without = fit_morphology_probe(x[kept], p[kept], seed=3).predict(x[held])
        np.testing.assert_allclose(out["p_features_pred"][held], without, rtol=1e-12)
        assert np.min(np.abs(out["p_features_pred"][held] - full[held])) > 1e-6
    # redshift too: the out-of-fold z_phot of the labelled rows err more than the in-sample fit's
    z = cat["z_spec"].to_numpy()
    labelled = np.isfinite(z)
    in_sample = fit_redshift_probe(x[labelled], z[labelled], seed=3).predict(x[labelled])[0]
    assert not np.allclose(out["z_phot"][labelled], in_sample, rtol=0, atol=1e-6)
    oof, fitted = (photoz_metrics(zp, z[labelled])["sigma_mad"] for zp in (out["z_phot"][labelled], in_sample))
    assert fitted < oof < 0.02
    assert labelled_predictions(cat) == {"z_spec": "5-fold out-of-fold", "p_features": "5-fold out-of-fold"}


def test_cross_fitting_is_seeded_and_falls_back_to_leave_one_out(catalog) -> None:
    x, cat = catalog
    p = cat["p_features"].to_numpy()
    rows = np.arange(40)
    a = cross_fit_column(x, p, "p_features", rows, seed=1)[0]
    assert np.array_equal(a, cross_fit_column(x, p, "p_features", rows, seed=1)[0])
    assert not np.array_equal(a[rows], cross_fit_column(x, p, "p_features", rows, seed=2)[0][rows])  # other folds
    assert not np.array_equal(fold_ids(40, 5, seed=1), fold_ids(40, 5, seed=2))
    # 3 labelled rows < 5 folds: leave-one-out, each row by the probe of the other two
    few = np.array([0, 1, 2])
    [loo] = cross_fit_column(x, p, "p_features", few, seed=0)
    for r in few:
        others = few[few != r]
        expected = fit_morphology_probe(x[others], p[others], seed=0).predict(x[[r]])
        np.testing.assert_allclose(loo[r], expected[0], rtol=1e-12)
    assert labelled_predictions(cat.iloc[:60], folds=100) == {
        "z_spec": "leave-one-out (60 labelled rows < 100 folds)", "p_features": "leave-one-out (60 labelled rows < 100 folds)"}
    with pytest.raises(ValueError, match="at least 2 rows"):
        cross_fit_column(x, p, "p_features", np.array([5]))


def test_sweep_subsets_of_another_seed_share_the_test_rows(catalog) -> None:
    _, cat = catalog
    test, subsets = sweep_rows(cat, "z_spec", [20, 60], seed=0)
    same_test, other = sweep_rows(cat, "z_spec", [20, 60], seed=0, subset_seed=1)
    assert np.array_equal(test, same_test)
    assert np.array_equal(sweep_rows(cat, "z_spec", [20], seed=0, subset_seed=0)[1][20], subsets[20])
    assert not np.array_equal(np.sort(other[60]), np.sort(subsets[60]))
    assert not set(other[60]) & set(test)
