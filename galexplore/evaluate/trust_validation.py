"""Does the trust overlay tell the truth? Prediction error by trust decile, and an outlier ROC AUC.

Trust (`galexplore.maps.scores`) claims that a prediction is believable where labelled galaxies are
near. This module checks the claim from the atlas catalog alone:

- photo-z: |dz| = |z_phot - z_ref| / (1 + z_ref) by decile of `trust_spec_z`, with the median
  |dz| and the outlier fractions per decile, and the ROC AUC of (1 - trust_spec_z) for
  catastrophic outliers (|dz| > 0.15) and for outliers (|dz| > 0.05). z_ref is the true `z` of a
  simulated survey; without truth it is `z_spec`.
- morphology: |p_features_pred - p_features| by decile of `trust_morphology`, against the
  Galaxy Zoo-like vote fraction (only labelled galaxies have one).

Labelled galaxies' predictions are held-out errors when the atlas predicted them out-of-fold (its
manifest's probes stage records `labelled_predictions`, pass it as `labelled`); an older atlas's
are in-sample, so its labelled galaxies are left out where truth exists, and flagged otherwise.

Deciles keep tied trust values together: when 70% of galaxies have trust 0 they form one bin,
so a "decile" may hold more than a tenth of the galaxies and there may be fewer than ten.
An AUC of 0.5 means trust does not rank errors at all; 1.0 means every outlier has lower trust
than every good prediction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from galexplore.scoring.figures import OUTLIER_DZ

#: |dz| above this is a catastrophic photo-z failure (Hayat et al. 2021 use 0.05 for "outlier";
#: 0.15 is the usual catastrophic threshold, e.g. Ilbert et al. 2006)
CATASTROPHIC_DZ = 0.15
#: AUCs at or above this count as "trust marks bad predictions" in the verdict
GOOD_AUC = 0.7
#: AUCs below this count as "trust does not mark them"
USELESS_AUC = 0.55


def trust_bins(trust: np.ndarray, n_bins: int = 10) -> np.ndarray:
    """The bin of each value, 0 = lowest trust: quantile bins that never split tied values.

    >>> trust_bins(np.array([0.0, 0.1, 0.2, 0.5, 0.7, 0.9]), n_bins=3).tolist()
    [0, 0, 1, 1, 2, 2]
    >>> trust_bins(np.array([0.0, 0.0, 0.0, 0.0, 0.5, 0.9]), n_bins=3).tolist()  # ties stay together
    [0, 0, 0, 0, 1, 1]
    """
    trust = np.asarray(trust, dtype=np.float64)
    edges = np.unique(np.quantile(trust, np.linspace(0, 1, n_bins + 1)[1:-1]))
    bins = np.searchsorted(edges, trust, side="left")  # a value equal to an edge joins the bin below
    return np.unique(bins, return_inverse=True)[1].reshape(-1)  # renumber 0.. without empty bins


def _per_bin(trust: np.ndarray, error: np.ndarray, n_bins: int, flags: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """Per trust bin: its trust range, size, the median and mean error, and the share of each flag."""
    bins = trust_bins(trust, n_bins)
    out = []
    for b in range(int(bins.max()) + 1 if len(bins) else 0):
        chosen = bins == b
        row = {
            "trust_min": float(trust[chosen].min()),
            "trust_max": float(trust[chosen].max()),
            "n": int(chosen.sum()),
            "share": float(chosen.mean()),
            "median_error": float(np.median(error[chosen])),
            "mean_error": float(np.mean(error[chosen])),
        }
        row.update({name: float(np.mean(flag[chosen])) for name, flag in flags.items()})
        out.append(row)
    return out


def _absent(what: str, note: str) -> dict[str, Any]:
    return {"available": False, "what": what, "note": note}


def _auc(trust: np.ndarray, bad: np.ndarray) -> float | None:
    """ROC AUC of (1 - trust) for `bad`; None when only one class is present."""
    from sklearn.metrics import roc_auc_score

    if bad.all() or not bad.any():
        return None
    return float(roc_auc_score(bad, 1.0 - trust))


def _column(catalog: pd.DataFrame, name: str) -> np.ndarray:
    return pd.to_numeric(catalog[name], errors="coerce").to_numpy(dtype=np.float64)


def _held_out(labelled: Mapping[str, str] | None, column: str) -> str | None:
    """How the labelled rows of `column` were predicted, when it was out-of-fold (else None)."""
    scheme = (labelled or {}).get(column)
    return scheme if scheme and ("out-of-fold" in scheme or "leave-one-out" in scheme) else None


def photoz_error_by_trust(catalog: pd.DataFrame, n_bins: int = 10,
                          labelled: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Photo-z |dz| per trust_spec_z decile (lowest trust first) and the outlier ROC AUCs.

    Returns ``available`` False with a ``note`` when the catalog lacks z_phot, trust_spec_z or
    any redshift to compare with; otherwise ``reference`` (the column z_ref came from), ``note``,
    ``n``, ``bins`` (trust_min, trust_max, n, share, median_error, mean_error, outlier_fraction
    (|dz| > 0.05), catastrophic_fraction (|dz| > 0.15) per bin), ``auc`` ({"catastrophic": .., "outlier": ..}, None where a
    class is empty) and ``rates`` (the overall outlier fractions).
    """
    missing = [c for c in ("z_phot", "trust_spec_z") if c not in catalog.columns]
    if missing:
        return _absent("photo-z", f"no {' or '.join(missing)} column: the atlas has no photo-z probe or spec-z trust")
    z_phot, trust = _column(catalog, "z_phot"), _column(catalog, "trust_spec_z")
    z_spec = _column(catalog, "z_spec") if "z_spec" in catalog.columns else np.full(len(catalog), np.nan)
    held_out = _held_out(labelled, "z_spec")
    if "z" in catalog.columns:
        z_ref, reference = _column(catalog, "z"), "z"
        if held_out:
            use = np.isfinite(z_ref)
            note = f"against the true z of the simulated survey, on every galaxy (labelled ones predicted {held_out})"
        else:
            use = np.isfinite(z_ref) & ~np.isfinite(z_spec)
            note = ("against the true z of the simulated survey, on galaxies without a spec-z "
                    "(labelled galaxies' z_phot is in-sample and left out)")
    else:
        z_ref, reference = z_spec, "z_spec"
        use = np.isfinite(z_ref)
        note = (f"no true z (not a simulated survey): against z_spec, on the labelled galaxies, predicted {held_out}"
                if held_out else
                "no true z (not a simulated survey): against z_spec, on the labelled galaxies, whose "
                "z_phot was fitted to these same z_spec (in-sample, so errors are optimistic)")
    use &= np.isfinite(z_phot) & np.isfinite(trust)
    if use.sum() < 2 * n_bins:
        return _absent("photo-z", f"only {int(use.sum())} galaxies have both z_phot and {reference}: too few to bin")
    dz = np.abs(z_phot[use] - z_ref[use]) / (1.0 + z_ref[use])
    t = trust[use]
    flags = {"outlier_fraction": dz > OUTLIER_DZ, "catastrophic_fraction": dz > CATASTROPHIC_DZ}
    return {
        "available": True,
        "what": "photo-z",
        "trust_column": "trust_spec_z",
        "reference": reference,
        "note": note,
        "n": int(use.sum()),
        "bins": _per_bin(t, dz, n_bins, flags),
        "auc": {"catastrophic": _auc(t, flags["catastrophic_fraction"]), "outlier": _auc(t, flags["outlier_fraction"])},
        "rates": {name: float(np.mean(flag)) for name, flag in flags.items()},
        "thresholds": {"catastrophic": CATASTROPHIC_DZ, "outlier": OUTLIER_DZ},
    }


