"""Where a process sits in a torchrun job (`Distributed`), and shuffle BN across processes.

`Distributed` is what the trainer, the embedding and the build pass around to know whether they
are rank 0 and to wait for or agree with the other processes; one process is world_size 1.

Shuffle BN: the key batch of every process, shuffled between processes.

Under DDP each process normalises its own share of the batch. If a process computed the keys of
its own samples, a query and its key would share batch statistics and the pair could be matched
through them (He et al. 2020, sec. 3.3). So the key batches of all processes are gathered,
permuted by one permutation drawn on the group's first process and broadcast, each process
encodes its share of the shuffled batch, and the keys are gathered again and put back in order.

These helpers take a process group and are called by the trainer, never inside a model's forward.
They work with any backend whose tensors live on the images' device (gloo on CPU, NCCL on GPU).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["BatchShuffle", "Distributed", "all_gather_batch", "shuffle_batch", "shuffled_keys", "unshuffle_batch"]


@dataclass(frozen=True)
class Distributed:
    """Where this process sits in a torch.distributed job (world_size 1: a single process)."""

    rank: int = 0
    world_size: int = 1
    group: Any = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        """Wait for every process (nothing to wait for in a single process)."""
        if self.world_size > 1:
            dist.barrier(group=self.group)

    def from_main(self, value: Any) -> Any:
        """Rank 0's `value` on every rank (a decision all processes must share)."""
        if self.world_size == 1:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0, group=self.group)
        return box[0]


@torch.no_grad()
def all_gather_batch(tensor: Tensor, group: dist.ProcessGroup | None = None) -> Tensor:
    """Every process's (n, ...) tensor concatenated in rank order: (world_size * n, ...).

    No gradient flows back; every process must pass the same shape.
    """
    parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size(group))]
    dist.all_gather(parts, tensor.contiguous(), group=group)
    return torch.cat(parts)


@dataclass(frozen=True)
class BatchShuffle:
    """This process's share of a batch shuffled across processes, and how to undo it.

    images: (n, ...) the samples this process encodes. restore: (n,) the rows of the gathered
    shuffled outputs that are this process's own samples, in order. order: (world_size * n,) the
    rows of the gathered shuffled outputs that give the whole batch in rank order.
    """

    images: Tensor
    restore: Tensor
    order: Tensor


@torch.no_grad()
def shuffle_batch(
    images: Tensor, group: dist.ProcessGroup | None = None, generator: torch.Generator | None = None
) -> BatchShuffle:
    """Shuffle the (n, ...) batches of all processes in `group` together.

    The permutation is drawn on the group's first process (with the CPU `generator` there,
    when given) and broadcast, so every process agrees on it.
    """
    world, rank = dist.get_world_size(group), dist.get_rank(group)
    n = images.shape[0]
    sizes = all_gather_batch(torch.tensor([n], device=images.device), group)  # sizes: world
    if (sizes != n).any():
        raise ValueError(
            f"batch shuffling needs the same batch on every process; found {sizes.tolist()}"
        )
    gathered = all_gather_batch(images, group)  # gathered: (world*n, ...)
    if rank == 0:
        perm = torch.randperm(world * n, generator=generator).to(images.device)  # perm: world*n
    else:
        perm = torch.empty(world * n, dtype=torch.long, device=images.device)
    src = dist.get_global_rank(group, 0) if group is not None else 0
    dist.broadcast(perm, src=src, group=group)
    order = torch.argsort(perm)  # order: world*n, shuffled row of each original sample
    mine = slice(rank * n, (rank + 1) * n)
    return BatchShuffle(images=gathered[perm[mine]], restore=order[mine], order=order)


@torch.no_grad()
def unshuffle_batch(
    outputs: Tensor, shuffle: BatchShuffle, group: dist.ProcessGroup | None = None
) -> tuple[Tensor, Tensor]:
    """Put the (n, ...) outputs of `shuffle.images` back in order.

    Returns this process's outputs for its own samples, (n, ...), and every process's in rank
    order, (world_size * n, ...) (what the queue takes).
    """
    gathered = all_gather_batch(outputs, group)  # gathered: (world*n, ...), shuffled order
    return gathered[shuffle.restore], gathered[shuffle.order]


@torch.no_grad()
def shuffled_keys(
    encode: Callable[[Tensor], Tensor],
    images: Tensor,
    group: dist.ProcessGroup | None = None,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Keys of this process's (n, C, H, W) `images`, encoded in a batch shuffled across processes.

    `encode` is e.g. `MoCo.compute_keys`. Returns this process's keys (n, dim), in the order of
    `images`, and every process's keys in rank order (world_size * n, dim), for `MoCo.enqueue`.
    """
    shuffle = shuffle_batch(images, group, generator)
    return unshuffle_batch(encode(shuffle.images), shuffle, group)
