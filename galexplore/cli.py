"""The `galexplore` command line: one entry point, one verb per pipeline step.

Only argparse is imported at module level, so `galexplore --help` answers at once; each verb
imports what it needs. A user's mistake (`GalexploreError`) is printed as one line and exits 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from galexplore.atlas.locations import ablation_folder, atlas_folder, run_folder

EXIT_USER_ERROR = 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 on success)."""
    parser = _parser()
    args = parser.parse_args(argv)
    from galexplore.errors import GalexploreError

    try:
        return args.run(args) or 0
    except GalexploreError as exc:
        print(f"galexplore {args.verb}: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"galexplore {args.verb}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`galexplore inspect ... | head`)
        sys.stderr.close()
        return 0


def _parser() -> argparse.ArgumentParser:
    from galexplore import __version__

    parser = argparse.ArgumentParser(
        prog="galexplore",
        description="See and search what a self-supervised model learned from galaxy images.",
    )
    parser.add_argument("--version", action="version", version=f"galexplore {__version__}")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    p = verbs.add_parser("simulate", help="write a simulated ugriz survey (GalSim) with truth",
                         description="Simulate an SDSS-like survey into an HDF5 file that the "
                         "survey reader takes. Interrupted runs resume where they stopped.")
    _config_argument(p)
    p.add_argument("--out", type=Path, required=True, help="the survey file to write (.h5)")
    p.add_argument("--n", type=int, help="number of galaxies (default: the config's simulate.n)")
    p.add_argument("--workers", type=int, help="processes (default: the config's simulate.workers)")
    p.set_defaults(run=_simulate)

    p = verbs.add_parser("train", help="train a MoCo v2 encoder (one process, or many under torchrun)",
                         description="Train a MoCo v2 encoder on the config's survey. Resumes from "
                         "the run folder's latest checkpoint unless --restart. Under torchrun, each "
                         "process trains on its share of every batch (nccl on GPUs, gloo on CPUs).")
    _config_argument(p)
    p.add_argument("--out", type=Path, help="the run folder (default data/runs/<config name>, or under $GALEXPLORE_DATA)")
    start = p.add_mutually_exclusive_group()
    start.add_argument("--resume", action="store_true",
                       help="continue from the run folder's latest checkpoint (the default)")
    start.add_argument("--restart", action="store_true", help="ignore existing checkpoints and start over")
    p.add_argument("--max-steps", type=int, help="stop after this many optimiser steps")
    _device_argument(p)
    p.set_defaults(run=_train)

    for verb, *what in (
        ("evaluate", "an atlas's report card, or a trained encoder vs. untrained and pixel PCA",
         "Given an atlas: print its report card (every label column scored by kNN and a linear "
         "probe on the atlas's representations, raw-pixel PCA and the same network untrained; "
         "health and search-space figures). Given a run folder or encoder.pt: kNN photo-z and "
         "morphology of the trained encoder against the same architecture untrained and raw-pixel PCA."),
        ("invariance", "how invariant the representations are to each augmentation",
         "Per augmentation: the mean cosine similarity of two views of the same galaxy against "
         "two different galaxies."),
    ):
        p = verbs.add_parser(verb, help=what[0], description=what[1])
        p.add_argument("encoder", type=Path, help="a run folder or its encoder.pt" +
                       (", or an atlas folder" if verb == "evaluate" else ""))
        p.add_argument("--survey", type=Path, help="the survey (default: the one it was trained on)")
        p.add_argument("--device", help="cpu, cuda or cuda:N")
        p.add_argument("--json", action="store_true", help="print one JSON object")
        p.set_defaults(run=_evaluate if verb == "evaluate" else _invariance)

    p = verbs.add_parser("build", help="run every pipeline stage into an atlas (skips what is up to date)",
                         description="Simulate (for a simulated survey), train, embed, reduce, find "
                         "neighbours, project with UMAP, score trust and anomalies, and write the "
                         "catalog: one atlas folder. Stages already up to date are skipped; an "
                         "interrupted build resumes. Under torchrun every process trains and embeds.")
    _config_argument(p)
    p.add_argument("--out", type=Path, help="the atlas folder (default data/atlas/<config name>, or under $GALEXPLORE_DATA)")
    p.add_argument("--run", type=Path, dest="run_folder",
                   help="the training run folder (default <atlas>.run beside it)")
    p.add_argument("--embeddings", type=Path, help="start from these representations (.npy, N x D) ...")
    p.add_argument("--catalog", type=Path, help="... and this catalog of the same N rows (.csv, .fits, .parquet)")
    _device_argument(p)
    p.set_defaults(run=_build)

    p = verbs.add_parser("probe", help="linear probes of an atlas's representations, with a label sweep",
                         description="Fit the linear probes (180-bin photo-z, morphology vote fractions) "
                         "on a seeded 70%% of the labelled galaxies and score them on the other 30%%, "
                         "also with only the first N training labels for each --labels count; the result "
                         "is saved in the atlas as probe_sweep.json.")
    p.add_argument("atlas", type=Path, help="an atlas folder")
    p.add_argument("--labels", default="100,300,1000,3000", help="label counts of the sweep (default 100,300,1000,3000)")
    p.add_argument("--seed", type=int, default=0, help="the split and the subsets (default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=_probe)

    p = verbs.add_parser("ablation", help="retrain without each augmentation in turn and probe each",
                         description="Which augmentations matter: train the config's encoder with all "
                         "augmentations, without each one in turn, and with rotation + jitter-crop "
                         "only; probe each with the same linear probes on the same held-out split.")
    _config_argument(p)
    p.add_argument("--out", type=Path, help="where the runs and ablation.json go (default data/ablation/<name>)")
    p.add_argument("--reference-run", type=Path, help="a finished run of the config itself, reused for 'all'")
    p.add_argument("--variant", action="append", dest="variants", metavar="NAME",
                   help="run only this variant (repeatable), e.g. 'no noise'")
    p.add_argument("--epochs", type=int, help="train every variant for this many epochs (default: the config's)")
    p.add_argument("--atlas", type=Path, help="also record the results in this atlas (ablation.json), for its report")
    _device_argument(p)
    p.set_defaults(run=_ablation)

    p = verbs.add_parser("serve", help="serve the explorer app on an atlas (panel serve app/)",
                         description="Serve the explorer on ATLAS: the same as `panel serve app/ --args "
                         "--atlas ATLAS`. Listens on localhost only unless --address says otherwise; "
                         "to serve a team, give --address 0.0.0.0 and --allow-websocket-origin HOST:PORT.")
    p.add_argument("atlas", type=Path, nargs="?", help="the atlas folder (default data/atlas/demo, or under $GALEXPLORE_DATA)")
    p.add_argument("--port", type=int, default=5006, help="the port (default 5006)")
    p.add_argument("--address", default="127.0.0.1", help="the address to listen on (default 127.0.0.1)")
    p.add_argument("--allow-websocket-origin", action="append", default=[], metavar="HOST[:PORT]",
                   help="a host allowed to open the app's websocket (repeatable), e.g. myserver:5006")
    p.add_argument("--show", action="store_true", help="open a browser tab")
    p.set_defaults(run=_serve)

    p = verbs.add_parser("inspect", help="summarise a survey or an atlas: size, bands, columns, labels, ranges",
                         description="Summarise a survey file or folder, or an atlas folder (one with "
                         "manifest.json, which is validated first).")
    p.add_argument("path", type=Path, help="a survey (.h5, .fits, or an image folder with catalog.csv) or an atlas")
    p.add_argument("--config", type=Path, help="read the survey with this config's survey keys")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=_inspect)

    p = verbs.add_parser("report", help="write a self-contained HTML report on an atlas",
                         description="Write report.html (figures embedded, and as PNG files beside it) on "
                         "an atlas: maps, photo-z, whether trust marks bad predictions, the most anomalous "
                         "galaxies, held-out probe metrics and build timings.")
    p.add_argument("atlas", type=Path, help="the atlas folder")
    p.add_argument("--out", type=Path, help="the report folder (default <atlas>/report)")
    p.set_defaults(run=_report)

    p = verbs.add_parser("montage", help="draw a grid of cutouts as colour composites",
                         description="Draw a grid of cutouts (make_lupton_rgb) with z and type.")
    p.add_argument("path", type=Path, help="a survey")
    p.add_argument("--out", type=Path, required=True, help="the PNG to write")
    p.add_argument("--config", type=Path, help="read the survey with this config's survey keys")
    p.add_argument("--n", type=int, default=36, help="number of cutouts (default 36)")
    p.add_argument("--columns", type=int, default=6, help="tiles per row (default 6)")
    p.add_argument("--seed", type=int, default=0, help="which cutouts are drawn (default 0)")
    p.set_defaults(run=_montage)
    return parser


