"""Fault injection: `galexplore build` killed with SIGKILL inside every stage, rerun, compared.

    .venv/bin/python bench/fault_injection.py [--kills 27] [--rounds 3] [--seed 0] [--work DIR]

Builds a reference atlas of a tiny simulated survey (64 galaxies, 8 training steps) without
interruption, then in each round builds the same atlas from nothing in the same folder (the
reference moved aside, so the paths recorded match), killing the build again and again. Each kill is a SIGKILL sent by this process inside its target stage:
once per stage as the stage ends (its outputs written, the manifest not yet told), the other
times at a seeded random moment, a uniform fraction of that stage's seconds in the reference
manifest counted from the moment the stage begins (killed as it ends if it ends sooner). The next
run resumes (and may be killed in turn); a round ends with a run that completes. The kills are
spread evenly over the stages (every stage of galexplore.pipeline.build.STAGES), dealt at random into the
rounds, and made in pipeline order within one.

The builds run as `galexplore build` (the CLI's own `main`) in a child process that also reports,
through a pipe, when each stage begins and ends and which unit of resumable work it computes (a
simulated chunk, an embedded chunk, a training step): the kill moments and the checks need them.
Checked:

- after every kill, the manifest lists no file that is missing, truncated or swapped
  (`open_atlas` validates every file it lists);
- in every run, nothing completed before it is computed again: no stage the manifest records, no
  simulated or embedded chunk on disk, no training step up to the latest checkpoint;
- after each completing run: it exited 0 and its summary says every stage completed before it was
  skipped; every array and the catalog bitwise equal the reference's, the side files (encoder,
  PCA) too, each stage's record (fingerprint, steps, columns, ...) equals the reference's, and the
  training log (every step's loss, every monitor evaluation) equals the reference's; no temporary
  file is left in the atlas, run or survey folders, and the atlas holds only what its manifest
  lists.

Prints one JSON object (kills per stage, reruns completed, comparisons made, every difference
found) and exits 1 when any check failed. About 3 minutes on 2 cores with the defaults.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from galexplore.pipeline.build import STAGES

ROOT = Path(__file__).resolve().parents[1]
SURVEY = "survey.h5"  # relative to the config file, so every folder's fingerprints are the same
ATLAS, RUN = "atlas", "atlas.run"
N, CHUNK_ROWS = 64, 16  # galaxies, simulated and embedded in chunks of CHUNK_ROWS
N_CHUNKS = N // CHUNK_ROWS
# The tiny preset, with more labels (so the probes have something to fit) and 2 epochs of 4
# steps with a checkpoint every 2 (so a kill in training lands between checkpoints).
OVERRIDES = {
    "simulate": {"n": N, "chunk_size": CHUNK_ROWS, "workers": 1, "spec_mag_limit": 19.0, "spec_completeness": 1.0,
                 "morphology_mag_limit": 19.0},
    "train": {"epochs": 2, "checkpoint_every": 2, "loader_workers": 0},
    "embed": {"chunk_rows": CHUNK_ROWS, "pca_dim": 8},
    "neighbors": {"k": 10},
    "project": {"n_neighbors": 8},
    "trust": {"k": 5},
    "anomaly": {"k": 5},
}
TIME_KEYS = ("seconds", "peak_mb", "code_version", "created", "updated", "images_per_s")  # differ by nature
RUN_LIMIT_S = 600.0


# -- the child: `galexplore build`, reporting its stages and units of work ------------------------


def child(events_fd: int, target: str, cli_args: list[str]) -> int:
    """Run the CLI with `cli_args`, writing one line per event to `events_fd`: ``start S``,
    ``end S`` around each stage's work, ``unit S I`` before computing unit I of a resumable stage.
    At the end of stage `target` it waits to be killed: the parent kills it then, if not before."""
    import galexplore.pipeline.stages as stages
    import galexplore.training.embed
    import galexplore.simulate
    import galexplore.simulate.writer as simulate_writer
    import galexplore.training.trainer as trainer
    from galexplore.cli import main as cli_main

    def emit(*words: object) -> None:
        os.write(events_fd, (" ".join(map(str, words)) + "\n").encode())

    running = [""]  # the stage whose work runs now

    def stage(name: str, work: Any) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            emit("start", name)
            running[0] = name
            result = work(*args, **kwargs)
            running[0] = ""
            emit("end", name)
            if name == target:
                time.sleep(RUN_LIMIT_S)
            return result
        return run

    def unit(name: str, work: Any, index: Any) -> Any:
        """A unit of stage `name`'s own work: the report card's untrained network also goes
        through `represent`, and is not the embedding's."""
        def run(*args: Any, **kwargs: Any) -> Any:
            if running[0] == name:
                emit("unit", name, index(*args))
            return work(*args, **kwargs)
        return run

    for table in ("FROM_SURVEY", "FROM_EMBEDDINGS", "MAPS"):  # the simulation: through simulate_survey below
        setattr(stages, table, tuple(dataclasses.replace(s, run=stage(s.name, s.run)) for s in getattr(stages, table)))
    galexplore.simulate.simulate_survey = stage("simulate", galexplore.simulate.simulate_survey)
    simulate_writer._write_chunk = unit("simulate", simulate_writer._write_chunk, lambda config, partial, k, *_: k)
    trainer._step = unit("train", trainer._step, lambda *args: args[7])  # (model, ..., dist, step, device)
    galexplore.training.embed.represent = unit("embed", galexplore.training.embed.represent, lambda model, survey, rows, *_: int(rows[0]))
    return cli_main(cli_args)


