"""The MoCo v2 trainer: a run's files, exact resume, identical ranks under DDP, clear refusals."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as torch_dist
import torch.multiprocessing as mp

from galexplore.errors import GalexploreError
from galexplore.training.checkpoint import latest_checkpoint, load_checkpoint
from galexplore.training.data import EpochBatches
from galexplore.training.trainer import Distributed, train
from tests.synthetic import N, tiny_config, tiny_survey


def losses_by_step(records: list[dict]) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in records if "loss" in r}


def test_a_run_writes_its_files_and_finishes(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    records: list[dict] = []
    result = train(tiny_config(), tmp_path / "run", survey=tiny_survey(), device=torch.device("cpu"), log=records.append)
    assert result.step == result.total_steps == 2 * (N // 16)
    assert np.isfinite(result.last_loss)
    assert (tmp_path / "run" / "config.toml").exists()
    assert result.encoder == tmp_path / "run" / "encoder.pt"
    encoder = load_checkpoint(result.encoder)  # weights_only=True inside
    assert encoder["format"] == "galexplore-encoder/1" and encoder["bands"] == list("ugriz")
    assert len(list((tmp_path / "run" / "checkpoints").glob("step-*.pt"))) == 2  # the last two kept
    log = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert sorted(losses_by_step(log)) == list(range(1, 9))
    for key in ("lr", "images_per_s", "pos_similarity", "neg_similarity"):
        assert all(np.isfinite(r[key]) for r in log if "loss" in r)
    monitor = [r["monitor"] for r in log if "monitor" in r]
    assert len(monitor) == 2 and {"z_spec", "p_features", "health"} <= set(monitor[-1])


def test_resume_gives_the_bitwise_same_next_loss(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    cfg, survey, cpu = tiny_config(), tiny_survey(), torch.device("cpu")
    whole: list[dict] = []
    train(cfg, tmp_path / "whole", survey=survey, device=cpu, log=whole.append)
    # An interrupted run: stops after step 5 (its last checkpoint), then is started again.
    train(cfg, tmp_path / "cut", survey=survey, device=cpu, max_steps=5)
    assert latest_checkpoint(tmp_path / "cut" / "checkpoints").name == "step-00000005.pt"
    resumed: list[dict] = []
    result = train(cfg, tmp_path / "cut", survey=survey, device=cpu, log=resumed.append)
    assert result.step == 8
    assert min(losses_by_step(resumed)) == 6
    for step, loss in losses_by_step(resumed).items():
        assert loss == losses_by_step(whole)[step]  # bitwise, not approximately
    a = load_checkpoint(tmp_path / "whole" / "encoder.pt")["backbone"]
    b = load_checkpoint(tmp_path / "cut" / "encoder.pt")["backbone"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_refuses_a_checkpoint_of_another_architecture(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    cfg = tiny_config()
    train(cfg, tmp_path / "run", survey=tiny_survey(), device=torch.device("cpu"), max_steps=1)
    other = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, projection_dims=(32, 8)))
    with pytest.raises(GalexploreError, match=r"different \[model\] section"):
        train(other, tmp_path / "run", survey=tiny_survey(), device=torch.device("cpu"))


def test_epoch_batches_split_one_global_order_between_ranks() -> None:
    one = list(EpochBatches(100, 8, seed=3, epoch=2))
    ranks = [list(EpochBatches(100, 4, seed=3, epoch=2, rank=r, world_size=2)) for r in range(2)]
    assert len(one) == len(ranks[0]) == len(ranks[1]) == 12
    for step in range(12):
        assert sorted(ranks[0][step] + ranks[1][step]) == sorted(one[step])
        assert not set(ranks[0][step]) & set(ranks[1][step])
    assert list(EpochBatches(100, 8, seed=3, epoch=2, skip=5)) == one[5:]
    assert list(EpochBatches(100, 8, seed=3, epoch=3)) != one


def _ddp_worker(rank: int, init: str, out: str) -> None:
    torch.set_num_threads(1)
    torch_dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    try:
        cfg = tiny_config()
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, batch_size=8, epochs=1))
        result = train(
            cfg, Path(out) / "run", survey=tiny_survey(), device=torch.device("cpu"),
            dist=Distributed(rank=rank, world_size=2, group=torch_dist.group.WORLD),
        )
        torch.save(result.model.state_dict(), Path(out) / f"rank{rank}.pt")
    finally:
        torch_dist.destroy_process_group()


def test_two_process_gloo_run_ends_with_identical_weights(tmp_path: Path) -> None:
    mp.start_processes(
        _ddp_worker, args=(f"file://{tmp_path}/init", str(tmp_path)), nprocs=2, start_method="spawn"
    )
    a = torch.load(tmp_path / "rank0.pt", weights_only=True)
    b = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert (tmp_path / "run" / "encoder.pt").exists()


@pytest.mark.gpu
def test_a_cuda_run_with_bf16_autocast_finishes(tmp_path: Path) -> None:
    result = train(tiny_config(), tmp_path / "run", survey=tiny_survey(), device=torch.device("cuda"))
    assert result.step == result.total_steps
    assert np.isfinite(result.last_loss)
    assert load_checkpoint(result.encoder)["format"] == "galexplore-encoder/1"


def test_resume_accepts_a_change_in_how_the_run_is_executed(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    cfg = tiny_config()
    train(cfg, tmp_path / "run", survey=tiny_survey(), device=torch.device("cpu"), max_steps=2)
    faster = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, checkpoint_every=3, loader_workers=1))
    result = train(faster, tmp_path / "run", survey=tiny_survey(), device=torch.device("cpu"), max_steps=3)
    assert result.step == 3
