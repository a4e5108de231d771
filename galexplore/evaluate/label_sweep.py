"""Label efficiency: the supervised baseline, the fine-tuned MoCo encoder and the linear probe,
over label counts and training seeds, on the same held-out galaxies.

`label_sweep` runs the comparison (bench/label_efficiency.py is its command line) and returns
what ``label_efficiency.json`` holds::

    {"curves": {task: {method: [entry, ...]}},
     "label_efficiency": {task: {"<method>_vs_scratch_<metric>": [...]}}}

with task "redshift" (z_spec) or "morphology" (p_features), method "scratch", "finetune" or
"probe", and an entry per label count: {"n_train", "metrics" (the mean over seeds), "std" (the
sample standard deviation per metric, None with one seed), "repeats" (each seed's "seed" and
"metrics", with its wall times)}. `read_label_sweep` also reads the earlier photo-z-only layout,
whose curves were keyed by method directly and had no "std".
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from galexplore.evaluate.probes import DEFAULT_COLUMNS, MORPHOLOGY, REDSHIFT, probe_column, sweep_rows

if TYPE_CHECKING:
    import torch
    from torch import nn

    from galexplore.config import Config
    from galexplore.evaluate.finetune import SupervisedConfig
    from galexplore.survey.normalize import Normalization
    from galexplore.survey.base import Survey

TASKS = (REDSHIFT, MORPHOLOGY)
METHODS = ("scratch", "finetune", "probe")
#: the metrics label efficiency is read on, each with whether lower is better
EFFICIENCY_METRICS = {REDSHIFT: {"sigma_mad": True, "outlier_fraction": True},
                      MORPHOLOGY: {"accuracy": False, "roc_auc": False}}
#: the backbone's learning rate when fine-tuning, as a fraction of the head's
FINETUNE_SCALE = 0.1

Progress = Callable[[str, str, int, list[dict[str, Any]]], None]


def summarise_repeats(repeats: Sequence[Mapping[str, Any]]) -> tuple[dict[str, Any], dict[str, float | None]]:
    """(mean, std) per metric over the repeats' metric dicts: the mean of the values that are not
    None (None when all are), and their sample standard deviation (ddof 1; None with fewer than
    two). "n" (the test rows, the same in every repeat) is kept, not averaged.

    >>> mean, std = summarise_repeats([{"accuracy": 0.5, "roc_auc": None, "n": 9}, {"accuracy": 0.7, "roc_auc": 0.8, "n": 9}])
    >>> mean, round(std["accuracy"], 4), std["roc_auc"]
    ({'accuracy': 0.6, 'roc_auc': 0.8, 'n': 9}, 0.1414, None)
    """
    if not repeats:
        raise ValueError("no repeats to summarise")
    mean: dict[str, Any] = {}
    std: dict[str, float | None] = {}
    for name in repeats[0]:
        if name == "n":
            mean["n"] = repeats[0]["n"]
            continue
        values = np.array([r[name] for r in repeats if r.get(name) is not None], dtype=np.float64)
        mean[name] = float(values.mean()) if len(values) else None
        std[name] = float(values.std(ddof=1)) if len(values) > 1 else None
    return mean, std


def _entries(runs: Mapping[int, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One curve from each seed's [{"n_train", "metrics", ...}, ...]: per n, the mean, std and repeats
    (each seed's metrics and timings; "steps", the same for every seed, stays in the entry)."""
    by_n: dict[int, list[dict[str, Any]]] = {}
    for seed, curve in runs.items():
        for point in curve:
            by_n.setdefault(point["n_train"], []).append({"seed": seed, **point})
    out = []
    for n, points in by_n.items():
        mean, std = summarise_repeats([p["metrics"] for p in points])
        steps = {"steps": points[0]["steps"]} if "steps" in points[0] else {}
        repeats = [{k: v for k, v in p.items() if k not in ("n_train", "steps")} for p in points]
        out.append({"n_train": n, **steps, "metrics": mean, "std": std, "repeats": repeats})
    return out


def _probe_curve(embeddings: np.ndarray, catalog: Any, column: str, label_counts: Sequence[int], *, seed: int,
                 test_fraction: float) -> list[dict[str, Any]]:
    """The linear probe's curve of one seed: the seed-0 test rows, the subsets drawn with `seed`."""
    test, subsets = sweep_rows(catalog, column, label_counts, seed=0, test_fraction=test_fraction, subset_seed=seed)
    values = np.asarray(catalog[column], dtype=np.float64)
    out = []
    for n, train in subsets.items():
        start = time.perf_counter()
        metrics = probe_column(embeddings, values, column, train, test, seed=seed).metrics
        out.append({"n_train": n, "fit_s": round(time.perf_counter() - start, 1), "metrics": metrics})
    return out


