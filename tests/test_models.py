"""Models: ResNet encoders for C bands, InfoNCE, and MoCo v2's momentum, queue and shuffle BN."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
import torch.nn.functional as F

from galexplore.config import ModelConfig, config_from_dict
from galexplore.errors import ConfigError
from galexplore.models import MoCo, build_encoder, info_nce
from galexplore.training.distributed import shuffle_batch, unshuffle_batch

BANDS = 5
QUEUE = 32
DIM = 16  # key width: projection_dims[-1]
SPLITS = 4


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)  # tiny tensors: threads only add contention


@pytest.fixture(scope="module")
def _moco_template() -> MoCo:
    torch.manual_seed(0)
    cfg = ModelConfig(projection_dims=(32, DIM), queue=QUEUE, bn_splits=SPLITS)
    return MoCo.from_config(cfg, in_channels=BANDS)


@pytest.fixture
def moco(_moco_template: MoCo) -> MoCo:
    """A fresh tiny MoCo (resnet18, small stem, 5 bands) per test: building one takes a second."""
    return copy.deepcopy(_moco_template)


@pytest.fixture
def images() -> torch.Tensor:
    return torch.randn(8, BANDS, 16, 16, generator=torch.Generator().manual_seed(1))


def _parameters(module: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in module.parameters()])


# --- InfoNCE ---------------------------------------------------------------------------------


def test_info_nce_equals_log_k_plus_one_when_all_logits_are_equal() -> None:
    n, k, c = 4, 10, 8
    v = F.normalize(torch.randn(1, c), dim=1)
    loss, logits = info_nce(v.expand(n, c), v.expand(n, c), v.expand(k, c), temperature=0.2)
    assert logits.shape == (n, 1 + k)
    assert torch.allclose(logits, torch.full((n, 1 + k), 1 / 0.2))
    assert loss.item() == pytest.approx(math.log(k + 1), rel=1e-6)


def test_info_nce_of_orthogonal_negatives_has_its_closed_form_and_rejects_bad_shapes() -> None:
    q = torch.eye(8)[:4]  # each query is its own key...
    queue = torch.eye(8)[4:]  # ...and orthogonal to each of the 4 negatives
    loss, _ = info_nce(q, q, queue, temperature=0.5)
    # logits 1/T for the positive, 0 for each negative: -log(e^(1/T) / (e^(1/T) + 4))
    assert loss.item() == pytest.approx(math.log(1 + 4 * math.exp(-1 / 0.5)), rel=1e-5)
    with pytest.raises(ValueError, match="queue"):
        info_nce(q, q, torch.eye(5), temperature=0.2)  # negatives of the wrong width


# --- encoders --------------------------------------------------------------------------------


@pytest.mark.parametrize(("arch", "dim"), [("resnet18", 512), ("resnet50", 2048)])
def test_build_encoder_gives_representations_of_the_arch_width(arch: str, dim: int) -> None:
    net = build_encoder(ModelConfig(arch=arch, representation_dim=dim), in_channels=BANDS).eval()
    with torch.no_grad():
        z = net(torch.randn(2, BANDS, 16, 16))
    assert z.shape == (2, dim)
    assert net.conv1.in_channels == BANDS


@pytest.mark.parametrize(("stem", "side"), [("small", 64), ("imagenet", 16)])
def test_small_stem_keeps_a_64_pixel_crop_at_full_resolution(stem: str, side: int) -> None:
    net = build_encoder(ModelConfig(stem=stem), in_channels=BANDS).eval()
    with torch.no_grad():
        x = net.maxpool(net.relu(net.bn1(net.conv1(torch.randn(1, BANDS, 64, 64)))))
        first_block = net.layer1(x)
    assert first_block.shape == (1, 64, side, side)


def test_representation_dim_must_match_the_arch() -> None:
    with pytest.raises(ConfigError, match=r"model\.representation_dim.*expected 2048, found 512"):
        build_encoder(ModelConfig(arch="resnet50", representation_dim=512), in_channels=BANDS)
    with pytest.raises(ConfigError, match=r"x\.toml: model\.representation_dim = 2048.*512"):
        config_from_dict({"model": {"representation_dim": 2048}}, source="x.toml")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"model": {"queue": 64}, "train": {"batch_size": 128}},
         r"model\.queue = 64 .*train\.batch_size = 128"),
        ({"model": {"bn_splits": 8}, "train": {"batch_size": 8}},
         r"model\.bn_splits = 8 needs train\.batch_size >= 16.*found 8"),
        ({"model": {"projection_dims": []}}, r"model\.projection_dims"),
    ],
)
def test_incompatible_model_and_batch_settings_are_config_errors(raw: dict, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        config_from_dict(raw)


# --- MoCo ------------------------------------------------------------------------------------


def test_momentum_zero_copies_the_query_encoder(moco: MoCo) -> None:
    with torch.no_grad():
        for p in moco.query.parameters():
            p.add_(torch.randn_like(p))
    assert not torch.equal(_parameters(moco.key), _parameters(moco.query))
    moco.momentum_update(0.0)
    assert torch.equal(_parameters(moco.key), _parameters(moco.query))


def test_momentum_one_leaves_the_key_encoder_unchanged(moco: MoCo) -> None:
    before = _parameters(moco.key).clone()
    with torch.no_grad():
        for p in moco.query.parameters():
            p.add_(torch.randn_like(p))
    moco.momentum_update(1.0)
    assert torch.equal(_parameters(moco.key), before)


def test_momentum_update_moves_the_key_a_fraction_one_minus_m_of_the_way(moco: MoCo) -> None:
    key = _parameters(moco.key).clone()
    with torch.no_grad():
        for p in moco.query.parameters():
            p.add_(1.0)
    moco.momentum_update(0.75)
    # theta_k = 0.75 theta_k + 0.25 (theta_k + 1)
    assert torch.allclose(_parameters(moco.key), key + 0.25, atol=1e-6)


def test_queue_starts_normalised_then_enqueues_and_wraps(moco: MoCo) -> None:
    assert moco.queue.shape == (QUEUE, DIM)
    assert torch.allclose(moco.queue.norm(dim=1), torch.ones(QUEUE), atol=1e-5)
    batches = [F.normalize(torch.randn(12, DIM), dim=1) for _ in range(3)]
    initial = moco.queue.clone()
    moco.enqueue(batches[0])
    assert moco.queue_ptr.item() == 12
    assert torch.equal(moco.queue[:12], batches[0]) and torch.equal(moco.queue[12:], initial[12:])
    moco.enqueue(batches[1])
    moco.enqueue(batches[2])  # rows 24..31, then wraps to rows 0..3
    assert moco.queue_ptr.item() == (3 * 12) % QUEUE == 4
    assert torch.equal(moco.queue[24:], batches[2][:8])
    assert torch.equal(moco.queue[:4], batches[2][8:])
    assert torch.equal(moco.queue[4:12], batches[0][4:])
    assert torch.equal(moco.queue[12:24], batches[1])
    with pytest.raises(ValueError, match="model.queue"):
        moco.enqueue(torch.randn(QUEUE + 1, DIM))


def test_the_key_encoder_gets_no_gradients(moco: MoCo, images: torch.Tensor) -> None:
    moco.train()
    keys = moco.compute_keys(images)
    assert not keys.requires_grad
    loss, stats = moco(images, keys)
    loss.backward()
    assert all(p.grad is None for p in moco.key.parameters())
    grads = [p.grad for p in moco.query.parameters()]
    assert all(g is not None for g in grads)
    assert sum(g.abs().sum().item() for g in grads) > 0
    assert set(stats) == {"pos_similarity", "neg_similarity", "accuracy"}
    assert not any(s.requires_grad for s in stats.values())


def test_stats_and_loss_when_the_key_encoder_equals_the_query_encoder(
    moco: MoCo, images: torch.Tensor
) -> None:
    moco.eval()  # per-sample BN: queries of the same images are then exactly their keys
    keys = moco.compute_keys(images)
    with torch.no_grad():
        loss, stats = moco(images, keys)
    q = moco.compute_queries(images).detach()
    neg = q @ moco.queue.T  # neg: NxK
    assert stats["pos_similarity"].item() == pytest.approx(1.0, abs=1e-5)
    assert stats["neg_similarity"].item() == pytest.approx(neg.mean().item(), abs=1e-6)
    assert stats["accuracy"].item() == 1.0
    expected = -torch.log_softmax(torch.cat([torch.ones(8, 1), neg], 1) / moco.temperature, 1)[:, 0]
    assert loss.item() == pytest.approx(expected.mean().item(), rel=1e-5)


def test_shuffled_ghost_bn_keys_equal_the_plain_keys_in_eval_mode(
    moco: MoCo, images: torch.Tensor
) -> None:
    moco.eval()
    assert not torch.equal(torch.randperm(8, generator=torch.Generator().manual_seed(3)),
                           torch.arange(8))  # the permutation below is not the identity
    shuffled = moco.compute_keys(images, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        plain = F.normalize(moco.key(images), dim=1)  # whole batch, in order
    assert torch.allclose(shuffled, plain, atol=1e-5)


def test_ghost_bn_confines_a_keys_statistics_to_its_shuffled_sub_batch(
    moco: MoCo, images: torch.Tensor
) -> None:
    moco.train()  # batch statistics: a sample influences exactly the others of its sub-batch
    changed = images.clone()
    changed[0] += 1.0

    def rows_that_moved(a: torch.Tensor, b: torch.Tensor) -> set[int]:
        return set(torch.nonzero((a - b).abs().amax(dim=1) > 1e-6).flatten().tolist())

    with torch.no_grad():
        q_moved = rows_that_moved(moco.compute_queries(images), moco.compute_queries(changed))
    seed = 0  # groups keys as {4, 0}, {7, 3}, {2, 5}, {1, 6}
    k_moved = rows_that_moved(
        moco.compute_keys(images, generator=torch.Generator().manual_seed(seed)),
        moco.compute_keys(changed, generator=torch.Generator().manual_seed(seed)),
    )
    size = 8 // SPLITS
    assert q_moved == set(range(size))  # queries: contiguous sub-batches
    perm = torch.randperm(8, generator=torch.Generator().manual_seed(seed))
    share = (perm == 0).nonzero().item() // size  # the key sub-batch that holds sample 0
    assert k_moved == set(perm[share * size:(share + 1) * size].tolist())
    assert k_moved != q_moved  # a key's statistics come from other samples than its query's


# --- shuffle BN across processes -------------------------------------------------------------

WORLD, PER_RANK = 2, 3


def _local_batch(rank: int) -> torch.Tensor:
    """Rank `rank`'s (PER_RANK, 2) batch: row j of the global batch holds (j, -j)."""
    j = torch.arange(rank * PER_RANK, (rank + 1) * PER_RANK, dtype=torch.float32)
    return torch.stack([j, -j], dim=1)


