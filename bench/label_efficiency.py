"""Label efficiency on an atlas: photo-z and morphology of the supervised baseline, the fine-tuned MoCo encoder and the linear probe.

    .venv/bin/python bench/label_efficiency.py [ATLAS] [--counts 100 300 1000 3000] [--epochs 2]
        [--min-steps 80] [--threads 2] [--tasks redshift morphology] [--seeds 0 1 2] [--save]

For each task (redshift: z_spec, scored by sigma_MAD, outlier fraction and bias; morphology:
p_features, scored by accuracy and ROC AUC of the majority vote) and each label count n (the
probes' seed-0 split and subsets, `galexplore.evaluate.probes.sweep_rows`): (a) the encoder's
architecture trained from scratch on the n labelled galaxies, (b) the atlas's MoCo encoder
fine-tuned on them (backbone at --finetune-scale x the head's learning rate), and (c) the linear
probe on the atlas's frozen embeddings; each scored on the same test rows. Each --seeds value
repeats every point: for (a) and (b) the training seed (weights, batch order, augmentations) on
the same n galaxies, for (c) the draw of the n galaxies (see `galexplore.evaluate.label_sweep.label_sweep`);
every entry has the mean over seeds, the std and each seed's metrics. Then `label_efficiency` of
(c) and of (b) against (a) on the mean curves. Prints a JSON line per curve and one JSON object
at the end; --save records it in the atlas as label_efficiency.json (read by `galexplore report`).
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
    parser.add_argument("--tasks", choices=["redshift", "morphology"], nargs="+", default=["redshift", "morphology"],
                        help="redshift (z_spec) and/or morphology (p_features); default both")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0],
                        help="training seeds: every point is repeated once per seed (default 0)")
    args = parser.parse_args()

    import torch

    from galexplore.atlas.files import open_atlas
    from galexplore.training.embed import load_encoder_arrays
    from galexplore.evaluate.finetune import SupervisedConfig
    from galexplore.evaluate.label_sweep import label_sweep
    from galexplore.evaluate.probes import DEFAULT_COLUMNS
    from galexplore.survey import open_survey

    torch.set_num_threads(args.threads)
    atlas = open_atlas(args.atlas)
    backbone, config, normalization = load_encoder_arrays(
        atlas.npz("encoder.npz"), atlas.json("encoder.json"), str(args.atlas))
    survey = open_survey(config)
    columns = [DEFAULT_COLUMNS[task] for task in args.tasks]
    in_atlas = atlas.read_catalog(columns)
    for column in columns:
        same = np.array_equal(in_atlas[column].to_numpy(dtype=np.float64),
                              survey.catalog[column].to_numpy(dtype=np.float64), equal_nan=True)
        if not same:
            raise SystemExit(f"{args.atlas}: the atlas's {column} rows differ from its survey's; the curves would not compare")
    sup = SupervisedConfig(epochs=args.epochs, min_steps=args.min_steps, batch_size=args.batch_size, lr=args.lr)

    def show(task: str, method: str, seed: int, curve: list[dict]) -> None:
        print(json.dumps({"task": task, "method": method, "seed": seed, "curve": curve}), flush=True)

    start = time.perf_counter()
    result = label_sweep(survey, np.asarray(atlas.embeddings, dtype=np.float32), args.counts, config=config,
                         normalization=normalization, sup=sup, backbone=backbone, tasks=args.tasks,
                         methods=args.only, seeds=args.seeds, finetune_scale=args.finetune_scale, progress=show)
    out = {"atlas": str(args.atlas), "threads": args.threads, "predict_crop": config.augment.crop_size,
           "total_s": round(time.perf_counter() - start, 1), **result}
    print(json.dumps(out, indent=1))
    if args.save:
        from galexplore.atlas.files import AtlasWriter

        AtlasWriter(args.atlas, name=atlas.name).write_json("label_efficiency.json", out)


if __name__ == "__main__":
    main()
