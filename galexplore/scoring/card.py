"""The report card's scores: how well a representation space knows each label, by one protocol.

Every representation (the encoder's, the same network untrained, raw-pixel PCA) is scored on the
same labelled galaxies with the same folds, so the numbers can be read side by side:

- **kNN**: k = 20 nearest labelled galaxies by cosine similarity, from the other folds of a
  stratified 5-fold split (seeded); a class is their majority vote, a redshift their median, a
  vote fraction their mean;
- **linear probe**: on the same folds, a logistic regression (multinomial for classes, on the
  fraction > 0.5 for vote fractions) or a ridge regression (redshift) on the standardised
  representations;
- **precision@10** per class (categorical labels): for the galaxies of a class, the share of their
  10 most similar labelled galaxies (itself excluded) of the same class, what a user sees in the
  similar-galaxies gallery.

Metrics: accuracy and balanced accuracy (the mean of the per-class recalls, so that a space which
calls everything "elliptical" scores 1 / n_classes, not the elliptical share) for classes;
sigma_MAD and the outlier fraction eta (|dz| > 0.05) for redshift; ROC AUC for vote fractions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from galexplore.scoring.figures import balanced_accuracy, photoz_metrics

K = 20
FOLDS = 5
PRECISION_AT = 10
MIN_CLASS = 2  # a class needs this many galaxies to be scored (and to be split over folds)

__all__ = [
    "FOLDS",
    "K",
    "PRECISION_AT",
    "categorical_scores",
    "fraction_scores",
    "fold_ids",
    "redshift_scores",
    "unit_rows",
]


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (float32; an all-zero row stays zero)."""
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def fold_ids(strata: np.ndarray, folds: int = FOLDS, seed: int = 0) -> np.ndarray:
    """The fold (0 .. folds-1) of each row: stratified by `strata`, shuffled with `seed`.

    Within each stratum the rows are dealt round-robin over the folds in a seeded random order,
    so every fold holds its share of every class (sklearn's StratifiedKFold deals the same way).

    >>> f = fold_ids(np.array([0] * 10 + [1] * 5), folds=5)
    >>> [int(np.sum(f[:10] == i)) for i in range(5)], [int(np.sum(f[10:] == i)) for i in range(5)]
    ([2, 2, 2, 2, 2], [1, 1, 1, 1, 1])
    """
    strata = np.asarray(strata)
    out = np.empty(len(strata), dtype=np.int64)
    rng = np.random.default_rng([seed, 0xCA4D])
    start = 0
    for value in np.unique(strata):
        rows = rng.permutation(np.flatnonzero(strata == value))
        out[rows] = (start + np.arange(len(rows))) % folds
        start += len(rows)  # the next class starts where this one left off: folds stay even
    return out


def _similarities(reference: np.ndarray, query: np.ndarray) -> np.ndarray:
    return unit_rows(query) @ unit_rows(reference).T  # (Q, R) cosines


def _knn(reference: np.ndarray, query: np.ndarray, k: int) -> np.ndarray:
    """Indices (Q, k) of the k most similar reference rows, best first."""
    sims = _similarities(reference, query)
    k = min(k, sims.shape[1])
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1)


def _cross_validate(x: np.ndarray, folds: np.ndarray, predict) -> np.ndarray:
    """`predict(train_rows, test_rows)` for each fold, assembled into one prediction per row."""
    out: np.ndarray | None = None
    for f in np.unique(folds):
        test, train = np.flatnonzero(folds == f), np.flatnonzero(folds != f)
        pred = np.asarray(predict(train, test))
        if out is None:
            out = np.empty((len(x), *pred.shape[1:]), dtype=pred.dtype)
        out[test] = pred
    assert out is not None
    return out


