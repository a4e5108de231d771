"""The simulated survey: physics that must hold, labels as a survey has them, reproducible files."""

from __future__ import annotations

import dataclasses
import hashlib
import math
from pathlib import Path

import h5py
import numpy as np
import pytest

from galexplore.config import Config, SimulateConfig, config_from_dict
from galexplore.simulate import draw_noiseless_galaxy, simulate_survey
from galexplore.simulate.anomalies import ANOMALY_TYPES
from galexplore.simulate.objects import draw_population_sample, simulation_context
from galexplore.simulate.photometry import BANDS, nanomaggies
from galexplore.simulate.population import observed_mags
from galexplore.survey.hdf5 import HDF5Survey

N = 300
ANOMALY_RATE = 0.1


def small_config(**simulate: object) -> Config:
    sim = {"n": N, "image_size": 32, "chunk_size": 100, "workers": 1, "anomaly_rate": ANOMALY_RATE}
    return config_from_dict({"seed": 7, "simulate": {**sim, **simulate}})


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def survey_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return simulate_survey(small_config(), tmp_path_factory.mktemp("sim") / "survey.h5")


@pytest.fixture(scope="module")
def catalog(survey_path: Path):
    with HDF5Survey(survey_path) as survey:
        return survey.catalog


def test_reads_back_as_hdf5_survey(survey_path: Path) -> None:
    with HDF5Survey(survey_path) as survey:
        assert len(survey) == N
        assert survey.shape == (5, 32, 32)
        assert survey.bands == BANDS
        assert survey.pixel_scale == pytest.approx(0.396)
        assert survey.simulated
        batch = survey.read([0, N - 1])
        assert batch.dtype == np.float32 and batch.shape == (2, 5, 32, 32)
        for column in ("object_id", "ra", "dec", "z", "type", "bulge_frac", "axis_ratio", "edge_on", "mag_r",
                       "ebv", "seeing", "is_anomaly", "anomaly_type", "z_spec", "p_features", "p_edge_on",
                       "label_availability"):
            assert column in survey.catalog.columns, column
        assert survey.catalog["object_id"].dtype == np.int64
    with h5py.File(survey_path, "r") as f:
        assert f["images"].chunks == (1, 5, 32, 32)
        assert f.attrs["seed"] == 7
        assert "[simulate]" in f.attrs["config"]
    toml = survey_path.with_name("survey.config.toml")
    assert config_from_dict_text(toml.read_text()).simulate.n == N
    assert not survey_path.with_name("survey.h5.partial").exists()


def config_from_dict_text(text: str) -> Config:
    import tomllib

    return config_from_dict(tomllib.loads(text))


def test_same_seed_same_bytes_whatever_the_workers(survey_path: Path, tmp_path: Path) -> None:
    again = simulate_survey(small_config(), tmp_path / "again.h5", workers=2)
    assert sha256(again) == sha256(survey_path)
    other_seed = simulate_survey(dataclasses.replace(small_config(), seed=8), tmp_path / "other.h5", n=20)
    with HDF5Survey(other_seed) as a, HDF5Survey(survey_path) as b:
        assert not np.array_equal(a.read([0]), b.read([0]))


def stop_after_first_chunk(done: int, total: int) -> None:
    if done > 0:
        raise KeyboardInterrupt


