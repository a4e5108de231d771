"""The `Augmentation` interface: a random transform of a whole batch, drawn from a generator.

An augmentation splits into `sample` (draw the per-sample parameters: angles, shifts, E(B-V),
widths, noise) and `apply` (transform the batch with given parameters), so that a test or a
figure can fix the parameters and check the transform against a closed form. Calling it does
both. Parameters are drawn on the generator's device and moved to the batch's device: pass a
generator on the training device (``torch.Generator(device="cuda")``) so that large draws (the
noise field) are made there. The same seed on the same device gives the same batch.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, ClassVar

import torch

if TYPE_CHECKING:
    from collections.abc import Sequence

    from galexplore.config import AugmentConfig

__all__ = ["Augmentation", "Params", "uniform"]

#: per-sample parameters of one draw, each a tensor with the batch on its first axis
Params = dict[str, torch.Tensor]


class Augmentation(abc.ABC):
    """A random, batched transform of images (B, C, H, W) -> (B, C, H', W')."""

    #: the name used in ``augment.order``
    name: ClassVar[str]

    @classmethod
    @abc.abstractmethod
    def from_config(
        cls, cfg: AugmentConfig, bands: Sequence[str], noise_levels: Sequence[float]
    ) -> Augmentation:
        """Build from the [augment] config, the survey's band names and per-band noise (C,)."""

    @abc.abstractmethod
    def sample(self, images: torch.Tensor, generator: torch.Generator) -> Params:
        """Draw this transform's parameters for the batch `images` (B, C, H, W)."""

    @abc.abstractmethod
    def apply(self, images: torch.Tensor, params: Params) -> torch.Tensor:
        """Transform `images` (B, C, H, W) with drawn `params`."""

    def apply_(self, images: torch.Tensor, params: Params) -> torch.Tensor:
        """`apply`, free to overwrite `images` (a batch the caller owns and will not read again).

        The pipeline's path for the steps after the crop: a step that can work in place saves a
        batch-sized allocation (page faults included, a few ms each on a CPU). By default, `apply`.
        """
        return self.apply(images, params)

    def output_size(self, size: int) -> int:
        """Side of the output for a square input of side `size` (most keep it)."""
        return size

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Draw parameters and transform: (B, C, H, W) -> (B, C, H', W')."""
        return self.apply(images, self.sample(images, generator))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def uniform(
    low: float, high: float, images: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """One draw per sample, uniform in [low, high): (B,), on the images' device and dtype."""
    u = torch.rand(images.shape[0], generator=generator, device=generator.device, dtype=torch.float64)
    return (low + (high - low) * u).to(device=images.device, dtype=images.dtype)


def check_bands(images: torch.Tensor, n_bands: int, name: str) -> None:
    """Raise ValueError unless `images` is a (B, n_bands, H, W) floating tensor."""
    if images.ndim != 4 or images.shape[1] != n_bands or not images.is_floating_point():
        raise ValueError(
            f"{name}: expected a floating (B, {n_bands}, H, W) batch, found "
            f"{images.dtype} of shape {tuple(images.shape)}"
        )
