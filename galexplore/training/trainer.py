"""The MoCo v2 training loop: one process, or one per GPU under torchrun.

A run folder holds everything a run makes::

    <run>/config.toml            the resolved config
    <run>/checkpoints/step-*.pt  the last few checkpoints (atomic; weights_only-loadable)
    <run>/train_log.jsonl        one JSON object per logged step and per monitor evaluation
    <run>/encoder.pt             the final backbone with its normalisation: what `embed` reads

Determinism: the batches of a step come from the epoch's seeded order (`EpochBatches`), and
every random draw of a step (augmentations, BN shuffling) from a generator seeded with
(seed, rank, step). A run resumed from a checkpoint at step s therefore computes exactly what an
uninterrupted one computes at step s (bitwise on CPU), without replaying anything.

What a run reports as it goes (the kNN monitor at each epoch's end, the log) is in
`galexplore.training.monitor`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as torch_dist

from galexplore.augment import build_augmentations
from galexplore.config import Config, absolute_paths, config_from_dict, to_toml, write_resolved
from galexplore.training.embed import save_encoder
from galexplore.errors import GalexploreError
from galexplore.io import remove_partials
from galexplore.models import MoCo
from galexplore.training.distributed import Distributed, shuffled_keys
from galexplore.training.monitor import MONITOR_K, RunLog, monitor_scores, monitor_split
from galexplore.survey.normalize import Normalization
from galexplore.survey import open_survey
from galexplore.survey.base import Survey
from galexplore.training.checkpoint import (
    checkpoint_path,
    latest_checkpoint,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from galexplore.training.data import CutoutBatches, EpochBatches, batch_loader
from galexplore.training.schedule import cosine_lr

CHECKPOINT_FORMAT = "galexplore-moco/1"
KEEP_CHECKPOINTS = 2


@dataclass
class TrainResult:
    """What a finished (or stopped) run produced."""

    run: Path
    step: int
    total_steps: int
    encoder: Path | None
    last_loss: float
    monitor: dict[str, Any] = field(default_factory=dict)
    model: MoCo | None = None


def step_generator(seed: int, rank: int, step: int, device: torch.device) -> torch.Generator:
    """The generator for every random draw of one step on one rank."""
    g = torch.Generator(device=device)
    g.manual_seed(int(np.random.SeedSequence([seed, rank, step]).generate_state(1, np.uint64)[0] >> 1))
    return g


def train(
    config: Config,
    run: Path,
    *,
    device: torch.device | None = None,
    dist: Distributed = Distributed(),
    resume: bool = True,
    workers: int | None = None,
    max_steps: int | None = None,
    log: Callable[[dict[str, Any]], None] | None = None,
    survey: Survey | None = None,
) -> TrainResult:
    """Train a MoCo v2 encoder on the config's survey into the folder `run`.

    resume: continue from the latest checkpoint in `run` when there is one. workers: DataLoader
    processes (default train.loader_workers). max_steps: stop
    after this global step (for tests and interruption experiments); the schedule still spans
    the configured epochs. log: called with each log record (also written to train_log.jsonl).
    """
    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cfg_train, run = config.train, Path(run)
    survey = survey or open_survey(config)
    bands = tuple(survey.bands)
    c, h, _ = survey.shape

    latest = latest_checkpoint(run / "checkpoints") if resume else None
    state = _load_compatible(latest, config, bands) if latest else None
    if state is not None:
        normalization = Normalization.from_dict(json.loads(state["normalization"]))
    else:
        normalization = Normalization.fit(survey, seed=config.seed)
    augment = build_augmentations(
        config.augment, bands, normalization.noise, image_size=h, normalization=normalization
    )

    torch.manual_seed(config.seed)  # identical initial weights on every rank
    # Under DDP each process's batch is already one BN sub-batch; keys are shuffled across ranks.
    model_cfg = config.model if dist.world_size == 1 else dataclasses.replace(config.model, bn_splits=1)
    model = MoCo.from_config(model_cfg, in_channels=c).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(
        model.query.parameters(), lr=cfg_train.lr, momentum=0.9, weight_decay=cfg_train.weight_decay
    )
    step = 0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        set_rng_state(state["rng"])  # the global generators, for anything outside the step's own
        step = int(state["step"])
    forward = model
    if dist.world_size > 1:
        forward = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None, process_group=dist.group,
            broadcast_buffers=False,
        )
    if cfg_train.compile:
        forward = torch.compile(forward)

    steps_per_epoch = len(survey) // (cfg_train.batch_size * dist.world_size)
    if steps_per_epoch < 1:
        raise GalexploreError(
            f"train.batch_size {cfg_train.batch_size} x {dist.world_size} processes exceeds the "
            f"survey's {len(survey)} galaxies; expected at least one full batch per epoch"
        )
    total_steps = cfg_train.epochs * steps_per_epoch
    warmup_steps = cfg_train.warmup_epochs * steps_per_epoch
    stop = min(total_steps, max_steps) if max_steps is not None else total_steps
    if dist.is_main:
        write_resolved(config, run)
        for folder in (run, run / "checkpoints"):
            remove_partials(folder)  # a checkpoint or log being written when the last run was killed
    logger = RunLog(run / "train_log.jsonl", log, enabled=dist.is_main)
    kept = logger.forget_after(step) if dist.is_main else []  # records of steps a resumed run will redo
    monitor_rows, _ = monitor_split(survey.catalog, config.seed, config=config)
    dataset = CutoutBatches(survey)
    last_loss, monitor = (math.nan if state is None else float(state.get("loss", math.nan))), {}
    tick, tick_step = time.perf_counter(), step

    def evaluate_at_epoch_end() -> dict[str, Any]:
        """The kNN monitor, logged, at the end of an epoch (or of the run); else the last one."""
        if (step % steps_per_epoch == 0 or step >= stop) and len(monitor_rows) and dist.is_main:
            found = _monitor(model, survey, monitor_rows, augment, normalization, config, device)
            logger.write({"step": step, "epoch": step // steps_per_epoch, "monitor": found})
            return found
        return monitor

    if step and not any("monitor" in r and r["step"] == step for r in kept):
        monitor = evaluate_at_epoch_end()  # killed after the epoch's last checkpoint, before this

    while step < stop:
        epoch, skip = divmod(step, steps_per_epoch)
        sampler = EpochBatches(len(survey), cfg_train.batch_size, config.seed, epoch, dist.rank, dist.world_size, skip)
        loader_workers = cfg_train.loader_workers if workers is None else workers
        for images in batch_loader(dataset, sampler, loader_workers, pin_memory=device.type == "cuda"):
            lr = cosine_lr(step, total_steps, cfg_train.lr, warmup_steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            stats = _step(model, forward, optimizer, augment, images, config.seed, dist, step, device)
            step += 1
            last_loss = stats["loss"]
            if step % max(1, min(50, steps_per_epoch // 4 or 1)) == 0 or step == stop:
                now = time.perf_counter()
                rate = (step - tick_step) * cfg_train.batch_size * dist.world_size / max(now - tick, 1e-9)
                logger.write({"step": step, "epoch": epoch, "lr": lr, "images_per_s": rate, **stats})
                tick, tick_step = now, step
            if step % cfg_train.checkpoint_every == 0 or step == stop:
                if dist.is_main:
                    _save(run, model, optimizer, step, last_loss, config, normalization, bands)
            if step >= stop:
                break
        monitor = evaluate_at_epoch_end()
    if dist.world_size > 1:
        _average_buffers(model, dist)
    encoder = None
    if step >= total_steps and dist.is_main:
        encoder = save_encoder(run / "encoder.pt", model, config, normalization, bands, step)
    if dist.world_size > 1:
        torch_dist.barrier(group=dist.group)
    return TrainResult(run, step, total_steps, encoder, last_loss, monitor, model)


def _step(
    model: MoCo, forward: Any, optimizer: torch.optim.Optimizer, augment: Any, images: torch.Tensor,
    seed: int, dist: Distributed, step: int, device: torch.device,
) -> dict[str, float]:
    """One MoCo v2 step on this rank's batch (B, C, H, W) of raw fluxes."""
    gen = step_generator(seed, dist.rank, step, device)  # augmentations, on the device
    shuffle_gen = step_generator(seed + 1, dist.rank, step, torch.device("cpu"))  # BN shuffling
    images = images.to(device, non_blocking=True)
    q_images, k_images = augment.view_pair(images, gen)  # each (B, C, crop, crop)
    if device.type == "cuda":
        q_images = q_images.contiguous(memory_format=torch.channels_last)
        k_images = k_images.contiguous(memory_format=torch.channels_last)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    with autocast:
        model.momentum_update()
        if dist.world_size > 1:
            keys, all_keys = shuffled_keys(model.compute_keys, k_images, dist.group, generator=shuffle_gen)
        else:
            keys = all_keys = model.compute_keys(k_images, generator=shuffle_gen)
        loss, stats = forward(q_images, keys)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    model.enqueue(all_keys)
    return {"loss": float(loss.detach()), **{k: float(v) for k, v in stats.items()}}


