"""The suite's own inputs, made from seeds: cutouts, a survey file of them, points for a map.

The 1,000,000 synthetic embeddings and their catalog come from `bench.scale_check.make_inputs`
(the scale check's, so both measure the same data). Everything here is plain numpy and h5py.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

SDSS_BANDS = ("u", "g", "r", "i", "z")
SKY_NOISE = 1.0  # each band's sky noise, in the cutouts' flux units
_CHUNK = 256  # cutouts made and written at a time


def cutouts(n: int, size: int, seed: int = 0, bands: Sequence[str] = SDSS_BANDS) -> np.ndarray:
    """Galaxy-like cutouts (n, C, size, size) float32: an exponential disk of random size, axis
    ratio, angle and colour at the centre, on Gaussian sky noise of `SKY_NOISE` per band.

    >>> x = cutouts(4, 33)
    >>> x.shape, x.dtype.name, bool(x[:, :, 16, 16].mean() > x[:, :, 0, 0].mean())
    ((4, 5, 33, 33), 'float32', True)
    """
    rng = np.random.default_rng([seed, 0xC07])
    out = np.empty((n, len(bands), size, size), dtype=np.float32)
    yy, xx = np.mgrid[:size, :size].astype(np.float32) - (size - 1) / 2
    for start in range(0, n, _CHUNK):
        m = min(_CHUNK, n - start)
        scale = rng.uniform(1.5, size / 10, m).astype(np.float32)[:, None, None]
        q = rng.uniform(0.3, 1.0, m).astype(np.float32)[:, None, None]
        angle = rng.uniform(0, np.pi, m).astype(np.float32)[:, None, None]
        u = xx * np.cos(angle) + yy * np.sin(angle)
        v = (-xx * np.sin(angle) + yy * np.cos(angle)) / q
        disk = np.exp(-np.sqrt(u**2 + v**2) / scale)  # (m, size, size)
        flux = rng.lognormal(3.0, 0.8, (m, len(bands))).astype(np.float32)  # peak, in sky-noise units
        out[start : start + m] = flux[:, :, None, None] * disk[:, None]
        out[start : start + m] += rng.standard_normal((m, len(bands), size, size), dtype=np.float32) * SKY_NOISE
    return out


def write_survey(path: Path, n: int, size: int, seed: int = 0) -> Path:
    """An HDF5 survey of `cutouts(n, size)` in the layout the survey reader takes (one cutout per
    HDF5 chunk, as `galexplore simulate` writes), with ra and dec; kept when it exists."""
    import h5py

    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    rng = np.random.default_rng([seed, 0x5D5])
    with h5py.File(tmp, "w") as f:
        images = f.create_dataset("images", shape=(n, len(SDSS_BANDS), size, size), dtype="float32",
                                  chunks=(1, len(SDSS_BANDS), size, size))
        for start in range(0, n, _CHUNK):
            stop = min(start + _CHUNK, n)
            images[start:stop] = cutouts(stop - start, size, seed=seed + start)
        f["ra"] = rng.uniform(0, 360, n)
        f["dec"] = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
        f.attrs["bands"] = list(SDSS_BANDS)
        f.attrs["pixel_scale"] = 0.396
    tmp.rename(path)
    return path


def map_points(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) float32 of n points in 200 Gaussian clumps of uneven weight and width, as a UMAP map looks."""
    rng = np.random.default_rng([seed, 0x3A9])
    centres = rng.uniform(-10, 10, (200, 2))
    weights = rng.pareto(1.5, 200) + 1
    which = rng.choice(200, n, p=weights / weights.sum())
    width = rng.uniform(0.1, 1.0, 200)[which]
    x = (centres[which, 0] + width * rng.standard_normal(n)).astype(np.float32)
    y = (centres[which, 1] + width * rng.standard_normal(n)).astype(np.float32)
    return x, y
