"""Cutouts of atlas galaxies for the explorer's gallery: Lupton RGB and per-band PNGs, cached."""

from __future__ import annotations

import collections
import io
import threading
import tomllib
from pathlib import Path
from typing import Any

import numpy as np

from galexplore.errors import GalexploreError, SurveyError
from galexplore.survey.render import DISPLAY_CHANNELS, composite_rgb, lupton_rgb


class CutoutSource:
    """Colour cutouts of atlas galaxies for the gallery, as PNG bytes.

    Reads the survey recorded in the atlas's manifest (with the config it was built with) by
    random access, and renders Lupton RGB composites (`galexplore.survey.render.lupton_rgb`) or per-band
    grey images, keeping the last `cache_size` images. When the atlas has no survey (built from
    embeddings), or the survey is gone or no longer the one the atlas was built from, every
    method returns None and `reason` says why. Safe to share between sessions (one lock).
    """

    def __init__(self, atlas: Any, cache_size: int = 1024) -> None:
        self.reason: str | None = None
        self.bands: tuple[str, ...] = ()
        self._survey = None
        self._cache: collections.OrderedDict[tuple, Any] = collections.OrderedDict()
        self._cache_size = int(cache_size)
        self._lock = threading.Lock()
        self._n = atlas.n_objects
        self._path: Path | None = None
        self._composite = False
        try:
            self._survey = _open_atlas_survey(atlas)
        except _NoSurvey as exc:
            self.reason = str(exc)
            return
        self.bands = tuple(self._survey.bands)
        # an image folder's pixels already are a stretched composite: shown as they are
        self._composite = bool(getattr(self._survey, "composite", False))
        self._path = Path(atlas.manifest["provenance"]["survey"]["path"])

    @property
    def available(self) -> bool:
        return self._survey is not None

    def close(self) -> None:
        with self._lock:
            if self._survey is not None:
                self._survey.close()
                self._survey = None
                self.reason = "closed"

    def rgb_png(self, row: int, size: int = 96) -> bytes | None:
        """A (size x size) colour PNG of galaxy `row`, or None without a survey."""
        images = self.rgb_pngs([row], size)
        return None if images is None else images[0]

    def rgb_pngs(self, rows: Any, size: int = 96) -> list[bytes] | None:
        """Colour PNGs of several galaxies (a gallery) with one survey read, or None."""
        return self._images("rgb", [int(r) for r in rows], int(size))

    def rgb_arrays(self, rows: Any, size: int = 64) -> list[np.ndarray] | None:
        """Colour cutouts as (size, size, 3) uint8 arrays (the map's galaxy tiles), or None."""
        return self._images("array", [int(r) for r in rows], int(size))

    def band_pngs(self, row: int, size: int = 64) -> dict[str, bytes] | None:
        """A grey PNG per band of galaxy `row`, by band name, or None without a survey."""
        images = self._images("bands", [int(row)], int(size))
        return None if images is None else images[0]

    def _images(self, kind: str, rows: list[int], size: int) -> list[Any] | None:
        if not 8 <= size <= 1024:
            raise ValueError(f"size = {size}; expected 8 to 1024 pixels")
        for row in rows:
            if not 0 <= row < self._n:
                raise GalexploreError(f"row {row} is outside the atlas's {self._n} galaxies")
        with self._lock:
            if self._survey is None:
                return None
            found = {row: self._cache.get((kind, row, size)) for row in rows}
            missing = sorted({row for row, image in found.items() if image is None})
            if missing:
                try:
                    cutouts = self._survey.read(missing)  # (B, C, H, W)
                except (OSError, SurveyError) as exc:
                    if self._path is not None and self._path.exists():
                        raise  # the survey is there but unreadable: a fault to show, not hide
                    self.reason = f"the survey {self._path} is gone ({exc})"
                    self._survey = None
                    return None
                render = {"rgb": _rgb_png, "array": _rgb_array, "bands": _band_pngs}[kind]
                for row, cutout in zip(missing, cutouts):
                    image = render(cutout, self.bands, size, self._composite)
                    found[row] = self._cache[(kind, row, size)] = image
            for row in rows:
                self._cache.move_to_end((kind, row, size))
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
            return [found[row] for row in rows]


