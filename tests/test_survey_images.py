"""The image-folder reader and IAU-name parsing, on generated folders and the real DECaLS rings."""

from __future__ import annotations

import doctest
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.coordinates import SkyCoord
from PIL import Image

from galexplore.config import SurveyConfig
from galexplore.errors import SurveyError
from galexplore.survey import coords, open_path
from galexplore.survey.coords import parse_iau_names, parse_position_from_filename
from galexplore.survey.images import ImageFolderSurvey

N, SIZE = 5, 16


def images_cfg(**kw: object) -> SurveyConfig:
    return SurveyConfig(source="images", bands=kw.pop("bands", ()), **kw)


@pytest.fixture
def rgb() -> np.ndarray:
    """Seeded 8-bit colour images (N, H, W, 3)."""
    return np.random.default_rng(6).integers(0, 256, size=(N, SIZE, SIZE, 3), dtype=np.uint8)


@pytest.fixture
def folder(tmp_path: Path, rgb: np.ndarray) -> Path:
    """PNGs in a subfolder and a catalog with IAU names but no ra/dec columns."""
    (tmp_path / "img").mkdir()
    for i in range(N):
        Image.fromarray(rgb[i]).save(tmp_path / "img" / f"g{i}.png")
    names = ["J000411.19+020924.0", "J001655.18-002739.1", "J235959.99-895959.9", "J120000+000000", "J101010.1+101010"]
    pd.DataFrame({"iauname": names, "label": range(N), "file": [f"img/g{i}.png" for i in range(N)]}).to_csv(
        tmp_path / "catalog.csv", index=False
    )
    return tmp_path


def test_pngs_scaled_to_unit_range_in_rgb_order(folder: Path, rgb: np.ndarray) -> None:
    with ImageFolderSurvey(folder, images_cfg()) as survey:
        assert (len(survey), survey.shape, survey.bands) == (N, (3, SIZE, SIZE), ("red", "green", "blue"))
        asked = [4, 0, 4]
        expected = rgb[asked].transpose(0, 3, 1, 2).astype(np.float32) / 255  # (B, 3, H, W)
        batch = survey.read(asked)
        assert batch.dtype == np.float32
        np.testing.assert_allclose(batch, expected, rtol=0, atol=1e-7)
        assert survey.catalog["label"].tolist() == list(range(N))


def test_ra_dec_parsed_from_auto_detected_iau_names(folder: Path) -> None:
    with ImageFolderSurvey(folder, images_cfg()) as survey:
        cat = survey.catalog
    assert list(cat.columns[:3]) == ["object_id", "ra", "dec"]
    sky = SkyCoord(["00h04m11.19s +02d09m24.0s", "00h16m55.18s -00d27m39.1s", "23h59m59.99s -89d59m59.9s",
                    "12h00m00s +00d00m00s", "10h10m10.1s +10d10m10s"])
    np.testing.assert_allclose(cat["ra"], sky.ra.deg, rtol=0, atol=1e-9)
    np.testing.assert_allclose(cat["dec"], sky.dec.deg, rtol=0, atol=1e-9)


def test_ra_dec_columns_and_configured_name_column(folder: Path) -> None:
    cat = pd.read_csv(folder / "catalog.csv").rename(columns={"iauname": "designation", "file": "png"})
    cat.to_csv(folder / "named.csv", index=False)
    cfg = images_cfg(name_column="designation", file_column="png", bands=("z", "r", "g"))
    with ImageFolderSurvey(folder, cfg, catalog=folder / "named.csv") as survey:
        assert survey.bands == ("z", "r", "g")
        assert survey.catalog["dec"].iloc[1] == pytest.approx(-(27 / 60 + 39.1 / 3600), abs=1e-12)
    cat.assign(RAJ2000=np.arange(N) * 10.0, DEJ2000=-np.arange(N) * 1.0).to_csv(folder / "radec.csv", index=False)
    cfg = images_cfg(ra_column="RAJ2000", dec_column="DEJ2000", file_column="png")
    with ImageFolderSurvey(folder, cfg, catalog=folder / "radec.csv") as survey:  # columns win over names
        assert survey.catalog["ra"].tolist() == [0.0, 10.0, 20.0, 30.0, 40.0]


def test_rgba_and_greyscale_images(tmp_path: Path, rgb: np.ndarray) -> None:
    alpha = np.full((SIZE, SIZE, 1), 7, np.uint8)
    for i in range(2):
        Image.fromarray(np.concatenate([rgb[i], alpha], axis=2)).save(tmp_path / f"a{i}.png")
        Image.fromarray(rgb[i, :, :, 0]).save(tmp_path / f"l{i}.png")
    base = {"ra": [1.0, 2.0], "dec": [3.0, 4.0]}
    pd.DataFrame({**base, "file": ["a0.png", "a1.png"]}).to_csv(tmp_path / "rgba.csv", index=False)
    pd.DataFrame({**base, "file": ["l0.png", "l1.png"]}).to_csv(tmp_path / "grey.csv", index=False)
    with ImageFolderSurvey(tmp_path, images_cfg(), catalog=tmp_path / "rgba.csv") as survey:
        np.testing.assert_allclose(survey[1], rgb[1].transpose(2, 0, 1) / 255, rtol=0, atol=1e-7)  # alpha dropped
    with ImageFolderSurvey(tmp_path, images_cfg(), catalog=tmp_path / "grey.csv") as survey:
        assert (survey.shape, survey.bands) == ((1, SIZE, SIZE), ("grey",))
        np.testing.assert_allclose(survey[0][0], rgb[0, :, :, 0] / 255, rtol=0, atol=1e-7)


