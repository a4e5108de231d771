"""The verbs that make things and take a while: `simulate`, `train`, `build`, `ablation`.

Each shows its progress on stderr (`galexplore.cli.progress`) and prints what it made on stdout.
"""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING

from galexplore.atlas.locations import ablation_folder, atlas_folder, run_folder
from galexplore.cli.progress import Bars

if TYPE_CHECKING:
    import torch

    from galexplore.config import Config
    from galexplore.training.distributed import Distributed


def do_simulate(args: argparse.Namespace) -> int:
    from galexplore.config import MAX_SIMULATED, load_config
    from galexplore.errors import GalexploreError
    from galexplore.simulate import simulate_survey

    cfg = load_config(args.config)
    for flag, most, why in (("n", MAX_SIMULATED, "each galaxy is a 5-band cutout on disk: 10^8 of 64x64 are 8 TB"),
                            ("workers", 256, "one process each")):
        value = getattr(args, flag)
        if value is not None and not 1 <= value <= most:
            raise GalexploreError(f"--{flag} {value}: expected a positive integer <= {most:,} ({why})")
    n = args.n or cfg.simulate.n
    start = time.perf_counter()
    with Bars() as bars:
        out = simulate_survey(cfg, args.out, n=args.n, workers=args.workers, progress=bars.counter("simulated", "galaxy"))
    seconds = time.perf_counter() - start
    print(f"wrote {out}: {n:,} galaxies in {seconds:.1f} s ({n / seconds:.0f} galaxies/s)")
    return 0


def _launch(args: argparse.Namespace) -> tuple[Config, Distributed, torch.device]:
    """The config, this process's place in a torchrun job (one process without torchrun) and its device."""
    import os

    from galexplore.config import load_config
    from galexplore.training.launch import distributed_from_environment, select_device

    cfg = load_config(args.config)
    return cfg, distributed_from_environment(os.environ), select_device(args.device, os.environ)


def do_train(args: argparse.Namespace) -> int:
    from galexplore.training.trainer import train

    cfg, dist, device = _launch(args)
    run = args.out or run_folder(cfg.name)
    with Bars() as bars:
        steps = bars.counter("train", "step")

        def show(record: dict) -> None:
            if "monitor" in record:
                bars.line(f"step {record['step']}: {monitor_line(record['monitor'])}")
            else:
                steps(record["step"], note=f"epoch {record['epoch']} loss {record['loss']:.4f} "
                                           f"lr {record['lr']:.4g} {record['images_per_s']:.0f} images/s")

        result = train(cfg, run, device=device, dist=dist, resume=not args.restart,
                       max_steps=args.max_steps, log=show if dist.is_main else None)
    if dist.is_main:
        done = f"encoder {result.encoder}" if result.encoder else f"stopped at step {result.step}"
        print(f"{run}: step {result.step}/{result.total_steps}, loss {result.last_loss:.4f}, {done}")
    return 0


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


def do_build(args: argparse.Namespace) -> int:
    from galexplore.pipeline.build import build

    cfg, dist, device = _launch(args)
    out = args.out or atlas_folder(cfg.name)
    with Bars() as bars:
        result = build(cfg, out, run=args.run_folder, embeddings=args.embeddings, catalog=args.catalog,
                       device=device, dist=dist, progress=bars.stage if dist.is_main else None)
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


def do_ablation(args: argparse.Namespace) -> int:
    import dataclasses
    import os

    from galexplore.config import load_config
    from galexplore.errors import GalexploreError
    from galexplore.evaluate.ablation import format_table, run_ablation
    from galexplore.training.launch import select_device

    cfg = load_config(args.config)
    if args.epochs is not None:
        if args.epochs < 1:
            raise GalexploreError(f"--epochs {args.epochs}: expected a positive integer")
        if args.reference_run is not None:
            raise GalexploreError("--epochs trains every variant anew; it cannot reuse --reference-run")
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=args.epochs))
    out = args.out or ablation_folder(cfg.name)
    with Bars() as bars:
        results = run_ablation(cfg, out, only=args.variants, reference_run=args.reference_run,
                               device=select_device(args.device, os.environ), log=bars.line)
    print(format_table(results))
    print(f"wrote {out / 'ablation.json'}")
    if args.atlas is not None:
        from galexplore.atlas.files import AtlasWriter, open_atlas

        AtlasWriter(args.atlas, name=open_atlas(args.atlas, require=()).name).write_json("ablation.json", results)
        print(f"recorded in {args.atlas}")
    return 0
