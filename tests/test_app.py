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

from galexplore.pipeline.build import build  # noqa: E402
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
    from galexplore.explorer.page import Explorer
    from galexplore.explorer.store import load

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
    explorer.map.streams["lasso"].event(geometry=polygon)
    xy = explorer.data.catalog[["umap_x", "umap_y"]].to_numpy()
    inside = np.flatnonzero(_inside(polygon, xy))
    assert 0 < len(inside) < N
    np.testing.assert_array_equal(explorer.state.selection, inside)
    assert f"**{len(inside):,} selected**" in explorer.selection_panel.count.object
    assert len(explorer.selection_panel.table.value) == len(inside)
    # the highlight layer got the same rows
    assert len(explorer.map.selection_pipe.data) == len(inside)


def test_add_subtract_and_clear(explorer):
    lasso = explorer.map.streams["lasso"]
    first = _lasso_around(explorer, 0.5)
    lasso.event(geometry=first)
    a = explorer.state.selection.copy()
    x0, x1, y0, y1 = explorer.data.bounds
    explorer.state.mode = "add"
    explorer.map.streams["box"].event(bounds=(x0, y0, x1, y1))
    assert len(explorer.state.selection) == N
    explorer.state.mode = "subtract"
    lasso.event(geometry=first)
    assert len(explorer.state.selection) == N - len(a)
    assert not np.isin(a, explorer.state.selection).any()
    explorer.state.clear()
    assert len(explorer.state.selection) == 0 and explorer.selection_panel.download.disabled


def test_a_click_shows_the_nearest_galaxy_and_its_similar_ones(explorer):
    cat = explorer.data.catalog
    x, y = cat["umap_x"].iloc[123] + 1e-4, cat["umap_y"].iloc[123]
    explorer.map.streams["tap"].event(x=x, y=y)
    d2 = (cat["umap_x"] - x) ** 2 + (cat["umap_y"] - y) ** 2
    assert explorer.state.query == int(np.argmin(d2.to_numpy()))
    expected = np.asarray(explorer.data.atlas.neighbors[explorer.state.query, : explorer.state.k])
    marks = explorer.map.marks_pipe.data
    assert list(marks["role"]).count("similar") == explorer.state.k and list(marks["role"]).count("query") == 1
    np.testing.assert_allclose(marks["umap_x"].iloc[:-1], cat["umap_x"].iloc[expected])
    explorer.state.select_similar()
    assert sorted(explorer.state.selection) == sorted([*expected, explorer.state.query])


def test_pointing_at_a_galaxy_shows_its_values_and_empty_space_shows_none(explorer):
    cat = explorer.data.catalog
    explorer.state.view = ""
    x, y = cat["umap_x"].iloc[200], cat["umap_y"].iloc[200]
    explorer.map.streams["pointer"].event(x=x + 1e-6, y=y)
    assert explorer.state.hovered == 200
    line = explorer.map.under_cursor.object
    assert cat["object_id"].iloc[200] in line and f"z_spec {cat['z_spec'].iloc[200]:.5g}" in line
    assert not re.search(r"\d\.\d{6,}", line)  # every value (float32 ones too) to 5 significant digits
    x0, x1, y0, y1 = explorer.data.bounds
    explorer.map.streams["pointer"].event(x=x1 + 10 * (x1 - x0), y=y1)  # far outside the map
    assert explorer.state.hovered == -1 and "point at a galaxy" in explorer.map.under_cursor.object


def test_hover_text_is_escaped(explorer):
    hostile = int(np.flatnonzero(explorer.data.catalog["type"].str.startswith("<script"))[0])
    explorer.map.hover(explorer.data.catalog["umap_x"].iloc[hostile], explorer.data.catalog["umap_y"].iloc[hostile])
    assert "<script>" not in explorer.map.under_cursor.object and "&lt;script&gt;" in explorer.map.under_cursor.object


