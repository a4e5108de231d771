"""Band fluxes from redshifted spectral templates through real filter curves, tabulated once.

GalSim ships the LSST u, g, r, i, z filter curves and the Coleman, Wu & Weedman (1980) galaxy
templates extended to the UV and IR (``CWW_*_ext.sed``). The LSST curves stand in for SDSS ugriz
(they differ by a few nm in their edges; colours differ by a few hundredths of a magnitude), with
AB zero points, so that a magnitude m is a flux of ``10**(-0.4 * (m - 22.5))`` nanomaggies.

Integrating an SED through a bandpass for every object would dominate the run time, so
`photometry_tables` integrates each template once per process on a redshift grid and
`PhotometryTables.offsets` interpolates it. The tabulated quantity for template t, redshift z and
band b is

    A[t, z, b] = m_b(t at z) - m_r(t at rest)

in GalSim's convention, where ``SED.atRedshift`` stretches the photon spectrum without dimming it:
the observed magnitude of a component with rest-frame absolute r magnitude M is then
``M + DM(z) + A[t, z, b]`` (A is the K-correction plus the observed colour), with the distance
modulus DM from the Planck 2018 cosmology.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

#: the simulated survey's bands, bluest first
BANDS = ("u", "g", "r", "i", "z")
R_INDEX = BANDS.index("r")

#: Galaxy templates by the name used in the population model -> GalSim's SED file
TEMPLATES = {
    "E": "CWW_E_ext.sed",  # old, red stellar population: bulges, ellipticals, S0 disks
    "Sbc": "CWW_Sbc_ext.sed",  # early-type spiral disks
    "Scd": "CWW_Scd_ext.sed",  # late-type spiral disks
    "Im": "CWW_Im_ext.sed",  # star-forming: irregulars, knots, rings, lensed sources
}
TEMPLATE_NAMES = tuple(TEMPLATES)

#: the redshift grid of the tables: fine over the galaxy range, coarse out to lensed sources
Z_GRID = np.concatenate([np.arange(0.0, 0.6, 0.005), np.arange(0.6, 3.0001, 0.05)])
#: effective temperatures of the blackbody spectra used for stars in the cutouts (K)
STAR_TEMPERATURES = np.arange(3000.0, 12001.0, 250.0)

#: the SDSS magnitude zero point of the nanomaggy: m = 22.5 - 2.5 log10(flux / nanomaggy)
NANOMAGGY_ZERO_POINT = 22.5


def nanomaggies(mag: np.ndarray | float) -> np.ndarray:
    """Flux in nanomaggies of an AB magnitude."""
    return 10.0 ** (-0.4 * (np.asarray(mag, dtype=np.float64) - NANOMAGGY_ZERO_POINT))


def magnitude(flux: np.ndarray | float) -> np.ndarray:
    """AB magnitude of a flux in nanomaggies (inf for flux <= 0)."""
    flux = np.asarray(flux, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(flux > 0, NANOMAGGY_ZERO_POINT - 2.5 * np.log10(np.maximum(flux, 1e-300)), np.inf)


@dataclass(frozen=True)
class PhotometryTables:
    """Template magnitudes and cosmological distances on grids, interpolated per object."""

    z_grid: np.ndarray  # (Z,)
    offsets_table: np.ndarray  # (T, Z, B): m_b(template at z) - m_r(template at rest)
    effective_wavelength: np.ndarray  # (B,) nm
    star_temperatures: np.ndarray  # (S,) K
    star_colours: np.ndarray  # (S, B): m_b - m_r of a blackbody
    cosmo_z: np.ndarray  # (D,) fine redshift grid for distances
    distance_modulus_table: np.ndarray  # (D,) mag, Planck 2018
    angular_diameter_distance_table: np.ndarray  # (D,) kpc

    def offsets(self, template: str, z: float) -> np.ndarray:
        """(B,) magnitude offsets A[t, z, b] of one template at redshift z."""
        table = self.offsets_table[TEMPLATE_NAMES.index(template)]
        return np.array([np.interp(z, self.z_grid, table[:, b]) for b in range(len(BANDS))])

    def star_colour(self, temperature: float) -> np.ndarray:
        """(B,) m_b - m_r of a blackbody star."""
        return np.array(
            [np.interp(temperature, self.star_temperatures, self.star_colours[:, b]) for b in range(len(BANDS))]
        )

    def distance_modulus(self, z: float | np.ndarray) -> np.ndarray:
        """5 log10(D_L / 10 pc) for the Planck 2018 cosmology."""
        return np.interp(z, self.cosmo_z, self.distance_modulus_table)

    def arcsec_per_kpc(self, z: float | np.ndarray) -> np.ndarray:
        """Angular size in arcsec of 1 kpc (proper) at redshift z."""
        d_a = np.interp(z, self.cosmo_z, self.angular_diameter_distance_table)
        return np.degrees(1.0 / d_a) * 3600.0


@functools.lru_cache(maxsize=1)
def photometry_tables() -> PhotometryTables:
    """Integrate every template and blackbody through every band once per process (~0.3 s)."""
    import galsim
    from astropy.cosmology import Planck18

    bandpasses = [galsim.Bandpass(f"LSST_{b}.dat", "nm").withZeropoint("AB").thin(rel_err=1e-4) for b in BANDS]
    offsets = np.empty((len(TEMPLATES), len(Z_GRID), len(BANDS)))
    for t, filename in enumerate(TEMPLATES.values()):
        sed = galsim.SED(filename, wave_type="Ang", flux_type="flambda")
        rest_r = sed.calculateMagnitude(bandpasses[R_INDEX])
        for k, z in enumerate(Z_GRID):
            shifted = sed.atRedshift(float(z))
            offsets[t, k] = [shifted.calculateMagnitude(bp) - rest_r for bp in bandpasses]

    star_colours = np.empty((len(STAR_TEMPERATURES), len(BANDS)))
    for k, temperature in enumerate(STAR_TEMPERATURES):
        sed = galsim.SED(functools.partial(_planck_flambda, temperature=float(temperature)), "nm", "flambda")
        mags = np.array([sed.calculateMagnitude(bp) for bp in bandpasses])
        star_colours[k] = mags - mags[R_INDEX]

    cosmo_z = np.concatenate([[1e-4], np.linspace(0.001, 3.0, 3000)])
    dm = np.asarray(Planck18.distmod(cosmo_z).value)
    d_a = np.asarray(Planck18.angular_diameter_distance(cosmo_z).to_value("kpc"))
    return PhotometryTables(
        z_grid=Z_GRID.copy(),
        offsets_table=offsets,
        effective_wavelength=np.array([bp.effective_wavelength for bp in bandpasses]),
        star_temperatures=STAR_TEMPERATURES.copy(),
        star_colours=star_colours,
        cosmo_z=cosmo_z,
        distance_modulus_table=dm,
        angular_diameter_distance_table=d_a,
    )


def _planck_flambda(wave_nm: np.ndarray | float, temperature: float) -> np.ndarray:
    """Blackbody f_lambda (arbitrary normalisation) at wavelength in nm."""
    hc_over_k = 1.4387769e7  # h c / k_B in nm K
    x = hc_over_k / (np.asarray(wave_nm, dtype=np.float64) * temperature)
    return 1.0 / (np.asarray(wave_nm, dtype=np.float64) ** 5 * np.expm1(np.minimum(x, 700.0)))
