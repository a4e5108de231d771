"""The InfoNCE loss of MoCo (He et al. 2020, eq. 1): a positive key against a queue of negatives."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["info_nce"]


def info_nce(q: Tensor, k: Tensor, queue: Tensor, temperature: float) -> tuple[Tensor, Tensor]:
    """InfoNCE of queries against their positive keys and a queue of negatives.

    q: (N, C) queries and k: (N, C) their positive keys, queue: (K, C) negatives, all
    L2-normalised, so every logit is a cosine similarity divided by `temperature`. The positive is
    column 0 of the logits, so the target class of every row is 0.

    Returns the mean cross-entropy loss (a scalar) and the logits, (N, 1+K).
    """
    if q.ndim != 2 or k.shape != q.shape or queue.ndim != 2 or queue.shape[1] != q.shape[1]:
        raise ValueError(
            f"expected q (N, C), k (N, C) and queue (K, C); found q {tuple(q.shape)}, "
            f"k {tuple(k.shape)}, queue {tuple(queue.shape)}"
        )
    l_pos = (q * k).sum(dim=1, keepdim=True)  # l_pos: Nx1
    l_neg = q @ queue.T  # l_neg: NxK
    logits = torch.cat([l_pos, l_neg], dim=1) / temperature  # logits: Nx(1+K)
    labels = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)  # labels: N, positives at 0
    return F.cross_entropy(logits, labels), logits