def morphology_error_by_trust(catalog: pd.DataFrame, n_bins: int = 10,
                              labelled: Mapping[str, str] | None = None) -> dict[str, Any]:
    """|p_features_pred - p_features| per trust_morphology decile (lowest trust first).

    p_features is the (noisy) vote fraction, only known for labelled galaxies; the ``note`` says
    whether their predictions were held out (`labelled`) or in-sample, and says when a simulated
    survey's truth exists but is unused.
    """
    missing = [c for c in ("p_features_pred", "trust_morphology", "p_features") if c not in catalog.columns]
    if missing:
        return _absent("morphology", f"no {' or '.join(missing)} column: no morphology probe, trust or votes")
    pred, trust, ref = (_column(catalog, c) for c in ("p_features_pred", "trust_morphology", "p_features"))
    use = np.isfinite(pred) & np.isfinite(trust) & np.isfinite(ref)
    if use.sum() < 2 * n_bins:
        return _absent("morphology", f"only {int(use.sum())} galaxies have both p_features_pred and votes: too few to bin")
    held_out = _held_out(labelled, "p_features")
    note = (f"against the vote fraction p_features of the labelled galaxies, predicted {held_out}" if held_out else
            "against the vote fraction p_features of the labelled galaxies (in-sample: the probe was fitted to them)")
    if "z" in catalog.columns:
        note += "; a simulated survey, but its votes (not its true morphology) are the reference, as for real data"
    error = np.abs(pred[use] - ref[use])
    disagree = (pred[use] > 0.5) != (ref[use] > 0.5)  # the predicted majority vote is not the voters'
    return {
        "available": True,
        "what": "morphology",
        "trust_column": "trust_morphology",
        "reference": "p_features",
        "note": note,
        "n": int(use.sum()),
        "bins": _per_bin(trust[use], error, n_bins, {"disagree_fraction": disagree}),
    }


def verdict(photoz: dict[str, Any]) -> str:
    """One line, from the numbers, on whether low trust marks bad photo-z."""
    if not photoz.get("available"):
        return f"trust not validated: {photoz.get('note', 'no photo-z')}"
    auc = photoz["auc"]["catastrophic"]
    name = f"|dz| > {CATASTROPHIC_DZ}"
    if auc is None:
        auc, name = photoz["auc"]["outlier"], f"|dz| > {OUTLIER_DZ}"
    low, high = photoz["bins"][0], photoz["bins"][-1]
    medians = (f"median |dz| {low['median_error']:.3f} in the lowest-trust bin ({low['share']:.0%} of galaxies, "
               f"trust <= {low['trust_max']:.2f}) vs {high['median_error']:.3f} in the highest")
    if auc is None:
        return f"trust not validated: no photo-z outliers among {photoz['n']} galaxies; {medians}"
    falls = low["median_error"] > high["median_error"]
    if auc >= GOOD_AUC and falls:
        head = "low trust marks bad photo-z"
    elif auc >= USELESS_AUC and falls:
        head = "low trust weakly marks bad photo-z"
    else:
        head = "trust does not mark bad photo-z"
    return f"{head}: AUC {auc:.2f} for {name} (vs {photoz['reference']}); {medians}"


def validate_trust(catalog: pd.DataFrame, n_bins: int = 10, labelled: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Everything above: {"photoz": .., "morphology": .., "verdict": str}. `labelled`: the atlas's
    record of how labelled galaxies were predicted (manifest stages.probes.labelled_predictions)."""
    photoz = photoz_error_by_trust(catalog, n_bins, labelled)
    return {"photoz": photoz, "morphology": morphology_error_by_trust(catalog, n_bins, labelled),
            "verdict": verdict(photoz)}
