"""A training process killed with SIGKILL resumes to exactly the run it would have been."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from galexplore.training.checkpoint import load_checkpoint

PIPELINES = Path(__file__).resolve().parents[1] / "pipelines"


def write_config(tmp_path: Path) -> Path:
    survey = tmp_path / "tiny.h5"
    subprocess.run(
        [sys.executable, "-m", "galexplore.cli", "simulate", str(PIPELINES / "tiny.toml"), "--out", str(survey)],
        check=True, capture_output=True, timeout=300,
    )
    text = (PIPELINES / "tiny.toml").read_text()
    text = text.replace('path = "../data/surveys/tiny.h5"', f'path = "{survey}"')
    text = text.replace("epochs = 1", "epochs = 3\ncheckpoint_every = 1\nloader_workers = 0")
    config = tmp_path / "tiny.toml"
    config.write_text(text)
    return config


def train_command(config: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "galexplore.cli", "train", str(config), "--out", str(out), "--device", "cpu"]


def run(command: list[str], env: dict[str, str]) -> None:
    """Run a CLI command; on failure, fail with its stderr (the traceback), not only its status."""
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-4000:]}"


def losses(folder: Path) -> dict[int, float]:
    records = [json.loads(line) for line in (folder / "train_log.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in records if "loss" in r}


def test_sigkill_then_rerun_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run(train_command(config, tmp_path / "whole"), env)

    cut = tmp_path / "cut"
    proc = subprocess.Popen(train_command(config, cut), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 300
    while not list((cut / "checkpoints").glob("step-*.pt")) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # somewhere in the middle of the following steps
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (cut / "encoder.pt").exists(), "the run finished before it could be killed"
    kept = sorted((cut / "checkpoints").glob("step-*.pt"))
    assert kept and all(load_checkpoint(p)["step"] >= 1 for p in kept)  # none half-written

    run(train_command(config, cut), env)
    whole, resumed = losses(tmp_path / "whole"), losses(cut)
    assert resumed == whole  # every step's loss, bitwise, with no step logged twice
    a = load_checkpoint(tmp_path / "whole" / "encoder.pt")["backbone"]
    b = load_checkpoint(cut / "encoder.pt")["backbone"]
    assert all(torch.equal(a[k], b[k]) for k in a)
