"""Galaxies and stars as GalSim components: de Vaucouleurs bulge, exponential disk, knots.

Each galaxy is the sum of up to three achromatic GalSim profiles, each with its own SED-derived
flux per band (see `population.component_fluxes`):

- a de Vaucouleurs bulge (old population, CWW E template), truncated at 8 half-light radii as the
  SDSS photometric pipeline truncates its deV model (Stoughton et al. 2002);
- an exponential disk (E for lenticulars, Sbc/Scd for spirals, Im for irregulars);
- star-forming knots (`galsim.RandomKnots`, CWW Im template) spread like the disk.

So a spiral is a red bulge inside a bluer disk dotted with blue knots, an elliptical a smooth red
spheroid, and the colours change with redshift as the templates move through the filters.
"""

from __future__ import annotations

import math

import galsim
import numpy as np

from galexplore.simulate.photometry import PhotometryTables, nanomaggies
from galexplore.simulate.population import GalaxyParams, component_fluxes
from galexplore.simulate.scene import GSPARAMS, Component

DEV_TRUNCATION = 8.0  # half-light radii
MIN_HLR = 0.05  # arcsec: a floor that keeps GalSim's profiles well defined


def galaxy_components(
    p: GalaxyParams,
    tables: PhotometryTables,
    deviate: galsim.BaseDeviate,
    offset: tuple[float, float] = (0.0, 0.0),
) -> list[Component]:
    """The bulge, disk and knots of one galaxy, centred at `offset` (arcsec) from the cutout centre."""
    fluxes = component_fluxes(tables, p)  # (3, B): bulge, disk, knots
    beta = p.position_angle * galsim.radians
    out = []
    if fluxes[0].any():
        hlr = max(p.bulge_hlr, MIN_HLR)
        bulge = galsim.DeVaucouleurs(half_light_radius=hlr, trunc=DEV_TRUNCATION * hlr, gsparams=GSPARAMS)
        out.append(Component(bulge.shear(q=p.bulge_axis_ratio, beta=beta), fluxes[0]))
    disk_hlr = max(p.disk_hlr, MIN_HLR)
    if fluxes[1].any():
        disk = galsim.Exponential(half_light_radius=disk_hlr, gsparams=GSPARAMS)
        out.append(Component(disk.shear(q=p.axis_ratio, beta=beta), fluxes[1]))
    if fluxes[2].any() and p.n_knots > 0:
        knots = galsim.RandomKnots(p.n_knots, half_light_radius=disk_hlr, rng=deviate, gsparams=GSPARAMS)
        out.append(Component(knots.shear(q=p.axis_ratio, beta=beta), fluxes[2]))
    return [shifted(c, offset) for c in out]


def star_component(
    mag_r: float, temperature: float, ebv: float, extinction: np.ndarray, tables: PhotometryTables,
    offset: tuple[float, float],
) -> Component:
    """A point source with a blackbody's colours, reddened like everything in the cutout."""
    mags = mag_r + tables.star_colour(temperature) + extinction * ebv
    return shifted(Component(galsim.DeltaFunction(gsparams=GSPARAMS), nanomaggies(mags)), offset)


def shifted(component: Component, offset: tuple[float, float]) -> Component:
    """The component moved by `offset` arcsec (x, y)."""
    if offset == (0.0, 0.0):
        return component
    return Component(component.profile.shift(*offset), component.flux)


def random_offset(rng: np.random.Generator, size: int, pixel_scale: float, inner: float = 0.15,
                  outer: float = 0.45) -> tuple[float, float]:
    """A position (arcsec) in an annulus between `inner` and `outer` cutout widths from the centre."""
    radius = rng.uniform(inner, outer) * size * pixel_scale
    angle = rng.uniform(0.0, 2.0 * math.pi)
    return (float(radius * math.cos(angle)), float(radius * math.sin(angle)))