def _encode(x: torch.Tensor) -> torch.Tensor:
    return 10 * x + 1  # any per-sample function stands in for the key encoder


def _batch_shuffle_worker(rank: int, init_file: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        group = dist.new_group(list(range(WORLD)))  # the helpers take any process group
        seed = torch.Generator().manual_seed(0)
        shuffle = shuffle_batch(_local_batch(rank), group, generator=seed)
        local, everyone = unshuffle_batch(_encode(shuffle.images), shuffle, group)
        torch.save({"seen": shuffle.images, "local": local, "all": everyone}, f"{out}/{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_batch_shuffle_across_two_processes_returns_keys_in_the_original_order(
    tmp_path: Path,
) -> None:
    mp.spawn(_batch_shuffle_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD)
    results = [torch.load(tmp_path / f"{r}.pt", weights_only=True) for r in range(WORLD)]
    batch = torch.cat([_local_batch(r) for r in range(WORLD)])
    for rank, result in enumerate(results):
        assert torch.equal(result["local"], _encode(_local_batch(rank)))
        assert torch.equal(result["all"], _encode(batch))
    seen = torch.cat([result["seen"] for result in results])
    assert sorted(seen[:, 0].tolist()) == batch[:, 0].tolist()  # a permutation of the batch...
    assert not torch.equal(seen, batch)  # ...that moved samples between processes
    assert set(results[0]["seen"][:, 0].tolist()) != set(range(PER_RANK))


def test_split_batch_norm_equals_batch_norm_on_each_sub_batch() -> None:
    from galexplore.models.split_bn import SplitBatchNorm2d

    torch.manual_seed(0)
    x = torch.randn(12, 3, 5, 5) * torch.arange(1, 13).view(12, 1, 1, 1)  # sub-batches differ
    split = SplitBatchNorm2d(3, splits=3)
    plain = nn.BatchNorm2d(3)
    with torch.no_grad():
        split.weight.uniform_(0.5, 2.0)
        split.bias.uniform_(-1.0, 1.0)
    plain.load_state_dict(split.state_dict())
    out = split(x)
    expected = []
    for part in x.split(4):
        bn = nn.BatchNorm2d(3)
        bn.load_state_dict(plain.state_dict())
        expected.append(bn(part))
    assert torch.allclose(out, torch.cat(expected), atol=1e-5)
    # running statistics: the average of the three sub-batches' updates
    means = torch.stack([0.1 * p.mean(dim=(0, 2, 3)) for p in x.split(4)]).mean(dim=0)
    assert torch.allclose(split.running_mean, means, atol=1e-6)
    split.eval()
    plain.load_state_dict(split.state_dict())
    plain.eval()
    assert torch.equal(split(x), plain(x))
