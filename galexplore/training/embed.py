"""Representations of cutouts: centre crop, the training normalisation, the frozen backbone.

The same path serves the training monitor, the embed stage and the app's search by image, so a
galaxy's representation never depends on who asked for it.

Embedding is meant to run at the model's speed (the input pipeline never the bottleneck): each
batch is read as one contiguous slice where the rows allow (`Survey.read`), cropped as a view,
and normalised in one float32 buffer by numpy (whose SIMD asinh is ~70x faster than torch's
scalar loop on a CPU), laid out channels_last as it is written. Where cores are spare (beside an
accelerator, or beyond torch's threads) the next batches are made in a background thread while
the model runs (`galexplore.training.prefetch`); on a CPU whose cores torch's threads already fill, they
are made inline, which costs no more than the thread's contention (measured on 2 cores with a
ResNet-18 on 64x64: inline, 6-8% of the time is spent outside the model; a reading thread
slowed the model itself by 3-13%).
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from galexplore.config import Config, absolute_paths, config_from_dict, to_toml
from galexplore.errors import GalexploreError
from galexplore.survey.normalize import Normalization
from galexplore.training.prefetch import prefetch
from galexplore.survey.base import Survey

if TYPE_CHECKING:
    from galexplore.models import MoCo

ENCODER_FORMAT = "galexplore-encoder/1"
Array = TypeVar("Array", np.ndarray, torch.Tensor)
#: prepared batches queued for the model (besides the one it runs on and the one being read)
_READ_AHEAD = 2


def prepare(images: torch.Tensor, normalization: Normalization, crop_size: int) -> torch.Tensor:
    """Raw fluxes (B, C, H, W) -> the network's input (B, C, crop_size, crop_size)."""
    return normalization(center(images, crop_size))


def prepare_cutouts(
    cutouts: np.ndarray, normalization: Normalization, crop_size: int, channels_last: bool = False
) -> np.ndarray:
    """`prepare` for numpy: raw fluxes (B, C, H, W) -> float32 (B, C, crop_size, crop_size).

    Only the crop's pixels are normalised, into one new buffer (no float64 or per-step
    temporaries). The values equal `prepare`'s to float32 rounding (numpy's and torch's asinh
    differ by up to 2 ulp). `channels_last` lays the result out as (B, crop, crop, C) in memory
    (still indexed (B, C, crop, crop)), so `torch.from_numpy` gives a channels_last tensor; the
    same values, written in that order by the first step: 4 ms a batch of 256 x 5 x 64 x 64
    where torch's `contiguous(memory_format=...)` afterwards takes 8.
    """
    cropped = center(cutouts, crop_size)  # a view
    if not channels_last:
        return normalization(cropped, out=np.empty(cropped.shape, dtype=np.float32))
    b, c, h, w = cropped.shape
    buffer = np.empty((b, h, w, c), dtype=np.float32)  # the layout is set by the first step's writes
    return normalization(cropped, out=buffer.transpose(0, 3, 1, 2))


def center_rows(representations: np.ndarray, center: np.ndarray) -> np.ndarray:
    """unit(row - center) for each row of (B, D) representations: the embed stage's centring
    (embed.center), which an atlas's new cutouts go through too. A row equal to the centre stays 0.

    >>> center_rows(np.array([[1.0, 1.0], [1.0, 0.8]]), np.array([1.0, 0.9])).round(3).tolist()
    [[0.0, 1.0], [0.0, -1.0]]
    """
    shifted = np.asarray(representations, dtype=np.float32) - np.asarray(center, dtype=np.float32)
    norms = np.linalg.norm(shifted, axis=1, keepdims=True)
    return shifted / np.where(norms > 0, norms, np.float32(1))


