"""A survey whose catalog has no sky positions (no RA/Dec, no IAU names), read with
``survey.positions = "none"``: it builds, reads back with NaN ra/dec, and everything downstream
(inspect, report, exports, the Python API, the explorer) answers, or says that it has no positions.

The real case is ../shared/data/gz1_dev (Galaxy Zoo 1 composites with only object_id, file and
the class), read with pipelines/gz1_dev.toml; its test skips where the folder is absent."""

from __future__ import annotations

import html
import io
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.table import Table
from PIL import Image

from galexplore.pipeline.build import build
from galexplore.cli import main
from galexplore.config import SurveyConfig, config_from_dict, load_config, to_toml
from galexplore.errors import ConfigError, SurveyError
from galexplore.atlas.export import EXPORT_FORMATS, export_selection
from galexplore.survey.images import ImageFolderSurvey

ROOT = Path(__file__).resolve().parents[1]
N = 48
SIDE = 32
NO_POSITIONS = 'survey.positions = "none"'


def _composites(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, SIDE, SIDE, 3) uint8 colour composites of round (kind 0) and elongated (kind 1) blobs
    on a noisy sky, and their kinds."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:SIDE, :SIDE] - (SIDE - 1) / 2
    kind = np.arange(n) % 2
    angle = rng.uniform(0, np.pi, n)
    axis = np.where(kind == 0, 1.0, 0.3)  # b/a
    size = rng.uniform(3, 6, n)
    u = xx[None] * np.cos(angle)[:, None, None] + yy[None] * np.sin(angle)[:, None, None]
    v = -xx[None] * np.sin(angle)[:, None, None] + yy[None] * np.cos(angle)[:, None, None]
    light = np.exp(-(u**2 + (v / axis[:, None, None]) ** 2) / (2 * size[:, None, None] ** 2))
    colour = rng.uniform(0.6, 1.0, (n, 1, 1, 3))
    pixels = 20 + 200 * light[..., None] * colour + rng.normal(0, 6, (n, SIDE, SIDE, 3))
    return np.clip(pixels, 0, 255).astype(np.uint8), kind


def _survey_folder(folder: Path, n: int = N, seed: int = 0, **columns: object) -> Path:
    """An image folder of `n` JPEG composites whose catalog has object_id, file and a class only
    (plus `columns`), as gz1_dev's: no RA/Dec, no IAU names."""
    (folder / "images").mkdir(parents=True)
    pixels, kind = _composites(n, seed)
    ids = 588848901537202306 + np.arange(n) * 7919  # SDSS DR7 objids are int64 beyond 2^53
    for i in range(n):
        Image.fromarray(pixels[i]).save(folder / "images" / f"{ids[i]}.jpg", quality=92)
    pd.DataFrame({"object_id": ids, "file": [f"images/{i}.jpg" for i in ids], "edge_on": kind,
                  "kind": np.where(kind == 1, "edge-on", "elliptical"), **columns}).to_csv(folder / "catalog.csv", index=False)
    return folder


def _config(folder: Path, **survey: object) -> dict:
    """A build of the folder small enough for the default run (one epoch on 24 px crops)."""
    return {
        "name": "no-positions", "seed": 0,
        "survey": {"source": "images", "path": str(folder), "bands": ["i", "r", "g"], "positions": "none", **survey},
        "augment": {"order": ["rotate", "scale", "jitter_crop", "psf_blur", "noise"], "crop_size": 24, "jitter": 2,
                    "noise_scale": [0.0, 1.0]},
        "model": {"stem": "imagenet", "projection_dims": [32, 16], "queue": 32, "momentum": 0.99, "bn_splits": 2},
        "train": {"epochs": 1, "batch_size": 16, "warmup_epochs": 0, "loader_workers": 0},
        "embed": {"crop_size": SIDE, "pca_dim": 8},
        "neighbors": {"k": 10}, "project": {"n_neighbors": 8}, "anomaly": {"k": 5},
        "trust": {"k": 5, "labels": {"edge-on": "edge_on"}}, "probes": {"morphology": ["edge_on"]},
    }


@pytest.fixture(scope="module")
def survey(tmp_path_factory) -> Path:
    return _survey_folder(tmp_path_factory.mktemp("nopos") / "survey")


