"""What a report section is made of: the `Section` it returns, an embedded figure, a table and
the datashaded map.

A section is a function ``(atlas, folder) -> Section``; one whose inputs the atlas lacks raises
`SectionSkipped` with the reason. Maps are rasterised with datashader (one pass over the points,
so 10^6 cost about as much as 10^4); the other figures are matplotlib, drawn on
`matplotlib.figure.Figure` (no pyplot state) and turned into PNG bytes by `to_png`.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from galexplore.atlas.files import Atlas

#: size of the rasterised maps, pixels
MAP_PIXELS = 600
#: the categorical map's colours, by label_availability value (others cycle through the rest)
LABEL_COLOURS = {"none": "#bbbbbb", "spec-z": "#1f77b4", "morphology": "#2ca02c", "spec-z+morphology": "#d62728"}
_MORE_COLOURS = ("#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22")


class Section(NamedTuple):
    """A section of the report: its title, its HTML and the figure files it wrote."""

    title: str
    html: str
    figures: list[Path]


class SectionSkipped(Exception):
    """A section's inputs are not in the atlas; the message says which."""


SectionFunction = Callable[[Atlas, Path], Section]


def figure(folder: Path, name: str, png: bytes, caption: str) -> tuple[Path, str]:
    """Write `png` as ``folder/name`` and return it with its HTML: the image embedded as base64
    under a one-line caption."""
    path = Path(folder) / name
    path.write_bytes(png)
    data = base64.b64encode(png).decode("ascii")
    text = html.escape(caption)
    return path, (f'<figure><img src="data:image/png;base64,{data}" alt="{text}">'
                  f"<figcaption>{text}</figcaption></figure>")


def table(frame: pd.DataFrame, float_format: str = "{:.4g}") -> str:
    """An HTML table of `frame` (values escaped, floats to 4 significant figures)."""
    return frame.to_html(index=False, border=0, classes="data", float_format=float_format.format, na_rep="")


def to_png(fig: Any) -> bytes:
    """A matplotlib figure as PNG bytes (100 dpi, cropped to what it draws)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def new_figure(width: float, height: float) -> Any:
    """A matplotlib `Figure` of that size in inches, laid out by constrained layout (no pyplot state)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def numeric(catalog: pd.DataFrame, name: str) -> np.ndarray:
    """The catalog column `name` as float64 (N,), NaN where a value is not a number."""
    return pd.to_numeric(catalog[name], errors="coerce").to_numpy(dtype=np.float64)


def first_column(catalog: pd.DataFrame, names: Sequence[str]) -> str | None:
    """The first of `names` that the catalog has with at least one finite value."""
    for name in names:
        if name in catalog.columns and np.isfinite(numeric(catalog, name)).any():
            return name
    return None


def _raster(catalog: pd.DataFrame, column: str, categorical: bool, span: tuple[float, float] | None = None,
            cmap: list[str] | None = None, colours: dict[str, str] | None = None) -> tuple[np.ndarray, tuple]:
    """The map rasterised by datashader: (H, W, 4) uint8 RGBA, row 0 at the lowest umap_y, and
    the extent (x0, x1, y0, y1)."""
    import datashader as ds
    import datashader.transfer_functions as tf

    x, y = numeric(catalog, "umap_x"), numeric(catalog, "umap_y")
    pad_x, pad_y = 0.02 * (np.nanmax(x) - np.nanmin(x) or 1), 0.02 * (np.nanmax(y) - np.nanmin(y) or 1)
    extent = (np.nanmin(x) - pad_x, np.nanmax(x) + pad_x, np.nanmin(y) - pad_y, np.nanmax(y) + pad_y)
    canvas = ds.Canvas(plot_width=MAP_PIXELS, plot_height=MAP_PIXELS, x_range=extent[:2], y_range=extent[2:])
    if categorical:
        frame = pd.DataFrame({"x": x, "y": y, "c": catalog[column].astype(str).astype("category")})
        agg = canvas.points(frame, "x", "y", agg=ds.count_cat("c"))
        image = tf.shade(agg, color_key=colours, how="eq_hist", min_alpha=180)
    else:
        frame = pd.DataFrame({"x": x, "y": y, "v": numeric(catalog, column)}).dropna()
        agg = canvas.points(frame, "x", "y", agg=ds.mean("v"))
        image = tf.shade(agg, cmap=cmap, how="linear", span=span)
    image = tf.dynspread(image, threshold=0.5, max_px=3)
    rgba = np.ascontiguousarray(image.data).view(np.uint8).reshape(MAP_PIXELS, MAP_PIXELS, 4)
    return rgba, extent


def map_png(catalog: pd.DataFrame, column: str, label: str) -> bytes:
    """A datashaded UMAP map coloured by `column`, with a colour bar or a legend."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize, to_hex
    from matplotlib.patches import Patch

    fig = new_figure(6.4, 5.6)
    ax = fig.add_subplot()
    categorical = not pd.api.types.is_numeric_dtype(catalog[column])
    if categorical:
        values = sorted(catalog[column].astype(str).unique())
        spare = iter(_MORE_COLOURS * (1 + len(values) // len(_MORE_COLOURS)))
        colours = {v: LABEL_COLOURS.get(v) or next(spare) for v in values}
        rgba, extent = _raster(catalog, column, True, colours=colours)
        counts = catalog[column].astype(str).value_counts()
        ax.legend(handles=[Patch(color=colours[v], label=f"{v} ({counts[v]:,})") for v in values],
                  loc="best", fontsize=8, framealpha=0.8)
    else:
        values = numeric(catalog, column)
        lo, hi = np.nanpercentile(values, [1, 99])
        hi = hi if hi > lo else lo + 1e-6
        cmap = colormaps["viridis"]
        rgba, extent = _raster(catalog, column, False, span=(lo, hi),
                               cmap=[to_hex(c) for c in cmap(np.linspace(0, 1, 256))])
        fig.colorbar(ScalarMappable(Normalize(lo, hi), cmap), ax=ax, label=f"{label} (mean per pixel)", shrink=0.8)
    ax.imshow(rgba, origin="lower", extent=extent, aspect="auto", interpolation="nearest")
    ax.set_xlabel("umap_x")
    ax.set_ylabel("umap_y")
    return to_png(fig)
