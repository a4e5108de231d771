"""Interrupted runs: a build killed with SIGKILL in any stage resumes to the same atlas, losing no
completed work.

The slow suite runs bench/fault_injection.py (30 kills spread over the 10 stages, in 3 rounds;
`make faults`). The fast tests pin the kill windows it and its review found, each with an
exception raised at the moment of the kill (which, unlike SIGKILL, lets `atomic_path` remove its
temporary: the slow suite checks that part).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import galexplore.simulate.writer as writer
import galexplore.training.trainer as trainer
from galexplore.pipeline.build import STAGES
from galexplore.pipeline.runner import BuildState, run_stage
from galexplore.pipeline.stages import SIMULATE
from galexplore.config import load_config
from galexplore.io import atomic_path, remove_partials
from galexplore.training.checkpoint import save_checkpoint
from galexplore.training.trainer import train
from tests.synthetic import PIPELINES, tiny_config, tiny_survey
from tests.test_build import Interrupt, _interrupt_after

ROOT = Path(__file__).resolve().parents[1]


def count_calls(monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> list[int]:
    """`owner.name`, counting its calls into the returned one-element list."""
    real, calls = getattr(owner, name), [0]

    def wrapper(*args, **kwargs):
        calls[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, wrapper)
    return calls


# -- the survey --------------------------------------------------------------------------------


def simulate_stage(tmp_path: Path, survey: Path) -> str:
    """The build's simulate stage alone for the tiny preset (64 galaxies in 4 chunks) into
    `survey`; returns its status ("ran" or "skipped")."""
    cfg = load_config(PIPELINES / "tiny.toml")
    cfg = dataclasses.replace(cfg, survey=dataclasses.replace(cfg.survey, path=str(survey)),
                              simulate=dataclasses.replace(cfg.simulate, chunk_size=16, workers=1))
    state = BuildState(cfg, tmp_path / "atlas", tmp_path / "run")
    run_stage(SIMULATE, state)
    return state.reports[-1].status


@pytest.mark.parametrize("moment", ["writing the config beside it", "removing the chunks"])
def test_a_simulation_killed_as_it_finishes_reassembles_its_chunks(tmp_path, monkeypatch, moment):
    """Killed after the survey is assembled: the rerun simulates nothing again, is not refused
    (the config beside a survey in place was once written after it) and leaves no chunk folder
    (a rerun once skipped it for good), and the survey is byte for byte an uninterrupted one."""
    survey = tmp_path / "survey.h5"  # one path for both runs: the survey records its config
    assert simulate_stage(tmp_path, survey) == "ran"
    whole = survey.read_bytes()
    for path in tmp_path.iterdir():
        path.unlink()
    with monkeypatch.context() as patch:
        if moment == "removing the chunks":
            _interrupt_after(patch, writer.shutil, "rmtree", 1)
        else:
            _interrupt_after(patch, writer, "atomic_write_text", 2)  # the first is the chunks' fingerprint
        with pytest.raises(Interrupt):
            simulate_stage(tmp_path, survey)
    assert len(list(writer.partial_folder(survey).glob("chunk_*.npz"))) == 4
    # what a SIGKILL during an earlier assembly leaves: a temporary as large as the survey
    (survey.parent / ".survey.h5.killed.partial").write_bytes(b"\0" * 1000)
    chunks = count_calls(monkeypatch, writer, "_write_chunk")
    assert simulate_stage(tmp_path, survey) == "ran"
    assert chunks[0] == 0
    assert survey.read_bytes() == whole
    assert sorted(p.name for p in survey.parent.iterdir()) == ["survey.config.toml", "survey.h5"]
    assert simulate_stage(tmp_path, survey) == "skipped"


# -- training ----------------------------------------------------------------------------------


def log_records(run: Path) -> list[dict]:
    """The run's log without the throughput, which no two runs share."""
    records = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "images_per_s"} for r in records]


def test_training_killed_between_a_checkpoint_and_what_follows_it_loses_nothing(tmp_path, monkeypatch, one_torch_thread):
    """Killed after the epoch's last checkpoint, before the kNN monitor evaluated it (its record
    was once lost), then after the last checkpoint, before the encoder was saved (the resumed run
    once reported a NaN last loss): the log and the result equal an uninterrupted run's."""
    cfg, survey, cpu = tiny_config(), tiny_survey(), torch.device("cpu")
    whole = train(cfg, tmp_path / "whole", survey=survey, device=cpu)
    cut = tmp_path / "cut"
    with monkeypatch.context() as patch:
        _interrupt_after(patch, trainer, "_monitor", 1)  # after step 4's checkpoint
        with pytest.raises(Interrupt):
            train(cfg, cut, survey=survey, device=cpu)
    with monkeypatch.context() as patch:
        _interrupt_after(patch, trainer, "save_encoder", 1)  # after step 8's checkpoint and monitor
        with pytest.raises(Interrupt):
            train(cfg, cut, survey=survey, device=cpu)
    steps = count_calls(monkeypatch, trainer, "_step")
    resumed = train(cfg, cut, survey=survey, device=cpu)
    assert steps[0] == 0  # nothing after the last checkpoint to redo
    assert log_records(cut) == log_records(tmp_path / "whole")
    assert [r["step"] for r in log_records(cut) if "monitor" in r] == [4, 8]
    assert resumed.last_loss == whole.last_loss and resumed.step == whole.step == 8


def test_a_checkpoint_is_the_same_bytes_whatever_its_file_name(tmp_path):
    """torch.save names an archive's records after the file it is given; atomic_path's random
    temporary name once made two saves of the same weights different files (and fingerprints)."""
    payload = {"format": "x", "weights": torch.arange(6.0).reshape(2, 3)}
    a, b = save_checkpoint(tmp_path / "a.pt", payload), save_checkpoint(tmp_path / "b" / "encoder.pt", payload)
    assert a.read_bytes() == b.read_bytes()


def test_remove_partials_removes_the_named_temporaries_only(tmp_path):
    with atomic_path(tmp_path / "keep.npy") as tmp:
        tmp.write_bytes(b"done")
    for name in (".survey.h5.a1.partial", ".survey.h5.b2.partial", ".other.h5.c3.partial", "survey.h5"):
        (tmp_path / name).write_bytes(b"")
    remove_partials(tmp_path, "survey.h5")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.h5.c3.partial", "keep.npy", "survey.h5"]
    remove_partials(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.npy", "survey.h5"]


# -- the whole build, killed for real (slow) -----------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_sigkill_in_every_stage_then_rerun_equals_an_uninterrupted_build(tmp_path):
    out = tmp_path / "faults.json"
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "fault_injection.py"), "--kills", "30",
                           "--rounds", "3", "--seed", "0", "--work", str(tmp_path / "work"), "--out", str(out)],
                          capture_output=True, text=True, timeout=1800)
    assert out.exists(), done.stderr[-4000:]
    result = json.loads(out.read_text())
    assert result["differences"] == [], result["differences"]
    assert done.returncode == 0, done.stderr[-4000:]
    assert result["kills"] == 30 and sorted(result["kills_per_stage"]) == sorted(STAGES)
    assert min(result["kills_per_stage"].values()) == 3
    assert min(result["killed_as_the_stage_ended"].values()) >= 1  # each stage's riskiest moment
    assert result["reruns_completed"] == 3 and result["runs"] == 1 + 30 + 3
    # per kill at least the manifest and the units redone; per completing run every file and stage
    assert result["comparisons"] >= 30 * 5 + 3 * 30
