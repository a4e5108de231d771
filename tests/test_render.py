"""Colour composites and montages: band choice, 8-bit output, colours that follow the fluxes."""

from __future__ import annotations

import doctest
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import galexplore.survey.render
from galexplore.config import config_from_dict
from galexplore.report.montage import GAP, draw_montage, tile_label
from galexplore.survey.render import lupton_rgb, pick_rgb_bands
from galexplore.simulate import simulate_survey
from galexplore.survey.hdf5 import HDF5Survey


def noisy_source(colours: dict[str, float], bands: tuple[str, ...], size: int = 32, seed: int = 0) -> np.ndarray:
    """A Gaussian source with flux per band from `colours` (default 1) on unit-variance noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] - size / 2
    blob = 50.0 * np.exp(-(xx**2 + yy**2) / 8.0)
    return np.stack([colours.get(b, 1.0) * blob + rng.normal(size=(size, size)) for b in bands]).astype(np.float32)


def test_docstring_examples_run() -> None:
    assert doctest.testmod(galexplore.survey.render, raise_on_error=False).failed == 0


@pytest.mark.parametrize("bands", [("u", "g", "r", "i", "z"), ("g", "r", "i", "z", "y"), ("g", "r", "z"), ("a", "b", "c")])
def test_lupton_rgb_is_uint8_image(bands: tuple[str, ...]) -> None:
    rgb = lupton_rgb(noisy_source({}, bands), bands)
    assert rgb.dtype == np.uint8 and rgb.shape == (32, 32, 3)
    assert rgb[16, 16].max() > rgb[:4, :4].mean() + 50  # the source stands out of the sky


def test_band_choice_by_name_and_wavelength() -> None:
    assert pick_rgb_bands(("u", "g", "r", "i", "z")) == (3, 2, 1)
    assert pick_rgb_bands(("z", "g", "r")) == (0, 2, 1)  # by wavelength, whatever the order
    assert pick_rgb_bands(("x", "y2", "w")) == (2, 1, 0)  # unknown names: channel order
    assert pick_rgb_bands(("r",)) == (0, 0, 0)
    with pytest.raises(ValueError):
        pick_rgb_bands(())


def test_red_source_renders_red_and_blue_source_blue() -> None:
    bands = ("u", "g", "r", "i", "z")
    red = lupton_rgb(noisy_source({"g": 0.3, "r": 0.8, "i": 1.5}, bands), bands)[14:18, 14:18].astype(float)
    blue = lupton_rgb(noisy_source({"g": 1.2, "r": 0.8, "i": 0.5}, bands), bands)[14:18, 14:18].astype(float)
    assert red[..., 0].mean() > red[..., 2].mean() + 20
    assert blue[..., 2].mean() > blue[..., 0].mean() + 20


def test_display_channels_are_only_rescaled() -> None:
    cube = np.zeros((3, 8, 8), dtype=np.float32)
    cube[0] = 255.0
    rgb = lupton_rgb(cube, ("r", "g", "b"))
    assert (rgb[..., 0] == 255).all() and (rgb[..., 1:] == 0).all()


def test_wrong_shape_is_rejected() -> None:
    with pytest.raises(ValueError, match="expected"):
        lupton_rgb(np.zeros((4, 8, 8)), ("g", "r", "z"))


@pytest.fixture(scope="module")
def tiny_survey(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cfg = config_from_dict({"seed": 1, "simulate": {"n": 10, "image_size": 32, "workers": 1, "anomaly_rate": 0.0}})
    return simulate_survey(cfg, tmp_path_factory.mktemp("montage") / "tiny.h5")


def test_montage_png_has_the_expected_size(tiny_survey: Path, tmp_path: Path) -> None:
    with HDF5Survey(tiny_survey) as survey:
        out = draw_montage(survey, tmp_path / "m.png", n=7, columns=3, seed=0)
        labels = tile_label(survey.catalog, 0)
    tile = 32 * 4  # enlarged to at least 128 pixels
    with Image.open(out) as png:
        assert png.format == "PNG" and png.mode == "RGB"
        assert png.size == (3 * tile + 4 * GAP, 3 * tile + 4 * GAP)
        pixels = np.asarray(png)
    assert pixels[GAP : GAP + tile, GAP : GAP + tile].std() > 5  # a real image, not a blank tile
    assert labels[0].startswith("z=") and labels[1] in ("elliptical", "lenticular", "spiral", "irregular")
    assert [p.name for p in tmp_path.iterdir()] == ["m.png"]  # no temporary file left behind
