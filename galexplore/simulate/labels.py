"""The labels a real survey would have measured: spectroscopic redshifts and Galaxy Zoo votes.

- Spectroscopic redshifts (``z_spec``) exist only for the magnitude-limited spectroscopic sample,
  r < spec_mag_limit (17.77 for the SDSS main sample, Strauss et al. 2002), less the ~6% lost to
  fibre collisions, with a 30 km/s redshift error. So the labelled set is brighter and nearer.
- Galaxy Zoo-like vote fractions (``p_features``, ``p_edge_on``) for the brighter subset of the
  spectroscopic sample (r < morphology_mag_limit, as Galaxy Zoo 2 took r < 17 from the main
  sample; Willett et al. 2013): about 40 volunteers vote, each answering "features or disk" with a
  truth-based probability. That probability includes the classification bias that Galaxy Zoo
  corrects for: features wash out as a galaxy shrinks towards the seeing, so small, distant
  disks look smooth more often.
"""

from __future__ import annotations

import math

import numpy as np

from galexplore.config import SimulateConfig
from galexplore.simulate.population import EDGE_ON_INCLINATION, GalaxyParams

SPEC_Z_ERROR = 1e-4  # sigma_z / (1 + z): 30 km/s
MIN_VOTES = 10
SMOOTH_FLOOR = 0.1  # p_features of a featureless blob
EDGE_ON_WIDTH = 4.0  # degrees: how sharply volunteers' edge-on answers switch on with inclination
#: how often volunteers see features, by type, for a well-resolved galaxy
FEATURES_BY_TYPE = {"elliptical": 0.04, "lenticular": 0.3, "spiral": 0.92, "irregular": 0.8}
FEATURES_BY_ANOMALY = {"ring": 0.9, "merger": 0.85}

LABEL_NONE, LABEL_SPEC, LABEL_SPEC_MORPH = "none", "spec-z", "spec-z+morphology"


def vote_probabilities(p: GalaxyParams, seeing: float, anomaly_type: str) -> tuple[float, float]:
    """Truth-based probabilities that a volunteer answers "features" and "edge-on"."""
    resolution = p.half_light_radius / (p.half_light_radius + 0.5 * seeing)  # 0 unresolved .. 1
    base = FEATURES_BY_ANOMALY.get(anomaly_type, FEATURES_BY_TYPE[p.type])
    p_features = SMOOTH_FLOOR + (base - SMOOTH_FLOOR) * resolution
    p_edge_on = 0.02
    if p.type in ("lenticular", "spiral"):
        tilt = (math.degrees(p.inclination) - EDGE_ON_INCLINATION) / EDGE_ON_WIDTH
        p_edge_on += 0.93 / (1.0 + math.exp(-tilt))
    return float(np.clip(p_features, 0, 1)), float(np.clip(p_edge_on, 0, 1))


def survey_labels(
    rng: np.random.Generator, cfg: SimulateConfig, z: float, mag_r: float, p_features: float, p_edge_on: float
) -> dict[str, float | int | str]:
    """z_spec, vote fractions and label_availability for one object (NaN where not measured)."""
    has_spec = mag_r < cfg.spec_mag_limit and rng.uniform() < cfg.spec_completeness
    z_spec = max(z + SPEC_Z_ERROR * (1.0 + z) * rng.standard_normal(), 0.0) if has_spec else math.nan
    has_morphology = has_spec and mag_r < cfg.morphology_mag_limit
    if has_morphology:
        votes = max(MIN_VOTES, int(rng.poisson(cfg.volunteers)))
        features = rng.binomial(votes, p_features) / votes
        edge_on = rng.binomial(votes, p_edge_on) / votes
    else:
        votes, features, edge_on = 0, math.nan, math.nan
    availability = LABEL_SPEC_MORPH if has_morphology else LABEL_SPEC if has_spec else LABEL_NONE
    return {
        "z_spec": float(z_spec),
        "p_features": float(features),
        "p_edge_on": float(edge_on),
        "n_votes": votes,
        "label_availability": availability,
    }