def _config_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", type=Path, help="a TOML config, e.g. pipelines/demo.toml")


def _device_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available)")


def _check_seed(seed: int) -> None:
    from galexplore.config import MAX_SEED
    from galexplore.errors import GalexploreError

    if not 0 <= seed <= MAX_SEED:
        raise GalexploreError(f"--seed {seed}: expected an integer from 0 to {MAX_SEED} (numpy takes 32-bit seeds)")


_last_status = [0.0]


def _status(line: str, final: bool = False) -> None:
    """A progress line: redrawn in place on a terminal, else printed at most every 10 s."""
    if sys.stderr.isatty():
        print(f"\r\033[K{line}", end="\n" if final else "", file=sys.stderr, flush=True)
    elif final or time.monotonic() - _last_status[0] >= 10:
        print(line, file=sys.stderr, flush=True)
        _last_status[0] = time.monotonic()


def _open(path: Path, config_path: Path | None):
    from galexplore.survey import open_path, open_survey

    if config_path is None:
        return open_path(path)
    from galexplore.config import load_config

    return open_survey(load_config(config_path), path)


def _simulate(args: argparse.Namespace) -> int:
    from galexplore.config import load_config
    from galexplore.errors import GalexploreError
    from galexplore.simulate import simulate_survey

    from galexplore.config import MAX_SIMULATED

    cfg = load_config(args.config)
    for flag, most, why in (("n", MAX_SIMULATED, "each galaxy is a 5-band cutout on disk: 10^8 of 64x64 are 8 TB"),
                            ("workers", 256, "one process each")):
        value = getattr(args, flag)
        if value is not None and not 1 <= value <= most:
            raise GalexploreError(f"--{flag} {value}: expected a positive integer <= {most:,} ({why})")
    n = args.n or cfg.simulate.n
    start = time.perf_counter()

    def progress(done: int, total: int) -> None:
        _status(f"simulated {done:,}/{total:,} galaxies", final=done == total)

    out = simulate_survey(cfg, args.out, n=args.n, workers=args.workers, progress=progress)
    seconds = time.perf_counter() - start
    print(f"wrote {out}: {n:,} galaxies in {seconds:.1f} s ({n / seconds:.0f} galaxies/s)")
    return 0