def _standardise(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, std = train.mean(axis=0), train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return (train - mean) / std, (test - mean) / std


def categorical_scores(
    x: np.ndarray, labels: np.ndarray, *, k: int = K, folds: int = FOLDS, seed: int = 0, linear: bool = True
) -> dict[str, Any]:
    """kNN (and linear-probe) scores of class `labels` (N,) from representations `x` (N, D).

    Classes with fewer than MIN_CLASS galaxies are left out (listed under "dropped").
    Returns {"n", "classes": {name: count}, "knn": {"accuracy", "balanced_accuracy"},
    "linear": {...}, "precision_at_10": {name: share}, "dropped": [...]}.
    """
    labels = np.asarray(labels).astype(str)
    names, counts = np.unique(labels, return_counts=True)
    keep_names = names[counts >= MIN_CLASS]
    keep = np.isin(labels, keep_names)
    x, labels = np.asarray(x, dtype=np.float32)[keep], labels[keep]
    classes, y = np.unique(labels, return_inverse=True)
    fold = fold_ids(y, min(folds, int(np.bincount(y).min())) if len(classes) else folds, seed)
    result: dict[str, Any] = {
        "n": int(len(y)),
        "classes": {str(c): int(n) for c, n in zip(classes, np.bincount(y))},
        "dropped": [str(c) for c in names if c not in keep_names],
    }
    if len(classes) < 2:
        return result

    def knn_vote(train: np.ndarray, test: np.ndarray) -> np.ndarray:
        votes = y[train][_knn(x[train], x[test], k)]  # (Q, k)
        counts = np.stack([(votes == c).sum(axis=1) for c in range(len(classes))], axis=1)
        return np.argmax(counts, axis=1)  # ties: the smaller class index

    pred = _cross_validate(x, fold, knn_vote)
    result["knn"] = {"accuracy": float(np.mean(pred == y)),
                     "balanced_accuracy": balanced_accuracy(pred, y)}
    if linear:
        pred = _cross_validate(x, fold, lambda tr, te: _logistic(x, y, tr, te, seed).argmax(axis=1))
        result["linear"] = {"accuracy": float(np.mean(pred == y)),
                            "balanced_accuracy": balanced_accuracy(pred, y)}
    result["precision_at_10"] = precision_at(x, y, classes)
    return result


def precision_at(x: np.ndarray, y: np.ndarray, classes: np.ndarray, at: int = PRECISION_AT) -> dict[str, float]:
    """Per class: the mean share of a galaxy's `at` most similar others (itself excluded) in its class."""
    sims = _similarities(x, x)
    np.fill_diagonal(sims, -np.inf)
    at = min(at, len(x) - 1)
    top = np.argpartition(-sims, at - 1, axis=1)[:, :at]  # the set, order does not matter
    same = y[top] == y[:, None]
    return {str(c): float(same[y == i].mean()) for i, c in enumerate(classes)}


def _logistic(x: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, seed: int) -> np.ndarray:
    """Class probabilities (Q, n_classes) of a logistic regression fitted on `train`."""
    from sklearn.linear_model import LogisticRegression

    n_classes = int(y.max()) + 1
    a, b = _standardise(x[train].astype(np.float64), x[test].astype(np.float64))
    model = LogisticRegression(C=0.1, max_iter=2000, random_state=seed).fit(a, y[train])
    out = np.zeros((len(test), n_classes))
    out[:, model.classes_] = model.predict_proba(b)
    return out


def redshift_scores(
    x: np.ndarray, z: np.ndarray, *, k: int = K, folds: int = FOLDS, seed: int = 0, linear: bool = True
) -> dict[str, Any]:
    """kNN (median of the k nearest) and ridge-probe photo-z metrics of `z` (N,) from `x` (N, D).

    Folds are stratified by redshift decile.
    """
    from sklearn.linear_model import Ridge

    x, z = np.asarray(x, dtype=np.float32), np.asarray(z, dtype=np.float64)
    strata = np.searchsorted(np.quantile(z, np.linspace(0, 1, 11)[1:-1]), z)
    fold = fold_ids(strata, folds, seed)
    pred = _cross_validate(x, fold, lambda tr, te: np.median(z[tr][_knn(x[tr], x[te], k)], axis=1))
    result: dict[str, Any] = {"n": int(len(z)), "knn": photoz_metrics(pred, z)}
    if linear:
        def ridge(tr: np.ndarray, te: np.ndarray) -> np.ndarray:
            a, b = _standardise(x[tr].astype(np.float64), x[te].astype(np.float64))
            return Ridge(alpha=10.0).fit(a, z[tr]).predict(b)

        result["linear"] = photoz_metrics(_cross_validate(x, fold, ridge), z)
    return result


def fraction_scores(
    x: np.ndarray, p: np.ndarray, *, k: int = K, folds: int = FOLDS, seed: int = 0, linear: bool = True
) -> dict[str, Any]:
    """ROC AUC of p > 0.5 (a vote fraction or a 0/1 flag, (N,)) from `x` (N, D): the kNN mean of p,
    and a logistic probe's probability."""
    from sklearn.metrics import roc_auc_score

    x, p = np.asarray(x, dtype=np.float32), np.asarray(p, dtype=np.float64)
    truth = p > 0.5
    result: dict[str, Any] = {"n": int(len(p)), "positive": int(truth.sum())}
    if truth.all() or not truth.any():
        return result
    fold = fold_ids(truth, min(folds, int(truth.sum()), int((~truth).sum())), seed)
    pred = _cross_validate(x, fold, lambda tr, te: p[tr][_knn(x[tr], x[te], k)].mean(axis=1))
    result["knn"] = {"auc": float(roc_auc_score(truth, pred))}
    if linear:
        y = truth.astype(np.int64)
        prob = _cross_validate(x, fold, lambda tr, te: _logistic(x, y, tr, te, seed)[:, 1])
        result["linear"] = {"auc": float(roc_auc_score(truth, prob))}
    return result
