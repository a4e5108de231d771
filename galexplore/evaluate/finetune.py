"""Supervised training of the encoder on labelled galaxies: the baseline and the fine-tuned SSL encoder.

Two comparisons of the self-supervised papers (Hayat et al. 2021, Stein et al. 2021) need the
encoder trained with labels rather than read by a linear probe:

- the **supervised baseline**: the same architecture, randomly initialised, trained on the
  labelled galaxies alone (`init_backbone=None`);
- **fine-tuning**: a copy of the MoCo encoder trained end to end with a small learning rate
  (`init_backbone=<the MoCo backbone>`).

Both see exactly what MoCo saw (the run's `[augment]` pipeline, one view per image per step) and
end in the head of the linear probes (`galexplore.evaluate.probes`): 180 redshift bins with the Gaussian
smoothed cross-entropy, or one logit with binary cross-entropy on a vote fraction. Their sweep
over label counts uses the probes' split and subsets, so a curve of this module and one of
`evaluate_probes` are scored on the same test galaxies; `label_efficiency` then reads how many
labels the baseline needs to match the self-supervised result.

Determinism: the batches of step s come from the seeded order of its epoch, and every random
draw of step s from `step_generator(seed, 0, s)`, so a seed gives the same model bitwise on CPU.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from galexplore.evaluate.probes import (
    DEFAULT_COLUMNS,
    MORPHOLOGY,
    REDSHIFT,
    Z_BINS,
    Z_MAX,
    Z_SMOOTHING_BINS,
    decode_redshift,
    encode_redshift,
    score,
    smoothed_targets,
    sweep_rows,
)

if TYPE_CHECKING:
    from galexplore.config import Config
    from galexplore.survey.normalize import Normalization
    from galexplore.survey.base import Survey

__all__ = ["SupervisedConfig", "SupervisedModel", "label_efficiency", "predict_supervised",
           "supervised_sweep", "train_supervised"]


@dataclass(frozen=True)
class SupervisedConfig:
    """How a supervised run trains; the defaults fit a demo-sized run on a few CPU cores.

    epochs: passes over the labelled rows (each pass: floor(n / batch_size) steps, at least one).
    min_steps: at least this many optimiser steps whatever n is, so a 100-label run is not a
        couple of steps long (at n=100 and batch 64, 10 epochs would be 10 steps).
    batch_size: galaxies per step (capped at n); BatchNorm needs more than one.
    lr: AdamW's peak learning rate of the head, after a linear warm-up over `warmup_fraction` of
        the steps, then cosine decay to zero (`galexplore.training.schedule.cosine_lr`).
    backbone_lr_scale: the backbone's learning rate as a fraction of `lr`: 1 for the baseline
        from scratch; < 1 when fine-tuning, so the random head's first gradients do not wash
        out the pretrained features ("fine-tuning with a small learning rate").
    weight_decay: AdamW's decoupled weight decay.
    seed: initial weights of the new layers and every draw of the run (order, augmentations).
    """

    epochs: int = 10
    min_steps: int = 100
    batch_size: int = 64
    lr: float = 1e-3
    backbone_lr_scale: float = 1.0
    weight_decay: float = 1e-4
    warmup_fraction: float = 0.05
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.min_steps < 0 or self.batch_size < 2:
            raise ValueError(f"need epochs >= 1, min_steps >= 0 and batch_size >= 2; got {self}")
        if not self.lr > 0 or not 0 <= self.backbone_lr_scale or self.weight_decay < 0:
            raise ValueError(f"need lr > 0, backbone_lr_scale >= 0 and weight_decay >= 0; got {self}")
        if not 0 <= self.warmup_fraction < 1:
            raise ValueError(f"warmup_fraction must be in [0, 1), got {self.warmup_fraction}")

    def total_steps(self, n: int) -> int:
        """Optimiser steps of a run on n labelled rows: `epochs` passes, at least `min_steps`.

        >>> SupervisedConfig(epochs=2, min_steps=0, batch_size=64).total_steps(300)
        8
        """
        return max(self.epochs * max(1, n // min(self.batch_size, n)), self.min_steps)


class SupervisedModel(nn.Module):
    """A backbone (B, C, H, W) -> (B, D) and a linear head (B, D) -> (B, n_out) for `task`.

    n_out is `Z_BINS` for "redshift" (softmax over bins) and 1 for "morphology" (sigmoid).
    """

    def __init__(self, backbone: nn.Module, dim: int, task: str) -> None:
        super().__init__()
        if task not in (REDSHIFT, MORPHOLOGY):
            raise ValueError(f"unknown task {task!r}; expected {REDSHIFT!r} or {MORPHOLOGY!r}")
        self.task = task
        self.backbone = backbone
        self.head = nn.Linear(dim, Z_BINS if task == REDSHIFT else 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))  # (B, n_out)


def _targets(values: np.ndarray, task: str) -> np.ndarray:
    """Training targets: (N, Z_BINS) smoothed bin rows for redshift, (N,) fractions for morphology."""
    values = np.asarray(values, dtype=np.float64)
    if task == REDSHIFT:
        return smoothed_targets(encode_redshift(values), Z_BINS, Z_SMOOTHING_BINS).astype(np.float32)
    if not np.all((values >= 0) & (values <= 1)):
        raise ValueError("morphology targets must be vote fractions in [0, 1]")
    return values.astype(np.float32)


def _loss(logits: torch.Tensor, targets: torch.Tensor, task: str) -> torch.Tensor:
    if task == REDSHIFT:
        return -(targets * torch.log_softmax(logits, dim=1)).sum(dim=1).mean()  # smoothed CE
    return torch.nn.functional.binary_cross_entropy_with_logits(logits[:, 0], targets)


def train_supervised(
    survey: Survey,
    rows: np.ndarray,
    targets: np.ndarray,
    task: str,
    *,
    config: Config,
    normalization: Normalization,
    init_backbone: nn.Module | None = None,
    sup: SupervisedConfig = SupervisedConfig(),
    device: torch.device | None = None,
    losses: list[float] | None = None,
) -> SupervisedModel:
    """Train backbone + head on the survey's `rows` with labels `targets` (len(rows),): z or p.

    init_backbone None: a new `config.model` encoder (the supervised baseline); otherwise a deep
    copy of it is fine-tuned and the original is left untouched. Each step draws one view of
    each image with the `config.augment` pipeline (MoCo's, with `normalization`). `losses`, when
    given, receives each step's loss. Returns the model in eval mode on `device`.
    """
    from galexplore.augment import build_augmentations
    from galexplore.models import build_encoder
    from galexplore.training.data import epoch_order
    from galexplore.training.schedule import cosine_lr
    from galexplore.training.trainer import step_generator

    device = device or torch.device("cpu")
    rows = np.asarray(rows, dtype=np.int64)
    if rows.ndim != 1 or len(rows) < 2 or len(targets) != len(rows):
        raise ValueError(f"need >= 2 rows and one target per row; got {rows.shape} rows, {len(targets)} targets")
    y = torch.from_numpy(_targets(targets, task))  # (N, Z_BINS) or (N,)
    c, h, _ = survey.shape
    augment = build_augmentations(config.augment, survey.bands, normalization.noise, image_size=h,
                                  normalization=normalization)

    with torch.random.fork_rng(devices=[]):  # seeded new layers, the caller's global RNG untouched
        torch.manual_seed(sup.seed)
        if init_backbone is None:
            backbone = build_encoder(config.model, in_channels=c)
        else:
            backbone = copy.deepcopy(init_backbone)
        model = SupervisedModel(backbone, config.model.representation_dim, task).to(device).train()
    optimizer = torch.optim.AdamW(
        [{"params": model.head.parameters(), "scale": 1.0},
         {"params": model.backbone.parameters(), "scale": sup.backbone_lr_scale}],
        lr=sup.lr, weight_decay=sup.weight_decay,
    )

    n = len(rows)
    batch = min(sup.batch_size, n)
    steps_per_epoch = max(1, n // batch)  # the last incomplete batch of an epoch is dropped
    total = sup.total_steps(n)
    warmup = int(sup.warmup_fraction * total)
    for step in range(total):
        epoch, k = divmod(step, steps_per_epoch)
        positions = np.sort(epoch_order(n, sup.seed, epoch)[k * batch:(k + 1) * batch])
        images = torch.from_numpy(survey.read(rows[positions])).to(device)  # (B, C, H, W) raw fluxes
        gen = step_generator(sup.seed, 0, step, device)
        x = augment(images, gen)  # (B, C, crop, crop), normalised
        lr = cosine_lr(step, total, sup.lr, warmup)
        for group in optimizer.param_groups:
            group["lr"] = lr * group["scale"]
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits = model(x)  # (B, n_out)
        loss = _loss(logits.float(), y[positions].to(device), task)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if losses is not None:
            losses.append(float(loss.detach()))
    return model.eval()


def predict_supervised(
    model: SupervisedModel,
    survey: Survey,
    rows: np.ndarray,
    task: str,
    normalization: Normalization,
    crop_size: int,
    device: torch.device | None = None,
    batch_size: int = 256,
) -> np.ndarray:
    """z_phot (redshift: the pdf's mean, as the probes read it) or the vote fraction p (morphology),
    (len(rows),) float64, on centre crops of `crop_size` in eval mode (BN running statistics)."""
    from galexplore.training.embed import prepare

    if task != model.task:
        raise ValueError(f"the model was trained for {model.task!r}, not {task!r}")
    device = device or torch.device("cpu")
    rows = np.asarray(rows, dtype=np.int64)
    was_training = model.training
    model.eval()
    parts = []
    try:
        with torch.inference_mode():
            for start in range(0, len(rows), batch_size):
                images = torch.from_numpy(survey.read(rows[start:start + batch_size])).to(device)
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
                    logits = model(prepare(images, normalization, crop_size)).float()  # (B, n_out)
                if task == REDSHIFT:
                    pdf = torch.softmax(logits.double(), dim=1).cpu().numpy()
                    parts.append(decode_redshift(pdf, Z_BINS, Z_MAX)[0])
                else:
                    parts.append(torch.sigmoid(logits[:, 0].double()).cpu().numpy())
    finally:
        model.train(was_training)
    return np.concatenate(parts) if parts else np.zeros(0)


def supervised_sweep(
    survey: Survey,
    catalog: Any,
    task: str,
    label_counts: Sequence[int],
    *,
    config: Config,
    normalization: Normalization,
    init_backbone: nn.Module | None = None,
    sup: SupervisedConfig = SupervisedConfig(),
    device: torch.device | None = None,
    seed: int = 0,
    test_fraction: float = 0.3,
    column: str | None = None,
    crop_size: int | None = None,
) -> list[dict[str, Any]]:
    """For each label count n: train on the probes' n-row subset (`sweep_rows`) and score on their
    test rows: [{"n_train": n, "steps", "train_s", "predict_s", "metrics": photoz_metrics or
    morphology_metrics}, ...], with the run's optimiser steps and wall times in seconds.

    column: the catalog column (default z_spec for redshift, p_features for morphology).
    crop_size: the prediction crop (default `config.augment.crop_size`, the size trained on).
    """
    column = column or DEFAULT_COLUMNS[task]
    values = np.asarray(catalog[column], dtype=np.float64)
    test, subsets = sweep_rows(catalog, column, label_counts, seed=seed, test_fraction=test_fraction)
    crop = crop_size or config.augment.crop_size
    out = []
    for n, train in subsets.items():
        start = time.perf_counter()
        model = train_supervised(survey, train, values[train], task, config=config, normalization=normalization,
                                 init_backbone=init_backbone, sup=sup, device=device)
        trained = time.perf_counter()
        pred = predict_supervised(model, survey, test, task, normalization, crop, device)
        out.append({"n_train": n, "steps": sup.total_steps(n), "train_s": round(trained - start, 1),
                    "predict_s": round(time.perf_counter() - trained, 1), "metrics": score(task, pred, values[test])})
    return out


def label_efficiency(
    ssl_curve: Sequence[tuple[int, float | None]],
    supervised_curve: Sequence[tuple[int, float]],
    lower_is_better: bool = True,
) -> list[dict[str, Any]]:
    """For each (n, metric) of the self-supervised curve, the labels the supervised curve needs to
    reach that metric, and the factor n_needed / n.

    The supervised curve is made monotone first (its best metric so far, in increasing n: more
    labels never count as worse) and interpolated linearly in log(n) between the two points that
    bracket the metric. n_needed is None, with a reason, when the supervised curve never reaches
    the metric (it would need extrapolation beyond its largest n) or already reaches it at its
    smallest n (the factor would be at most that n / n, an extrapolation below the sweep).

    >>> label_efficiency([(100, 0.04)], [(100, 0.05), (1000, 0.03)])[0]["factor"]
    3.1623
    """
    if not supervised_curve:
        raise ValueError("the supervised curve is empty")
    sign = 1.0 if lower_is_better else -1.0  # compare as "lower is better" throughout
    points = sorted((int(n), sign * float(m)) for n, m in supervised_curve)
    if points[0][0] <= 0 or any(not math.isfinite(m) for _, m in points):
        raise ValueError(f"supervised curve needs n > 0 and finite metrics, got {supervised_curve}")
    ns = np.array([n for n, _ in points], dtype=np.float64)
    envelope = np.minimum.accumulate(np.array([m for _, m in points]))
    out = []
    for n, metric in ssl_curve:
        entry: dict[str, Any] = {"n": int(n), "metric": metric, "n_needed": None, "factor": None, "reason": None}
        out.append(entry)
        if metric is None or not math.isfinite(float(metric)):
            entry["reason"] = "no self-supervised metric"
            continue
        target = sign * float(metric)
        reached = np.flatnonzero(envelope <= target)
        if len(reached) == 0:
            entry["reason"] = f"the supervised curve never reaches it (best {sign * envelope[-1]:.4g} at n={int(ns[-1])})"
            continue
        i = int(reached[0])
        if i == 0:
            entry["reason"] = f"the supervised curve already reaches it at its smallest n={int(ns[0])}"
            continue
        t = (envelope[i - 1] - target) / (envelope[i - 1] - envelope[i])  # in (0, 1]
        needed = math.exp(math.log(ns[i - 1]) + t * (math.log(ns[i]) - math.log(ns[i - 1])))
        entry["n_needed"] = round(needed, 1)
        entry["factor"] = round(needed / n, 4)
    return out
