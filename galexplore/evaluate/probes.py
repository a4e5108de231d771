"""Linear probes on an atlas's representations: which columns are probed, held-out scores, label
sweeps and cross-fitted predictions of every galaxy.

A linear probe asks what a representation makes linearly readable (Hayat et al. 2021): photo-z
as a binned classifier, morphology as a logistic, a class column as a multinomial logistic. The
probe itself and its fits are `galexplore.evaluate.linear_probe`, the redshift bins
`galexplore.evaluate.photoz`; this module decides what is probed (`probed_targets`), on which
rows it is fitted and scored (`split_rows`, `sweep_rows`, `fold_ids`) and what is reported
(`score`, `evaluate_probes`, `predict_all`). The names of both modules are importable from here
too. The kNN probes in `galexplore.scoring.knn` ask the complementary question: what the
neighbourhoods already know.

`predict_all` cross-fits: a labelled galaxy is predicted by a probe that never saw its label
(K-fold, `CROSS_FIT_FOLDS`), so z_phot - z_spec on the map is an honest error, not a residual.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from galexplore.evaluate.linear_probe import (
    CATEGORICAL,
    KINDS,
    MORPHOLOGY,
    REDSHIFT,
    LinearProbe,
    fit_class_probe,
    fit_morphology_probe,
    fit_redshift_probe,
)
from galexplore.evaluate.photoz import (
    Z_BINS,
    Z_MAX,
    Z_SMOOTHING_BINS,
    decode_redshift,
    encode_redshift,
    redshift_bins,
    smoothed_targets,
)
from galexplore.config import ProbesConfig
from galexplore.labels import class_names, encode_classes
from galexplore.scoring.figures import accuracy, balanced_accuracy, photoz_metrics

#: the catalog columns probed by default, the config's defaults (`[probes] redshift` and
#: `morphology` name others, e.g. a 0/1 ring flag; `galexplore.config.label_kinds`)
MORPHOLOGY_COLUMNS = ProbesConfig().morphology
REDSHIFT_COLUMN = ProbesConfig().redshift
#: fewer labelled rows than this and a kind is not probed
MIN_LABELLED = 20
#: folds of the cross-fitted predictions of labelled rows (`predict_all`)
CROSS_FIT_FOLDS = 5
#: the catalog column a task is trained and scored on by default
DEFAULT_COLUMNS = {REDSHIFT: REDSHIFT_COLUMN, MORPHOLOGY: MORPHOLOGY_COLUMNS[0]}


def class_metrics(pred: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    """Accuracy and balanced accuracy (the mean recall over the true classes) of predicted classes, and n.

    >>> class_metrics(np.array([0, 0, 0, 1]), np.array([0, 0, 0, 0, 1, 1])[[0, 1, 4, 5]])
    {'accuracy': 0.75, 'balanced_accuracy': 0.75, 'n': 4}
    """
    pred, truth = np.asarray(pred, np.int64), np.asarray(truth, np.int64)
    return {"accuracy": accuracy(pred, truth), "balanced_accuracy": balanced_accuracy(pred, truth), "n": int(len(truth))}


def morphology_metrics(p_pred: np.ndarray, p_true: np.ndarray) -> dict[str, Any]:
    """Accuracy of p_pred > 0.5 against p_true > 0.5, ROC AUC of p_pred for p_true > 0.5 (None when
    the truth has one class only) and n.

    >>> morphology_metrics(np.array([0.9, 0.2, 0.6]), np.array([0.8, 0.1, 0.3]))
    {'accuracy': 0.6666666666666666, 'roc_auc': 1.0, 'n': 3}
    """
    from sklearn.metrics import roc_auc_score

    p_pred, truth = np.asarray(p_pred, np.float64), np.asarray(p_true, np.float64) > 0.5
    auc = float(roc_auc_score(truth, p_pred)) if 0 < truth.sum() < len(truth) else None
    return {"accuracy": accuracy(p_pred > 0.5, truth), "roc_auc": auc, "n": int(len(truth))}


def score(kind: str, pred: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    """`photoz_metrics` of z_phot (kind "redshift"), `morphology_metrics` of a vote fraction
    ("morphology") or `class_metrics` of class indices ("categorical")."""
    if kind == REDSHIFT:
        return photoz_metrics(pred, truth)
    if kind == MORPHOLOGY:
        return morphology_metrics(pred, truth)
    if kind == CATEGORICAL:
        return class_metrics(pred, truth)
    raise ValueError(f"unknown probe kind {kind!r}; expected one of {', '.join(map(repr, KINDS))}")


def split_rows(rows: np.ndarray, test_fraction: float = 0.3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of the row indices `rows` into (train_rows, test_rows), each sorted.

    >>> train, test = split_rows(np.arange(10), 0.3, seed=0)
    >>> len(train), len(test), sorted([*train, *test]) == list(range(10))
    (7, 3, True)
    """
    rows = np.asarray(rows)
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if len(rows) < 2:
        raise ValueError(f"need at least 2 rows to split, got {len(rows)}")
    n_test = min(max(int(round(test_fraction * len(rows))), 1), len(rows) - 1)
    order = np.random.default_rng(seed).permutation(len(rows))
    return np.sort(rows[order[n_test:]]), np.sort(rows[order[:n_test]])