def _average_buffers(model: MoCo, dist: Distributed) -> None:
    """Average the BN running statistics over ranks, so every rank ends with the same model.

    Parameters are equal by construction (DDP averages gradients) and so is the queue (every
    rank enqueues all keys); BN running statistics are each rank's own until this.
    """
    for buffer in model.buffers():
        if buffer.is_floating_point():
            torch_dist.all_reduce(buffer, group=dist.group)
            buffer /= dist.world_size


def _monitor(
    model: MoCo, survey: Survey, rows: np.ndarray, augment: Any,
    normalization: Normalization, config: Config, device: torch.device,
) -> dict[str, Any]:
    """The kNN monitor (`monitor_scores`) of the model as it is; its augmented views are those of a
    step never trained, so every evaluation of a run sees the same views."""
    views = step_generator(config.seed, 0, 1 << 40, device)
    return monitor_scores(model, survey, rows, augment, normalization, config, device, views)


def _load_compatible(path: Path, config: Config, bands: tuple[str, ...]) -> dict[str, Any]:
    state = load_checkpoint(path)
    if state.get("format") != CHECKPOINT_FORMAT:
        raise GalexploreError(f"{path}: not a galexplore training checkpoint (format {state.get('format')!r})")
    old = config_from_dict(tomllib.loads(state["config"]), source=str(path))
    # How a run is executed (loader processes, checkpoint spacing, compilation) may change on
    # resume; what it computes may not.
    operational = {"loader_workers": 0, "checkpoint_every": 1, "compile": False}
    old = dataclasses.replace(old, train=dataclasses.replace(old.train, **operational))
    config = dataclasses.replace(config, train=dataclasses.replace(config.train, **operational))
    for section in ("model", "augment", "train"):
        if getattr(old, section) != getattr(config, section):
            raise GalexploreError(
                f"{path}: the checkpoint was trained with a different [{section}] section; "
                f"resume with the same config, or train into a new folder"
            )
    if tuple(state["bands"]) != bands:
        raise GalexploreError(
            f"{path}: the checkpoint was trained on bands {','.join(state['bands'])}; the survey has "
            f"{','.join(bands)}"
        )
    return state


def _save(
    run: Path, model: MoCo, optimizer: torch.optim.Optimizer, step: int, loss: float, config: Config,
    normalization: Normalization, bands: tuple[str, ...],
) -> None:
    folder = run / "checkpoints"
    save_checkpoint(
        checkpoint_path(folder, step),
        {
            "format": CHECKPOINT_FORMAT,
            "step": step,
            "loss": loss,  # the step's, for a run resumed at its very end to report
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "rng": rng_state(),
            "config": to_toml(absolute_paths(config)),
            "normalization": json.dumps(normalization.to_dict()),
            "bands": list(bands),
        },
    )
    for old in sorted(folder.glob("step-*.pt"))[:-KEEP_CHECKPOINTS]:
        old.unlink(missing_ok=True)


# MONITOR_K and monitor_split live in galexplore.training.monitor, Distributed in
# galexplore.training.distributed, save_encoder in galexplore.training.embed; importable from here too
__all__ = ["MONITOR_K", "Distributed", "TrainResult", "monitor_split", "save_encoder", "step_generator", "train"]
