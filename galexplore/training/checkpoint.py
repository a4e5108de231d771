"""Training checkpoints: everything needed to continue a run exactly, in one atomic file.

A checkpoint holds the model (query and key encoders and the queue, as buffers), the optimiser,
the step, the RNG states and the resolved config as TOML text. It is written to a temporary
name and renamed into place, and loads with ``torch.load(..., weights_only=True)``: tensors,
numbers, strings, lists and dicts only, so a shared checkpoint can never run code.
"""

from __future__ import annotations

import pickle
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from galexplore.errors import GalexploreError
from galexplore.io import atomic_path

CHECKPOINT_GLOB = "step-*.pt"
_STEP = re.compile(r"step-(\d+)\.pt$")
_UNSUPPORTED = re.compile(r"(Unsupported global: GLOBAL \S+)")  # in torch's weights_only refusal


def checkpoint_path(folder: Path, step: int) -> Path:
    """The checkpoint file for `step` in `folder`."""
    return Path(folder) / f"step-{step:08d}.pt"


def latest_checkpoint(folder: Path) -> Path | None:
    """The checkpoint with the highest step in `folder`, or None."""
    found = [(int(m.group(1)), p) for p in Path(folder).glob(CHECKPOINT_GLOB) if (m := _STEP.search(p.name))]
    return max(found)[1] if found else None


def rng_state() -> dict[str, Any]:
    """The global RNG states (torch CPU and CUDA, numpy, Python) as weights_only-safe data."""
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *map(float, np_state[2:])],
        "python": _python_state_to_list(random.getstate()),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what `rng_state` saved."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), int(pos), int(has_gauss), float(gauss)))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))


def _python_state_to_list(state: tuple) -> list:
    version, internal, gauss_next = state
    return [version, list(internal), gauss_next]


def save_checkpoint(path: Path, payload: dict[str, Any]) -> Path:
    """Write `payload` (tensors and plain data) to `path` atomically."""
    # through a file object: given a path, torch names the archive's records after the file, and
    # the temporary's random name would make every save of the same payload different bytes
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(payload, f)
    return Path(path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint`, refusing anything but plain data."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise GalexploreError(f"{path}: checkpoint not found") from None
    except pickle.UnpicklingError as exc:
        # weights_only refused a global: the file would run code or build objects when unpickled
        found = _UNSUPPORTED.search(str(exc))
        what = found.group(1) if found else str(exc).strip().splitlines()[0]
        raise GalexploreError(
            f"{path}: refused: the file holds Python objects beyond tensors and plain data ({what}); "
            f"galexplore loads checkpoints with weights_only=True and never runs code from them"
        ) from None
    except (RuntimeError, EOFError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GalexploreError(f"{path}: not a readable galexplore checkpoint ({first})") from None
    if not isinstance(state, dict):
        raise GalexploreError(
            f"{path}: not a galexplore checkpoint: it holds a {type(state).__name__}; expected the "
            f"dictionary of weights and settings that `galexplore train` writes"
        )
    return state
