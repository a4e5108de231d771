"""The notebook API (galexplore.api) on one tiny atlas built from a simulated survey, and its
docstring examples run on that atlas."""

from __future__ import annotations

import dataclasses
import doctest
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import galexplore as gx
from galexplore import api
from galexplore.atlas.files import AtlasError, AtlasWriter
from galexplore.pipeline.build import build
from galexplore.config import load_config
from galexplore.errors import GalexploreError

from .synthetic import PIPELINES


@pytest.fixture(scope="module")
def built(tmp_path_factory, one_torch_thread) -> tuple[Path, Path]:
    """(atlas, survey): the tiny pipeline (64 simulated galaxies of 32x32 pixels, one short
    epoch of training) with the neighbours searched in an 8-D PCA of the representations."""
    folder = tmp_path_factory.mktemp("api")
    cfg = load_config(PIPELINES / "tiny.toml")
    cfg = dataclasses.replace(
        cfg, survey=dataclasses.replace(cfg.survey, path=str(folder / "tiny.h5")),
        train=dataclasses.replace(cfg.train, loader_workers=0, batch_size=32),
        embed=dataclasses.replace(cfg.embed, pca_dim=8),
        neighbors=dataclasses.replace(cfg.neighbors, k=10),
        project=dataclasses.replace(cfg.project, n_neighbors=8),
    )
    build(cfg, folder / "atlas", run=folder / "run")
    return folder / "atlas", folder / "tiny.h5"


@pytest.fixture(scope="module")
def atlas(built) -> api.Atlas:
    return gx.open_atlas(built[0])


@pytest.fixture(scope="module")
def survey_cutouts(built) -> np.ndarray:
    """Every cutout, read from the survey file itself (not through the atlas)."""
    from galexplore.survey import open_path

    with open_path(built[1]) as survey:
        return survey.read(np.arange(len(survey)))


def test_the_docstring_examples_run_on_an_atlas(built, atlas):
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for module in (api, api.catalog, api.similar):
        for test in finder.find(module, extraglobs={"atlas_path": str(built[0]), "atlas": atlas}):
            runner.run(test)
    results = runner.summarize(verbose=False)
    assert results.failed == 0
    assert results.attempted >= 25  # every public method shows itself


def test_open_atlas_validates_and_import_stays_lazy(built, tmp_path):
    with pytest.raises(AtlasError, match="no such folder"):
        gx.open_atlas(tmp_path / "nowhere")
    atlas = gx.open_atlas(built[0])
    assert isinstance(atlas, gx.Atlas) and len(atlas) == 64 and atlas.embeddings.shape == (64, 512)
    # `import galexplore` (the CLI's first line) does not pay for pandas, torch and the API
    code = "import sys, galexplore; print('galexplore.api' in sys.modules, 'pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_galaxy_returns_its_catalog_row(atlas):
    catalog = atlas.catalog
    for row in (0, 17, 63):
        object_id = catalog["object_id"].iloc[row]
        pd.testing.assert_series_equal(atlas.galaxy(object_id), catalog.iloc[row])
        assert atlas.galaxy(str(object_id)).name == row  # typed as text: read in the column's type
        assert atlas.galaxy(np.int32(object_id)).name == row
    ids = catalog["object_id"].to_numpy()
    np.testing.assert_array_equal(atlas.rows(ids[[5, 2, 40]]), [5, 2, 40])
    for unknown in (10**9, "G1", 2.5, None):
        with pytest.raises(AtlasError, match="no galaxy with object_id"):
            atlas.galaxy(unknown)
    with pytest.raises(AtlasError, match="999999"):
        atlas.rows([ids[0], 999999])


def test_nearest_to_a_galaxys_own_position_is_that_galaxy(atlas):
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    catalog = atlas.catalog
    for row in range(len(catalog)):
        ra, dec = catalog["ra"].iloc[row], catalog["dec"].iloc[row]
        hit = atlas.nearest(ra, dec)
        assert hit.name == row and hit["separation_arcsec"] < 1e-6
    ra, dec = catalog["ra"].iloc[9], catalog["dec"].iloc[9]
    coord = SkyCoord(ra * u.deg, dec * u.deg)
    sexagesimal = coord.to_string("hmsdms", precision=4)  # e.g. '14h19m25.2500s +19d58m52.7890s'
    assert atlas.nearest(sexagesimal).name == 9
    assert atlas.nearest(sexagesimal)["separation_arcsec"] < 0.01  # 1e-4 s of RA is 1.5 mas
    assert atlas.nearest(coord).name == 9
    assert atlas.nearest(coord.galactic).name == 9  # any frame, taken in ICRS
    assert atlas.nearest(ra * u.deg, (dec * u.deg).to(u.arcmin)).name == 9
    for bad, match in (("nowhere", "cannot read"), ((10.0, 95.0), "Dec"), ((10.0,), "got only")):
        with pytest.raises(GalexploreError, match=match):
            atlas.nearest(*bad) if isinstance(bad, tuple) else atlas.nearest(bad)