@pytest.fixture(scope="module")
def config_file(survey: Path) -> Path:
    path = survey.parent / "nopos.toml"
    path.write_text(to_toml(config_from_dict(_config(survey), source="test")), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def atlas(survey: Path, one_torch_thread) -> Path:
    out = survey.parent / "atlas"
    build(config_from_dict(_config(survey), source="test"), out)
    return out


# -- reading ---------------------------------------------------------------------------------------

def test_without_the_key_a_catalog_without_positions_is_refused_naming_the_key(survey: Path) -> None:
    with pytest.raises(SurveyError, match=r"catalog has no RA/Dec.*found columns: object_id, file, edge_on, kind; "
                                          r'.*set survey\.positions = "none"'):
        ImageFolderSurvey(survey, SurveyConfig(source="images", bands=()))


def test_with_the_key_every_row_reads_with_nan_ra_dec(survey: Path) -> None:
    with ImageFolderSurvey(survey, SurveyConfig(source="images", bands=(), positions="none")) as read:
        catalog = read.catalog
        assert list(catalog.columns) == ["object_id", "ra", "dec", "file", "edge_on", "kind"]
        assert catalog["ra"].dtype == catalog["dec"].dtype == np.float64
        assert catalog[["ra", "dec"]].isna().all().all() and len(catalog) == N
        assert catalog["object_id"].iloc[1] == 588848901537202306 + 7919  # int64, not rounded through float
        assert read[0].shape == (3, SIDE, SIDE)


def test_positions_for_some_rows_only_are_an_error_naming_the_row(tmp_path: Path) -> None:
    ra = [10.0, 10.1, np.nan, 10.3]
    folder = _survey_folder(tmp_path / "some", n=4, ra=ra, dec=[1.0, 1.1, 1.2, 1.3])
    with pytest.raises(SurveyError, match=r"column 'ra' row 2 is nan; expected 0\.0 <= ra < 360\.0 degrees"):
        ImageFolderSurvey(folder, SurveyConfig(source="images", bands=()))
    # and under positions = "none", a position given anyway is refused, with both ways out
    with pytest.raises(SurveyError, match=r"column 'ra' row 0 is 10\.0, but survey\.positions = \"none\" says the "
                                          r"catalog has no sky positions; remove survey\.positions.*survey\.rename"):
        ImageFolderSurvey(folder, SurveyConfig(source="images", bands=(), positions="none"))


def test_empty_ra_dec_columns_are_no_positions_only_with_the_key(tmp_path: Path) -> None:
    folder = _survey_folder(tmp_path / "empty", n=4, ra=[np.nan] * 4, dec=[np.nan] * 4)
    with pytest.raises(SurveyError, match=r"column 'ra' is empty \(no row has a value\); .*survey\.positions = \"none\""):
        ImageFolderSurvey(folder, SurveyConfig(source="images", bands=()))
    with ImageFolderSurvey(folder, SurveyConfig(source="images", bands=(), positions="none")) as read:
        assert read.catalog[["ra", "dec"]].isna().all().all()


def test_an_hdf5_survey_without_positions_reads_with_the_key(tmp_path: Path) -> None:
    import h5py

    from galexplore.survey.hdf5 import HDF5Survey

    path = tmp_path / "nopos.h5"
    with h5py.File(path, "w") as f:
        f["images"] = np.random.default_rng(0).normal(0, 1, (5, 5, 16, 16)).astype(np.float32)
        f["z_spec"] = np.linspace(0.05, 0.25, 5)
    with pytest.raises(SurveyError, match=r"catalog has no 'ra' column; found columns: object_id, z_spec; "
                                          r'.*survey\.positions = "none"'):
        HDF5Survey(path, SurveyConfig(source="hdf5"))
    with HDF5Survey(path, SurveyConfig(source="hdf5", positions="none")) as read:
        assert read.catalog[["ra", "dec"]].isna().all().all()
        np.testing.assert_allclose(read.catalog["z_spec"], np.linspace(0.05, 0.25, 5))


@pytest.mark.parametrize("survey_keys, expected", [
    ({"positions": "nowhere"}, r"survey\.positions = 'nowhere': expected one of 'catalog', 'none'"),
    ({"positions": "none", "name_column": "designation"},
     r"survey\.positions = \"none\" says the catalog has no sky positions, but survey\.name_column = 'designation'"),
    ({"positions": "none", "ra_column": "RAJ2000"}, r"but survey\.ra_column = 'RAJ2000' names where they are"),
    ({"positions": "none", "source": "simulated"}, r"a simulated survey always has sky positions"),
])
def test_the_key_is_checked_against_the_keys_that_say_where_positions_are(survey_keys: dict, expected: str) -> None:
    survey = {"source": "images", **survey_keys}
    with pytest.raises(ConfigError, match=expected):
        config_from_dict({"survey": survey, "augment": {"order": ["rotate", "jitter_crop"]}}, source="c.toml")


def test_the_cli_build_error_names_the_key(survey: Path, tmp_path: Path, capsys) -> None:
    raw = _config(survey)
    del raw["survey"]["positions"]
    config = tmp_path / "c.toml"
    config.write_text(to_toml(config_from_dict(raw, source="test")), encoding="utf-8")
    assert main(["build", str(config), "--out", str(tmp_path / "atlas")]) == 2
    error = capsys.readouterr().err
    assert "catalog has no RA/Dec" in error and NO_POSITIONS in error and "Traceback" not in error
    assert not (tmp_path / "atlas").exists()


# -- the atlas ---------------------------------------------------------------------------------------

def test_the_survey_builds_into_an_atlas_with_nan_ra_dec(atlas: Path) -> None:
    from galexplore.atlas.files import open_atlas

    read = open_atlas(atlas)  # the reader's validation: manifest, files, required columns
    catalog = read.catalog
    assert len(catalog) == N and list(catalog.columns[:3]) == ["object_id", "ra", "dec"]
    assert catalog["ra"].dtype == catalog["dec"].dtype == np.float64
    assert catalog[["ra", "dec"]].isna().all().all()
    assert np.isfinite(catalog[["umap_x", "umap_y", "anomaly_score", "trust", "edge_on_pred"]]).all().all()
    graph = np.asarray(read.neighbors)
    assert graph.shape == (N, 10) and graph.min() >= 0 and not (graph == np.arange(N)[:, None]).any()
    np.testing.assert_allclose(np.linalg.norm(read.embeddings, axis=1), 1.0, atol=1e-5)
    assert 'positions = "none"' in read.manifest["provenance"]["config"]  # the resolved config says how it was read


def test_inspect_reports_the_atlas_and_the_survey_with_ra_dec_all_missing(atlas: Path, survey: Path,
                                                                          config_file: Path, capsys) -> None:
    assert main(["inspect", str(atlas), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n_objects"] == N and summary["columns"]["ra"] == "float64"
    assert main(["inspect", str(survey), "--config", str(config_file), "--json"]) == 0
    columns = json.loads(capsys.readouterr().out)["columns"]
    assert columns["ra"] == columns["dec"] == {"dtype": "float64", "min": None, "max": None, "missing": N}
    assert main(["inspect", str(survey), "--config", str(config_file)]) == 0
    assert f"ra                   float64  all missing, {N} missing" in capsys.readouterr().out


def test_the_report_is_written_without_sky_columns(atlas: Path, tmp_path: Path, capsys) -> None:
    assert main(["report", str(atlas), "--out", str(tmp_path / "report")]) == 0
    page = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    assert "The most anomalous galaxies" in page
    anomalies = page.split("The most anomalous galaxies", 1)[1]
    header = anomalies.split("<thead>", 1)[1].split("</thead>", 1)[0]
    assert "anomaly_score" in header and "<th>ra</th>" not in header and "<th>dec</th>" not in header


@pytest.mark.parametrize("fmt", list(EXPORT_FORMATS))
def test_exports_carry_ra_dec_as_nan_columns(atlas: Path, fmt: str) -> None:
    from galexplore.atlas.files import open_atlas

    catalog = open_atlas(atlas).catalog
    rows = np.array([0, 5, 17])
    data = export_selection(catalog, rows, fmt)
    if fmt == "parquet":
        back = pd.read_parquet(io.BytesIO(data))
    elif fmt == "csv":
        back = pd.read_csv(io.BytesIO(data))
    else:
        back = Table.read(io.BytesIO(data), format="fits" if fmt == "fits" else "votable").to_pandas()
    assert list(back.columns[:3]) == ["object_id", "ra", "dec"] and len(back) == 3
    assert back["ra"].dtype.kind == back["dec"].dtype.kind == "f"
    assert back[["ra", "dec"]].isna().all().all()
    assert list(back["object_id"].astype(np.int64)) == list(catalog["object_id"].iloc[rows])


def test_the_api_refuses_a_positional_query_and_answers_by_id(atlas: Path) -> None:
    import galexplore as gx
    from galexplore.atlas.files import AtlasError

    opened = gx.open_atlas(atlas)
    for ask in (lambda: opened.nearest(150.1, 2.2), lambda: opened.nearest("10:00:24 +02:12:00"),
                lambda: opened.find(150.1, 2.2, radius=60)):
        with pytest.raises(AtlasError, match=rf"atlas {atlas} has no sky positions \(its ra and dec are NaN: "
                                             r'its survey was read with survey\.positions = "none"\); find a galaxy by object_id'):
            ask()
    first = int(opened.catalog["object_id"].iloc[3])
    assert opened.galaxy(first).name == 3 and opened.galaxy(str(first)).name == 3
    similar = opened.similar(first, k=4)
    assert len(similar) == 4 and 3 not in similar.index
    np.testing.assert_array_equal(similar.index, np.asarray(opened.neighbors[3, :4]))
    table = opened.to_table(similar)
    assert str(table["ra"].unit) == "deg" and np.isnan(np.asarray(table["ra"], float)).all()


def test_the_explorer_renders_finds_by_id_and_shows_no_sky_line(atlas: Path) -> None:
    import panel as pn
    from bokeh.document import Document

    from galexplore.explorer.page import Explorer
    from galexplore.explorer.store import load

    data = load(atlas)
    assert not data.has_positions and "ra" not in data.colourings
    explorer = Explorer(data)
    explorer.layout().get_root(Document())  # the whole page, as served
    find_box = next(w for w in pn.panel(explorer.controls).select(pn.widgets.TextInput))
    assert find_box.placeholder == "object_id"
    assert "this atlas has no sky positions" in explorer.gallery.column[0].object

    cat = data.catalog
    explorer.map.streams["tap"].event(x=float(cat["umap_x"].iloc[9]), y=float(cat["umap_y"].iloc[9]))
    d2 = (cat["umap_x"] - cat["umap_x"].iloc[9]) ** 2 + (cat["umap_y"] - cat["umap_y"].iloc[9]) ** 2
    assert explorer.state.query == int(np.argmin(d2.to_numpy()))
    header = explorer.gallery.column[0][1][0].object  # the clicked galaxy's id line
    assert header == f"<b>{cat['object_id'].iloc[explorer.state.query]}</b>"  # no RA/Dec line, no sky-viewer links
    record = explorer.gallery.column[0][1][1].object
    assert "<td>ra</td>" not in record and "<td>kind</td>" in record

    explorer.state.search(str(cat["object_id"].iloc[20]))
    assert explorer.state.query == 20 and not explorer.message.visible
    explorer.state.search("150.1 +2.2")
    assert explorer.state.query == 20  # unchanged
    assert explorer.message.visible and explorer.message.alert_type == "danger"
    assert "no galaxy with object_id '150.1 +2.2', and the atlas has no sky positions" in html.unescape(explorer.message.object)


# -- the real case -----------------------------------------------------------------------------------

def test_the_gz1_dev_preset_reads_the_real_catalog_without_positions(shared_data: Path) -> None:
    from galexplore.survey import open_survey

    if not (shared_data / "gz1_dev" / "catalog.csv").exists():
        pytest.skip(f"gz1_dev not found in {shared_data}")
    config = load_config(ROOT / "pipelines" / "gz1_dev.toml")
    assert config.survey.positions == "none"
    with open_survey(config) as survey:
        catalog = survey.catalog
        assert len(catalog) == 2999 and catalog[["ra", "dec"]].isna().all().all()
        assert catalog["object_id"].is_unique and catalog["object_id"].dtype == np.int64
        assert catalog["gz1_type"].value_counts().to_dict() == {"elliptical": 2091, "edge-on": 449, "spiral": 382,
                                                                "merger": 52, "unknown": 25}
        cutout = survey[0]
        # read at the stored resolution: the preset's crops take the central 64 px of it
        assert cutout.shape == (3, 212, 212) and 0.0 <= cutout.min() < cutout.max() <= 1.0
