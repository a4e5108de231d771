"""The report card of an atlas: does its encoder beat raw pixels on this survey's own labels?

Every label column the config declares (`galexplore.config.label_kinds`: the `[probes] redshift`,
the `[probes] morphology` vote fractions and flags, the `[probes] categorical` classes, a
`[trust] labels` fraction) is scored by `galexplore.scoring.card`'s protocol
(kNN k = 20 cosine, stratified 5-fold; a linear probe on the same folds; precision@10 per class)
in up to four spaces, on the same seeded sample of labelled galaxies:

- ``encoder``: the atlas's representations (``embeddings.npy``);
- ``search``: the reduced space the neighbours, the gallery and the map use, where the atlas
  reduces dimensions (``embeddings_reduced.npy``);
- ``pixels``: raw-pixel PCA-128 of the same normalised crops the encoder sees;
- ``untrained``: the same network with random weights (seeded), read out as the atlas is.

Beside the scores: the health of the representations (`galexplore.scoring.health`) and, where
the atlas reduces dimensions, how many of each galaxy's 10 most similar galaxies the reduced
space keeps (`search_agreement`). `summary_lines` says it in a few sentences, for the CLI, the
report and the explorer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from galexplore.labels import class_text, labelled_classes
from galexplore.config import Config
from galexplore.config.label_kinds import label_columns
from galexplore.scoring import card
from galexplore.scoring.health import health

PIXEL_DIM = 128  # raw-pixel PCA dimensions, as in the and the literature's baseline
HEALTH_ROWS = 20_000  # rows (a seeded sample) the encoder's health is measured on
AGREEMENT_QUERIES = 500  # galaxies whose top-10 is compared between the reduced and the full space
AGREEMENT_GOAL = 0.95
REFERENCE_BLOCK = 65_536  # reference rows compared at once
SPACES = ("encoder", "search", "pixels", "untrained")

# per label kind: the headline figure, and whether higher is better
HEADLINE = {"categorical": ("balanced_accuracy", True), "redshift": ("sigma_mad", False), "fraction": ("auc", True)}

__all__ = ["AGREEMENT_GOAL", "card_frame", "card_text", "label_columns", "labelled", "report_card", "score_label",
           "search_agreement", "summary_lines"]


def labelled(values: pd.Series, kind: str, unlabelled: tuple[str, ...] = ()) -> np.ndarray:
    """Which rows carry a label: a finite number, or (classes, `galexplore.labels`) a value
    present and not in `unlabelled`.

    >>> labelled(pd.Series(["spiral", "", None, "unknown", 3]), "categorical", ("unknown",)).tolist()
    [True, False, False, False, True]
    """
    if kind != "categorical":
        return np.isfinite(pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64))
    return labelled_classes(values, unlabelled)


def score_label(x: np.ndarray, values: np.ndarray, kind: str, seed: int, linear: bool = True) -> dict[str, Any]:
    """`card`'s scores of one label of `kind` (values (N,)) from representations `x` (N, D)."""
    if kind == "redshift":
        return card.redshift_scores(x, values.astype(np.float64), seed=seed, linear=linear)
    if kind == "fraction":
        return card.fraction_scores(x, values.astype(np.float64), seed=seed, linear=linear)
    return card.categorical_scores(x, class_text(pd.Series(values)).astype(str), seed=seed, linear=linear)


def search_agreement(full: np.ndarray, reduced: np.ndarray, seed: int = 0, at: int = 10,
                     queries: int = AGREEMENT_QUERIES) -> float:
    """The mean share of a galaxy's `at` most similar galaxies (cosine, itself excluded) in the
    full space that the reduced space also ranks in its top `at`, over a seeded sample of queries.

    >>> x = np.random.default_rng(1).normal(size=(300, 8)).astype(np.float32)
    >>> search_agreement(x, x), search_agreement(x, x[:, :1]) < 0.5
    (1.0, True)
    """
    n = len(full)
    at = min(at, n - 1)
    rows = np.sort(np.random.default_rng([seed, 0xA6]).permutation(n)[: min(queries, n)])

    def top(space: np.ndarray) -> np.ndarray:
        """The `at` most similar of each query row, by blocks of the reference (an atlas's
        arrays are memory maps: never held whole in memory)."""
        query = card.unit_rows(space[rows])
        best = np.full((len(rows), at), -np.inf, dtype=np.float32)
        index = np.zeros((len(rows), at), dtype=np.int64)
        for start in range(0, n, REFERENCE_BLOCK):
            stop = min(start + REFERENCE_BLOCK, n)
            sims = query @ card.unit_rows(space[start:stop]).T  # (q, block)
            mine = (rows >= start) & (rows < stop)
            sims[np.flatnonzero(mine), rows[mine] - start] = -np.inf  # itself
            sims = np.concatenate([best, sims], axis=1)
            keep = np.argpartition(-sims, at - 1, axis=1)[:, :at]
            index = np.take_along_axis(np.concatenate([index, np.arange(start, stop)[None].repeat(len(rows), 0)], axis=1),
                                       keep, axis=1)
            best = np.take_along_axis(sims, keep, axis=1)
        return index

    a, b = top(np.asarray(full)), top(np.asarray(reduced))
    return float(np.mean([len(np.intersect1d(p, q)) / at for p, q in zip(a, b)]))


