"""Joining a torchrun job: the only place that reads the launcher's environment variables.

The CLI passes `os.environ` in; the library itself reads no environment.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.distributed as torch_dist

from galexplore.errors import GalexploreError
from galexplore.training.distributed import Distributed


def distributed_from_environment(env: Mapping[str, str]) -> Distributed:
    """Initialise torch.distributed when launched by torchrun (WORLD_SIZE > 1), else one process.

    nccl when CUDA is available, gloo otherwise (CPU runs and tests).
    """
    world_size = int(env.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return Distributed()
    if not torch_dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch_dist.init_process_group(backend=backend)
    return Distributed(rank=torch_dist.get_rank(), world_size=world_size, group=torch_dist.group.WORLD)


def select_device(requested: str | None, env: Mapping[str, str]) -> torch.device:
    """The device to train on: as requested, else this process's GPU (LOCAL_RANK), else the CPU."""
    if requested:
        try:
            device = torch.device(requested)
        except RuntimeError:
            raise GalexploreError(f"--device {requested!r}: expected cpu, cuda or cuda:N") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise GalexploreError(f"--device {requested}: no CUDA device is available here")
        return device
    if torch.cuda.is_available():
        local = int(env.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return torch.device("cpu")
