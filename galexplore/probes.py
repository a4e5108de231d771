"""Linear probes on frozen representations: photo-z as a binned classifier, morphology as a logistic.

A linear probe asks what a representation makes linearly readable, the protocol of Hayat et al.
(2021): photometric redshift as a softmax classifier over `Z_BINS` bins on 0 <= z < `Z_MAX`
(its pdf read back as a mean and a width), and a Galaxy Zoo vote fraction as one linear output
with a sigmoid, trained with binary cross-entropy on the soft fraction itself. The kNN probes in
`galexplore.evaluate.knn` ask the complementary question: what the neighbourhoods already know.

Both probes standardise their inputs with the training rows' mean and standard deviation, are
fitted full-batch with L-BFGS in float32 (the losses are convex, so the optimum does not hinge on
a learning-rate schedule), and store only plain arrays (`LinearProbe.to_arrays`), so a saved probe
is data and loading it runs no code.

`predict_all` cross-fits: a labelled galaxy is predicted by a probe that never saw its label
(K-fold, `CROSS_FIT_FOLDS`), so z_phot - z_spec on the map is an honest error, not a residual.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from galexplore.evaluate.metrics import accuracy, photoz_metrics

#: redshift classes and their range (Hayat et al. 2021: 180 bins over 0 < z < 0.4)
Z_BINS = 180
Z_MAX = 0.4
#: width (in bins) of the Gaussian soft target around the true bin; 0 is a hard one-hot target
Z_SMOOTHING_BINS = 1.0
#: the catalog columns that are probed, and the kind of probe each gets (the morphology columns
#: by default: config [probes] morphology names others, e.g. a 0/1 ring flag)
MORPHOLOGY_COLUMNS = ("p_features", "p_edge_on")
REDSHIFT_COLUMN = "z_spec"
#: fewer labelled rows than this and a kind is not probed
MIN_LABELLED = 20
#: folds of the cross-fitted predictions of labelled rows (`predict_all`)
CROSS_FIT_FOLDS = 5
MORPHOLOGY, REDSHIFT = "morphology", "redshift"
#: the catalog column a task is trained and scored on by default
DEFAULT_COLUMNS = {REDSHIFT: REDSHIFT_COLUMN, MORPHOLOGY: "p_features"}


def redshift_bins(n_bins: int = Z_BINS, z_max: float = Z_MAX) -> np.ndarray:
    """Bin edges (n_bins + 1,) float64 of the redshift classes, 0 to z_max.

    >>> redshift_bins(4, 0.4).round(2).tolist()
    [0.0, 0.1, 0.2, 0.3, 0.4]
    """
    if n_bins < 1 or not z_max > 0:
        raise ValueError(f"need n_bins >= 1 and z_max > 0, got {n_bins} and {z_max}")
    return np.linspace(0.0, z_max, n_bins + 1)


def encode_redshift(z: np.ndarray, n_bins: int = Z_BINS, z_max: float = Z_MAX) -> np.ndarray:
    """Bin index (N,) int64 of each redshift; z >= z_max goes to the last bin.

    >>> encode_redshift(np.array([0.0, 0.05, 0.39, 0.7]), 4, 0.4).tolist()
    [0, 0, 3, 3]
    """
    z = np.asarray(z, dtype=np.float64)
    bad = ~np.isfinite(z) | (z < 0)
    if bad.any():
        raise ValueError(f"redshifts must be finite and >= 0; {int(bad.sum())} are not (first: {z[bad][0]})")
    return np.minimum(np.floor(z / (z_max / n_bins)), n_bins - 1).astype(np.int64)


def decode_redshift(pdf: np.ndarray, n_bins: int = Z_BINS, z_max: float = Z_MAX) -> tuple[np.ndarray, np.ndarray]:
    """(z_phot, z_width): each row's pdf-weighted mean of the bin centres and the pdf's standard deviation.

    `pdf` is (N, n_bins), non-negative; rows are normalised here.

    >>> z, w = decode_redshift(np.array([[0.0, 1.0, 1.0, 0.0]]), 4, 0.4)
    >>> round(float(z[0]), 3), round(float(w[0]), 3)
    (0.2, 0.05)
    """
    pdf = np.asarray(pdf, dtype=np.float64)
    if pdf.ndim != 2 or pdf.shape[1] != n_bins:
        raise ValueError(f"pdf must be (N, {n_bins}), got {pdf.shape}")
    edges = redshift_bins(n_bins, z_max)
    centres = 0.5 * (edges[:-1] + edges[1:])  # (n_bins,)
    pdf = pdf / pdf.sum(axis=1, keepdims=True)
    mean = pdf @ centres  # (N,)
    var = np.einsum("nb,nb->n", pdf, (centres[None, :] - mean[:, None]) ** 2)
    return mean, np.sqrt(np.maximum(var, 0.0))


PREDICT_ROWS = 65_536  # rows per block of LinearProbe.predict


class LinearProbe:
    """One standardising linear layer: `kind` "morphology" (1 output, sigmoid) or "redshift"
    (n_bins logits, softmax). Built by `fit_morphology_probe` / `fit_redshift_probe`."""

    def __init__(
        self, kind: str, mean: np.ndarray, std: np.ndarray, weight: np.ndarray, bias: np.ndarray,
        *, n_bins: int = Z_BINS, z_max: float = Z_MAX,
    ) -> None:
        if kind not in (MORPHOLOGY, REDSHIFT):
            raise ValueError(f"unknown probe kind {kind!r}; expected {MORPHOLOGY!r} or {REDSHIFT!r}")
        n_out = 1 if kind == MORPHOLOGY else n_bins
        d = len(mean)
        if std.shape != (d,) or weight.shape != (n_out, d) or bias.shape != (n_out,):
            raise ValueError(f"inconsistent {kind} probe arrays: mean {mean.shape}, std {std.shape}, "
                             f"weight {weight.shape}, bias {bias.shape} (expected {n_out} outputs)")
        self.kind, self.n_bins, self.z_max = kind, int(n_bins), float(z_max)
        self.mean, self.std = np.asarray(mean, np.float32), np.asarray(std, np.float32)
        self.weight, self.bias = np.asarray(weight, np.float32), np.asarray(bias, np.float32)

    def __repr__(self) -> str:
        return f"LinearProbe({self.kind!r}, dim={len(self.mean)}, outputs={len(self.bias)})"

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Raw outputs (N, n_out) float64 of the layer on x (N, D)."""
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != len(self.mean):
            raise ValueError(f"x must be (N, {len(self.mean)}), got {x.shape}")
        xs = ((x - self.mean) / self.std).astype(np.float64)
        return xs @ self.weight.T.astype(np.float64) + self.bias.astype(np.float64)

    def predict(self, x: np.ndarray) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Morphology: the predicted vote fraction (N,). Redshift: (z_phot, z_width), each (N,).

        Rows go through in blocks of `PREDICT_ROWS`: a redshift pdf is n_bins float64 values per
        row, so 10^6 rows at once would hold several GB of pdfs and their moments."""
        parts = [self._predict_block(x[start:start + PREDICT_ROWS]) for start in range(0, max(len(x), 1), PREDICT_ROWS)]
        if self.kind == MORPHOLOGY:
            return np.concatenate(parts)
        return np.concatenate([z for z, _ in parts]), np.concatenate([w for _, w in parts])

    def _predict_block(self, x: np.ndarray) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        logits = self.logits(x)
        if self.kind == MORPHOLOGY:
            return 1.0 / (1.0 + np.exp(-logits[:, 0]))
        logits -= logits.max(axis=1, keepdims=True)
        return decode_redshift(np.exp(logits), self.n_bins, self.z_max)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain arrays (no objects) that `from_arrays` turns back into this probe: `np.savez` them."""
        return {"kind": np.array(self.kind), "mean": self.mean, "std": self.std, "weight": self.weight,
                "bias": self.bias, "n_bins": np.array(self.n_bins), "z_max": np.array(self.z_max)}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> LinearProbe:
        """The probe `to_arrays` described (also an `np.load(..., allow_pickle=False)` result)."""
        missing = {"kind", "mean", "std", "weight", "bias", "n_bins", "z_max"} - set(arrays)
        if missing:
            raise ValueError(f"probe arrays lack {sorted(missing)}")
        return cls(str(arrays["kind"]), np.asarray(arrays["mean"]), np.asarray(arrays["std"]),
                   np.asarray(arrays["weight"]), np.asarray(arrays["bias"]),
                   n_bins=int(arrays["n_bins"]), z_max=float(arrays["z_max"]))