def test_a_colour_change_rebuilds_with_fresh_streams_and_keeps_the_view(explorer):
    explorer.state.view = "0,1,0,1"
    old = explorer.map.streams["lasso"]
    explorer.state.colour = "type"
    assert explorer.map.streams["lasso"] is not old
    assert explorer.state.ranges() == ((0.0, 1.0), (0.0, 1.0))
    calls = []
    real = explorer.map.lasso
    explorer.map.lasso = lambda geometry: (calls.append(1), real(geometry))
    explorer.map.streams["lasso"].event(geometry=_lasso_around(explorer))
    assert len(calls) == 1  # one callback per event after a rebuild, not one per build


@pytest.mark.parametrize("fmt", ["csv", "fits", "votable", "parquet"])
def test_export_reads_back_row_by_row(explorer, fmt):
    explorer.map.streams["lasso"].event(geometry=_lasso_around(explorer, 0.7))
    explorer.state.export_format = fmt
    data = explorer.selection_panel.export_file().getvalue()
    assert explorer.selection_panel.download.filename.startswith("app-test-selection-")
    if fmt == "parquet":
        back = pd.read_parquet(io.BytesIO(data))
    else:
        table = Table.read(io.BytesIO(data), format={"csv": "ascii.csv", "fits": "fits", "votable": "votable"}[fmt])
        table.convert_bytestring_to_unicode()  # FITS keeps text as bytes
        back = table.to_pandas()
    expected = explorer.data.catalog.iloc[explorer.state.selection].reset_index(drop=True)
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
    explorer.map.streams["lasso"].event(geometry=_lasso_around(explorer, 0.7))
    with set_curdoc(doc):
        explorer.selection_panel.download._clicks += 1  # the button: the server makes the file and sends it
    first = explorer.selection_panel.download.data
    assert first.startswith("data:text/") and ";base64," in first and len(scheduled) == 1 and scheduled[0][1] >= 10_000
    with set_curdoc(doc):
        scheduled[0][0]()  # the timeout: the session no longer holds the file
    assert explorer.selection_panel.download.data == ""
    with set_curdoc(doc):
        explorer.selection_panel.download._clicks += 1
    assert explorer.selection_panel.download.data == first  # the next click makes it again


def test_find_by_id_and_by_position(explorer):
    explorer.state.search("G00042")
    assert explorer.state.query == 42
    ra, dec = explorer.data.catalog.loc[77, ["ra", "dec"]]
    explorer.state.search(f"{ra + 0.0001} {dec}")
    assert explorer.state.query == 77 and "arcsec away" in explorer.message.object
    explorer.state.search("not a galaxy")
    assert explorer.message.alert_type == "danger" and "not a galaxy" in explorer.message.object


def test_catalog_text_is_escaped_in_the_gallery(explorer):
    hostile = int(np.flatnonzero(explorer.data.catalog["type"].str.startswith("<script")) [0])
    explorer.state.query = hostile
    html = "".join(str(getattr(pane, "object", "")) for pane in _panes(explorer.gallery.column))
    assert "<script>" not in html and "&lt;script&gt;" in html


def _panes(layout):
    for item in getattr(layout, "objects", []):
        yield item
        yield from _panes(item)


def test_a_missing_atlas_gives_a_page_that_says_how_to_build_one(tmp_path):
    from galexplore.atlas.files import AtlasError
    from galexplore.explorer import server
    from galexplore.explorer.store import load

    with pytest.raises(AtlasError) as error:
        load(tmp_path / "nowhere")
    page = server.problem_page(tmp_path / "nowhere", error.value)
    text = " ".join(str(p.object) for p in page.objects)
    assert "make demo" in text and "no such folder" in text


def test_url_values_parse_and_ignore_garbage():
    from galexplore.explorer.urlstate import read_url

    args = {"colour": [b"type"], "galaxy": [b"12"], "present": [b"true"], "below": [b"0.2"], "k": [b"x"]}
    state = read_url(args, ["density", "type"], n=600)
    assert state.values == {"colour": "type", "query": 12, "present": True, "trust_threshold": 0.2}
    assert state.notes == ["?k='x': ignored; expected a whole number of similar galaxies, 1 to 50"]


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
    from galexplore.explorer.store import load

    data = load(atlas)
    data.warm()
    assert set(data._points) >= set(data.colourings)
    type_points = data.points("type").data
    assert list(type_points["type"].cat.categories) == list(data.colourings["type"].categories)
    np.testing.assert_array_equal(data.points("z_spec").data["z_spec"], data.catalog["z_spec"])


