"""The build's table of stages: each stage's fingerprint is the one atlases built before the
table had (so they stay up to date), and each reads only what comes before it."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest

from galexplore.config import config_from_dict
from galexplore.pipeline import stages
from galexplore.pipeline.runner import BuildState, fingerprint, stage_fingerprint


def _table(cfg, name):
    return dataclasses.asdict(getattr(cfg, name))


def _before_the_table(cfg, survey: str | None, given: list[str] | None, provenance: dict | None, reduced: bool):
    """Every stage's fingerprint as the build computed it by hand before its stages were a table."""
    fp = {}
    if survey is not None:
        fp["simulate"] = fingerprint("simulate", _table(cfg, "simulate"), cfg.seed)
        fp["train"] = fingerprint("train", {t: _table(cfg, t) for t in ("survey", "augment", "model", "train")},
                                  cfg.seed, survey)
        e = cfg.embed
        fp["embed"] = fingerprint("embed", fp["train"], e.batch_size, e.chunk_rows, e.crop_size, e.center, survey)
    else:
        fp["embed"] = fingerprint("embed", given)
    fp["reduce"] = fingerprint("reduce", fp["embed"], cfg.embed.pca_dim, cfg.embed.pca_sample, cfg.seed)
    fp["neighbors"] = fingerprint("neighbors", fp["reduce"], _table(cfg, "neighbors"), cfg.seed)
    fp["project"] = fingerprint("project", fp["neighbors"], _table(cfg, "project"), cfg.seed)
    labelled_by = [fp["embed"], _table(cfg, "trust")]
    if cfg.probes.categorical:
        labelled_by.append({"categorical": cfg.probes.categorical, "unlabelled": cfg.probes.unlabelled})
    labels = fingerprint(*labelled_by)
    fp["scores"] = fingerprint("scores", fp["neighbors"], labels, _table(cfg, "anomaly"))
    fp["probes"] = fingerprint("probes", fp["embed"], labels, cfg.seed, {"folds": 5}, _table(cfg, "probes"))
    fp["catalog"] = fingerprint("catalog", fp["project"], fp["scores"], fp["probes"], fp.get("train"), provenance)
    fp["card"] = fingerprint("card", fp["embed"], fp["reduce"] if reduced else None, _table(cfg, "card"),
                             _table(cfg, "probes"), cfg.seed, cfg.card.baselines and survey is not None)
    return fp


@pytest.mark.parametrize("source", ["survey", "given"])
def test_every_stage_keeps_the_fingerprint_of_the_atlases_built_before_the_table(source, tmp_path):
    if source == "survey":  # reduced, with a class column
        cfg = config_from_dict({"seed": 3, "embed": {"pca_dim": 8}, "probes": {"categorical": ["type"]}})
        table = (stages.SIMULATE, *stages.FROM_SURVEY, *stages.MAPS)
        state = BuildState(cfg, tmp_path / "atlas", tmp_path / "run", fingerprints={"survey": "survey-fp"})
        expected = _before_the_table(cfg, "survey-fp", None, None, reduced=True)
    else:  # not reduced, no class column: the optional parts left out
        cfg = config_from_dict({"seed": 3})
        table = (*stages.FROM_EMBEDDINGS, *stages.MAPS)
        provenance = {"path": "/e.npy", "catalog": "/c.csv", "fingerprint": ["e-fp", "c-fp"]}
        state = BuildState(cfg, tmp_path / "atlas", tmp_path / "run", fingerprints={"given": ["e-fp", "c-fp"]},
                           given=SimpleNamespace(), writer=SimpleNamespace(manifest={"provenance": {"embeddings": provenance}}),
                           not_needed={"reduce"})
        expected = _before_the_table(cfg, None, ["e-fp", "c-fp"], provenance, reduced=False)
    for stage in table:
        state.fingerprints[stage.name] = stage_fingerprint(stage, state)
        assert state.fingerprints[stage.name] == expected[stage.name], stage.name


def test_each_stage_reads_only_the_stages_before_it_and_the_build_inputs():
    assert stages.STAGES == ("simulate", "train", "embed", "reduce", "neighbors", "project", "scores", "probes",
                             "catalog", "card")
    files = {"survey", "given", "provenance.embeddings"}
    for stage in (stages.SIMULATE, *stages.FROM_SURVEY, *stages.FROM_EMBEDDINGS, *stages.MAPS):
        earlier = set(stages.STAGES[:stages.STAGES.index(stage.name)])
        assert set(stage.inputs) <= earlier | files, stage.name
    neighbors = next(s for s in stages.MAPS if s.name == "neighbors")
    assert (neighbors.reads, neighbors.inputs) == (("neighbors", "seed"), ("reduce",))


def test_a_stage_that_is_not_needed_leaves_no_files_and_no_record(tmp_path):
    """embed.pca_dim = 0 after a reduced build: the PCA files and the reduce record go; its
    fingerprint stays, for the graph after it."""
    from galexplore.atlas.files import AtlasWriter
    from galexplore.pipeline.runner import run_stage

    writer = AtlasWriter(tmp_path / "atlas", name="t")
    writer.write_array("embeddings.npy", np.ones((4, 6), np.float32))
    writer.write_array("embeddings_reduced.npy", np.ones((4, 2), np.float32))
    writer.set_stage("reduce", {"fingerprint": "old", "outputs": ["embeddings_reduced.npy"]})
    state = BuildState(config_from_dict({"embed": {"pca_dim": 0}}), tmp_path / "atlas", tmp_path / "run",
                       writer=writer, fingerprints={"embed": "e"})
    run_stage(stages.MAPS[0], state)
    assert [(r.name, r.status) for r in state.reports] == [("reduce", "not needed")]
    assert "reduce" in state.not_needed and state.fingerprints["reduce"]
    assert not writer.has("embeddings_reduced.npy") and "reduce" not in writer.manifest["stages"]
    assert not (tmp_path / "atlas" / "embeddings_reduced.npy").exists()
