"""A configured sequence of augmentations, applied to whole batches, and MoCo's pair of views.

The pipeline from disk to network::

    raw fluxes (B, C, H, W), from `Survey.read`
      -> augmentations in ``augment.order``; by default
         rotate, scale, jitter_crop  (geometry: orientation, size, position; the crop comes after
                                      the warps so their corners never reach the output; one
                                      resampling of the crop's pixels, `warp_crop`)
         redden, psf_blur, noise     (physics, on fluxes, in the order light meets them; on the
                                      crop, so at crop_size^2 rather than H*W pixels)
      -> a centre crop to crop_size if the order had no jitter_crop (so the output is always
         (B, C, crop_size, crop_size): the network's input size does not depend on an ablation)
      -> `Normalization` (asinh in noise units), when the pipeline was given one.

Embedding uses no augmentation: `center_crop` then the same `Normalization`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from galexplore.augment.base import Augmentation
from galexplore.augment.geometric import AffineWarp, JitterCrop, center_crop, warp, warp_crop
from galexplore.augment.registry import augmentation_class, check_order
from galexplore.errors import ConfigError

if TYPE_CHECKING:
    from galexplore.config import AugmentConfig
    from galexplore.survey.normalize import Normalization

__all__ = ["Augmentations", "build_augmentations"]


class Augmentations:
    """Augmentations in order, then a centre crop to `crop_size`, then an optional normalisation.

    Consecutive affine warps (rotate, scale) are composed into one bilinear resampling; each
    still draws its own parameters, in order, so the generator's stream does not depend on it.
    When the warps are followed at once by jitter_crop, or end the order (then the final centre
    crop follows them), the resampling computes only the crop's pixels (`warp_crop`): the same
    numbers as warping the whole stamp and then cropping it, at a fraction of the cost. Any
    other order is applied step by step, as written.
    """

    def __init__(
        self,
        steps: Sequence[Augmentation],
        crop_size: int,
        normalization: Normalization | None = None,
    ) -> None:
        self.steps = tuple(steps)
        self.crop_size = crop_size
        self.normalization = normalization
        # a stage is one augmentation, or a run of warps with the crop that follows it (None: the
        # warps are followed by a physical step, or end the order and the final centre crop)
        self._stages: list[Augmentation | tuple[tuple[AffineWarp, ...], JitterCrop | None]] = []
        for step in self.steps:
            last = self._stages[-1] if self._stages else None
            open_run = isinstance(last, tuple) and last[1] is None
            if isinstance(step, AffineWarp) and open_run:
                self._stages[-1] = ((*last[0], step), None)
            elif isinstance(step, JitterCrop) and open_run:
                self._stages[-1] = (last[0], step)
            else:
                self._stages.append(((step,), None) if isinstance(step, AffineWarp) else step)

    @property
    def names(self) -> tuple[str, ...]:
        """The augmentation names, in order (as in ``augment.order``)."""
        return tuple(step.name for step in self.steps)

    def check_size(self, size: int) -> None:
        """ConfigError unless cutouts of side `size` can become crop_size x crop_size outputs."""
        for step in self.steps:
            size = step.output_size(size)
        if size < self.crop_size:
            raise ConfigError(
                f"augment.crop_size ({self.crop_size}) exceeds the survey's {size}x{size} cutouts"
            )

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One augmented view of each image: (B, C, H, W) -> (B, C, crop_size, crop_size)."""
        if images.ndim != 4 or not images.is_floating_point():
            raise ValueError(
                f"augmentations: expected a floating (B, C, H, W) batch, found {images.dtype} "
                f"of shape {tuple(images.shape)}"
            )
        x = images
        for i, stage in enumerate(self._stages):
            if isinstance(stage, tuple):
                x = self._geometry(x, *stage, last=i == len(self._stages) - 1, generator=generator)
            elif x is images:  # the caller's batch: never overwritten
                x = stage(x, generator)
            else:  # a batch made here (a crop, a blur): steps that can work in place do
                x = stage.apply_(x, stage.sample(x, generator))
        if min(x.shape[-2:]) < self.crop_size:
            raise ConfigError(
                f"augment.crop_size ({self.crop_size}) exceeds the {x.shape[-2]}x{x.shape[-1]} "
                f"images left after {', '.join(self.names) or 'no augmentation'}"
            )
        if x.shape[-2:] != (self.crop_size, self.crop_size):
            x = center_crop(x, self.crop_size)
        return self.normalization(x) if self.normalization is not None else x

    def _geometry(
        self,
        images: torch.Tensor,
        warps: tuple[AffineWarp, ...],
        jitter: JitterCrop | None,
        *,
        last: bool,
        generator: torch.Generator,
    ) -> torch.Tensor:
        """A run of warps, composed, then `jitter` (or, when `last`, the final centre crop)."""
        matrix = None  # (B, 2, 2): output -> input; x_out(p) = x(A1 A2 ... p)
        for step in warps:
            m = step.matrix(step.sample(images, generator))
            matrix = m if matrix is None else matrix @ m
        h, w = images.shape[-2:]
        if jitter is not None:
            jitter.check_size(h, w)
            shift, size = jitter.sample(images, generator)["shift"], jitter.crop_size
        elif last and min(h, w) >= self.crop_size:
            shift, size = torch.zeros(images.shape[0], 2, dtype=torch.int64), self.crop_size
        else:
            return warp(images, matrix)
        return warp_crop(images, matrix, size, shift)

    def view_pair(
        self, images: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Two independently augmented views of the same batch (MoCo's query and key), each
        (B, C, crop_size, crop_size)."""
        return self(images, generator), self(images, generator)

    def __repr__(self) -> str:
        steps = ", ".join(map(repr, self.steps))
        return f"Augmentations([{steps}], crop_size={self.crop_size})"


def build_augmentations(
    cfg: AugmentConfig,
    bands: Sequence[str],
    noise_levels: Sequence[float],
    *,
    image_size: int | None = None,
    normalization: Normalization | None = None,
) -> Augmentations:
    """The pipeline that ``[augment]`` describes, for a survey with `bands`.

    noise_levels: each band's sky noise (C,), in flux units (`estimate_noise`, or
    ``Normalization.noise``). image_size: the survey's cutout side, when known, checked now
    (otherwise at the first batch). Raises `ConfigError` for a config that does not fit the survey.
    """
    problem = check_order(tuple(cfg.order))
    if problem:
        raise ConfigError(problem)
    if "redden" in cfg.order and len(cfg.extinction) != len(bands):
        raise ConfigError(
            f"augment.extinction has {len(cfg.extinction)} values but the survey has "
            f"{len(bands)} bands ({', '.join(bands)}); expected one R_b per band"
        )
    levels = [float(v) for v in noise_levels]
    if len(levels) != len(bands):
        raise ValueError(f"build_augmentations: {len(levels)} noise levels for {len(bands)} bands")
    steps = [augmentation_class(name).from_config(cfg, bands, levels) for name in cfg.order]
    pipeline = Augmentations(steps, cfg.crop_size, normalization)
    if image_size:
        pipeline.check_size(image_size)
    return pipeline
