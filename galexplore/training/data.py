"""Feeding cutouts to the training device: batched reads, a seeded order, workers, pinned memory.

The order of an epoch is a function of (seed, epoch) alone, and each rank takes its own slice
of it, so a resumed run reads exactly the batches an uninterrupted one would have read, by
skipping the batches it already did. Each batch is read from the survey in one call (sorted,
contiguous runs for HDF5), not image by image.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from galexplore.survey.base import Survey


class CutoutBatches(Dataset):
    """A dataset whose items are whole batches: ``dataset[list_of_rows] -> (B, C, H, W)``.

    Used with ``DataLoader(batch_size=None, sampler=EpochBatches(...))`` so each worker reads
    one batch per call. `rows` maps the dataset's positions to survey rows (a training split).
    """

    def __init__(self, survey: Survey, rows: np.ndarray | None = None) -> None:
        self.survey = survey
        self.rows = np.arange(len(survey)) if rows is None else np.asarray(rows, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, positions: Sequence[int]) -> torch.Tensor:
        return torch.from_numpy(self.survey.read(self.rows[np.asarray(positions)]))


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The permutation of range(n) used in `epoch`: the same on every rank and every rerun."""
    return np.random.default_rng([seed, epoch, 0x6A1]).permutation(n)


class EpochBatches(Sampler[list[int]]):
    """Yields this rank's batches of one epoch, skipping the first `skip` of them (resume).

    The epoch's permutation is cut into global batches of ``batch_size * world_size``; rank r
    takes the r-th slice of each, so every rank gets the same number of equal-size batches
    and the global batch is the same whatever the number of processes. The last incomplete
    global batch is dropped.
    """

    def __init__(
        self, n: int, batch_size: int, seed: int, epoch: int, rank: int = 0, world_size: int = 1, skip: int = 0
    ) -> None:
        self.n, self.batch_size, self.seed, self.epoch = n, batch_size, seed, epoch
        self.rank, self.world_size, self.skip = rank, world_size, skip

    def steps_per_epoch(self) -> int:
        return self.n // (self.batch_size * self.world_size)

    def __len__(self) -> int:
        return max(0, self.steps_per_epoch() - self.skip)

    def __iter__(self) -> Iterator[list[int]]:
        order = epoch_order(self.n, self.seed, self.epoch)
        global_batch = self.batch_size * self.world_size
        for step in range(self.skip, self.steps_per_epoch()):
            start = step * global_batch + self.rank * self.batch_size
            yield order[start : start + self.batch_size].tolist()


def batch_loader(
    dataset: CutoutBatches, sampler: EpochBatches, workers: int, pin_memory: bool
) -> DataLoader:
    """A DataLoader over whole batches with `workers` processes prefetching ahead of the device."""
    return DataLoader(
        dataset,
        batch_size=None,
        sampler=sampler,
        num_workers=workers,
        pin_memory=pin_memory,
        prefetch_factor=4 if workers else None,
        persistent_workers=False,
    )
