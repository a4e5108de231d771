"""MoCo v2 (He et al. 2020, arXiv 1911.05722; Chen et al. 2020, arXiv 2003.04297).

A query encoder learns by backpropagation; a key encoder follows it as a moving average
(`momentum_update`). Each is a backbone (the encoder whose representations we keep) and an MLP
projection head. Keys of past batches wait in a queue as negatives.

The model holds no device or process logic: `forward` takes query images and keys already
computed, so the trainer chooses how keys are made. One training step:

1. `model.momentum_update()`;
2. `keys = model.compute_keys(k_images)` on one process, or, under DDP,
   `keys, all_keys = shuffled_keys(model.compute_keys, k_images, group)` from
   `galexplore.training.distributed`;
3. `loss, stats = model(q_images, keys)` (through the DDP wrapper under DDP), then backward and
   the optimiser step;
4. `model.enqueue(keys)`, or `model.enqueue(all_keys)` under DDP, so every process keeps the
   same queue.

Batch-norm leakage: when a query and its positive key are normalised with statistics of the
same samples, the pair can be matched through those statistics instead of through the image
(He et al. 2020, sec. 3.3). MoCo's defence, shuffle BN, normalises each GPU's share separately and
gives the key encoder a shuffled order, so a key's statistics come from other samples than its
query's. On one process we emulate it: both encoders normalise `bn_splits` sub-batches
separately (ghost BN) and `compute_keys` permutes the key batch before splitting and undoes the
permutation after. Under DDP, each process's batch is already a sub-batch and
`distributed.shuffled_keys` shuffles the key batch across processes.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from galexplore.config import ModelConfig
from galexplore.models.encoder import build_encoder
from galexplore.models.losses import info_nce
from galexplore.models.split_bn import split_batch_norm

__all__ = ["MoCo", "ProjectionHead"]


class ProjectionHead(nn.Sequential):
    """The MLP after the backbone: Linear layers of widths `dims` with ReLU between them.

    MoCo v2's head is (D, D, 128): in_dim=D, dims=(D, 128). Maps (B, in_dim) to (B, dims[-1]).
    """

    def __init__(self, in_dim: int, dims: tuple[int, ...]) -> None:
        if not dims:
            raise ValueError("a projection head needs at least one width")
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip((in_dim, *dims[:-1]), dims)):
            if i > 0:
                layers.append(nn.ReLU(inplace=True))
            layers.append(nn.Linear(a, b))
        super().__init__(*layers)


class _Branch(nn.Module):
    """A backbone and its projection head: (B, C, H, W) images to (B, dims[-1]) projections."""

    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, images: Tensor) -> Tensor:
        return self.head(self.backbone(images))


class MoCo(nn.Module):
    """MoCo v2: a query encoder, a momentum key encoder and a queue of negative keys.

    backbone maps (B, C, H, W) to (B, representation_dim); the key encoder starts as a copy.
    The queue holds `queue` L2-normalised keys of width `projection_dims[-1]`, with a pointer to
    the oldest. `temperature` scales the InfoNCE logits; `bn_splits` is the number of sub-batches
    normalised separately on this process (1: the whole batch).
    """

    queue: Tensor
    queue_ptr: Tensor

    def __init__(
        self,
        backbone: nn.Module,
        representation_dim: int,
        *,
        projection_dims: tuple[int, ...] = (512, 128),
        queue: int = 65536,
        momentum: float = 0.999,
        temperature: float = 0.2,
        bn_splits: int = 1,
    ) -> None:
        super().__init__()
        if not 0 <= momentum <= 1:
            raise ValueError(f"momentum must be in [0, 1], found {momentum}")
        if temperature <= 0 or queue < 1 or bn_splits < 1:
            raise ValueError(
                f"expected temperature > 0, queue >= 1 and bn_splits >= 1; found {temperature}, "
                f"{queue} and {bn_splits}"
            )
        self.momentum = momentum
        self.temperature = temperature
        self.bn_splits = bn_splits
        if bn_splits > 1:
            backbone = split_batch_norm(backbone, bn_splits)  # ghost BN inside each BN layer
        self.query = _Branch(backbone, ProjectionHead(representation_dim, tuple(projection_dims)))
        self.key = copy.deepcopy(self.query)
        self.key.requires_grad_(False)  # learnt only through momentum_update
        dim = projection_dims[-1]
        self.register_buffer("queue", F.normalize(torch.randn(queue, dim), dim=1))  # queue: KxC
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))  # the oldest key

    @classmethod
    def from_config(cls, cfg: ModelConfig, in_channels: int) -> MoCo:
        """A MoCo v2 model with a ResNet backbone for `in_channels` bands, as `cfg` describes."""
        return cls(
            build_encoder(cfg, in_channels),
            cfg.representation_dim,
            projection_dims=cfg.projection_dims,
            queue=cfg.queue,
            momentum=cfg.momentum,
            temperature=cfg.temperature,
            bn_splits=cfg.bn_splits,
        )

    @property
    def encoder(self) -> nn.Module:
        """The query backbone: the encoder whose (B, D) representations are kept after training."""
        return self.query.backbone

    def compute_queries(self, images: Tensor) -> Tensor:
        """(N, C, H, W) images to (N, dim) L2-normalised queries, with gradients."""
        return F.normalize(self.query(images), dim=1)  # q: NxC

    @torch.no_grad()
    def compute_keys(
        self, images: Tensor, *, shuffle: bool = True, generator: torch.Generator | None = None
    ) -> Tensor:
        """(N, C, H, W) images to (N, dim) L2-normalised keys, in the order of `images`.

        With `shuffle`, the batch is permuted (by a CPU `generator`, when given) before it is
        split into BN sub-batches, and the keys are put back in order, so a key is normalised
        with other samples than its query.
        """
        if not shuffle:
            return F.normalize(self.key(images), dim=1)  # k: NxC
        perm = torch.randperm(images.shape[0], generator=generator).to(images.device)  # perm: N
        k_shuffled = F.normalize(self.key(images[perm]), dim=1)  # NxC
        k = torch.empty_like(k_shuffled)
        k[perm] = k_shuffled  # k: NxC, row i is the key of images[i]
        return k

    def forward(self, q_images: Tensor, keys: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """InfoNCE of the queries of `q_images` (N, C, H, W) against `keys` (N, dim) and the queue.

        Returns the loss and detached statistics: `pos_similarity` and `neg_similarity` (mean
        cosine similarity of a query to its key and to the queue) and `accuracy` (the fraction
        of queries closest to their own key). The queue is not changed: call `enqueue` after.
        """
        q = self.compute_queries(q_images)  # q: NxC
        # a copy, so that enqueueing before backward cannot alter what backward needs
        negatives = self.queue.clone()  # negatives: KxC
        loss, logits = info_nce(q, keys.detach(), negatives, self.temperature)  # logits: Nx(1+K)
        similarity = logits.detach() * self.temperature  # cosines: Nx(1+K)
        stats = {
            "pos_similarity": similarity[:, 0].mean(),
            "neg_similarity": similarity[:, 1:].mean(),
            "accuracy": (similarity.argmax(dim=1) == 0).float().mean(),
        }
        return loss, stats

    @torch.no_grad()
    def momentum_update(self, momentum: float | None = None) -> None:
        """theta_k = m * theta_k + (1 - m) * theta_q for every parameter (m: `self.momentum`).

        Buffers (BN running statistics) are the key encoder's own, as in MoCo.
        """
        m = self.momentum if momentum is None else momentum
        if not 0 <= m <= 1:
            raise ValueError(f"momentum must be in [0, 1], found {m}")
        for p_k, p_q in zip(self.key.parameters(), self.query.parameters(), strict=True):
            p_k.mul_(m).add_(p_q.detach(), alpha=1 - m)

    @torch.no_grad()
    def enqueue(self, keys: Tensor) -> None:
        """Replace the oldest keys of the queue by `keys` (N, dim), wrapping around its end.

        Under DDP pass the keys of every process (all-gathered) so that the queues stay equal.
        """
        n, size = keys.shape[0], self.queue.shape[0]
        if n > size:
            raise ValueError(
                f"cannot enqueue {n} keys in a queue of {size}: model.queue must be at least the "
                f"global batch (train.batch_size times the number of processes)"
            )
        # indices on the queue's device: no host synchronisation on an accelerator
        rows = (self.queue_ptr + torch.arange(n, device=self.queue.device)) % size  # rows: N
        self.queue.index_copy_(0, rows, keys.detach().to(self.queue.dtype))  # queue: KxC
        self.queue_ptr.copy_((self.queue_ptr + n) % size)