def test_the_trust_overlay_is_a_layer_only_while_shown(explorer):
    import holoviews as hv

    def layers() -> list:
        return list(explorer.map.pane.object[()].values())

    def shaded_pixels() -> int:  # the overlay layer's pixels holding an untrusted galaxy
        return int(np.sum(np.nan_to_num(layers()[-3].data[layers()[-3].vdims[0].name].values) > 0))

    hidden = layers()
    explorer.state.trust_overlay = True
    assert len(layers()) == len(hidden) + 1  # no empty layer rendered and sent on every pan while it is off
    assert isinstance(layers()[-3], hv.Image)  # under the selection and the marks
    explorer.state.trust_threshold = 0.0
    assert shaded_pixels() == 0
    explorer.state.trust_threshold = 0.5
    some = shaded_pixels()
    explorer.state.trust_threshold = 1.0
    assert 0 < some < shaded_pixels()
    explorer.state.trust_overlay = False
    assert len(layers()) == len(hidden)


# -- hostile and careless inputs: the page always renders, and says what it could not use ----------


@pytest.mark.parametrize(("query", "values", "note"), [
    ({"k": [b"0"]}, {"k": 1}, "?k='0': showing 1 similar galaxies (1 to 50)"),
    ({"k": [b"100000"]}, {"k": 50}, "?k='100000': showing 50 similar galaxies (1 to 50)"),
    ({"below": [b"5"]}, {"trust_threshold": 1.0}, "?below='5': trust threshold set to 1 (0 to 1)"),
    ({"below": [b"nan"]}, {}, "?below='nan': ignored; expected a trust threshold from 0 to 1"),
    ({"galaxy": [b"99999999"]}, {}, "?galaxy='99999999': no such galaxy, ignored; expected a row from 0 to 599"),
    ({"galaxy": [b"-2"]}, {}, "?galaxy='-2': no such galaxy"),
    ({"colour": [b"<b>x</b>"]}, {}, "?colour='<b>x</b>': no such colouring, ignored"),
    ({"view": [b"0,inf,0,1"]}, {}, "?view='0,inf,0,1': ignored; expected x0,x1,y0,y1 with x0 < x1"),
    ({"present": [b"maybe"]}, {}, "?present='maybe': ignored; expected true or false"),
    ({"eq": [b"\xff\xfe"]}, {}, "?eq='\ufffd\ufffd': ignored; expected true or false"),
    ({"view": [b"1" * 300]}, {}, "?view= holds 300 characters: ignored (at most 200)"),
], ids=["k-0", "k-100000", "below-5", "below-nan", "galaxy-99999999", "galaxy-minus-2", "colour-unknown",
        "view-infinite", "present-maybe", "not-utf8", "too-long"])
def test_a_url_value_is_clamped_or_ignored_with_a_note(query, values, note):
    from galexplore.explorer.urlstate import read_url

    state = read_url(query, ["density", "z_spec", "type"], n=600)
    assert state.values == values
    assert state.notes == [note] or state.notes[0].startswith(note), state.notes


def test_an_explorer_given_a_galaxy_outside_the_atlas_says_so_and_so_does_select_these(atlas):
    from galexplore.explorer.page import Explorer
    from galexplore.explorer.store import load

    explorer = Explorer(load(atlas), query=99_999_999)
    assert explorer.state.query == -1 and explorer.message.visible
    assert "galaxy row 99999999 is not in this atlas" in explorer.message.object
    explorer.state.select_similar()  # the "Select these" button
    assert len(explorer.state.selection) == 0
    assert explorer.message.object.startswith("no galaxy chosen, so none similar to select: click one on the map")


