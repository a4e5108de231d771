"""The in-memory survey: no copy of the pixels, the same catalog rules as every other source."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from galexplore.errors import SurveyError
from galexplore.survey.memory import ArraySurvey

N, C, SIZE = 7, 2, 6


@pytest.fixture
def cube() -> np.ndarray:
    return np.random.default_rng(7).normal(size=(N, C, SIZE, SIZE)).astype(np.float32)


def test_reads_without_copying_the_cube(cube: np.ndarray) -> None:
    survey = ArraySurvey(cube, {"ra": np.full(N, 10.0), "dec": np.zeros(N)}, bands=("g", "r"), pixel_scale=0.262)
    assert survey._images is cube  # the caller's array, not a copy
    cube[3, 1, 2, 2] = 42.0
    assert survey[3][1, 2, 2] == 42.0
    asked = [6, 0, 6, 3]
    np.testing.assert_array_equal(survey.read(asked), cube[asked])
    assert (len(survey), survey.shape, survey.bands, survey.pixel_scale) == (N, (C, SIZE, SIZE), ("g", "r"), 0.262)
    assert survey.catalog["object_id"].tolist() == list(range(N))
    assert survey.read([]).shape == (0, C, SIZE, SIZE)


def test_catalog_none_gives_placeholder_positions(cube: np.ndarray) -> None:
    survey = ArraySurvey(cube)
    assert survey.bands == ("b0", "b1")
    assert survey.pixel_scale is None
    assert survey.catalog.columns.tolist() == ["object_id", "ra", "dec"]
    assert (survey.catalog["ra"] == 0).all() and (survey.catalog["dec"] == 0).all()


def test_dataframe_catalog_keeps_ids_and_columns(cube: np.ndarray) -> None:
    cat = pd.DataFrame({"z": np.linspace(0.1, 0.2, N), "dec": np.ones(N), "ra": np.ones(N), "object_id": np.arange(N) * 3})
    survey = ArraySurvey(cube, cat)
    assert survey.catalog.columns.tolist() == ["object_id", "ra", "dec", "z"]
    assert survey.catalog["object_id"].tolist() == [0, 3, 6, 9, 12, 15, 18]
    assert "object_id" in cat.columns and cat.columns[0] == "z"  # the caller's frame is untouched


def test_integer_and_memmapped_cubes(tmp_path: Path) -> None:
    counts = np.random.default_rng(8).integers(0, 65535, size=(3, 1, 4, 4), dtype=np.uint16)
    mm = np.lib.format.open_memmap(tmp_path / "c.npy", mode="w+", dtype=np.uint16, shape=counts.shape)
    mm[:] = counts
    survey = ArraySurvey(mm)
    np.testing.assert_array_equal(survey.read([2, 0]), counts[[2, 0]].astype(np.float32))
    del survey, mm


def test_nonfinite_mask_replaces_and_counts(cube: np.ndarray) -> None:
    cube = cube.copy()
    cube[2, 0, 0, :3] = [np.nan, np.inf, -np.inf]
    survey = ArraySurvey(cube, nonfinite="mask")
    batch = survey.read([2, 1, 2])
    assert np.isfinite(batch).all()
    np.testing.assert_array_equal(batch[0, 0, 0, :3], [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(batch[1], cube[1])
    assert survey.nonfinite_masked == 6  # three pixels, read twice


def test_bad_arguments_are_named(cube: np.ndarray) -> None:
    with pytest.raises(SurveyError, match=r"images have shape \(7, 6, 6\); expected a 4-D cube"):
        ArraySurvey(cube[:, 0])
    with pytest.raises(SurveyError, match="images have 2 bands; expected 3"):
        ArraySurvey(cube, bands=("g", "r", "i"))
    with pytest.raises(SurveyError, match="nonfinite = 'drop'; expected 'reject' or 'mask'"):
        ArraySurvey(cube, nonfinite="drop")
    with pytest.raises(SurveyError, match="expected a numpy array"):
        ArraySurvey(cube.tolist())  # type: ignore[arg-type]
    with pytest.raises(SurveyError, match="cutouts are 6x5 pixels; expected square"):
        ArraySurvey(cube[..., :5])