def test_resume_after_interruption_gives_the_same_bytes(survey_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "resumed.h5"

    with pytest.raises(KeyboardInterrupt):
        simulate_survey(small_config(), out, progress=stop_after_first_chunk)
    partial = out.with_name("resumed.h5.partial")
    kept = sorted(partial.glob("chunk_*.npz"))
    assert [p.name for p in kept] == ["chunk_000000.npz"] and not out.exists()

    calls: list[tuple[int, int]] = []
    simulate_survey(small_config(), out, progress=lambda d, t: calls.append((d, t)))
    assert calls[0] == (100, N)  # the kept chunk counted as done, not redrawn
    assert sha256(out) == sha256(survey_path)
    assert not partial.exists()


def test_stale_chunks_of_another_config_are_discarded(tmp_path: Path) -> None:
    out = tmp_path / "s.h5"
    with pytest.raises(KeyboardInterrupt):
        simulate_survey(small_config(n=40, chunk_size=20), out, progress=stop_after_first_chunk)
    changed = dataclasses.replace(small_config(n=40, chunk_size=20), seed=99)
    simulate_survey(changed, out)
    fresh = simulate_survey(changed, tmp_path / "fresh.h5")
    assert sha256(out) == sha256(fresh)


def test_noiseless_galaxy_flux_matches_its_magnitudes() -> None:
    cfg = SimulateConfig(image_size=96)
    tables = simulation_context(cfg).tables
    compact = [p for p in draw_population_sample(cfg, seed=3, n=200) if p.half_light_radius < 1.2]
    assert len(compact) >= 5
    for params in compact[:5]:
        image = draw_noiseless_galaxy(params, cfg, seeing=1.4)
        expected = nanomaggies(observed_mags(tables, params))
        # 96 x 0.396" = 38": all but the deV wings beyond ~15 half-light radii is inside.
        np.testing.assert_allclose(image.sum(axis=(1, 2)), expected, rtol=0.02)


def test_elliptical_g_minus_r_rises_with_redshift() -> None:
    cfg = SimulateConfig(image_size=96)
    elliptical = next(p for p in draw_population_sample(cfg, seed=1, n=100) if p.type == "elliptical")
    colours = []
    for z in (0.02, 0.1, 0.2, 0.3, 0.4):
        flux = draw_noiseless_galaxy(dataclasses.replace(elliptical, z=z), cfg).sum(axis=(1, 2))
        colours.append(-2.5 * math.log10(flux[1] / flux[2]))  # g - r from the pixels
    assert np.all(np.diff(colours) > 0.1), colours  # the 4000 A break moves from g into r
    assert 0.6 < colours[0] < 1.0 and colours[-1] > 1.5, colours  # SDSS: 0.75 locally, LRGs ~1.7


def test_edge_on_disks_have_small_axis_ratios() -> None:
    sample = draw_population_sample(SimulateConfig(), seed=5, n=1500)
    edge_on = [p.axis_ratio for p in sample if p.edge_on]
    face_on = [p.axis_ratio for p in sample if p.type in ("spiral", "lenticular") and math.degrees(p.inclination) < 30]
    assert len(edge_on) > 50 and len(face_on) > 50
    assert max(edge_on) < 0.4  # q^2 = cos^2 i + q0^2 sin^2 i with i > 75 deg, q0 <= 0.25
    assert np.median(face_on) > 0.9


def test_spectroscopic_sample_is_brighter_and_nearer(catalog) -> None:
    cfg = small_config().simulate
    has_spec = np.isfinite(catalog["z_spec"].to_numpy())
    assert 20 < has_spec.sum() < N - 20
    assert (catalog["mag_r"][has_spec] < cfg.spec_mag_limit).all()
    assert catalog["mag_r"][has_spec].mean() < catalog["mag_r"][~has_spec].mean() - 0.5
    assert catalog["z"][has_spec].median() < catalog["z"][~has_spec].median()
    np.testing.assert_allclose(catalog["z_spec"][has_spec], catalog["z"][has_spec], atol=1e-3)
    morph = catalog["label_availability"] == "spec-z+morphology"
    assert (catalog["mag_r"][morph] < cfg.morphology_mag_limit).all()
    assert np.isfinite(catalog["p_features"][morph]).all() and catalog["p_features"][~morph].isna().all()
    assert set(catalog["label_availability"]) <= {"none", "spec-z", "spec-z+morphology"}
    assert ((catalog["label_availability"] == "none") == ~has_spec).all()


def test_vote_fractions_follow_truth(catalog) -> None:
    morph = catalog[catalog["label_availability"] == "spec-z+morphology"]
    early = morph["type"].isin(["elliptical"])
    late = morph["type"].isin(["spiral", "irregular"])
    assert early.sum() >= 3 and late.sum() >= 3
    assert morph["p_features"][late].mean() > morph["p_features"][early].mean() + 0.3


def test_anomaly_rate_matches_config(catalog) -> None:
    count = int(catalog["is_anomaly"].sum())
    sigma = math.sqrt(N * ANOMALY_RATE * (1 - ANOMALY_RATE))
    assert abs(count - N * ANOMALY_RATE) < 4 * sigma, count
    assert set(catalog["anomaly_type"][catalog["is_anomaly"]]) <= set(ANOMALY_TYPES)
    assert (catalog["anomaly_type"][~catalog["is_anomaly"]] == "none").all()


def test_redshifts_and_types_in_range(catalog) -> None:
    cfg = small_config().simulate
    assert catalog["z"].between(cfg.z_min, cfg.z_max).all()
    assert catalog["mag_r"].between(cfg.mag_r_min, cfg.mag_r_max + 1e-9).all()
    assert set(catalog["type"]) <= {"elliptical", "lenticular", "spiral", "irregular"}
    assert catalog["ra"].between(0, 360).all() and catalog["dec"].between(-90, 90).all()
    # ellipticals are redder than spirals at the same redshift
    g_r = catalog["mag_g"] - catalog["mag_r"]
    assert g_r[catalog["type"] == "elliptical"].median() > g_r[catalog["type"] == "spiral"].median() + 0.2


def test_u_is_the_noisiest_band_and_z_the_second(survey_path: Path, catalog) -> None:
    with HDF5Survey(survey_path) as survey:
        images = survey.read(np.arange(100)).astype(np.float64)
    border = np.concatenate([images[:, :, :3, :].reshape(100, 5, -1), images[:, :, -3:, :].reshape(100, 5, -1)], axis=2)
    noise = np.median(np.std(border, axis=2), axis=0)  # (B,) nanomaggies
    flux = np.median(nanomaggies(catalog[[f"mag_{b}" for b in BANDS]].to_numpy()[:100]), axis=0)
    signal_to_noise = flux / noise
    order = np.argsort(signal_to_noise)
    assert [BANDS[k] for k in order[:2]] == ["u", "z"], signal_to_noise
