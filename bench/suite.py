"""The benchmark suite (`make bench`): every figure against what a user would use instead.

    python -m bench.suite [--quick] [--only GROUP ...] [--set FIELD=VALUE ...] [--out DIR] [--work DIR]

Writes `<out>/<date>-<host>.json` (every row, the machine, the sizes, each group's time),
`<out>/<date>-<host>.md` (the table) and `<out>/latest.md` (a copy for the README), after
each group, so a run stopped early keeps what it measured. Inputs are made by the suite from
seeds (`bench.inputs`, `bench.scale_check.make_inputs`) and kept in --work for the next run.

Groups (`--only`), in the order they run: query, graph, augment, embed, umap, render, app, click,
overlay, demo. Their default sizes are the issue's (1,000,000 objects and more); `--quick` shrinks them all
(for tests: its figures mean nothing) and `--set umap_n=100000` changes one. A group that fails is
recorded with its error, the others still run, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PIPELINES = ROOT / "pipelines"


@dataclass(frozen=True)
class Sizes:
    """Every size and budget of the suite; the defaults are a full run's (see BUDGETS for its time)."""

    dim: int = 128  # D of the synthetic embeddings
    query_n: tuple[int, ...] = (100_000, 1_000_000)
    query_batch: tuple[int, ...] = (1, 100)
    query_k: int = 20
    query_repeat: int = 10  # timed rounds per candidate
    click_k: int = 12  # the app's default number of similar galaxies
    click_repeat: int = 1000
    graph_n: tuple[int, ...] = (100_000, 1_000_000)
    graph_k: int = 50
    graph_anchor_budget_s: float = 30.0  # FAISS's exact graph: beyond this, timed on a sample of rows
    augment_config: Path = PIPELINES / "sdss.toml"
    augment_batch: int = 256
    augment_repeat: int = 5
    embed_config: Path = PIPELINES / "demo.toml"
    embed_n: int = 2048
    embed_repeat: int = 3
    umap_n: int = 200_000
    umap_fit_fraction: float = 0.2  # ours fits on this share and transforms the rest (the build: 200k of 1M)
    umap_budget_s: float = 600.0  # each of the two fits is stopped past this
    render_n: tuple[int, ...] = (1_000_000, 10_000_000)
    render_pixels: int = 800
    render_repeat: int = 3
    render_budget_s: float = 300.0
    app_n: int = 1_000_000
    app_repeat: int = 5
    app_sessions: int = 10
    app_budget_s: float = 600.0  # app_latency.py, after the scale atlas is built
    overlay_n: int = 100_000  # rows of a user's catalogue matched against app_n galaxies
    overlay_repeat: int = 3
    demo_config: Path = PIPELINES / "demo.toml"
    demo_budget_s: float = 900.0

    @property
    def inputs_n(self) -> int:
        """Rows of synthetic embeddings to make: the largest N any group reads (each reads the first N)."""
        return max(*self.query_n, *self.graph_n, self.umap_n, self.app_n)


QUICK = Sizes(
    query_n=(2_000, 6_000), query_batch=(1, 10), query_repeat=3, click_repeat=50,
    graph_n=(2_000, 6_000), graph_anchor_budget_s=0.05,
    augment_batch=8, augment_repeat=1, embed_n=64, embed_repeat=1,
    umap_n=2_000, umap_budget_s=300, render_n=(20_000, 50_000), render_pixels=200, render_repeat=2,
    app_n=3_000, app_repeat=1, app_sessions=2, app_budget_s=300, overlay_n=500, overlay_repeat=1,
    demo_config=PIPELINES / "tiny.toml",
    demo_budget_s=300,
)

#: Seconds each group should take at the default sizes on 2 CPU cores (an estimate, not enforced
#: except where a size says so); a group past it is flagged in the table. The scale atlas (about
#: 8 minutes to build from nothing) is counted in "app", the inputs (about 40 s) in the first group.
BUDGETS = {"query": 120, "graph": 300, "augment": 30, "embed": 40, "umap": 420, "render": 60, "app": 600,
           "click": 30, "overlay": 60, "demo": 300}


#: groups that joined the suite after it first ran, with the day they joined: a run from before
#: that day is a full run without them
ADDED = {"overlay": "2026-12-08"}


def is_full_run(doc: dict[str, Any]) -> bool:
    """Whether a results document is a full run: not --quick, and every group the suite had on its day."""
    if doc.get("quick"):
        return False
    expected = {name for name in BUDGETS if str(doc.get("date", "")) >= ADDED.get(name, "")}
    return set(doc.get("groups", {})) == expected


@dataclass
class Context:
    """What the groups share: the sizes, the work folder and the inputs made once per run."""

    sizes: Sizes
    work: Path
    demo_atlas: Path
    quick: bool = False
    _scale: dict[str, Any] | None = field(default=None, repr=False)

    def embeddings_path(self) -> Path:
        """The seeded synthetic embeddings (inputs_n, dim), made on first use and kept in `work`."""
        from bench.scale_check import make_inputs

        path, _ = make_inputs(self.sizes.inputs_n, self.sizes.dim, self.work)
        width = np.load(path, mmap_mode="r").shape[1]
        if width != self.sizes.dim:
            raise RuntimeError(f"{path} holds D = {width} embeddings, the suite wants {self.sizes.dim}: "
                               f"delete it or give another --work")
        return path

    def embeddings(self, n: int) -> np.ndarray:
        """The first n rows (a random sample: rows are in no order) as a read-only memory map."""
        return np.load(self.embeddings_path(), mmap_mode="r")[:n]

    def scale_atlas(self) -> Path:
        return Path(self.scale_atlas_build()["atlas"])

    def scale_atlas_build(self) -> dict[str, Any]:
        """The atlas of app_n synthetic galaxies, built (or brought up to date) once per run."""
        from bench.scale_check import build_scale_atlas

        if self._scale is None:
            self._scale = build_scale_atlas(self.sizes.app_n, self.sizes.dim, self.work)
        return self._scale