def test_find_matches_a_brute_force_cone_search(atlas):
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    catalog = atlas.catalog
    everything = SkyCoord(catalog["ra"].to_numpy() * u.deg, catalog["dec"].to_numpy() * u.deg)
    centre = SkyCoord(200 * u.deg, 20 * u.deg)
    separations = centre.separation(everything).arcsec
    cone = atlas.find(centre, radius=40 * u.deg)
    expected = np.flatnonzero(separations <= 40 * 3600)
    assert 0 < len(expected) < len(catalog)  # the test means something
    assert sorted(cone.index) == expected.tolist()
    np.testing.assert_allclose(cone["separation_arcsec"], separations[cone.index], rtol=1e-9)
    assert cone["separation_arcsec"].is_monotonic_increasing
    assert list(cone.columns[:2]) == ["object_id", "separation_arcsec"]
    assert len(atlas.find(200.0, 20.0, radius=0.0)) == 0
    assert len(atlas.find("0 0", radius=180 * u.deg)) == len(catalog)
    with pytest.raises(GalexploreError, match="not an angle"):
        atlas.find(200.0, 20.0, radius=3 * u.kg)
    with pytest.raises(GalexploreError, match="radius"):
        atlas.find(200.0, 20.0, radius=-1)


def test_similar_is_the_precomputed_neighbour_row(atlas):
    neighbors, similarities = np.asarray(atlas.neighbors), np.asarray(atlas.similarities, np.float32)
    for row in (0, 31, 63):
        object_id = atlas.catalog["object_id"].iloc[row]
        found = atlas.similar(object_id, k=10)
        np.testing.assert_array_equal(found.index, neighbors[row])
        np.testing.assert_array_equal(found["object_id"], atlas.catalog["object_id"].to_numpy()[neighbors[row]])
        np.testing.assert_array_equal(found["similarity"], similarities[row])
        assert row not in found.index
        assert len(atlas.similar(object_id, k=3)) == 3
    with pytest.raises(AtlasError, match="keeps 10 neighbours"):
        atlas.similar(atlas.catalog["object_id"].iloc[0], k=11)


def test_a_galaxys_own_cutout_finds_that_galaxy_first(atlas, survey_cutouts):
    reduced = np.asarray(atlas.reduced)
    for row in (0, 20, 45):
        object_id = atlas.catalog["object_id"].iloc[row]
        # embedded exactly as the build embedded it: its row of the search space (8-D PCA)
        np.testing.assert_allclose(atlas.embed(survey_cutouts[row]), reduced[row:row + 1], atol=1e-4)
        hits = atlas.similar_to_cutout(survey_cutouts[row], k=5)
        assert hits.index[0] == row and hits["object_id"].iloc[0] == object_id
        assert hits["similarity"].iloc[0] == pytest.approx(1.0, abs=1e-4)
        # the rest are its precomputed neighbours (stored as float16: 1e-3)
        np.testing.assert_allclose(hits["similarity"].iloc[1:], atlas.similarities[row, :4].astype(np.float32), atol=2e-3)
        np.testing.assert_array_equal(atlas.cutout(object_id), survey_cutouts[row])
    assert len(atlas.similar_to_cutout(survey_cutouts[0], k=64)) == 64


def test_a_bad_cutout_is_refused_with_what_the_atlas_expects(atlas, survey_cutouts):
    cutout = survey_cutouts[0]  # (5, 32, 32) u, g, r, i, z; the encoder sees the central 24 x 24
    nan = cutout.copy()
    nan[2, 3, 4] = np.nan
    cases = [
        (cutout[:3], r"C = 5 bands.*5 x 32 x 32 \(u, g, r, i, z\)"),
        (cutout[0], "expected \\(C, H, W\\)"),
        (cutout[:, :20, :20], "central 24 x 24"),
        (cutout[:, :, :30], "32 x 30 pixels"),
        (nan, "1 NaN or infinite"),
        (cutout.astype(str), "dtype"),
    ]
    for image, match in cases:
        with pytest.raises(GalexploreError, match=match):
            atlas.similar_to_cutout(image)
    with pytest.raises(GalexploreError, match="k = 0"):
        atlas.similar_to_cutout(cutout, k=0)
    with pytest.raises(GalexploreError, match="k = 65"):
        atlas.similar_to_cutout(cutout, k=65)
    # a larger cutout of the same galaxy: the encoder sees the same central pixels
    padded = np.pad(cutout, ((0, 0), (4, 4), (4, 4)))
    assert atlas.similar_to_cutout(padded, k=1).index[0] == 0


