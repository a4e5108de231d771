"""Training throughput (images/s) of a preset's full MoCo v2 step on one device.

The step is the trainer's own (`galexplore.training.trainer._step`): two augmented views, key
shuffling, query forward/backward, momentum update, enqueue; bf16 autocast and channels_last on
CUDA. Batches are synthetic cutouts already on the device, so this measures the model and the
augmentations, not the disk (`bench/gpu.py` adds the loader, and the per-image CPU pipeline).

    python bench/train_throughput.py pipelines/sdss.toml              # on a GPU
    python bench/train_throughput.py pipelines/sdss.toml --compile    # with torch.compile
    python bench/train_throughput.py pipelines/demo.toml --device cpu --steps 5
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from galexplore.augment import build_augmentations
from galexplore.config import Config, load_config
from galexplore.models import MoCo
from galexplore.training.trainer import Distributed, _step


@dataclasses.dataclass
class Trainee:
    """A MoCo v2 model ready to step: the model, what the step calls forward (maybe compiled), the optimiser."""

    config: Config  # with model.queue raised to at least the batch
    model: MoCo
    forward: Any
    optimizer: torch.optim.Optimizer
    device: torch.device


def trainee(cfg: Config, batch: int, device: torch.device, compile: bool = False, backend: str = "inductor") -> Trainee:
    """The trainer's model, layout and optimiser for `cfg` on `device`, seeded."""
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, queue=max(cfg.model.queue, batch)))
    torch.manual_seed(0)
    model = MoCo.from_config(cfg.model, in_channels=len(cfg.survey.bands)).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    forward = torch.compile(model, backend=backend) if compile else model
    optimizer = torch.optim.SGD(model.query.parameters(), lr=cfg.train.lr, momentum=0.9)
    return Trainee(cfg, model, forward, optimizer, device)


def run_steps(t: Trainee, augment: Any, batches: Iterable[torch.Tensor], steps: int, first: int = 0) -> float:
    """Seconds of `steps` MoCo steps on the next `steps` of `batches` (B, C, H, W), device synchronised."""
    if t.device.type == "cuda":
        torch.cuda.synchronize(t.device)
    start = time.perf_counter()
    for step, images in zip(range(first, first + steps), batches):
        _step(t.model, t.forward, t.optimizer, augment, images, 0, Distributed(), step, t.device)
    if t.device.type == "cuda":
        torch.cuda.synchronize(t.device)
    return time.perf_counter() - start


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
    device = torch.device(args.device)
    t = trainee(cfg, batch, device, compile=args.compile)
    bands = cfg.survey.bands
    size = cfg.survey.image_size or cfg.simulate.image_size
    augment = build_augmentations(cfg.augment, bands, [1.0] * len(bands), image_size=size)
    images = torch.randn(batch, len(bands), size, size, device=device).abs()  # (B, C, H, W)
    run_steps(t, augment, itertools.repeat(images), args.warmup)
    seconds = run_steps(t, augment, itertools.repeat(images), args.steps, first=args.warmup)
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
