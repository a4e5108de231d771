"""The FITS reader: a stacked cube, a folder of one cube per object, a single cube, real HSC data."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from astropy.table import Table

from galexplore.config import SurveyConfig
from galexplore.errors import SurveyError
from galexplore.survey import open_path
from galexplore.survey.fits import FitsSurvey

N, C, SIZE = 6, 3, 10
HSC_CUBE = "hsc_ra=150.24071_dec=2.06514.fits"


@pytest.fixture
def cube() -> np.ndarray:
    return np.random.default_rng(3).normal(size=(N, C, SIZE, SIZE)).astype(np.float32)


def catalog_table(n: int) -> dict[str, np.ndarray]:
    return {"objid": np.arange(10, 10 + n), "ra": np.linspace(30.0, 31.0, n), "dec": np.linspace(-1.0, 1.0, n)}


def fits_cfg(**kw: object) -> SurveyConfig:
    return SurveyConfig(source="fits", bands=kw.pop("bands", ()), **kw)


def test_stacked_cube_with_table_hdu(tmp_path: Path, cube: np.ndarray) -> None:
    flux = np.random.default_rng(4).uniform(1, 2, size=(N, C))
    primary = fits.PrimaryHDU(cube)
    primary.header["BANDS"] = "g,r,i"
    table = fits.BinTableHDU(Table({**catalog_table(N), "flux": flux}))
    path = tmp_path / "stack.fits"
    fits.HDUList([primary, table]).writeto(path)
    with FitsSurvey(path, fits_cfg(id_column="objid")) as survey:
        assert survey.layout == "stacked"
        assert (len(survey), survey.shape, survey.bands) == (N, (C, SIZE, SIZE), ("g", "r", "i"))
        asked = [4, 0, 1, 2, 4]
        np.testing.assert_array_equal(survey.read(asked), cube[asked])
        cat = survey.catalog
        assert cat["object_id"].tolist() == list(range(10, 10 + N))
        np.testing.assert_allclose(cat["flux_r"], flux[:, 1], rtol=0, atol=1e-12)  # (N, C) split per band
        with pickle.loads(pickle.dumps(survey)) as copy:
            np.testing.assert_array_equal(copy.read([5]), cube[[5]])


def test_stacked_cube_with_csv_catalog_and_scaled_ints(tmp_path: Path) -> None:
    counts = np.random.default_rng(5).integers(0, 1000, size=(N, C, SIZE, SIZE)).astype(np.int16)
    hdu = fits.PrimaryHDU(counts)
    hdu.header["BSCALE"], hdu.header["BZERO"] = 0.5, 10.0
    path = tmp_path / "stack.fits"
    hdu.writeto(path)
    csv = tmp_path / "cat.csv"
    pd.DataFrame(catalog_table(N)).to_csv(csv, index=False)
    with FitsSurvey(path, fits_cfg(), catalog=csv) as survey:
        assert survey.bands == ("b0", "b1", "b2")  # no config bands, no header bands
        np.testing.assert_allclose(survey.read([2, 3]), counts[[2, 3]] * 0.5 + 10.0, rtol=0, atol=1e-6)


@pytest.fixture
def cube_folder(tmp_path: Path, cube: np.ndarray) -> Path:
    """One (C, H, W) cube per object, FILTERn keywords, a CSV catalog naming the files."""
    folder = tmp_path / "cubes"
    (folder / "obj").mkdir(parents=True)
    for i in range(N):
        hdu = fits.PrimaryHDU(cube[i])
        for j, band in enumerate("gri"):
            hdu.header[f"FILTER{j + 1}"] = band
        hdu.writeto(folder / "obj" / f"o{i}.fits")
    cat = pd.DataFrame({**catalog_table(N), "file": [f"obj/o{i}.fits" for i in range(N)]})
    cat.to_csv(folder / "catalog.csv", index=False)
    return folder


def test_folder_of_cubes(cube_folder: Path, cube: np.ndarray) -> None:
    with FitsSurvey(cube_folder, fits_cfg()) as survey:
        assert survey.layout == "folder"
        assert (len(survey), survey.shape, survey.bands) == (N, (C, SIZE, SIZE), ("g", "r", "i"))
        asked = [5, 0, 5, 2]
        np.testing.assert_array_equal(survey.read(asked), cube[asked])
        assert survey.catalog["file"].iloc[3] == "obj/o3.fits"
    with open_path(cube_folder) as survey:  # the catalog names .fits files: the FITS reader
        assert isinstance(survey, FitsSurvey)


def test_folder_with_fits_catalog(cube_folder: Path, cube: np.ndarray) -> None:
    cat = Table({**catalog_table(N), "file": [f"obj/o{i}.fits" for i in range(N)]})
    cat.write(cube_folder / "catalog.fits")
    (cube_folder / "catalog.csv").unlink()
    with FitsSurvey(cube_folder, fits_cfg(bands=("g", "r", "i"))) as survey:
        np.testing.assert_array_equal(survey.read([1]), cube[[1]])
        np.testing.assert_allclose(survey.catalog["dec"], np.linspace(-1.0, 1.0, N), rtol=0, atol=1e-12)


def test_folder_opens_lazily_and_checks_each_file_when_read(cube_folder: Path) -> None:
    with FitsSurvey(cube_folder, fits_cfg()) as survey:
        # Damaged after open: only a read can notice, and it names the file and the row.
        (cube_folder / "obj" / "o3.fits").unlink()
        fits.PrimaryHDU(np.zeros((C, SIZE + 2, SIZE + 2), np.float32)).writeto(cube_folder / "obj" / "o4.fits", overwrite=True)
        survey.read([0, 1, 2])
        with pytest.raises(SurveyError, match=r"o3\.fits \(catalog row 3.*not found"):
            survey.read([3])
        with pytest.raises(SurveyError, match=r"o4\.fits \(catalog row 4.*shape \(3, 12, 12\); expected \(3, 10, 10\)"):
            survey.read([4])


def test_single_cube_position_from_header_keywords(tmp_path: Path) -> None:
    hdu = fits.PrimaryHDU(np.ones((2, 8, 8), np.float32))
    hdu.header["RA"], hdu.header["DEC"] = "10:00:00.0", "-30:30:00"
    hdu.writeto(tmp_path / "one.fits")
    with FitsSurvey(tmp_path / "one.fits", fits_cfg(bands=("g", "r"))) as survey:
        assert len(survey) == 1
        assert survey.catalog[["ra", "dec"]].iloc[0].tolist() == pytest.approx([150.0, -30.5], abs=1e-9)
        np.testing.assert_array_equal(survey[0], np.ones((2, 8, 8), np.float32))


def test_single_cube_position_from_wcs_centre_not_crval(tmp_path: Path) -> None:
    hdu = fits.PrimaryHDU(np.zeros((1, 11, 11), np.float32))
    h = hdu.header
    h["CTYPE1"], h["CTYPE2"] = "RA---TAN", "DEC--TAN"
    h["CRVAL1"], h["CRVAL2"] = 40.0, 0.0
    h["CRPIX1"], h["CRPIX2"] = 1.0, 1.0  # the reference pixel is a corner, not the centre
    h["CDELT1"], h["CDELT2"] = -0.5 / 3600, 0.5 / 3600
    hdu.writeto(tmp_path / "cutout.fits")
    with FitsSurvey(tmp_path / "cutout.fits", fits_cfg()) as survey:
        ra, dec = survey.catalog[["ra", "dec"]].iloc[0]
        # The centre is 5 pixels of 0.5" from the corner on each axis.
        assert ra == pytest.approx(40.0 - 2.5 / 3600, abs=1e-8)
        assert dec == pytest.approx(2.5 / 3600, abs=1e-8)
        assert survey.pixel_scale == pytest.approx(0.5, abs=1e-9)


def test_single_image_position_from_file_name(tmp_path: Path) -> None:
    path = tmp_path / "cut_ra=12.5_dec=-3.25.fits"
    fits.PrimaryHDU(np.zeros((6, 6), np.float32)).writeto(path)  # (H, W): one band
    with FitsSurvey(path, fits_cfg(pixel_scale=0.2)) as survey:
        assert survey.shape == (1, 6, 6)
        assert survey.catalog[["ra", "dec"]].iloc[0].tolist() == [12.5, -3.25]
        assert survey.pixel_scale == 0.2  # no WCS: the config's


def test_real_hsc_cube(shared_data: Path) -> None:
    path = shared_data / "hsc_scenes" / HSC_CUBE
    with FitsSurvey(path, fits_cfg(bands=("g", "r", "i", "z", "y"))) as survey:
        assert (len(survey), survey.shape) == (1, (5, 54, 54))
        assert survey.bands == ("g", "r", "i", "z", "y")
        ra, dec = survey.catalog[["ra", "dec"]].iloc[0]
        assert ra == pytest.approx(150.24071, abs=5e-5)  # 0.2 arcsec: the name is rounded
        assert dec == pytest.approx(2.06514, abs=5e-5)
        assert survey.pixel_scale == pytest.approx(0.168, abs=1e-6)  # HSC
        pixels = survey[0]
        assert pixels.dtype == np.float32 and np.isfinite(pixels).all()
        assert pixels.max() > 10 * np.median(np.abs(pixels))  # real sources above the noise
    with open_path(path) as survey:
        assert survey.bands == ("b0", "b1", "b2", "b3", "b4")
