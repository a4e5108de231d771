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
from torch.utils.data import DataLoader

from galexplore.augment.geometric import center_crop
from galexplore.config import Config, config_from_dict
from galexplore.errors import GalexploreError
from galexplore.normalize import Normalization
from galexplore.survey.base import Survey
from galexplore.training.data import CutoutBatches

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
    workers: int = 0,
) -> np.ndarray:
    """L2-normalised representations (len(rows), D) float32 of the survey's `rows`.

    The backbone runs in eval mode (BN running statistics), and is put back in its previous
    mode afterwards. `workers` processes read the next batches while the device runs.
    """
    was_training = backbone.training
    backbone.eval()
    try:
        parts = [
            _encode(backbone, batch, normalization, crop_size, device)
            for batch in _batches(survey, rows, batch_size, workers, pin_memory=device.type == "cuda")
        ]
    finally:
        backbone.train(was_training)
    if not parts:
        return np.zeros((0, 0), dtype=np.float32)
    return np.concatenate(parts)


def _batches(survey: Survey, rows: np.ndarray, batch_size: int, workers: int, pin_memory: bool) -> Iterator[torch.Tensor]:
    """The survey's `rows` as batches of images, read ahead by `workers` processes (0: inline)."""
    rows = np.asarray(rows, dtype=np.int64)
    positions = [list(range(start, min(start + batch_size, len(rows)))) for start in range(0, len(rows), batch_size)]
    if workers == 0 or len(positions) < 2:
        for batch in positions:
            yield torch.from_numpy(survey.read(rows[batch]))
        return
    yield from DataLoader(
        CutoutBatches(survey, rows), batch_size=None, sampler=positions, num_workers=workers,
        pin_memory=pin_memory, prefetch_factor=4,
    )


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
    from galexplore.training.checkpoint import load_checkpoint

    state = load_checkpoint(path)
    if state.get("format") != ENCODER_FORMAT:
        raise GalexploreError(
            f"{path}: not a galexplore encoder (format {state.get('format')!r}); expected the "
            f"encoder.pt that `galexplore train` writes at the end of a run"
        )
    return _backbone(state["backbone"], encoder_metadata(state), str(path), device)


def encoder_metadata(state: dict) -> dict:
    """What an encoder needs besides its weights (format, step, config, normalisation, bands), as JSON data."""
    return {key: state[key] for key in ("format", "step", "config", "normalization", "bands")}


def encoder_arrays(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    """An `encoder.pt` as plain arrays and JSON metadata: how an atlas carries its encoder (no pickles)."""
    from galexplore.training.checkpoint import load_checkpoint

    state = load_checkpoint(path)
    arrays = {name: tensor.detach().cpu().numpy() for name, tensor in state["backbone"].items()}
    return arrays, encoder_metadata(state)


def load_encoder_arrays(
    arrays: dict[str, np.ndarray], metadata: dict, source: str, device: torch.device | None = None
) -> tuple[nn.Module, Config, Normalization]:
    """The backbone, config and normalisation from `encoder_arrays`' output (e.g. an atlas's encoder.npz)."""
    if metadata.get("format") != ENCODER_FORMAT:
        raise GalexploreError(f"{source}: encoder format {metadata.get('format')!r}; expected {ENCODER_FORMAT!r}")
    state = {name: torch.from_numpy(np.array(value)) for name, value in arrays.items()}
    return _backbone(state, metadata, source, device)


def _backbone(
    weights: dict[str, torch.Tensor], metadata: dict, source: str, device: torch.device | None
) -> tuple[nn.Module, Config, Normalization]:
    from galexplore.models import build_encoder

    config = config_from_dict(tomllib.loads(metadata["config"]), source=source)
    normalization = Normalization.from_dict(json.loads(metadata["normalization"]))
    backbone = build_encoder(config.model, in_channels=len(metadata["bands"]))
    try:
        backbone.load_state_dict(weights)
    except RuntimeError as exc:
        raise GalexploreError(f"{source}: weights do not fit a {config.model.arch} encoder ({str(exc).splitlines()[0]})") from None
    return backbone.to(device or torch.device("cpu")).eval(), config, normalization
