"""Surveys held in memory: an (N, C, H, W) array and a catalog, for tests and notebooks.

The array is not copied: reads index it, so a numpy memmap works as well as an array in RAM.
A catalog must hold ``ra`` and ``dec`` like every other source (``object_id`` defaults to the
row number). With ``catalog=None`` a placeholder catalog is made instead: ``object_id`` = row
and every object at ra = dec = 0, so that pixels alone can be explored; positions made up this
way mean nothing on the sky.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from galexplore.errors import SurveyError
from galexplore.survey.base import Survey, check_catalog, standard_columns


class ArraySurvey(Survey):
    """A survey over an in-memory cube (N, C, H, W) and a catalog of N rows."""

    def __init__(
        self,
        images: np.ndarray,
        catalog: pd.DataFrame | Mapping[str, Sequence] | None = None,
        bands: Sequence[str] | None = None,
        pixel_scale: float | None = None,
        nonfinite: str = "reject",
        source: str = "<memory>",
    ) -> None:
        self.source = source
        if not isinstance(images, np.ndarray):
            raise SurveyError(f"{source}: images is a {type(images).__name__}; expected a numpy array (N, C, H, W)")
        if images.ndim != 4:
            raise SurveyError(f"{source}: images have shape {images.shape}; expected a 4-D cube (N, C, H, W)")
        if images.dtype.kind not in "fiu":
            raise SurveyError(
                f"{source}: images have dtype {images.dtype}; expected numbers (float fluxes or integer counts)"
            )
        n, c, h, w = images.shape
        if h != w:
            raise SurveyError(f"{source}: cutouts are {h}x{w} pixels; expected square cutouts")
        if nonfinite not in ("reject", "mask"):
            raise SurveyError(f"{source}: nonfinite = {nonfinite!r}; expected 'reject' or 'mask'")
        if pixel_scale is not None and not (np.isfinite(pixel_scale) and pixel_scale > 0):
            raise SurveyError(f"{source}: pixel_scale = {pixel_scale!r}; expected arcsec per pixel > 0")
        self._images = images  # (N, C, H, W), never copied
        self.shape = (int(c), int(h), int(w))
        self.bands = tuple(bands) if bands is not None else tuple(f"b{j}" for j in range(c))
        if len(self.bands) != c:
            raise SurveyError(
                f"{source}: images have {c} bands; expected {len(self.bands)} ({','.join(self.bands)}, bands)"
            )
        self.pixel_scale = pixel_scale
        self.nonfinite = nonfinite
        self.nonfinite_masked = 0
        if catalog is None:
            table = pd.DataFrame({"object_id": np.arange(n), "ra": np.zeros(n), "dec": np.zeros(n)})
        else:
            try:
                table = pd.DataFrame(catalog)  # a copy: the catalog is small next to the pixels
            except (ValueError, TypeError) as exc:
                raise SurveyError(f"{source}: catalog is not a table of equal-length columns ({exc})") from None
            table = standard_columns(table, "object_id", "ra", "dec", source)
        self.catalog = check_catalog(table, n, source)

    def _read(self, indices: np.ndarray) -> np.ndarray:
        return self._images[indices]  # fancy indexing copies only the rows asked for
