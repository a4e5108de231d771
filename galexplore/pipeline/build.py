"""`galexplore build`: every pipeline stage, in order, into one atlas folder.

    simulate -> train -> embed -> reduce -> neighbors -> project -> scores -> probes -> catalog -> card

Each stage has a fingerprint: a hash of the config tables it reads and of its inputs' own
fingerprints (a file's is its size plus its first and last MiB). A stage whose fingerprint is
the one the manifest recorded, and whose outputs are on disk as recorded, is skipped; so a
rerun after a change redoes exactly the stages downstream of it. The long stages resume: the
simulation and the embedding keep finished chunks in a work folder, training its checkpoints.
The others run in minutes and simply run again.

Under torchrun every process trains (DDP) and embeds its share of the chunks; rank 0 alone
writes the atlas and runs the stages after the embedding.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import shutil
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from galexplore.atlas.files import EMBEDDING_CENTER as CENTER
from galexplore.atlas.files import MANIFEST, NPY_READ_ERRORS, AtlasWriter, file_fingerprint
from galexplore.pipeline.inputs import check_catalog_columns, check_galaxy_count, check_out_folder
from galexplore.labels import decode_classes
from galexplore.config import Config, absolute_paths, config_from_dict, to_toml
from galexplore.errors import GalexploreError, reason
from galexplore.io import atomic_path, check_regular_file
from galexplore.evaluate.probes import CROSS_FIT_FOLDS
from galexplore.training.trainer import Distributed

STAGES = ("simulate", "train", "embed", "reduce", "neighbors", "project", "scores", "probes", "catalog", "card")
WORK = ".work"  # inside the atlas: resumable chunks of unfinished stages (removed when done)


@dataclass
class StageReport:
    """What one stage did: ran, skipped (up to date), or nothing to do."""

    name: str
    status: str  # "ran", "skipped", "not needed"
    seconds: float = 0.0
    detail: str = ""
    peak_mb: float | None = None  # the process's peak memory (RSS) so far, when it ran


@dataclass
class BuildResult:
    """The atlas a build produced and what each stage did."""

    atlas: Path
    n_objects: int
    stages: list[StageReport] = field(default_factory=list)


Progress = Callable[[str, int], Callable[[int], None]]  # (stage, total) -> update(done increment)


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
    builder = _Builder(config, out, run or out.with_name(out.name + ".run"), device, dist, progress, log)
    new = not out.exists()
    try:
        if embeddings is not None:
            builder.from_embeddings(Path(embeddings), Path(catalog))
        else:
            builder.from_survey()
    except GalexploreError:
        if new and out.is_dir() and {p.name for p in out.iterdir()} <= {MANIFEST}:
            shutil.rmtree(out)  # the atlas this build began holds nothing: leave no empty one behind
        raise
    if not dist.is_main:
        return None
    builder.downstream()
    return BuildResult(out, builder.n, builder.reports)


def fingerprint(*parts: Any) -> str:
    """A short, stable hash of JSON-able parts (config tables, upstream fingerprints).

    >>> fingerprint({"k": 50}, "abc") == fingerprint({"k": 50}, "abc") != fingerprint({"k": 51}, "abc")
    True
    """
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _table(config: Config, name: str) -> dict[str, Any]:
    return dataclasses.asdict(getattr(config, name))


class _Builder:
    """Runs the stages in order, recording each in the atlas manifest."""

    def __init__(self, config: Config, out: Path, run: Path, device: Any, dist: Distributed,
                 progress: Progress | None, log: Callable[[str], None] | None) -> None:
        self.config, self.out, self.run, self.dist = config, out, run, dist
        self.device = device
        self.progress = progress or (lambda stage, total: lambda done: None)
        self.log = log or (lambda line: None)
        self.reports: list[StageReport] = []
        self.fingerprints: dict[str, str] = {}
        self.n = 0
        self.writer: AtlasWriter | None = None  # rank 0's, opened by `_open_writer`
        self.source_catalog: Callable[[], pd.DataFrame] | None = None

    # -- bookkeeping ---------------------------------------------------------------------------

    def _open_writer(self) -> None:
        """Open the atlas (rank 0) once the inputs are read and checked: a bad input leaves an
        existing atlas as it was."""
        if self.dist.is_main:
            self.writer = AtlasWriter(self.out, name=self.config.name)

    def _up_to_date(self, stage: str, fp: str, outputs: tuple[str, ...]) -> bool:
        """Rank 0 decides from the manifest; every process of a torchrun job follows."""
        fresh = False
        if self.writer is not None:
            recorded = self.writer.manifest.get("stages", {}).get(stage, {})
            fresh = recorded.get("fingerprint") == fp and all(self.writer.is_valid(name) for name in outputs)
        return self.dist.from_main(fresh)

    def _stage(self, stage: str, fp: str, outputs: tuple[str, ...], work: Callable[[], dict[str, Any] | None]) -> None:
        """Run `work` unless the stage is up to date; record its fingerprint, time and outputs."""
        self.fingerprints[stage] = fp
        if self._up_to_date(stage, fp, outputs):
            self.reports.append(StageReport(stage, "skipped", detail="up to date"))
            return
        start = time.perf_counter()
        info = work() or {}
        seconds = time.perf_counter() - start
        peak = peak_memory_mb()
        if self.writer is not None:
            self.writer.set_stage(stage, {"fingerprint": fp, "seconds": round(seconds, 3), "peak_mb": peak,
                                          "outputs": list(outputs), **info})
            self.writer.commit()
        self.reports.append(StageReport(stage, "ran", seconds, info.get("detail", ""), peak))

    def _not_needed(self, stage: str, why: str) -> None:
        self.reports.append(StageReport(stage, "not needed", detail=why))

    # -- from a survey -------------------------------------------------------------------------

    def from_survey(self) -> None:
        from galexplore.survey import open_survey

        cfg = self.config
        if cfg.survey.source == "simulated":
            self._simulate()
        else:
            self._not_needed("simulate", f"survey.source = {cfg.survey.source!r}")
        with open_survey(cfg) as survey:
            survey_fp = _path_fingerprint(cfg.resolve(cfg.survey.path))
            check_galaxy_count(len(survey), cfg, survey.source)
            check_catalog_columns(survey.catalog, cfg, survey.source)
            self._open_writer()
            self.n = len(survey)
            self.source_catalog = _read_once(lambda: _survey_catalog(cfg))
            if self.writer is not None:
                self.writer.set("provenance", {
                    "config": to_toml(absolute_paths(cfg)),
                    "survey": {"path": str(cfg.resolve(cfg.survey.path)), "source": cfg.survey.source,
                               "bands": list(survey.bands), "pixel_scale": survey.pixel_scale,
                               "shape": list(survey.shape), "fingerprint": survey_fp},
                })
            train_fp = fingerprint("train", {t: _table(cfg, t) for t in ("survey", "augment", "model", "train")},
                                   cfg.seed, survey_fp)
            encoder = self.run / "encoder.pt"
            self._stage("train", train_fp, ("encoder.npz", "encoder.json"), lambda: self._train(survey, encoder))
            embed_fp = fingerprint("embed", self.fingerprints["train"], cfg.embed.batch_size, cfg.embed.chunk_rows,
                                   cfg.embed.crop_size, cfg.embed.center, survey_fp)
            outputs = ("embeddings.npy", CENTER) if cfg.embed.center else ("embeddings.npy",)
            self._stage("embed", embed_fp, outputs, lambda: self._embed(survey))
            if self.writer is not None and (self.out / WORK).exists():
                shutil.rmtree(self.out / WORK)  # only once recorded: a kill before keeps the chunks

    def _simulate(self) -> None:
        from galexplore.simulate import simulate_survey
        from galexplore.simulate.writer import partial_folder

        cfg = self.config
        path = cfg.resolve(cfg.survey.path)
        fp = fingerprint("simulate", _table(cfg, "simulate"), cfg.seed)
        self.fingerprints["simulate"] = fp
        # its chunks still beside it: killed between renaming the survey into place and removing
        # them; simulate_survey then reassembles the chunks (simulating none again) and removes them
        if path.exists() and _simulated_with(path) == fp and not partial_folder(path).exists():
            self.reports.append(StageReport("simulate", "skipped", detail=f"{path} is up to date"))
            return
        if path.exists() and _simulated_with(path) is None:
            raise GalexploreError(
                f"{path}: survey.path of a simulated survey points at a file that galexplore did not "
                f"simulate; move it, or set survey.source to read it as data"
            )
        start = time.perf_counter()
        if self.dist.is_main:
            update = self.progress("simulate", cfg.simulate.n)
            last = [0]

            def report(done: int, total: int) -> None:
                update(done - last[0])
                last[0] = done

            simulate_survey(cfg, path, progress=report)
        self.dist.barrier()
        self.reports.append(StageReport("simulate", "ran", time.perf_counter() - start, f"{cfg.simulate.n:,} galaxies"))

    def _train(self, survey: Any, encoder: Path) -> dict[str, Any]:
        from galexplore.training.embed import encoder_arrays
        from galexplore.training.trainer import train

        cfg = self.config
        steps = cfg.train.epochs * (self.n // (cfg.train.batch_size * self.dist.world_size))
        update = self.progress("train", steps) if self.dist.is_main else (lambda done: None)
        done = [0]

        def log(record: dict[str, Any]) -> None:
            update(record["step"] - done[0])
            done[0] = record["step"]

        result = train(cfg, self.run, device=self.device, dist=self.dist, resume=True, survey=survey, log=log)
        if result.encoder is None and self.dist.is_main:
            raise GalexploreError(f"{self.run}: training stopped at step {result.step} of {result.total_steps}")
        self.dist.barrier()
        if self.writer is None:
            return {}
        arrays, metadata = encoder_arrays(encoder)
        self.writer.write_npz("encoder.npz", **arrays)
        self.writer.write_json("encoder.json", metadata)
        return {"run": str(self.run), "steps": result.step, "last_loss": result.last_loss,
                "encoder_fingerprint": file_fingerprint(encoder), "detail": f"{result.step} steps"}

    def _embed(self, survey: Any) -> dict[str, Any]:
        import torch

        from galexplore.atlas.files import open_atlas
        from galexplore.training.embed import load_encoder_arrays, reading_workers, represent

        self.dist.barrier()  # rank 0 has written the atlas's encoder
        atlas = open_atlas(self.out, require=("encoder.npz", "encoder.json"))
        backbone, enc_cfg, normalization = load_encoder_arrays(
            atlas.npz("encoder.npz"), atlas.json("encoder.json"), str(self.out / "encoder.npz"), self.device
        )
        device = next(backbone.parameters()).device
        # faster convolutions on GPUs and on CPUs alike (oneDNN's NHWC kernels): ~20% on 2 cores
        backbone = backbone.to(memory_format=torch.channels_last)
        workers = reading_workers(self.config.train.loader_workers, device)
        chunk_rows = self.config.embed.chunk_rows
        crop = self.config.embed.crop_size or enc_cfg.augment.crop_size
        if crop > min(survey.shape[1:]):
            raise GalexploreError(f"embed.crop_size = {crop} exceeds the survey's {survey.shape[1]}x{survey.shape[2]} cutouts")
        work = self.out / WORK / "embed"
        fp = fingerprint(self.fingerprints.get("train"), chunk_rows, crop, self.n)
        if self.dist.is_main:
            _prepare_work(work, fp)
        self.dist.barrier()
        update = self.progress("embed", self.n) if self.dist.is_main else (lambda done: None)

        def compute(start: int, stop: int) -> np.ndarray:
            return represent(backbone, survey, np.arange(start, stop), normalization, crop,
                             device, batch_size=self.config.embed.batch_size, workers=workers)

        _run_chunks(work, self.n, chunk_rows, compute, self.dist, update)
        self.dist.barrier()
        if self.writer is None:
            return {}
        center = None
        if self.config.embed.center:
            center = _chunk_mean(work, self.n, chunk_rows)
            self.writer.write_array(CENTER, center, per_object=False)
        else:
            self.writer.remove(CENTER)
        width = _assemble(work, self.writer, "embeddings.npy", self.n, chunk_rows, np.float32, center=center)
        return {"dim": width, "device": str(device), "crop_size": crop, "centred": center is not None,
                "detail": f"{self.n:,} x {width}, {crop}x{crop} crops" + (", centred" if center is not None else "")}

    # -- from given embeddings ------------------------------------------------------------------

    def from_embeddings(self, embeddings: Path, catalog: Path) -> None:
        for stage in ("simulate", "train"):
            self._not_needed(stage, "built from given embeddings")
        if not self.dist.is_main:
            return
        array = _open_embeddings(embeddings)
        table = _given_catalog(catalog, self.config)
        if len(table) != len(array):
            raise GalexploreError(
                f"{catalog}: {len(table):,} catalog rows but {embeddings} has {len(array):,} embeddings; "
                f"expected one catalog row per embedding, in the same order"
            )
        check_galaxy_count(len(array), self.config, str(embeddings))
        check_catalog_columns(table, self.config, str(catalog))
        self.n = len(array)
        self._open_writer()
        self.source_catalog = _read_once(lambda: _given_catalog(catalog, self.config))
        source_fp = [file_fingerprint(embeddings), file_fingerprint(catalog)]

        def copy() -> dict[str, Any]:
            update = self.progress("embed", self.n)
            with self.writer.create_array("embeddings.npy", array.shape, np.float32) as target:
                for start in range(0, self.n, self.config.embed.chunk_rows):
                    stop = min(start + self.config.embed.chunk_rows, self.n)
                    target[start:stop] = _unit_rows(array[start:stop], embeddings, start)
                    update(stop - start)
            return {"dim": int(array.shape[1]), "detail": f"{self.n:,} x {array.shape[1]} from {embeddings.name}"}

        self._stage("embed", fingerprint("embed", source_fp), ("embeddings.npy",), copy)
        # recorded once the embeddings are in: a refused file leaves the manifest as it was
        self.writer.set("provenance", {
            "config": to_toml(absolute_paths(self.config)),
            "embeddings": {"path": str(embeddings.resolve()), "catalog": str(catalog.resolve()),
                           "fingerprint": source_fp},
        })

    # -- the stages after the embedding (rank 0) -------------------------------------------------

    def downstream(self) -> None:
        from galexplore.maps.neighbors import knn_graph
        from galexplore.maps.projection import fit_pca, umap_layout
        from galexplore.maps.scores import (
            anomaly_scores,
            label_availability,
            labelled_masks,
            local_outlier_factor,
            trust_scores,
        )

        cfg, writer = self.config, self.writer
        atlas = writer.reader()
        dim = atlas.embeddings.shape[1]
        reduce = 0 < cfg.embed.pca_dim < dim
        reduce_fp = fingerprint("reduce", self.fingerprints["embed"], cfg.embed.pca_dim, cfg.embed.pca_sample, cfg.seed)

        def run_reduce() -> dict[str, Any]:
            pca = fit_pca(atlas.embeddings, cfg.embed.pca_dim, sample=cfg.embed.pca_sample, seed=cfg.seed)
            writer.write_npz("pca.npz", **pca.to_arrays())
            update = self.progress("reduce", self.n)
            with writer.create_array("embeddings_reduced.npy", (self.n, pca.components.shape[0]), np.float32) as target:
                for start in range(0, self.n, 65536):
                    stop = min(start + 65536, self.n)
                    target[start:stop] = pca.transform(atlas.embeddings[start:stop])
                    update(stop - start)
            kept = float(pca.explained_variance_ratio.sum())
            return {"dim": cfg.embed.pca_dim, "explained_variance": kept,
                    "detail": f"{dim} -> {cfg.embed.pca_dim} dims, {kept:.1%} of the variance"}

        if reduce:
            self._stage("reduce", reduce_fp, ("embeddings_reduced.npy", "pca.npz"), run_reduce)
        else:
            for name in ("embeddings_reduced.npy", "pca.npz"):
                writer.remove(name)
            self.fingerprints["reduce"] = reduce_fp
            self._not_needed("reduce", f"embed.pca_dim = {cfg.embed.pca_dim}: search on all {dim} dimensions")
        space = "embeddings_reduced.npy" if reduce else "embeddings.npy"

        # read once, after the reduce stage has (or has not) written it; shared by the stages below
        search_space = _read_once(lambda: np.ascontiguousarray(writer.reader().array(space), dtype=np.float32))

        nb = cfg.neighbors

        def run_neighbors() -> dict[str, Any]:
            update = self.progress("neighbors", self.n)
            graph = knn_graph(search_space(), nb.k, method=nb.method, exact_max=nb.exact_max, nlist=nb.nlist,
                              nprobe=nb.nprobe, seed=cfg.seed, progress=update, recall_target=nb.recall_target)
            writer.write_array("neighbors.npy", graph.indices.astype(np.int32))
            writer.write_array("similarities.npy", graph.similarities.astype(np.float16))
            recall = "" if graph.recall is None else f", recall@{nb.k} {graph.recall:.3f}"
            return {"method": graph.method, "k": nb.k, "space": space, "recall": graph.recall, "nprobe": graph.nprobe,
                    "detail": f"k={nb.k} {graph.method} on {space}{recall}"}

        neighbors_fp = fingerprint("neighbors", self.fingerprints["reduce"], _table(cfg, "neighbors"), cfg.seed)
        self._stage("neighbors", neighbors_fp, ("neighbors.npy", "similarities.npy"), run_neighbors)

        def run_project() -> dict[str, Any]:
            reader = writer.reader()
            graph = (np.asarray(reader.neighbors), np.asarray(reader.similarities, dtype=np.float32))
            pr = cfg.project
            update = self.progress("project", self.n)
            xy = umap_layout(search_space(), n_neighbors=pr.n_neighbors, min_dist=pr.min_dist, seed=cfg.seed,
                             fit_sample=pr.fit_sample, chunk_rows=pr.chunk_rows, knn=graph, progress=update)
            writer.write_array("umap.npy", xy.astype(np.float32))
            fitted = min(self.n, pr.fit_sample)
            how = "fit on all" if fitted == self.n else f"fit on {fitted:,}, the rest transformed"
            return {"fit_rows": fitted, "detail": f"UMAP {how} (n_neighbors={pr.n_neighbors}, min_dist={pr.min_dist})"}

        project_fp = fingerprint("project", self.fingerprints["neighbors"], _table(cfg, "project"), cfg.seed)
        self._stage("project", project_fp, ("umap.npy",), run_project)

        # what decides which rows are labelled; the class keys only when set, so an atlas built
        # before class columns existed stays up to date
        labelled_by = [self.fingerprints["embed"], _table(cfg, "trust")]
        if cfg.probes.categorical:
            labelled_by.append({"categorical": cfg.probes.categorical, "unlabelled": cfg.probes.unlabelled})
        labels_fp = fingerprint(*labelled_by)

        def masks_of(table: pd.DataFrame) -> dict[str, np.ndarray]:
            return labelled_masks(table, cfg.trust.labels, categorical=cfg.probes.categorical,
                                  unlabelled=cfg.probes.unlabelled)

        def run_scores() -> dict[str, Any]:
            table = self.source_catalog()
            masks = masks_of(table)
            columns, notes = trust_scores(search_space(), masks, cfg.trust.k, method=nb.method,
                                          exact_max=nb.exact_max, nlist=nb.nlist, nprobe=nb.nprobe, seed=cfg.seed)
            reader = writer.reader()
            sims = np.asarray(reader.similarities, dtype=np.float32)
            if cfg.anomaly.method == "lof":
                columns["anomaly_score"] = local_outlier_factor(np.asarray(reader.neighbors), sims, cfg.anomaly.k)
            else:
                columns["anomaly_score"] = anomaly_scores(sims, cfg.anomaly.k)
            names = list(columns)
            writer.write_array("scores.npy", np.stack([columns[n] for n in names], axis=1).astype(np.float32))
            counts = {kind: int(mask.sum()) for kind, mask in masks.items()}
            return {"columns": names, "labelled": counts, "notes": notes,
                    "detail": ", ".join(f"{kind} {count:,} labelled" for kind, count in counts.items())}

        scores_fp = fingerprint("scores", self.fingerprints["neighbors"], labels_fp, _table(cfg, "anomaly"))
        self._stage("scores", scores_fp, ("scores.npy",), run_scores)

        def run_probes() -> dict[str, Any]:
            from galexplore.evaluate.probes import (class_columns, config_targets, evaluate_probes, labelled_predictions,
                                                    predict_all)

            table = self.source_catalog()
            x = np.asarray(writer.reader().embeddings, dtype=np.float32)
            targets = config_targets(cfg.probes)
            # the class columns' classes, in the order of the class indices in probes.npy (and
            # for the explorer's legends, probed or not)
            classes = {"classes": class_columns(table, cfg.probes.categorical, cfg.probes.unlabelled),
                       "unlabelled": list(cfg.probes.unlabelled)}
            predictions = predict_all(x, table, seed=cfg.seed, folds=CROSS_FIT_FOLDS, **targets)
            if not predictions:
                writer.remove("probes.npy")
                return {"columns": [], "outputs": [], **classes,
                        "detail": "no label kind has 20 labelled galaxies: nothing to predict"}
            names = list(predictions)
            writer.write_array("probes.npy", np.stack([predictions[n] for n in names], axis=1).astype(np.float32))
            held_out = evaluate_probes(x, table, seed=cfg.seed, **targets)
            schemes = labelled_predictions(table, CROSS_FIT_FOLDS, **targets)
            return {"columns": names, "held_out": held_out, "labelled_predictions": schemes, "outputs": ["probes.npy"],
                    **classes, "detail": ", ".join(names) + f" (labelled galaxies {CROSS_FIT_FOLDS}-fold out-of-fold)"}

        # the folds are in the fingerprint: an atlas whose labelled predictions were in-sample reruns
        probes_fp = fingerprint("probes", self.fingerprints["embed"], labels_fp, cfg.seed, {"folds": CROSS_FIT_FOLDS},
                                _table(cfg, "probes"))
        # a survey without labels records no output; one with labels, probes.npy
        probe_outputs = tuple(writer.manifest.get("stages", {}).get("probes", {}).get("outputs", ["probes.npy"]))
        self._stage("probes", probes_fp, probe_outputs, run_probes)

        def run_catalog() -> dict[str, Any]:
            table = self.source_catalog().reset_index(drop=True)
            reader = writer.reader()
            xy = np.asarray(reader.array("umap.npy"))
            table["umap_x"], table["umap_y"] = xy[:, 0], xy[:, 1]
            score_names = writer.manifest["stages"]["scores"]["columns"]
            scores = np.asarray(reader.array("scores.npy"))
            for j, name in enumerate(score_names):
                table[name] = scores[:, j]
            probe_stage = writer.manifest["stages"]["probes"]
            probe_names = probe_stage["columns"]
            # a class column's prediction is stored as its class index: back to the class itself
            decoded = {f"{column}_pred": names for column, names in (probe_stage.get("classes") or {}).items()}
            if probe_names:
                probes = np.asarray(reader.array("probes.npy"))
                for j, name in enumerate(probe_names):
                    table[name] = decode_classes(probes[:, j], decoded[name]) if name in decoded else probes[:, j]
            if "label_availability" not in table:
                masks = masks_of(table)
                table["label_availability"] = label_availability(masks, len(table))
            table["label_availability"] = table["label_availability"].astype("category")
            writer.write_catalog(table)
            return {"columns": len(table.columns), "detail": f"{len(table):,} rows x {len(table.columns)} columns"}

        catalog_fp = fingerprint("catalog", self.fingerprints["project"], self.fingerprints["scores"], self.fingerprints["probes"],
                                 self.fingerprints.get("train"), writer.manifest.get("provenance", {}).get("embeddings"))
        self._stage("catalog", catalog_fp, ("catalog.parquet",), run_catalog)
        self._card(reduce)
        writer.set_summary({"n_objects": self.n, "stages": {r.name: {"status": r.status, "seconds": round(r.seconds, 3)}
                                                            for r in self.reports}})
        writer.commit()


    def _card(self, reduced: bool) -> None:
        """The report card (see `galexplore.scoring.atlas_card`), into the manifest."""
        cfg = self.config
        if cfg.card.rows == 0:
            self.writer.manifest["stages"].pop("card", None)
            self._not_needed("card", "card.rows = 0")
            return
        from_survey = "survey" in self.writer.manifest.get("provenance", {})
        baselines = cfg.card.baselines and from_survey
        card_fp = fingerprint("card", self.fingerprints["embed"], self.fingerprints["reduce"] if reduced else None,
                              _table(cfg, "card"), _table(cfg, "probes"), cfg.seed, baselines)

        def run_card() -> dict[str, Any]:
            from galexplore.scoring.atlas_card import report_card

            reader = self.writer.reader()
            with contextlib.ExitStack() as stack:
                functions = self._baselines(stack, reader) if baselines else {}
                result = report_card(cfg, self.source_catalog(), reader.embeddings,
                                     reader.reduced if reduced else None, functions, log=self.log)
            if not baselines:
                result["baselines_note"] = ("card.baselines = false" if from_survey else
                                            "built from given embeddings: no images to read for the baselines")
            scored = [c for c, e in result["labels"].items() if "note" not in e]
            detail = (f"{len(scored)} label columns on {result['protocol']['rows']:,} galaxies in "
                      f"{', '.join(result['spaces'])}" if scored else "no label column to score")
            return {"card": result, "detail": detail}

        self._stage("card", card_fp, (), run_card)

    def _baselines(self, stack: contextlib.ExitStack, reader: Any) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
        """The report card's pixel and untrained-network representations of catalog rows, from
        the survey (opened on `stack`) with the encoder's normalisation and the embed crop."""
        import torch

        from galexplore.training.embed import load_encoder_arrays, represent
        from galexplore.scoring.atlas_card import PIXEL_DIM
        from galexplore.evaluate.baselines import pixel_pca
        from galexplore.scoring.card import unit_rows
        from galexplore.models import build_encoder
        from galexplore.survey import open_survey

        cfg = self.config
        survey = stack.enter_context(open_survey(cfg))
        _, enc_cfg, normalization = load_encoder_arrays(
            reader.npz("encoder.npz"), reader.json("encoder.json"), str(self.out / "encoder.npz"))
        crop = cfg.embed.crop_size or enc_cfg.augment.crop_size

        def untrained(rows: np.ndarray) -> np.ndarray:
            torch.manual_seed(cfg.seed)
            net = build_encoder(cfg.model, in_channels=survey.shape[0]).to(memory_format=torch.channels_last)
            x = represent(net, survey, rows, normalization, crop, torch.device("cpu"), batch_size=cfg.embed.batch_size)
            return unit_rows(x - x.mean(axis=0)) if cfg.embed.center else x  # read out as the atlas is

        return {"pixels": lambda rows: pixel_pca(survey, rows, normalization, crop, PIXEL_DIM, cfg.seed),
                "untrained": untrained}


