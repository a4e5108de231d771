"""HDF5 surveys: one image cube plus one 1-D dataset per catalog column.

The layout of Hayat et al. (2021) and Stein et al. (2021), which `galexplore simulate` writes too::

    /images          (N, C, H, W) float32   (or (N, H, W, C) with survey.layout = "channels_last")
    /ra, /dec        (N,) float64, degrees
    /<column>        (N,) any other catalog column (numbers or UTF-8 strings)
    /<column>        (N, C) a per-band column (e.g. e_bv): read as <column>_<band> columns
    attrs: bands (list of str), pixel_scale (arcsec/pixel), optional

Key names come from the config. Cutouts are read on demand in sorted contiguous runs; the file
is reopened in each process so DataLoader workers and forked processes read safely.
"""

from __future__ import annotations

import functools
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from galexplore.config import SurveyConfig
from galexplore.errors import SurveyError
from galexplore.survey.base import Survey, check_catalog, check_cutout_shape, rename_columns, standard_columns
from galexplore.survey.handles import ProcessLocalFile

#: the attribute that marks a file written by `galexplore simulate`
SIMULATED_MARK = "galexplore_simulated"


class HDF5Survey(Survey):
    """A survey stored as an HDF5 image cube with catalog datasets beside it."""

    def __init__(self, path: str | Path, config: SurveyConfig | None = None) -> None:
        cfg = config or SurveyConfig(source="hdf5")
        self.path = Path(path)
        self.source = str(self.path)
        self.images_key = cfg.images_key
        self.channels_last = cfg.layout == "channels_last"
        self.nonfinite = cfg.nonfinite
        self.nonfinite_masked = 0
        self._file = ProcessLocalFile(functools.partial(h5py.File, self.path, "r"), "HDF5", self.source)
        f = self._file.get()
        try:
            self._init_from(f, cfg)
        except BaseException:
            self.close()  # a file that fails validation is not left open
            raise

    def _init_from(self, f: h5py.File, cfg: SurveyConfig) -> None:
        if self.images_key not in f:
            raise SurveyError(
                f"{self.source}: no '{self.images_key}' dataset (survey.images_key); found keys: "
                f"{', '.join(f.keys()) or '(none)'}"
            )
        images = f[self.images_key]
        if not isinstance(images, h5py.Dataset) or images.ndim != 4:
            raise SurveyError(
                f"{self.source}: '{self.images_key}' has shape {getattr(images, 'shape', '?')}; "
                f"expected a 4-D cube (N, C, H, W) or (N, H, W, C)"
            )
        if images.dtype.kind not in "fiu":
            raise SurveyError(
                f"{self.source}: '{self.images_key}' has dtype {images.dtype}; expected numbers "
                f"(float32 fluxes or integer counts)"
            )
        n = images.shape[0]
        c, h, w = (images.shape[3], images.shape[1], images.shape[2]) if self.channels_last else images.shape[1:]
        self.shape = (int(c), int(h), int(w))
        check_cutout_shape(self.shape, f"{self.source}: '{self.images_key}'")
        self.bands = _bands(f, cfg, c, self.source)
        self.pixel_scale = float(f.attrs.get("pixel_scale", cfg.pixel_scale))
        if cfg.image_size and (h, w) != (cfg.image_size, cfg.image_size):
            raise SurveyError(
                f"{self.source}: '{self.images_key}' cutouts are {h}x{w} pixels; the config "
                f"(survey.image_size) expects {cfg.image_size}x{cfg.image_size}"
            )
        if h != w:
            raise SurveyError(f"{self.source}: cutouts are {h}x{w} pixels; expected square cutouts")
        catalog = _read_catalog(f, n, self.images_key, self.bands, self.source)
        catalog = rename_columns(catalog, cfg.rename, self.source)
        catalog = standard_columns(catalog, cfg.id_column, cfg.ra_column, cfg.dec_column, self.source, cfg.positions)
        self.catalog = check_catalog(catalog, n, self.source, cfg.positions)
        self.simulated = bool(f.attrs.get(SIMULATED_MARK, False))

    def _read(self, indices: np.ndarray) -> np.ndarray:
        images = self._file.get()[self.images_key]
        direct = images.dtype == np.float32 and not self.channels_last  # rows land as they are stored
        if direct and indices.size and np.array_equal(indices, np.arange(indices[0], indices[0] + indices.size)):
            return self._read_run(images, int(indices[0]), int(indices[0]) + indices.size)
        order = np.argsort(indices, kind="stable")
        sorted_idx = indices[order]
        unique, inverse = np.unique(sorted_idx, return_inverse=True)
        # Read contiguous runs as slices: far faster than point selection on large cubes.
        breaks = np.flatnonzero(np.diff(unique) != 1) + 1
        try:
            parts = [images[run[0] : run[-1] + 1] for run in np.split(unique, breaks) if run.size]
        except OSError as exc:
            raise self._unreadable(unique[0], unique[-1], exc) from None
        block = np.concatenate(parts) if parts else np.empty((0, *images.shape[1:]), images.dtype)
        if self.channels_last:
            block = block.transpose(0, 3, 1, 2)
        out = np.empty((len(indices), *block.shape[1:]), dtype=np.float32)
        out[order] = block[inverse]
        return out

    def _read_run(self, images: h5py.Dataset, start: int, stop: int) -> np.ndarray:
        """Rows start..stop-1 of a float32 (N, C, H, W) cube, read straight into the result."""
        out = np.empty((stop - start, *images.shape[1:]), dtype=np.float32)
        try:
            images.read_direct(out, np.s_[start:stop])
        except OSError as exc:
            raise self._unreadable(start, stop - 1, exc) from None
        return out

    def _unreadable(self, first: int, last: int, exc: OSError) -> SurveyError:
        return SurveyError(
            f"{self.source}: cannot read '{self.images_key}' rows {first}..{last} ({exc}); the file may be truncated"
        )

    def close(self) -> None:
        self._file.close()


