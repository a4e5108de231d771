"""Colour composites of multi-band cutouts: Lupton et al. (2004) asinh RGB images.

A cutout of any survey becomes an 8-bit RGB image: three bands are chosen by name (i, r, g for
SDSS and HSC, z, r, g for the Legacy Surveys), weighted so that a typical galaxy looks neutral
(ellipticals then look orange, star-forming disks blue), and stretched with the asinh mapping of
Lupton et al. (2004, PASP 116, 133; `astropy.visualization.make_lupton_rgb`), which keeps colours
of bright cores while showing faint outskirts above the noise. The stretch is set from each
cutout's own noise and brightness, so it works for fluxes in any unit.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: effective wavelengths (nm) of common optical/NIR filters, to order bands that are not named
FILTER_WAVELENGTHS = {
    "u": 355.0, "g": 477.0, "r": 623.0, "i": 763.0, "z": 905.0, "y": 990.0, "Y": 1020.0,
    "J": 1250.0, "H": 1650.0, "K": 2200.0, "Ks": 2150.0,
}
#: per-band multipliers that make a typical galaxy roughly grey (red bands need less)
BAND_WEIGHTS = {"u": 1.5, "g": 2.5, "r": 1.5, "i": 1.0, "z": 0.8, "y": 0.8}
#: channel names of surveys that already are colour composites (image folders of PNG/JPEG)
DISPLAY_CHANNELS = ("r", "g", "b")
NOISE_STRETCH = 6.0  # the asinh stretch in units of the cutout's noise sigma ...
PEAK_STRETCH = 0.05  # ... or of its bright-end flux, whichever is larger
DEFAULT_Q = 8.0


def pick_rgb_bands(bands: Sequence[str], rgb: Sequence[str] = ("i", "r", "g")) -> tuple[int, int, int]:
    """Channel indices for red, green and blue.

    The bands named in `rgb` when all are present; otherwise the reddest, a middle and the
    bluest band by filter wavelength (channel order when names are unknown); a single band
    fills all three.

    >>> pick_rgb_bands(("u", "g", "r", "i", "z"))
    (3, 2, 1)
    >>> pick_rgb_bands(("g", "r", "z"))
    (2, 1, 0)
    >>> pick_rgb_bands(("g", "r", "i", "z", "y"))
    (2, 1, 0)
    """
    bands = list(bands)
    if not bands:
        raise ValueError("a cutout needs at least one band to render")
    if all(b in bands for b in rgb):
        return tuple(bands.index(b) for b in rgb)  # type: ignore[return-value]
    if all(b in FILTER_WAVELENGTHS for b in bands):
        order = sorted(range(len(bands)), key=lambda k: FILTER_WAVELENGTHS[bands[k]])  # blue -> red
    else:
        order = list(range(len(bands)))  # assume the file lists bands blue to red
    return order[-1], order[len(order) // 2], order[0]


def lupton_rgb(
    cutout: np.ndarray,
    bands: Sequence[str],
    rgb: Sequence[str] = ("i", "r", "g"),
    *,
    q: float = DEFAULT_Q,
    stretch: float | None = None,
    weights: Sequence[float] | None = None,
) -> np.ndarray:
    """An 8-bit colour image (H, W, 3) of a cutout (C, H, W), asinh-stretched.

    `stretch` (in the cutout's flux units) defaults to a value set from the cutout's noise and
    bright end; `weights` (3,) multiply the red, green and blue bands (default: by band name).
    A survey of display channels ("r", "g", "b": already a colour composite) is only rescaled.
    """
    from astropy.visualization import make_lupton_rgb

    cube = np.asarray(cutout, dtype=np.float64)
    if cube.ndim != 3 or cube.shape[0] != len(bands):
        raise ValueError(f"cutout has shape {cube.shape}; expected ({len(bands)}, H, W) for bands {tuple(bands)}")
    cube = np.where(np.isfinite(cube), cube, 0.0)
    if tuple(bands) == DISPLAY_CHANNELS:
        return composite_rgb(cube)

    idx = pick_rgb_bands(bands, rgb)
    if weights is None:
        weights = [BAND_WEIGHTS.get(bands[k], 1.0) for k in idx]
    # Subtract each band's sky, read from the cutout's border (zero for sky-subtracted data).
    red, green, blue = ((cube[k] - _border_median(cube[k])) * float(w) for k, w in zip(idx, weights))
    if stretch is None:
        stretch = auto_stretch((red + green + blue) / 3.0)
    # make_lupton_rgb divides by the intensity everywhere before masking the zeros it finds.
    with np.errstate(invalid="ignore", divide="ignore"):
        return make_lupton_rgb(red, green, blue, minimum=0.0, stretch=stretch, Q=q)


def composite_rgb(cutout: np.ndarray) -> np.ndarray:
    """An 8-bit image (H, W, 3) of a cutout that already is a colour composite (C, H, W): its
    channels as red, green, blue (one channel: grey), values in [0, 1] (or [0, 255]) rescaled,
    never stretched again.

    >>> composite_rgb(np.array([[[1.0]], [[0.5]], [[0.0]]])).tolist()
    [[[255, 128, 0]]]
    """
    cube = np.asarray(cutout, dtype=np.float64)
    if cube.ndim != 3 or cube.shape[0] not in (1, 3):
        raise ValueError(f"cutout has shape {cube.shape}; expected (3, H, W) or (1, H, W) for a colour composite")
    cube = np.where(np.isfinite(cube), cube, 0.0)
    top = 255.0 if cube.max() > 1.0 else 1.0
    image = np.clip(np.moveaxis(cube, 0, -1) / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image


def auto_stretch(intensity: np.ndarray) -> float:
    """An asinh stretch for one cutout: a few noise sigmas, or a fraction of its bright end."""
    values = intensity[np.isfinite(intensity)]
    if values.size == 0:
        return 1.0
    median = np.median(values)
    sigma = 1.4826 * np.median(np.abs(values - median))
    bright = np.percentile(values, 99.5) - median
    stretch = max(NOISE_STRETCH * sigma, PEAK_STRETCH * bright)
    return float(stretch) if stretch > 0 else 1.0


def _border_median(image: np.ndarray, width: int = 3) -> float:
    """The median of the outer `width` pixels: the sky level of a centred cutout."""
    if min(image.shape) <= 2 * width:
        return float(np.median(image))
    border = np.concatenate([image[:width].ravel(), image[-width:].ravel(),
                             image[width:-width, :width].ravel(), image[width:-width, -width:].ravel()])
    return float(np.median(border))
