"""Galaxies on the map: which galaxy each tile shows, a click on a tile, the mosaic image."""

from __future__ import annotations

import numpy as np
import pytest

from galexplore.explorer.queries import MapIndex
from galexplore.explorer.tiles import MAX_CELLS, TileGrid, mosaic


def _index(x, y) -> MapIndex:
    x, y = np.asarray(x, float), np.asarray(y, float)
    return MapIndex(x, y, np.zeros_like(x), np.zeros_like(x))


def test_each_cell_shows_the_galaxy_nearest_its_centre_inside_it() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 10, 20_000), rng.uniform(0, 5, 20_000)
    x[:50], y[:50] = rng.uniform(0, 2, 50), rng.uniform(3, 5, 50)  # more in the top-left cell
    x[(x > 8) & (y < 1)] = np.nan  # an empty bottom-right corner
    index = _index(x, y)
    grid = TileGrid.over((0, 10, 0, 5), cells=5)
    assert (grid.columns, grid.rows) == (5, 2) and grid.cell == (2.0, 2.5)
    galaxies = grid.galaxies(index)
    centres = grid.centres().reshape(2, 5, 2)
    for r in range(2):
        for c in range(5):
            cx, cy = centres[r, c]
            inside = (np.abs(x - cx) <= 1) & (np.abs(y - cy) <= 1.25)
            best = np.flatnonzero(inside)[np.argmin(np.hypot(x[inside] - cx, y[inside] - cy))]
            assert galaxies[r, c] == best
    assert centres[0, 0].tolist() == [1.0, 3.75]  # row 0 is the top of the map, as in an image


def test_empty_cells_stay_empty_and_a_click_on_a_tile_is_its_galaxy() -> None:
    index = _index([0.5, 3.5], [0.5, 0.5])
    grid = TileGrid.over((0, 4, 0, 1), columns=4, rows=1)
    galaxies = grid.galaxies(index)
    assert galaxies.tolist() == [[0, -1, -1, 1]]
    assert grid.galaxy_at(galaxies, 0.9, 0.1) == 0 and grid.galaxy_at(galaxies, 3.01, 0.99) == 1
    assert grid.galaxy_at(galaxies, 1.5, 0.5) is None and grid.galaxy_at(galaxies, 4.5, 0.5) is None
    nothing = TileGrid.over((0, 1, 0, 1), cells=3).galaxies(_index([np.nan], [np.nan]))
    assert (nothing == -1).all()


def test_grids_are_bounded_and_boxes_checked() -> None:
    assert TileGrid.over((0, 1, 0, 1), cells=1000).columns == MAX_CELLS
    with pytest.raises(ValueError, match="expected finite x0 < x1"):
        TileGrid.over((1, 0, 0, 1))


def test_the_mosaic_places_each_cutout_and_leaves_empty_cells_transparent() -> None:
    galaxies = np.array([[4, -1], [-1, 7]])
    asked = []

    def cutouts(rows, size):
        asked.append(rows)
        return [np.full((size, size, 3), row, np.uint8) for row in rows]

    image = mosaic(galaxies, cutouts, 8)
    assert image.shape == (16, 16, 4) and asked == [[4, 7]]  # one read for the view
    assert (image[:8, :8, :3] == 4).all() and (image[8:, 8:, :3] == 7).all()
    assert (image[:8, :8, 3] == 255).all() and (image[:8, 8:, 3] == 0).all()
    assert mosaic(galaxies, lambda rows, size: None, 8) is None  # no survey: no tiles