@dataclass(frozen=True)
class ProbeResult:
    """One probe fitted on `n_train` rows and scored on `test_rows` of the catalog.

    `predictions` are the test rows' z_phot, vote fractions or class indices, `widths` the z_phot
    pdf widths (redshift) or the predicted class's probability (categorical), `metrics` those of
    `score`.
    """

    column: str
    kind: str
    n_train: int
    test_rows: np.ndarray
    predictions: np.ndarray
    widths: np.ndarray | None
    metrics: dict[str, Any]


@dataclass(frozen=True)
class Target:
    """A probed catalog column: its kind, its labelled rows and its values (N,) float64 (for a
    class column, each row's class index into `classes`, NaN where it has no label)."""

    column: str
    kind: str
    rows: np.ndarray
    values: np.ndarray
    classes: tuple[Any, ...] = ()


def _labelled_rows(catalog: Any, column: str) -> np.ndarray:
    if column not in catalog:
        return np.empty(0, dtype=np.int64)
    return np.flatnonzero(np.isfinite(np.asarray(catalog[column], dtype=np.float64)))


def _default_kind(column: str) -> str:
    return REDSHIFT if column == REDSHIFT_COLUMN else MORPHOLOGY


def _fit(kind: str, x: np.ndarray, values: np.ndarray, seed: int, n_classes: int) -> LinearProbe:
    if kind == REDSHIFT:
        return fit_redshift_probe(x, values, seed=seed)
    if kind == CATEGORICAL:
        return fit_class_probe(x, values, n_classes, seed=seed)
    return fit_morphology_probe(x, values, seed=seed)


def probe_column(x: np.ndarray, values: np.ndarray, column: str, train_rows: np.ndarray, test_rows: np.ndarray,
                 *, seed: int = 0, kind: str | None = None, n_classes: int = 0) -> ProbeResult:
    """Fit the probe of `column` on x[train_rows] and score it on x[test_rows].

    `kind` defaults to "redshift" for z_spec and "morphology" for any other column; a
    "categorical" column's `values` are class indices in [0, n_classes)."""
    kind = kind or _default_kind(column)
    probe = _fit(kind, x[train_rows], values[train_rows], seed, n_classes)
    pred, *width = _outputs(probe, x[test_rows])
    metrics = score(probe.kind, pred, values[test_rows])
    return ProbeResult(column, probe.kind, len(train_rows), test_rows, pred, width[0] if width else None, metrics)


def sweep_rows(
    catalog: Any, column: str, label_counts: Iterable[int], *, seed: int = 0, test_fraction: float = 0.3,
    subset_seed: int | None = None,
) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """(test_rows, {n: train_rows}) of a label sweep, shared by the probes and the supervised
    baseline: the finite rows of `column` split by `split_rows(seed)`, and the first n of the train
    rows' permutation seeded with [subset_seed, 1] (counts above the train size are skipped).

    subset_seed defaults to `seed`; another value draws other subsets of the same train rows, so
    repeats of a sweep are scored on the same test rows.
    """
    return _sweep(_labelled_rows(catalog, column), label_counts, seed, test_fraction, subset_seed)


def _sweep(rows: np.ndarray, label_counts: Iterable[int], seed: int, test_fraction: float,
           subset_seed: int | None = None) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """`sweep_rows` of the labelled `rows`."""
    train, test = split_rows(rows, test_fraction, seed)
    order = np.random.default_rng([seed if subset_seed is None else subset_seed, 1]).permutation(train)
    return test, {int(n): order[:n] for n in label_counts if 0 < n <= len(train)}


