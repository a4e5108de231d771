"""The galaxy population: redshift, type, luminosity, size, shape and reddening of one object.

A magnitude-limited survey sees a redshift distribution n(z) and, at each z, only the galaxies
whose apparent magnitude falls inside the limits. So an object's redshift is drawn from n(z), then
its type and absolute magnitude from per-type Schechter luminosity functions truncated to the
absolute-magnitude window that the apparent limits allow at that z (K-correction and extinction
included). Nearby objects are therefore mostly faint spirals and irregulars, and distant ones
luminous ellipticals, as in the SDSS main sample.

Sizes follow the size-luminosity relations of Shen et al. (2003, MNRAS 343, 978; SDSS r band,
h = 0.7), made angular with the Planck 2018 angular diameter distance. Disk axis ratios follow
the inclination of an oblate disk of intrinsic thickness q0 (Hubble 1926):
``q**2 = cos(i)**2 + q0**2 sin(i)**2``, so edge-on disks are thin.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from galexplore.config import SDSS_EXTINCTION, SimulateConfig
from galexplore.simulate.photometry import R_INDEX, PhotometryTables

TYPES = ("elliptical", "lenticular", "spiral", "irregular")


@dataclass(frozen=True)
class TypeModel:
    """How one morphological type is built: luminosity function, light mix, templates, shape."""

    phi_star: float  # relative number density at M* (sets the type mix)
    m_star: float  # Schechter M* in r (h = 0.7)
    alpha: float  # Schechter faint-end slope
    bulge_frac: tuple[float, float]  # uniform range of rest-frame r bulge-to-total
    knot_frac: tuple[float, float]  # uniform range of the non-bulge light in star-forming knots
    n_knots: tuple[int, int]  # uniform integer range of knot count
    disk_template: str
    disk_thickness: float  # intrinsic disk axis ratio q0
    early: bool  # size-luminosity relation: early (True) or late (False)


# Luminosity functions by type, after Nakamura et al. (2003, AJ 125, 1682; SDSS r, morphologically
# classified): early types are brighter with flatter faint ends. phi* (relative) tuned so that the
# r < 17.77 sample holds about 50% early types (E + S0), 45% spirals and 5% irregulars, as
# visual classifications of the SDSS main sample do (Nair & Abraham 2010).
TYPE_MODELS = {
    "elliptical": TypeModel(0.7, -21.6, -0.7, (0.85, 1.0), (0.0, 0.0), (0, 0), "E", 0.9, True),
    "lenticular": TypeModel(0.8, -21.3, -0.8, (0.35, 0.7), (0.0, 0.0), (0, 0), "E", 0.25, True),
    "spiral": TypeModel(6.0, -21.1, -1.1, (0.02, 0.35), (0.1, 0.3), (15, 40), "Sbc", 0.15, False),
    "irregular": TypeModel(10.0, -19.6, -1.3, (0.0, 0.05), (0.2, 0.4), (10, 30), "Im", 0.4, False),
}

# Shen et al. (2003) eqs. 14-16 and table 1 (Sersic half-light radii, r band): log10(R50 / kpc)
SHEN_EARLY_A, SHEN_EARLY_B = 0.65, -5.06
SHEN_LATE_ALPHA, SHEN_LATE_BETA, SHEN_LATE_GAMMA, SHEN_LATE_M0 = 0.21, 0.53, -1.31, -20.52
SHEN_SIGMA1, SHEN_SIGMA2 = 0.48, 0.25  # ln R50 scatter, faint and bright ends
BULGE_TO_DISK_SIZE = (0.2, 0.5)  # bulge half-light radius / disk half-light radius
BULGE_THICKNESS = 0.65  # intrinsic axis ratio of bulges in disk galaxies
ELLIPTICAL_Q = (0.72, 0.15)  # mean, sd of projected axis ratios of ellipticals (SDSS)
EDGE_ON_INCLINATION = 75.0  # degrees: disks seen closer than 15 degrees to edge-on
SCD_BELOW_BULGE_FRAC = 0.12  # spirals with less bulge than this get the later Scd disk

ABS_MAG_GRID = np.linspace(-26.0, -12.0, 1401)
Z0_POWER = 1.5  # n(z) ∝ z^2 exp(-(z / z0)^1.5) (Baugh & Efstathiou 1993)


@dataclass(frozen=True)
class GalaxyParams:
    """Everything that defines one galaxy's light, with angular sizes in arcsec and angles in rad."""

    z: float
    type: str
    abs_mag_r: float  # rest-frame absolute r magnitude (h = 0.7, Planck 2018)
    bulge_frac: float  # rest-frame r-band bulge-to-total light ratio
    knot_frac: float  # fraction of the total light in star-forming knots
    n_knots: int
    disk_template: str
    half_light_radius: float  # arcsec, whole galaxy
    bulge_hlr: float  # arcsec
    disk_hlr: float  # arcsec
    inclination: float  # rad, 0 face-on
    position_angle: float  # rad
    axis_ratio: float  # projected axis ratio of the disk (of the bulge for ellipticals)
    bulge_axis_ratio: float
    ebv: float

    @property
    def edge_on(self) -> bool:
        return self.type in ("lenticular", "spiral") and math.degrees(self.inclination) > EDGE_ON_INCLINATION

    def light_mix(self) -> list[tuple[str, str, float]]:
        """(component, template, rest-frame r light fraction) for bulge, disk and knots."""
        disk = 1.0 - self.bulge_frac - self.knot_frac
        return [("bulge", "E", self.bulge_frac), ("disk", self.disk_template, disk), ("knots", "Im", self.knot_frac)]