def test_an_atlas_without_encoder_or_survey_says_so(built, tmp_path):
    copy = tmp_path / "atlas"
    shutil.copytree(built[0], copy)
    writer = AtlasWriter(copy, name="tiny")
    writer.remove("encoder.npz")
    writer.set("provenance", {})
    atlas = gx.open_atlas(copy)
    cutout = np.zeros((5, 32, 32), np.float32)
    with pytest.raises(AtlasError, match="no encoder.npz.*built from given embeddings"):
        atlas.similar_to_cutout(cutout)
    with pytest.raises(AtlasError, match="no cutouts: the atlas was built from embeddings"):
        atlas.cutout(atlas.catalog["object_id"].iloc[0])


def _inside(polygon: np.ndarray, xy: np.ndarray) -> np.ndarray:
    from matplotlib.path import Path as Polygon

    return Polygon(polygon).contains_points(xy)


def test_select_polygon_matches_a_brute_force_test(atlas):
    xy = atlas.catalog[["umap_x", "umap_y"]].to_numpy(np.float64)
    (x0, y0), (x1, y1) = xy.min(axis=0), xy.max(axis=0)
    everything = atlas.select_polygon([(x0 - 1, y0 - 1), (x1 + 1, y0 - 1), (x1 + 1, y1 + 1), (x0 - 1, y1 + 1)])
    assert everything.index.tolist() == list(range(len(xy)))
    far = np.array([(x1 + 10, y1 + 10), (x1 + 20, y1 + 10), (x1 + 15, y1 + 20)])
    assert len(atlas.select_polygon(far)) == 0
    rng = np.random.default_rng(3)
    counts = []
    for _ in range(5):  # random concave polygons about the map's middle
        angles = np.sort(rng.uniform(0, 2 * np.pi, 7))
        radii = rng.uniform(0.2, 0.6, 7) * np.array([x1 - x0, y1 - y0]).max()
        polygon = np.column_stack([radii * np.cos(angles), radii * np.sin(angles)]) + xy.mean(axis=0)
        selected = atlas.select_polygon(polygon)
        assert selected.index.tolist() == np.flatnonzero(_inside(polygon, xy)).tolist()
        counts.append(len(selected))
    assert any(0 < count < len(xy) for count in counts)  # the polygons cut through the map
    for bad, match in (([(0, 0), (1, 1)], "at least 3 distinct vertices; got 2"),
                       ([(0, 0), (1, 1), (0, 0)], "got 2"),
                       ([0, 1, 2], "shape \\(n, 2\\)"),
                       ([(0, 0), (1, np.nan), (2, 0)], "finite")):
        with pytest.raises(GalexploreError, match=match):
            atlas.select_polygon(bad)


def test_to_table_round_trips_columns_and_rows(atlas):
    from astropy.table import Table

    catalog = atlas.catalog
    first = catalog["object_id"].iloc[0]
    for frame in (atlas.similar(first, k=7), atlas.find(first_position(atlas), radius=1e6), catalog):
        table = atlas.to_table(frame)
        assert isinstance(table, Table)
        assert table.colnames == list(frame.columns) and len(table) == len(frame)
        for name in frame.columns:
            if pd.api.types.is_numeric_dtype(frame[name]) and not pd.api.types.is_bool_dtype(frame[name]):
                np.testing.assert_array_equal(np.asarray(table[name]), frame[name].to_numpy(), err_msg=name)
            else:
                assert list(np.asarray(table[name]).astype(str)) == frame[name].astype(str).tolist(), name
    table = atlas.to_table(atlas.similar(first, k=7))
    assert str(table["ra"].unit) == "deg" and str(table["dec"].unit) == "deg" and str(table["mag_r"].unit) == "mag"
    assert "cosine" in table["similarity"].description
    assert table.meta["atlas"] == "tiny" and table.meta["bands"] == ["u", "g", "r", "i", "z"]
    ids = catalog["object_id"].to_numpy()[[4, 1]]
    assert atlas.to_table(ids)["object_id"].tolist() == ids.tolist()
    assert atlas.to_table(ids[0])["object_id"].tolist() == [ids[0]]
    one = atlas.to_table(atlas.galaxy(ids[1]))
    assert len(one) == 1 and one["ra"][0] == catalog["ra"].iloc[1]
    assert len(atlas.to_table()) == len(catalog)
    with pytest.raises(AtlasError, match="no galaxy"):
        atlas.to_table([10**9])