def evaluate_probes(x: np.ndarray, catalog: Any, *, seed: int = 0, test_fraction: float = 0.3,
                    label_counts: Iterable[int] | None = None, morphology: Sequence[str] = MORPHOLOGY_COLUMNS,
                    categorical: Sequence[str] = (), unlabelled: Sequence[str] = (),
                    redshift: str = REDSHIFT_COLUMN) -> dict[str, Any]:
    """Held-out scores of the linear probes of the `redshift` column, the `morphology` columns and the
    `categorical` class columns (each present with >= `MIN_LABELLED` labelled rows; a class column
    with 2 classes at least): a JSON-able dict by column.

    Each column's labelled rows are split by `split_rows`; the probe is fitted on the train rows
    and scored on the test rows (a class column: accuracy and balanced accuracy, and its classes
    under "classes"). With `label_counts`, it is also fitted on the first n rows of a seeded
    permutation of the train rows for each n (counts above the train size are skipped) and scored
    on the same test rows, under "sweep": how the scores grow with the number of labels.
    """
    x = _checked_rows(x, catalog)
    out: dict[str, Any] = {"seed": seed, "test_fraction": test_fraction}
    for target in probed_targets(catalog, morphology, categorical, unlabelled, redshift):
        train, test = split_rows(target.rows, test_fraction, seed)

        def held_out(rows: np.ndarray) -> ProbeResult:
            return probe_column(x, target.values, target.column, rows, test, seed=seed, kind=target.kind,
                                n_classes=len(target.classes))

        result = held_out(train)
        entry: dict[str, Any] = {"kind": result.kind, "n_train": result.n_train, "n_test": len(test),
                                 "metrics": result.metrics}
        if target.kind == CATEGORICAL:
            entry["classes"] = list(target.classes)
        if label_counts is not None:
            _, subsets = _sweep(target.rows, label_counts, seed, test_fraction)
            entry["sweep"] = [{"n_train": n, "metrics": held_out(subset).metrics} for n, subset in subsets.items()]
        out[target.column] = entry
    return out


def _checked_rows(x: np.ndarray, catalog: Any) -> np.ndarray:
    """x as float32, refused unless it has one row per catalog row."""
    x = np.asarray(x, dtype=np.float32)
    if len(x) != len(catalog):
        raise ValueError(f"x has {len(x)} rows but the catalog {len(catalog)}")
    return x


def fold_ids(n: int, folds: int = CROSS_FIT_FOLDS, seed: int = 0) -> np.ndarray:
    """The fold (n,) int64 of each of n rows, 0 .. k-1 with k = min(folds, n): a permutation seeded
    with [seed, 2] dealt round-robin, so fold sizes differ by at most one. With fewer rows than
    folds, every row is its own fold (leave-one-out).

    >>> np.bincount(fold_ids(12, 5)).tolist(), sorted(fold_ids(3, 5).tolist())
    ([3, 3, 2, 2, 2], [0, 1, 2])
    """
    if n < 2 or folds < 2:
        raise ValueError(f"cross-fitting needs at least 2 rows and 2 folds, got {n} rows and {folds} folds")
    ids = np.empty(n, dtype=np.int64)
    ids[np.random.default_rng([seed, 2]).permutation(n)] = np.arange(n) % min(folds, n)
    return ids


def cross_fit_scheme(n: int, folds: int = CROSS_FIT_FOLDS) -> str:
    """How `predict_all` predicts n labelled rows, in words for the manifest.

    >>> cross_fit_scheme(200), cross_fit_scheme(3)
    ('5-fold out-of-fold', 'leave-one-out (3 labelled rows < 5 folds)')
    """
    return f"{folds}-fold out-of-fold" if n >= folds else f"leave-one-out ({n} labelled rows < {folds} folds)"


def _outputs(probe: LinearProbe, x: np.ndarray) -> list[np.ndarray]:
    """[z_phot, z_width] of a redshift probe, [class index, probability] of a class probe or [p]
    of a morphology probe on x, each (N,)."""
    pred = probe.predict(x)
    return [pred] if probe.kind == MORPHOLOGY else list(pred)


def cross_fit_column(x: np.ndarray, values: np.ndarray, column: str, rows: np.ndarray, *,
                     folds: int = CROSS_FIT_FOLDS, seed: int = 0, kind: str | None = None,
                     n_classes: int = 0) -> list[np.ndarray]:
    """The probe of `column` on every row of x (N, D): [z_phot, z_width], [class index,
    probability] or [p], each (N,) float64 (`kind` and `n_classes` as in `probe_column`).

    `rows` (the labelled rows, >= 2) are predicted out-of-fold: split by `fold_ids(len(rows),
    folds, seed)`, each fold by a probe fitted on the other folds. Every other row is predicted by
    the probe fitted on all of `rows`.
    """
    kind = kind or _default_kind(column)
    rows = np.asarray(rows)
    fold = fold_ids(len(rows), folds, seed)
    out = [np.asarray(o, np.float64) for o in _outputs(_fit(kind, x[rows], values[rows], seed, n_classes), x)]
    for k in range(int(fold.max()) + 1):
        held, kept = rows[fold == k], rows[fold != k]
        part = _outputs(_fit(kind, x[kept], values[kept], seed, n_classes), x[held])
        for full, held_part in zip(out, part, strict=True):
            full[held] = held_part
    return out


