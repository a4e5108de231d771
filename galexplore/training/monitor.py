"""What a training run reports while it trains: the kNN monitor and the run's log.

The monitor scores the representations of up to `MONITOR_ROWS` labelled galaxies at the end of
every epoch, as the report card does (kNN, 5-fold, every label the config declares) but without
the linear probes, with the health of the representations (uniformity, alignment of two
augmented views, effective rank). Each record, of a step or of a monitor evaluation, is one JSON
object in ``<run>/train_log.jsonl`` (`RunLog`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from galexplore.config import Config
from galexplore.config.label_kinds import label_columns
from galexplore.io import atomic_write_text
from galexplore.models import MoCo
from galexplore.survey.base import Survey
from galexplore.survey.normalize import Normalization
from galexplore.training.embed import represent

MONITOR_ROWS = 2000  # labelled galaxies used by the kNN monitor (scored 5-fold, as on the report card)
ALIGNMENT_ROWS = 256  # of them, augmented twice for the monitor's alignment figure
MONITOR_K = 20


def monitor_split(catalog: Any, seed: int, n: int = MONITOR_ROWS, *,
                  config: Config) -> tuple[np.ndarray, np.ndarray]:
    """Rows of up to `n` labelled galaxies and which of them are the kNN reference (70%).

    Labelled: carrying any label the config declares, of any kind (`config.label_kinds`)."""
    from galexplore.scoring.atlas_card import labelled as has_label

    labelled = np.zeros(len(catalog), dtype=bool)
    for column, kind in label_columns(config, catalog):
        labelled |= has_label(catalog[column], kind, config.probes.unlabelled)
    rows = np.flatnonzero(labelled)
    rng = np.random.default_rng([seed, 0x3017])
    rows = np.sort(rng.permutation(rows)[:n])
    is_reference = rng.random(len(rows)) < 0.7
    return rows, is_reference


def monitor_scores(
    model: MoCo, survey: Survey, rows: np.ndarray, augment: Any,
    normalization: Normalization, config: Config, device: torch.device, views: torch.Generator,
) -> dict[str, Any]:
    """kNN scores (the report card's protocol, without the linear probes) of every label the
    config declares, and the health of the representations (read out as the atlas will: centred
    where embed.center), with the alignment of two augmented views of the first galaxies (their
    augmentations drawn from `views`)."""
    from galexplore.scoring import card
    from galexplore.scoring.atlas_card import labelled, score_label
    from galexplore.scoring.health import alignment, health

    reps = represent(model.encoder, survey, rows, normalization, config.augment.crop_size, device)
    mean = reps.mean(axis=0) if config.embed.center else np.zeros(reps.shape[1], dtype=np.float32)
    reps = card.unit_rows(reps - mean)
    catalog = survey.catalog.iloc[rows].reset_index(drop=True)
    found: dict[str, Any] = {}
    for column, kind in label_columns(config, catalog):
        mask = labelled(catalog[column], kind, config.probes.unlabelled)
        if mask.sum() >= 2 * card.FOLDS:
            scores = score_label(reps[mask], catalog[column].to_numpy()[mask], kind, config.seed, linear=False)
            found[column] = {"n": scores["n"], **scores.get("knn", {}),
                             **({"precision_at_10": scores["precision_at_10"]} if "precision_at_10" in scores else {})}
    images = torch.from_numpy(survey.read(rows[:ALIGNMENT_ROWS])).to(device)
    was_training = model.encoder.training
    model.encoder.eval()
    with torch.inference_mode():
        a, b = (card.unit_rows(card.unit_rows(model.encoder(v).float().cpu().numpy()) - mean)
                for v in augment.view_pair(images, views))
    model.encoder.train(was_training)
    figures = health(reps, config.seed, alignment_value=alignment(a, b) if len(rows) else None)
    found["health"] = {key: figures[key] for key in ("uniformity", "alignment", "random_cosine", "neighbour_cosine",
                                                     "effective_rank", "flags") if key in figures}
    return found


class RunLog:
    """Appends one JSON object per record to the run's log and passes it to a callback."""

    def __init__(self, path: Path, callback: Callable[[dict[str, Any]], None] | None, enabled: bool) -> None:
        self.path, self.callback, self.enabled = path, callback, enabled

    def forget_after(self, step: int) -> list[dict[str, Any]]:
        """Drop the records of steps after `step` (work lost with an interrupted run); return the rest."""
        if not self.path.exists():
            return []
        kept = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
                if record["step"] <= step:
                    kept.append(record)
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by a kill
        atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))
        return kept

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        if self.callback is not None:
            self.callback(record)
