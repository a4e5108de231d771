"""A montage: a grid of a survey's cutouts as colour composites, labelled with what is known.

Used to look at a survey (a simulated one above all: do its ellipticals look red and smooth, its
spirals blue and knotty?) and to show a selection. Each tile is a Lupton RGB composite, enlarged
to at least `MIN_TILE` pixels with nearest-neighbour sampling so pixels stay honest, with the
object's redshift, type and anomaly written on it when the catalog has them.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from galexplore.io import atomic_path
from galexplore.survey.render import lupton_rgb
from galexplore.survey.base import Survey

MIN_TILE = 128  # pixels
#: a montage's PNG is made whole in memory: at most this many tiles across and in all
#: (100 x 128 pixels is 12,800 pixels wide; 10,000 tiles of 128 x 128 RGB are 490 MB)
MAX_COLUMNS = 100
MAX_TILES = 10_000
GAP = 2  # pixels between tiles
#: catalog columns for the tile label, first found wins: (column candidates, format)
REDSHIFT_COLUMNS = ("z", "z_spec", "specz_redshift", "redshift")
TYPE_COLUMNS = ("type", "morphology")


def draw_montage(survey: Survey, out_png: str | Path, n: int = 36, columns: int = 6, seed: int = 0,
                 indices: np.ndarray | None = None) -> Path:
    """Write a PNG grid of `n` random cutouts (or those at `indices`) and return its path.

    The image is ``columns * tile + (columns + 1) * GAP`` pixels wide and ``rows * tile +
    (rows + 1) * GAP`` high, with ``tile = H * ceil(MIN_TILE / H)`` for H x H cutouts.
    """
    from PIL import Image, ImageDraw

    if not 1 <= columns <= MAX_COLUMNS:
        raise ValueError(f"columns = {columns}; expected 1 to {MAX_COLUMNS} (MAX_COLUMNS)")
    if indices is None:
        count = min(int(n), len(survey))
        indices = np.sort(np.random.default_rng(seed).choice(len(survey), size=count, replace=False))
    indices = np.asarray(indices, dtype=np.int64)
    if indices.size > MAX_TILES:
        raise ValueError(f"{indices.size:,} cutouts; a montage draws at most {MAX_TILES:,} (MAX_TILES)")
    if indices.size == 0:
        raise ValueError(f"{survey.source}: nothing to draw (n = {n}, {len(survey)} objects)")
    _, height, width = survey.shape
    zoom = max(1, math.ceil(MIN_TILE / max(height, width)))
    tile_w, tile_h = width * zoom, height * zoom
    rows = math.ceil(len(indices) / columns)
    canvas = Image.new("RGB", (columns * tile_w + (columns + 1) * GAP, rows * tile_h + (rows + 1) * GAP), (40, 40, 40))
    draw = ImageDraw.Draw(canvas)
    font = _font()
    cutouts = survey.read(indices)  # (B, C, H, W)
    for k, (row, cutout) in enumerate(zip(indices, cutouts)):
        rgb = lupton_rgb(cutout, survey.bands)
        tile = Image.fromarray(rgb).resize((tile_w, tile_h), Image.Resampling.NEAREST)
        x = GAP + (k % columns) * (tile_w + GAP)
        y = GAP + (k // columns) * (tile_h + GAP)
        canvas.paste(tile, (x, y))
        for line, text in enumerate(tile_label(survey.catalog, int(row))):
            draw.text((x + 3, y + 2 + 12 * line), text, fill=(255, 255, 160), font=font,
                      stroke_width=1, stroke_fill=(0, 0, 0))
    out_png = Path(out_png)
    with atomic_path(out_png) as tmp:
        canvas.save(tmp, format="PNG")
    return out_png


def tile_label(catalog: pd.DataFrame, row: int) -> list[str]:
    """The text lines for one tile: redshift, type, and the anomaly when there is one."""
    lines = []
    for col in REDSHIFT_COLUMNS:
        if col in catalog.columns:
            value = catalog[col].iloc[row]
            if pd.notna(value):
                lines.append(f"z={float(value):.3f}")
                break
    for col in TYPE_COLUMNS:
        if col in catalog.columns and pd.notna(catalog[col].iloc[row]):
            lines.append(str(catalog[col].iloc[row]))
            break
    if "anomaly_type" in catalog.columns:
        anomaly = str(catalog["anomaly_type"].iloc[row])
        if anomaly not in ("", "none", "nan"):
            lines.append(f"! {anomaly}")
    return lines


def _font():
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=11)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()
