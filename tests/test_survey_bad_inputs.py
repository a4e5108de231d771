"""Every kind of bad input is refused with a message naming the file, key or column, row, and
what was expected versus found."""

from __future__ import annotations

import re
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from PIL import Image

from galexplore.config import SurveyConfig
from galexplore.errors import SurveyError
from galexplore.survey.coords import parse_iau_names
from galexplore.survey.fits import FitsSurvey
from galexplore.survey.hdf5 import HDF5Survey
from galexplore.survey.images import ImageFolderSurvey
from galexplore.survey.memory import ArraySurvey

from .synthetic import png_header_only

N, SIZE = 4, 8
RNG_SEED = 9


def cube(n: int = N, c: int = 5, size: int = SIZE) -> np.ndarray:
    return np.random.default_rng(RNG_SEED).normal(size=(n, c, size, size)).astype(np.float32)


def radec(n: int = N) -> dict[str, np.ndarray]:
    return {"ra": np.linspace(1.0, 2.0, n), "dec": np.linspace(-1.0, 1.0, n)}


def write_h5(path: Path, images: np.ndarray | None = None, **columns: np.ndarray) -> Path:
    images = cube() if images is None else images
    columns = {**radec(len(images)), **columns}
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=images)
        for name, values in columns.items():
            f.create_dataset(name, data=values)
    return path


def write_folder(folder: Path, n: int = N, size: int = SIZE, **columns: object) -> Path:
    """A folder of n seeded RGB PNGs and catalog.csv (ra/dec unless columns replace them)."""
    rgb = np.random.default_rng(RNG_SEED).integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)
    for i in range(n):
        Image.fromarray(rgb[i]).save(folder / f"g{i}.png")
    table = {**radec(n), "file": [f"g{i}.png" for i in range(n)], **columns}
    pd.DataFrame({k: v for k, v in table.items() if v is not None}).to_csv(folder / "catalog.csv", index=False)
    return folder


def raises(match: str) -> pytest.RaisesExc:
    return pytest.raises(SurveyError, match=match)


# -- HDF5 files --------------------------------------------------------------------------------


def test_truncated_hdf5(tmp_path: Path) -> None:
    path = write_h5(tmp_path / "cut.h5", cube(n=64, size=32))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with raises(rf"{re.escape(str(path))}: (not a readable HDF5 file|cannot read).*truncated"):
        with HDF5Survey(path) as survey:
            survey.read(np.arange(64))


def test_not_hdf5_at_all(tmp_path: Path) -> None:
    path = tmp_path / "notes.h5"
    path.write_text("these are notes, not a survey")
    with raises(rf"{re.escape(str(path))}: not a readable HDF5 file"):
        HDF5Survey(path)


def test_string_images(tmp_path: Path) -> None:
    path = tmp_path / "s.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=np.full((N, 1, 2, 2), b"x", dtype="S1"))
    with raises(r"'images' has dtype \|S1; expected numbers"):
        HDF5Survey(path)


def test_missing_images_key(tmp_path: Path) -> None:
    path = write_h5(tmp_path / "s.h5")
    with raises(r"no 'cutouts' dataset \(survey.images_key\); found keys: dec, images, ra"):
        HDF5Survey(path, SurveyConfig(images_key="cutouts"))


def test_wrong_band_count_vs_config(tmp_path: Path) -> None:
    path = write_h5(tmp_path / "s.h5", cube(c=3))
    with raises(r"s\.h5: cutouts have 3 bands; expected 5 \(u,g,r,i,z, survey.bands\)"):
        HDF5Survey(path)
    fits.PrimaryHDU(cube(c=3)[0]).writeto(tmp_path / "ra=1_dec=2.fits")
    with raises(r"cutouts have 3 bands; the config \(survey.bands\) lists 5: u,g,r,i,z"):
        FitsSurvey(tmp_path / "ra=1_dec=2.fits", SurveyConfig(source="fits"))
    write_folder(tmp_path)
    with raises(r"g0\.png: RGB images have 3 channels; the config \(survey.bands\) lists 5"):
        ImageFolderSurvey(tmp_path, SurveyConfig(source="images"))


def test_catalog_and_images_of_different_lengths(tmp_path: Path) -> None:
    path = write_h5(tmp_path / "s.h5", z=np.zeros(N - 1))
    with raises(r"catalog dataset 'z' has 3 rows but 'images' has 4 cutouts"):
        HDF5Survey(path)
    with raises(r"<memory>: catalog has 3 rows but there are 4 images"):
        ArraySurvey(cube(), radec(N - 1))
    stack = tmp_path / "stack.fits"
    fits.PrimaryHDU(cube()).writeto(stack)
    pd.DataFrame(radec(N + 2)).to_csv(tmp_path / "cat.csv", index=False)
    with raises(r"cat\.csv: catalog has 6 rows but there are 4 images"):
        FitsSurvey(stack, SurveyConfig(source="fits", bands=()), catalog=tmp_path / "cat.csv")


