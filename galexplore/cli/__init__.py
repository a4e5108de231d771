"""The `galexplore` command line: one entry point, one verb per pipeline step.

Here: `main` and the verbs with their flags. What each verb does is in `runs` (simulate, train,
build, ablation), `reading` (evaluate, invariance, probe, inspect, report, montage) and `serving`
(serve); their progress bars in `progress`. Only argparse is imported at module level, so
`galexplore --help` answers at once; each verb imports what it needs. A user's mistake
(`GalexploreError`) is printed as one line and exits 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from galexplore.cli import reading, runs, serving
from galexplore.cli.runs import monitor_line
from galexplore.cli.serving import UNUSED_SESSION_LIFETIME_MS, serve_command

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
    p.set_defaults(run=runs.do_simulate)

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
    p.set_defaults(run=runs.do_train)

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
        p.set_defaults(run=reading.do_evaluate if verb == "evaluate" else reading.do_invariance)

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
    p.set_defaults(run=runs.do_build)

    p = verbs.add_parser("probe", help="linear probes of an atlas's representations, with a label sweep",
                         description="Fit the linear probes (180-bin photo-z, morphology vote fractions) "
                         "on a seeded 70%% of the labelled galaxies and score them on the other 30%%, "
                         "also with only the first N training labels for each --labels count; the result "
                         "is saved in the atlas as probe_sweep.json.")
    p.add_argument("atlas", type=Path, help="an atlas folder")
    p.add_argument("--labels", default="100,300,1000,3000", help="label counts of the sweep (default 100,300,1000,3000)")
    p.add_argument("--seed", type=int, default=0, help="the split and the subsets (default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=reading.do_probe)

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
    p.set_defaults(run=runs.do_ablation)

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
    p.add_argument("--overlay", action="append", default=[], metavar="FILE[:NAME]",
                   help="a catalogue to overlay (CSV, FITS, VOTable, Parquet; RA/Dec or object_id), repeatable")
    p.set_defaults(run=serving.do_serve)

    p = verbs.add_parser("inspect", help="summarise a survey or an atlas: size, bands, columns, labels, ranges",
                         description="Summarise a survey file or folder, or an atlas folder (one with "
                         "manifest.json, which is validated first).")
    p.add_argument("path", type=Path, help="a survey (.h5, .fits, or an image folder with catalog.csv) or an atlas")
    p.add_argument("--config", type=Path, help="read the survey with this config's survey keys")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=reading.do_inspect)

    p = verbs.add_parser("report", help="write a self-contained HTML report on an atlas",
                         description="Write report.html (figures embedded, and as PNG files beside it) on "
                         "an atlas: maps, photo-z, whether trust marks bad predictions, the most anomalous "
                         "galaxies, held-out probe metrics and build timings.")
    p.add_argument("atlas", type=Path, help="the atlas folder")
    p.add_argument("--out", type=Path, help="the report folder (default <atlas>/report)")
    p.set_defaults(run=reading.do_report)

    p = verbs.add_parser("montage", help="draw a grid of cutouts as colour composites",
                         description="Draw a grid of cutouts (make_lupton_rgb) with z and type.")
    p.add_argument("path", type=Path, help="a survey")
    p.add_argument("--out", type=Path, required=True, help="the PNG to write")
    p.add_argument("--config", type=Path, help="read the survey with this config's survey keys")
    p.add_argument("--n", type=int, default=36, help="number of cutouts (default 36)")
    p.add_argument("--columns", type=int, default=6, help="tiles per row (default 6)")
    p.add_argument("--seed", type=int, default=0, help="which cutouts are drawn (default 0)")
    p.set_defaults(run=reading.do_montage)
    return parser


def _config_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", type=Path, help="a TOML config, e.g. pipelines/demo.toml")


def _device_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available)")


__all__ = ["EXIT_USER_ERROR", "UNUSED_SESSION_LIFETIME_MS", "main", "monitor_line", "serve_command"]
