"""Where a MoCo training step's time goes on this machine: read, augment, keys, queries, backward.

    .venv/bin/python bench/profile_step.py [pipelines/gz1_dev.toml] [--steps 12] [--warmup 3]

Runs the trainer's own pieces (the survey read, `Augmentations.view_pair`, `MoCo.compute_keys`,
the query forward with InfoNCE, backward and the optimiser step, the momentum update and the
enqueue) on batches of the preset's survey, timing each phase with the clock after warm-up
steps, and prints one JSON object: seconds per step of each phase, its share, and images/s.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("config", nargs="?", default=str(ROOT / "pipelines" / "gz1_dev.toml"))
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args(argv)

    import torch

    from galexplore.augment import build_augmentations
    from galexplore.config import load_config
    from galexplore.models import MoCo
    from galexplore.survey.normalize import Normalization
    from galexplore.survey import open_survey
    from galexplore.training.trainer import step_generator

    config = load_config(args.config)
    survey = open_survey(config)
    normalization = Normalization.fit(survey, seed=config.seed)
    augment = build_augmentations(config.augment, tuple(survey.bands), normalization.noise,
                                  image_size=survey.shape[1], normalization=normalization)
    torch.manual_seed(config.seed)
    model = MoCo.from_config(config.model, in_channels=survey.shape[0])
    optimizer = torch.optim.SGD(model.query.parameters(), lr=config.train.lr, momentum=0.9)
    batch = config.train.batch_size
    rng = np.random.default_rng(config.seed)
    phases = ("read", "augment", "keys", "queries", "backward", "queue")
    totals = dict.fromkeys(phases, 0.0)
    for step in range(args.warmup + args.steps):
        clock = {}
        t = time.perf_counter()
        images = torch.from_numpy(survey.read(np.sort(rng.choice(len(survey), batch, replace=False))))
        clock["read"] = time.perf_counter()
        q_images, k_images = augment.view_pair(images, step_generator(config.seed, 0, step, torch.device("cpu")))
        clock["augment"] = time.perf_counter()
        model.momentum_update()
        keys = model.compute_keys(k_images, generator=step_generator(config.seed + 1, 0, step, torch.device("cpu")))
        clock["keys"] = time.perf_counter()
        loss, _ = model(q_images, keys)
        clock["queries"] = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        clock["backward"] = time.perf_counter()
        model.enqueue(keys)
        clock["queue"] = time.perf_counter()
        if step >= args.warmup:
            for name in phases:
                totals[name] += clock[name] - t
                t = clock[name]
    per_step = {name: totals[name] / args.steps for name in phases}
    whole = sum(per_step.values())
    print(json.dumps({
        "config": args.config, "batch": batch, "crop": config.augment.crop_size, "threads": torch.get_num_threads(),
        "seconds_per_step": {k: round(v, 4) for k, v in per_step.items()},
        "share": {k: round(v / whole, 3) for k, v in per_step.items()},
        "images_per_s": round(batch / whole, 1),
    }, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
