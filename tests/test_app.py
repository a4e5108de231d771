"""The explorer app without a browser: streams fired by hand, answers checked against the library."""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.table import Table

APP = Path(__file__).resolve().parents[1] / "app"
sys.path.insert(0, str(APP))

from galexplore.build import build  # noqa: E402
from galexplore.config import config_from_dict  # noqa: E402

N = 600


@pytest.fixture(scope="module")
def atlas(tmp_path_factory) -> Path:
    """A small atlas from clustered embeddings, with labels, text ids and a hostile name."""
    folder = tmp_path_factory.mktemp("app")
    rng = np.random.default_rng(11)
    centres = rng.standard_normal((5, 16)) * 3
    which = rng.integers(0, 5, N)
    np.save(folder / "emb.npy", (centres[which] + rng.standard_normal((N, 16))).astype(np.float32))
    z = 0.03 + 0.07 * which + rng.normal(0, 0.01, N)
    pd.DataFrame({
        "object_id": [f"G{i:05d}" for i in range(N)],
        "ra": rng.uniform(0, 360, N), "dec": rng.uniform(-60, 60, N),
        "z_spec": np.where(which < 3, z, np.nan), "p_features": np.where(which < 2, rng.uniform(0, 1, N), np.nan),
        "type": np.array(["E", "S0", "Sa", "Sc", "<script>alert(1)</script>"])[which], "mag_r": rng.uniform(14, 19, N),
    }).to_parquet(folder / "cat.parquet")
    config = config_from_dict({"name": "app-test", "seed": 2, "embed": {"pca_dim": 8}, "neighbors": {"k": 20},
                               "project": {"n_neighbors": 10}, "trust": {"k": 5}, "anomaly": {"k": 5}})
    build(config, folder / "atlas", embeddings=folder / "emb.npy", catalog=folder / "cat.parquet")
    return folder / "atlas"


@pytest.fixture()
def explorer(atlas):
    from explorer import Explorer
    from store import load

    return Explorer(load(atlas))


