"""Rare objects injected into the survey, each with its truth type.

Three are astrophysical and built from GalSim profiles like every galaxy:

- ``ring``: a collisional ring galaxy: the host's bulge inside a clumpy, blue (Im) ring that
  carries the host's disk light, at 1.5 to 3 disk half-light radii (Cartwheel-, Hoag-like);
- ``merger``: a close pair at the same redshift, separated by one to two summed half-light radii,
  with a tidal tail of disk-coloured clumps curling away from the companion;
- ``lens_arc``: a luminous elliptical with a blue lensed arc (Im template at 0.6 < z_s < 1.5)
  and a fainter counter-image, at an Einstein radius of 2 to 4 arcsec (larger than most real
  lenses, so that the arc is resolved under SDSS seeing).

Two are instrumental and added to the pixels after the sky:

- ``satellite_trail``: a PSF-wide streak across the cutout in one or more bands, displaced
  between bands because SDSS exposes each filter at a different time in its drift scan;
- ``bad_column``: a hot CCD column (one to three pixels wide) in one band.
"""

from __future__ import annotations

import math

import galsim
import numpy as np

from galexplore.config import SDSS_EXTINCTION, SimulateConfig
from galexplore.simulate.galaxies import galaxy_components
from galexplore.simulate.photometry import R_INDEX, PhotometryTables
from galexplore.simulate.population import GalaxyParams, component_fluxes, draw_galaxy, observed_mags
from galexplore.simulate.scene import GSPARAMS, Component

ANOMALY_TYPES = ("ring", "merger", "lens_arc", "satellite_trail", "bad_column")
ARTIFACTS = ("satellite_trail", "bad_column")
NO_ANOMALY = "none"


def draw_anomaly_type(rng: np.random.Generator) -> str:
    """One anomaly type, all equally likely."""
    return ANOMALY_TYPES[int(rng.integers(len(ANOMALY_TYPES)))]


def host_for(kind: str, rng: np.random.Generator, cfg: SimulateConfig, tables: PhotometryTables,
             host: GalaxyParams) -> GalaxyParams:
    """The host galaxy an anomaly needs: lenses are ellipticals, the rest keep the drawn galaxy."""
    if kind == "lens_arc" and host.type != "elliptical":
        return draw_galaxy(rng, cfg, tables, z=host.z, galaxy_type="elliptical", ebv=host.ebv)
    return host


def anomaly_components(
    kind: str, host: GalaxyParams, rng: np.random.Generator, deviate: galsim.BaseDeviate,
    cfg: SimulateConfig, tables: PhotometryTables,
) -> list[Component]:
    """The components of an astrophysical anomaly and its host (the host's own included)."""
    if kind == "ring":
        return _ring(host, rng, tables, deviate)
    if kind == "merger":
        return _merger(host, rng, deviate, cfg, tables)
    if kind == "lens_arc":
        return galaxy_components(host, tables, deviate) + _lensed_arc(host, rng, tables)
    return galaxy_components(host, tables, deviate)


def _ring(host: GalaxyParams, rng: np.random.Generator, tables: PhotometryTables,
          deviate: galsim.BaseDeviate) -> list[Component]:
    fluxes = component_fluxes(tables, host)  # (3, B): bulge, disk, knots
    core = galaxy_components(host, tables, deviate)[:1] if fluxes[0].any() else []
    # The disk's and knots' light moves to the ring: at least 40% of the galaxy's light.
    total_r = float(fluxes[:, R_INDEX].sum())
    ring_r = max(float(fluxes[1, R_INDEX] + fluxes[2, R_INDEX]), 0.4 * total_r)
    ring_flux = _template_flux(tables, "Im", host.z, host.ebv, ring_r)
    radius = max(rng.uniform(1.5, 3.0) * host.disk_hlr, rng.uniform(3.0, 6.0))  # resolved in SDSS seeing
    n_clumps = int(rng.integers(24, 40))
    angles = np.sort(rng.uniform(0.0, 2.0 * math.pi, n_clumps))
    weights = rng.uniform(0.4, 1.6, n_clumps)
    clumps = [
        galsim.Gaussian(sigma=0.12 * radius, flux=float(w / weights.sum()), gsparams=GSPARAMS).shift(
            radius * math.cos(a), radius * math.sin(a))
        for a, w in zip(angles, weights)
    ]
    q = max(host.axis_ratio, 0.35)  # a thin ring seen edge-on would be a streak, not a ring
    ring = galsim.Sum(clumps, gsparams=GSPARAMS).shear(q=q, beta=host.position_angle * galsim.radians)
    return core + [Component(ring, ring_flux)]


