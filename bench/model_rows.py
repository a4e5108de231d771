"""Rows of the training and embedding path: augmenting a batch, and embedding images.

- augmentation: a batch of SDSS-sized cutouts through the sdss preset's whole [augment] list,
  ours (`galexplore.augment`, batched tensors) against the per-image pipeline of the original
  papers (`bench.augment_reference`), both on one CPU thread (a per-core comparison: the
  reference runs in one process, as each DataLoader worker would);
- embedding: images/s of the embed stage's `represent` (read from an HDF5 survey, centre crop,
  normalise, backbone) against a bare ``model(x)`` loop over the same batches already prepared
  in memory: whether the input pipeline holds the model back.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from bench.inputs import SDSS_BANDS, SKY_NOISE, cutouts, write_survey
from bench.measure import Goal, Row, interleaved

if TYPE_CHECKING:
    from bench.suite import Context
    from galexplore.survey.normalize import Normalization


def augment_rows(ctx: Context) -> list[Row]:
    import torch

    from bench.augment_reference import ReferenceAugment
    from galexplore.augment import build_augmentations
    from galexplore.config import load_config

    s = ctx.sizes
    cfg = load_config(s.augment_config)
    size, bands = cfg.survey.image_size, cfg.survey.bands
    noise = [SKY_NOISE] * len(bands)
    normalization = _normalization(bands)
    images = cutouts(s.augment_batch, size, seed=1)  # (B, C, H, W)
    batch = torch.from_numpy(images)
    ours = build_augmentations(cfg.augment, bands, noise, image_size=size, normalization=normalization)
    reference = ReferenceAugment.from_config(cfg.augment, noise, normalization)
    generator, rng = torch.Generator().manual_seed(0), np.random.default_rng(0)
    threads = torch.get_num_threads()

    def ours_on(count: int) -> None:
        torch.set_num_threads(count)
        ours(batch, generator)

    try:
        times = interleaved({
            "ours": lambda r: ours_on(1),
            "ours, all threads": lambda r: ours_on(threads),
            "reference": lambda r: reference.batch(images, rng),
        }, repeat=s.augment_repeat)
    finally:
        torch.set_num_threads(threads)
    has_skimage = importlib.util.find_spec("skimage") is not None
    notes = {
        "order": ", ".join(cfg.augment.order) + " + asinh normalisation",
        f"ours on {threads} threads": f"{times['ours, all threads']:.3f} s",
        "reference": "scipy.ndimage affine_transform (crop only) + gaussian_filter + numpy"
                     + ("" if has_skimage else "; scikit-image not installed"),
    }
    name = f"augmentation, batch of {len(images)} {len(bands)}x{size}x{size} -> {cfg.augment.crop_size}x{cfg.augment.crop_size}"
    return [Row("augment", name, "s", times["ours"], "galexplore.augment, batched torch, 1 thread",
                times["reference"], "per-image numpy/scipy, 1 process", len(images), None,
                Goal("ratio", "<=", 0.2), notes)]


def embed_rows(ctx: Context) -> list[Row]:
    import torch

    from galexplore.config import load_config
    from galexplore.training.embed import prepare_cutouts, reading_workers, reads_ahead, represent
    from galexplore.models import build_encoder
    from galexplore.survey.hdf5 import HDF5Survey

    s = ctx.sizes
    cfg = load_config(s.embed_config)
    size = cfg.simulate.image_size
    crop = cfg.embed.crop_size or cfg.augment.crop_size
    survey = HDF5Survey(write_survey(ctx.work / f"cutouts-{s.embed_n}x{size}.h5", s.embed_n, size))
    torch.manual_seed(0)
    # as the embed stage runs it: eval mode, channels_last weights, the same batches and threads
    backbone = build_encoder(cfg.model, in_channels=len(SDSS_BANDS)).eval().to(memory_format=torch.channels_last)
    normalization = _normalization(SDSS_BANDS)
    rows = np.arange(s.embed_n)
    step = cfg.embed.batch_size
    device = torch.device("cpu")
    workers = reading_workers(cfg.train.loader_workers, device)
    # what the bare loop is fed: (B, C, crop, crop), channels_last, as `represent` makes them
    prepared = [torch.from_numpy(prepare_cutouts(survey.read(rows[i : i + step]), normalization, crop, channels_last=True))
                for i in range(0, len(rows), step)]

    @torch.inference_mode()
    def bare() -> None:
        for x in prepared:
            backbone(x)

    def ours() -> None:
        represent(backbone, survey, rows, normalization, crop, device, batch_size=step, workers=workers)

    try:
        times = interleaved({"ours": lambda r: ours(), "bare": lambda r: bare()}, repeat=s.embed_repeat)
    finally:
        survey.close()
    notes = {"model": f"{cfg.model.arch} ({cfg.model.stem} stem), {crop}x{crop}, fp32, channels_last, eval, inference_mode",
             "batch": step,
             "reading": f"{workers} processes" if workers else "a background thread" if reads_ahead(device) else "inline",
             "torch threads": torch.get_num_threads()}
    return [Row("embed", "embedding throughput", "images/s", s.embed_n / times["ours"],
                "galexplore represent: HDF5 read, crop, normalise, model", s.embed_n / times["bare"],
                "bare model(x) loop, batches in memory", s.embed_n, cfg.model.representation_dim,
                Goal("ratio", ">=", 0.9), notes)]


def _normalization(bands: Sequence[str]) -> Normalization:
    from galexplore.survey.normalize import Normalization

    return Normalization(bands=tuple(bands), background=(0.0,) * len(bands), noise=(SKY_NOISE,) * len(bands))