def test_the_page_renders_whatever_the_url_holds(atlas, monkeypatch):
    """server.page() with every kind of bad value: a page with the explorer and its notes."""
    import panel as pn

    from galexplore.explorer import server

    bad = {"k": [b"0"], "below": [b"nan"], "galaxy": [b"99999999"], "view": [b"nan,1,0,1"], "colour": [b"nope"]}
    monkeypatch.setattr(type(pn.state), "session_args", property(lambda self: bad))
    monkeypatch.setattr(sys, "argv", ["main.py", "--atlas", str(atlas)])
    page = server.page()
    alerts = [p for p in _panes(page) if isinstance(p, pn.pane.Alert) and p.visible]
    text = " ".join(str(a.object) for a in alerts)
    for expected in ("?k=&#x27;0&#x27;: showing 1", "?below=&#x27;nan&#x27;: ignored", "?galaxy=&#x27;99999999&#x27;",
                     "?view=&#x27;nan,1,0,1&#x27;", "?colour=&#x27;nope&#x27;"):
        assert expected in text, (expected, text)


def _damaged_copy(atlas: Path, tmp_path: Path, change) -> Path:
    """A copy of the atlas with its catalog or neighbour index rewritten through the writer (so the
    manifest agrees: a damage that `open_atlas` cannot see)."""
    import shutil

    from galexplore.atlas.files import AtlasWriter, open_atlas

    copy = Path(shutil.copytree(atlas, tmp_path / "atlas"))
    change(AtlasWriter(copy, open_atlas(copy).name), open_atlas(copy))
    return copy


def test_a_corrupt_neighbour_index_gives_a_message_not_a_blank_page(atlas, tmp_path):
    from galexplore.explorer.page import Explorer
    from galexplore.explorer.store import load

    from galexplore.errors import GalexploreError
    from galexplore.explorer.queries import similar

    def corrupt(writer, old):
        neighbors = np.array(old.neighbors)
        neighbors[5, 3] = 10**6
        writer.write_array("neighbors.npy", neighbors)

    copy = _damaged_copy(atlas, tmp_path, corrupt)
    data = load(copy)
    with pytest.raises(GalexploreError, match=r"neighbors.npy row 5 holds 1000000, which is not a galaxy of this "
                                              r"atlas \(expected 0 to 599, or -1 for none\)"):
        similar(data.atlas.neighbors, data.atlas.similarities, 5, 20)
    explorer = Explorer(data, query=5, k=20)
    assert "the neighbour index is corrupt" in explorer.message.object and explorer.message.alert_type == "danger"
    explorer.state.select_similar()
    assert explorer.state.selection.tolist() == [5]  # the query alone
    explorer.state.query = 6  # an intact row still shows its gallery
    assert "20 most similar" in " ".join(str(getattr(p, "object", "")) for p in _panes(explorer.gallery.column))


def test_a_list_valued_column_is_skipped_with_a_note_and_the_page_works(atlas, tmp_path):
    from galexplore.explorer.page import Explorer
    from galexplore.explorer.store import load

    from galexplore.atlas.export import EXPORT_FORMATS

    def add_lists(writer, old):
        catalog = old.catalog.copy()
        catalog["bands_seen"] = [["g", "r"] if i % 2 else ["z"] for i in range(len(catalog))]
        writer.write_catalog(catalog)

    data = load(_damaged_copy(atlas, tmp_path, add_lists))
    assert "bands_seen" not in data.colourings
    assert data.notes == ["column 'bands_seen' holds ndarray values, not numbers or text: it cannot colour the map "
                          "and is shown as text only"]
    explorer = Explorer(data)
    explorer.state.note(data.notes)
    assert "bands_seen" in explorer.message.object
    explorer.map.streams["lasso"].event(geometry=_lasso_around(explorer, 0.9))
    assert len(explorer.selection_panel.table.value) == len(explorer.state.selection) > 0
    explorer.state.query = int(explorer.state.selection[0])
    for fmt in EXPORT_FORMATS:
        explorer.state.export_format = fmt
        assert len(explorer.selection_panel.export_file().getvalue()) > 0, fmt


