"""The simulated survey: SDSS-like ugriz cutouts drawn with GalSim, with truth and labels.

Modules, in the order an object is made:

- `photometry`: filter curves, redshifted CWW templates and Planck 2018 distances, tabulated once;
- `population`: redshift, type, luminosity, size, shape and reddening of a galaxy;
- `galaxies`: bulge, disk and knots as GalSim profiles with per-band fluxes;
- `anomalies`: rings, mergers, lensed arcs, satellite trails and bad columns;
- `observing`: seeing, sky and noise per band;
- `scene`: drawing the components through the PSF in Fourier space;
- `labels`: spectroscopic redshifts and Galaxy Zoo-like votes of the bright subsets;
- `objects`: one object's cutout and catalog row from its own random streams;
- `writer`: the parallel, resumable, reproducible HDF5 writer.
"""

from __future__ import annotations

from galexplore.simulate.objects import COLUMNS, draw_noiseless_galaxy, simulate_object
from galexplore.simulate.writer import simulate_survey

__all__ = ["COLUMNS", "draw_noiseless_galaxy", "simulate_object", "simulate_survey"]
