"""Rows of whole runs: the explorer on the 1,000,000-galaxy atlas, and the demo build per stage.

- app: the scale atlas (`bench.scale_check`: `galexplore build` from the suite's synthetic
  embeddings) and the explorer's server-side latencies, start-up and memory on it
  (`bench/app_latency.py`, in its own process so that its memory is the app's alone);
- demo: `galexplore build` of the demo preset, each stage's time. Stages already up to date are
  not run again: their time is the one the atlas's manifest recorded when they last ran.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.measure import Row, in_fresh_process

if TYPE_CHECKING:
    from bench.suite import Context

APP_LATENCY = Path(__file__).with_name("app_latency.py")
# (key in app_latency's JSON, row name)
APP_ACTIONS = (("pan_zoom", "pan/zoom re-render"), ("colour_change", "colour change"),
               ("click_to_gallery", "click to gallery"), ("lasso", "lasso to table"))


def app_rows(ctx: Context) -> list[Row]:
    s = ctx.sizes
    scale = ctx.scale_atlas_build()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "app.json"
        command = [sys.executable, str(APP_LATENCY), scale["atlas"], "--repeat", str(s.app_repeat),
                   "--sessions", str(s.app_sessions), "--out", str(out)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=s.app_budget_s)
        if done.returncode:
            raise RuntimeError(f"bench/app_latency.py failed ({done.returncode}):\n{done.stderr[-3000:]}")
        result = json.loads(out.read_text())
    n, d = result["n"], scale["dim"]
    label = "explorer, server side"
    rows = [Row("app", f"app: {name}", "s", result[key]["median_s"], label, n=n, d=d,
                notes={"cold": result[key]["cold_s"], "max": result[key]["max_s"], "rounds": s.app_repeat,
                       **({"selected": result[key]["selected"]} if "selected" in result[key] else {})})
            for key, name in APP_ACTIONS]
    startup = result["startup_s"]
    rss = result["rss_mb"]
    rows += [
        Row("app", "app: start-up, server answering", "s", startup["server_answering"], "panel serve + app/setup.py", n=n, d=d),
        Row("app", "app: start-up, first page served", "s", startup["first_page_served"], "panel serve + app/setup.py", n=n, d=d),
        Row("app", "app: memory, 1 session", "MB", rss["one_session"], "resident memory of the process", n=n, d=d,
            notes={"before the atlas": rss["before_load"], "atlas load s": result["load_s"]}),
        Row("app", f"app: memory, {rss['sessions']} sessions", "MB", rss["all_sessions"],
            "resident memory of the process", n=n, d=d, notes={"per extra session MB": rss["per_extra_session_mb"]}),
    ]
    if scale["ran"]:
        stages = {name: scale["stages"][name]["seconds"] for name in scale["ran"]}
        rows.append(Row("app", "scale atlas build (this run)", "s", scale["wall_s"],
                        "galexplore build --embeddings --catalog", n=n, d=d,
                        notes={"peak GB": scale["peak_gb"], **{f"{k} s": v for k, v in stages.items()}}))
    return rows


def demo_rows(ctx: Context) -> list[Row]:
    s = ctx.sizes
    survey = ctx.work / "tiny.h5" if ctx.quick else None  # a quick run writes nothing outside its work folder
    reports = in_fresh_process(build_stages, s.demo_config, ctx.demo_atlas, survey, timeout=s.demo_budget_s)
    manifest = json.loads((ctx.demo_atlas / "manifest.json").read_text())
    recorded = manifest.get("stages", {})
    label = f"galexplore build {Path(s.demo_config).name}"
    rows, total = [], 0.0
    for report in reports:
        name, status = report["name"], report["status"]
        if status == "ran":
            seconds, when = report["seconds"], "ran in this run"
        elif status == "skipped" and recorded.get(name, {}).get("seconds") is not None:
            seconds, when = recorded[name]["seconds"], f"up to date: recorded by an earlier build (atlas updated {manifest.get('updated')})"
        else:
            continue  # not needed, or an up-to-date simulation (its time is not recorded)
        total += seconds
        rows.append(Row("demo", f"demo build: {name}", "s", seconds, label, n=manifest["n_objects"],
                        notes={"status": when, "detail": report["detail"] or recorded.get(name, {}).get("detail", "")}))
    rows.append(Row("demo", "demo build: total of the stages above", "s", total, label, n=manifest["n_objects"]))
    return rows


def build_stages(config: Path, out: Path, survey: Path | None) -> list[dict[str, Any]]:
    """`galexplore build CONFIG --out OUT` (the survey written to `survey` when given): each stage's report."""
    from galexplore.pipeline.build import build
    from galexplore.config import load_config
    from galexplore.training.launch import select_device

    cfg = load_config(config)
    if survey is not None:
        cfg = dataclasses.replace(cfg, survey=dataclasses.replace(cfg.survey, path=str(survey)))
    result = build(cfg, out, device=select_device(None, os.environ))
    return [dataclasses.asdict(report) for report in result.stages]
