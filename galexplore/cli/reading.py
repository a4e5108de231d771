"""The verbs that read what was made and print it: `evaluate`, `invariance`, `probe`,
`inspect`, `report`, `montage` (as text, or as one JSON object with --json).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def _check_seed(seed: int) -> None:
    from galexplore.config import MAX_SEED
    from galexplore.errors import GalexploreError

    if not 0 <= seed <= MAX_SEED:
        raise GalexploreError(f"--seed {seed}: expected an integer from 0 to {MAX_SEED} (numpy takes 32-bit seeds)")


def _open(path: Path, config_path: Path | None):
    from galexplore.survey import open_path, open_survey

    if config_path is None:
        return open_path(path)
    from galexplore.config import load_config

    return open_survey(load_config(config_path), path)


def do_probe(args: argparse.Namespace) -> int:
    import json

    from galexplore.atlas.files import AtlasWriter, open_atlas
    from galexplore.errors import GalexploreError
    from galexplore.evaluate.probes import evaluate_probes

    _check_seed(args.seed)
    try:
        counts = [int(n) for n in args.labels.split(",") if n.strip()]
    except ValueError:
        raise GalexploreError(f"--labels {args.labels!r}: expected comma-separated label counts, e.g. 100,300,1000") from None
    atlas = open_atlas(args.atlas, require=("catalog.parquet", "embeddings.npy"))
    result = evaluate_probes(atlas.embeddings, atlas.catalog, seed=args.seed, label_counts=counts)
    AtlasWriter(args.atlas, name=atlas.name).write_json("probe_sweep.json", result)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{atlas.path}: linear probes, seed {args.seed}, {result['test_fraction']:.0%} of each label kind held out")
    for column in ("z_spec", "p_features", "p_edge_on"):
        if column not in result:
            continue
        entry = result[column]
        print(f"  {column} ({entry['n_train']} train, {entry['n_test']} test)")
        for point in [*entry.get("sweep", []), {"n_train": entry["n_train"], "metrics": entry["metrics"]}]:
            m = point["metrics"]
            if column == "z_spec":
                text = f"sigma_MAD {m['sigma_mad']:.4f}  eta {m['outlier_fraction']:.3f}  bias {m['bias']:+.4f}"
            else:
                auc = "-" if m["roc_auc"] is None else f"{m['roc_auc']:.3f}"
                text = f"accuracy {m['accuracy']:.3f}  AUC {auc}"
            print(f"    {point['n_train']:>6} labels: {text}")
    return 0


def _report_on_encoder(args: argparse.Namespace, compute, render) -> int:
    """Load the encoder and its survey, compute a result, print it as JSON or as text."""
    import json
    import os

    from galexplore.training.embed import load_encoder
    from galexplore.survey import open_survey
    from galexplore.training.launch import select_device

    path = args.encoder / "encoder.pt" if args.encoder.is_dir() else args.encoder
    device = select_device(args.device, os.environ)
    backbone, cfg, normalization = load_encoder(path, device)
    with open_survey(cfg, args.survey) as survey:
        result = compute(backbone, cfg, normalization, survey, device)
    if args.json:
        print(json.dumps(result))
    else:
        render(result)
    return 0


def do_evaluate(args: argparse.Namespace) -> int:
    from galexplore.atlas.files import MANIFEST

    if (args.encoder / MANIFEST).is_file():
        return _evaluate_atlas(args)
    from galexplore.evaluate.baselines import compare_with_baselines

    def render(result: dict) -> None:
        print(f"kNN (k={result['k']}, {result['folds']}-fold cross-validated) on "
              f"{result['n_labelled']} labelled galaxies")
        print(f"  {'representation':<16}{'sigma_MAD':>11}{'eta':>9}{'bias':>9}{'morph acc':>11}")
        for name in ("trained", "untrained", "pixel_pca"):
            z = result[name].get("redshift", {})
            m = result[name].get("morphology", {})
            cells = [f"{z[k]:>{w}.4f}" if k in z else f"{'-':>{w}}" for k, w in
                     (("sigma_mad", 11), ("outlier_fraction", 9), ("bias", 9))]
            cells.append(f"{m['accuracy']:>11.3f}" if m else f"{'-':>11}")
            print(f"  {name:<16}" + "".join(cells))

    return _report_on_encoder(args, compare_with_baselines, render)


def _evaluate_atlas(args: argparse.Namespace) -> int:
    """Print the report card the build stored in the atlas's manifest."""
    import json

    from galexplore.atlas.files import open_atlas
    from galexplore.errors import GalexploreError
    from galexplore.scoring.atlas_card import card_text

    atlas = open_atlas(args.encoder)
    result = (atlas.stages.get("card") or {}).get("card")
    if not isinstance(result, dict):
        raise GalexploreError(f"atlas {args.encoder}: no report card (built before the report card existed, or "
                              f"with card.rows = 0); run `galexplore build CONFIG --out {args.encoder}` with "
                              f"card.rows > 0: only the card stage runs")
    print(json.dumps(result) if args.json else card_text(result))
    return 0


