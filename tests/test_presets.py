"""The presets for the layouts users hold, each on a small file written here in exactly that layout.

pipelines/sdss.toml: Hayat et al. (2021), one HDF5 file with ``images`` (N, 5, 107, 107) ugriz,
``ra``, ``dec``, ``e_bv`` (N, 5) per-band extinction and ``specz_redshift``.
pipelines/legacysurvey.toml: Stein et al. (2021), ``images`` (N, 3, 152, 152) grz in nanomaggies,
``ra``, ``dec``, ``ebv`` and ``z_spec``.
Each preset must read its file as written (cutouts, bands, labels under galexplore's names) and its
[augment] section must turn the cutouts into training views of its crop size.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from galexplore.augment.pipeline import build_augmentations
from galexplore.config import load_config
from galexplore.survey.normalize import Normalization
from galexplore.survey import open_survey

PIPELINES = Path(__file__).resolve().parents[1] / "pipelines"
N = 12


def _galaxies(n: int, bands: int, size: int, sky: float, noise: float, seed: int) -> np.ndarray:
    """Exponential discs on a noisy sky, (n, bands, size, size) float32."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    r = np.hypot(xx, yy)
    flux = rng.uniform(5, 50, (n, bands, 1, 1)) * noise
    scale = rng.uniform(2, 6, (n, 1, 1, 1))
    return (sky + flux * np.exp(-r / scale) + rng.normal(0, noise, (n, bands, size, size))).astype(np.float32)


@pytest.fixture(scope="module")
def hayat(tmp_path_factory) -> tuple[Path, dict[str, np.ndarray]]:
    path = tmp_path_factory.mktemp("sdss") / "sdss.h5"
    rng = np.random.default_rng(1)
    data = {"images": _galaxies(N, 5, 107, sky=0.0, noise=0.01, seed=1),
            "ra": rng.uniform(0, 360, N), "dec": rng.uniform(-10, 60, N),
            "e_bv": rng.uniform(0.01, 0.1, (N, 1)) * np.array([4.239, 3.303, 2.285, 1.698, 1.263]),
            "specz_redshift": rng.uniform(0.01, 0.4, N).astype(np.float32)}
    with h5py.File(path, "w") as f:
        for key, value in data.items():
            f.create_dataset(key, data=value)
    return path, data


@pytest.fixture(scope="module")
def stein(tmp_path_factory) -> tuple[Path, dict[str, np.ndarray]]:
    path = tmp_path_factory.mktemp("legacy") / "legacysurvey.h5"
    rng = np.random.default_rng(2)
    data = {"images": _galaxies(N, 3, 152, sky=0.0, noise=0.005, seed=2),  # nanomaggies
            "ra": rng.uniform(0, 360, N), "dec": rng.uniform(-20, 30, N),
            "ebv": rng.uniform(0.01, 0.1, N), "z_spec": rng.uniform(0.01, 0.6, N)}
    with h5py.File(path, "w") as f:
        for key, value in data.items():
            f.create_dataset(key, data=value)
    return path, data


def _views(config, survey, seed: int = 0) -> torch.Tensor:
    normalization = Normalization.fit(survey, n_sample=N)
    pipeline = build_augmentations(config.augment, survey.bands, normalization.noise,
                                   image_size=survey.shape[-1], normalization=normalization)
    batch = torch.from_numpy(survey.read(np.arange(4)))
    return pipeline(batch, generator=torch.Generator().manual_seed(seed))


def test_the_sdss_preset_reads_the_hayat_layout(hayat) -> None:
    path, data = hayat
    config = load_config(PIPELINES / "sdss.toml")
    with open_survey(config, path) as survey:
        assert (len(survey), survey.shape, survey.bands) == (N, (5, 107, 107), ("u", "g", "r", "i", "z"))
        assert survey.pixel_scale == pytest.approx(0.396)
        np.testing.assert_array_equal(survey.read(np.arange(N)), data["images"])
        catalog = survey.catalog
        np.testing.assert_array_equal(catalog["z_spec"], data["specz_redshift"])  # renamed to galexplore's label
        assert "specz_redshift" not in catalog
        for j, band in enumerate("ugriz"):  # per-band extinction, one column per band
            np.testing.assert_array_equal(catalog[f"e_bv_{band}"], data["e_bv"][:, j])
        np.testing.assert_allclose(catalog["ra"], data["ra"], rtol=0, atol=1e-12)
        views = _views(config, survey)
    assert views.shape == (4, 5, 64, 64) and views.dtype == torch.float32 and torch.isfinite(views).all()


def test_the_legacysurvey_preset_reads_the_stein_layout(stein) -> None:
    path, data = stein
    config = load_config(PIPELINES / "legacysurvey.toml")
    with open_survey(config, path) as survey:
        assert (len(survey), survey.shape, survey.bands) == (N, (3, 152, 152), ("g", "r", "z"))
        assert survey.pixel_scale == pytest.approx(0.262)
        np.testing.assert_array_equal(survey.read([3, 0]), data["images"][[3, 0]])
        catalog = survey.catalog
        np.testing.assert_array_equal(catalog["z_spec"], data["z_spec"])
        np.testing.assert_array_equal(catalog["ebv"], data["ebv"])
        views = _views(config, survey)
        assert torch.equal(views, _views(config, survey))  # seeded
        assert not torch.allclose(views, _views(config, survey, seed=1))  # and random: the augmentations act
    assert views.shape == (4, 3, 96, 96) and torch.isfinite(views).all()