def observed_mags(tables: PhotometryTables, p: GalaxyParams, abs_mag_r: float | None = None) -> np.ndarray:
    """(B,) observed magnitudes of each component summed: the galaxy's total ugriz, reddened."""
    flux = component_fluxes(tables, p, abs_mag_r).sum(axis=0)
    return 22.5 - 2.5 * np.log10(flux)


def component_fluxes(tables: PhotometryTables, p: GalaxyParams, abs_mag_r: float | None = None) -> np.ndarray:
    """(3, B) observed fluxes in nanomaggies of bulge, disk and knots (0 where absent)."""
    m_abs = p.abs_mag_r if abs_mag_r is None else abs_mag_r
    extinction = np.asarray(SDSS_EXTINCTION) * p.ebv
    dm = float(tables.distance_modulus(p.z))
    out = np.zeros((3, len(extinction)))
    for k, (_, template, frac) in enumerate(p.light_mix()):
        if frac > 0:
            mags = m_abs - 2.5 * math.log10(frac) + dm + tables.offsets(template, p.z) + extinction
            out[k] = 10.0 ** (-0.4 * (mags - 22.5))
    return out


def draw_redshift(rng: np.random.Generator, cfg: SimulateConfig) -> float:
    """A redshift from n(z) ∝ z^2 exp(-(z/z0)^1.5) restricted to [z_min, z_max]."""
    grid, cdf = _redshift_cdf(cfg.z_min, cfg.z_max, cfg.nz_z0)
    return float(np.interp(rng.uniform(), cdf, grid))


def draw_ebv(rng: np.random.Generator, cfg: SimulateConfig) -> float:
    """Milky Way reddening E(B-V) towards one object: log-normal about the config's median."""
    return float(cfg.ebv_median * math.exp(cfg.ebv_sigma_ln * rng.standard_normal()))


def draw_galaxy(
    rng: np.random.Generator,
    cfg: SimulateConfig,
    tables: PhotometryTables,
    *,
    z: float | None = None,
    mag_range: tuple[float, float] | None = None,
    galaxy_type: str | None = None,
    ebv: float | None = None,
) -> GalaxyParams:
    """One galaxy whose observed r magnitude lies in `mag_range` (default: the config's limits).

    `z`, `galaxy_type` and `ebv` fix those instead of drawing them (a companion at the host's
    redshift, behind the same Milky Way dust).
    """
    z = draw_redshift(rng, cfg) if z is None else float(z)
    mag_lo, mag_hi = mag_range or (cfg.mag_r_min, cfg.mag_r_max)
    if ebv is None:
        ebv = draw_ebv(rng, cfg)
    if galaxy_type is None:
        galaxy_type = _draw_type(rng, tables, z, mag_lo, mag_hi, ebv)
    model = TYPE_MODELS[galaxy_type]

    bulge_frac = float(rng.uniform(*model.bulge_frac))
    knot_frac = float(rng.uniform(*model.knot_frac)) * (1.0 - bulge_frac)
    n_knots = int(rng.integers(model.n_knots[0], model.n_knots[1] + 1)) if knot_frac > 0 else 0
    disk_template = model.disk_template
    if galaxy_type == "spiral" and bulge_frac < SCD_BELOW_BULGE_FRAC:
        disk_template = "Scd"

    inclination = math.acos(rng.uniform())  # isotropic orientations: cos(i) uniform
    position_angle = float(rng.uniform(0.0, math.pi))
    sin2, cos2 = math.sin(inclination) ** 2, math.cos(inclination) ** 2
    if galaxy_type == "elliptical":
        q = float(np.clip(rng.normal(*ELLIPTICAL_Q), 0.35, 1.0))
        bulge_q = q
    else:
        q = math.sqrt(cos2 + model.disk_thickness**2 * sin2)
        bulge_q = math.sqrt(cos2 + BULGE_THICKNESS**2 * sin2)

    # Absolute magnitude: the type's Schechter function inside the window the limits allow.
    probe = GalaxyParams(z, galaxy_type, 0.0, bulge_frac, knot_frac, n_knots, disk_template, 1.0, 1.0,
                         1.0, inclination, position_angle, q, bulge_q, ebv)
    offset = float(observed_mags(tables, probe, 0.0)[R_INDEX])  # m_r - M_r
    abs_mag = _draw_schechter(rng, galaxy_type, mag_lo - offset, mag_hi - offset)

    r50_kpc = _shen_radius_kpc(rng, abs_mag, model.early)
    r50 = float(r50_kpc * tables.arcsec_per_kpc(z))
    ratio = float(rng.uniform(*BULGE_TO_DISK_SIZE))
    if galaxy_type == "elliptical":
        bulge_hlr, disk_hlr = r50, 1.5 * r50  # the faint envelope
    else:
        # R50 of the sum of a compact bulge and a disk: the disk dominates; scale so that the
        # whole galaxy's half-light radius is close to R50 (bulge light pulls it inwards).
        disk_hlr = r50 / (1.0 - 0.6 * bulge_frac * (1.0 - ratio))
        bulge_hlr = ratio * disk_hlr
    return GalaxyParams(
        z=z, type=galaxy_type, abs_mag_r=abs_mag, bulge_frac=bulge_frac, knot_frac=knot_frac,
        n_knots=n_knots, disk_template=disk_template, half_light_radius=r50, bulge_hlr=bulge_hlr,
        disk_hlr=disk_hlr, inclination=inclination, position_angle=position_angle, axis_ratio=q,
        bulge_axis_ratio=bulge_q, ebv=ebv,
    )


