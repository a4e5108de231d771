"""Real survey images end to end: the DECaLS ring set through `galexplore build` and the app's data
layer, and an HSC 5-band FITS cube rendered in colour. Skipped where ../shared/data is absent."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from galexplore.pipeline.build import build
from galexplore.config import SurveyConfig, config_from_dict, load_config

ROOT = Path(__file__).resolve().parents[1]
HSC_CUBE = "hsc_ra=150.24071_dec=2.06514.fits"
SUBSET = 64  # galaxies of the fast run: 32 rings and 32 others


def _check_atlas(atlas_path: Path, n: int, k: int) -> None:
    """Facts every atlas of the ring set must hold."""
    from galexplore.atlas.files import open_atlas

    atlas = open_atlas(atlas_path)
    catalog = atlas.catalog
    assert len(catalog) == n and atlas.embeddings.shape == (n, 512)
    np.testing.assert_allclose(np.linalg.norm(atlas.embeddings, axis=1), 1.0, atol=1e-5)
    graph = np.asarray(atlas.neighbors)
    assert graph.shape == (n, k) and graph.min() >= 0 and graph.max() < n
    assert not (graph == np.arange(n)[:, None]).any()  # a galaxy is never its own neighbour
    assert set(catalog["ring"].unique()) == {0, 1}  # the label is there to colour and probe by
    assert {"ring_pred", "p_features_pred", "trust_ring", "trust"} <= set(catalog.columns)
    assert "z_spec" not in catalog and "z_phot" not in catalog  # no redshifts, and no failure for it
    assert np.isfinite(catalog[["umap_x", "umap_y", "trust", "anomaly_score", "ring_pred"]]).all().all()
    assert atlas.stages["probes"]["held_out"]["ring"]["kind"] == "morphology"
    assert "redden" not in atlas.manifest["provenance"]["config"].split("[augment]")[1].split("\n")[1]


def _app_click(atlas_path: Path) -> None:
    """A click on a galaxy gives the query, its most similar galaxies and their colour cutouts."""
    from galexplore.explorer.page import Explorer
    from galexplore.explorer.store import load

    data = load(atlas_path)
    assert data.colourings["ring"].kind == "continuous" and data.trust_note() is None
    explorer = Explorer(data)
    cat = data.catalog
    explorer.map.streams["tap"].event(x=cat["umap_x"].iloc[5] + 1e-6, y=cat["umap_y"].iloc[5])
    d2 = (cat["umap_x"] - cat["umap_x"].iloc[5] - 1e-6) ** 2 + (cat["umap_y"] - cat["umap_y"].iloc[5]) ** 2
    assert explorer.state.query == int(np.argmin(d2.to_numpy()))
    shown = min(explorer.state.k, data.atlas.neighbors.shape[1])
    expected = np.asarray(data.atlas.neighbors[explorer.state.query, :shown])
    marks = explorer.map.marks_pipe.data
    assert list(marks["role"]).count("similar") == shown and explorer.state.query not in expected
    np.testing.assert_allclose(marks["umap_x"].iloc[:-1], cat["umap_x"].iloc[expected])
    pictures = data.cutouts.rgb_pngs(expected, size=96)
    assert len(pictures) == shown
    image = np.asarray(Image.open(io.BytesIO(pictures[0])).convert("RGB"))
    assert image.shape == (96, 96, 3) and image.std() > 5  # a galaxy, not a blank tile


@pytest.fixture(scope="module")
def ring_subset(shared_data: Path, tmp_path_factory) -> Path:
    """The first 32 rings and 32 others of the ring set, as an image folder of their own."""
    source = shared_data / "decals_rings"
    catalog = pd.read_csv(source / "catalog.csv")
    subset = pd.concat([catalog[catalog["ring"] == 1].head(SUBSET // 2), catalog[catalog["ring"] == 0].head(SUBSET // 2)])
    folder = tmp_path_factory.mktemp("rings") / "survey"
    folder.mkdir()
    (folder / "images").mkdir()
    for name in subset["file"]:  # linked, not copied; the catalog names files inside the folder
        (folder / "images" / Path(name).name).symlink_to(source / name)
    subset.assign(file=["images/" + Path(f).name for f in subset["file"]]).to_csv(folder / "catalog.csv", index=False)
    return folder


def test_ring_subset_builds_and_the_app_opens_on_it(ring_subset: Path, tmp_path: Path) -> None:
    """The decals_rings preset, scaled down (64 galaxies, one epoch on 32x32 crops) to stay fast."""
    preset = load_config(ROOT / "pipelines" / "decals_rings.toml")
    raw = {
        "name": "rings-fast", "seed": 0,
        "survey": {"source": "images", "path": str(ring_subset), "bands": list(preset.survey.bands),
                   "pixel_scale": preset.survey.pixel_scale, "rename": dict(preset.survey.rename)},
        "augment": {"order": list(preset.augment.order), "crop_size": 32, "jitter": 4,
                    "noise_scale": list(preset.augment.noise_scale)},
        "model": {"stem": "imagenet", "projection_dims": [64, 32], "queue": 64, "momentum": 0.99, "bn_splits": 4},
        "train": {"epochs": 1, "batch_size": 32, "warmup_epochs": 0, "loader_workers": 0},
        "embed": {"crop_size": 64, "pca_dim": 16},
        "neighbors": {"k": 10}, "project": {"n_neighbors": 8}, "anomaly": {"k": 5},
        "trust": {"k": 5, "labels": dict(preset.trust.labels)},
        "probes": {"morphology": list(preset.probes.morphology)},
    }
    build(config_from_dict(raw, source="test"), tmp_path / "atlas")
    _check_atlas(tmp_path / "atlas", SUBSET, 10)
    _app_click(tmp_path / "atlas")


@pytest.mark.slow
def test_decals_rings_preset_builds_in_full(shared_data: Path, tmp_path: Path) -> None:
    """pipelines/decals_rings.toml as shipped: all 470 galaxies, 10 epochs (minutes on 2 cores)."""
    config = load_config(ROOT / "pipelines" / "decals_rings.toml")
    build(config, tmp_path / "atlas")
    _check_atlas(tmp_path / "atlas", 470, config.neighbors.k)
    _app_click(tmp_path / "atlas")


def test_real_hsc_cube_renders_as_a_colour_cutout(shared_data: Path) -> None:
    from galexplore.survey.render import lupton_rgb
    from galexplore.survey.fits import FitsSurvey

    with FitsSurvey(shared_data / "hsc_scenes" / HSC_CUBE, SurveyConfig(source="fits", bands=("g", "r", "i", "z", "y"))) as survey:
        cube = survey[0]  # (5, 54, 54) float32 fluxes
        rgb = lupton_rgb(cube, survey.bands)  # i, r, g as red, green, blue
    assert rgb.dtype == np.uint8 and rgb.shape == (54, 54, 3)
    grey = rgb.astype(np.float64).mean(axis=2)
    bright = grey > 3 * np.median(grey) + 20
    assert 0.01 < bright.mean() < 0.6  # sources, on a sky that is not all saturated or all black
    assert (rgb == 255).all(axis=2).mean() < 0.05  # few pixels burnt white
    # colour: the channels differ (a Lupton composite keeps colours, it is not a grey image)
    assert np.abs(rgb[..., 0].astype(int) - rgb[..., 2].astype(int))[bright].mean() > 5
    # the brightest source in the composite is where the i band (red) is brightest
    peak = np.unravel_index(np.argmax(grey), grey.shape)
    i_band = cube[2]
    assert i_band[peak] > np.percentile(i_band, 95)
