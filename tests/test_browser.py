"""The explorer in headless Chromium (Debian's, driven by Playwright): load, lasso, click, export, URL.

Run by `make test` (which installs chromium); plain `pytest` skips them (marker `browser`).
Screenshots are written to tests/artifacts/.
"""

from __future__ import annotations

import io
import re
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from galexplore.pipeline.build import build
from galexplore.cli import serve_command
from galexplore.config import config_from_dict

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
# Flags for this machine's closed network (see the env notes): no background connections.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
N = 800
XSS = "window.__xss = (window.__xss || 0) + 1"
HOSTILE_COLUMN = f'<img src="y" onerror="{XSS}">band'  # a catalog column's name, shown as a table title


def browser_atlas(folder: Path) -> Path:
    """A small atlas of clustered embeddings whose names and types carry markup, in `folder`."""
    rng = np.random.default_rng(4)
    centres = rng.standard_normal((4, 16)) * 3
    which = rng.integers(0, 4, N)
    np.save(folder / "emb.npy", (centres[which] + rng.standard_normal((N, 16))).astype(np.float32))
    pd.DataFrame({
        "object_id": np.arange(5000, 5000 + N), "ra": rng.uniform(0, 360, N), "dec": rng.uniform(-60, 60, N),
        "z_spec": np.where(which < 2, 0.05 + 0.1 * which, np.nan),
        "type": np.array(["E", "S0", "Sa", f"<script>{XSS}</script>Sc"])[which],
        "name": [f'<img src="x" onerror="{XSS}">NGC {i}' for i in range(N)],  # catalog text is never markup
        HOSTILE_COLUMN: [f"b{i}" for i in range(N)],  # too many values to colour by: only in the table
    }).to_parquet(folder / "cat.parquet")
    config = config_from_dict({"name": "browser", "seed": 3, "embed": {"pca_dim": 8}, "neighbors": {"k": 20},
                               "project": {"n_neighbors": 10}, "trust": {"k": 5}, "anomaly": {"k": 5}})
    build(config, folder / "atlas", embeddings=folder / "emb.npy", catalog=folder / "cat.parquet")
    return folder / "atlas"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A small atlas served by `panel serve app/` on a free port: yields the app's URL."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: `make test` installs Debian's chromium")
    atlas = browser_atlas(tmp_path_factory.mktemp("browser"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(serve_command(atlas, port, origins=[f"127.0.0.1:{port}"]),  # as `galexplore serve`
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/app"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=5)
            break
        except OSError:
            time.sleep(0.5)
    yield url
    server.terminate()
    server.wait(timeout=30)


@pytest.fixture()
def page(served):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        context = browser.new_context(viewport={"width": 1500, "height": 900}, accept_downloads=True)
        page = context.new_page()
        page.console_errors = []
        page.on("console", lambda m: page.console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: page.console_errors.append(str(e)))
        yield page
        browser.close()


def _open(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("canvas", timeout=60_000)
    page.wait_for_timeout(2500)  # the first rasterisation


def _frame(page):
    """The map's plot frame on the page: inside the largest canvas, the bounding box of its
    background colour (a lasso must start inside the frame, not on an axis)."""
    from PIL import Image

    boxes = [c.bounding_box() for c in page.locator("canvas").all()]
    canvas = max((b for b in boxes if b), key=lambda b: b["width"] * b["height"])
    shot = np.asarray(Image.open(io.BytesIO(page.screenshot(clip=canvas))).convert("RGB")).astype(int)
    colours, counts = np.unique(shot.reshape(-1, 3), axis=0, return_counts=True)
    dark = [i for i in np.argsort(-counts) if colours[i].sum() < 600][0]  # the frame, not the white page
    mask = np.abs(shot - colours[dark]).sum(axis=2) < 6
    # the frame's rows and columns are mostly background; axis labels in a similar grey are not
    rows, cols = np.flatnonzero(mask.mean(axis=1) > 0.3), np.flatnonzero(mask.mean(axis=0) > 0.3)
    inset = 6
    return {"x": float(canvas["x"] + cols.min() + inset), "y": float(canvas["y"] + rows.min() + inset),
            "width": float(cols.max() - cols.min() - 2 * inset), "height": float(rows.max() - rows.min() - 2 * inset)}


def _wait_text(page, pattern: str | re.Pattern, timeout: float = 15_000) -> str:
    """Wait for text matching `pattern` anywhere on the page (Bokeh renders into shadow DOM, which
    Playwright's locators pierce); return that element's text."""
    found = page.get_by_text(pattern).first
    found.wait_for(timeout=timeout)
    return found.inner_text()


def _shown(page, text: str) -> bool:
    return page.get_by_text(text).count() > 0


def test_the_page_loads_without_console_errors(page, served):
    _open(page, served)
    assert "800 galaxies" in _wait_text(page, "800 galaxies")
    page.screenshot(path=ARTIFACTS / "browser-load.png")
    assert page.console_errors == []


def test_a_lasso_drawn_with_the_mouse_selects_the_galaxies(page, served):
    _open(page, served)
    page.locator(".bk-tool-icon-lasso-select").first.click()
    box = _frame(page)
    # a loop around the whole frame: every galaxy in view is inside
    corners = [(box["x"] + 2, box["y"] + 2), (box["x"] + box["width"] - 2, box["y"] + 2),
               (box["x"] + box["width"] - 2, box["y"] + box["height"] - 2), (box["x"] + 2, box["y"] + box["height"] - 2)]
    page.mouse.move(*corners[0])
    page.mouse.down()
    for x, y in [*corners[1:], corners[0]]:
        page.mouse.move(x, y, steps=8)
    page.mouse.up()
    page.get_by_text("Selection", exact=True).click()
    _wait_text(page, "800 selected")
    page.screenshot(path=ARTIFACTS / "browser-lasso.png")
    # a smaller lasso over the left half selects some, not all
    page.mouse.move(box["x"] + 2, box["y"] + 2)
    page.mouse.down()
    for x, y in [(box["x"] + box["width"] / 2, box["y"] + 2), (box["x"] + box["width"] / 2, box["y"] + box["height"] - 2),
                 (box["x"] + 2, box["y"] + box["height"] - 2), (box["x"] + 2, box["y"] + 2)]:
        page.mouse.move(x, y, steps=8)
    page.mouse.up()
    text = _wait_text(page, re.compile(r"^(?!800 )[\d,]+ selected"))
    count = int(text.split()[0].replace(",", ""))
    assert 0 < count < 800
    assert page.console_errors == []


def test_a_click_shows_the_gallery_and_an_export_downloads(page, served):
    _open(page, served)
    box = _frame(page)
    page.locator(".bk-tool-icon-tap-select").first.click()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    _wait_text(page, "12 most similar")
    page.screenshot(path=ARTIFACTS / "browser-gallery.png")
    page.get_by_text("Select these").click()
    page.get_by_text("Selection", exact=True).click()
    _wait_text(page, "13 selected")
    with page.expect_download(timeout=30_000) as download:
        page.get_by_text("Download the selection").click()
    path = download.value.path()
    table = pd.read_csv(path)
    assert download.value.suggested_filename.startswith("browser-selection-")
    assert len(table) == 13 and list(table.columns[:3]) == ["object_id", "ra", "dec"]
    assert page.console_errors == []


def test_a_presentation_url_reopens_the_same_view(page, served):
    _open(page, f"{served}?colour=type&present=true&galaxy=7&trust=true")
    _wait_text(page, "5007")  # object_id of row 7, in the gallery
    assert not page.get_by_text("Colour by").first.is_visible()  # the sidebar is hidden when presenting
    page.screenshot(path=ARTIFACTS / "browser-presentation.png")
    assert "galaxy=7" in page.url and "colour=type" in page.url
    assert page.console_errors == []


def test_hovering_the_map_shows_the_pixels_value_and_the_galaxy_under_the_cursor(page, served):
    from PIL import Image

    _open(page, f"{served}?colour=density")
    box = _frame(page)
    shot = np.asarray(Image.open(io.BytesIO(page.screenshot(clip=box))).convert("RGB")).astype(int)
    background = np.median(shot.reshape(-1, 3), axis=0)
    filled = np.argwhere(np.abs(shot - background).sum(axis=2) > 120)  # a pixel with galaxies
    y, x = filled[len(filled) // 2]
    page.mouse.move(box["x"] + x + 0.5, box["y"] + y + 0.5)
    tooltip = _wait_text(page, re.compile(r"umap_x:\s*-?[\d.]+"))
    assert "undefined" not in tooltip
    line = _wait_text(page, re.compile(r"under the cursor: 5\d\d\d"))  # the galaxy's own object_id
    assert "type" in line
    page.screenshot(path=ARTIFACTS / "browser-hover.png")


def test_catalog_markup_never_runs_in_the_page(page, served):
    """Object names and types carrying <script> and <img onerror> are shown as text everywhere:
    the gallery's record, the selection table, the hover line and the legend."""
    _open(page, f"{served}?colour=type&galaxy=3")  # every name is hostile, and row 3's type
    _wait_text(page, re.compile(r"NGC \d+"))  # the record's name, as text
    box = _frame(page)
    page.locator(".bk-tool-icon-lasso-select").first.click()
    page.mouse.move(box["x"] + 2, box["y"] + 2)
    page.mouse.down()
    for x, y in [(box["x"] + box["width"] - 2, box["y"] + 2), (box["x"] + box["width"] - 2, box["y"] + box["height"] - 2),
                 (box["x"] + 2, box["y"] + box["height"] - 2), (box["x"] + 2, box["y"] + 2)]:
        page.mouse.move(x, y, steps=8)
    page.mouse.up()
    page.get_by_text("Selection", exact=True).click()
    _wait_text(page, "800 selected")
    _wait_text(page, re.compile(r"<img src=.x. onerror"))  # the table shows the markup as text
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, steps=20)
    page.wait_for_timeout(1000)
    page.screenshot(path=ARTIFACTS / "browser-escaped.png")
    assert page.evaluate("window.__xss") is None
    assert page.locator('img[src="x"]').count() == 0  # no element was made from catalog text
    assert page.console_errors == []


def test_a_hostile_column_name_is_a_plain_title_in_the_selection_table(page, served):
    """A column *named* <img onerror=...> was written into the Selection tab's table header as
    HTML; its title is now escaped text."""
    _open(page, served)
    box = _frame(page)
    page.locator(".bk-tool-icon-box-select").first.click()
    page.mouse.move(box["x"] + 2, box["y"] + 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] - 2, box["y"] + box["height"] - 2, steps=10)
    page.mouse.up()
    page.get_by_text("Selection", exact=True).click()
    _wait_text(page, "800 selected")
    page.locator(".tabulator").first.wait_for(timeout=15_000)
    titles = page.locator(".tabulator-col-title").all_inner_texts()
    page.screenshot(path=ARTIFACTS / "browser-column-title.png")
    assert HOSTILE_COLUMN in titles, titles  # shown as the text it is
    assert page.locator('img[src="y"]').count() == 0  # no element made from the name
    assert page.evaluate("window.__xss") is None
    assert page.console_errors == []


def test_a_url_of_bad_values_opens_the_explorer_with_notes(page, served):
    """?k=0, ?below=nan, ?galaxy=99999999 gave a blank page; now the explorer opens with the values
    clamped or ignored, says so, and "Select these" says no galaxy is chosen rather than fail on the server."""
    _open(page, f"{served}?k=0&below=nan&galaxy=99999999&view=0,inf,0,1")
    assert "800 galaxies" in _wait_text(page, "800 galaxies")
    _wait_text(page, re.compile(r"\?k='0': showing 1 similar galaxies"))
    _wait_text(page, re.compile(r"\?galaxy='99999999': no such galaxy, ignored"))
    page.get_by_text("Select these").click()
    _wait_text(page, "no galaxy chosen, so none similar to select")
    page.get_by_text("Selection", exact=True).click()
    _wait_text(page, "no selection")
    page.screenshot(path=ARTIFACTS / "browser-bad-url.png")
    assert page.console_errors == []
