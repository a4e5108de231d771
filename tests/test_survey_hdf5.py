"""The HDF5 reader: both layouts, per-band columns, renaming, and batched reads in the asked order."""

from __future__ import annotations

import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest

from galexplore.config import SurveyConfig
from galexplore.survey import open_path
from galexplore.survey.hdf5 import HDF5Survey, write_catalog_column

N, C, SIZE = 8, 5, 12


@pytest.fixture
def cube() -> np.ndarray:
    """Seeded float32 cutouts (N, C, H, W)."""
    return np.random.default_rng(1).normal(size=(N, C, SIZE, SIZE)).astype(np.float32)


def write_survey(path: Path, images: np.ndarray, **columns: np.ndarray) -> Path:
    """An HDF5 survey in the layout of Hayat et al.: /images plus one dataset per column."""
    n = len(images)
    columns.setdefault("ra", np.linspace(10.0, 20.0, n))
    columns.setdefault("dec", np.linspace(-5.0, 5.0, n))
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=images)
        for name, values in columns.items():
            write_catalog_column(f, name, values)
    return path


def test_channels_first_reads_exact_cutouts(tmp_path: Path, cube: np.ndarray) -> None:
    path = write_survey(tmp_path / "s.h5", cube)
    with HDF5Survey(path, SurveyConfig(source="hdf5")) as survey:
        assert len(survey) == N
        assert survey.shape == (C, SIZE, SIZE)
        assert survey.bands == ("u", "g", "r", "i", "z")
        np.testing.assert_array_equal(survey.read(np.arange(N)), cube)
        np.testing.assert_array_equal(survey[-1], cube[-1])
        assert list(survey.catalog.columns[:3]) == ["object_id", "ra", "dec"]
        np.testing.assert_array_equal(survey.catalog["object_id"], np.arange(N))  # ids default to rows
        np.testing.assert_allclose(survey.catalog["ra"], np.linspace(10.0, 20.0, N), rtol=0, atol=1e-12)
        with pytest.raises(IndexError, match="index 8 out of range for 8 objects"):
            survey[N]


def test_channels_last_is_transposed_to_channels_first(tmp_path: Path, cube: np.ndarray) -> None:
    path = write_survey(tmp_path / "s.h5", cube.transpose(0, 2, 3, 1))  # (N, H, W, C)
    cfg = SurveyConfig(source="hdf5", layout="channels_last")
    with HDF5Survey(path, cfg) as survey:
        assert survey.shape == (C, SIZE, SIZE)
        np.testing.assert_array_equal(survey.read([3, 1]), cube[[3, 1]])


def test_per_band_column_is_split_and_renamed(tmp_path: Path, cube: np.ndarray) -> None:
    rng = np.random.default_rng(2)
    e_bv = rng.uniform(0, 0.1, size=(N, C))
    z = rng.uniform(0.01, 0.3, size=N)
    two = rng.normal(size=(N, 2))
    names = np.array([f"gal{i}" for i in range(N)], dtype=object)
    path = write_survey(tmp_path / "s.h5", cube, e_bv=e_bv, specz_redshift=z, shape2=two, name=names)
    cfg = SurveyConfig(source="hdf5", rename={"specz_redshift": "z_spec"})
    with HDF5Survey(path, cfg) as survey:
        cat = survey.catalog
        for j, band in enumerate("ugriz"):
            np.testing.assert_array_equal(cat[f"e_bv_{band}"], e_bv[:, j])
        np.testing.assert_array_equal(cat["shape2_0"], two[:, 0])  # not one per band: numbered
        np.testing.assert_array_equal(cat["z_spec"], z)
        assert "specz_redshift" not in cat.columns
        assert cat["name"].tolist() == list(names)  # UTF-8 strings decoded


def test_bands_attribute_and_id_column(tmp_path: Path, cube: np.ndarray) -> None:
    path = write_survey(tmp_path / "s.h5", cube[:, :3], objid=np.arange(100, 100 + N))
    with h5py.File(path, "a") as f:
        f.attrs["bands"] = ["g", "r", "z"]
        f.attrs["pixel_scale"] = 0.262
    with HDF5Survey(path, SurveyConfig(source="hdf5", id_column="objid")) as survey:
        assert survey.bands == ("g", "r", "z")
        assert survey.pixel_scale == pytest.approx(0.262, abs=1e-12)
        assert survey.catalog["object_id"].tolist() == list(range(100, 100 + N))


def test_batched_read_keeps_order_and_duplicates(tmp_path: Path, cube: np.ndarray) -> None:
    path = write_survey(tmp_path / "s.h5", cube)
    asked = np.array([5, 0, 2, 3, 0, 5, 1, 7])
    with HDF5Survey(path) as survey:
        np.testing.assert_array_equal(survey.read(asked), cube[asked])
        assert survey.read([]).shape == (0, C, SIZE, SIZE)


def test_contiguous_rows_are_read_as_one_slice(tmp_path: Path, cube: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_survey(tmp_path / "s.h5", cube)
    slices: list[object] = []
    original = h5py.Dataset.__getitem__

    def spy(self: h5py.Dataset, key: object) -> np.ndarray:
        if self.name == "/images":
            slices.append(key)
        return original(self, key)

    with HDF5Survey(path) as survey:
        monkeypatch.setattr(h5py.Dataset, "__getitem__", spy)
        batch = survey.read([6, 1, 2, 3, 5, 2])  # runs 1..3 and 5..6
    np.testing.assert_array_equal(batch, cube[[6, 1, 2, 3, 5, 2]])
    assert slices == [slice(1, 4), slice(5, 7)]


def test_survey_pickles_and_reopens(tmp_path: Path, cube: np.ndarray) -> None:
    """A spawned DataLoader worker gets a pickled survey that reopens its file."""
    path = write_survey(tmp_path / "s.h5", cube)
    with HDF5Survey(path) as survey:
        survey.read([0])
        with pickle.loads(pickle.dumps(survey)) as copy:
            np.testing.assert_array_equal(copy.read([4, 2]), cube[[4, 2]])


def test_open_path_reads_hdf5(tmp_path: Path, cube: np.ndarray) -> None:
    path = write_survey(tmp_path / "s.hdf5", cube)
    with open_path(path) as survey:
        assert isinstance(survey, HDF5Survey)
        assert len(survey) == N