# -- the parent: runs, kills and checks ------------------------------------------------------------


@dataclass
class Run:
    """One child process: its exit status, output, events, and where it was killed."""

    returncode: int
    stdout: str
    events: list[tuple[str, ...]]
    killed: str | None = None  # "timer": at the drawn moment; "end": as the target stage ended


@dataclass
class Tally:
    """What the suite did and found."""

    kills: Counter = field(default_factory=Counter)
    killed_at_end: Counter = field(default_factory=Counter)
    runs: int = 0
    reruns_completed: int = 0
    comparisons: int = 0
    differences: list[str] = field(default_factory=list)

    def check(self, ok: bool, what: str) -> None:
        self.comparisons += 1
        if not ok:
            self.differences.append(what)


def write_config(folder: Path) -> Path:
    """The tiny preset, made smaller and more labelled, in `folder` with its survey beside it."""
    from galexplore.config import config_from_dict, to_toml

    raw = tomllib.loads((ROOT / "pipelines" / "tiny.toml").read_text(encoding="utf-8"))
    raw["survey"]["path"] = SURVEY
    for table, values in OVERRIDES.items():
        raw[table] = {**raw.get(table, {}), **values}
    folder.mkdir(parents=True)
    config = folder / "tiny.toml"
    config.write_text(to_toml(config_from_dict(raw, source="fault injection")), encoding="utf-8")
    return config


def build_args(folder: Path) -> list[str]:
    return ["build", str(folder / "tiny.toml"), "--out", str(folder / ATLAS), "--run", str(folder / RUN),
            "--device", "cpu"]


def environment() -> dict[str, str]:
    """One thread each (bitwise-reproducible sums, and the machine left to others), no GPU."""
    threads = dict.fromkeys(("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"), "1")
    return {**os.environ, **threads, "CUDA_VISIBLE_DEVICES": ""}


def launch(folder: Path, target: str | None = None, delay: float = 0.0) -> Run:
    """Build in `folder`; with a `target`, SIGKILL the build `delay` seconds after that stage
    begins, or as it ends if sooner. Returns once the process is gone."""
    read, write = os.pipe()
    logs = folder / "logs"
    logs.mkdir(exist_ok=True)
    number = len(list(logs.glob("*.out")))
    with open(logs / f"{number:02d}.out", "w+") as out, open(logs / f"{number:02d}.err", "w") as err:
        process = subprocess.Popen(
            [sys.executable, __file__, "--child", str(write), target or "-", *build_args(folder)],
            pass_fds=(write,), stdout=out, stderr=err, env=environment(), cwd=folder)
        os.close(write)
        events, killed = _follow(process, read, target, delay)
        process.wait()
        out.seek(0)
        stdout = out.read()
    return Run(process.returncode, stdout, events, killed)