def _bands(f: h5py.File, cfg: SurveyConfig, channels: int, source: str) -> tuple[str, ...]:
    stored = f.attrs.get("bands")
    if stored is not None:
        stored = tuple(b.decode() if isinstance(b, bytes) else str(b) for b in np.atleast_1d(stored))
        if cfg.bands and tuple(cfg.bands) != stored and len(cfg.bands) == channels:
            raise SurveyError(
                f"{source}: the file's bands are {','.join(stored)}; the config (survey.bands) "
                f"says {','.join(cfg.bands)}"
            )
        bands = stored
    else:
        # no names in the file or the config: number them, as the FITS reader does
        bands = tuple(cfg.bands) or tuple(f"b{j}" for j in range(channels))
    if len(bands) != channels:
        raise SurveyError(
            f"{source}: cutouts have {channels} bands; expected {len(bands)} "
            f"({','.join(bands)}, survey.bands)"
        )
    return bands


def _read_catalog(f: h5py.File, n: int, images_key: str, bands: tuple[str, ...], source: str) -> pd.DataFrame:
    """Every root dataset of length N except the images, as columns; (N, C) ones split per band."""
    columns: dict[str, np.ndarray] = {}
    for key, ds in f.items():
        if key == images_key or not isinstance(ds, h5py.Dataset) or ds.ndim == 0:
            continue
        if ds.shape[0] != n:
            raise SurveyError(
                f"{source}: catalog dataset '{key}' has {ds.shape[0]} rows but '{images_key}' "
                f"has {n} cutouts; expected one row per cutout"
            )
        try:
            values = ds[()]
        except OSError as exc:
            raise SurveyError(f"{source}: cannot read dataset '{key}' ({exc}); the file may be truncated") from None
        if ds.ndim == 1:
            columns[key] = _decode(values) if ds.dtype.kind in "SO" else values
        elif ds.ndim == 2:
            names = bands if ds.shape[1] == len(bands) else [str(j) for j in range(ds.shape[1])]
            for j, name in enumerate(names):
                columns[f"{key}_{name}"] = values[:, j]
        else:
            raise SurveyError(f"{source}: catalog dataset '{key}' has shape {ds.shape}; expected (N,) or (N, k)")
    return pd.DataFrame(columns)


def _decode(values: np.ndarray) -> np.ndarray:
    return np.array([v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values], dtype=object)


def write_catalog_column(f: h5py.File, name: str, values: np.ndarray) -> None:
    """Write one catalog column in the layout `HDF5Survey` reads (strings as UTF-8)."""
    values = np.asarray(values)
    if values.dtype.kind in "OUS":
        f.create_dataset(name, data=values.astype(object), dtype=h5py.string_dtype("utf-8"))
    else:
        f.create_dataset(name, data=values)