def center(images: Array, size: int) -> Array:
    """The central size x size crop of (..., H, W), as a view; the unshifted crop of
    `galexplore.augment.geometric.crop`: it starts at ((H - size) // 2, (W - size) // 2)."""
    h, w = images.shape[-2:]
    if size > min(h, w):
        raise GalexploreError(f"a {size}x{size} centre crop does not fit {h}x{w} cutouts")
    top, left = (h - size) // 2, (w - size) // 2
    return images[..., top : top + size, left : left + size]


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
    mode afterwards; its input is made channels_last when its weights are (convert the backbone
    once, as the embed stage does). With `workers` = 0 batches are made in this process: read
    ahead by a background thread where cores are spare (`reads_ahead`), inline otherwise; with
    `workers` > 0 by that many processes, which pay only on an accelerator's host (see
    `reading_workers`).
    """
    was_training = backbone.training
    backbone.eval()
    channels_last = _is_channels_last(backbone) or device.type == "cuda"
    try:
        parts = [
            _encode(backbone, batch, device, channels_last)
            for batch in _batches(_PreparedBatches(survey, np.asarray(rows, dtype=np.int64), normalization,
                                                   crop_size, channels_last),
                                  batch_size, workers, pin_memory=device.type == "cuda",
                                  read_ahead=reads_ahead(device))
        ]
    finally:
        backbone.train(was_training)
    if not parts:
        return np.zeros((0, 0), dtype=np.float32)
    return np.concatenate(parts)


def reading_workers(configured: int, device: torch.device) -> int:
    """Reading processes for `represent` on `device`: `configured` on an accelerator, none on a
    CPU, where a process would take cores from the model while reading and normalising in this
    process costs 6-8% of a ResNet-18's time on 2 cores (`make bench`, group embed)."""
    return configured if device.type != "cpu" else 0


def reads_ahead(device: torch.device) -> bool:
    """Whether `represent` (with no reading processes) makes the next batches in a background
    thread: beside an accelerator, or where this process has more cores than torch's threads."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return device.type != "cpu" or cores > torch.get_num_threads()


class _PreparedBatches(Dataset):
    """Items are whole prepared batches: ``dataset[positions] -> (B, C, crop, crop)`` float32."""

    def __init__(
        self, survey: Survey, rows: np.ndarray, normalization: Normalization, crop_size: int, channels_last: bool
    ) -> None:
        self.survey, self.rows, self.normalization = survey, rows, normalization
        self.crop_size, self.channels_last = crop_size, channels_last

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, positions: slice) -> torch.Tensor:
        cutouts = self.survey.read(self.rows[positions])  # (B, C, H, W), one slice for consecutive rows
        return torch.from_numpy(prepare_cutouts(cutouts, self.normalization, self.crop_size, self.channels_last))


def _batches(
    dataset: _PreparedBatches, batch_size: int, workers: int, pin_memory: bool, read_ahead: bool
) -> Iterator[torch.Tensor]:
    """The dataset's rows as prepared batches, in order: made by `workers` processes, or here,
    by a background thread when `read_ahead`, else inline."""
    spans = [slice(start, start + batch_size) for start in range(0, len(dataset), batch_size)]
    if workers == 0 or len(spans) < 2:
        batches = (dataset[span] for span in spans)
        if pin_memory:  # page-locked, so the copy to the GPU runs asynchronously
            batches = (batch.pin_memory() for batch in batches)
        yield from prefetch(batches, depth=_READ_AHEAD) if read_ahead and len(spans) > 1 else batches
        return
    yield from DataLoader(dataset, batch_size=None, sampler=spans, num_workers=workers,
                          pin_memory=pin_memory, prefetch_factor=4)


def _encode(backbone: nn.Module, batch: torch.Tensor, device: torch.device, channels_last: bool) -> np.ndarray:
    x = batch.to(device, non_blocking=True)  # (B, C, crop, crop), the same tensor on a CPU
    if channels_last:  # already so as made, unless pinning or a worker's transfer changed the strides
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
        h = backbone(x)
    h = torch.nn.functional.normalize(h.float(), dim=1)  # (B, D), unit length
    return h.cpu().numpy()


def _is_channels_last(backbone: nn.Module) -> bool:
    """Whether the backbone's first convolution holds channels_last weights."""
    weight = next((p for p in backbone.parameters() if p.ndim == 4), None)
    return weight is not None and weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()


def save_encoder(
    path: Path, model: MoCo, config: Config, normalization: Normalization, bands: tuple[str, ...], step: int
) -> Path:
    """The trained backbone alone, with what is needed to embed: config, normalisation, bands
    (what `load_encoder` reads back)."""
    from galexplore.training.checkpoint import save_checkpoint

    return save_checkpoint(
        path,
        {
            "format": ENCODER_FORMAT,
            "step": step,
            "backbone": model.encoder.state_dict(),
            "config": to_toml(absolute_paths(config)),
            "normalization": json.dumps(normalization.to_dict()),
            "bands": list(bands),
        },
    )


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
