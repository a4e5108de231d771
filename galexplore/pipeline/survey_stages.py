"""The stages that read the survey: simulate it (a simulated survey), train the encoder on it,
embed every galaxy.

The long ones resume: the simulation keeps its finished chunks beside the survey, training its
checkpoints in the run folder, the embedding its chunks in the atlas's work folder
(`galexplore.pipeline.chunks`). Under torchrun every process runs them (rank 0 alone simulates and
writes the atlas); their outputs are rank 0's.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pandas as pd

from galexplore.atlas.files import EMBEDDING_CENTER, file_fingerprint
from galexplore.config import Config, config_from_dict
from galexplore.errors import GalexploreError
from galexplore.pipeline.chunks import WORK, assemble, chunk_mean, prepare_work, run_chunks
from galexplore.pipeline.runner import BuildState, Stage, StageResult, counting_up, fingerprint, stage_fingerprint

# -- simulate ------------------------------------------------------------------------------------


def simulation_not_needed(state: BuildState) -> str | None:
    source = state.config.survey.source
    return None if source == "simulated" else f"survey.source = {source!r}"


def simulation_up_to_date(state: BuildState, stage: Stage) -> str | None:
    """The simulated survey is up to date when the config galexplore wrote beside it gives the
    same fingerprint. A file there that galexplore did not simulate is refused, not replaced."""
    from galexplore.simulate.writer import partial_folder

    path = state.config.resolve(state.config.survey.path)
    if not path.exists():
        return None
    recorded = _simulated_config(path)
    if recorded is None:
        raise GalexploreError(
            f"{path}: survey.path of a simulated survey points at a file that galexplore did not "
            f"simulate; move it, or set survey.source to read it as data"
        )
    # its chunks still beside it: killed between renaming the survey into place and removing
    # them; simulate_survey then reassembles the chunks (simulating none again) and removes them
    if stage_fingerprint(stage, state, recorded) == state.fingerprints[stage.name] and not partial_folder(path).exists():
        return f"{path} is up to date"
    return None


def _simulated_config(path: Path) -> Config | None:
    """The config galexplore wrote beside a survey it simulated at `path`, else None."""
    side = path.with_name(path.stem + ".config.toml")
    if not side.exists():
        return None
    try:
        return config_from_dict(tomllib.loads(side.read_text(encoding="utf-8")), source=str(side))
    except (tomllib.TOMLDecodeError, GalexploreError):
        return None


def run_simulate(state: BuildState) -> StageResult:
    from galexplore.simulate import simulate_survey

    cfg = state.config
    if state.dist.is_main:
        advance = counting_up(state.progress(cfg.simulate.n))
        simulate_survey(cfg, cfg.resolve(cfg.survey.path), progress=lambda done, total: advance(done))
    state.dist.barrier()
    return StageResult(f"{cfg.simulate.n:,} galaxies")


# -- train ---------------------------------------------------------------------------------------


def run_train(state: BuildState) -> StageResult:
    from galexplore.training.embed import encoder_arrays
    from galexplore.training.trainer import train

    cfg, dist = state.config, state.dist
    steps = cfg.train.epochs * (state.n // (cfg.train.batch_size * dist.world_size))
    advance = counting_up(state.progress(steps))
    result = train(cfg, state.run_folder, device=state.device, dist=dist, resume=True, survey=state.survey,
                   log=lambda record: advance(record["step"]))
    if result.encoder is None and dist.is_main:
        raise GalexploreError(f"{state.run_folder}: training stopped at step {result.step} of {result.total_steps}")
    dist.barrier()
    if state.writer is None:
        return StageResult()
    encoder = state.run_folder / "encoder.pt"
    arrays, metadata = encoder_arrays(encoder)
    state.writer.write_npz("encoder.npz", **arrays)
    state.writer.write_json("encoder.json", metadata)
    return StageResult(f"{result.step} steps", {
        "run": str(state.run_folder), "steps": result.step, "last_loss": result.last_loss,
        "encoder_fingerprint": file_fingerprint(encoder)})


# -- embed ---------------------------------------------------------------------------------------


def run_embed(state: BuildState) -> StageResult:
    """Every galaxy through the atlas's encoder, in chunks that a rerun keeps; centred when
    `embed.center` (then the atlas also stores the centre)."""
    import torch

    from galexplore.atlas.files import open_atlas
    from galexplore.training.embed import load_encoder_arrays, reading_workers, represent

    cfg, dist, writer, n = state.config, state.dist, state.writer, state.n
    dist.barrier()  # rank 0 has written the atlas's encoder
    atlas = open_atlas(state.out, require=("encoder.npz", "encoder.json"))
    backbone, enc_cfg, normalization = load_encoder_arrays(
        atlas.npz("encoder.npz"), atlas.json("encoder.json"), str(state.out / "encoder.npz"), state.device
    )
    device = next(backbone.parameters()).device
    # faster convolutions on GPUs and on CPUs alike (oneDNN's NHWC kernels): ~20% on 2 cores
    backbone = backbone.to(memory_format=torch.channels_last)
    workers = reading_workers(cfg.train.loader_workers, device)
    chunk_rows = cfg.embed.chunk_rows
    crop = cfg.embed.crop_size or enc_cfg.augment.crop_size  # checked against the cutouts before training
    work = state.out / WORK / "embed"
    if dist.is_main:
        prepare_work(work, fingerprint(state.fingerprints.get("train"), chunk_rows, crop, n))
    dist.barrier()

    def compute(start: int, stop: int) -> np.ndarray:
        return represent(backbone, state.survey, np.arange(start, stop), normalization, crop,
                         device, batch_size=cfg.embed.batch_size, workers=workers)

    run_chunks(work, n, chunk_rows, compute, dist, state.progress(n))
    dist.barrier()
    if writer is None:
        return StageResult()
    center = None
    if cfg.embed.center:
        center = chunk_mean(work, n, chunk_rows)
        writer.write_array(EMBEDDING_CENTER, center, per_object=False)
    else:
        writer.remove(EMBEDDING_CENTER)
    width = assemble(work, writer, "embeddings.npy", n, chunk_rows, np.float32, center=center)
    detail = f"{n:,} x {width}, {crop}x{crop} crops" + (", centred" if center is not None else "")
    return StageResult(detail, {"dim": width, "device": str(device), "crop_size": crop, "centred": center is not None},
                       outputs=None if center is not None else ("embeddings.npy",))


# -- what the survey gives the other stages ------------------------------------------------------


def path_fingerprint(path: Path) -> str:
    """A file's fingerprint; for a folder, a hash of its entries' names, sizes and times."""
    if path.is_dir():
        entries = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in path.iterdir())
        return fingerprint(entries)
    return file_fingerprint(path)


def survey_catalog(config: Config) -> pd.DataFrame:
    """The survey's catalog, read by opening the survey again (the stages after the embedding
    run once it is closed)."""
    from galexplore.survey import open_survey

    with open_survey(config) as survey:
        return survey.catalog.copy()