def _groups() -> dict[str, Callable[[Context], list]]:
    from bench.build_rows import app_rows, demo_rows
    from bench.map_rows import render_rows, umap_rows
    from bench.model_rows import augment_rows, embed_rows
    from bench.overlay_rows import overlay_rows
    from bench.search_rows import click_rows, graph_rows, query_rows

    return {"query": query_rows, "click": click_rows, "graph": graph_rows, "augment": augment_rows,
            "embed": embed_rows, "umap": umap_rows, "render": render_rows, "app": app_rows, "overlay": overlay_rows,
            "demo": demo_rows}


def with_settings(sizes: Sizes, settings: Sequence[str]) -> Sizes:
    """`sizes` with FIELD=VALUE settings applied (tuples as comma-separated values).

    >>> with_settings(Sizes(), ["umap_n=1000", "render_n=10,20"]).render_n
    (10, 20)
    """
    fields = {f.name: f for f in dataclasses.fields(Sizes)}
    changes: dict[str, Any] = {}
    for setting in settings:
        name, _, text = setting.partition("=")
        if name not in fields or not text:
            raise SystemExit(f"--set {setting!r}: expected FIELD=VALUE with FIELD one of {', '.join(fields)}")
        kind = type(getattr(sizes, name))
        try:
            if kind is tuple:
                changes[name] = tuple(int(part) for part in text.split(","))
            else:
                changes[name] = kind(text)
        except ValueError:
            raise SystemExit(f"--set {setting!r}: {text!r} is not a {kind.__name__}") from None
    return dataclasses.replace(sizes, **changes)


def run(ctx: Context, groups: Sequence[str], out: Path, log: Callable[[str], None] = print) -> tuple[dict[str, Any], int]:
    """Run the `groups` in order, writing the results into `out` after each; (document, exit status)."""
    from bench.measure import format_value, machine
    from bench.results import document, write

    functions = _groups()
    start = time.perf_counter()
    info: dict[str, Any] = {
        "date": datetime.date.today().isoformat(),
        "started": datetime.datetime.now().isoformat(timespec="seconds"),
        "quick": ctx.quick, "machine": machine(), "seconds": 0.0,
        "sizes": {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(ctx.sizes).items()},
        "groups": {},
    }
    rows: list = []
    failed = 0
    for name in groups:
        log(f"[bench] {name} ...")
        began = time.perf_counter()
        try:
            new, error = functions[name](ctx), None
        except Exception:  # recorded in the results and the exit status; the other groups still run
            new, error = [], traceback.format_exc()
            failed += 1
            log(f"[bench] {name} failed:\n{error}")
        seconds = time.perf_counter() - began
        budget = BUDGETS[name]
        note = f"over its budget ({seconds:.0f} s)" if seconds > budget and not ctx.quick else ""
        info["groups"][name] = {"seconds": round(seconds, 1), "budget_s": budget, "rows": len(new),
                                "error": error, "note": note}
        for row in new:
            parts = [f"ours {format_value(row.ours, row.unit)}"]
            if row.ratio is not None:
                parts += [f"anchor {format_value(row.anchor, row.unit)}", f"ratio {row.ratio:.3g}x"]
            if row.goal is not None:
                parts.append(f"goal {row.goal.text(row.unit)} {'met' if row.met else 'NOT met'}")
            log(f"  {row.name}, N={row.n}: " + ", ".join(parts))
        rows += new
        info["seconds"] = round(time.perf_counter() - start, 1)
        doc = document(rows, info)
        json_path, md_path = write(doc, out)
    log(f"[bench] wrote {json_path} and {md_path} (and {out / 'latest.md'}) in {info['seconds']:.0f} s")
    return doc, 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    names = tuple(BUDGETS)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="every size shrunk to seconds (for tests)")
    parser.add_argument("--only", nargs="+", choices=names, metavar="GROUP", help=f"run these groups: {', '.join(names)}")
    parser.add_argument("--set", nargs="+", default=[], metavar="FIELD=VALUE", help="change a size (see bench.suite.Sizes)")
    parser.add_argument("--out", type=Path, help="results folder (default bench/results; data/bench-quick with --quick)")
    parser.add_argument("--work", type=Path, help="inputs and the scale atlas (default data/scale; data/bench-quick/work with --quick)")
    parser.add_argument("--demo-atlas", type=Path, help="the demo atlas (default data/atlas/demo; under --work with --quick)")
    args = parser.parse_args(argv)
    sizes = with_settings(QUICK if args.quick else Sizes(), args.set)
    quick_root = ROOT / "data" / "bench-quick"
    out = args.out or (quick_root if args.quick else ROOT / "bench" / "results")
    work = args.work or (quick_root / "work" if args.quick else ROOT / "data" / "scale")
    demo_atlas = args.demo_atlas or (work / "atlas-tiny" if args.quick else ROOT / "data" / "atlas" / "demo")
    ctx = Context(sizes, work, demo_atlas, quick=args.quick)
    doc, status = run(ctx, args.only or names, out, log=lambda line: print(line, flush=True))
    if not args.quick and args.out is None and not args.only and status == 0:  # a full run: the README shows it
        from bench.results import update_readme

        if update_readme(ROOT / "README.md", doc):
            print(f"[bench] the table in {ROOT / 'README.md'} is this run's", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