def do_invariance(args: argparse.Namespace) -> int:
    from galexplore.evaluate.invariance import invariance

    def render(result: dict) -> None:
        print(f"  {'augmentation':<14}{'same galaxy':>13}{'different':>11}")
        for name, sims in result.items():
            print(f"  {name:<14}{sims['same']:>13.3f}{sims['different']:>11.3f}")

    return _report_on_encoder(args, invariance, render)


def do_inspect(args: argparse.Namespace) -> int:
    import json

    if args.path.is_dir() and (args.path / "manifest.json").exists():
        from galexplore.atlas.files import open_atlas
        from galexplore.errors import GalexploreError
        from galexplore.report.summary import format_atlas_summary, summarize_atlas

        if args.config is not None:
            raise GalexploreError(f"--config applies to surveys; {args.path} is an atlas")
        summary = summarize_atlas(open_atlas(args.path, require=()))
        print(json.dumps(summary) if args.json else format_atlas_summary(summary))
        return 0
    from galexplore.report.summary import format_summary, summarize_survey

    with _open(args.path, args.config) as survey:
        summary = summarize_survey(survey)
    print(json.dumps(summary) if args.json else format_summary(summary))
    return 0


def do_report(args: argparse.Namespace) -> int:
    from galexplore.atlas.files import CATALOG, open_atlas
    from galexplore.io import make_folder
    from galexplore.report.page import write_report

    atlas = open_atlas(args.atlas, require=(CATALOG,))
    out = make_folder(args.out or args.atlas / "report")
    start = time.perf_counter()
    path = write_report(atlas, out)
    print(f"wrote {path} in {time.perf_counter() - start:.1f} s")
    return 0


def do_montage(args: argparse.Namespace) -> int:
    from galexplore.errors import GalexploreError
    from galexplore.report.montage import MAX_COLUMNS, MAX_TILES, MIN_TILE, draw_montage

    if not 1 <= args.n <= MAX_TILES:
        raise GalexploreError(f"--n {args.n}: expected a positive integer <= {MAX_TILES:,} (each tile is at least "
                              f"{MIN_TILE}x{MIN_TILE} pixels of one PNG)")
    _check_seed(args.seed)
    if not 1 <= args.columns <= MAX_COLUMNS:
        raise GalexploreError(f"--columns {args.columns}: expected a positive integer <= {MAX_COLUMNS} (each tile is "
                              f"at least {MIN_TILE} pixels wide: {MAX_COLUMNS} make a PNG {MAX_COLUMNS * MIN_TILE:,} pixels wide)")
    with _open(args.path, args.config) as survey:
        out = draw_montage(survey, args.out, n=args.n, columns=args.columns, seed=args.seed)
    print(f"wrote {out}")
    return 0
