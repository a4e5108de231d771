"""Label efficiency on an atlas: photo-z of the supervised baseline, the fine-tuned MoCo encoder and the linear probe.

    .venv/bin/python bench/label_efficiency.py [ATLAS] [--counts 100 300 1000 3000] [--epochs 2]
        [--min-steps 80] [--threads 2]

For each label count n (the probes' seed-0 split and subsets, `galexplore.probes.sweep_rows`):
(a) the encoder's architecture trained from scratch on the n labelled galaxies, (b) the atlas's
MoCo encoder fine-tuned on them (backbone at --finetune-scale x the head's learning rate), and
(c) the linear probe on the atlas's frozen embeddings; each scored on the same test rows. Then
`label_efficiency` of (c) and of (b) against (a), on sigma_MAD and on the outlier fraction.
Prints one JSON object; every run's wall time is in it.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("atlas", nargs="?", default=str(ROOT / "data" / "atlas" / "demo"))
    parser.add_argument("--counts", type=int, nargs="+", default=[100, 300, 1000, 3000])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--min-steps", type=int, default=80)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--finetune-scale", type=float, default=0.1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--save", action="store_true", help="record the result in the atlas (label_efficiency.json)")
    parser.add_argument("--only", choices=["scratch", "finetune", "probe"], nargs="+",
                        default=["scratch", "finetune", "probe"])
    args = parser.parse_args()

    import torch

    from galexplore.atlas import open_atlas
    from galexplore.embed import load_encoder_arrays
    from galexplore.evaluate.metrics import photoz_metrics
    from galexplore.finetune import (
        SupervisedConfig,
        label_efficiency,
        predict_supervised,
        train_supervised,
    )
    from galexplore.probes import evaluate_probes, sweep_rows
    from galexplore.survey import open_survey

    torch.set_num_threads(args.threads)
    atlas = open_atlas(args.atlas)
    backbone, config, normalization = load_encoder_arrays(
        atlas.npz("encoder.npz"), atlas.json("encoder.json"), str(args.atlas))
    survey = open_survey(config)
    catalog = survey.catalog
    z = catalog["z_spec"].to_numpy(dtype=np.float64)
    if not np.array_equal(atlas.read_catalog(["z_spec"])["z_spec"].to_numpy(dtype=np.float64), z, equal_nan=True):
        raise SystemExit(f"{args.atlas}: the atlas's z_spec rows differ from its survey's; the curves would not compare")
    test, subsets = sweep_rows(catalog, "z_spec", args.counts, seed=0)
    scratch = SupervisedConfig(epochs=args.epochs, min_steps=args.min_steps, batch_size=args.batch_size,
                               lr=args.lr, seed=0)
    finetune = SupervisedConfig(epochs=args.epochs, min_steps=args.min_steps, batch_size=args.batch_size,
                                lr=args.lr, backbone_lr_scale=args.finetune_scale, seed=0)
    out: dict = {"atlas": str(args.atlas), "n_test": len(test), "threads": args.threads,
                 "predict_crop": config.augment.crop_size, "scratch_config": vars(scratch),
                 "finetune_config": vars(finetune), "curves": {}}

    for name, sup, init in (("scratch", scratch, None), ("finetune", finetune, backbone)):
        if name not in args.only:
            continue
        curve = []
        for n, train in subsets.items():
            start = time.perf_counter()
            model = train_supervised(survey, train, z[train], "redshift", config=config,
                                     normalization=normalization, init_backbone=init, sup=sup)
            trained = time.perf_counter()
            pred = predict_supervised(model, survey, test, "redshift", normalization, config.augment.crop_size)
            steps = max(sup.epochs * max(1, n // min(sup.batch_size, n)), sup.min_steps)
            curve.append({"n_train": n, "steps": steps, "train_s": round(trained - start, 1),
                          "predict_s": round(time.perf_counter() - trained, 1),
                          "metrics": photoz_metrics(pred, z[test])})
            print(json.dumps({name: curve[-1]}), flush=True)
        out["curves"][name] = curve

    if "probe" in args.only:
        start = time.perf_counter()
        probes = evaluate_probes(atlas.embeddings, atlas.catalog, seed=0, label_counts=args.counts)["z_spec"]
        out["curves"]["probe"] = probes["sweep"]
        out["probe_s"] = round(time.perf_counter() - start, 1)
        assert probes["n_test"] == len(test), "the probes scored other test rows"

    curves = out["curves"]
    if "scratch" in curves:
        out["label_efficiency"] = {}
        for metric in ("sigma_mad", "outlier_fraction"):
            base = [(e["n_train"], e["metrics"][metric]) for e in curves["scratch"]]
            for name in ("probe", "finetune"):
                if name in curves:
                    ssl = [(e["n_train"], e["metrics"][metric]) for e in curves[name]]
                    out["label_efficiency"][f"{name}_vs_scratch_{metric}"] = label_efficiency(ssl, base)
    print(json.dumps(out, indent=1))
    if args.save:
        from galexplore.atlas import AtlasWriter

        AtlasWriter(args.atlas, name=atlas.name).write_json("label_efficiency.json", out)


if __name__ == "__main__":
    main()
