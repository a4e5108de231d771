"""Per-galaxy scores from the representation space: trust ("near labelled data") and anomaly.

Trust asks whether a prediction made from labelled galaxies can be believed for this galaxy: a
galaxy whose nearest labelled galaxies are as close as labelled galaxies usually are to each other
sits inside the labelled set's coverage; one farther than every labelled galaxy is from its own
labelled neighbours is outside it. The score is calibrated on the labelled galaxies themselves
(a conformal p-value): trust = the share of labelled galaxies whose own distance to their k
nearest other labelled galaxies is at least this galaxy's. So trust is in [0, 1], falls as a
galaxy moves away from the labelled set, is uniform over the labelled galaxies, and a threshold
of 0.05 reads "farther from labelled data than 95% of the labelled galaxies are".

Anomaly reads straight off the neighbour graph the atlas already holds, so it costs O(N k) at
any N and needs no second search. Two density scores are offered: the mean cosine distance to
the k nearest galaxies (kNN), and the local outlier factor (LOF), which divides a galaxy's kNN
density by its neighbours'. The density of a representation space varies a lot (bright,
well-resolved galaxies spread out; faint ones crowd together), and LOF judges each galaxy against
its own neighbourhood instead of one global scale; on the demo atlas it puts more of the injected
rare objects in the top 1% (the README gives the figures), so it is the default.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from galexplore.labels import is_numeric, labelled_classes
from galexplore.maps.neighbors import build_index

SEARCH_ROWS = 65536  # query rows per search call: bounds memory at that many x (k + 1)


def labelled_neighbours(
    x: np.ndarray, labelled: np.ndarray, k: int, *, method: str = "auto", exact_max: int = 250_000,
    nlist: int = 0, nprobe: int = 16, seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest labelled rows of every row of `x`: (rows (N, k) int64, similarities (N, k)).

    A labelled row is never its own neighbour (leave-one-out). Needs at least 2 labelled rows;
    k is capped at the labelled count less one.
    """
    labelled_rows = np.flatnonzero(labelled)
    if len(labelled_rows) < 2:
        raise ValueError(f"needs at least 2 labelled rows, found {len(labelled_rows)}")
    k = min(k, len(labelled_rows) - 1)
    index = build_index(
        np.ascontiguousarray(x[labelled_rows], dtype=np.float32), method=method, exact_max=exact_max,
        nlist=nlist, nprobe=nprobe, seed=seed,
    )
    rows = np.empty((len(x), k), dtype=np.int64)
    sims = np.empty((len(x), k), dtype=np.float32)
    for start in range(0, len(x), SEARCH_ROWS):
        stop = min(start + SEARCH_ROWS, len(x))
        found, found_sims = index.search(np.asarray(x[start:stop], dtype=np.float32), k + 1)
        found = labelled_rows[found]
        keep = found != np.arange(start, stop)[:, None]  # a labelled row finding itself
        keep[keep.all(axis=1), -1] = False  # rows that did not find themselves drop their last
        rows[start:stop] = found[keep].reshape(stop - start, k)
        sims[start:stop] = found_sims[keep].reshape(stop - start, k)
    return rows, sims


def distance_to_labelled(x: np.ndarray, labelled: np.ndarray, k: int, **search: object) -> np.ndarray:
    """Mean cosine distance (N,) from each row of `x` to its k nearest labelled rows.

    Labelled rows leave themselves out, so their distances are the calibration set that
    `trust_from_distance` compares everyone against.
    """
    _, sims = labelled_neighbours(x, labelled, k, **search)
    return (1.0 - sims).mean(axis=1).astype(np.float32)


