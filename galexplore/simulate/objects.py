"""One simulated object: its truth, its labels and its noisy ugriz cutout.

Everything about object `index` of a survey with seed `seed` comes from its own random streams,
``np.random.default_rng([seed, index, stream])`` (population and layout, pixel noise, labels),
so an object is the same whichever process or chunk draws it, and changing one stream (say,
the noise) leaves the others alone.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import galsim
import numpy as np

from galexplore.config import SDSS_EXTINCTION, SimulateConfig
from galexplore.simulate.anomalies import (
    ARTIFACTS, NO_ANOMALY, add_artifact, anomaly_components, draw_anomaly_type, host_for,
)
from galexplore.simulate.galaxies import galaxy_components, random_offset, star_component
from galexplore.simulate.labels import survey_labels, vote_probabilities
from galexplore.simulate.observing import NoiseModel, band_fwhm, draw_seeing, noise_model
from galexplore.simulate.photometry import BANDS, R_INDEX, PhotometryTables, photometry_tables
from galexplore.simulate.population import GalaxyParams, draw_galaxy, observed_mags
from galexplore.simulate.scene import render

STREAM_SCENE, STREAM_NOISE, STREAM_LABELS = 0, 1, 2

# An SDSS-like footprint: the northern Galactic cap of the Legacy survey, roughly.
RA_RANGE = (120.0, 250.0)
DEC_RANGE = (-5.0, 65.0)
STAR_TEMPERATURE_RANGE = (3500.0, 9000.0)

#: the truth and label columns of the catalog, in order, with their numpy dtypes
COLUMNS: dict[str, str] = {
    "object_id": "int64", "ra": "float64", "dec": "float64",
    "z": "float64", "type": "U10", "abs_mag_r": "float64",
    **{f"mag_{b}": "float64" for b in BANDS},
    "bulge_frac": "float64", "half_light_radius": "float64", "axis_ratio": "float64",
    "inclination": "float64", "position_angle": "float64", "edge_on": "bool",
    "ebv": "float64", "seeing": "float64", "has_neighbour": "bool", "has_star": "bool",
    "is_anomaly": "bool", "anomaly_type": "U16",
    "z_spec": "float64", "p_features": "float64", "p_edge_on": "float64", "n_votes": "int32",
    "label_availability": "U20",
}


@dataclass(frozen=True)
class Context:
    """What every object of one survey shares, built once per process."""

    cfg: SimulateConfig
    tables: PhotometryTables
    noise: NoiseModel


@functools.lru_cache(maxsize=4)
def simulation_context(cfg: SimulateConfig) -> Context:
    tables = photometry_tables()
    return Context(cfg, tables, noise_model(cfg.pixel_scale, cfg.seeing_median, tables.effective_wavelength))


def simulate_object(index: int, seed: int, ctx: Context) -> tuple[np.ndarray, dict[str, object]]:
    """Object `index`: its cutout (B, H, W) float32 in nanomaggies / pixel and its catalog row."""
    cfg, tables = ctx.cfg, ctx.tables
    rng = np.random.default_rng([seed, index, STREAM_SCENE])
    deviate = galsim.BaseDeviate(int(rng.integers(1, 2**31 - 1)))  # 0 would seed from the clock

    host = draw_galaxy(rng, cfg, tables)
    anomaly = draw_anomaly_type(rng) if rng.uniform() < cfg.anomaly_rate else NO_ANOMALY
    host = host_for(anomaly, rng, cfg, tables, host)
    seeing = draw_seeing(rng, cfg.seeing_median, cfg.seeing_sigma_ln)
    fwhm = band_fwhm(seeing, tables.effective_wavelength)
    ra = float(rng.uniform(*RA_RANGE))
    sin_dec = rng.uniform(*np.sin(np.radians(DEC_RANGE)))  # uniform on the sphere
    dec = float(np.degrees(np.arcsin(sin_dec)))

    components = anomaly_components(anomaly, host, rng, deviate, cfg, tables)
    has_neighbour = bool(rng.uniform() < cfg.neighbour_rate)
    if has_neighbour:  # a chance projection: any redshift, usually fainter, same dust
        neighbour = draw_galaxy(rng, cfg, tables, mag_range=(cfg.mag_r_min + 1.0, cfg.mag_r_max + 2.0), ebv=host.ebv)
        offset = random_offset(rng, cfg.image_size, cfg.pixel_scale)
        components += galaxy_components(neighbour, tables, deviate, offset)
    has_star = bool(rng.uniform() < cfg.star_rate)
    if has_star:
        star_mag = rng.uniform(cfg.mag_r_min + 1.0, cfg.mag_r_max + 3.0)
        temperature = rng.uniform(*STAR_TEMPERATURE_RANGE)
        offset = random_offset(rng, cfg.image_size, cfg.pixel_scale, inner=0.2)
        components.append(star_component(star_mag, temperature, host.ebv, np.asarray(SDSS_EXTINCTION), tables, offset))

    image = render(components, fwhm, cfg.image_size, cfg.pixel_scale)
    noise_rng = np.random.default_rng([seed, index, STREAM_NOISE])
    image = ctx.noise.add_noise(image, noise_rng)
    if anomaly in ARTIFACTS:
        image = add_artifact(anomaly, image, noise_rng, fwhm, ctx.noise.sky_sigma, cfg.pixel_scale)

    mags = observed_mags(tables, host)
    p_features, p_edge_on = vote_probabilities(host, seeing, anomaly)
    labels = survey_labels(np.random.default_rng([seed, index, STREAM_LABELS]), cfg, host.z,
                           float(mags[R_INDEX]), p_features, p_edge_on)
    row = {
        "object_id": index, "ra": ra, "dec": dec, "z": host.z, "type": host.type,
        "abs_mag_r": host.abs_mag_r, **{f"mag_{b}": float(m) for b, m in zip(BANDS, mags)},
        "bulge_frac": host.bulge_frac, "half_light_radius": host.half_light_radius,
        "axis_ratio": host.axis_ratio, "inclination": math.degrees(host.inclination),
        "position_angle": math.degrees(host.position_angle), "edge_on": host.edge_on,
        "ebv": host.ebv, "seeing": seeing, "has_neighbour": has_neighbour, "has_star": has_star,
        "is_anomaly": anomaly != NO_ANOMALY, "anomaly_type": anomaly, **labels,
    }
    return image.astype(np.float32), row


def draw_noiseless_galaxy(params: GalaxyParams, cfg: SimulateConfig, seeing: float = 1.4,
                          seed: int = 0) -> np.ndarray:
    """One galaxy alone, without noise: (B, H, W) float64 in nanomaggies / pixel.

    For checks: its pixels sum to the fluxes of its magnitudes (`population.observed_mags`),
    less what falls outside the cutout.
    """
    ctx = simulation_context(cfg)
    fwhm = band_fwhm(seeing, ctx.tables.effective_wavelength)
    components = galaxy_components(params, ctx.tables, galsim.BaseDeviate(seed + 1))
    return render(components, fwhm, cfg.image_size, cfg.pixel_scale)


def empty_columns(n: int) -> dict[str, np.ndarray]:
    """Arrays for `n` catalog rows, one per column, in the catalog's dtypes."""
    return {name: np.zeros(n, dtype=dtype) for name, dtype in COLUMNS.items()}


def draw_population_sample(cfg: SimulateConfig, seed: int, n: int) -> list[GalaxyParams]:
    """The host galaxies of objects 0..n-1 without their images (fast; for checks and plots)."""
    ctx = simulation_context(cfg)
    out = []
    for index in range(n):
        rng = np.random.default_rng([seed, index, STREAM_SCENE])
        rng.integers(1, 2**31 - 1)  # the deviate seed, as simulate_object draws it
        out.append(draw_galaxy(rng, cfg, ctx.tables))
    return out