def _train(args: argparse.Namespace) -> int:
    import json
    import os

    from galexplore.config import load_config
    from galexplore.training.launch import distributed_from_environment, select_device
    from galexplore.training.trainer import train

    cfg = load_config(args.config)
    run = args.out or run_folder(cfg.name)
    dist = distributed_from_environment(os.environ)
    device = select_device(args.device, os.environ)

    def show(record: dict) -> None:
        if "monitor" in record:
            _status(f"step {record['step']}: {monitor_line(record['monitor'])}", final=True)
        else:
            _status(
                f"step {record['step']} epoch {record['epoch']} loss {record['loss']:.4f} "
                f"lr {record['lr']:.4g} {record['images_per_s']:.0f} images/s"
            )

    result = train(cfg, run, device=device, dist=dist, resume=not args.restart,
                   max_steps=args.max_steps, log=show if dist.is_main else None)
    if dist.is_main:
        done = f"encoder {result.encoder}" if result.encoder else f"stopped at step {result.step}"
        print(f"{run}: step {result.step}/{result.total_steps}, loss {result.last_loss:.4f}, {done}")
    return 0


def _probe(args: argparse.Namespace) -> int:
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


def _ablation(args: argparse.Namespace) -> int:
    import dataclasses
    import os

    from galexplore.errors import GalexploreError

    from galexplore.evaluate.ablation import format_table, run_ablation
    from galexplore.config import load_config
    from galexplore.training.launch import select_device

    cfg = load_config(args.config)
    if args.epochs is not None:
        if args.epochs < 1:
            raise GalexploreError(f"--epochs {args.epochs}: expected a positive integer")
        if args.reference_run is not None:
            raise GalexploreError("--epochs trains every variant anew; it cannot reuse --reference-run")
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=args.epochs))
    out = args.out or ablation_folder(cfg.name)
    results = run_ablation(cfg, out, only=args.variants, reference_run=args.reference_run,
                           device=select_device(args.device, os.environ), log=lambda line: _status(line, final=True))
    print(format_table(results))
    print(f"wrote {out / 'ablation.json'}")
    if args.atlas is not None:
        from galexplore.atlas.files import AtlasWriter, open_atlas

        AtlasWriter(args.atlas, name=open_atlas(args.atlas, require=()).name).write_json("ablation.json", results)
        print(f"recorded in {args.atlas}")
    return 0