def _draw_type(rng: np.random.Generator, tables: PhotometryTables, z: float, mag_lo: float,
               mag_hi: float, ebv: float) -> str:
    """A type with probability ∝ its number density inside the allowed absolute-magnitude window."""
    dm = float(tables.distance_modulus(z))
    a_r = SDSS_EXTINCTION[R_INDEX] * ebv
    weights = []
    for name, model in TYPE_MODELS.items():
        k = float(tables.offsets(model.disk_template if not model.early else "E", z)[R_INDEX])
        lo, hi = mag_lo - dm - k - a_r, mag_hi - dm - k - a_r
        m, cum = _schechter_cdf(name)
        weights.append(model.phi_star * (np.interp(hi, m, cum) - np.interp(lo, m, cum)))
    w = np.asarray(weights)
    w = w / w.sum() if w.sum() > 0 else np.full(len(w), 1.0 / len(w))
    return TYPES[int(rng.choice(len(TYPES), p=w))]


def _draw_schechter(rng: np.random.Generator, galaxy_type: str, m_lo: float, m_hi: float) -> float:
    """An absolute magnitude from the type's Schechter function truncated to [m_lo, m_hi]."""
    m, cum = _schechter_cdf(galaxy_type)
    c_lo, c_hi = np.interp(m_lo, m, cum), np.interp(m_hi, m, cum)
    if c_hi - c_lo < 1e-12:  # window beyond the tabulated range: take its nearer edge
        return float(np.clip(m_hi if c_hi <= cum[0] else m_lo, m_lo, m_hi))
    return float(np.clip(np.interp(rng.uniform(c_lo, c_hi), cum, m), m_lo, m_hi))


@functools.lru_cache(maxsize=None)
def _schechter_cdf(galaxy_type: str) -> tuple[np.ndarray, np.ndarray]:
    """The cumulative Schechter function phi(M) ∝ x^(alpha+1) exp(-x), x = 10^(-0.4 (M - M*))."""
    model = TYPE_MODELS[galaxy_type]
    x = 10.0 ** (-0.4 * (ABS_MAG_GRID - model.m_star))
    phi = x ** (model.alpha + 1.0) * np.exp(-x)
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (phi[1:] + phi[:-1]) * np.diff(ABS_MAG_GRID))])
    return ABS_MAG_GRID, cum / cum[-1]


@functools.lru_cache(maxsize=16)
def _redshift_cdf(z_min: float, z_max: float, z0: float) -> tuple[np.ndarray, np.ndarray]:
    grid = np.linspace(z_min, z_max, 2001)
    density = grid**2 * np.exp(-((grid / z0) ** Z0_POWER))
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]) * np.diff(grid))])
    return grid, cum / cum[-1]


def _shen_radius_kpc(rng: np.random.Generator, abs_mag: float, early: bool) -> float:
    """A half-light radius in kpc from the Shen et al. (2003) relation and its log-normal scatter."""
    if early:
        log_r = -0.4 * SHEN_EARLY_A * abs_mag + SHEN_EARLY_B
    else:
        log_r = (-0.4 * SHEN_LATE_ALPHA * abs_mag
                 + (SHEN_LATE_BETA - SHEN_LATE_ALPHA) * math.log10(1.0 + 10.0 ** (-0.4 * (abs_mag - SHEN_LATE_M0)))
                 + SHEN_LATE_GAMMA)
    sigma = SHEN_SIGMA2 + (SHEN_SIGMA1 - SHEN_SIGMA2) / (1.0 + 10.0 ** (-0.8 * (abs_mag - SHEN_LATE_M0)))
    return float(10.0**log_r * math.exp(sigma * rng.standard_normal()))