def _follow(process: subprocess.Popen, read: int, target: str | None, delay: float) -> tuple[list, str | None]:
    """Read the child's events until it exits, killing it as `launch` says."""
    events: list[tuple[str, ...]] = []
    buffer, kill_at, killed = b"", None, None
    deadline = time.monotonic() + RUN_LIMIT_S
    with os.fdopen(read, "rb", buffering=0) as pipe:
        while True:
            until = deadline if kill_at is None else min(kill_at, deadline)
            if not select.select([pipe], [], [], max(0.0, until - time.monotonic()))[0]:
                killed = "timer" if kill_at is not None and time.monotonic() < deadline else "limit"
            else:
                data = pipe.read(65536)
                if not data:
                    break  # the child exited
                *lines, buffer = (buffer + data).split(b"\n")
                for line in lines:
                    events.append(tuple(line.decode().split()))
                    if events[-1] == ("start", target):
                        kill_at = time.monotonic() + delay
                    elif events[-1] == ("end", target):
                        killed = "end"
            if killed:
                process.send_signal(signal.SIGKILL)
                events += [tuple(line.decode().split()) for line in (buffer + pipe.read()).split(b"\n") if line]
                return events, killed
    return events, None


def completed(folder: Path) -> dict[str, Any]:
    """What is done and on disk in `folder`: the stages, and the units of the resumable ones (a
    chunk in a work folder, or all of them once the survey or the embeddings file is there; the
    training steps up to the latest checkpoint)."""
    manifest = folder / ATLAS / "manifest.json"
    recorded = json.loads(manifest.read_text()) if manifest.exists() else {"stages": {}, "files": {}}
    stages = set(recorded["stages"])
    partial = folder / (SURVEY + ".partial")
    if (folder / SURVEY).exists() and not partial.exists():
        stages.add("simulate")
    simulated = {int(p.stem.split("_")[1]) for p in partial.glob("chunk_*.npz")}
    embedded = {int(p.stem.split("-")[1]) * CHUNK_ROWS for p in (folder / ATLAS / ".work" / "embed").glob("chunk-*.npy")}
    steps = [int(p.stem.split("-")[1]) for p in (folder / RUN / "checkpoints").glob("step-*.pt")]
    return {
        "stages": stages,
        "simulate": set(range(N_CHUNKS)) if (folder / SURVEY).exists() else simulated,
        "embed": set(range(0, N, CHUNK_ROWS)) if "embeddings.npy" in recorded["files"] else embedded,
        "train": set(range(max(steps, default=0))),
    }


def check_no_work_redone(run: Run, before: dict[str, Any], tally: Tally, where: str) -> None:
    """No stage recorded, chunk on disk or step checkpointed before `run` is computed in it."""
    started = {e[1] for e in run.events if e[0] == "start"}
    tally.check(not started & before["stages"], f"{where}: redid completed stages {sorted(started & before['stages'])}")
    for name in ("simulate", "train", "embed"):
        redone = {int(e[2]) for e in run.events if e[:2] == ("unit", name)} & before[name]
        tally.check(not redone, f"{where}: recomputed {name} units {sorted(redone)} that were on disk")


def check_manifest(folder: Path, tally: Tally, where: str) -> None:
    """The manifest, when there is one, lists only files that are there and whole."""
    from galexplore.atlas.files import open_atlas
    from galexplore.errors import GalexploreError

    if not (folder / ATLAS / "manifest.json").exists():
        return
    try:
        open_atlas(folder / ATLAS, require=())
        problem = None
    except GalexploreError as exc:
        problem = str(exc)
    tally.check(problem is None, f"{where}: {problem}")


def check_summary(run: Run, before: dict[str, Any], tally: Tally, where: str) -> None:
    """The completing run exited 0 and skipped every stage that was complete before it."""
    tally.check(run.returncode == 0, f"{where}: exited {run.returncode}")
    status = dict(re.findall(r"^  (\w+)\s+(ran|skipped|not needed)\b", run.stdout, re.MULTILINE))
    for stage in sorted(before["stages"]):
        tally.check(status.get(stage) == "skipped", f"{where}: {stage} was complete, the summary says {status.get(stage)}")


