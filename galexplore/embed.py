"""Representations of cutouts: centre crop, the training normalisation, the frozen backbone.

The same path serves the training monitor, the embed stage and the app's search by image, so a
galaxy's representation never depends on who asked for it.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from galexplore.augment.geometric import center_crop
from galexplore.config import Config, config_from_dict
from galexplore.errors import GalexploreError
from galexplore.normalize import Normalization
from galexplore.survey.base import Survey

ENCODER_FORMAT = "galexplore-encoder/1"


def prepare(images: torch.Tensor, normalization: Normalization, crop_size: int) -> torch.Tensor:
    """Raw fluxes (B, C, H, W) -> the network's input (B, C, crop_size, crop_size)."""
    if images.shape[-1] != crop_size or images.shape[-2] != crop_size:
        images = center_crop(images, crop_size)
    return normalization(images)


@torch.inference_mode()
def represent(
    backbone: nn.Module,
    survey: Survey,
    rows: np.ndarray,
    normalization: Normalization,
    crop_size: int,
    device: torch.device,
    batch_size: int = 256,
) -> np.ndarray:
    """L2-normalised representations (len(rows), D) float32 of the survey's `rows`.

    The backbone runs in eval mode (BN running statistics), and is put back in its previous
    mode afterwards.
    """
    was_training = backbone.training
    backbone.eval()
    try:
        parts = [_encode(backbone, batch, normalization, crop_size, device) for batch in _batches(survey, rows, batch_size)]
    finally:
        backbone.train(was_training)
    if not parts:
        return np.zeros((0, 0), dtype=np.float32)
    return np.concatenate(parts)


def _batches(survey: Survey, rows: np.ndarray, batch_size: int) -> Iterator[torch.Tensor]:
    rows = np.asarray(rows, dtype=np.int64)
    for start in range(0, len(rows), batch_size):
        yield torch.from_numpy(survey.read(rows[start : start + batch_size]))


def _encode(
    backbone: nn.Module, batch: torch.Tensor, normalization: Normalization, crop_size: int, device: torch.device
) -> np.ndarray:
    x = prepare(batch.to(device, non_blocking=True), normalization, crop_size)
    if device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            h = backbone(x)
    else:
        h = backbone(x)
    h = torch.nn.functional.normalize(h.float(), dim=1)  # (B, D), unit length
    return h.cpu().numpy()


def load_encoder(path: Path, device: torch.device | None = None) -> tuple[nn.Module, Config, Normalization]:
    """The trained backbone of an `encoder.pt` (eval mode, on `device`), its config and normalisation."""
    from galexplore.models import build_encoder
    from galexplore.training.checkpoint import load_checkpoint

    state = load_checkpoint(path)
    if state.get("format") != ENCODER_FORMAT:
        raise GalexploreError(
            f"{path}: not a galexplore encoder (format {state.get('format')!r}); expected the "
            f"encoder.pt that `galexplore train` writes at the end of a run"
        )
    config = config_from_dict(tomllib.loads(state["config"]), source=str(path))
    normalization = Normalization.from_dict(json.loads(state["normalization"]))
    backbone = build_encoder(config.model, in_channels=len(state["bands"]))
    try:
        backbone.load_state_dict(state["backbone"])
    except RuntimeError as exc:
        raise GalexploreError(f"{path}: weights do not fit a {config.model.arch} encoder ({str(exc).splitlines()[0]})") from None
    return backbone.to(device or torch.device("cpu")).eval(), config, normalization