class _NoSurvey(Exception):
    pass


def _open_atlas_survey(atlas: Any) -> Any:
    """The survey an atlas was built from, opened with the config it was built with, checked to
    be the same file and in the same row order; `_NoSurvey` with the reason otherwise."""
    from galexplore.atlas.files import file_fingerprint
    from galexplore.config import config_from_dict
    from galexplore.survey import open_path, open_survey

    provenance = atlas.manifest.get("provenance") or {}
    recorded = provenance.get("survey")
    if not isinstance(recorded, dict) or not recorded.get("path"):
        raise _NoSurvey("the atlas was built from embeddings, without a survey of images")
    path = Path(recorded["path"])
    if not path.exists():
        raise _NoSurvey(f"the survey {path} is gone")
    if path.is_file() and recorded.get("fingerprint") and file_fingerprint(path) != recorded["fingerprint"]:
        raise _NoSurvey(f"the survey {path} has changed since the atlas was built")
    try:
        config = config_from_dict(tomllib.loads(provenance["config"])) if provenance.get("config") else None
    except (tomllib.TOMLDecodeError, GalexploreError):
        config = None  # written by another version: read the file with the defaults for its kind
    try:
        survey = open_survey(config, path) if config is not None else open_path(path)
    except (OSError, GalexploreError) as exc:
        raise _NoSurvey(f"the survey {path} cannot be read ({exc})") from None
    atlas_ids = atlas.read_catalog(["object_id"])["object_id"].to_numpy()
    survey_ids = survey.catalog["object_id"].to_numpy()
    if len(survey_ids) != len(atlas_ids) or not np.array_equal(survey_ids, atlas_ids):
        survey.close()
        raise _NoSurvey(f"the survey {path} no longer lists the atlas's objects in the atlas's order")
    return survey


def _rgb_png(cutout: np.ndarray, bands: tuple[str, ...], size: int, composite: bool = False) -> bytes:
    return _png(composite_rgb(cutout) if composite else lupton_rgb(cutout, bands), size)


def _rgb_array(cutout: np.ndarray, bands: tuple[str, ...], size: int, composite: bool = False) -> np.ndarray:
    return np.asarray(_resized(composite_rgb(cutout) if composite else lupton_rgb(cutout, bands), size))


def _band_pngs(cutout: np.ndarray, bands: tuple[str, ...], size: int, composite: bool = False) -> dict[str, bytes]:
    if composite or bands == DISPLAY_CHANNELS:  # a colour composite: its channels, only rescaled
        rgb = composite_rgb(cutout)
        return {band: _png(rgb[..., k], size) for k, band in enumerate(bands)}
    # one band through the same asinh stretch fills all three channels alike: a grey image
    return {band: _png(lupton_rgb(cutout[k:k + 1], (band,))[..., 0], size) for k, band in enumerate(bands)}


def _png(image: np.ndarray, size: int) -> bytes:
    """PNG bytes of an 8-bit (H, W) or (H, W, 3) image scaled to size x size: pixel-true
    (nearest) when enlarging, antialiased when shrinking."""
    buffer = io.BytesIO()
    _resized(image, size).save(buffer, format="PNG")
    return buffer.getvalue()


def _resized(image: np.ndarray, size: int) -> Any:
    """An 8-bit image as a size x size PIL image: pixel-true (nearest) when enlarging,
    antialiased when shrinking."""
    from PIL import Image

    picture = Image.fromarray(np.ascontiguousarray(image))
    if picture.size != (size, size):
        enlarge = size >= max(picture.size)
        picture = picture.resize((size, size), Image.Resampling.NEAREST if enlarge else Image.Resampling.LANCZOS)
    return picture