def test_jpeg_images_read(tmp_path: Path, rgb: np.ndarray) -> None:
    flat = np.full((SIZE, SIZE, 3), (200, 100, 50), np.uint8)  # flat colour survives JPEG almost exactly
    Image.fromarray(flat).save(tmp_path / "f.jpg", quality=95)
    pd.DataFrame({"ra": [1.0], "dec": [2.0], "file": ["f.jpg"]}).to_csv(tmp_path / "catalog.csv", index=False)
    with ImageFolderSurvey(tmp_path) as survey:
        np.testing.assert_allclose(survey[0].mean(axis=(1, 2)), np.array([200, 100, 50]) / 255, atol=3 / 255)


def test_parse_iau_names_matches_astropy() -> None:
    names = ["J000411.19+020924.0", "SDSS J123456.78-012345.6", "J095959.999+695959.99", "J0102-0304"]
    sky = SkyCoord(["00h04m11.19s +02d09m24.0s", "12h34m56.78s -01d23m45.6s", "09h59m59.999s +69d59m59.99s",
                    "01h02m00s -03d04m00s"])
    ra, dec = parse_iau_names(names)
    np.testing.assert_allclose(ra, sky.ra.deg, rtol=0, atol=1e-10)
    np.testing.assert_allclose(dec, sky.dec.deg, rtol=0, atol=1e-10)


def test_a_name_that_is_not_text_is_named_by_its_position_whatever_the_index() -> None:
    """A CSV row with one value more than the header makes pandas index by the first column."""
    names = pd.Series([0, ":"], index=["0", ":"])
    with pytest.raises(SurveyError, match=r"names: row 0 is 0; expected an IAU name"):
        parse_iau_names(names, source="names")


def test_parse_iau_names_is_fast_for_a_million() -> None:
    names = np.array(["J000411.19+020924.0", "J001655.18-002739.1", "J235959.99-895959.9", "J120000+000000"] * 250_000)
    start = time.perf_counter()
    ra, dec = parse_iau_names(names)
    elapsed = time.perf_counter() - start
    assert ra.shape == dec.shape == (1_000_000,)
    assert dec[1::4] == pytest.approx(np.full(250_000, -(27 / 60 + 39.1 / 3600)), abs=1e-12)
    assert elapsed < 5.0  # about 0.4 s here; a per-name Python loop with SkyCoord takes minutes


def test_coords_docstring_examples() -> None:
    result = doctest.testmod(coords)
    assert result.attempted >= 3 and result.failed == 0


def test_position_from_file_name() -> None:
    assert parse_position_from_filename("hsc_ra=150.24071_dec=2.06514.fits") == (150.24071, 2.06514)
    assert parse_position_from_filename("x_RA_10.5_DEC_-3.fits") == (10.5, -3.0)
    assert parse_position_from_filename("obj_12.fits") is None


def test_real_decals_rings(shared_data: Path) -> None:
    from astropy.coordinates import jparser

    folder = shared_data / "decals_rings"
    with ImageFolderSurvey(folder, images_cfg(image_size=212)) as survey:
        assert (len(survey), survey.shape) == (470, (3, 212, 212))
        cat = survey.catalog
        reference = [jparser.to_skycoord(name) for name in cat["iauname"]]
        np.testing.assert_allclose(cat["ra"], [c.ra.deg for c in reference], rtol=0, atol=1e-9)
        np.testing.assert_allclose(cat["dec"], [c.dec.deg for c in reference], rtol=0, atol=1e-9)
        assert cat["ring"].value_counts().to_dict() == {0: 235, 1: 235}
        batch = survey.read([0, 469, 235])
        assert batch.dtype == np.float32 and batch.min() >= 0.0 and batch.max() <= 1.0
        assert batch.std() > 0.05  # real images, not blank
    with open_path(folder) as survey:
        assert isinstance(survey, ImageFolderSurvey)
        assert survey.bands == ("red", "green", "blue")


def test_center_crop_and_resize_resample_on_read(tmp_path: Path) -> None:
    """The central 16 of 32 pixels resized to 4: on a horizontal ramp (8 per pixel) each output
    pixel holds the ramp at its centre in the crop, and shape and pixel scale are those of the
    resampled images."""
    (tmp_path / "img").mkdir()
    ramp = np.broadcast_to((8 * np.arange(32)).astype(np.uint8)[None, :, None], (32, 32, 3))
    Image.fromarray(np.ascontiguousarray(ramp)).save(tmp_path / "img" / "g0.png")
    pd.DataFrame({"ra": [1.0], "dec": [2.0], "file": ["img/g0.png"]}).to_csv(tmp_path / "catalog.csv", index=False)
    with ImageFolderSurvey(tmp_path, images_cfg(pixel_scale=0.5, center_crop=16, resize=4)) as survey:
        assert survey.shape == (3, 4, 4)
        assert survey.pixel_scale == pytest.approx(0.5 * 16 / 4)
        got = survey.read([0])[0]  # (3, 4, 4)
    centres = 8 + (np.arange(4) + 0.5) * 4 - 0.5  # source x of each output column's centre
    expected = np.broadcast_to(8 * centres / 255, (3, 4, 4))
    np.testing.assert_allclose(got, expected, atol=2.5 / 255)


def test_center_crop_larger_than_the_images_is_refused(folder: Path) -> None:
    with pytest.raises(Exception, match="center_crop = 32 exceeds the 16x16 images"):
        ImageFolderSurvey(folder, images_cfg(center_crop=32))


def test_resize_is_refused_for_flux_surveys(tmp_path: Path) -> None:
    from galexplore.config import config_from_dict
    from galexplore.errors import ConfigError

    with pytest.raises(ConfigError, match="survey.center_crop / survey.resize resample 8-bit image folders"):
        config_from_dict({"survey": {"source": "hdf5", "resize": 32}})
