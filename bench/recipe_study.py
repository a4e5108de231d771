"""The recipe study: train one variant of a preset, score its representations, log one record.

    .venv/bin/python bench/recipe_study.py NAME --preset pipelines/gz1_dev.toml \
        [--set model.temperature=0.1 --set train.epochs=20 ...] [--label gz1_type] \
        [--ignore unknown] [--work data/study] [--baselines]

Trains with the real trainer (`galexplore.training.train`) into WORK/NAME, embeds every galaxy
with the real embedding path, and scores the representations by the report card's protocol
(`galexplore.scoring.card`: kNN k = 20 cosine, stratified 5-fold; a linear probe on the same
folds; precision@10 per class) and their health (`galexplore.scoring.health`), for several
read-outs of the same network:

- ``plain``: the L2-normalised pooled backbone features (what the atlas stores today);
- ``centred``: the same less their mean over the survey, re-normalised;
- ``dihedral``: the mean over the 8 rotations and flips of each cutout, centred.

With --baselines, the same scores, on the labelled galaxies alone, for raw-pixel PCA (128 dims,
of the normalised embed crop) and the network untrained. Each run appends one JSON line (the
overrides, minutes, every figure) to WORK/results.jsonl and prints it. One run at a time: runs
share the cores.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def override(raw: dict[str, Any], assignments: list[str]) -> dict[str, Any]:
    """`raw` (a parsed config) with each "table.key=value" (value as TOML) set."""
    for text in assignments:
        key, _, value = text.partition("=")
        *tables, last = key.strip().split(".")
        node = raw
        for table in tables:
            node = node.setdefault(table, {})
        node[last] = tomllib.loads(f"v = {value}")["v"]
    return raw


def dihedral(x: "torch.Tensor") -> list["torch.Tensor"]:  # noqa: F821
    """The 8 rotations and flips of (B, C, H, W)."""
    import torch

    out = []
    for flipped in (x, torch.flip(x, dims=(-1,))):
        out.extend(torch.rot90(flipped, r, dims=(-2, -1)) for r in range(4))
    return out


def readouts(backbone: Any, images: np.ndarray, normalization: Any, crop: int) -> dict[str, np.ndarray]:
    """plain, centred and dihedral read-outs (N, D) of the backbone on raw cutouts (N, C, H, W)."""
    import torch

    from galexplore.training.embed import prepare_cutouts
    from galexplore.scoring.card import unit_rows

    backbone.eval()
    plain, sym = [], []
    with torch.inference_mode():
        for start in range(0, len(images), 256):
            x = torch.from_numpy(prepare_cutouts(images[start : start + 256], normalization, crop))
            views = [backbone(v.contiguous()) for v in dihedral(x)]
            plain.append(views[0].numpy())
            sym.append(torch.stack([torch.nn.functional.normalize(v, dim=1) for v in views]).mean(0).numpy())
    p, s = unit_rows(np.concatenate(plain)), unit_rows(np.concatenate(sym))
    return {"plain": p, "centred": unit_rows(p - p.mean(0)), "dihedral": unit_rows(s - s.mean(0))}


def score(x: np.ndarray, labels: np.ndarray, kind: str) -> dict[str, Any]:
    from galexplore.scoring import card
    from galexplore.scoring.health import health

    if kind == "redshift":
        out = card.redshift_scores(x, labels)
    elif kind == "fraction":
        out = card.fraction_scores(x, labels)
    else:
        out = card.categorical_scores(x, labels)
    h = health(x)
    out["health"] = {k: h[k] for k in ("uniformity", "random_cosine", "neighbour_cosine", "effective_rank", "flags")}
    return out


def pixels(images: np.ndarray, normalization: Any, crop: int, dim: int = 128) -> np.ndarray:
    """Raw-pixel PCA: the normalised embed crop (N, C*crop*crop) on its first `dim` axes."""
    from galexplore.training.embed import prepare_cutouts

    flat = prepare_cutouts(images, normalization, crop).reshape(len(images), -1).astype(np.float64)
    flat -= flat.mean(axis=0)
    _, _, vt = np.linalg.svd(flat, full_matrices=False)
    return (flat @ vt[:dim].T).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("name")
    parser.add_argument("--preset", default="pipelines/gz1_dev.toml")
    parser.add_argument("--set", action="append", default=[], dest="assignments")
    parser.add_argument("--label", default="gz1_type")
    parser.add_argument("--kind", choices=("categorical", "redshift", "fraction"), default="categorical")
    parser.add_argument("--ignore", action="append", default=[], help="label values that mean no label")
    parser.add_argument("--catalog", default="", help="a catalog to read instead of the survey's")
    parser.add_argument("--work", default="data/study")
    parser.add_argument("--baselines", action="store_true")
    parser.add_argument("--no-train", action="store_true", help="baselines only")
    args = parser.parse_args(argv)

    import torch

    from galexplore.config import config_from_dict
    from galexplore.models import build_encoder
    from galexplore.survey.normalize import Normalization
    from galexplore.survey import open_survey
    from galexplore.training.trainer import train

    preset = Path(args.preset).resolve()
    raw = override(tomllib.loads(preset.read_text()), args.assignments)
    if args.catalog:
        raw.setdefault("survey", {})["catalog"] = str(Path(args.catalog).resolve())
    config = config_from_dict(raw, source=str(preset))
    config = dataclasses.replace(config, base_dir=str(preset.parent))
    survey = open_survey(config)
    values = survey.catalog[args.label].to_numpy()
    keep = np.flatnonzero(~np.isin(values.astype(str), args.ignore) & (survey.catalog[args.label].notna().to_numpy()))
    images = survey.read(np.arange(len(survey)))  # the study's sets are small
    crop = config.embed.crop_size or config.augment.crop_size
    labels = values[keep]
    record: dict[str, Any] = {"name": args.name, "preset": args.preset, "set": args.assignments,
                              "label": args.label, "n": int(len(keep)), "threads": torch.get_num_threads()}
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    if not args.no_train:
        start = time.perf_counter()
        result = train(config, work / args.name, device=torch.device("cpu"), survey=survey)
        record["train_minutes"] = round((time.perf_counter() - start) / 60, 2)
        record["steps"] = result.step
        record["last_loss"] = result.last_loss
        normalization = Normalization.from_dict(json.loads(
            torch.load(result.encoder, weights_only=True)["normalization"]))
        start = time.perf_counter()
        found = readouts(result.model.encoder, images, normalization, crop)
        np.savez(work / args.name / "readouts.npz", keep=keep, **found)  # for read-out studies
        for name, x in found.items():
            record[name] = score(x[keep], labels, args.kind)
        record["eval_minutes"] = round((time.perf_counter() - start) / 60, 2)
    if args.baselines:
        normalization = Normalization.fit(survey, seed=config.seed)
        # on the labelled galaxies only: the SVD of every demo cutout (20,000 x 20,480) ran out of 24 GB
        record["pixels"] = score(pixels(images[keep], normalization, crop), labels, args.kind)
        torch.manual_seed(config.seed)
        untrained = build_encoder(config.model, in_channels=survey.shape[0])
        for name, x in readouts(untrained, images[keep], normalization, crop).items():
            record[f"untrained_{name}"] = score(x, labels, args.kind)
    with open(work / "results.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
    print(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
