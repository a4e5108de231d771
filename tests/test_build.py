"""`galexplore build`: a whole atlas, skipping what is up to date, resuming what was interrupted."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import galexplore.pipeline.build as build_module
from galexplore.atlas.files import open_atlas
from galexplore.pipeline.build import build
from galexplore.cli import main
from galexplore.config import config_from_dict, load_config
from galexplore.errors import GalexploreError

from .synthetic import PIPELINES

N = 400
SMALL = {
    "embed": {"pca_dim": 8, "chunk_rows": 64},
    "neighbors": {"k": 12},
    "project": {"n_neighbors": 8},
    "trust": {"k": 5},
    "anomaly": {"k": 5},
}


def small_config(**tables: dict) -> object:
    raw = {"name": "given", "seed": 1, **SMALL}
    for name, values in tables.items():
        raw[name] = {**raw.get(name, {}), **values}
    return config_from_dict(raw)


@pytest.fixture(scope="module")
def given(tmp_path_factory) -> tuple[Path, Path]:
    """Clustered 24-D embeddings (not unit length: build normalises) and their catalog."""
    folder = tmp_path_factory.mktemp("given")
    rng = np.random.default_rng(7)
    centres = rng.standard_normal((4, 24)) * 3
    which = rng.integers(0, 4, N)
    x = (centres[which] + rng.standard_normal((N, 24))).astype(np.float32)
    x[17] = rng.standard_normal(24) * 40  # far from every cluster
    z = 0.05 + 0.08 * which + rng.normal(0, 0.01, N)
    catalog = pd.DataFrame({
        "object_id": np.arange(1000, 1000 + N), "ra": rng.uniform(0, 360, N), "dec": rng.uniform(-60, 60, N),
        "z": z, "z_spec": np.where(which < 2, z, np.nan), "type": np.array(["E", "S", "Sb", "I"])[which],
    })
    np.save(folder / "emb.npy", x)
    catalog.to_parquet(folder / "cat.parquet")
    return folder / "emb.npy", folder / "cat.parquet"


def _build(given, out: Path, config=None):
    return build(config or small_config(), out, embeddings=given[0], catalog=given[1])


def _same_atlas(a: Path, b: Path) -> None:
    """Arrays bitwise equal, catalogs equal, for every file both manifests list."""
    x, y = open_atlas(a), open_atlas(b)
    assert sorted(x.files) == sorted(y.files)
    for name in x.files:
        if name.endswith(".npy"):
            np.testing.assert_array_equal(x.array(name), y.array(name), err_msg=name)
    pd.testing.assert_frame_equal(x.catalog, y.catalog)


@pytest.fixture(scope="module")
def reference(given, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reference") / "atlas"
    _build(given, out)
    return out


def test_build_from_embeddings_writes_a_complete_atlas(given, reference):
    atlas = open_atlas(reference)
    cat = atlas.catalog
    assert atlas.n_objects == N and len(cat) == N
    for column in ("object_id", "ra", "dec", "umap_x", "umap_y", "trust", "trust_spec_z", "anomaly_score",
                   "label_availability", "z", "type"):
        assert column in cat, column
    assert cat["object_id"].tolist() == list(range(1000, 1000 + N))  # the given order is kept
    np.testing.assert_allclose(np.linalg.norm(atlas.embeddings, axis=1), 1, atol=1e-5)
    assert atlas.reduced.shape == (N, 8)
    nb = np.asarray(atlas.neighbors)
    assert nb.shape == (N, 12) and nb.dtype == np.int32
    assert not (nb == np.arange(N)[:, None]).any()
    assert ((cat["trust"] >= 0) & (cat["trust"] <= 1)).all()
    # trust: the clusters without spec-z (which 2, 3) sit far from the labelled ones
    labelled_cluster = cat["z_spec"].notna()
    assert cat["trust_spec_z"][~labelled_cluster].median() < 0.05 < cat["trust_spec_z"][labelled_cluster].median()
    assert int(cat["anomaly_score"].idxmax()) == 17
    assert set(cat["label_availability"].astype(str)) == {"none", "spec-z"}
    stages = atlas.manifest["stages"]
    assert {"embed", "reduce", "neighbors", "project", "scores", "probes", "catalog"} <= set(stages)
    # a linear photo-z probe from the 200-odd spec-z galaxies predicts every galaxy
    assert stages["probes"]["columns"] == ["z_phot", "z_phot_width"]
    labelled = cat["z_spec"].notna()
    assert np.all(np.isfinite(cat["z_phot"]))
    assert np.median(np.abs(cat["z_phot"] - cat["z"])[labelled]) < 0.02
    assert stages["probes"]["held_out"]["z_spec"]["metrics"]["sigma_mad"] < 0.05
    assert stages["probes"]["labelled_predictions"] == {"z_spec": "5-fold out-of-fold"}  # never in-sample


def test_rerun_skips_every_stage_and_a_change_reruns_only_what_depends_on_it(given, reference, tmp_path):
    out = tmp_path / "atlas"
    shutil.copytree(reference, out)
    again = _build(given, out)
    assert {r.name: r.status for r in again.stages if r.status != "not needed"} == dict.fromkeys(
        ("embed", "reduce", "neighbors", "project", "scores", "probes", "catalog", "card"), "skipped")
    changed = _build(given, out, small_config(project={"min_dist": 0.5}))
    ran = [r.name for r in changed.stages if r.status == "ran"]
    assert ran == ["project", "catalog"]
    assert not np.array_equal(open_atlas(out).array("umap.npy"), open_atlas(reference).array("umap.npy"))
    np.testing.assert_array_equal(open_atlas(out).neighbors, open_atlas(reference).neighbors)


class Interrupt(Exception):
    """Stands in for a kill in the middle of a stage."""


def _interrupt_after(monkeypatch, target: object, name: str, calls: int) -> None:
    """Make `target.name` raise Interrupt on call number `calls` (1-based), after earlier calls ran."""
    real = getattr(target, name)
    count = [0]

    def wrapper(*args, **kwargs):
        count[0] += 1
        if count[0] == calls:
            raise Interrupt(name)
        return real(*args, **kwargs)

    monkeypatch.setattr(target, name, wrapper)


@pytest.mark.parametrize("stage, target, name, calls", [
    ("embed", "given", "unit_length_rows", 3),  # after two of seven chunks
    ("reduce", "project", "fit_pca", 1),
    ("neighbors", "neighbors", "knn_graph", 1),
    ("project", "project", "umap_layout", 1),
    ("scores", "scores", "trust_scores", 1),
    ("catalog", "atlas", "AtlasWriter.write_catalog", 1),
])
def test_an_interrupted_stage_reruns_to_the_same_atlas(given, reference, tmp_path, monkeypatch, stage, target, name, calls):
    import galexplore.atlas.files
    import galexplore.maps.neighbors
    import galexplore.maps.projection
    import galexplore.maps.scores
    import galexplore.pipeline.given

    modules = {"given": galexplore.pipeline.given, "project": galexplore.maps.projection, "neighbors": galexplore.maps.neighbors,
               "scores": galexplore.maps.scores, "atlas": galexplore.atlas.files}
    owner = modules[target]
    if "." in name:
        cls, name = name.split(".")
        owner = getattr(owner, cls)
    out = tmp_path / "atlas"
    with monkeypatch.context() as patch:
        _interrupt_after(patch, owner, name, calls)
        with pytest.raises(Interrupt):
            _build(given, out)
    result = _build(given, out)
    assert [r.name for r in result.stages if r.status == "ran"][0] == stage
    _same_atlas(out, reference)
    assert not list(out.glob(".*.partial")) and not list(out.glob("*.partial"))


def test_mismatched_catalog_and_bad_rows_are_refused(given, tmp_path):
    emb, cat = given
    short = tmp_path / "short.parquet"
    pd.read_parquet(cat).iloc[:-1].to_parquet(short)
    with pytest.raises(GalexploreError, match=r"399 catalog rows but .*emb.npy has 400 embeddings"):
        build(small_config(), tmp_path / "a", embeddings=emb, catalog=short)
    bad = np.load(emb)
    bad[5, 3] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(GalexploreError, match=r"nan.npy: row 5 has NaN"):
        build(small_config(), tmp_path / "b", embeddings=tmp_path / "nan.npy", catalog=cat)
    with pytest.raises(GalexploreError, match="go together"):
        build(small_config(), tmp_path / "c", embeddings=emb)


def test_cli_build_prints_the_summary_and_the_serve_command(given, tmp_path, capsys):
    config = tmp_path / "given.toml"
    config.write_text("\n".join(["name = 'given'", "seed = 1"] + [
        f"[{table}]\n" + "\n".join(f"{k} = {v}" for k, v in values.items()) for table, values in SMALL.items()
    ]))
    out = tmp_path / "atlas"
    assert main(["build", str(config), "--out", str(out), "--embeddings", str(given[0]), "--catalog", str(given[1])]) == 0
    printed = capsys.readouterr().out
    assert f"atlas {out}: 400 galaxies" in printed
    assert f"serve it: galexplore serve {out}" in printed
    assert main(["build", str(config), "--out", str(out), "--embeddings", str(given[0])]) == 2
    assert "go together" in capsys.readouterr().err


def test_build_from_a_simulated_survey_trains_embeds_and_resumes(tmp_path, monkeypatch):
    """The whole chain on 64 simulated galaxies; an embedding killed after one chunk resumes."""
    cfg = load_config(PIPELINES / "tiny.toml")
    cfg = dataclasses.replace(
        cfg, survey=dataclasses.replace(cfg.survey, path=str(tmp_path / "tiny.h5")),
        train=dataclasses.replace(cfg.train, loader_workers=0),
        embed=dataclasses.replace(cfg.embed, chunk_rows=24, pca_dim=8),
        neighbors=dataclasses.replace(cfg.neighbors, k=10),
        project=dataclasses.replace(cfg.project, n_neighbors=8),
    )
    out, run = tmp_path / "atlas", tmp_path / "run"
    import galexplore.training.embed
    import galexplore.training.monitor  # noqa: F401  (the kNN monitor binds `represent` first: only the embedding's calls count)

    with monkeypatch.context() as patch:
        _interrupt_after(patch, galexplore.training.embed, "represent", 2)
        with pytest.raises(Interrupt):
            build(cfg, out, run=run)
    assert len(list((out / build_module.WORK / "embed").glob("chunk-*.npy"))) == 1
    result = build(cfg, out, run=run)
    status = {r.name: r.status for r in result.stages}
    assert status["simulate"] == "skipped" and status["train"] == "skipped" and status["embed"] == "ran"
    atlas = open_atlas(out, require=("catalog.parquet", "embeddings.npy", "neighbors.npy", "encoder.npz"))
    assert atlas.n_objects == 64 and atlas.embeddings.shape == (64, 512)
    assert not (out / build_module.WORK / "embed").exists()
    # the chunks computed before the interruption are the ones an uninterrupted run computes
    fresh = tmp_path / "fresh"
    shutil.copytree(out, fresh)
    shutil.rmtree(fresh / "embeddings.npy", ignore_errors=True)
    (fresh / "embeddings.npy").unlink(missing_ok=True)
    again = build(cfg, fresh, run=run)
    assert {r.name: r.status for r in again.stages}["embed"] == "ran"
    np.testing.assert_array_equal(open_atlas(fresh).embeddings, atlas.embeddings)
    assert open_atlas(out).catalog["label_availability"].astype(str).isin(
        ["none", "spec-z", "spec-z+morphology"]).all()
    # embed.center: the stored rows are the representations less their mean, unit length, so
    # random pairs are not all alike as pooled ReLU features are (cosine near 1)
    center = atlas.array("embedding_center.npy")
    assert center.shape == (512,) and float(np.linalg.norm(center)) > 0.5
    np.testing.assert_allclose(np.linalg.norm(atlas.embeddings, axis=1), 1.0, atol=1e-5)
    assert abs(float((atlas.embeddings[:32] * atlas.embeddings[32:]).sum(axis=1).mean())) < 0.5


def test_ranks_share_the_chunks_and_assemble_to_the_single_process_result(tmp_path):
    """Under torchrun each rank embeds every world_size-th chunk; together they cover all rows once."""
    from galexplore.atlas.files import AtlasWriter
    from galexplore.pipeline.chunks import assemble, prepare_work, run_chunks
    from galexplore.training.distributed import Distributed

    n, chunk_rows = 103, 10
    calls: list[tuple[int, int]] = []

    def compute(start: int, stop: int) -> np.ndarray:
        calls.append((start, stop))
        return np.arange(start, stop, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)

    work = tmp_path / "work"
    prepare_work(work, "fp")
    seen = []
    for rank in (1, 0):  # the ranks run one after the other here; under torchrun, side by side
        run_chunks(work, n, chunk_rows, compute, Distributed(rank=rank, world_size=2), seen.append)
    assert sorted(calls) == [(s, min(s + 10, n)) for s in range(0, n, 10)]  # each chunk once
    assert sum(seen) == n
    writer = AtlasWriter(tmp_path / "atlas", name="t")
    assert assemble(work, writer, "embeddings.npy", n, chunk_rows, np.float32) == 3
    np.testing.assert_array_equal(writer.reader().embeddings[:, 0], np.arange(n))
    # a rerun with the same fingerprint keeps the chunks; another fingerprint empties the folder
    prepare_work(work, "fp")
    assert len(list(work.glob("chunk-*.npy"))) == 11
    prepare_work(work, "other")
    assert not list(work.glob("chunk-*.npy"))


def test_a_build_killed_by_sigkill_resumes_to_the_same_atlas(given, reference, tmp_path):
    """A real kill -9 of the build process while it maps (UMAP), then the same command again."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    config = tmp_path / "given.toml"
    config.write_text("\n".join(["name = 'given'", "seed = 1"] + [
        f"[{table}]\n" + "\n".join(f"{k} = {v}" for k, v in values.items()) for table, values in SMALL.items()
    ]))
    out = tmp_path / "atlas"
    command = [sys.executable, "-m", "galexplore.cli", "build", str(config), "--out", str(out),
               "--embeddings", str(given[0]), "--catalog", str(given[1])]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    manifest = out / "manifest.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if "neighbors" in json.loads(manifest.read_text()).get("stages", {}):
                break
        except (FileNotFoundError, json.JSONDecodeError):
            pass
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    stages = json.loads(manifest.read_text())["stages"]
    assert "neighbors" in stages and "catalog" not in stages  # killed between the two
    again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "neighbors  skipped" in again.stdout
    _same_atlas(out, reference)