#: how long a session whose page was served may wait for its browser to connect (ms). Bokeh's 15 s
#: default discards the sessions of pages that a busy browser or server opens slowly; the websocket
#: then makes a new session that the page was not rendered from (and whose styles come from a CDN).
UNUSED_SESSION_LIFETIME_MS = 120_000


def serve_command(atlas: Path, port: int = 5006, address: str = "127.0.0.1", origins: list[str] | None = None,
                  show: bool = False) -> list[str]:
    """The `panel serve app/` command line that serves `atlas` (for `galexplore serve` and the tests)."""
    from galexplore.errors import GalexploreError

    app = Path(__file__).resolve().parent / "explorer" / "app"  # the served app's folder, in the package
    if not (atlas / "manifest.json").exists():
        raise GalexploreError(f"{atlas}: not an atlas (no manifest.json); build one with `galexplore build CONFIG --out {atlas}`")
    command = [sys.executable, "-m", "panel", "serve", str(app), "--port", str(port), "--address", address,
               "--num-procs", "1", "--setup", str(app / "setup.py"),
               "--unused-session-lifetime", str(UNUSED_SESSION_LIFETIME_MS)]
    for origin in origins or [f"{host}:{port}" for host in ("localhost", "127.0.0.1")]:
        command += ["--allow-websocket-origin", origin]
    if show:
        command.append("--show")
    return command + ["--args", "--atlas", str(atlas)]


def _serve(args: argparse.Namespace) -> int:
    import os

    from galexplore.errors import GalexploreError

    if not 1 <= args.port <= 65535:
        raise GalexploreError(f"--port {args.port}: expected a TCP port number from 1 to 65535")
    atlas = (args.atlas or atlas_folder()).resolve()
    command = serve_command(atlas, args.port, args.address, args.allow_websocket_origin, args.show)
    print(f"serving {atlas} at http://{args.address}:{args.port}/app", flush=True)
    os.execv(sys.executable, command)
    return 0  # not reached