def test_duplicate_ids(tmp_path: Path) -> None:
    path = write_h5(tmp_path / "s.h5", object_id=np.array([5, 7, 9, 7]))
    with raises(r"s\.h5: duplicate object_id 7 in rows 1 and 3; expected unique ids"):
        HDF5Survey(path)


def test_missing_ra_dec(tmp_path: Path) -> None:
    with raises(r"catalog has no 'dec' column; found columns: object_id, ra"):
        ArraySurvey(cube(), {"ra": np.ones(N)})
    write_folder(tmp_path, ra=None, dec=None)
    with raises(r"catalog\.csv: catalog has no RA/Dec: expected columns 'ra' and 'dec'.*found columns: object_id, file"):
        ImageFolderSurvey(tmp_path)
    write_folder(tmp_path, dec=None)
    with raises(r"catalog has 'ra' but no 'dec' column \(survey.dec_column = 'DEJ2000'\); expected both"):
        ImageFolderSurvey(tmp_path, SurveyConfig(source="images", bands=(), dec_column="DEJ2000"))


def test_ra_dec_out_of_range(tmp_path: Path) -> None:
    path = write_h5(tmp_path / "s.h5", dec=np.array([0.0, 10.0, 95.0, 0.0]))
    with raises(r"column 'dec' row 2 is 95\.0; expected -90\.0 <= dec <= 90\.0 degrees"):
        HDF5Survey(path)
    with raises(r"column 'ra' row 1 is 360\.0; expected 0\.0 <= ra < 360\.0"):
        ArraySurvey(cube(), {"ra": [0.0, 360.0, 1.0, 1.0], "dec": np.zeros(N)})
    with raises(r"column 'ra' row 3 is 'n/a'; expected degrees"):
        ArraySurvey(cube(), {"ra": ["1", "2", "3", "n/a"], "dec": np.zeros(N)})


# -- pixels ------------------------------------------------------------------------------------


def test_nonfinite_pixels_rejected_or_masked(tmp_path: Path) -> None:
    images = cube()
    images[2, 1, 3, 3] = np.nan
    images[2, 4, 0, 0] = np.inf
    path = write_h5(tmp_path / "s.h5", images, object_id=np.array([10, 11, 12, 13]))
    with HDF5Survey(path) as survey:
        survey.read([0, 1, 3])
        with raises(r"s\.h5: cutout of object row 2 \(object_id 12\) has 2 non-finite .*survey.nonfinite"):
            survey.read([1, 2])
    with HDF5Survey(path, SurveyConfig(nonfinite="mask")) as survey:
        batch = survey.read([2])
        expected = np.where(np.isfinite(images[2]), images[2], 0.0)
        np.testing.assert_array_equal(batch[0], expected)  # only the two bad pixels changed
        assert survey.nonfinite_masked == 2


# -- image folders -----------------------------------------------------------------------------


def test_non_utf8_csv(tmp_path: Path) -> None:
    write_folder(tmp_path)
    text = (tmp_path / "catalog.csv").read_bytes()
    bad = text.replace(b"g2.png", b"g\xe92.png")  # Latin-1 e-acute
    (tmp_path / "catalog.csv").write_bytes(bad)
    at = bad.index(b"\xe9")
    with raises(rf"catalog\.csv: not UTF-8 text: byte {at} \(line 4\) is 0xe9"):
        ImageFolderSurvey(tmp_path)


def test_missing_file_column(tmp_path: Path) -> None:
    write_folder(tmp_path)
    with raises(r"catalog has no 'path' column \(survey.file_column\).*found columns: ra, dec, file"):
        ImageFolderSurvey(tmp_path, SurveyConfig(source="images", bands=(), file_column="path"))


