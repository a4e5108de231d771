"""Which augmentations matter: retrain the encoder without each one in turn, probe each the same way.

The variants of a config's `augment.order` are: all of them, each one left out, and rotation plus
jitter-crop alone (the geometric baseline). Every variant trains with the same seed, steps and
schedule into its own run folder (resumable, like any run), embeds the labelled galaxies, and is
scored by the same linear probes on the same held-out split (`galexplore.evaluate.probes`). The table says
how much each augmentation is worth: a variant that loses a lot without it names a powerful one.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from galexplore.config import Config
from galexplore.config.label_kinds import label_columns
from galexplore.errors import GalexploreError
from galexplore.io import atomic_write_text

GEOMETRIC_BASELINE = ("rotate", "jitter_crop")


def variants(order: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """Variant name -> augmentation order: "all", "no <name>" for each, "rotate + jitter_crop only".

    >>> variants(("rotate", "jitter_crop", "noise"))  # doctest: +NORMALIZE_WHITESPACE
    {'all': ('rotate', 'jitter_crop', 'noise'), 'no rotate': ('jitter_crop', 'noise'),
     'no jitter_crop': ('rotate', 'noise'), 'no noise': ('rotate', 'jitter_crop')}
    """
    found = {"all": tuple(order)}
    for name in order:
        found[f"no {name}"] = tuple(n for n in order if n != name)
    baseline = tuple(n for n in order if n in GEOMETRIC_BASELINE)
    if baseline and baseline not in found.values():
        found[" + ".join(baseline) + " only"] = baseline
    return found


def labelled_rows(catalog: Any, config: Config) -> np.ndarray:
    """Rows with any label the config declares (`galexplore.config.label_kinds`)."""
    from galexplore.scoring.atlas_card import labelled

    has = np.zeros(len(catalog), dtype=bool)
    for column, kind in label_columns(config, catalog):
        has |= labelled(catalog[column], kind, config.probes.unlabelled)
    return np.flatnonzero(has)


def run_ablation(
    config: Config,
    out: Path,
    *,
    only: list[str] | None = None,
    reference_run: Path | None = None,
    device: Any = None,
    max_steps: int | None = None,
    log: Callable[[str], None] | None = None,
    survey: Any = None,
) -> dict[str, Any]:
    """Train, embed and probe every variant into `out/<variant>/`; write and return `out/ablation.json`.

    `only`: a subset of the variant names. `reference_run`: a finished run of the config itself,
    reused for "all" instead of training it again. `max_steps` shortens every run (tests).
    `survey`: an open survey to use instead of the config's.
    """
    import torch

    from galexplore.training.embed import load_encoder, represent
    from galexplore.evaluate.probes import config_targets, evaluate_probes
    from galexplore.survey import open_survey
    from galexplore.training.trainer import train

    log = log or (lambda line: None)
    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    out = Path(out)
    chosen = variants(config.augment.order)
    if only:
        unknown = [name for name in only if name not in chosen]
        if unknown:
            raise GalexploreError(f"unknown ablation variant {unknown[0]!r}; expected one of: {', '.join(chosen)}")
        chosen = {name: chosen[name] for name in only}
    results: dict[str, Any] = {"config": config.name, "seed": config.seed, "variants": {}}
    with survey if survey is not None else open_survey(config) as survey:
        rows = labelled_rows(survey.catalog, config)
        if len(rows) < 40:
            raise GalexploreError(f"{config.name}: {len(rows)} labelled galaxies; the ablation's probes need at least 40")
        catalog = survey.catalog.iloc[rows].reset_index(drop=True)
        for name, order in chosen.items():
            start = time.perf_counter()
            variant = dataclasses.replace(config, augment=dataclasses.replace(config.augment, order=order))
            run = out / name.replace(" ", "_").replace("+", "plus")
            if name == "all" and reference_run is not None and (Path(reference_run) / "encoder.pt").exists():
                run = Path(reference_run)
            else:
                result = train(variant, run, device=device, resume=True, survey=survey, max_steps=max_steps)
                if result.encoder is None and max_steps is None:
                    raise GalexploreError(f"{run}: training stopped at step {result.step} of {result.total_steps}")
            encoder = run / "encoder.pt" if (run / "encoder.pt").exists() else None
            if encoder is None:  # a shortened run (max_steps): probe the last checkpoint's encoder
                backbone, normalization = _latest_backbone(run, variant, survey, device)
            else:
                backbone, _, normalization = load_encoder(encoder, device)
            crop = config.embed.crop_size or config.augment.crop_size
            x = represent(backbone, survey, rows, normalization, crop, device, batch_size=config.embed.batch_size)
            probes = evaluate_probes(x, catalog, seed=config.seed, **config_targets(config.probes))
            seconds = time.perf_counter() - start
            results["variants"][name] = {"order": list(order), "run": str(run), "seconds": round(seconds, 1),
                                         "probes": probes}
            log(f"{name}: {_summary(probes)} ({seconds:.0f} s)")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "ablation.json", json.dumps(results, indent=1))
    return results


def _latest_backbone(run: Path, config: Config, survey: Any, device: Any) -> tuple[Any, Any]:
    """The backbone of a run's latest checkpoint (a run stopped early has no encoder.pt yet)."""
    from galexplore.models import MoCo
    from galexplore.survey.normalize import Normalization
    from galexplore.training.checkpoint import latest_checkpoint, load_checkpoint

    state = load_checkpoint(latest_checkpoint(run / "checkpoints"))
    model = MoCo.from_config(config.model, in_channels=survey.shape[0])
    model.load_state_dict(state["model"])
    return model.encoder.to(device).eval(), Normalization.from_dict(json.loads(state["normalization"]))


def _summary(probes: dict[str, Any]) -> str:
    """One line of a variant's held-out probe scores, each probed column's headline figure.

    >>> _summary({"seed": 0, "z": {"kind": "redshift", "metrics": {"sigma_mad": 0.03, "outlier_fraction": 0.01}},
    ...           "ring": {"kind": "morphology", "metrics": {"accuracy": 0.9}}})
    'photo-z sigma_MAD 0.0300 eta 0.010, ring accuracy 0.900'
    """
    parts = []
    for column, entry in probes.items():
        m = entry.get("metrics") if isinstance(entry, dict) else None
        if m and entry["kind"] == "redshift":
            parts.append(f"photo-z sigma_MAD {m['sigma_mad']:.4f} eta {m['outlier_fraction']:.3f}")
        elif m:
            parts.append(f"{column} {'balanced accuracy' if 'balanced_accuracy' in m else 'accuracy'} "
                         f"{m.get('balanced_accuracy', m['accuracy']):.3f}")
    return ", ".join(parts)


def format_table(results: dict[str, Any]) -> str:
    """The ablation as a text table: one row per variant, the probes' held-out metrics."""
    lines = [f"{'variant':<28}{'sigma_MAD':>10}{'eta':>8}{'p_features acc':>16}{'p_edge_on acc':>15}{'seconds':>9}"]
    for name, info in results["variants"].items():
        p = info["probes"]
        z = p.get("z_spec", {}).get("metrics", {})
        cells = [f"{z['sigma_mad']:>10.4f}" if z else f"{'-':>10}", f"{z['outlier_fraction']:>8.3f}" if z else f"{'-':>8}"]
        for column, width in (("p_features", 16), ("p_edge_on", 15)):
            m = p.get(column, {}).get("metrics")
            cells.append(f"{m['accuracy']:>{width}.3f}" if m else f"{'-':>{width}}")
        lines.append(f"{name:<28}" + "".join(cells) + f"{info['seconds']:>9.0f}")
    return "\n".join(lines)