def check_same_atlas(folder: Path, reference: Path, tally: Tally, where: str) -> None:
    """Every file of the atlas equals the reference's (bitwise), and so do the manifests, but for
    times and the summary of what the last run did."""
    import pandas as pd

    from galexplore.atlas.files import open_atlas

    ours, theirs = open_atlas(folder / ATLAS, require=()), open_atlas(reference / ATLAS, require=())
    tally.check(sorted(ours.files) == sorted(theirs.files), f"{where}: files {sorted(ours.files)}, reference {sorted(theirs.files)}")
    for name in sorted(set(ours.files) & set(theirs.files)):
        if name.endswith(".npy"):
            same = np.array_equal(ours.array(name), theirs.array(name))
        elif name.endswith(".npz"):
            a, b = ours.npz(name), theirs.npz(name)
            same = a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
        elif name.endswith(".json"):
            same = ours.json(name) == theirs.json(name)
        else:  # the catalog: values, dtypes and column order
            try:
                pd.testing.assert_frame_equal(ours.catalog, theirs.catalog, check_exact=True)
                same = True
            except AssertionError:
                same = False
        tally.check(same, f"{where}: {name} differs from the reference's")
    a, b = ({k: v for k, v in _timeless(atlas.manifest).items() if k != "summary"} for atlas in (ours, theirs))
    for key in sorted(set(a) - {"stages"}):
        tally.check(a[key] == b.get(key), f"{where}: manifest {key!r}: {a[key]} != reference {b.get(key)}")
    for stage in sorted(set(a["stages"]) | set(b["stages"])):
        mine, ref = a["stages"].get(stage), b["stages"].get(stage)
        tally.check(mine == ref, f"{where}: stage record {stage}: {mine} != reference {ref}")
    ours_log, their_log = (_timeless(_train_log(f / RUN)) for f in (folder, reference))
    tally.check(ours_log == their_log, f"{where}: train_log.jsonl differs: {ours_log} != reference {their_log}")


def check_leftovers(folder: Path, tally: Tally, where: str) -> None:
    """No temporary file anywhere in the round's folder; the atlas holds only what it lists."""
    partial = sorted(str(p.relative_to(folder)) for p in folder.rglob("*.partial"))
    tally.check(not partial, f"{where}: temporary files left: {partial}")
    manifest = json.loads((folder / ATLAS / "manifest.json").read_text())
    extra = sorted({p.name for p in (folder / ATLAS).iterdir()} - set(manifest["files"]) - {"manifest.json"})
    tally.check(not extra, f"{where}: the atlas holds files its manifest does not list: {extra}")


def _train_log(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]


def _timeless(value: Any) -> Any:
    """`value` without the keys that differ between runs by nature (times, memory, versions)."""
    if isinstance(value, dict):
        return {k: _timeless(v) for k, v in value.items() if k not in TIME_KEYS}
    if isinstance(value, list):
        return [_timeless(v) for v in value]
    return value


def plan(kills: int, rounds: int, seconds: dict[str, float], rng: np.random.Generator) -> list[list[tuple[str, float]]]:
    """`kills` (stage, seconds into it) spread evenly over STAGES and dealt at random into
    `rounds` rounds, each in pipeline order (a stage may be killed twice running: a resumed stage
    killed again). Each stage's first kill comes as it ends (infinitely late): the moment its
    outputs are written and the manifest not yet told; the others at a uniform fraction of its
    seconds. At most one simulate kill per round: a simulation killed as it ends is complete (its
    survey is its record), so a second could not land."""
    dealt: list[list[tuple[str, float]]] = [[] for _ in range(rounds)]
    for j, stage in enumerate(STAGES):
        count = len(range(j, kills, len(STAGES)))
        moments = [np.inf] + [float(rng.uniform(0, seconds[stage])) for _ in range(count - 1)]
        where = rng.permutation(rounds)[:count] if stage == "simulate" else rng.integers(0, rounds, count)
        for r, moment in zip(where, moments):
            dealt[r].append((stage, moment))
    return dealt


