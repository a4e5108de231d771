"""Is a representation space healthy? Collapse and under-training, measured without labels.

- **uniformity** (Wang & Isola 2020, arXiv 2005.10242): log E exp(-t ||u - v||^2) over random
  pairs of unit vectors, t = 2; about -4 for points spread evenly on a high-dimensional sphere
  (the limit is -2t = -4), 0 for a space collapsed to one point;
- **alignment** (same paper): E ||u - u+||^2 over two augmented views of the same galaxy; 0 is
  perfectly invariant (a collapsed space is too, which is why it is read beside uniformity);
- **cosine similarity** of random pairs (its mean and percentiles) and of each galaxy to its
  nearest neighbour and its 10th: a collapsed space has random pairs nearly as similar as
  neighbours, and galleries that read "sim 0.987-0.989";
- **effective rank** (Roy & Vetterli 2007) of the covariance: exp of the entropy of its normalised
  eigenvalues, between 1 (one direction holds everything) and D.

`flags` turns these into warnings by stated thresholds (COLLAPSE_*).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from galexplore.scoring.card import unit_rows

#: random pairs drawn for the pair statistics (seeded)
PAIRS = 20_000
#: rows the neighbour statistics are computed for (seeded sample; their neighbours from all rows)
NEIGHBOUR_ROWS = 2_000
UNIFORMITY_T = 2.0
#: a space whose random pairs have a mean cosine similarity above this is collapsed: its gallery
#: similarities carry no information (the demo's collapsed encoder had 0.969)
COLLAPSE_RANDOM_COSINE = 0.9
#: an effective rank below this (of any width) is collapsed onto a few directions (the demo's
#: collapsed encoder had 4.8 of 512)
COLLAPSE_EFFECTIVE_RANK = 10.0
#: a uniformity above this (t = 2) is close to one point (the collapsed demo encoder: about -0.1)
COLLAPSE_UNIFORMITY = -0.5

__all__ = ["alignment", "effective_rank", "flags", "health", "uniformity"]


def effective_rank(x: np.ndarray) -> float:
    """exp(entropy) of the normalised eigenvalues of the covariance of `x` (N, D).

    >>> round(effective_rank(np.eye(4)[np.arange(400) % 4]), 3)  # four equal directions (less the mean)
    3.0
    """
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean(axis=0)
    s = np.linalg.svd(x, compute_uv=False) ** 2
    s = s[s > s.max() * 1e-12] if s.max() > 0 else s[:0]
    if not len(s):
        return 0.0
    p = s / s.sum()
    return float(np.exp(-(p * np.log(p)).sum()))


def _pairs(n: int, seed: int, count: int = PAIRS) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([seed, 0x9A1])
    a = rng.integers(0, n, count)
    b = (a + rng.integers(1, n, count)) % n  # never a row with itself
    return a, b


def uniformity(x: np.ndarray, seed: int = 0, t: float = UNIFORMITY_T) -> float:
    """log E exp(-t ||u - v||^2) over seeded random pairs of the unit rows of `x` (N, D)."""
    u = unit_rows(x).astype(np.float64)
    a, b = _pairs(len(u), seed)
    d2 = ((u[a] - u[b]) ** 2).sum(axis=1)
    return float(np.log(np.mean(np.exp(-t * d2))))


def alignment(views_a: np.ndarray, views_b: np.ndarray) -> float:
    """E ||u - u+||^2 between the unit rows of two views (N, D) of the same galaxies."""
    a, b = unit_rows(views_a).astype(np.float64), unit_rows(views_b).astype(np.float64)
    return float(((a - b) ** 2).sum(axis=1).mean())


def health(x: np.ndarray, seed: int = 0, alignment_value: float | None = None) -> dict[str, Any]:
    """The health figures of representations `x` (N, D), N >= 2; `alignment_value` where the
    caller had two views to measure it on."""
    u = unit_rows(x)
    n = len(u)
    a, b = _pairs(n, seed)
    cos = (u[a].astype(np.float64) * u[b]).sum(axis=1)
    rows = np.random.default_rng([seed, 0x9A2]).permutation(n)[: min(n, NEIGHBOUR_ROWS)]
    sims = u[rows] @ u.T  # (R, N)
    sims[np.arange(len(rows)), rows] = -np.inf  # itself
    at = min(10, n - 1)
    top = -np.sort(-np.partition(sims, -at, axis=1)[:, -at:], axis=1)  # (R, at), best first
    out: dict[str, Any] = {
        "n": int(n),
        "dim": int(u.shape[1]),
        "uniformity": uniformity(x, seed),
        "random_cosine": {"mean": float(cos.mean()), **{f"p{q}": float(np.percentile(cos, q)) for q in (5, 50, 95)}},
        "neighbour_cosine": {"first": float(top[:, 0].mean()), "tenth": float(top[:, -1].mean())},
        "effective_rank": effective_rank(x),
    }
    if alignment_value is not None:
        out["alignment"] = float(alignment_value)
    out["flags"] = flags(out)
    return out


def flags(figures: dict[str, Any]) -> list[str]:
    """Warnings, each a sentence, for the figures of `health` that cross a COLLAPSE_* threshold."""
    found = []
    mean_cos = figures["random_cosine"]["mean"]
    if mean_cos > COLLAPSE_RANDOM_COSINE:
        found.append(f"collapsed: random pairs of galaxies have a mean cosine similarity of {mean_cos:.3f} "
                     f"(healthy: at most {COLLAPSE_RANDOM_COSINE})")
    rank = figures["effective_rank"]
    # n rows span at most n - 1 directions: a small sample is held to half of that
    least = min(COLLAPSE_EFFECTIVE_RANK, figures["dim"], figures["n"] // 2)
    if rank < least:
        found.append(f"collapsed: the representations' effective rank is {rank:.1f} of {figures['dim']} "
                     f"(healthy: at least {least:g})")
    if figures["uniformity"] > COLLAPSE_UNIFORMITY:
        found.append(f"collapsed: uniformity {figures['uniformity']:.2f} (healthy: at most {COLLAPSE_UNIFORMITY})")
    return found