# -- helpers -------------------------------------------------------------------------------------


def _read_once(read: Callable[[], Any]) -> Callable[[], Any]:
    """`read`, called on first use only; later calls return the same result (a shallow copy of a
    DataFrame, so a stage that adds columns does not change what the next stage reads)."""
    cache: list[Any] = []

    def once() -> Any:
        if not cache:
            cache.append(read())
        value = cache[0]
        return value.copy(deep=False) if isinstance(value, pd.DataFrame) else value

    return once


def peak_memory_mb() -> float | None:
    """This process's peak resident memory so far, in MB (None where the OS does not say)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # Linux: kB


def _simulated_with(path: Path) -> str | None:
    """The simulate fingerprint of a survey galexplore simulated at `path`, else None."""
    side = path.with_name(path.stem + ".config.toml")
    if not side.exists():
        return None
    try:
        cfg = config_from_dict(tomllib.loads(side.read_text(encoding="utf-8")), source=str(side))
    except (tomllib.TOMLDecodeError, GalexploreError):
        return None
    return fingerprint("simulate", _table(cfg, "simulate"), cfg.seed)


def _path_fingerprint(path: Path) -> str:
    """A file's fingerprint; for a folder, a hash of its entries' names, sizes and times."""
    if path.is_dir():
        entries = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in path.iterdir())
        return fingerprint(entries)
    return file_fingerprint(path)


def _survey_catalog(config: Config) -> pd.DataFrame:
    from galexplore.survey import open_survey

    with open_survey(config) as survey:
        return survey.catalog.copy()


def _given_catalog(path: Path, config: Config) -> pd.DataFrame:
    """A catalog file given with embeddings: CSV, FITS or Parquet, with object_id/ra/dec."""
    from galexplore.survey.base import check_catalog
    from galexplore.survey.catalogs import catalog_positions, read_catalog_file, table_to_frame

    table = table_to_frame(read_catalog_file(path), config.survey.bands)
    table = catalog_positions(table, config.survey, str(path))
    return check_catalog(table, len(table), str(path), config.survey.positions)


def _open_embeddings(path: Path) -> np.ndarray:
    if not path.exists():
        raise GalexploreError(f"{path}: embeddings file not found")
    check_regular_file(path, "a .npy array of N objects x D dimensions")
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except NPY_READ_ERRORS as exc:
        if "object" in str(exc).lower():  # numpy's refusal of an object array: unpickling could run code
            raise GalexploreError(f"{path}: holds Python objects (a pickle), which galexplore never loads; "
                                  f"expected a float array of N objects x D dimensions") from None
        raise GalexploreError(f"{path}: not a readable .npy array ({reason(exc)})") from None
    if not isinstance(array, np.ndarray):  # np.load opens an .npz archive too
        array.close()
        raise GalexploreError(f"{path}: an .npz archive of arrays; expected one .npy array of N objects x D dimensions")
    if array.ndim != 2 or array.shape[1] < 2 or array.dtype.kind != "f":
        raise GalexploreError(
            f"{path}: embeddings of shape {array.shape} and dtype {array.dtype}; expected a 2-D "
            f"float array (N objects, D >= 2 dimensions)"
        )
    return array


def _unit_rows(block: np.ndarray, source: Path, start: int) -> np.ndarray:
    """Rows `start`... of given embeddings scaled to unit length, float32.

    Each row is divided by its largest absolute value before its norm is taken, so a row of
    values near float32's limit (1e38, whose squares overflow) keeps its direction, and one of
    tiny values (whose squares underflow) is not taken for zeros.

    >>> _unit_rows(np.array([[1.5e38, 2e38], [3e-40, -4e-40]], np.float32), Path("e.npy"), 0).astype(float).round(4).tolist()
    [[0.6, 0.8], [0.6, -0.8]]
    """
    block = np.asarray(block)
    bad = ~np.isfinite(block).all(axis=1)
    if bad.any():
        raise GalexploreError(f"{source}: row {start + int(np.flatnonzero(bad)[0])} has NaN or infinite values")
    scale = np.abs(block).max(axis=1, keepdims=True).astype(np.float64)  # (B, 1)
    if (scale == 0).any():
        raise GalexploreError(f"{source}: row {start + int(np.flatnonzero(scale[:, 0] == 0)[0])} is all zeros")
    scaled = block / scale  # float64, every value in [-1, 1]
    return (scaled / np.linalg.norm(scaled, axis=1, keepdims=True)).astype(np.float32)


def _prepare_work(work: Path, fp: str) -> None:
    """A work folder for chunks made with fingerprint `fp`: kept when it matches, else emptied."""
    stamp = work / "fingerprint.txt"
    if work.exists() and (not stamp.exists() or stamp.read_text(encoding="utf-8") != fp):
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    if not stamp.exists():
        stamp.write_text(fp, encoding="utf-8")


def _chunk(work: Path, index: int) -> Path:
    return work / f"chunk-{index:06d}.npy"


def _run_chunks(work: Path, n: int, chunk_rows: int, compute: Callable[[int, int], np.ndarray],
                dist: Distributed, update: Callable[[int], None]) -> None:
    """Compute this rank's missing chunks (every world_size-th), each written atomically."""
    for index in range(dist.rank, -(-n // chunk_rows), dist.world_size):
        start, stop = index * chunk_rows, min((index + 1) * chunk_rows, n)
        path = _chunk(work, index)
        if not path.exists():
            values = compute(start, stop)
            with atomic_path(path) as tmp, open(tmp, "wb") as fh:
                np.save(fh, values)
        update(stop - start)


def _assemble(work: Path, writer: AtlasWriter, name: str, n: int, chunk_rows: int, dtype: Any,
              center: np.ndarray | None = None) -> int:
    """Concatenate the work folder's chunks into the atlas array `name`; return its width.

    With `center` (D,), each row is written as unit(row - center) (`center_rows`)."""
    from galexplore.training.embed import center_rows

    chunks = list(_iter_chunks(work, n, chunk_rows))
    width = chunks[0][1].shape[1]
    with writer.create_array(name, (n, width), dtype) as target:
        for start, values in chunks:
            target[start : start + len(values)] = values if center is None else center_rows(values, center)
    return width


def _chunk_mean(work: Path, n: int, chunk_rows: int) -> np.ndarray:
    """The mean row (D,) float32 of the work folder's chunks, accumulated in float64."""
    total = None
    for _, values in _iter_chunks(work, n, chunk_rows):
        part = np.asarray(values, dtype=np.float64).sum(axis=0)
        total = part if total is None else total + part
    assert total is not None
    return (total / n).astype(np.float32)


def _iter_chunks(work: Path, n: int, chunk_rows: int) -> Iterator[tuple[int, np.ndarray]]:
    for index in range(-(-n // chunk_rows)):
        path = _chunk(work, index)
        if not path.exists():
            raise GalexploreError(f"{path}: embedding chunk missing after every process finished; rerun to resume")
        yield index * chunk_rows, np.load(path, mmap_mode="r", allow_pickle=False)