def trust_from_distance(distance: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """The share of `reference` distances at least as large as each of `distance`, in [0, 1].

    >>> trust_from_distance(np.array([0.0, 0.25, 0.5, 9.0]), np.array([0.1, 0.2, 0.3, 0.4]))
    array([1. , 0.5, 0. , 0. ], dtype=float32)
    """
    ref = np.sort(np.asarray(reference, dtype=np.float64))
    below = np.searchsorted(ref, np.asarray(distance, dtype=np.float64), side="left")
    return (1.0 - below / len(ref)).astype(np.float32)


def column_name(kind: str) -> str:
    """The catalog column of a label kind's trust: `trust_spec_z` for "spec-z".

    >>> column_name("spec-z"), column_name("morphology")
    ('trust_spec_z', 'trust_morphology')
    """
    return "trust_" + re.sub(r"[^0-9a-zA-Z]+", "_", kind).strip("_").lower()


def labelled_masks(catalog: pd.DataFrame, labels: Mapping[str, str], *, categorical: Iterable[str] = (),
                   unlabelled: Iterable[str] = ()) -> dict[str, np.ndarray]:
    """For each label kind, which rows carry it: a finite value in a numeric column; in a class
    column (one of `categorical`, or any column of text) a value present and not one of
    `unlabelled` (`galexplore.labels.labelled_classes`).

    A kind whose column is absent from the catalog has no labelled rows.
    """
    categorical, unlabelled = set(categorical), tuple(unlabelled)
    masks = {}
    for kind, column in labels.items():
        if column not in catalog:
            masks[kind] = np.zeros(len(catalog), dtype=bool)
        elif column in categorical or not is_numeric(catalog[column]):
            masks[kind] = labelled_classes(catalog[column], unlabelled)
        else:
            values = pd.to_numeric(catalog[column], errors="coerce").to_numpy(dtype=np.float64)
            masks[kind] = np.isfinite(values)
    return masks


def label_availability(masks: Mapping[str, np.ndarray], n: int) -> np.ndarray:
    """Per row, which labels it has: "none", or the kinds joined with "+" ("spec-z+morphology").

    >>> label_availability({"spec-z": np.array([True, True, False]),
    ...                     "morphology": np.array([False, True, False])}, 3).tolist()
    ['spec-z', 'spec-z+morphology', 'none']
    """
    out = np.full(n, "", dtype=object)
    for kind, mask in masks.items():
        out[mask] = np.where(out[mask] == "", kind, out[mask] + "+" + kind)
    out[out == ""] = "none"
    return out


def trust_scores(
    x: np.ndarray, masks: Mapping[str, np.ndarray], k: int, **search: object
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Trust columns for every label kind and a combined `trust` (labelled = any kind).

    Returns the columns (float32 in [0, 1]; NaN throughout for a kind with fewer than 2
    labelled rows) and, for each such kind, a note saying why it is undefined.
    """
    columns, notes = {}, {}
    kinds = {column_name(kind): mask for kind, mask in masks.items()}
    kinds["trust"] = np.logical_or.reduce(list(masks.values())) if masks else np.zeros(len(x), dtype=bool)
    for name, mask in kinds.items():
        if mask.sum() < 2:
            columns[name] = np.full(len(x), np.nan, dtype=np.float32)
            notes[name] = f"{int(mask.sum())} labelled galaxies: at least 2 are needed, so {name} is undefined (NaN)"
            continue
        distance = distance_to_labelled(x, mask, k, **search)
        columns[name] = trust_from_distance(distance, distance[mask])
    return columns, notes


def local_outlier_factor(neighbors: np.ndarray, similarities: np.ndarray, k: int) -> np.ndarray:
    """LOF (Breunig et al. 2000) with cosine distance, from a neighbour graph (best first, self excluded).

    reach(p, o) = max(d(p, o), k-distance(o)); lrd(p) = 1 / mean reach(p, o) over p's k nearest;
    LOF(p) = mean lrd(o) / lrd(p). About 1 inside a uniform cluster, larger for outliers.
    """
    nb = np.asarray(neighbors[:, :k])
    distance = 1.0 - np.asarray(similarities[:, :k], dtype=np.float64)
    k_distance = distance[:, -1]
    reach = np.maximum(distance, k_distance[nb])
    lrd = 1.0 / np.maximum(reach.mean(axis=1), 1e-12)
    return (lrd[nb].mean(axis=1) / lrd).astype(np.float32)


def anomaly_scores(similarities: np.ndarray, k: int) -> np.ndarray:
    """Mean cosine distance to the k nearest neighbours, from a neighbour graph's similarities.

    `similarities` is (N, >= k), best first, self excluded. Higher = rarer.

    >>> anomaly_scores(np.array([[0.9, 0.8, 0.1], [0.5, 0.3, 0.2]]), k=2)
    array([0.15, 0.6 ], dtype=float32)
    """
    sims = np.asarray(similarities[:, :k], dtype=np.float32)
    return (1.0 - sims).mean(axis=1).astype(np.float32)
