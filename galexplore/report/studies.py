"""The sections of the report on studies made with an atlas after its build: the label sweep
(`galexplore probe`, bench/label_efficiency.py --save) and the augmentation ablation
(`galexplore ablation`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from galexplore.atlas.files import Atlas
from galexplore.report.blocks import Section, SectionSkipped, figure, new_figure, table, to_png

#: the label sweep's methods, as the report names them
_METHOD_NAMES = {"probe": "linear probe (frozen MoCo)", "finetune": "MoCo fine-tuned", "scratch": "supervised from scratch"}
#: per task: its name, its two panels (metric, axis label) and its table's metrics
_SWEEP_TASKS = {
    "redshift": ("photo-z", (("sigma_mad", "sigma_MAD"), ("outlier_fraction", "outlier fraction eta (|dz| > 0.05)")),
                 ("sigma_mad", "outlier_fraction", "bias")),
    "morphology": ("morphology", (("accuracy", "accuracy (p_features > 0.5)"), ("roc_auc", "ROC AUC")),
                   ("accuracy", "roc_auc")),
}


def _label_sweeps(atlas: Atlas) -> tuple[dict[str, dict[str, list]], dict[str, dict[str, list]]]:
    """(curves {task: {method: entries}}, factors {task: {comparison: entries}}) from
    label_efficiency.json (either layout), with the probe's curves of probe_sweep.json where
    label_efficiency.json has none."""
    from galexplore.evaluate.label_sweep import read_label_sweep
    from galexplore.evaluate.probes import DEFAULT_COLUMNS

    curves: dict[str, dict[str, list]] = {}
    factors: dict[str, dict[str, list]] = {}
    if atlas.has("label_efficiency.json"):
        curves, factors = read_label_sweep(atlas.json("label_efficiency.json"))
    if atlas.has("probe_sweep.json"):
        probe_sweep = atlas.json("probe_sweep.json")
        for task, column in DEFAULT_COLUMNS.items():
            sweep = probe_sweep.get(column, {}).get("sweep")
            if sweep and "probe" not in curves.get(task, {}):
                curves.setdefault(task, {})["probe"] = sweep
    return {task: curves[task] for task in _SWEEP_TASKS if curves.get(task)}, factors


def _with_std(mean: float | None, std: float | None) -> str:
    """The mean and std as text, as in "0.0274 ± 0.0012"; the mean alone without a std, "" without a mean."""
    if mean is None:
        return ""
    return f"{mean:.4g}" if std is None else f"{mean:.4g} ± {std:.2g}"


def _sweep_png(by_method: dict[str, list], panels: tuple, task: str) -> bytes:
    """Two panels of metric against labels (log axis), a line per method, ±1 std bars where recorded."""
    fig = new_figure(9, 3.4)
    axes = fig.subplots(1, 2)
    for i, (key, points) in enumerate(by_method.items()):
        for ax, (metric, _) in zip(axes, panels):
            y = [np.nan if p["metrics"].get(metric) is None else p["metrics"][metric] for p in points]
            std = [(p.get("std") or {}).get(metric) for p in points]
            yerr = [0.0 if s is None else s for s in std] if any(s is not None for s in std) else None
            dodge = 1.04 ** (i - (len(by_method) - 1) / 2) if yerr else 1.0  # bars of one count side by side
            ax.errorbar([p["n_train"] * dodge for p in points], y, yerr=yerr, marker="o", capsize=3,
                        label=_METHOD_NAMES.get(key, key))
    for ax, (_, label) in zip(axes, panels):
        ax.set_xscale("log")
        ax.set_xlabel(f"{'spec-z' if task == 'redshift' else 'morphology'} labels used for training")
        ax.set_ylabel(label)
    axes[0].legend(fontsize=8)
    return to_png(fig)


def label_sweep_section(atlas: Atlas, folder: Path) -> Section:
    """Photo-z and morphology against the number of labels: the linear probe (`galexplore probe`)
    and, when recorded, the supervised baseline and fine-tuning (bench/label_efficiency.py --save)."""
    curves, factors = _label_sweeps(atlas)
    if not curves:
        raise SectionSkipped("the atlas has no label sweep (run `galexplore probe ATLAS`)")
    parts, files, repeated = [], [], False
    for task, by_method in curves.items():
        what, panels, metrics = _SWEEP_TASKS[task]
        has_std = any(p.get("std") for points in by_method.values() for p in points)
        repeated |= has_std
        rows = []
        for key, points in by_method.items():
            for p in points:
                std = p.get("std") or {}
                rows.append({"method": _METHOD_NAMES.get(key, key), "labels": p["n_train"],
                             "seeds": len(p.get("repeats", [])) or 1,
                             **{m: _with_std(p["metrics"].get(m), std.get(m)) for m in metrics}})
        name = "label_sweep.png" if task == "redshift" else f"label_sweep_{task}.png"
        caption = (f"{what.capitalize()} on the same held-out galaxies against the number of training labels, per "
                   f"method{'; bars: ±1 std over seeds' if has_std else ''}.")
        path, fig_html = figure(folder, name, _sweep_png(by_method, panels, task), caption)
        files.append(path)
        parts += [f"<h3>{what.capitalize()}</h3>", fig_html, table(pd.DataFrame(rows))]
    if repeated:
        parts.insert(0, "<p class='note'>Each point is the mean over seeds (± the sample standard deviation): for "
                        "scratch and fine-tuning the training seed on the same labelled galaxies, for the probe the "
                        "draw of the labelled galaxies.</p>")
    lines = [{"task": task, "comparison": key, "labels": e["n"], "supervised labels needed": e["n_needed"],
              "factor": e["factor"], "why none": e.get("reason") or ""}
             for task, by_key in factors.items() for key, entries in by_key.items() for e in entries]
    if lines:
        parts += ["<h3>Label efficiency: how many labels the supervised baseline needs to match</h3>",
                  table(pd.DataFrame(lines))]
    title = "Labels and " + " and ".join(_SWEEP_TASKS[task][0] for task in curves)
    return Section(title, "\n".join(parts), files)


def ablation_section(atlas: Atlas, folder: Path) -> Section:
    """Which augmentations matter: the probes of encoders trained without each one
    (`galexplore ablation CONFIG --atlas ATLAS`)."""
    if not atlas.has("ablation.json"):
        raise SectionSkipped("the atlas has no ablation (run `galexplore ablation CONFIG --atlas ATLAS`)")
    variants = atlas.json("ablation.json")["variants"]
    rows = []
    for name, info in variants.items():
        probes = info["probes"]
        row = {"variant": name}
        if "z_spec" in probes:
            row["sigma_mad"] = probes["z_spec"]["metrics"]["sigma_mad"]
            row["outlier_fraction"] = probes["z_spec"]["metrics"]["outlier_fraction"]
        for column in ("p_features", "p_edge_on"):
            if column in probes:
                row[f"{column} accuracy"] = probes[column]["metrics"]["accuracy"]
        rows.append(row)
    frame = pd.DataFrame(rows)
    metrics = [c for c in ("sigma_mad", "outlier_fraction", "p_features accuracy") if c in frame]
    fig = new_figure(3.2 * len(metrics), 0.45 * len(frame) + 1.2)
    axes = np.atleast_1d(fig.subplots(1, len(metrics), sharey=True))
    for ax, metric in zip(axes, metrics):
        ax.barh(frame["variant"], frame[metric], color="#4c72b0")
        ax.set_xlabel(metric)
        ax.invert_yaxis()
    _, fig_html = figure(folder, "ablation.png", to_png(fig),
                         "Held-out probe metrics of encoders trained with each augmentation left out (same seed and steps).")
    return Section("Which augmentations matter", fig_html + table(frame), [folder / "ablation.png"])