def probed_targets(catalog: Any, morphology: Sequence[str] = MORPHOLOGY_COLUMNS, categorical: Sequence[str] = (),
                   unlabelled: Sequence[str] = (), redshift: str = REDSHIFT_COLUMN) -> Iterator[Target]:
    """The `redshift` column, the `morphology` columns and the `categorical` class columns, each
    with >= `MIN_LABELLED` labelled rows (a class column: a value not empty and not one of
    `unlabelled`, of 2 classes at least)."""
    for column, kind in ((redshift, REDSHIFT), *((c, MORPHOLOGY) for c in morphology)):
        rows = _labelled_rows(catalog, column)
        if len(rows) >= MIN_LABELLED:
            yield Target(column, kind, rows, np.asarray(catalog[column], dtype=np.float64))
    for column, classes in class_columns(catalog, categorical, unlabelled).items():
        index = encode_classes(catalog[column], classes, unlabelled)
        rows = np.flatnonzero(index >= 0)
        if len(rows) >= MIN_LABELLED and len(classes) >= 2:
            yield Target(column, CATEGORICAL, rows, np.where(index >= 0, index, np.nan), tuple(classes))


def config_targets(probes: ProbesConfig) -> dict[str, Any]:
    """What a config's `[probes]` probes, as the keyword arguments of `evaluate_probes`,
    `predict_all` and `labelled_predictions`."""
    return {"redshift": probes.redshift, "morphology": probes.morphology, "categorical": probes.categorical,
            "unlabelled": probes.unlabelled}


def class_columns(catalog: Any, categorical: Sequence[str], unlabelled: Sequence[str] = ()) -> dict[str, list[Any]]:
    """The classes (`galexplore.labels.class_names`) of each `categorical` column the catalog has."""
    return {column: class_names(catalog[column], unlabelled) for column in categorical if column in catalog}


def predict_all(x: np.ndarray, catalog: Any, *, seed: int = 0, folds: int = CROSS_FIT_FOLDS,
                morphology: Sequence[str] = MORPHOLOGY_COLUMNS, categorical: Sequence[str] = (),
                unlabelled: Sequence[str] = (), redshift: str = REDSHIFT_COLUMN) -> dict[str, np.ndarray]:
    """Probe predictions for every row (N,): z_phot and z_phot_width, <column>_pred for each
    `morphology` column (p_features_pred, p_edge_on_pred by default), and <column>_pred (the class
    index into `class_columns`' classes, as a float) and <column>_prob (its probability) for each
    `categorical` column, for each column that `probed_targets` yields.

    Unlabelled rows get the probe fitted on every labelled row; labelled rows are predicted
    out-of-fold (`cross_fit_column`), so their errors are held-out errors.
    """
    x = _checked_rows(x, catalog)
    out: dict[str, np.ndarray] = {}
    for target in probed_targets(catalog, morphology, categorical, unlabelled, redshift):
        predictions = cross_fit_column(x, target.values, target.column, target.rows, folds=folds, seed=seed,
                                       kind=target.kind, n_classes=len(target.classes))
        if target.kind == REDSHIFT:
            out["z_phot"], out["z_phot_width"] = predictions
        elif target.kind == CATEGORICAL:
            out[f"{target.column}_pred"], out[f"{target.column}_prob"] = predictions
        else:
            out[f"{target.column}_pred"] = predictions[0]
    return out


def labelled_predictions(catalog: Any, folds: int = CROSS_FIT_FOLDS, morphology: Sequence[str] = MORPHOLOGY_COLUMNS,
                         categorical: Sequence[str] = (), unlabelled: Sequence[str] = (),
                         redshift: str = REDSHIFT_COLUMN) -> dict[str, str]:
    """How `predict_all` predicts each probed column's labelled rows (`cross_fit_scheme`), by column."""
    return {target.column: cross_fit_scheme(len(target.rows), folds)
            for target in probed_targets(catalog, morphology, categorical, unlabelled, redshift)}


__all__ = [
    "CATEGORICAL", "CROSS_FIT_FOLDS", "DEFAULT_COLUMNS", "KINDS", "MIN_LABELLED", "MORPHOLOGY", "MORPHOLOGY_COLUMNS",
    "REDSHIFT", "REDSHIFT_COLUMN", "Z_BINS", "Z_MAX", "Z_SMOOTHING_BINS", "LinearProbe",
    "ProbeResult", "Target", "class_columns", "class_metrics", "config_targets", "cross_fit_column", "cross_fit_scheme",
    "decode_redshift", "encode_redshift", "evaluate_probes", "fit_class_probe", "fit_morphology_probe",
    "fit_redshift_probe", "fold_ids", "labelled_predictions", "morphology_metrics", "predict_all", "probe_column",
    "probed_targets", "redshift_bins", "score", "smoothed_targets", "split_rows", "sweep_rows",
]