def _build(args: argparse.Namespace) -> int:
    import os

    from galexplore.pipeline.build import build
    from galexplore.config import load_config
    from galexplore.training.launch import distributed_from_environment, select_device

    cfg = load_config(args.config)
    out = args.out or atlas_folder(cfg.name)
    dist = distributed_from_environment(os.environ)
    device = select_device(args.device, os.environ)
    bars = _ProgressBars()
    try:
        result = build(cfg, out, run=args.run_folder, embeddings=args.embeddings, catalog=args.catalog,
                       device=device, dist=dist, progress=bars if dist.is_main else None)
    finally:
        bars.close()
    if result is None:
        return 0
    width = max(len(r.name) for r in result.stages)
    print(f"atlas {result.atlas}: {result.n_objects:,} galaxies")
    for r in result.stages:
        took = f"{r.seconds:8.1f} s" if r.status == "ran" else f"{'':>10}"
        peak = f"{r.peak_mb / 1024:5.1f} GB" if r.peak_mb is not None else f"{'':>8}"
        print(f"  {r.name:<{width}}  {r.status:<10} {took}  {peak}  {r.detail}")
    total = sum(r.seconds for r in result.stages)
    print(f"  {'total':<{width}}  {'':<10} {total:8.1f} s")
    print(f"serve it: galexplore serve {result.atlas}")
    return 0


class _ProgressBars:
    """One progress bar per stage on a terminal (tqdm); a line every 10 s in a log file."""

    def __init__(self) -> None:
        self.bar = None

    def __call__(self, stage: str, total: int):
        from tqdm import tqdm

        self.close()
        self.bar = tqdm(total=total or None, desc=f"{stage:<9}", unit="step" if stage == "train" else "galaxy",
                        unit_scale=True, file=sys.stderr, dynamic_ncols=True, mininterval=0.5 if sys.stderr.isatty() else 10)
        return self.bar.update

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


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


def _evaluate(args: argparse.Namespace) -> int:
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


def monitor_line(monitor: dict) -> str:
    """One line of a training monitor record: each label's headline kNN figure, then the health.

    >>> monitor_line({"z_spec": {"sigma_mad": 0.031, "n": 900}, "gz1_type": {"balanced_accuracy": 0.44},
    ...               "health": {"random_cosine": {"mean": 0.02}, "effective_rank": 11.9, "alignment": 0.61,
    ...                          "flags": []}})
    'kNN z_spec sigma_mad 0.0310, gz1_type balanced_accuracy 0.440; random cosine 0.020, effective rank 11.9, alignment 0.610'
    """
    parts = []
    for column, scores in monitor.items():
        metric = next((m for m in ("balanced_accuracy", "sigma_mad", "auc", "accuracy") if m in scores), None)
        if column != "health" and metric:
            parts.append(f"{column} {metric} {scores[metric]:.{4 if metric == 'sigma_mad' else 3}f}")
    line = "kNN " + ", ".join(parts) if parts else "kNN: no labels"
    health = monitor.get("health")
    if health:
        line += (f"; random cosine {health['random_cosine']['mean']:.3f}, effective rank {health['effective_rank']:.1f}"
                 + (f", alignment {health['alignment']:.3f}" if "alignment" in health else ""))
        line += "".join(f"; {flag}" for flag in health.get("flags", []))
    return line


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


def _invariance(args: argparse.Namespace) -> int:
    from galexplore.evaluate.invariance import invariance

    def render(result: dict) -> None:
        print(f"  {'augmentation':<14}{'same galaxy':>13}{'different':>11}")
        for name, sims in result.items():
            print(f"  {name:<14}{sims['same']:>13.3f}{sims['different']:>11.3f}")

    return _report_on_encoder(args, invariance, render)


def _inspect(args: argparse.Namespace) -> int:
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


def _report(args: argparse.Namespace) -> int:
    from galexplore.atlas.files import CATALOG, open_atlas
    from galexplore.io import make_folder
    from galexplore.report.page import write_report

    atlas = open_atlas(args.atlas, require=(CATALOG,))
    out = make_folder(args.out or args.atlas / "report")
    start = time.perf_counter()
    path = write_report(atlas, out)
    print(f"wrote {path} in {time.perf_counter() - start:.1f} s")
    return 0


def _montage(args: argparse.Namespace) -> int:
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


if __name__ == "__main__":
    sys.exit(main())
