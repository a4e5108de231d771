"""The stages after the embedding (rank 0): reduce with PCA, the neighbour graph, the UMAP map,
trust and anomaly scores, the probes' predictions, and the catalog that gathers them.

Each reads the atlas its predecessors wrote and writes its own arrays through the atlas writer;
what it computes lives in `galexplore.maps` and `galexplore.evaluate`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from galexplore.evaluate.probes import CROSS_FIT_FOLDS
from galexplore.labels import decode_classes
from galexplore.pipeline.runner import BuildState, StageResult

BLOCK_ROWS = 65536  # rows reduced at a time


def reduce_not_needed(state: BuildState) -> str | None:
    dim = state.writer.reader().embeddings.shape[1]
    pca_dim = state.config.embed.pca_dim
    return None if 0 < pca_dim < dim else f"embed.pca_dim = {pca_dim}: search on all {dim} dimensions"


def run_reduce(state: BuildState) -> StageResult:
    from galexplore.maps.projection import fit_pca

    cfg, writer, n = state.config, state.writer, state.n
    embeddings = writer.reader().embeddings
    pca = fit_pca(embeddings, cfg.embed.pca_dim, sample=cfg.embed.pca_sample, seed=cfg.seed)
    writer.write_npz("pca.npz", **pca.to_arrays())
    update = state.progress(n)
    with writer.create_array("embeddings_reduced.npy", (n, pca.components.shape[0]), np.float32) as target:
        for start in range(0, n, BLOCK_ROWS):
            stop = min(start + BLOCK_ROWS, n)
            target[start:stop] = pca.transform(embeddings[start:stop])
            update(stop - start)
    kept = float(pca.explained_variance_ratio.sum())
    return StageResult(f"{embeddings.shape[1]} -> {cfg.embed.pca_dim} dims, {kept:.1%} of the variance",
                       {"dim": cfg.embed.pca_dim, "explained_variance": kept})


def _space(state: BuildState) -> str:
    """The array the graph, the map and trust search: the reduced embeddings when reduce ran."""
    return "embeddings.npy" if "reduce" in state.not_needed else "embeddings_reduced.npy"


def search_space(state: BuildState) -> np.ndarray:
    """That array in memory, read once (after the reduce stage has or has not written it)."""
    return state.once("search space", lambda: np.ascontiguousarray(
        state.writer.reader().array(_space(state)), dtype=np.float32))


def run_neighbors(state: BuildState) -> StageResult:
    from galexplore.maps.neighbors import knn_graph

    nb, space = state.config.neighbors, _space(state)
    graph = knn_graph(search_space(state), nb.k, method=nb.method, exact_max=nb.exact_max, nlist=nb.nlist,
                      nprobe=nb.nprobe, seed=state.config.seed, progress=state.progress(state.n),
                      recall_target=nb.recall_target)
    state.writer.write_array("neighbors.npy", graph.indices.astype(np.int32))
    state.writer.write_array("similarities.npy", graph.similarities.astype(np.float16))
    recall = "" if graph.recall is None else f", recall@{nb.k} {graph.recall:.3f}"
    return StageResult(f"k={nb.k} {graph.method} on {space}{recall}", {
        "method": graph.method, "k": nb.k, "space": space, "recall": graph.recall, "nprobe": graph.nprobe})


def run_project(state: BuildState) -> StageResult:
    from galexplore.maps.projection import umap_layout

    pr, n = state.config.project, state.n
    reader = state.writer.reader()
    graph = (np.asarray(reader.neighbors), np.asarray(reader.similarities, dtype=np.float32))
    xy = umap_layout(search_space(state), n_neighbors=pr.n_neighbors, min_dist=pr.min_dist, seed=state.config.seed,
                     fit_sample=pr.fit_sample, chunk_rows=pr.chunk_rows, knn=graph, progress=state.progress(n))
    state.writer.write_array("umap.npy", xy.astype(np.float32))
    fitted = min(n, pr.fit_sample)
    how = "fit on all" if fitted == n else f"fit on {fitted:,}, the rest transformed"
    return StageResult(f"UMAP {how} (n_neighbors={pr.n_neighbors}, min_dist={pr.min_dist})", {"fit_rows": fitted})


def _masks(table: pd.DataFrame, state: BuildState) -> dict[str, np.ndarray]:
    from galexplore.maps.scores import labelled_masks

    probes = state.config.probes
    return labelled_masks(table, state.config.trust.labels, categorical=probes.categorical,
                          unlabelled=probes.unlabelled)


def run_scores(state: BuildState) -> StageResult:
    from galexplore.maps.scores import anomaly_scores, local_outlier_factor, trust_scores

    cfg = state.config
    nb = cfg.neighbors
    masks = _masks(state.catalog(), state)
    columns, notes = trust_scores(search_space(state), masks, cfg.trust.k, method=nb.method,
                                  exact_max=nb.exact_max, nlist=nb.nlist, nprobe=nb.nprobe, seed=cfg.seed)
    reader = state.writer.reader()
    sims = np.asarray(reader.similarities, dtype=np.float32)
    if cfg.anomaly.method == "lof":
        columns["anomaly_score"] = local_outlier_factor(np.asarray(reader.neighbors), sims, cfg.anomaly.k)
    else:
        columns["anomaly_score"] = anomaly_scores(sims, cfg.anomaly.k)
    names = list(columns)
    state.writer.write_array("scores.npy", np.stack([columns[n] for n in names], axis=1).astype(np.float32))
    counts = {kind: int(mask.sum()) for kind, mask in masks.items()}
    return StageResult(", ".join(f"{kind} {count:,} labelled" for kind, count in counts.items()),
                       {"columns": names, "labelled": counts, "notes": notes})


def run_probes(state: BuildState) -> StageResult:
    """Every galaxy's predicted labels; labelled galaxies out-of-fold (`CROSS_FIT_FOLDS`)."""
    from galexplore.evaluate.probes import (class_columns, config_targets, evaluate_probes, labelled_predictions,
                                            predict_all)

    cfg, writer = state.config, state.writer
    table = state.catalog()
    x = np.asarray(writer.reader().embeddings, dtype=np.float32)
    targets = config_targets(cfg.probes)
    # the class columns' classes, in the order of the class indices in probes.npy (and for the
    # explorer's legends, probed or not)
    classes = {"classes": class_columns(table, cfg.probes.categorical, cfg.probes.unlabelled),
               "unlabelled": list(cfg.probes.unlabelled)}
    predictions = predict_all(x, table, seed=cfg.seed, folds=CROSS_FIT_FOLDS, **targets)
    if not predictions:
        writer.remove("probes.npy")
        return StageResult("no label kind has 20 labelled galaxies: nothing to predict",
                           {"columns": [], **classes}, outputs=())
    names = list(predictions)
    writer.write_array("probes.npy", np.stack([predictions[n] for n in names], axis=1).astype(np.float32))
    held_out = evaluate_probes(x, table, seed=cfg.seed, **targets)
    schemes = labelled_predictions(table, CROSS_FIT_FOLDS, **targets)
    return StageResult(", ".join(names) + f" (labelled galaxies {CROSS_FIT_FOLDS}-fold out-of-fold)",
                       {"columns": names, "held_out": held_out, "labelled_predictions": schemes, **classes})


