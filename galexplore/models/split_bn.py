"""Ghost batch norm: batch statistics from sub-batches, with one convolution pass over the batch.

MoCo's defence against batch-norm leakage on one device normalises sub-batches separately
(see `galexplore.models.moco`). Running the network once per sub-batch would make every
convolution work on a small batch; instead each BatchNorm layer folds the sub-batches into the
channel axis, (N, C, H, W) -> (N/S, S*C, H, W), so one `batch_norm` call normalises each
sub-batch's channels with that sub-batch's own statistics.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


def effective_splits(n: int, splits: int) -> int:
    """The largest number of equal sub-batches <= `splits` of at least 2 samples each (1 if none).

    >>> effective_splits(64, 8), effective_splits(6, 8), effective_splits(2, 8), effective_splits(7, 4)
    (8, 3, 1, 1)
    """
    for s in range(min(splits, n // 2), 1, -1):
        if n % s == 0:
            return s
    return 1


class SplitBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics come from `splits` contiguous sub-batches separately.

    In eval mode, or with splits = 1, it is exactly nn.BatchNorm2d; its state dict has the same
    keys, so weights move freely between the two. Running statistics are the average over the
    sub-batches.
    """

    def __init__(self, num_features: int, splits: int = 1, **kwargs) -> None:
        super().__init__(num_features, **kwargs)
        self.splits = splits

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        s = effective_splits(n, self.splits)
        if not self.training or s == 1:
            return super().forward(x)
        # x: NxCxHxW -> (N/S)x(S*C)xHxW, sub-batch j's channel i at channel j*C + i
        folded = x.reshape(s, n // s, c, h, w).transpose(0, 1).reshape(n // s, s * c, h, w)
        running_mean = self.running_mean.repeat(s)  # (S*C,)
        running_var = self.running_var.repeat(s)
        out = F.batch_norm(
            folded, running_mean, running_var, self.weight.repeat(s), self.bias.repeat(s),
            True, self.momentum, self.eps,
        )
        self.running_mean.copy_(running_mean.view(s, c).mean(dim=0))
        self.running_var.copy_(running_var.view(s, c).mean(dim=0))
        self.num_batches_tracked.add_(1)
        return out.reshape(n // s, s, c, h, w).transpose(0, 1).reshape(n, c, h, w)


def split_batch_norm(module: nn.Module, splits: int) -> nn.Module:
    """Replace every BatchNorm2d in `module` by a SplitBatchNorm2d with `splits`, keeping its state.

    Like torch.nn.SyncBatchNorm.convert_sync_batchnorm, returns the converted module.
    """
    if isinstance(module, nn.BatchNorm2d):
        if isinstance(module, SplitBatchNorm2d):
            module.splits = splits
            return module
        new = SplitBatchNorm2d(
            module.num_features, splits, eps=module.eps, momentum=module.momentum,
            affine=module.affine, track_running_stats=module.track_running_stats,
        )
        new.load_state_dict(module.state_dict())
        return new.to(module.weight.device if module.affine else module.running_mean.device)
    for name, child in module.named_children():
        setattr(module, name, split_batch_norm(child, splits))
    return module