def _merger(host: GalaxyParams, rng: np.random.Generator, deviate: galsim.BaseDeviate,
            cfg: SimulateConfig, tables: PhotometryTables) -> list[Component]:
    mag_r = float(observed_mags(tables, host)[R_INDEX])
    companion = draw_galaxy(rng, cfg, tables, z=host.z, mag_range=(mag_r - 0.5, mag_r + 1.5), ebv=host.ebv)
    size = cfg.image_size * cfg.pixel_scale
    separation = float(np.clip(rng.uniform(1.0, 2.0) * (host.half_light_radius + companion.half_light_radius),
                               2.5, 0.35 * size))
    angle = rng.uniform(0.0, 2.0 * math.pi)
    offset = (separation * math.cos(angle), separation * math.sin(angle))
    parts = galaxy_components(host, tables, deviate) + galaxy_components(companion, tables, deviate, offset)
    # A tidal tail: clumps along a circular arc leaving the companion, 10-25% of its light.
    tail_r = float(observed_mags(tables, companion)[R_INDEX]) - 2.5 * math.log10(rng.uniform(0.1, 0.25))
    tail_flux = _template_flux(tables, "Sbc", host.z, host.ebv, float(10 ** (-0.4 * (tail_r - 22.5))))
    length = rng.uniform(0.6, 1.2) * separation
    bend = rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 1.2)
    n = 12
    steps = np.linspace(0.15, 1.0, n)
    clumps = []
    for t in steps:
        along = angle + bend * t  # the tail curls as it leaves
        x = offset[0] + length * t * math.cos(along)
        y = offset[1] + length * t * math.sin(along)
        sigma = max(0.4, 0.25 * companion.half_light_radius) * (1.0 + t)  # the tail widens as it fades
        clumps.append(galsim.Gaussian(sigma=sigma, flux=float(1.0 - 0.6 * t), gsparams=GSPARAMS).shift(x, y))
    tail = galsim.Sum(clumps, gsparams=GSPARAMS).withFlux(1.0)
    return parts + [Component(tail, tail_flux)]


def _lensed_arc(host: GalaxyParams, rng: np.random.Generator, tables: PhotometryTables) -> list[Component]:
    z_source = float(rng.uniform(0.6, 1.5))
    einstein_radius = float(rng.uniform(2.0, 4.0))
    host_r = float(observed_mags(tables, host)[R_INDEX])
    arc_r = host_r + rng.uniform(0.5, 2.0)
    flux = _template_flux(tables, "Im", z_source, host.ebv, float(10 ** (-0.4 * (arc_r - 22.5))))
    centre = rng.uniform(0.0, 2.0 * math.pi)
    span = math.radians(rng.uniform(60.0, 140.0))
    angles = centre + np.linspace(-span / 2, span / 2, 24)
    clumps = [
        galsim.Gaussian(sigma=0.3, flux=1.0, gsparams=GSPARAMS).shift(
            einstein_radius * math.cos(a), einstein_radius * math.sin(a))
        for a in angles
    ]
    arc = galsim.Sum(clumps, gsparams=GSPARAMS).withFlux(1.0)
    counter_radius = einstein_radius * rng.uniform(0.4, 0.7)
    counter = galsim.Gaussian(sigma=0.3, flux=1.0, gsparams=GSPARAMS).shift(
        -counter_radius * math.cos(centre), -counter_radius * math.sin(centre))
    return [Component(arc, flux), Component(counter, 0.3 * flux)]


def _template_flux(tables: PhotometryTables, template: str, z: float, ebv: float, flux_r: float) -> np.ndarray:
    """(B,) fluxes with a template's observed, reddened colours at z and the r flux `flux_r`."""
    extinction = np.asarray(SDSS_EXTINCTION) * ebv
    mags = tables.offsets(template, z) + extinction
    return flux_r * 10 ** (-0.4 * (mags - mags[R_INDEX]))


def add_artifact(kind: str, image: np.ndarray, rng: np.random.Generator, fwhm: np.ndarray,
                 sky_sigma: np.ndarray, pixel_scale: float) -> np.ndarray:
    """The noisy cutout (B, H, W) with a satellite trail or a bad column added."""
    bands, height, width = image.shape
    out = image.copy()
    if kind == "satellite_trail":
        angle = rng.uniform(0.0, math.pi)
        normal = np.array([-math.sin(angle), math.cos(angle)])
        yy, xx = np.mgrid[0:height, 0:width]
        distance0 = (xx - width / 2) * normal[0] + (yy - height / 2) * normal[1]
        start = rng.uniform(-0.3, 0.3) * width
        step = rng.uniform(3.0, 10.0) * rng.choice([-1.0, 1.0])  # drift between exposures, pixels
        peak = rng.uniform(4.0, 20.0)  # in units of the r-band sky sigma
        for b in rng.choice(bands, size=int(rng.integers(1, bands + 1)), replace=False):
            sigma = fwhm[b] / 2.3548 / pixel_scale
            d = distance0 - (start + step * b)
            out[b] += peak * sky_sigma[R_INDEX] * rng.uniform(0.5, 1.5) * np.exp(-0.5 * (d / sigma) ** 2)
    elif kind == "bad_column":
        b = int(rng.integers(bands))
        column = int(rng.integers(2, width - 4))
        n_cols = int(rng.integers(1, 4))
        out[b, :, column : column + n_cols] += rng.uniform(5.0, 20.0) * sky_sigma[b]
    else:
        raise ValueError(f"unknown artifact {kind!r}; expected one of {ARTIFACTS}")
    return out