def test_every_view_follows_the_state_whoever_sets_it(explorer):
    """A script (or the URL) sets the state alone: the map, gallery, selection panel, sidebar and
    page all follow it, none told by another."""
    import panel as pn

    page = explorer.layout()
    sidebar = pn.panel(explorer.controls)  # a sidebar as laid out: it hides itself in presentation mode
    state = explorer.state
    state.param.update(query=42, k=5, selection=np.array([3, 4, 5]), present=True)
    assert list(explorer.map.marks_pipe.data["role"]) == ["similar"] * 5 + ["query"]
    assert "5 most similar" in " ".join(str(getattr(p, "object", "")) for p in _panes(explorer.gallery.column))
    assert len(explorer.map.selection_pipe.data) == 3 and len(explorer.selection_panel.table.value) == 3
    assert "**3 selected**" in explorer.selection_panel.count.object
    assert not sidebar.visible and page.styles == {"font-size": "150%"}
    state.say("a <b>note</b>", "info")
    assert explorer.message.visible and explorer.message.object == "a &lt;b&gt;note&lt;/b&gt;"
    state.present = False
    assert sidebar.visible and page.styles == {}


def test_column_titles_of_the_selection_table_are_escaped(atlas, tmp_path):
    """Tabulator writes titles as HTML; the browser test checks that nothing runs."""
    from galexplore.explorer.page import Explorer
    from galexplore.explorer.store import load

    hostile = "<img src=x onerror=alert('col')>"

    def rename(writer, old):
        writer.write_catalog(old.catalog.rename(columns={"mag_r": hostile}))

    explorer = Explorer(load(_damaged_copy(atlas, tmp_path, rename)))
    explorer.state.selection = np.arange(10)
    assert explorer.selection_panel.table.titles[hostile] == "&lt;img src=x onerror=alert(&#x27;col&#x27;)&gt;"
    assert all("<" not in title for title in explorer.selection_panel.table.titles.values())


def test_the_app_helpers_examples_run():
    import doctest

    from galexplore.explorer import hosts, markup, urlstate

    for module in (urlstate, hosts, markup):
        failed, tried = doctest.testmod(module)
        assert tried > 0 and failed == 0, module.__name__


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serving(command: list[str], port: int):
    """Start `command` (a server on `port`) and return its process once /app answers."""
    import subprocess
    import time
    import urllib.request

    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/app", timeout=30)
            return process
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise
            time.sleep(0.5)


@pytest.fixture(scope="module")
def server(atlas):
    """The app served as `galexplore serve` serves it, on a free port: yields the port."""
    from galexplore.cli import serve_command

    port = _free_port()
    process = _serving(serve_command(Path(atlas), port), port)
    yield port
    process.terminate()
    process.wait(timeout=30)


