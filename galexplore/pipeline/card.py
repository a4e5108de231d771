"""The report card stage (`galexplore.scoring.atlas_card`): every label column scored on the
atlas's representations against raw-pixel PCA and the same network untrained, into the manifest.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import numpy as np

from galexplore.config import Config
from galexplore.pipeline.runner import BuildState, StageResult


def card_not_needed(state: BuildState) -> str | None:
    return "card.rows = 0" if state.config.card.rows == 0 else None


def uses_baselines(config: Config, state: BuildState) -> bool:
    """Whether the card scores the baselines too: asked for, and there are images to read."""
    return config.card.baselines and state.given is None


def run_card(state: BuildState) -> StageResult:
    from galexplore.scoring.atlas_card import report_card

    cfg = state.config
    reader = state.writer.reader()
    reduced = "reduce" not in state.not_needed
    baselines = uses_baselines(cfg, state)
    with contextlib.ExitStack() as stack:
        functions = _baselines(stack, reader, state) if baselines else {}
        result = report_card(cfg, state.catalog(), reader.embeddings, reader.reduced if reduced else None,
                             functions, log=state.log)
    if not baselines:
        result["baselines_note"] = ("card.baselines = false" if state.given is None else
                                    "built from given embeddings: no images to read for the baselines")
    scored = [c for c, e in result["labels"].items() if "note" not in e]
    detail = (f"{len(scored)} label columns on {result['protocol']['rows']:,} galaxies in "
              f"{', '.join(result['spaces'])}" if scored else "no label column to score")
    return StageResult(detail, {"card": result})


def _baselines(stack: contextlib.ExitStack, reader: Any, state: BuildState) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """The report card's pixel and untrained-network representations of catalog rows, from the
    survey (opened on `stack`) with the encoder's normalisation and the embed crop."""
    import torch

    from galexplore.evaluate.baselines import pixel_pca
    from galexplore.models import build_encoder
    from galexplore.scoring.atlas_card import PIXEL_DIM
    from galexplore.scoring.card import unit_rows
    from galexplore.survey import open_survey
    from galexplore.training.embed import load_encoder_arrays, represent

    cfg = state.config
    survey = stack.enter_context(open_survey(cfg))
    _, enc_cfg, normalization = load_encoder_arrays(
        reader.npz("encoder.npz"), reader.json("encoder.json"), str(state.out / "encoder.npz"))
    crop = cfg.embed.crop_size or enc_cfg.augment.crop_size

    def untrained(rows: np.ndarray) -> np.ndarray:
        torch.manual_seed(cfg.seed)
        net = build_encoder(cfg.model, in_channels=survey.shape[0]).to(memory_format=torch.channels_last)
        x = represent(net, survey, rows, normalization, crop, torch.device("cpu"), batch_size=cfg.embed.batch_size)
        return unit_rows(x - x.mean(axis=0)) if cfg.embed.center else x  # read out as the atlas is

    return {"pixels": lambda rows: pixel_pca(survey, rows, normalization, crop, PIXEL_DIM, cfg.seed),
            "untrained": untrained}
