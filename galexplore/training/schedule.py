"""Learning-rate schedule: linear warm-up, then cosine decay to zero (Chen et al. 2020, MoCo v2)."""

from __future__ import annotations

import math


def cosine_lr(step: int, total_steps: int, base_lr: float, warmup_steps: int) -> float:
    """The learning rate at optimiser step `step` (0-based) of `total_steps`.

    >>> cosine_lr(0, 100, 0.1, 10)
    0.01
    >>> round(cosine_lr(10, 100, 0.1, 10), 6)
    0.1
    >>> cosine_lr(100, 100, 0.1, 10)
    0.0
    """
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return 0.5 * base_lr * (1.0 + math.cos(math.pi * progress))