def _request(port: int, path: str, host: str, origin: str | None = None, websocket: bool = False) -> tuple[int, str]:
    """Send one raw HTTP/1.1 request with these Host and Origin headers; (status, body start)."""
    import socket

    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Connection: Upgrade" if websocket else "Connection: close"]
    if origin:
        lines.append(f"Origin: {origin}")
    if websocket:
        lines += ["Upgrade: websocket", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="]
    with socket.create_connection(("127.0.0.1", port), timeout=60) as connection:
        connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        answer = b""
        while not (websocket and _complete(answer)):  # an upgrade's answer, else everything until closed
            chunk = connection.recv(65536)
            if not chunk:
                break
            answer += chunk
    head = answer.decode("utf-8", "replace")
    return int(head.split()[1]), head


def _complete(answer: bytes) -> bool:
    """Whether an HTTP answer has its head and as much body as its Content-Length says."""
    head, found, body = answer.partition(b"\r\n\r\n")
    if not found:
        return False
    length = [line.split(b":", 1)[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
    return len(body) >= (int(length[0]) if length else 0)


def test_dns_rebinding_a_foreign_host_is_refused_page_and_websocket(server):
    """A page of evil.example whose name resolves to 127.0.0.1 is same-origin to Tornado (Origin
    equals Host); the Host check refuses it, for the page and for the websocket."""
    evil = f"evil.example:{server}"
    status, body = _request(server, "/app/ws", host=evil, origin=f"http://{evil}", websocket=True)
    assert status == 403 and f"Host '{evil}' is not allowed" in body
    status, body = _request(server, "/app", host=evil, origin=f"http://{evil}")
    assert status == 403
    # the same requests with the host the server was told: the page answers, the upgrade is not refused
    ours = f"127.0.0.1:{server}"
    assert _request(server, "/app", host=ours)[0] == 200
    assert _request(server, "/app/ws", host=ours, origin=f"http://{ours}", websocket=True)[0] != 403



def test_a_bare_panel_serve_refuses_a_foreign_host_from_its_first_request(tmp_path):
    """No app/setup.py: app/app_hooks.py installs the Host check when the server loads the app, so
    even the first page asked for (before main.py has run once) is refused to a rebinding host."""
    import socket
    import subprocess
    import time

    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "panel", "serve", str(APP), "--port", str(port),
                                "--address", "127.0.0.1", "--args", "--atlas", str(tmp_path / "none")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:  # listening; no page asked for yet
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.2)
        evil = f"evil.example:{port}"
        status, body = _request(port, "/app", host=evil, origin=f"http://{evil}")
        assert status == 403 and f"Host '{evil}' is not allowed" in body
        assert _request(port, "/nowhere", host=f"localhost:{port}")[0] == 404  # its own host gets past the check
    finally:
        process.kill()  # nothing of it to keep: no need to wait for a clean shutdown
        process.wait(timeout=30)


def test_the_toolbox_sends_to_topcat_and_follows_what_it_sends_back(explorer, tmp_path):
    """The sidebar's SAMP tools on a session, with a real hub and a client standing in for TOPCAT:
    the selection arrives as a VOTable; TOPCAT's rowList selects on the map, its highlight clicks;
    a position Aladin points at is found. Then an overlay: its matches are marked and selected."""
    pytest.importorskip("pyvo")
    import threading
    import urllib.request

    from astropy.io.votable import parse_single_table
    from pyvo.samp import SAMPHubServer, SAMPIntegratedClient

    from galexplore.explorer.samp import HIGHLIGHT_ROW, SELECT_ROWS
    from galexplore.explorer.toolbox import Toolbox

    hub = SAMPHubServer(web_profile=False, lockfile=str(tmp_path / "hub"), mode="multiple")
    hub.start()
    topcat = SAMPIntegratedClient(name="topcat-stand-in")
    arrived, tables = threading.Event(), []
    try:
        topcat.connect(hub_params=hub.params)

        def loaded(private_key, sender_id, mtype, params, extra):
            tables.append(params)
            arrived.set()

        topcat.bind_receive_notification("table.load.votable", loaded)
        tools = Toolbox(state=explorer.state, hub_params=hub.params)
        tools.connect()
        assert tools.samp_status.startswith("connected to the SAMP hub")
        explorer.state.selection = np.array([4, 9, 30])
        tools.send_selection()
        assert arrived.wait(10)
        with urllib.request.urlopen(tables[0]["url"]) as f:
            sent = parse_single_table(io.BytesIO(f.read())).to_table()
        assert [str(v) for v in sent["object_id"]] == ["G00004", "G00009", "G00030"]
        topcat.ecall_and_wait(tools.samp.public_id, SELECT_ROWS, "5",
                              **{"table-id": tables[0]["table-id"], "url": tables[0]["url"], "row-list": ["0", "2"]})
        np.testing.assert_array_equal(explorer.state.selection, [4, 30])  # the map's selection
        topcat.ecall_and_wait(tools.samp.public_id, HIGHLIGHT_ROW, "5",
                              **{"table-id": tables[0]["table-id"], "url": tables[0]["url"], "row": "1"})
        assert explorer.state.query == 9
        ra, dec = explorer.data.catalog[["ra", "dec"]].iloc[12]
        topcat.ecall_and_wait(tools.samp.public_id, "coord.pointAt.sky", "5", ra=str(ra), dec=str(dec))
        assert explorer.state.query == 12
    finally:
        tools.samp.disconnect()
        topcat.disconnect()
        hub.stop()

    catalog = explorer.data.catalog.iloc[[3, 8]][["ra", "dec"]].rename(columns={"ra": "RAJ2000", "dec": "DEJ2000"})
    tools.load_overlay(catalog.to_csv(index=False).encode(), "lenses.csv")
    np.testing.assert_array_equal(explorer.state.overlay, [3, 8])
    assert len(list(explorer.map.pane.object[()].values())) == 5  # the overlay's layer joined the map
    assert tools.overlay_summary.startswith("lenses: 2 of 2 rows matched within 1.5\"")
    explorer.state.mode = "replace"
    tools.select_matches()
    np.testing.assert_array_equal(explorer.state.selection, [3, 8])
    tools.load_overlay(b"a,b\n1,2\n", "bad.csv")  # a bad catalogue: a message, the overlay kept
    assert "bad.csv: no position or id columns" in explorer.state.message[0]
    np.testing.assert_array_equal(explorer.state.overlay, [3, 8])
    card = tools.__panel__()
    assert card.title == "TOPCAT, Aladin and catalogues" and explorer.toolbox.shared is False


def test_galaxies_on_the_map_tile_the_view_and_a_click_on_a_tile_is_its_galaxy(explorer, monkeypatch):
    """The tiles toggle draws, over the view, the cutout of the galaxy nearest each cell's centre;
    a click anywhere on a tile picks that tile's galaxy, not merely the nearest point."""
    import holoviews as hv

    class Cutouts:  # a survey's cutouts, each a solid colour: its row
        available, reason = True, None

        def rgb_arrays(self, rows, size):
            return [np.full((size, size, 3), row % 256, np.uint8) for row in rows]

        def rgb_png(self, row, size):  # the gallery's: not what this test looks at
            return None

        def rgb_pngs(self, rows, size):
            return [None] * len(rows)

    monkeypatch.setattr(explorer.data, "cutouts", Cutouts())
    explorer.state.tiles = True
    tiles = explorer.map._tiles()
    grid, galaxies = explorer.map._tile_grid
    from galexplore.explorer.mapview import TILE_PX

    assert isinstance(tiles, hv.RGB)
    assert tiles.dimension_values("A", flat=False).shape == (grid.rows * TILE_PX, grid.columns * TILE_PX)
    shown = np.flatnonzero(galaxies.ravel() >= 0)
    assert shown.size > 0 and "tiles" in explorer.state.timings
    cell = int(shown[0])
    r, c = divmod(cell, grid.columns)
    w, h = grid.cell
    corner_x, corner_y = grid.x0 + c * w + 0.05 * w, grid.y1 - r * h - 0.05 * h  # a tile's corner, far from its centre
    explorer.map.click(corner_x, corner_y)
    assert explorer.state.query == int(galaxies[r, c])
    explorer.state.tiles = False
    explorer.map.click(corner_x, corner_y)  # no tiles: the nearest galaxy to the click
    assert explorer.state.query == explorer.data.index.nearest(corner_x, corner_y)[0]


def test_serve_overlay_files_are_matched_in_every_session(atlas, tmp_path, monkeypatch):
    """`galexplore serve --overlay FILE[:NAME]`: checked on the command line, then every session's
    page loads and marks it; one that cannot be read is a message, not an error page."""
    import panel as pn

    from galexplore.cli import serve_command
    from galexplore.errors import GalexploreError
    from galexplore.explorer import server
    from galexplore.explorer.store import load

    catalog = load(atlas).catalog
    mine = tmp_path / "mine.csv"
    catalog.iloc[[5, 6]][["object_id"]].to_csv(mine, index=False)
    command = serve_command(Path(atlas), overlays=[f"{mine}:known"])
    assert command[-2:] == ["--overlay", f"{mine.resolve()}:known"]
    with pytest.raises(GalexploreError, match="--overlay nope.csv: no such file nope.csv"):
        serve_command(Path(atlas), overlays=["nope.csv"])

    from galexplore.explorer import page

    made = []

    class Recorded(page.Explorer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(page, "Explorer", Recorded)  # server.page imports it on each call
    monkeypatch.setattr(type(pn.state), "session_args", property(lambda self: {}))
    gone = tmp_path / "gone.csv"
    monkeypatch.setattr(sys, "argv", ["main.py", "--atlas", str(atlas), "--overlay", f"{mine}:known",
                                      "--overlay", str(gone)])
    server.page()
    tools = made[0].toolbox
    assert list(tools.overlays) == ["known"] and tools.overlays["known"].by == "id"
    np.testing.assert_array_equal(made[0].state.overlay, [5, 6])
    assert made[0].state.message == [f"{gone}: cannot be read (No such file or directory)"]