def _inside(polygon: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Even-odd ray casting, point by point: the reference a lasso is checked against."""
    inside = np.zeros(len(xy), dtype=bool)
    for (ax, ay), (bx, by) in zip(polygon, np.roll(polygon, -1, axis=0)):
        crosses = (ay > xy[:, 1]) != (by > xy[:, 1])
        x_cross = ax + (xy[:, 1] - ay) * (bx - ax) / np.where(by == ay, 1, by - ay)
        inside ^= crosses & (xy[:, 0] < x_cross)
    return inside


def _lasso_around(explorer, fraction: float = 0.5) -> np.ndarray:
    """A non-convex (C-shaped) polygon over the map's lower-left part, in data coordinates."""
    x0, x1, y0, y1 = explorer.data.bounds
    w, h = (x1 - x0) * fraction, (y1 - y0) * fraction
    c = [(0, 0), (1, 0), (1, 0.3), (0.3, 0.3), (0.3, 0.7), (1, 0.7), (1, 1), (0, 1)]
    return np.array([(x0 + u * w, y0 + v * h) for u, v in c])


def test_a_lasso_selects_exactly_the_galaxies_inside_it(explorer):
    polygon = _lasso_around(explorer, 0.8)
    explorer.streams["lasso"].event(geometry=polygon)
    xy = explorer.data.catalog[["umap_x", "umap_y"]].to_numpy()
    inside = np.flatnonzero(_inside(polygon, xy))
    assert 0 < len(inside) < N
    np.testing.assert_array_equal(explorer.selection, inside)
    assert f"**{len(inside):,} selected**" in explorer._count.object
    assert len(explorer._table.value) == len(inside)
    # the highlight layer got the same rows
    assert len(explorer._selection_pipe.data) == len(inside)


def test_add_subtract_and_clear(explorer):
    lasso = explorer.streams["lasso"]
    first = _lasso_around(explorer, 0.5)
    lasso.event(geometry=first)
    a = explorer.selection.copy()
    x0, x1, y0, y1 = explorer.data.bounds
    explorer.mode = "add"
    explorer.streams["box"].event(bounds=(x0, y0, x1, y1))
    assert len(explorer.selection) == N
    explorer.mode = "subtract"
    lasso.event(geometry=first)
    assert len(explorer.selection) == N - len(a)
    assert not np.isin(a, explorer.selection).any()
    explorer.clear()
    assert len(explorer.selection) == 0 and explorer._download.disabled


def test_a_click_shows_the_nearest_galaxy_and_its_similar_ones(explorer):
    cat = explorer.data.catalog
    x, y = cat["umap_x"].iloc[123] + 1e-4, cat["umap_y"].iloc[123]
    explorer.streams["tap"].event(x=x, y=y)
    d2 = (cat["umap_x"] - x) ** 2 + (cat["umap_y"] - y) ** 2
    assert explorer.query == int(np.argmin(d2.to_numpy()))
    expected = np.asarray(explorer.data.atlas.neighbors[explorer.query, : explorer.k])
    marks = explorer._marks_pipe.data
    assert list(marks["role"]).count("similar") == explorer.k and list(marks["role"]).count("query") == 1
    np.testing.assert_allclose(marks["umap_x"].iloc[:-1], cat["umap_x"].iloc[expected])
    explorer.select_similar()
    assert sorted(explorer.selection) == sorted([*expected, explorer.query])


def test_pointing_at_a_galaxy_shows_its_values_and_empty_space_shows_none(explorer):
    cat = explorer.data.catalog
    explorer.view = ""
    x, y = cat["umap_x"].iloc[200], cat["umap_y"].iloc[200]
    explorer.streams["pointer"].event(x=x + 1e-6, y=y)
    assert explorer.hovered == 200
    line = explorer._under_cursor.object
    assert cat["object_id"].iloc[200] in line and f"z_spec {cat['z_spec'].iloc[200]:.5g}" in line
    assert not re.search(r"\d\.\d{6,}", line)  # every value (float32 ones too) to 5 significant digits
    x0, x1, y0, y1 = explorer.data.bounds
    explorer.streams["pointer"].event(x=x1 + 10 * (x1 - x0), y=y1)  # far outside the map
    assert explorer.hovered == -1 and "point at a galaxy" in explorer._under_cursor.object


def test_hover_text_is_escaped(explorer):
    hostile = int(np.flatnonzero(explorer.data.catalog["type"].str.startswith("<script"))[0])
    explorer.hover(explorer.data.catalog["umap_x"].iloc[hostile], explorer.data.catalog["umap_y"].iloc[hostile])
    assert "<script>" not in explorer._under_cursor.object and "&lt;script&gt;" in explorer._under_cursor.object


def test_a_colour_change_rebuilds_with_fresh_streams_and_keeps_the_view(explorer):
    explorer.view = "0,1,0,1"
    old = explorer.streams["lasso"]
    explorer.colour = "type"
    assert explorer.streams["lasso"] is not old
    assert explorer._ranges() == ((0.0, 1.0), (0.0, 1.0))
    calls = []
    real = explorer.lasso
    explorer.lasso = lambda geometry: (calls.append(1), real(geometry))
    explorer.streams["lasso"].event(geometry=_lasso_around(explorer))
    assert len(calls) == 1  # one callback per event after a rebuild, not one per build


@pytest.mark.parametrize("fmt", ["csv", "fits", "votable", "parquet"])
def test_export_reads_back_row_by_row(explorer, fmt):
    explorer.streams["lasso"].event(geometry=_lasso_around(explorer, 0.7))
    explorer.export_format = fmt
    data = explorer._export_file().getvalue()
    assert explorer._download.filename.startswith("app-test-selection-")
    if fmt == "parquet":
        back = pd.read_parquet(io.BytesIO(data))
    else:
        table = Table.read(io.BytesIO(data), format={"csv": "ascii.csv", "fits": "fits", "votable": "votable"}[fmt])
        table.convert_bytestring_to_unicode()  # FITS keeps text as bytes
        back = table.to_pandas()
    expected = explorer.data.catalog.iloc[explorer.selection].reset_index(drop=True)
    assert list(back.columns[:3]) == ["object_id", "ra", "dec"]
    assert [str(v).strip() for v in back["object_id"]] == list(expected["object_id"])
    np.testing.assert_allclose(back["ra"], expected["ra"])
    np.testing.assert_allclose(back["z_spec"].astype(float), expected["z_spec"], equal_nan=True)


def test_an_export_is_dropped_after_its_download_and_made_again_on_the_next(explorer, monkeypatch):
    from bokeh.document import Document
    from panel.io.state import set_curdoc

    scheduled = []
    doc = Document()
    monkeypatch.setattr(doc, "add_timeout_callback", lambda callback, ms: scheduled.append((callback, ms)))
    with set_curdoc(doc):
        explorer.layout().get_root(doc)  # as served: the widget has its Bokeh model
    monkeypatch.setattr(type(doc), "session_context", property(lambda self: object()))  # served
    explorer.streams["lasso"].event(geometry=_lasso_around(explorer, 0.7))
    with set_curdoc(doc):
        explorer._download._clicks += 1  # the button: the server makes the file and sends it
    first = explorer._download.data
    assert first.startswith("data:text/") and ";base64," in first and len(scheduled) == 1 and scheduled[0][1] >= 10_000
    with set_curdoc(doc):
        scheduled[0][0]()  # the timeout: the session no longer holds the file
    assert explorer._download.data == ""
    with set_curdoc(doc):
        explorer._download._clicks += 1
    assert explorer._download.data == first  # the next click makes it again


def test_find_by_id_and_by_position(explorer):
    explorer.search("G00042")
    assert explorer.query == 42
    ra, dec = explorer.data.catalog.loc[77, ["ra", "dec"]]
    explorer.search(f"{ra + 0.0001} {dec}")
    assert explorer.query == 77 and "arcsec away" in explorer.message.object
    explorer.search("not a galaxy")
    assert explorer.message.alert_type == "danger" and "not a galaxy" in explorer.message.object


def test_catalog_text_is_escaped_in_the_gallery(explorer):
    hostile = int(np.flatnonzero(explorer.data.catalog["type"].str.startswith("<script")) [0])
    explorer.query = hostile
    html = "".join(str(getattr(pane, "object", "")) for pane in _panes(explorer._gallery))
    assert "<script>" not in html and "&lt;script&gt;" in html


def _panes(layout):
    for item in getattr(layout, "objects", []):
        yield item
        yield from _panes(item)


def test_a_missing_atlas_gives_a_page_that_says_how_to_build_one(tmp_path):
    import main

    from galexplore.atlas import AtlasError
    from store import load

    with pytest.raises(AtlasError) as error:
        load(tmp_path / "nowhere")
    page = main.problem_page(tmp_path / "nowhere", error.value)
    text = " ".join(str(p.object) for p in page.objects)
    assert "make demo" in text and "no such folder" in text


def test_url_values_parse_and_ignore_garbage():
    import main
    from explorer import Explorer

    args = {"colour": [b"type"], "galaxy": [b"12"], "present": [b"true"], "below": [b"0.2"], "k": [b"x"]}
    assert main.url_values(args, Explorer.param) == {"colour": "type", "query": 12, "present": True,
                                                      "trust_threshold": 0.2}


def test_serve_refuses_a_folder_that_is_not_an_atlas(tmp_path, capsys):
    from galexplore.cli import main as cli

    assert cli(["serve", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "not an atlas (no manifest.json)" in err and "galexplore build" in err


def test_the_served_app_listens_on_localhost_and_keeps_slow_sessions(atlas):
    from galexplore.cli import UNUSED_SESSION_LIFETIME_MS, serve_command

    command = serve_command(Path(atlas))
    option = {flag: value for flag, value in zip(command, command[1:]) if flag.startswith("--")}
    assert option["--address"] == "127.0.0.1"
    origins = [value for flag, value in zip(command, command[1:]) if flag == "--allow-websocket-origin"]
    assert origins == ["localhost:5006", "127.0.0.1:5006"]
    # a page opened slowly keeps the session it was rendered from (Bokeh's default drops it after 15 s)
    assert int(option["--unused-session-lifetime"]) == UNUSED_SESSION_LIFETIME_MS >= 60_000
    assert command[-2:] == ["--atlas", str(atlas)]


def test_warming_prepares_every_colouring_with_its_values(atlas):
    from store import load

    data = load(atlas)
    data.warm()
    assert set(data._points) >= set(data.colourings)
    type_points = data.points("type").data
    assert list(type_points["type"].cat.categories) == list(data.colourings["type"].categories)
    np.testing.assert_array_equal(data.points("z_spec").data["z_spec"], data.catalog["z_spec"])


def test_the_trust_overlay_is_a_layer_only_while_shown(explorer):
    import holoviews as hv

    def layers() -> list:
        return list(explorer._map_pane.object[()].values())

    def shaded_pixels() -> int:  # the overlay layer's pixels holding an untrusted galaxy
        return int(np.sum(np.nan_to_num(layers()[-3].data[layers()[-3].vdims[0].name].values) > 0))

    hidden = layers()
    explorer.trust_overlay = True
    assert len(layers()) == len(hidden) + 1  # no empty layer rendered and sent on every pan while it is off
    assert isinstance(layers()[-3], hv.Image)  # under the selection and the marks
    explorer.trust_threshold = 0.0
    assert shaded_pixels() == 0
    explorer.trust_threshold = 0.5
    some = shaded_pixels()
    explorer.trust_threshold = 1.0
    assert 0 < some < shaded_pixels()
    explorer.trust_overlay = False
    assert len(layers()) == len(hidden)
