"""Linear probes on frozen representations: photo-z as a binned classifier, morphology as a logistic,
a class column as a multinomial logistic.

A linear probe asks what a representation makes linearly readable, the protocol of Hayat et al.
(2021): photometric redshift as a softmax classifier over `Z_BINS` bins on 0 <= z < `Z_MAX`
(its pdf read back as a mean and a width), and a Galaxy Zoo vote fraction as one linear output
with a sigmoid, trained with binary cross-entropy on the soft fraction itself, and a class column
(`galexplore.labels`: Galaxy Zoo 1's gz1_type) as a softmax over its classes. The kNN probes in
`galexplore.scoring.knn` ask the complementary question: what the neighbourhoods already know.

Every probe standardises its inputs with the training rows' mean and standard deviation and is
fitted full-batch with L-BFGS (the losses are convex, so the optimum does not hinge on a
learning-rate schedule): the redshift and morphology probes in float32 torch, the class probe by
scikit-learn's multinomial logistic regression. Each stores only plain arrays
(`LinearProbe.to_arrays`), so a saved probe is data and loading it runs no code.

`predict_all` cross-fits: a labelled galaxy is predicted by a probe that never saw its label
(K-fold, `CROSS_FIT_FOLDS`), so z_phot - z_spec on the map is an honest error, not a residual.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from galexplore.labels import class_names, encode_classes
from galexplore.scoring.figures import accuracy, balanced_accuracy, photoz_metrics

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
MORPHOLOGY, REDSHIFT, CATEGORICAL = "morphology", "redshift", "categorical"
KINDS = (MORPHOLOGY, REDSHIFT, CATEGORICAL)
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
    """One standardising linear layer: `kind` "morphology" (1 output, sigmoid), "redshift"
    (n_bins logits, softmax) or "categorical" (one logit per class, >= 2, softmax). Built by
    `fit_morphology_probe`, `fit_redshift_probe` and `fit_class_probe`."""

    def __init__(
        self, kind: str, mean: np.ndarray, std: np.ndarray, weight: np.ndarray, bias: np.ndarray,
        *, n_bins: int = Z_BINS, z_max: float = Z_MAX,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown probe kind {kind!r}; expected one of {', '.join(map(repr, KINDS))}")
        n_out = {MORPHOLOGY: 1, REDSHIFT: n_bins}.get(kind, max(len(bias), 2))
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
        Categorical: (the predicted class's index (N,) int64, its probability (N,)).

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
        if self.kind == CATEGORICAL:
            pdf = np.exp(logits)  # (N, n_classes), the best class's entry 1 before normalising
            return np.argmax(logits, axis=1), 1.0 / pdf.sum(axis=1)
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


def fit_class_probe(x_train: np.ndarray, y_train: np.ndarray, n_classes: int, *, weight_decay: float = 1e-3,
                    seed: int = 0) -> LinearProbe:
    """Multinomial logistic probe of a class column: x_train (N, D), y_train (N,) class indices in
    [0, n_classes), by scikit-learn's L-BFGS on the standardised rows.

    The penalty matches the other probes' (mean cross-entropy + `weight_decay` / 2 * |W|^2, so
    sklearn's C is 1 / (weight_decay * N)). A class absent from the training rows (a small fold)
    gets a logit it never wins; training rows of one class give a probe that always says it.
    """
    from sklearn.linear_model import LogisticRegression

    x = np.asarray(x_train, dtype=np.float32)
    y = np.asarray(y_train, dtype=np.int64)
    if y.shape != (len(x),) or n_classes < 2 or y.min(initial=0) < 0 or y.max(initial=0) >= n_classes:
        raise ValueError(f"y_train must be ({len(x)},) class indices in [0, {n_classes}) with n_classes >= 2")
    mean, std = _standardisation(x)
    weight = np.zeros((n_classes, x.shape[1]), dtype=np.float64)
    bias = np.full(n_classes, NEVER, dtype=np.float64)
    present = np.unique(y)
    if len(present) == 1:
        bias[present[0]] = 0.0
    else:
        xs = ((x - mean) / std).astype(np.float64)
        model = LogisticRegression(C=1.0 / (weight_decay * len(x)), max_iter=1000, random_state=seed).fit(xs, y)
        coef, intercept = model.coef_, model.intercept_
        if len(present) == 2:  # sklearn's binary model: one logit z for classes_[1]; softmax of (-z/2, z/2)
            coef, intercept = np.vstack([-coef / 2, coef / 2]), np.concatenate([-intercept / 2, intercept / 2])
        weight[model.classes_], bias[model.classes_] = coef, intercept
    return LinearProbe(CATEGORICAL, mean, std, weight, bias)


#: the logit of a class a class probe never saw: exp(NEVER - max) is 0 in float64
NEVER = -1e4


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
                    categorical: Sequence[str] = (), unlabelled: Sequence[str] = ()) -> dict[str, Any]:
    """Held-out scores of the linear probes of z_spec, the `morphology` columns and the
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
    for target in probed_targets(catalog, morphology, categorical, unlabelled):
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
                   unlabelled: Sequence[str] = ()) -> Iterator[Target]:
    """z_spec, the `morphology` columns and the `categorical` class columns, each with >=
    `MIN_LABELLED` labelled rows (a class column: a value not empty and not one of `unlabelled`,
    of 2 classes at least)."""
    for column in (REDSHIFT_COLUMN, *morphology):
        rows = _labelled_rows(catalog, column)
        if len(rows) >= MIN_LABELLED:
            yield Target(column, _default_kind(column), rows, np.asarray(catalog[column], dtype=np.float64))
    for column, classes in class_columns(catalog, categorical, unlabelled).items():
        index = encode_classes(catalog[column], classes, unlabelled)
        rows = np.flatnonzero(index >= 0)
        if len(rows) >= MIN_LABELLED and len(classes) >= 2:
            yield Target(column, CATEGORICAL, rows, np.where(index >= 0, index, np.nan), tuple(classes))


def class_columns(catalog: Any, categorical: Sequence[str], unlabelled: Sequence[str] = ()) -> dict[str, list[Any]]:
    """The classes (`galexplore.labels.class_names`) of each `categorical` column the catalog has."""
    return {column: class_names(catalog[column], unlabelled) for column in categorical if column in catalog}


def predict_all(x: np.ndarray, catalog: Any, *, seed: int = 0, folds: int = CROSS_FIT_FOLDS,
                morphology: Sequence[str] = MORPHOLOGY_COLUMNS, categorical: Sequence[str] = (),
                unlabelled: Sequence[str] = ()) -> dict[str, np.ndarray]:
    """Probe predictions for every row (N,): z_phot and z_phot_width, <column>_pred for each
    `morphology` column (p_features_pred, p_edge_on_pred by default), and <column>_pred (the class
    index into `class_columns`' classes, as a float) and <column>_prob (its probability) for each
    `categorical` column, for each column that `probed_targets` yields.

    Unlabelled rows get the probe fitted on every labelled row; labelled rows are predicted
    out-of-fold (`cross_fit_column`), so their errors are held-out errors.
    """
    x = _checked_rows(x, catalog)
    out: dict[str, np.ndarray] = {}
    for target in probed_targets(catalog, morphology, categorical, unlabelled):
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
                         categorical: Sequence[str] = (), unlabelled: Sequence[str] = ()) -> dict[str, str]:
    """How `predict_all` predicts each probed column's labelled rows (`cross_fit_scheme`), by column."""
    return {target.column: cross_fit_scheme(len(target.rows), folds)
            for target in probed_targets(catalog, morphology, categorical, unlabelled)}
