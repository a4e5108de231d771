"""The linear probe: one standardising linear layer on frozen representations, and its fits.

Three kinds, as in Hayat et al. (2021): photometric redshift as a softmax classifier over the
bins of `galexplore.evaluate.photoz` (its pdf read back as a mean and a width), a Galaxy Zoo vote
fraction as one linear output with a sigmoid, trained with binary cross-entropy on the soft
fraction itself, and a class column (`galexplore.labels`: Galaxy Zoo 1's gz1_type) as a softmax
over its classes.

Every probe standardises its inputs with the training rows' mean and standard deviation and is
fitted full-batch with L-BFGS (the losses are convex, so the optimum does not hinge on a
learning-rate schedule): the redshift and morphology probes in float32 torch, the class probe by
scikit-learn's multinomial logistic regression. Each stores only plain arrays
(`LinearProbe.to_arrays`), so a saved probe is data and loading it runs no code.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from galexplore.evaluate.photoz import Z_BINS, Z_MAX, Z_SMOOTHING_BINS, decode_redshift, encode_redshift, smoothed_targets

MORPHOLOGY, REDSHIFT, CATEGORICAL = "morphology", "redshift", "categorical"
KINDS = (MORPHOLOGY, REDSHIFT, CATEGORICAL)
PREDICT_ROWS = 65_536  # rows per block of LinearProbe.predict
#: the logit of a class a class probe never saw: exp(NEVER - max) is 0 in float64
NEVER = -1e4


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