def _sample(masks: list[np.ndarray], limit: int, seed: int) -> np.ndarray:
    """Up to `limit` rows carrying some label (seeded), in row order."""
    any_label = np.logical_or.reduce(masks) if masks else np.zeros(0, dtype=bool)
    rows = np.flatnonzero(any_label)
    if len(rows) > limit:
        rows = np.sort(np.random.default_rng([seed, 0xCA2D]).choice(rows, size=limit, replace=False))
    return rows


def report_card(
    config: Config,
    catalog: pd.DataFrame,
    embeddings: np.ndarray,
    reduced: np.ndarray | None = None,
    baselines: dict[str, Callable[[np.ndarray], np.ndarray]] | None = None,
    log: Callable[[str], None] = lambda line: None,
) -> dict[str, Any]:
    """The card: scores per label column and space, health, search-space agreement and a verdict.

    `baselines` maps a space name ("pixels", "untrained") to a function giving the representations
    (len(rows), D) of catalog rows; those not given are not scored (an atlas built from given
    embeddings has no images to read).
    """
    seed, cc = config.seed, config.card
    columns = label_columns(config, catalog)
    masks = [labelled(catalog[c], kind, config.probes.unlabelled) for c, kind in columns]
    rows = _sample(masks, cc.rows, seed)
    spaces: dict[str, np.ndarray] = {}
    if len(rows):
        spaces["encoder"] = np.asarray(embeddings[rows], dtype=np.float32)
        if reduced is not None:
            spaces["search"] = np.asarray(reduced[rows], dtype=np.float32)
        for name, represent in (baselines or {}).items():
            log(f"report card: the {name} baseline on {len(rows):,} galaxies")
            spaces[name] = np.asarray(represent(rows), dtype=np.float32)
    labels: dict[str, Any] = {}
    for (column, kind), mask in zip(columns, masks):
        keep = mask[rows]
        entry: dict[str, Any] = {"kind": kind, "n": int(keep.sum())}
        if entry["n"] < 2 * card.FOLDS:
            entry["note"] = f"{entry['n']} labelled galaxies in the sample: too few to score"
        else:
            values = catalog[column].to_numpy()[rows][keep]
            for name, x in spaces.items():
                log(f"report card: {column} on the {name} space")
                entry[name] = score_label(x[keep], values, kind, seed, cc.linear)
        labels[column] = entry
    sample = np.sort(np.random.default_rng([seed, 0x4EA1]).permutation(len(embeddings))[:HEALTH_ROWS])
    result: dict[str, Any] = {
        "protocol": {"k": card.K, "folds": card.FOLDS, "precision_at": card.PRECISION_AT, "seed": seed,
                     "rows": int(len(rows)), "pixel_dim": PIXEL_DIM},
        "spaces": [s for s in SPACES if s in spaces],
        "labels": labels,
        "health": {"encoder": health(np.asarray(embeddings[sample], dtype=np.float32), seed)},
    }
    for name in ("pixels", "untrained"):
        if name in spaces:
            result["health"][name] = health(spaces[name], seed)
    if reduced is not None:
        result["search_agreement"] = {
            "top10": search_agreement(embeddings, reduced, seed), "goal": AGREEMENT_GOAL,
            "dims": [int(embeddings.shape[1]), int(reduced.shape[1])],
        }
    result["verdict"] = verdict(result)
    return result


def headline(entry: dict[str, Any], space: str) -> float | None:
    """The label's headline kNN figure in `space` (balanced accuracy, sigma_MAD or AUC)."""
    metric, _ = HEADLINE[entry["kind"]]
    value = (entry.get(space) or {}).get("knn", {}).get(metric)
    return None if value is None else float(value)


