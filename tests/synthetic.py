"""Tiny seeded data shared by the training and evaluation tests."""

from __future__ import annotations

import dataclasses
import struct
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from galexplore.config import Config, load_config
from galexplore.survey.memory import ArraySurvey

PIPELINES = Path(__file__).resolve().parents[1] / "pipelines"
N = 64


def tiny_config() -> Config:
    cfg = load_config(PIPELINES / "tiny.toml")
    model = dataclasses.replace(cfg.model, queue=64, projection_dims=(32, 16), bn_splits=2)
    train_cfg = dataclasses.replace(cfg.train, batch_size=16, epochs=2, checkpoint_every=1, loader_workers=0)
    augment = dataclasses.replace(cfg.augment, crop_size=16, jitter=2)
    return dataclasses.replace(cfg, model=model, train=train_cfg, augment=augment)


def tiny_survey(seed: int = 0) -> ArraySurvey:
    """Blobs of random size and colour on noise: enough structure for a contrastive task."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:24, :24] - 11.5
    size = rng.uniform(1.5, 5.0, N)
    colour = rng.uniform(0.5, 2.0, (N, 5))
    blob = np.exp(-(xx**2 + yy**2)[None] / (2 * size[:, None, None] ** 2))
    images = colour[:, :, None, None] * blob[:, None] + rng.normal(0, 0.05, (N, 5, 24, 24))
    catalog = pd.DataFrame({
        "ra": rng.uniform(0, 360, N), "dec": rng.uniform(-30, 30, N),
        "z_spec": size / 20, "p_features": (colour[:, 0] > 1.25).astype(float),
    })
    return ArraySurvey(images.astype(np.float32), catalog, bands=list("ugriz"))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height RGB pixels, with no real pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")
