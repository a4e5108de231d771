"""Rings on real DECaLS galaxies: is the atlas's similarity better than raw pixels?

    .venv/bin/python bench/rings.py [ATLAS] [--k 10] [--size 64] [--pca 50] [--seeds 0 1 2]

ATLAS (default data/atlas/decals_rings) is built with
``galexplore build pipelines/decals_rings.toml --out data/atlas/decals_rings`` from the 470 real
galaxies of ../shared/data/decals_rings (balanced: 235 rings, 235 not). On the same galaxies:

- kNN accuracy (k neighbours, cosine, majority vote) of ring vs not, stratified 5-fold
  cross-validation (sklearn), repeated for each seed of the fold split: mean and std;
- precision@k of the similarity search for rings: the fraction of each ring galaxy's k nearest
  neighbours (itself excluded) that are rings, averaged over rings (base rate 235/469 = 0.501);

for (a) the atlas's representations (the full embeddings, and the reduced search space the
atlas's neighbours.npy was computed on; the atlas's own neighbours.npy gives the "atlas search"
precision), and (b) raw pixels: each image resized to size x size (Lanczos), RGB or grey,
centred and reduced by PCA (seeded) to --pca dimensions. PCA and SSL see no labels, so both are
fitted on all 470 images. Prints one JSON object with the numbers and the atlas's training
settings (from its manifest).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tomllib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def knn_accuracy(x: np.ndarray, y: np.ndarray, k: int, seeds: list[int]) -> dict[str, float]:
    """Mean and std over seeds of the stratified 5-fold kNN (cosine) accuracy of labels y."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    scores = []
    for seed in seeds:
        folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
        clf = KNeighborsClassifier(n_neighbors=k, metric="cosine", algorithm="brute")
        scores.append(float(cross_val_score(clf, x, y, cv=folds, scoring="accuracy").mean()))
    return {"mean": float(np.mean(scores)), "std": float(np.std(scores)), "per_seed": scores}


def neighbours(x: np.ndarray, k: int) -> np.ndarray:
    """Each row's k nearest rows by cosine similarity, itself excluded, best first: (N, k)."""
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    sims = unit @ unit.T
    np.fill_diagonal(sims, -np.inf)
    return np.argsort(-sims, axis=1, kind="stable")[:, :k]


def precision_at_k(indices: np.ndarray, y: np.ndarray, k: int) -> float:
    """Mean over ring galaxies (y == 1) of the fraction of their first k neighbours that are rings."""
    rings = np.flatnonzero(y == 1)
    return float((y[indices[rings, :k]] == 1).mean())


def pixel_features(images: np.ndarray, dim: int, seed: int) -> np.ndarray:
    """Centred pixels (N, P) reduced by a seeded PCA to `dim` dimensions."""
    from sklearn.decomposition import PCA

    flat = images.reshape(len(images), -1).astype(np.float64)
    return PCA(n_components=dim, random_state=seed).fit_transform(flat - flat.mean(axis=0))


def read_pixels(config_text: str, survey_path: str, size: int) -> np.ndarray:
    """Every image of the atlas's survey resized to size x size: (N, 3, size, size) in [0, 1]."""
    from PIL import Image

    from galexplore.config import config_from_dict
    from galexplore.survey import open_survey

    config = config_from_dict(tomllib.loads(config_text))
    with open_survey(config, survey_path) as survey:
        out = np.empty((len(survey), survey.shape[0], size, size), dtype=np.float32)
        for start in range(0, len(survey), 64):
            batch = survey.read(np.arange(start, min(start + 64, len(survey))))  # (B, C, H, W)
            for j, cube in enumerate(batch):
                for c, band in enumerate(cube):
                    picture = Image.fromarray(band, mode="F").resize((size, size), Image.Resampling.LANCZOS)
                    out[start + j, c] = np.asarray(picture)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("atlas", nargs="?", default=str(ROOT / "data" / "atlas" / "decals_rings"))
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--size", type=int, default=64, help="pixel baseline: images resized to size x size")
    parser.add_argument("--pca", type=int, default=50, help="pixel baseline: PCA dimensions")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()

    from galexplore.atlas.files import open_atlas

    start = time.perf_counter()
    atlas = open_atlas(Path(args.atlas))
    catalog = atlas.catalog
    if "ring" not in catalog:
        raise SystemExit(f"{args.atlas}: the catalog has no 'ring' column; build pipelines/decals_rings.toml")
    y = catalog["ring"].to_numpy().astype(np.int64)
    manifest = atlas.manifest
    config_text = manifest["provenance"]["config"]
    config = tomllib.loads(config_text)
    train_stage = manifest["stages"]["train"]

    results: dict[str, dict] = {}
    spaces = {"ssl_embeddings": np.asarray(atlas.embeddings, dtype=np.float64)}
    if (Path(args.atlas) / "embeddings_reduced.npy").exists():
        spaces["ssl_reduced"] = np.asarray(atlas.array("embeddings_reduced.npy"), dtype=np.float64)
    pixels = read_pixels(config_text, manifest["provenance"]["survey"]["path"], args.size)  # (N, 3, s, s)
    spaces[f"pixels_rgb_{args.size}_pca{args.pca}"] = pixel_features(pixels, args.pca, args.seeds[0])
    spaces[f"pixels_grey_{args.size}_pca{args.pca}"] = pixel_features(pixels.mean(axis=1), args.pca, args.seeds[0])
    for name, x in spaces.items():
        results[name] = {
            "dim": int(x.shape[1]),
            f"knn{args.k}_accuracy_5fold": knn_accuracy(x, y, args.k, args.seeds),
            f"precision_at_{args.k}": precision_at_k(neighbours(x, args.k), y, args.k),
        }
    graph = np.asarray(atlas.neighbors)
    results["atlas_search"] = {f"precision_at_{args.k}": precision_at_k(graph, y, args.k),
                               "space": manifest["stages"]["neighbors"].get("space")}
    report = {
        "atlas": str(args.atlas),
        "n": int(len(y)), "rings": int(y.sum()),
        "base_rate_precision": float((y.sum() - 1) / (len(y) - 1)),
        "k": args.k, "seeds": args.seeds,
        "training": {"epochs": config["train"]["epochs"], "batch_size": config["train"]["batch_size"],
                     "lr": config["train"]["lr"], "crop_size": config["augment"]["crop_size"],
                     "augment": config["augment"]["order"], "arch": config["model"]["arch"],
                     "queue": config["model"]["queue"], "embed_crop_size": config["embed"]["crop_size"],
                     "steps": train_stage.get("steps"), "last_loss": train_stage.get("last_loss"),
                     "train_seconds": train_stage.get("seconds")},
        "results": results,
        "seconds": round(time.perf_counter() - start, 1),
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