def verdict(result: dict[str, Any]) -> dict[str, Any]:
    """Per label, the encoder's headline figure over the pixels' (and the untrained network's),
    as a ratio where > 1 means better (for sigma_MAD, pixels' over the encoder's)."""
    out: dict[str, Any] = {}
    for column, entry in result["labels"].items():
        mine = headline(entry, "encoder")
        if mine is None:
            continue
        _, higher = HEADLINE[entry["kind"]]
        line: dict[str, Any] = {"metric": HEADLINE[entry["kind"]][0], "encoder": mine}
        for other in ("pixels", "untrained"):
            theirs = headline(entry, other)
            if theirs is not None and mine > 0 and theirs > 0:
                line[other] = theirs
                line[f"vs_{other}"] = mine / theirs if higher else theirs / mine
        out[column] = line
    return out


def summary_lines(result: dict[str, Any]) -> list[str]:
    """The card in a few sentences: per label, the encoder against pixels and untrained; the
    health flags; the search space's agreement. Plain text (escape it for a page)."""
    lines = []
    for column, line in result.get("verdict", {}).items():
        metric = line["metric"].replace("_", " ")
        text = f"{column}: kNN {metric} {line['encoder']:.3f}"
        for other in ("pixels", "untrained"):
            if other in line:
                ratio = line[f"vs_{other}"]
                word = "better than" if ratio > 1.02 else "worse than" if ratio < 0.98 else "level with"
                text += f"; {word} {other} ({line[other]:.3f}, {ratio:.2f}x)"
        lines.append(text)
    for column, entry in result.get("labels", {}).items():
        if "note" in entry:
            lines.append(f"{column}: {entry['note']}")
    encoder = result.get("health", {}).get("encoder", {})
    if encoder:
        lines.append(f"health: random pairs' mean cosine {encoder['random_cosine']['mean']:.3f}, "
                     f"effective rank {encoder['effective_rank']:.1f} of {encoder['dim']}, "
                     f"uniformity {encoder['uniformity']:.2f}")
        lines.extend(encoder.get("flags", []))
    agreement = result.get("search_agreement")
    if agreement:
        full, small = agreement["dims"]
        ok = "" if agreement["top10"] >= agreement["goal"] else f" (below {agreement['goal']:.2f}: set embed.pca_dim = 0)"
        lines.append(f"search space: {small} of {full} dims keeps {agreement['top10']:.1%} of each galaxy's 10 most similar{ok}")
    return lines


SPACE_NAMES = {"encoder": "encoder", "search": "encoder, search space", "pixels": f"raw-pixel PCA-{PIXEL_DIM}",
               "untrained": "same network, untrained"}


def card_frame(result: dict[str, Any], column: str) -> pd.DataFrame:
    """One label's scores as a table: a row per space, a column per figure (NaN where absent)."""
    entry = result["labels"][column]
    figures = {"categorical": [("knn", "accuracy"), ("knn", "balanced_accuracy"), ("linear", "accuracy"),
                               ("linear", "balanced_accuracy")],
               "redshift": [("knn", "sigma_mad"), ("knn", "outlier_fraction"), ("linear", "sigma_mad"),
                            ("linear", "outlier_fraction")],
               "fraction": [("knn", "auc"), ("linear", "auc")]}[entry["kind"]]
    rows = {}
    for space in result["spaces"]:
        scores = entry.get(space) or {}
        row = {f"{how} {metric.replace('outlier_fraction', 'eta').replace('_', ' ')}":
               (scores.get(how) or {}).get(metric, np.nan) for how, metric in figures}
        for name, share in (scores.get("precision_at_10") or {}).items():
            row[f"p@10 {name}"] = share
        rows[SPACE_NAMES[space]] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def card_text(result: dict[str, Any]) -> str:
    """The whole card as plain text: a table per scored label, then the summary lines."""
    protocol = result["protocol"]
    parts = [f"report card: kNN (k = {protocol['k']}, cosine, stratified {protocol['folds']}-fold) and a "
             f"linear probe on {protocol['rows']:,} labelled galaxies (seed {protocol['seed']})"]
    for column, entry in result["labels"].items():
        if "note" in entry:
            continue
        classes = entry.get("encoder", {}).get("classes")
        counts = f", classes {classes}" if classes else ""
        parts.append(f"\n{column} ({entry['kind']}, {entry['n']:,} labelled{counts})")
        parts.append(card_frame(result, column).to_string(float_format=lambda v: f"{v:.3f}", na_rep="-"))
    if result.get("baselines_note"):
        parts.append(f"\nno baselines: {result['baselines_note']}")
    parts.append("")
    parts.extend(summary_lines(result))
    return "\n".join(parts)