def check_plan(kills: int, rounds: int) -> str | None:
    """Why `kills` over `rounds` cannot be planned, or None."""
    if rounds < 1 or kills < 1:
        return "expected at least one round and one kill"
    if -(-kills // len(STAGES)) > rounds:
        return f"{kills} kills make {-(-kills // len(STAGES))} in simulate; expected at most one per round"
    return None


def suite(kills: int, rounds: int, seed: int, work: Path) -> dict[str, Any]:
    started = time.monotonic()
    tally = Tally()
    rng = np.random.default_rng(seed)
    # Every build runs in the same folder, the reference moved aside once built: the paths the
    # atlas and the encoder record are the same, so whole files compare.
    folder, reference = work / "build", work / "reference"
    write_config(folder)
    whole = launch(folder)
    tally.runs += 1
    if whole.returncode != 0:
        raise SystemExit(f"the uninterrupted reference build failed: see {folder / 'logs'}")
    folder.rename(reference)
    stages = json.loads((reference / ATLAS / "manifest.json").read_text())["summary"]["stages"]
    moments = []
    for r, targets in enumerate(plan(kills, rounds, {s: stages[s]["seconds"] for s in STAGES}, rng)):
        write_config(folder)
        for k, (target, delay) in enumerate(targets):
            where = f"round {r}, kill {k} ({target})"
            before = completed(folder)
            run = launch(folder, target, delay)
            tally.runs += 1
            if run.killed not in ("timer", "end"):
                tally.check(False, f"{where}: not killed in {target} (exit {run.returncode}, {run.killed})")
                continue
            tally.kills[target] += 1
            tally.killed_at_end[target] += run.killed == "end"
            moments.append([r, target, "as it ended" if run.killed == "end" else f"{delay:.3f} s in"])
            check_no_work_redone(run, before, tally, where)
            check_manifest(folder, tally, where)
        where = f"round {r}, completing rerun"
        before = completed(folder)
        run = launch(folder)
        tally.runs += 1
        tally.reruns_completed += run.returncode == 0
        check_summary(run, before, tally, where)
        check_no_work_redone(run, before, tally, where)
        if run.returncode == 0:
            check_same_atlas(folder, reference, tally, where)
            check_leftovers(folder, tally, where)
        shutil.move(folder, work / f"round-{r}")
        shutil.rmtree(work / f"round-{r}" / RUN / "checkpoints")  # 135 MB each: keep the disk for others
    return {
        "kills": sum(tally.kills.values()),
        "kills_per_stage": {s: tally.kills[s] for s in STAGES},
        "killed_as_the_stage_ended": {s: tally.killed_at_end[s] for s in STAGES},
        "kill_moments": moments,  # [round, stage, when]
        "runs": tally.runs, "rounds": rounds, "reruns_completed": tally.reruns_completed,
        "comparisons": tally.comparisons, "differences": tally.differences,
        "seed": seed, "seconds": round(time.monotonic() - started, 1),
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        return child(int(argv[1]), argv[2], argv[3:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=27, help="kills in all, spread evenly over the stages")
    parser.add_argument("--rounds", type=int, default=3, help="builds from nothing, each ending in a completing run")
    parser.add_argument("--seed", type=int, default=0, help="draws the rounds and the kill moments")
    parser.add_argument("--work", type=Path, help="keep the folders here (default: a temporary folder, removed)")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)
    if check_plan(args.kills, args.rounds):
        parser.error(check_plan(args.kills, args.rounds))
    if args.work and args.work.exists() and any(args.work.iterdir()):
        parser.error(f"--work {args.work}: expected a new or empty folder")
    with tempfile.TemporaryDirectory(prefix="faults-") as tmp:
        result = suite(args.kills, args.rounds, args.seed, args.work or Path(tmp))
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 1 if result["differences"] or result["reruns_completed"] < args.rounds else 0


if __name__ == "__main__":
    sys.exit(main())
