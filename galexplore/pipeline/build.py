"""`galexplore build`: every pipeline stage, in order, into one atlas folder.

    simulate -> train -> embed -> reduce -> neighbors -> project -> scores -> probes -> catalog -> card

The stages are declared in `galexplore.pipeline.stages` and run by `galexplore.pipeline.runner`:
a stage whose fingerprint is the one the manifest recorded, and whose outputs are on disk as
recorded, is skipped; so a rerun after a change redoes exactly the stages downstream of it. The
long stages resume: the simulation and the embedding keep finished chunks, training its
checkpoints. The others run in minutes and simply run again.

Before any stage runs, the build refuses what would fail later: an output folder that holds its
inputs (`galexplore.pipeline.inputs`), a config that cannot make an atlas of this many galaxies
(`galexplore.pipeline.preflight`), catalog columns the config names but the catalog lacks.

Under torchrun every process trains (DDP) and embeds its share of the chunks; rank 0 alone
writes the atlas and runs the stages after the embedding.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from galexplore.atlas.files import MANIFEST, AtlasWriter
from galexplore.config import Config, absolute_paths, to_toml
from galexplore.errors import GalexploreError
from galexplore.pipeline import stages
from galexplore.pipeline.chunks import WORK
from galexplore.pipeline.given import open_given
from galexplore.pipeline.inputs import check_catalog_columns, check_out_folder
from galexplore.pipeline.preflight import check_cutouts, check_sizes
from galexplore.pipeline.runner import BuildState, Progress, StageReport, fingerprint, peak_memory_mb, run_stage, run_stages
from galexplore.pipeline.stages import STAGES
from galexplore.pipeline.survey_stages import path_fingerprint, survey_catalog
from galexplore.training.distributed import Distributed


@dataclass
class BuildResult:
    """The atlas a build produced and what each stage did."""

    atlas: Path
    n_objects: int
    stages: list[StageReport] = field(default_factory=list)


def build(
    config: Config,
    out: Path,
    *,
    run: Path | None = None,
    embeddings: Path | None = None,
    catalog: Path | None = None,
    device: Any = None,
    dist: Distributed = Distributed(),
    progress: Progress | None = None,
    log: Callable[[str], None] | None = None,
) -> BuildResult | None:
    """Build (or bring up to date) the atlas `out` for `config`; return what happened.

    `run`: the training run folder (default: `<out>.run` beside the atlas). `embeddings` and
    `catalog`: start from given representations (N, D) and a catalog of the same N rows (CSV,
    FITS or Parquet with object_id, ra, dec) instead of a survey: no images, no training.
    Returns None on ranks other than 0 of a torchrun job (their work ends with the embedding).
    """
    out = Path(out)
    if (embeddings is None) != (catalog is None):
        raise GalexploreError("--embeddings and --catalog go together: give both, or neither to build from the survey")
    if embeddings is not None:
        inputs = {"--embeddings file": Path(embeddings), "--catalog file": Path(catalog)}
    else:
        inputs = {"survey (survey.path)": config.resolve(config.survey.path)} if config.survey.path else {}
        if config.survey.catalog:
            inputs["survey catalog (survey.catalog)"] = config.resolve(config.survey.catalog)
    check_out_folder(out, inputs)
    state = BuildState(config, out, run or out.with_name(out.name + ".run"), device, dist, progress)
    if log is not None:
        state.log = log
    new = not out.exists()
    try:
        if embeddings is not None:
            _from_embeddings(state, Path(embeddings), Path(catalog))
        else:
            _from_survey(state)
    except GalexploreError:
        if new and out.is_dir() and {p.name for p in out.iterdir()} <= {MANIFEST}:
            shutil.rmtree(out)  # the atlas this build began holds nothing: leave no empty one behind
        raise
    if not dist.is_main:
        return None
    run_stages(stages.MAPS, state)
    state.writer.set_summary({"n_objects": state.n, "stages": {
        r.name: {"status": r.status, "seconds": round(r.seconds, 3)} for r in state.reports}})
    return BuildResult(out, state.n, state.reports)


def _open_writer(state: BuildState) -> None:
    """Open the atlas (rank 0) once the inputs are read and checked: a bad input leaves an
    existing atlas as it was."""
    if state.dist.is_main:
        state.writer = AtlasWriter(state.out, name=state.config.name)


def _from_survey(state: BuildState) -> None:
    from galexplore.survey import open_survey

    cfg, dist = state.config, state.dist
    path = cfg.resolve(cfg.survey.path)
    if cfg.survey.source == "simulated":  # its size is known before it is simulated
        check_sizes(cfg, cfg.simulate.n, f"{path} (simulate.n)", dist.world_size)
    run_stage(stages.SIMULATE, state)
    with open_survey(cfg) as survey:
        state.fingerprints["survey"] = path_fingerprint(path)
        check_sizes(cfg, len(survey), survey.source, dist.world_size)
        check_cutouts(cfg, survey.shape, survey.source)
        check_catalog_columns(survey.catalog, cfg, survey.source)
        _open_writer(state)
        state.n, state.survey = len(survey), survey
        state.read_catalog = lambda: survey_catalog(cfg)
        if state.writer is not None:
            state.writer.set("provenance", {
                "config": to_toml(absolute_paths(cfg)),
                "survey": {"path": str(path), "source": cfg.survey.source, "bands": list(survey.bands),
                           "pixel_scale": survey.pixel_scale, "shape": list(survey.shape),
                           "fingerprint": state.fingerprints["survey"]},
            })
        run_stages(stages.FROM_SURVEY, state)
        state.survey = None
    if state.writer is not None and (state.out / WORK).exists():
        shutil.rmtree(state.out / WORK)  # only once recorded: a kill before keeps the chunks


def _from_embeddings(state: BuildState, embeddings: Path, catalog: Path) -> None:
    for stage in (stages.SIMULATE, stages.TRAIN):
        state.reports.append(StageReport(stage.name, "not needed", detail="built from given embeddings"))
    if not state.dist.is_main:
        return
    given, table = open_given(embeddings, catalog, state.config)
    check_sizes(state.config, len(table), str(embeddings))
    check_catalog_columns(table, state.config, str(catalog))
    state.n, state.given = len(table), given
    _open_writer(state)
    state.read_catalog = lambda: table
    state.fingerprints["given"] = given.fingerprints
    run_stages(stages.FROM_EMBEDDINGS, state)
    # recorded once the embeddings are in: a refused file leaves the manifest as it was
    state.writer.set("provenance", {"config": to_toml(absolute_paths(state.config)), "embeddings": given.provenance()})


__all__ = ["STAGES", "WORK", "BuildResult", "Progress", "StageReport", "build", "fingerprint", "peak_memory_mb"]
