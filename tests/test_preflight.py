"""A config that cannot build an atlas of the survey's size is refused before any stage runs:
nothing simulated, trained or written, and the message names the key, what it is and what was
expected."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from galexplore.cli import main
from galexplore.config import config_from_dict
from galexplore.errors import GalexploreError
from galexplore.pipeline.build import build
from galexplore.pipeline.preflight import check_cutouts, check_sizes

N = 30


@pytest.fixture
def given(tmp_path: Path) -> tuple[Path, Path]:
    """N random 8-D embeddings and their catalog."""
    rng = np.random.default_rng(3)
    np.save(tmp_path / "emb.npy", rng.standard_normal((N, 8)).astype(np.float32))
    pd.DataFrame({"object_id": np.arange(N), "ra": rng.uniform(0, 360, N),
                  "dec": rng.uniform(-60, 60, N)}).to_csv(tmp_path / "cat.csv", index=False)
    return tmp_path / "emb.npy", tmp_path / "cat.csv"


def _contents(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize(("tables", "expected"), [
    ({"neighbors": {"k": 30}}, f"emb.npy: {N} galaxies; expected at least neighbors.k + 1 = 31"),
    ({"neighbors": {"k": 29}, "project": {"n_neighbors": 30}},
     f"emb.npy: {N} galaxies for project.n_neighbors = 30; expected at least project.n_neighbors + 1 = 31"),
])
def test_a_config_too_big_for_the_given_embeddings_is_refused_before_anything_is_written(given, tmp_path, tables,
                                                                                        expected):
    before = _contents(tmp_path)
    with pytest.raises(GalexploreError) as refused:
        build(config_from_dict({"name": "p", **tables}), tmp_path / "atlas", embeddings=given[0], catalog=given[1])
    assert expected in str(refused.value)
    assert _contents(tmp_path) == before  # no atlas, no run folder


@pytest.mark.parametrize(("text", "expected"), [
    ("[neighbors]\nk = 64\n", "s.h5 (simulate.n): 64 galaxies; expected at least neighbors.k + 1 = 65"),
    ("[train]\nbatch_size = 128\n", "s.h5 (simulate.n): 64 galaxies for train.batch_size = 128 x 1 process; "
                                     "expected at least one full batch per epoch"),
])
def test_a_simulated_survey_too_small_for_the_config_is_refused_before_it_is_simulated(tmp_path, capsys, text,
                                                                                      expected):
    config = tmp_path / "c.toml"
    config.write_text(f"[survey]\npath = 's.h5'\n[simulate]\nn = 64\n{text}")
    assert main(["build", str(config), "--out", str(tmp_path / "atlas")]) == 2
    assert expected in capsys.readouterr().err
    assert _contents(tmp_path) == ["c.toml"]  # no survey, no atlas, no run folder


def test_an_embedding_crop_larger_than_the_cutouts_is_refused_before_training(tmp_path, capsys):
    rng = np.random.default_rng(0)
    with h5py.File(tmp_path / "s.h5", "w") as f:
        f["images"] = rng.normal(size=(40, 5, 16, 16)).astype(np.float32)
        f["ra"], f["dec"] = rng.uniform(0, 360, 40), rng.uniform(-60, 60, 40)
        f.attrs["bands"] = list("ugriz")
    config = tmp_path / "c.toml"
    config.write_text("[survey]\nsource = 'hdf5'\npath = 's.h5'\n[augment]\ncrop_size = 8\njitter = 2\n"
                      "[embed]\ncrop_size = 24\n[train]\nbatch_size = 16\n[neighbors]\nk = 20\n")
    assert main(["build", str(config), "--out", str(tmp_path / "atlas")]) == 2
    assert "s.h5: embed.crop_size = 24 exceeds the survey's 16x16 cutouts; expected at most 16" in capsys.readouterr().err
    assert _contents(tmp_path) == ["c.toml", "s.h5"]


def test_the_map_needs_its_fit_sample_to_hold_n_neighbors_plus_one():
    """UMAP is fitted on project.fit_sample galaxies (the rest transformed): that sample, not
    the survey, must hold n_neighbors + 1."""
    config = config_from_dict({"project": {"fit_sample": 10}})
    with pytest.raises(GalexploreError, match=r"x: project.fit_sample = 10 galaxies for project.n_neighbors = 15"):
        check_sizes(config, 1000, "x")
    check_sizes(config_from_dict({"project": {"fit_sample": 16}}), 1000, "x")


def test_the_training_crop_stands_for_an_unset_embedding_crop():
    config = config_from_dict({"augment": {"crop_size": 32}})
    check_cutouts(config, (5, 32, 48), "x")
    with pytest.raises(GalexploreError, match=r"augment.crop_size \(embed.crop_size = 0\) = 32 exceeds .* 24x48"):
        check_cutouts(config, (5, 24, 48), "x")