def _standardisation(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=0, dtype=np.float64)
    std = x.std(axis=0, dtype=np.float64)
    return mean.astype(np.float32), np.where(std > 1e-12, std, 1.0).astype(np.float32)  # constant column: std 1


def _fit_linear(x: np.ndarray, targets: np.ndarray, kind: str, *, epochs: int, weight_decay: float,
                seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Full-batch L-BFGS on a standardised linear layer: (mean, std, weight, bias).

    Morphology targets are (N,) fractions (BCE with logits); redshift targets are (N, n_bins)
    probability rows (cross-entropy against them). L2 `weight_decay` / 2 * |W|^2 is added to the
    mean loss; the bias is not penalised.
    """
    import torch

    x = np.asarray(x, dtype=np.float32)
    mean, std = _standardisation(x)
    xs = torch.from_numpy((x - mean) / std)  # (N, D)
    t = torch.from_numpy(np.asarray(targets, dtype=np.float32))
    n_out = 1 if kind == MORPHOLOGY else t.shape[1]
    gen = torch.Generator().manual_seed(seed)
    weight = (0.01 * torch.randn(n_out, xs.shape[1], generator=gen)).requires_grad_()  # (n_out, D)
    bias = torch.zeros(n_out, requires_grad=True)
    opt = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=epochs, history_size=20,
                            tolerance_grad=1e-6, tolerance_change=1e-9, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        logits = xs @ weight.T + bias  # (N, n_out)
        if kind == MORPHOLOGY:
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits[:, 0], t)
        else:
            loss = -(t * torch.log_softmax(logits, dim=1)).sum(dim=1).mean()
        loss = loss + 0.5 * weight_decay * (weight * weight).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return mean, std, weight.detach().numpy().copy(), bias.detach().numpy().copy()


def fit_morphology_probe(x_train: np.ndarray, p_train: np.ndarray, *, epochs: int = 200,
                         weight_decay: float = 1e-3, seed: int = 0) -> LinearProbe:
    """Logistic probe of a vote fraction: x_train (N, D), p_train (N,) in [0, 1], BCE on the soft fraction.

    `epochs` bounds the L-BFGS iterations; `seed` draws the (small) initial weights.
    """
    p = np.asarray(p_train, dtype=np.float64)
    if p.shape != (len(x_train),) or not np.all((p >= 0) & (p <= 1)):
        raise ValueError(f"p_train must be ({len(x_train)},) vote fractions in [0, 1]")
    mean, std, weight, bias = _fit_linear(x_train, p, MORPHOLOGY, epochs=epochs,
                                          weight_decay=weight_decay, seed=seed)
    return LinearProbe(MORPHOLOGY, mean, std, weight, bias)


def smoothed_targets(bins: np.ndarray, n_bins: int, width: float) -> np.ndarray:
    """Target rows (N, n_bins): a Gaussian of `width` bins around each true bin, normalised; one-hot at 0.

    >>> smoothed_targets(np.array([0]), 3, 0.0).tolist()
    [[1.0, 0.0, 0.0]]
    """
    if width <= 0:
        return np.eye(n_bins)[bins]
    offset = np.arange(n_bins)[None, :] - np.asarray(bins)[:, None]  # (N, n_bins)
    t = np.exp(-0.5 * (offset / width) ** 2)
    return t / t.sum(axis=1, keepdims=True)


def fit_redshift_probe(x_train: np.ndarray, z_train: np.ndarray, *, n_bins: int = Z_BINS, z_max: float = Z_MAX,
                       epochs: int = 200, weight_decay: float = 1e-3, smoothing_bins: float = Z_SMOOTHING_BINS,
                       seed: int = 0) -> LinearProbe:
    """Softmax probe over redshift bins: x_train (N, D), z_train (N,) >= 0.

    The target is a Gaussian over neighbouring bins (`smoothing_bins` wide) instead of a one-hot:
    the classes are ordered, so a neighbouring bin is a near miss (dz ~ 0.002), not a wrong class,
    and with a few thousand labels over 180 bins (~20 a bin) the smoothing spreads each label's
    evidence to the bins around it.
    """
    bins = encode_redshift(z_train, n_bins, z_max)
    if bins.shape != (len(x_train),):
        raise ValueError(f"z_train must be ({len(x_train)},), got {bins.shape}")
    targets = smoothed_targets(bins, n_bins, smoothing_bins)
    mean, std, weight, bias = _fit_linear(x_train, targets, REDSHIFT, epochs=epochs,
                                          weight_decay=weight_decay, seed=seed)
    return LinearProbe(REDSHIFT, mean, std, weight, bias, n_bins=n_bins, z_max=z_max)


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
    """`photoz_metrics` of z_phot (kind "redshift") or `morphology_metrics` of a vote fraction ("morphology")."""
    if kind == REDSHIFT:
        return photoz_metrics(pred, truth)
    if kind == MORPHOLOGY:
        return morphology_metrics(pred, truth)
    raise ValueError(f"unknown probe kind {kind!r}; expected {MORPHOLOGY!r} or {REDSHIFT!r}")


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

    `predictions` are the test rows' z_phot or vote fractions, `widths` the z_phot pdf widths
    (redshift only), `metrics` those of `photoz_metrics` or `morphology_metrics`.
    """

    column: str
    kind: str
    n_train: int
    test_rows: np.ndarray
    predictions: np.ndarray
    widths: np.ndarray | None
    metrics: dict[str, Any]


def _labelled_rows(catalog: Any, column: str) -> np.ndarray:
    if column not in catalog:
        return np.empty(0, dtype=np.int64)
    return np.flatnonzero(np.isfinite(np.asarray(catalog[column], dtype=np.float64)))


def _fit(column: str, x: np.ndarray, values: np.ndarray, seed: int) -> LinearProbe:
    if column == REDSHIFT_COLUMN:
        return fit_redshift_probe(x, values, seed=seed)
    return fit_morphology_probe(x, values, seed=seed)


def probe_column(x: np.ndarray, values: np.ndarray, column: str, train_rows: np.ndarray, test_rows: np.ndarray,
                 *, seed: int = 0) -> ProbeResult:
    """Fit the probe of `column` on x[train_rows] and score it on x[test_rows]."""
    probe = _fit(column, x[train_rows], values[train_rows], seed)
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
    train, test = split_rows(_labelled_rows(catalog, column), test_fraction, seed)
    order = np.random.default_rng([seed if subset_seed is None else subset_seed, 1]).permutation(train)
    return test, {int(n): order[:n] for n in label_counts if 0 < n <= len(train)}


def evaluate_probes(x: np.ndarray, catalog: Any, *, seed: int = 0, test_fraction: float = 0.3,
                    label_counts: Iterable[int] | None = None,
                    morphology: Sequence[str] = MORPHOLOGY_COLUMNS) -> dict[str, Any]:
    """Held-out scores of the linear probes of z_spec and the `morphology` columns (each present
    with >= `MIN_LABELLED` finite rows): a JSON-able dict by column.

    Each column's finite rows are split by `split_rows`; the probe is fitted on the train rows and
    scored on the test rows. With `label_counts`, it is also fitted on the first n rows of a seeded
    permutation of the train rows for each n (counts above the train size are skipped) and scored
    on the same test rows, under "sweep": how the scores grow with the number of labels.
    """
    x = np.asarray(x, dtype=np.float32)
    if len(x) != len(catalog):
        raise ValueError(f"x has {len(x)} rows but the catalog {len(catalog)}")
    out: dict[str, Any] = {"seed": seed, "test_fraction": test_fraction}
    for column, rows in _probed_columns(catalog, morphology):
        values = np.asarray(catalog[column], dtype=np.float64)
        train, test = split_rows(rows, test_fraction, seed)
        result = probe_column(x, values, column, train, test, seed=seed)
        entry: dict[str, Any] = {"kind": result.kind, "n_train": result.n_train, "n_test": len(test),
                                 "metrics": result.metrics}
        if label_counts is not None:
            _, subsets = sweep_rows(catalog, column, label_counts, seed=seed, test_fraction=test_fraction)
            entry["sweep"] = [
                {"n_train": n, "metrics": probe_column(x, values, column, subset, test, seed=seed).metrics}
                for n, subset in subsets.items()
            ]
        out[column] = entry
    return out


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
    """[z_phot, z_width] of a redshift probe or [p] of a morphology probe on x, each (N,)."""
    pred = probe.predict(x)
    return list(pred) if probe.kind == REDSHIFT else [pred]


def cross_fit_column(x: np.ndarray, values: np.ndarray, column: str, rows: np.ndarray, *,
                     folds: int = CROSS_FIT_FOLDS, seed: int = 0) -> list[np.ndarray]:
    """The probe of `column` on every row of x (N, D): [z_phot, z_width] or [p], each (N,) float64.

    `rows` (the labelled rows, >= 2) are predicted out-of-fold: split by `fold_ids(len(rows),
    folds, seed)`, each fold by a probe fitted on the other folds. Every other row is predicted by
    the probe fitted on all of `rows`.
    """
    rows = np.asarray(rows)
    fold = fold_ids(len(rows), folds, seed)
    out = _outputs(_fit(column, x[rows], values[rows], seed), x)
    for k in range(int(fold.max()) + 1):
        held, kept = rows[fold == k], rows[fold != k]
        for full, part in zip(out, _outputs(_fit(column, x[kept], values[kept], seed), x[held]), strict=True):
            full[held] = part
    return out


def _probed_columns(catalog: Any, morphology: Sequence[str] = MORPHOLOGY_COLUMNS) -> Iterator[tuple[str, np.ndarray]]:
    """(column, labelled rows) of z_spec and the `morphology` columns, each with >= `MIN_LABELLED` rows."""
    for column in (REDSHIFT_COLUMN, *morphology):
        rows = _labelled_rows(catalog, column)
        if len(rows) >= MIN_LABELLED:
            yield column, rows


def predict_all(x: np.ndarray, catalog: Any, *, seed: int = 0, folds: int = CROSS_FIT_FOLDS,
                morphology: Sequence[str] = MORPHOLOGY_COLUMNS) -> dict[str, np.ndarray]:
    """Probe predictions for every row (N,): z_phot and z_phot_width, and <column>_pred for each
    `morphology` column (p_features_pred, p_edge_on_pred by default), for each column with
    >= `MIN_LABELLED` labelled rows.

    Unlabelled rows get the probe fitted on every labelled row; labelled rows are predicted
    out-of-fold (`cross_fit_column`), so their errors are held-out errors.
    """
    x = np.asarray(x, dtype=np.float32)
    if len(x) != len(catalog):
        raise ValueError(f"x has {len(x)} rows but the catalog {len(catalog)}")
    out: dict[str, np.ndarray] = {}
    for column, rows in _probed_columns(catalog, morphology):
        values = np.asarray(catalog[column], dtype=np.float64)
        predictions = cross_fit_column(x, values, column, rows, folds=folds, seed=seed)
        if column == REDSHIFT_COLUMN:
            out["z_phot"], out["z_phot_width"] = predictions
        else:
            out[f"{column}_pred"] = predictions[0]
    return out


def labelled_predictions(catalog: Any, folds: int = CROSS_FIT_FOLDS,
                         morphology: Sequence[str] = MORPHOLOGY_COLUMNS) -> dict[str, str]:
    """How `predict_all` predicts each probed column's labelled rows (`cross_fit_scheme`), by column."""
    return {column: cross_fit_scheme(len(rows), folds) for column, rows in _probed_columns(catalog, morphology)}
