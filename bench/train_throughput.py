"""Training throughput (images/s) of a preset's full MoCo v2 step on one device.

The step is the trainer's own (`galexplore.training.trainer._step`): two augmented views, key
shuffling, query forward/backward, momentum update, enqueue; bf16 autocast and channels_last on
CUDA. Batches are synthetic cutouts already on the device, so this measures the model and the
augmentations, not the disk.

    python bench/train_throughput.py pipelines/sdss.toml              # on a GPU
    python bench/train_throughput.py pipelines/sdss.toml --compile    # with torch.compile
    python bench/train_throughput.py pipelines/demo.toml --device cpu --steps 5
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch

from galexplore.augment import build_augmentations
from galexplore.config import load_config
from galexplore.models import MoCo
from galexplore.training.trainer import Distributed, _step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, help="default: the config's train.batch_size")
    parser.add_argument("--steps", type=int, default=30, help="timed steps")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()

    cfg = load_config(args.config)
    batch = args.batch_size or cfg.train.batch_size
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, queue=max(cfg.model.queue, batch)))
    device = torch.device(args.device)
    bands = cfg.survey.bands
    size = cfg.survey.image_size or cfg.simulate.image_size
    torch.manual_seed(0)
    model = MoCo.from_config(cfg.model, in_channels=len(bands)).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    forward = torch.compile(model) if args.compile else model
    optimizer = torch.optim.SGD(model.query.parameters(), lr=cfg.train.lr, momentum=0.9)
    augment = build_augmentations(cfg.augment, bands, [1.0] * len(bands), image_size=size)
    images = torch.randn(batch, len(bands), size, size, device=device).abs()  # (B, C, H, W)

    def run(steps: int, first: int) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for step in range(first, first + steps):
            _step(model, forward, optimizer, augment, images, 0, Distributed(), step, device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    run(args.warmup, 0)
    seconds = run(args.steps, args.warmup)
    result = {
        "config": str(args.config), "arch": cfg.model.arch, "crop": cfg.augment.crop_size,
        "stored": size, "batch_size": batch, "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "compile": args.compile, "steps": args.steps, "seconds": round(seconds, 3),
        "images_per_s": round(args.steps * batch / seconds, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