def test_unreadable_and_truncated_png(tmp_path: Path) -> None:
    write_folder(tmp_path)
    (tmp_path / "g0.png").write_bytes(b"not an image")  # the first image: found at open
    with raises(r"g0\.png \(catalog row 0, catalog\.csv\): not a readable PNG/JPEG image"):
        ImageFolderSurvey(tmp_path)
    write_folder(tmp_path)
    with ImageFolderSurvey(tmp_path) as survey:
        data = (tmp_path / "g2.png").read_bytes()
        (tmp_path / "g2.png").write_bytes(data[: len(data) // 2])  # header fine, pixels cut
        (tmp_path / "g3.png").unlink()
        survey.read([0, 1])
        with raises(r"g2\.png \(catalog row 2, catalog\.csv\): image data is corrupt or truncated"):
            survey.read([1, 2])
        with raises(r"g3\.png \(catalog row 3, catalog\.csv\): image file not found"):
            survey.read([3])


def test_absurdly_large_image_dimensions(tmp_path: Path) -> None:
    write_folder(tmp_path)
    (tmp_path / "g0.png").write_bytes(png_header_only(100_000, 100_000))  # a decompression bomb
    with raises(r"g0\.png \(catalog row 0, catalog\.csv\): image header claims absurdly large dimensions"):
        ImageFolderSurvey(tmp_path)
    (tmp_path / "g0.png").write_bytes(png_header_only(5000, 5000))
    with raises(r"g0\.png \(catalog row 0, catalog\.csv\): image header claims 5000x5000 pixels, absurdly large"):
        ImageFolderSurvey(tmp_path)


def test_wrong_image_size(tmp_path: Path) -> None:
    write_folder(tmp_path)
    with raises(r"g0\.png \(catalog row 0\): image is 8x8 pixels; expected 16x16 \(survey.image_size = 16\)"):
        ImageFolderSurvey(tmp_path, SurveyConfig(source="images", bands=(), image_size=16))
    Image.fromarray(np.zeros((SIZE, SIZE + 2, 3), np.uint8)).save(tmp_path / "g1.png")
    Image.fromarray(np.zeros((SIZE, SIZE), np.uint8)).save(tmp_path / "g2.png")
    with ImageFolderSurvey(tmp_path) as survey:
        with raises(r"g1\.png \(catalog row 1, catalog\.csv\): image is 10x8 RGB \(3 channels\); expected 8x8 with 3"):
            survey.read([1])
        with raises(r"g2\.png \(catalog row 2, catalog\.csv\): image is 8x8 L \(1 channels\); expected 8x8 with 3"):
            survey.read([2])
    stack = tmp_path / "stack.fits"
    fits.PrimaryHDU(cube()).writeto(stack)
    pd.DataFrame(radec()).to_csv(tmp_path / "cat.csv", index=False)
    with raises(r"stack\.fits: cutouts are 8x8 pixels; the config \(survey.image_size\) expects 64x64"):
        FitsSurvey(stack, SurveyConfig(source="fits", bands=(), image_size=64), catalog=tmp_path / "cat.csv")


def test_malformed_iau_name(tmp_path: Path) -> None:
    names = ["J000411.19+020924.0", "J001655.18-002739.1", "J0016-55.18+002739", "J003937.09-032825.0"]
    write_folder(tmp_path, ra=None, dec=None, iauname=names)
    with raises(r"catalog\.csv: column 'iauname': row 2 is 'J0016-55\.18\+002739'; expected an IAU name of the form"):
        ImageFolderSurvey(tmp_path)
    with raises(r"row 1 is 'J250000\.00\+000000\.0', out of range; expected hours < 24"):
        parse_iau_names(["J000411.19+020924.0", "J250000.00+000000.0"])
    with raises(r"row 1 is None; expected an IAU name"):
        parse_iau_names(["J000411.19+020924.0", None])  # type: ignore[list-item]
    with raises(r"row 0 is 12\.5; expected an IAU name"):
        parse_iau_names([12.5])  # type: ignore[list-item]


# -- FITS --------------------------------------------------------------------------------------


def test_fits_stack_without_catalog_and_folder_without_files(tmp_path: Path) -> None:
    fits.PrimaryHDU(cube()).writeto(tmp_path / "stack.fits")
    with raises(r"stack\.fits: a stacked cube of 4 cutouts with no catalog; expected a table HDU"):
        FitsSurvey(tmp_path / "stack.fits", SurveyConfig(source="fits", bands=()))
    folder = tmp_path / "cubes"
    folder.mkdir()
    pd.DataFrame({**radec(2), "file": ["a.fits", "b.fits"]}).to_csv(folder / "catalog.csv", index=False)
    with raises(r"a\.fits \(catalog row 0, catalog\.csv\): FITS file not found"):
        FitsSurvey(folder, SurveyConfig(source="fits", bands=()))


def test_fits_header_bands_disagree_with_config(tmp_path: Path) -> None:
    hdu = fits.PrimaryHDU(cube(c=3)[0])
    hdu.header["BANDS"] = "g,r,z"
    hdu.writeto(tmp_path / "ra=1_dec=2.fits")
    with raises(r"the header's bands are g,r,z; the config \(survey.bands\) says g,r,i"):
        FitsSurvey(tmp_path / "ra=1_dec=2.fits", SurveyConfig(source="fits", bands=("g", "r", "i")))


def test_fits_single_cube_without_position(tmp_path: Path) -> None:
    fits.PrimaryHDU(cube(c=2)[0]).writeto(tmp_path / "object.fits")
    with raises(r"object\.fits: no position for this single cube: expected RA/DEC header keywords"):
        FitsSurvey(tmp_path / "object.fits", SurveyConfig(source="fits", bands=()))