def run_catalog(state: BuildState) -> StageResult:
    """The source catalog with every stage's columns: the map, the scores, the predictions."""
    from galexplore.maps.scores import label_availability

    table = state.catalog().reset_index(drop=True)
    reader = state.writer.reader()
    xy = np.asarray(reader.array("umap.npy"))
    table["umap_x"], table["umap_y"] = xy[:, 0], xy[:, 1]
    scores = np.asarray(reader.array("scores.npy"))
    for j, name in enumerate(state.record("scores").fields["columns"]):
        table[name] = scores[:, j]
    probes = state.record("probes").fields
    # a class column's prediction is stored as its class index: back to the class itself
    decoded = {f"{column}_pred": names for column, names in (probes.get("classes") or {}).items()}
    if probes["columns"]:
        predicted = np.asarray(reader.array("probes.npy"))
        for j, name in enumerate(probes["columns"]):
            table[name] = decode_classes(predicted[:, j], decoded[name]) if name in decoded else predicted[:, j]
    if "label_availability" not in table:
        table["label_availability"] = label_availability(_masks(table, state), len(table))
    table["label_availability"] = table["label_availability"].astype("category")
    state.writer.write_catalog(table)
    return StageResult(f"{len(table):,} rows x {len(table.columns)} columns", {"columns": len(table.columns)})