def first_position(atlas: api.Atlas) -> str:
    return f"{atlas.catalog['ra'].iloc[0]} {atlas.catalog['dec'].iloc[0]}"


def test_explorer_is_a_panel_object(atlas):
    import panel as pn

    app = atlas.explorer(k=5)
    assert isinstance(app, pn.viewable.Viewer) and isinstance(app.layout(), pn.viewable.Viewable)
    with pytest.raises(ValueError):
        atlas.explorer(k=1000)  # the app's own bounds


def test_the_explorer_state_reads_and_sets_from_python(atlas):
    from galexplore.errors import GalexploreError

    app = atlas.explorer()
    assert app.selection.empty and app.clicked is None
    ids = atlas.catalog["object_id"].iloc[[7, 2, 11]].tolist()
    chosen = app.select(ids)
    assert list(chosen.index) == [2, 7, 11] and chosen.columns[0] == "object_id"
    np.testing.assert_array_equal(app.state.selection, [2, 7, 11])  # the page's own selection
    app.state.selection = np.array([3, 4])  # as a lasso sets it: the property follows
    assert list(app.selection.index) == [3, 4]
    app.state.mode = "add"
    assert list(app.select([str(ids[0])]).index) == [3, 4, 7]  # ids as text too
    with pytest.raises(GalexploreError, match="object_id 'nope' is not in this atlas"):
        app.select(["nope"])
    assert app.click(ids[1]).name == 2 and app.state.query == 2
    app.colour = "trust"
    assert app.state.colour == "trust" and "trust" in app.colourings


def test_a_bookmarked_url_opens_its_view_and_says_what_it_could_not_use(atlas):
    app = atlas.explorer("http://myhost:5006/app?colour=trust&galaxy=3&k=7&view=-1,1,-2,2&eq=maybe")
    assert (app.colour, app.state.k, app.clicked.name, app.state.view) == ("trust", 7, 3, "-1,1,-2,2")
    assert any("eq" in line for line in app.state.message)  # a value it could not read is said, not used


def test_the_atlas_carries_its_report_card_into_the_cli_the_report_and_the_page(built, atlas, capsys, tmp_path):
    from galexplore.cli import main
    from galexplore.report.page import write_report

    result = atlas.manifest["stages"]["card"]["card"]
    assert result["spaces"] == ["encoder", "search", "pixels", "untrained"]  # pca_dim = 8: a search space
    z = result["labels"]["z_spec"]
    n_spec = int(atlas.catalog["z_spec"].notna().sum())
    assert z["kind"] == "redshift" and z["n"] == n_spec
    for space in result["spaces"]:
        assert z[space]["n"] == n_spec and np.isfinite(z[space]["knn"]["sigma_mad"])
        assert np.isfinite(z[space]["linear"]["sigma_mad"])
    assert set(result["health"]) == {"encoder", "pixels", "untrained"}
    assert result["health"]["encoder"]["n"] == len(atlas.catalog) and isinstance(result["health"]["encoder"]["flags"], list)
    assert 0.0 <= result["search_agreement"]["top10"] <= 1.0 and result["search_agreement"]["dims"] == [512, 8]
    assert set(result["verdict"]["z_spec"]) >= {"metric", "encoder", "pixels", "vs_pixels", "untrained", "vs_untrained"}

    assert main(["evaluate", str(built[0])]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("report card: kNN (k = 20") and "raw-pixel PCA-128" in printed
    assert "same network, untrained" in printed and "search space: 8 of 512 dims keeps" in printed

    page = write_report(atlas, tmp_path / "report").read_text()
    assert "Report card: the encoder against pixels" in page and "z_spec: kNN sigma mad" in page

    import panel as pn

    atlas.explorer()  # puts the app's modules on the path, as the notebook path does
    from galexplore.explorer.page import Explorer
    from galexplore.explorer.store import load

    controls = pn.panel(Explorer(load(built[0])).controls)
    cards = [c for c in controls if isinstance(c, pn.Card)]
    assert len(cards) == 1 and cards[0].title == "How good is this map"
    assert "z_spec: kNN sigma mad" in cards[0][0].object
