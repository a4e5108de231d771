"""Drawing a cutout: achromatic GalSim profiles with per-band fluxes, convolved in Fourier space.

A cutout is a handful of components (bulge, disk, knots, a neighbour, a star, an arc), each an
achromatic GalSim profile of unit flux with its own flux in every band. Since only the fluxes
change from band to band, each component's Fourier transform is drawn once with GalSim
(`_drawKImage`) and the five band images are

    image_b = IFFT[ (sum_c flux_cb * K_c(k)) * PSF_b(k) * pixel(k) ]

which is exactly what GalSim's FFT drawing does per band, at a third of the cost. The FFT box is
at least twice the cutout and as large as GalSim's own folding criterion (`stepk` under the
gsparams below) asks, so light from outside the cutout does not wrap into it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import galsim
import numpy as np
import scipy.fft

#: GalSim accuracy: folding at 1% of the flux is invisible under SDSS noise and halves the FFT box
GSPARAMS = galsim.GSParams(folding_threshold=1e-2, maxk_threshold=2e-3)
MAX_FFT_SIZE = 1024


@dataclass(frozen=True)
class Component:
    """One achromatic light profile (unit flux, centred where it sits) and its flux per band."""

    profile: galsim.GSObject
    flux: np.ndarray  # (B,) nanomaggies


def render(components: list[Component], fwhm: np.ndarray, size: int, pixel_scale: float) -> np.ndarray:
    """Noiseless cutout (B, size, size) float64 in nanomaggies / pixel, centred on pixel size // 2.

    `fwhm` (B,) is the Kolmogorov PSF's FWHM per band in arcsec.
    """
    bands = len(fwhm)
    if not components:
        return np.zeros((bands, size, size))
    psfs = [galsim.Kolmogorov(fwhm=float(f), gsparams=GSPARAMS) for f in fwhm]
    m = _fft_size(components, psfs, size, pixel_scale)
    dk = 2.0 * math.pi / (m * pixel_scale)
    # Half plane k_x >= 0 (rfft layout), all k_y: arrays (m, m // 2 + 1), rows k_y = -m/2 .. m/2-1.
    bounds = galsim.BoundsI(0, m // 2, -m // 2, m // 2 - 1)

    def kimage(profile: galsim.GSObject) -> np.ndarray:
        image = galsim.ImageCD(bounds, scale=dk)
        profile._drawKImage(image)
        return image.array

    fluxes = np.stack([c.flux for c in components])  # (C, B), real
    kimages = np.stack([kimage(c.profile) for c in components])  # (C, m, m/2+1) complex
    # sum_c flux_cb K_c as a real matrix product on the (re, im) pairs: (B, C) @ (C, 2 m (m/2+1))
    total = (fluxes.T @ kimages.view(np.float64).reshape(len(components), -1)).view(np.complex128)
    total = total.reshape(bands, m, m // 2 + 1)
    total *= np.stack([kimage(p) for p in psfs]) * _pixel_response(m, pixel_scale)
    real = scipy.fft.irfft2(np.fft.ifftshift(total, axes=1), s=(m, m), axes=(1, 2))  # (B, m, m)
    # The profile centre is pixel (0, 0) of the FFT box: roll it to the cutout's pixel size // 2.
    half = size // 2
    rows = np.arange(-half, size - half) % m
    return real[:, rows[:, None], rows[None, :]]


def _fft_size(components: list[Component], psfs: list[galsim.GSObject], size: int, pixel_scale: float) -> int:
    """The FFT box in pixels: 2x the cutout, or what GalSim's folding threshold needs."""
    stepk = min(c.profile.stepk for c in components)
    psf_extent = 2.0 * math.pi / min(p.stepk for p in psfs)
    need = (2.0 * math.pi / stepk + psf_extent) / pixel_scale
    m = scipy.fft.next_fast_len(int(math.ceil(max(2 * size, min(need, MAX_FFT_SIZE)))), real=True)
    while m % 2:  # an even box keeps the k grid symmetric about 0
        m = scipy.fft.next_fast_len(m + 1, real=True)
    return m


_PIXEL_CACHE: dict[tuple[int, float], np.ndarray] = {}


def _pixel_response(m: int, pixel_scale: float) -> np.ndarray:
    """Fourier transform of the square pixel on the half-plane grid (rows k_y centred)."""
    key = (m, pixel_scale)
    if key not in _PIXEL_CACHE:
        fx = np.arange(m // 2 + 1) / m  # k_x * pixel / 2 pi
        fy = np.arange(-m // 2, m // 2) / m
        _PIXEL_CACHE[key] = np.sinc(fy)[:, None] * np.sinc(fx)[None, :]
    return _PIXEL_CACHE[key]