def test_cli_probe_sweeps_label_counts_and_saves_them_in_the_atlas(reference, tmp_path, capsys):
    import json

    out = tmp_path / "atlas"
    shutil.copytree(reference, out)
    assert main(["probe", str(out), "--labels", "50,100", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [p["n_train"] for p in result["z_spec"]["sweep"]] == [50, 100]
    assert open_atlas(out).json("probe_sweep.json") == result
    assert main(["probe", str(out), "--labels", "fifty"]) == 2
    assert "--labels 'fifty'" in capsys.readouterr().err


def test_assemble_with_a_center_writes_unit_rows_of_the_shifted_representations(tmp_path):
    from galexplore.atlas.files import AtlasWriter
    from galexplore.pipeline.chunks import assemble, chunk_mean, prepare_work, run_chunks
    from galexplore.training.distributed import Distributed

    rows = np.array([[3.0, 1.0], [1.0, 1.0], [1.0, 3.0], [3.0, 3.0]], dtype=np.float32)
    work = tmp_path / "work"
    prepare_work(work, "fp")
    run_chunks(work, 4, 3, lambda a, b: rows[a:b], Distributed(), lambda done: None)
    center = chunk_mean(work, 4, 3)
    np.testing.assert_array_equal(center, [2.0, 2.0])
    writer = AtlasWriter(tmp_path / "atlas", name="t")
    assemble(work, writer, "embeddings.npy", 4, 3, np.float32, center=center)
    h = np.sqrt(0.5)
    np.testing.assert_allclose(writer.reader().embeddings, [[h, -h], [-h, -h], [-h, h], [h, h]], atol=1e-6)
