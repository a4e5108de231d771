"""Bring your own survey: labels under other names, surveys without labels, colour composites.

A tiny seeded image folder (8-bit PNG composites of Gaussian galaxies with a CSV catalog) is
built end to end without any label column; renaming is checked for every source that reads a
catalog (image folder, FITS folder, HDF5, a catalog given with embeddings).
"""

from __future__ import annotations

import io
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from PIL import Image

from galexplore.pipeline.build import build
from galexplore.config import SurveyConfig, config_from_dict
from galexplore.errors import ConfigError, SurveyError
from galexplore.survey.normalize import MAD_TO_SIGMA, sky_statistics
from galexplore.survey.fits import FitsSurvey
from galexplore.survey.hdf5 import HDF5Survey
from galexplore.survey.images import ImageFolderSurvey
from galexplore.survey.memory import ArraySurvey

N, SIZE = 48, 32


def composites(n: int, size: int, seed: int, sky: float = 20.0, sigma: float = 6.0) -> np.ndarray:
    """n seeded 8-bit RGB composites (n, size, size, 3): a Gaussian galaxy on a noisy sky."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    for i in range(n):
        width = rng.uniform(2, 6)
        galaxy = rng.uniform(60, 200) * np.exp(-(xx**2 + (yy * rng.uniform(0.4, 1)) ** 2) / (2 * width**2))
        colour = rng.uniform(0.6, 1.0, 3)
        image = sky + galaxy[..., None] * colour + rng.normal(0, sigma, (size, size, 3))
        out[i] = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    return out


def write_folder(folder: Path, images: np.ndarray, columns: dict[str, np.ndarray]) -> Path:
    (folder / "images").mkdir(parents=True, exist_ok=True)
    files = []
    for i, image in enumerate(images):
        files.append(f"images/g{i:04d}.png")
        Image.fromarray(image).save(folder / files[-1])
    n = len(images)
    table = {"ra": np.linspace(150.0, 151.0, n), "dec": np.linspace(1.0, 2.0, n), **columns, "file": files}
    pd.DataFrame(table).to_csv(folder / "catalog.csv", index=False)
    return folder


def small_config(path: Path, **tables: dict) -> dict:
    """A seconds-long build of a tiny image folder (like pipelines/images.toml, scaled down)."""
    raw = {
        "name": "byo", "seed": 0,
        "survey": {"source": "images", "path": str(path), "bands": ["red", "green", "blue"], "pixel_scale": 0.262},
        "augment": {"order": ["rotate", "jitter_crop", "psf_blur", "noise"], "crop_size": 24, "jitter": 2,
                    "noise_scale": [0.0, 1.0]},
        "model": {"arch": "resnet18", "representation_dim": 512, "stem": "small", "projection_dims": [64, 32],
                  "queue": 32, "momentum": 0.99, "bn_splits": 2},
        "train": {"epochs": 1, "batch_size": 16, "warmup_epochs": 0, "loader_workers": 0},
        "embed": {"pca_dim": 8},
        "neighbors": {"k": 10}, "project": {"n_neighbors": 5}, "anomaly": {"k": 5}, "trust": {"k": 5},
    }
    for name, values in tables.items():
        raw[name] = {**raw.get(name, {}), **values}
    return raw


# -- a survey without labels ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def unlabelled_atlas(tmp_path_factory) -> Path:
    folder = write_folder(tmp_path_factory.mktemp("nolabels") / "survey", composites(N, SIZE, seed=5), {})
    config = config_from_dict(small_config(folder), source="test")
    build(config, folder.parent / "atlas")
    return folder.parent / "atlas"


def test_a_survey_without_labels_builds_and_trust_says_why(unlabelled_atlas: Path) -> None:
    from galexplore.atlas.files import open_atlas

    atlas = open_atlas(unlabelled_atlas)
    catalog = atlas.catalog
    assert len(catalog) == N and atlas.embeddings.shape == (N, 512)
    np.testing.assert_allclose(np.linalg.norm(atlas.embeddings, axis=1), 1.0, atol=1e-5)
    graph = np.asarray(atlas.neighbors)
    assert graph.shape == (N, 10) and not (graph == np.arange(N)[:, None]).any()  # never itself
    # trust is undefined without labelled galaxies: NaN everywhere, and the build says why
    assert catalog["trust"].isna().all() and "trust_spec_z" in catalog and catalog["trust_spec_z"].isna().all()
    notes = atlas.stages["scores"]["notes"]
    assert "0 labelled galaxies" in notes["trust"] and "undefined" in notes["trust"]
    assert set(catalog["label_availability"].astype(str)) == {"none"}
    assert atlas.stages["probes"]["columns"] == [] and not (unlabelled_atlas / "probes.npy").exists()
    assert np.isfinite(catalog["anomaly_score"]).all() and np.isfinite(catalog[["umap_x", "umap_y"]]).all().all()


def test_the_app_opens_an_atlas_without_labels_and_shows_the_trust_note(unlabelled_atlas: Path) -> None:
    import panel as pn

    from galexplore.explorer.page import Explorer
    from galexplore.explorer.store import load

    data = load(unlabelled_atlas)
    assert "trust" not in data.colourings  # nothing to colour by
    assert "0 labelled galaxies" in data.trust_note()
    explorer = Explorer(data)
    text = " ".join(str(getattr(p, "object", "")) for p in pn.panel(explorer.controls).objects)
    assert "trust is undefined" in text and "0 labelled galaxies" in text
    explorer.state.trust_overlay = True  # shading by an undefined trust shades nothing, and does not fail
    cat = data.catalog
    explorer.map.streams["tap"].event(x=cat["umap_x"].iloc[7] + 1e-6, y=cat["umap_y"].iloc[7])
    assert explorer.state.query == 7
    similar = list(explorer.map.marks_pipe.data["role"]).count("similar")
    assert similar == min(explorer.state.k, 10)
    png = data.cutouts.rgb_png(7, size=32)
    assert png is not None and Image.open(io.BytesIO(png)).size == (32, 32)


def test_composites_are_shown_as_they_are_not_stretched_again(unlabelled_atlas: Path, tmp_path: Path) -> None:
    from galexplore.atlas.files import open_atlas
    from galexplore.explorer.cutouts import CutoutSource

    source = CutoutSource(open_atlas(unlabelled_atlas))
    png = source.rgb_png(3, size=SIZE)
    shown = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    original = composites(N, SIZE, seed=5)[3]
    np.testing.assert_array_equal(shown, original)  # the file's pixels, not a Lupton re-stretch
    bands = source.band_pngs(3, size=SIZE)
    assert list(bands) == ["red", "green", "blue"]
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(bands["green"]))), original[..., 1])


# -- noise measured on 8-bit composites ------------------------------------------------------------


def test_noise_of_8bit_composites_is_measured_through_the_steps(tmp_path: Path) -> None:
    sigma = 3.0  # counts: a few 8-bit steps, where a plain MAD sticks to a step
    folder = write_folder(tmp_path / "s", composites(60, 48, seed=1, sky=30.0, sigma=sigma), {})
    survey = ImageFolderSurvey(folder, SurveyConfig(source="images", bands=()))
    assert survey.quantum == pytest.approx(1 / 255)
    background, noise = sky_statistics(survey, n_sample=60, seed=0)
    np.testing.assert_allclose(noise * 255, sigma, rtol=0.05)  # 5%: dithered sigma_MAD of ~7,000 pixels
    np.testing.assert_allclose(background * 255, 30.0, atol=0.5)
    # the same numbers without dithering are stuck on whole steps
    undithered = ArraySurvey(survey.read(np.arange(60)), bands=survey.bands)
    plain = sky_statistics(undithered, n_sample=60, seed=0)[1] * 255 / MAD_TO_SIGMA
    np.testing.assert_allclose(plain, np.round(plain * 2) / 2, atol=1e-4)  # float32 sums


def test_a_composite_with_a_black_sky_still_gets_a_noise_level(tmp_path: Path) -> None:
    images = composites(10, 32, seed=2, sky=0.0, sigma=0.0)  # sky clipped to 0: no noise to see
    folder = write_folder(tmp_path / "s", images, {})
    survey = ImageFolderSurvey(folder, SurveyConfig(source="images", bands=()))
    noise = sky_statistics(survey, n_sample=10, seed=0)[1]
    assert (noise >= 1 / 255 / np.sqrt(12) - 1e-12).all() and (noise < 1 / 255).all()  # the quantisation noise
    with pytest.raises(SurveyError, match="no measurable noise"):  # a float survey without noise still fails
        sky_statistics(ArraySurvey(survey.read(np.arange(10)), bands=survey.bands), n_sample=10)


# -- the config --------------------------------------------------------------------------------------


def test_reddening_is_refused_for_colour_composites(tmp_path: Path) -> None:
    raw = small_config(tmp_path, augment={"order": ["rotate", "jitter_crop", "redden", "noise"]})
    with pytest.raises(ConfigError, match="already stretched, not fluxes"):
        config_from_dict(raw, source="images.toml")
    # without redden, no extinction per band is needed (the default has five, for ugriz)
    config = config_from_dict(small_config(tmp_path), source="images.toml")
    assert len(config.augment.extinction) == 5 and len(config.survey.bands) == 3


def test_the_presets_load(tmp_path: Path) -> None:
    from galexplore.config import load_config

    pipelines = Path(__file__).resolve().parents[1] / "pipelines"
    images = load_config(pipelines / "images.toml")
    assert images.survey.source == "images" and "redden" not in images.augment.order
    assert images.trust.labels == {} and images.probes.morphology == ()
    rings = load_config(pipelines / "decals_rings.toml")
    assert rings.resolve(rings.survey.path).parts[-3:] == ("shared", "data", "decals_rings")
    assert rings.probes.morphology == ("ring", "p_features") and rings.trust.labels["ring"] == "ring"


def test_probe_columns_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"probes.morphology\[1\]"):
        config_from_dict({"probes": {"morphology": ["ring", "z_spec"]}}, source="x.toml")
    with pytest.raises(ConfigError, match="unknown key 'probes.colums'"):
        config_from_dict({"probes": {"colums": []}}, source="x.toml")


# -- label mapping through the config, for every source ----------------------------------------------


RENAME = {"zspec_best": "z_spec", "gz_featured": "p_features"}


def _labels(n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    z = rng.uniform(0.01, 0.3, n)
    z[::4] = np.nan  # not every galaxy has a spectrum
    return {"zspec_best": z, "gz_featured": rng.uniform(0, 1, n)}


def _image_folder(tmp_path: Path, n: int) -> tuple[Path, SurveyConfig]:
    folder = write_folder(tmp_path / "img", composites(n, 24, seed=4), _labels(n))
    return folder, SurveyConfig(source="images", path=str(folder), bands=(), rename=RENAME)


def _fits_folder(tmp_path: Path, n: int) -> tuple[Path, SurveyConfig]:
    folder = tmp_path / "fits"
    folder.mkdir()
    cubes = np.random.default_rng(5).normal(size=(n, 2, 16, 16)).astype(np.float32)
    files = []
    for i, cube in enumerate(cubes):
        files.append(f"o{i}.fits")
        fits.PrimaryHDU(cube).writeto(folder / files[-1])
    table = {"ra": np.linspace(10, 11, n), "dec": np.linspace(-1, 1, n), **_labels(n), "file": files}
    pd.DataFrame(table).to_csv(folder / "catalog.csv", index=False)
    return folder, SurveyConfig(source="fits", path=str(folder), bands=("g", "r"), rename=RENAME)


def _hdf5(tmp_path: Path, n: int) -> tuple[Path, SurveyConfig]:
    path = tmp_path / "s.h5"
    with h5py.File(path, "w") as f:
        f["images"] = np.random.default_rng(6).normal(size=(n, 2, 16, 16)).astype(np.float32)
        f["ra"], f["dec"] = np.linspace(10, 11, n), np.linspace(-1, 1, n)
        for name, values in _labels(n).items():
            f[name] = values
    return path, SurveyConfig(source="hdf5", path=str(path), bands=("g", "r"), rename=RENAME)


@pytest.mark.parametrize("make", [_image_folder, _fits_folder, _hdf5], ids=["images-csv", "fits-folder-csv", "hdf5"])
def test_rename_maps_label_columns_for_every_source(tmp_path: Path, make) -> None:
    n = 12
    path, cfg = make(tmp_path, n)
    reader = {"images": ImageFolderSurvey, "fits": FitsSurvey, "hdf5": HDF5Survey}[cfg.source]
    with (reader(path, cfg) if cfg.source == "hdf5" else reader(path, cfg, None)) as survey:
        catalog = survey.catalog
    expected = _labels(n)
    assert "zspec_best" not in catalog and "gz_featured" not in catalog
    np.testing.assert_array_equal(catalog["z_spec"].to_numpy(), expected["zspec_best"])  # NaN where missing
    np.testing.assert_allclose(catalog["p_features"].to_numpy(), expected["gz_featured"])


def test_rename_of_a_missing_or_clashing_column_is_an_error(tmp_path: Path) -> None:
    folder, cfg = _image_folder(tmp_path, 6)
    with pytest.raises(SurveyError, match="survey.rename names column 'redshift'"):
        ImageFolderSurvey(folder, SurveyConfig(source="images", bands=(), rename={"redshift": "z_spec"}))
    with pytest.raises(SurveyError, match="maps 'gz_featured' to 'ra'"):
        ImageFolderSurvey(folder, SurveyConfig(source="images", bands=(), rename={"gz_featured": "ra"}))


def spec_z_groups(folder: Path, seed: int, ids: str = "object_id", ra: str = "ra", dec: str = "dec") -> np.ndarray:
    """emb.npy and cat.csv in `folder`: 120 embeddings in three clusters, two of them with a tight
    spec-z (column zspec_best, NaN for the third); returns the spec-z (120,)."""
    n = 120
    rng = np.random.default_rng(seed)
    which = rng.integers(0, 3, n)
    np.save(folder / "emb.npy", (rng.standard_normal((3, 8))[which] * 3 + rng.standard_normal((n, 8))).astype(np.float32))
    z = np.where(which < 2, 0.05 + 0.1 * which + rng.normal(0, 0.005, n), np.nan)
    pd.DataFrame({ids: np.arange(n), ra: rng.uniform(0, 360, n), dec: rng.uniform(-30, 30, n),
                  "zspec_best": z}).to_csv(folder / "cat.csv", index=False)
    return z


def test_renamed_labels_reach_trust_and_probes_of_a_csv_catalog(tmp_path: Path) -> None:
    """A CSV catalog given with embeddings: its renamed z_spec is labelled, trusted and probed."""
    z = spec_z_groups(tmp_path, seed=8, ids="objid", ra="RAdeg", dec="DEdeg")
    config = config_from_dict({"survey": {"id_column": "objid", "ra_column": "RAdeg", "dec_column": "DEdeg",
                                          "rename": {"zspec_best": "z_spec"}},
                               "embed": {"pca_dim": 0}, "neighbors": {"k": 15}, "project": {"n_neighbors": 5},
                               "trust": {"k": 5, "labels": {"spec-z": "z_spec"}}, "anomaly": {"k": 5}})
    build(config, tmp_path / "atlas", embeddings=tmp_path / "emb.npy", catalog=tmp_path / "cat.csv")
    from galexplore.atlas.files import open_atlas

    atlas = open_atlas(tmp_path / "atlas")
    catalog = atlas.catalog
    np.testing.assert_array_equal(catalog["z_spec"].to_numpy(), z)
    labelled = np.isfinite(z)
    assert (catalog["label_availability"].astype(str).to_numpy() == np.where(labelled, "spec-z", "none")).all()
    assert np.isfinite(catalog["trust_spec_z"]).all() and "z_phot" in catalog
    assert atlas.stages["probes"]["labelled_predictions"] == {"z_spec": "5-fold out-of-fold"}


# -- a survey labelled only with a flag and a class ----------------------------------------------


def test_a_survey_labelled_only_with_a_flag_and_a_class_is_monitored_probed_and_scored(tmp_path: Path) -> None:
    """No z_spec, no p_features: a 0/1 ring flag (trust's label, a morphology probe) and a class
    column get the training monitor, the probes, trust and the report card all the same."""
    import json

    from galexplore.atlas.files import open_atlas
    from galexplore.config.label_kinds import label_columns

    images = composites(N, SIZE, seed=11)
    bright = images.mean(axis=(1, 2, 3))
    ring = np.where(bright > np.median(bright), 1.0, 0.0)
    ring[:4] = np.nan  # no label
    shape = np.where(np.arange(N) % 3 == 0, "round", "flat").astype(object)
    shape[4:7] = "unknown"
    folder = write_folder(tmp_path / "survey", images, {"ring": ring, "shape": shape})
    config = config_from_dict(small_config(folder, probes={"morphology": ["ring"], "categorical": ["shape"],
                                                           "unlabelled": ["unknown"]},
                                           trust={"labels": {"ring": "ring"}}), source="test")
    build(config, tmp_path / "atlas", run=tmp_path / "run")
    atlas = open_atlas(tmp_path / "atlas")
    catalog = atlas.catalog
    assert label_columns(config, catalog) == [("ring", "fraction"), ("shape", "categorical")]
    log = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    monitor = [r["monitor"] for r in log if "monitor" in r][-1]
    assert set(monitor) == {"ring", "shape", "health"}
    assert monitor["ring"]["n"] == N - 4 and monitor["shape"]["n"] == N - 3  # every labelled row, once
    assert set(atlas.stages["probes"]["columns"]) == {"ring_pred", "shape_pred", "shape_prob"}
    assert catalog["ring_pred"].between(0, 1).all() and set(catalog["shape_pred"]) == {"round", "flat"}
    assert np.isfinite(catalog["trust_ring"]).all()
    card = atlas.stages["card"]["card"]["labels"]
    assert set(card) == {"ring", "shape"} and card["ring"]["n"] == N - 4 and card["shape"]["n"] == N - 3


def test_the_redshift_column_is_named_by_the_config(tmp_path: Path) -> None:
    """[probes] redshift: a catalog's own spec-z column, probed into z_phot without a rename."""
    z = spec_z_groups(tmp_path, seed=9)
    config = config_from_dict({"probes": {"redshift": "zspec_best", "morphology": []}, "card": {"rows": 0},
                               "embed": {"pca_dim": 0}, "neighbors": {"k": 15}, "project": {"n_neighbors": 5},
                               "trust": {"k": 5, "labels": {"spec-z": "zspec_best"}}, "anomaly": {"k": 5}})
    build(config, tmp_path / "atlas", embeddings=tmp_path / "emb.npy", catalog=tmp_path / "cat.csv")
    from galexplore.atlas.files import open_atlas

    atlas = open_atlas(tmp_path / "atlas")
    assert atlas.stages["probes"]["labelled_predictions"] == {"zspec_best": "5-fold out-of-fold"}
    labelled = np.isfinite(z)
    z_phot = atlas.catalog["z_phot"].to_numpy()
    assert np.median(np.abs(z_phot[labelled] - z[labelled])) < 0.02  # two tight redshift groups
    with pytest.raises(ConfigError, match="probes.morphology\\[0\\] = 'zspec_best'.*other than zspec_best"):
        config_from_dict({"probes": {"redshift": "zspec_best", "morphology": ["zspec_best"]}})
