"""Galaxies on the map: the map tiled with the galaxies themselves, the figure every paper of the
field shows.

For each cell of a grid over a view of the map, the galaxy nearest the cell's centre, if it lies
in the cell (empty map stays empty), drawn as its colour cutout. Choosing the galaxies is one
vectorised k-d tree query on the shared `MapIndex` (a few ms for 10^6 galaxies); the cutouts of
the cells on screen are read with one survey read and cached (`CutoutSource.rgb_arrays`), so a
pan or zoom re-tiles in well under a second.

    >>> from galexplore.explorer.queries import MapIndex
    >>> index = MapIndex([0.1, 0.2, 1.6, 5.0], [0.1, 0.9, 0.4, 5.0], [0.0] * 4, [0.0] * 4)
    >>> grid = TileGrid.over((0.0, 2.0, 0.0, 1.0), columns=2, rows=1)
    >>> grid.galaxies(index).tolist()  # cell (0, 0) holds rows 0 and 1: row 1 is nearer its centre (0.5, 0.5)
    [[1, 2]]
    >>> grid.galaxy_at(grid.galaxies(index), 1.9, 0.2)
    2
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from galexplore.explorer.queries import MapIndex

__all__ = ["TileGrid", "mosaic", "MAX_CELLS"]

MAX_CELLS = 40  # along the longer side: more tiles than this are too small to see a galaxy in


@dataclass(frozen=True)
class TileGrid:
    """A grid of `columns` x `rows` square-ish cells over the map box (x0, x1, y0, y1)."""

    x0: float
    x1: float
    y0: float
    y1: float
    columns: int
    rows: int

    @classmethod
    def over(cls, box: Sequence[float], *, columns: int | None = None, rows: int | None = None,
             cells: int = 12) -> TileGrid:
        """The grid over `box`: `cells` along its longer side and as many as fit square on the
        other (unless `columns` and `rows` are given)."""
        x0, x1, y0, y1 = (float(v) for v in box)
        if not all(math.isfinite(v) for v in (x0, x1, y0, y1)) or x1 <= x0 or y1 <= y0:
            raise ValueError(f"map box ({x0}, {x1}, {y0}, {y1}): expected finite x0 < x1 and y0 < y1")
        if columns is None or rows is None:
            cells = max(1, min(int(cells), MAX_CELLS))
            width, height = x1 - x0, y1 - y0
            side = max(width, height) / cells
            columns, rows = max(1, round(width / side)), max(1, round(height / side))
        return cls(x0, x1, y0, y1, int(columns), int(rows))

    @property
    def cell(self) -> tuple[float, float]:
        """(width, height) of a cell in map units."""
        return (self.x1 - self.x0) / self.columns, (self.y1 - self.y0) / self.rows

    def centres(self) -> np.ndarray:
        """(rows * columns, 2) cell centres, row by row from the top (largest y) down, as an
        image is laid out."""
        w, h = self.cell
        xs = self.x0 + (np.arange(self.columns) + 0.5) * w
        ys = self.y1 - (np.arange(self.rows) + 0.5) * h
        gx, gy = np.meshgrid(xs, ys)
        return np.column_stack([gx.ravel(), gy.ravel()])

    def galaxies(self, index: MapIndex) -> np.ndarray:
        """(rows, columns) atlas rows: the galaxy nearest each cell's centre when it lies inside
        that cell, else -1."""
        centres = self.centres()
        found, points = index.nearest_many(centres)
        w, h = self.cell
        inside = (np.abs(points[:, 0] - centres[:, 0]) <= w / 2) & (np.abs(points[:, 1] - centres[:, 1]) <= h / 2)
        return np.where(inside & (found >= 0), found, -1).reshape(self.rows, self.columns)

    def galaxy_at(self, galaxies: np.ndarray, x: float, y: float) -> int | None:
        """The atlas row of the tile under map point (x, y), or None off the grid or on an empty cell:
        a click on a tile is a click on its galaxy."""
        w, h = self.cell
        column, row = math.floor((x - self.x0) / w), math.floor((self.y1 - y) / h)
        if not (0 <= column < self.columns and 0 <= row < self.rows):
            return None
        found = int(galaxies[row, column])
        return found if found >= 0 else None


def mosaic(galaxies: np.ndarray, cutouts: Callable[[list[int], int], list[np.ndarray] | None], size: int) -> np.ndarray | None:
    """The tiles as one (rows * size, columns * size, 4) RGBA uint8 image, empty cells transparent;
    `cutouts(rows, size)` gives the (size, size, 3) colour cutouts (None without a survey)."""
    grid_rows, grid_columns = galaxies.shape
    image = np.zeros((grid_rows * size, grid_columns * size, 4), np.uint8)
    cells = np.flatnonzero(galaxies.ravel() >= 0)
    if cells.size == 0:
        return image
    pictures = cutouts([int(r) for r in galaxies.ravel()[cells]], size)
    if pictures is None:
        return None
    for cell, picture in zip(cells, pictures):
        r, c = divmod(int(cell), grid_columns)
        image[r * size:(r + 1) * size, c * size:(c + 1) * size, :3] = picture[..., :3]
        image[r * size:(r + 1) * size, c * size:(c + 1) * size, 3] = 255
    return image
