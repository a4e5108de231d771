"""Observing conditions: per-band seeing, sky brightness and noise of an SDSS-like imaging run.

The numbers are SDSS's, written as named constants with their source:

- 95% completeness depths for point sources (Abazajian et al. 2009, ApJS 182, 543, DR7):
  u 22.0, g 22.2, r 22.2, i 21.3, z 20.5; read here as 5 sigma PSF-flux limits.
- Dark-sky brightness at Apache Point (SDSS imaging documentation; Stoughton et al. 2002):
  u 22.1, g 21.7, r 20.7, i 20.1, z 18.8 mag / arcsec^2.

From these, each band has a sky level per pixel and a number of photo-electrons per nanomaggy such
that sky Poisson noise alone reaches the depth at the median seeing. Galaxies are far fainter in u
than in r, so u is the noisiest band for a galaxy, z (shallow, bright sky) the second.

Seeing varies per object (a log-normal about the config's median r FWHM) and with wavelength as
Kolmogorov turbulence predicts, FWHM ∝ lambda^(-1/5), so bluer bands are blurrier.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from galexplore.simulate.photometry import R_INDEX, nanomaggies

DEPTH_5SIGMA = np.array([22.0, 22.2, 22.2, 21.3, 20.5])  # AB mag, point source
SKY_BRIGHTNESS = np.array([22.1, 21.7, 20.7, 20.1, 18.8])  # AB mag / arcsec^2
KOLMOGOROV_SEEING_POWER = -0.2  # FWHM ∝ lambda^(-1/5)
SEEING_RANGE = (0.8, 2.6)  # arcsec: clip the log-normal to what SDSS accepted


@dataclass(frozen=True)
class NoiseModel:
    """Per-band sky (nanomaggies / pixel) and photo-electrons per nanomaggy."""

    sky: np.ndarray  # (B,)
    electrons_per_nanomaggy: np.ndarray  # (B,)

    @property
    def sky_sigma(self) -> np.ndarray:
        """(B,) the sky-limited noise per pixel, nanomaggies."""
        return np.sqrt(self.sky / self.electrons_per_nanomaggy)

    def add_noise(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Sky-subtracted image plus Poisson noise of sky and source, (B, H, W) -> (B, H, W)."""
        gain = self.electrons_per_nanomaggy[:, None, None]
        sky = self.sky[:, None, None]
        expected = (np.maximum(image, 0.0) + sky) * gain  # electrons
        counts = rng.poisson(expected)
        # Keep the noiseless image's mean exactly: add only the zero-mean Poisson fluctuation.
        return image + (counts - expected) / gain


def noise_model(pixel_scale: float, seeing_median: float, wavelengths: np.ndarray) -> NoiseModel:
    """The noise model that reaches the SDSS depths at the median seeing."""
    fwhm = band_fwhm(seeing_median, wavelengths)
    sigma_psf = fwhm / 2.3548 / pixel_scale  # pixels
    n_eff = 4.0 * np.pi * sigma_psf**2  # noise-equivalent area of a Gaussian PSF, pixels
    sigma_pixel = nanomaggies(DEPTH_5SIGMA) / (5.0 * np.sqrt(n_eff))
    sky = nanomaggies(SKY_BRIGHTNESS) * pixel_scale**2
    return NoiseModel(sky=sky, electrons_per_nanomaggy=sky / sigma_pixel**2)


def band_fwhm(seeing_r: float, wavelengths: np.ndarray) -> np.ndarray:
    """(B,) PSF FWHM in arcsec per band for an r-band FWHM `seeing_r`."""
    return seeing_r * (np.asarray(wavelengths) / wavelengths[R_INDEX]) ** KOLMOGOROV_SEEING_POWER


def draw_seeing(rng: np.random.Generator, median: float, sigma_ln: float) -> float:
    """One object's r-band FWHM in arcsec: log-normal about the median, clipped to SEEING_RANGE."""
    return float(np.clip(median * np.exp(sigma_ln * rng.standard_normal()), *SEEING_RANGE))