def label_sweep(
    survey: Survey,
    embeddings: np.ndarray,
    label_counts: Sequence[int],
    *,
    config: Config,
    normalization: Normalization,
    sup: SupervisedConfig,
    backbone: nn.Module | None = None,
    tasks: Sequence[str] = TASKS,
    methods: Sequence[str] = METHODS,
    seeds: Sequence[int] = (0,),
    finetune_scale: float = FINETUNE_SCALE,
    test_fraction: float = 0.3,
    device: torch.device | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Each method's curve for each task over `label_counts` and `seeds`, and the label efficiency
    of the probe and the fine-tune against scratch: {"curves", "label_efficiency", "seeds", ...}.

    Every method and seed is scored on the same test rows, the seed-0 split of `sweep_rows`.
    Seed s varies, for scratch and finetune, `SupervisedConfig.seed` (initial head and backbone
    weights, batch order, augmentations) on the seed-0 subset of n labels; for the probe (a convex
    fit, whose initial weights hardly matter) the subset itself: the first n of the train rows
    permuted with seed s, and the probe's seed. Seed 0 reproduces the one-seed sweeps.

    survey: the images and catalog the networks train on; `embeddings` (N, D) are its rows' frozen
    representations, for the probe. scratch trains `sup` from random weights; finetune trains a
    copy of `backbone` with `sup` at `finetune_scale` x the head's learning rate. `progress`, when
    given, is called with (task, method, seed, curve) after each curve of one seed.
    """
    from galexplore.evaluate.finetune import supervised_sweep

    unknown = sorted({*tasks} - {*TASKS}) + sorted({*methods} - {*METHODS})
    if unknown:
        raise ValueError(f"unknown task or method {unknown}; tasks are {TASKS}, methods {METHODS}")
    if "finetune" in methods and backbone is None:
        raise ValueError("fine-tuning needs the MoCo backbone; pass backbone= or leave 'finetune' out of methods")
    if not seeds:
        raise ValueError("need at least one seed")
    catalog = survey.catalog
    if len(embeddings) != len(catalog):
        raise ValueError(f"embeddings have {len(embeddings)} rows but the survey's catalog {len(catalog)}")
    runs = {"scratch": (sup, None), "finetune": (dataclasses.replace(sup, backbone_lr_scale=finetune_scale), backbone)}
    curves: dict[str, dict[str, list[dict[str, Any]]]] = {}
    n_test = {}
    for task in tasks:
        column = DEFAULT_COLUMNS[task]
        n_test[task] = len(sweep_rows(catalog, column, [], seed=0, test_fraction=test_fraction)[0])
        curves[task] = {}
        for method in methods:
            per_seed = {}
            for seed in seeds:
                if method == "probe":
                    curve = _probe_curve(embeddings, catalog, column, label_counts, seed=seed,
                                         test_fraction=test_fraction)
                else:
                    run_sup, init = runs[method]
                    curve = supervised_sweep(survey, catalog, task, label_counts, config=config,
                                             normalization=normalization, init_backbone=init,
                                             sup=dataclasses.replace(run_sup, seed=seed), device=device, seed=0,
                                             test_fraction=test_fraction, column=column)
                if progress is not None:
                    progress(task, method, seed, curve)
                per_seed[seed] = curve
            curves[task][method] = _entries(per_seed)
    return {"seeds": list(seeds), "test_fraction": test_fraction, "n_test": n_test,
            "scratch_config": dataclasses.asdict(runs["scratch"][0]),
            "finetune_config": dataclasses.asdict(runs["finetune"][0]),
            "curves": curves, "label_efficiency": efficiency(curves)}


def efficiency(curves: Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]]) -> dict[str, dict[str, Any]]:
    """`label_efficiency` of the probe's and the fine-tune's mean curves against scratch's, on each
    task's `EFFICIENCY_METRICS`: {task: {"<method>_vs_scratch_<metric>": [...]}}. A task without a
    scratch curve, or a metric scratch never has (an AUC with one class), is left out."""
    from galexplore.evaluate.finetune import label_efficiency

    out: dict[str, dict[str, Any]] = {}
    for task, by_method in curves.items():
        if "scratch" not in by_method:
            continue
        for metric, lower in EFFICIENCY_METRICS[task].items():
            base = [(e["n_train"], e["metrics"][metric]) for e in by_method["scratch"]
                    if e["metrics"].get(metric) is not None and math.isfinite(e["metrics"][metric])]
            if not base:
                continue
            for name in ("probe", "finetune"):
                if name in by_method:
                    ssl = [(e["n_train"], e["metrics"].get(metric)) for e in by_method[name]]
                    out.setdefault(task, {})[f"{name}_vs_scratch_{metric}"] = label_efficiency(ssl, base, lower_is_better=lower)
    return out


def read_label_sweep(data: Mapping[str, Any]) -> tuple[dict[str, dict[str, list]], dict[str, dict[str, list]]]:
    """(curves {task: {method: entries}}, factors {task: {comparison: entries}}) of a
    label_efficiency.json in this module's layout, or in the earlier photo-z-only one (curves and
    factors keyed directly by method and comparison).

    >>> read_label_sweep({"curves": {"probe": []}, "label_efficiency": {"probe_vs_scratch_sigma_mad": []}})
    ({'redshift': {'probe': []}}, {'redshift': {'probe_vs_scratch_sigma_mad': []}})
    """
    def by_task(section: Any) -> dict[str, dict[str, list]]:
        if not isinstance(section, Mapping):
            raise ValueError(f"label_efficiency.json: expected an object of curves, got {type(section).__name__}")
        if any(isinstance(v, list) for v in section.values()):  # the earlier layout: photo-z only
            return {REDSHIFT: dict(section)}
        return {task: dict(v) for task, v in section.items()}

    return by_task(data.get("curves", {})), by_task(data.get("label_efficiency", {}))
