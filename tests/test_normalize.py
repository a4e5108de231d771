"""Noise estimation and the asinh normalisation: recovered noise, closed forms, one implementation."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from galexplore.errors import GalexploreError, SurveyError
from galexplore.survey.normalize import LUPTON_SOFTENING, Normalization, estimate_noise, sky_statistics
from galexplore.survey.memory import ArraySurvey

BANDS = ("u", "g", "r", "i", "z")
SIGMA = np.array([0.1, 0.2, 0.5, 1.0, 2.0])  # sky noise per band
SKY = np.array([0.0, 0.3, -0.2, 1.0, 5.0])  # sky pedestal per band


def cutouts(neighbours: bool, n: int = 80, size: int = 48) -> np.ndarray:
    """(n, 5, size, size) float32: noise of known sigma on a pedestal and a bright galaxy in the
    centre of each; with `neighbours`, a bright neighbour on the border of every fourth."""
    rng = np.random.default_rng(0)
    t = np.arange(size) - (size - 1) / 2
    galaxy = np.exp(-(t[None, :] ** 2 + t[:, None] ** 2) / (2 * 4.0**2))  # 1e-5 of peak 19 px out
    neighbour = np.exp(-((t[None, :] - 22) ** 2 + (t[:, None] - 5) ** 2) / (2 * 2.0**2))
    images = SKY[None, :, None, None] + SIGMA[None, :, None, None] * rng.standard_normal((n, 5, size, size))
    images += 200 * SIGMA[None, :, None, None] * galaxy
    if neighbours:
        images[::4] += 100 * SIGMA[None, :, None, None] * neighbour
    return images.astype(np.float32)


@pytest.fixture(scope="module")
def survey() -> ArraySurvey:
    return ArraySurvey(cutouts(neighbours=True), bands=BANDS)


def test_estimate_noise_recovers_the_sky_noise_of_every_band(survey: ArraySurvey) -> None:
    clean = estimate_noise(ArraySurvey(cutouts(neighbours=False), bands=BANDS), n_sample=60, seed=0)
    assert clean.shape == (5,) and clean.dtype == np.float64
    # 60 cutouts x 704 frame pixels: sigma_MAD has an sd of 0.4%
    np.testing.assert_allclose(clean, SIGMA, rtol=0.015)
    noise = estimate_noise(survey, n_sample=60, seed=0)
    # a bright neighbour over ~7% of the frame in a quarter of the cutouts: a bias of +1 to +4%
    assert np.all(noise > clean) and np.all(noise < 1.05 * SIGMA)
    background, again = sky_statistics(survey, n_sample=60, seed=0)
    assert np.all(np.abs(background - SKY) < 0.05 * SIGMA)
    assert np.array_equal(again, noise)  # seeded: the same sample, the same numbers


def test_a_band_without_noise_is_a_clear_error() -> None:
    images = np.random.default_rng(1).standard_normal((4, 3, 16, 16)).astype(np.float32)
    images[:, 1] = 0.0
    with pytest.raises(SurveyError, match="band g has no measurable noise"):
        estimate_noise(ArraySurvey(images, bands=("r", "g", "b")))
    with pytest.raises(SurveyError, match="frame 8 pixels wide does not fit a 16x16"):
        estimate_noise(ArraySurvey(images, bands=("r", "g", "b")), border=8)


def test_the_stretch_is_asinh_in_units_of_lupton_softened_noise() -> None:
    assert LUPTON_SOFTENING == pytest.approx(2 * 1.042, abs=1e-3)  # 2b, b = 1.042 sigma
    norm = Normalization(bands=("g", "r"), background=(1.0, -2.0), noise=(0.5, 3.0))
    x = np.empty((2, 1, 3), dtype=np.float32)
    for b, (sky, sigma) in enumerate(zip(norm.background, norm.noise)):
        x[b, 0] = [sky, sky + LUPTON_SOFTENING * sigma, sky - 1000 * sigma]
    y = norm(x)
    np.testing.assert_allclose(y[:, 0, 0], 0.0, atol=1e-6)
    np.testing.assert_allclose(y[:, 0, 1], math.asinh(1.0), rtol=1e-6)  # 0.8814
    np.testing.assert_allclose(y[:, 0, 2], -math.asinh(1000 / LUPTON_SOFTENING), rtol=1e-5)


def test_fit_then_torch_and_numpy_give_the_same_numbers(survey: ArraySurvey) -> None:
    norm = Normalization.fit(survey, n_sample=40, seed=3)
    assert norm.bands == BANDS
    assert norm == Normalization.fit(survey, n_sample=40, seed=3)
    batch = survey.read([0, 5, 9])  # (3, 5, 48, 48) float32
    y_numpy = norm(batch)
    y_torch = norm(torch.from_numpy(batch))
    assert isinstance(y_torch, torch.Tensor) and y_torch.dtype == torch.float32
    assert y_numpy.dtype == np.float32 and y_numpy.shape == batch.shape
    np.testing.assert_allclose(y_torch.numpy(), y_numpy, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(norm(batch[1]), y_numpy[1], rtol=0, atol=0)  # one cutout (C, H, W)
    assert norm(torch.from_numpy(batch).double()).dtype == torch.float64
    # the sky has the same spread in every band: that of asinh(N(0, 1) / softening), 0.42
    frame = y_numpy[:, :, :4, :].std(axis=(0, 2, 3))  # 3 x 192 pixels per band: sd 3%
    reference = np.arcsinh(np.random.default_rng(0).standard_normal(10**6) / LUPTON_SOFTENING).std()
    np.testing.assert_allclose(frame, reference, rtol=0.1)


def test_invert_undoes_the_stretch(survey: ArraySurvey) -> None:
    norm = Normalization.fit(survey, n_sample=20)
    batch = survey.read([1, 2])
    np.testing.assert_allclose(norm.invert(norm(batch)), batch, rtol=1e-5, atol=1e-5 * SIGMA.max())
    back = norm.invert(norm(torch.from_numpy(batch)))
    np.testing.assert_allclose(back.numpy(), batch, rtol=1e-5, atol=1e-5 * SIGMA.max())


def test_to_dict_is_plain_json_and_round_trips(survey: ArraySurvey) -> None:
    norm = Normalization.fit(survey, n_sample=20)
    text = json.dumps(norm.to_dict())
    again = Normalization.from_dict(json.loads(text))
    assert again == norm
    batch = survey.read([3])
    assert np.array_equal(again(batch), norm(batch))


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"format": "percentile/1"}, "is not 'asinh-noise/1'"),
        ({"noise": [1.0, 0.0]}, "must be > 0"),
        ({"noise": [1.0]}, "2 bands .* 2 background and 1 noise"),
        ({"background": ["a", 0.0]}, "malformed"),
        ({"pickle": "..."}, "expected keys"),
    ],
)
def test_a_malformed_stored_normalization_is_a_clear_error(change: dict, match: str) -> None:
    good = Normalization(bands=("g", "r"), background=(0.0, 0.0), noise=(1.0, 1.0)).to_dict()
    with pytest.raises(GalexploreError, match=match):
        Normalization.from_dict({**good, **change})


def test_images_with_other_bands_are_refused() -> None:
    norm = Normalization(bands=("g", "r"), background=(0.0, 0.0), noise=(1.0, 1.0))
    with pytest.raises(GalexploreError, match=r"shape \(4, 3, 8, 8\) do not have the 2 bands \(g, r\)"):
        norm(np.zeros((4, 3, 8, 8), dtype=np.float32))
