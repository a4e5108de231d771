"""Geometric augmentations: what the sky does not fix (orientation, size, position in the stamp).

- `Rotate`: any angle in [0, 360) degrees and a mirror flip with probability 1/2 (a rotation and
  one mirror reach every orientation, so a second flip axis would add nothing);
- `Scale`: apparent size times a factor around the stamp centre;
- `JitterCrop`: a crop of ``crop_size`` around a centre shifted by up to ``jitter`` pixels.

`Rotate` and `Scale` are affine warps: bilinear resampling (``grid_sample``) with reflection at
the border, which continues the sky rather than inventing a black corner. Consecutive warps in a
pipeline are composed into one resampling (`galexplore.augment.pipeline.Augmentations`), so noise
is interpolated once, not once per warp. Cropping is pure indexing: no interpolation at all.

Warps followed by the crop are one step, `warp_crop`: the composed map is evaluated at the crop's
pixels only (crop_size^2 rather than H*W of them: 64^2 of 107^2 for SDSS, 2.8x fewer), with the
same numbers as `warp` then `crop` up to float32 rounding of the sample positions.
"""

from __future__ import annotations

import abc

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from galexplore.augment.base import Augmentation, Params, uniform
from galexplore.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from galexplore.config import AugmentConfig

__all__ = ["AffineWarp", "JitterCrop", "Rotate", "Scale", "center_crop", "crop", "warp", "warp_crop"]


def warp(images: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """Resample each image at ``matrix[b] @ p`` for every output pixel p (offsets from the centre).

    images: (B, C, H, W); matrix: (B, 2, 2), acting on (x, y) pixel offsets from the stamp centre,
    output -> input. Bilinear, reflection padding. Returns (B, C, H, W).
    """
    b, c, h, w = images.shape
    a = matrix.to(dtype=images.dtype, device=images.device)
    # grid_sample works in coordinates normalised to [-1, 1] per axis; convert the pixel-space
    # matrix so a non-square stamp is not sheared: theta = D^-1 A D, D = diag(W/2, H/2).
    theta = torch.zeros(b, 2, 3, dtype=images.dtype, device=images.device)  # (B, 2, 3)
    theta[:, 0, 0] = a[:, 0, 0]
    theta[:, 0, 1] = a[:, 0, 1] * (h / w)
    theta[:, 1, 0] = a[:, 1, 0] * (w / h)
    theta[:, 1, 1] = a[:, 1, 1]
    grid = F.affine_grid(theta, [b, c, h, w], align_corners=False)  # (B, H, W, 2)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def warp_crop(images: torch.Tensor, matrix: torch.Tensor, size: int, shift: torch.Tensor) -> torch.Tensor:
    """``crop(warp(images, matrix), size, shift)``, resampling only the crop's pixels.

    images: (B, C, H, W); matrix: (B, 2, 2) as in `warp`; shift: (B, 2) integers (dy, dx) as in
    `crop`. Returns (B, C, size, size). A batch of identity matrices is pure indexing (`crop`).
    """
    b, c, h, w = images.shape
    if b and torch.equal(matrix, torch.eye(2, dtype=matrix.dtype, device=matrix.device).expand_as(matrix)):
        return crop(images, size, shift)
    top = (h - size) // 2 + shift[:, 0].to(images.device, torch.int64)  # (B,), as `crop` takes it
    left = (w - size) // 2 + shift[:, 1].to(images.device, torch.int64)
    if b and (top.min() < 0 or left.min() < 0 or top.max() + size > h or left.max() + size > w):
        raise ValueError(f"warp_crop: a {size}x{size} crop shifted by {shift.tolist()} leaves the {h}x{w} image")
    a = matrix.to(dtype=torch.float64, device=images.device)  # (B, 2, 2)
    # offsets (x, y) from the stamp centre of the crop's pixel (0, 0)
    y0 = top.to(torch.float64) - (h - 1) / 2  # (B,)
    x0 = left.to(torch.float64) - (w - 1) / 2
    # crop pixel (i, j) has offset (x0 + j, y0 + i) and samples the input at A @ that offset;
    # grid_sample's coordinates (align_corners=False) are offsets times 2 / W (x) and 2 / H (y)
    norm = torch.tensor([2.0 / w, 2.0 / h], dtype=torch.float64, device=images.device)[None, :, None]
    origin = norm[..., 0] * (a[:, :, 0] * x0[:, None] + a[:, :, 1] * y0[:, None])  # (B, 2)
    along_j, along_i = norm * a[:, :, 0:1], norm * a[:, :, 1:2]  # (B, 2, 1) per column, per row
    steps = torch.arange(size, dtype=torch.float64, device=images.device)  # (size,)
    rows = (origin[:, :, None] + along_i * steps).to(images.dtype)  # (B, 2, size): i's share
    cols = (along_j * steps).to(images.dtype)  # (B, 2, size): j's share
    grid = torch.empty(b, size, size, 2, dtype=images.dtype, device=images.device)  # (B, size, size, 2)
    for axis in range(2):  # grid[b, i, j, axis] = rows[b, axis, i] + cols[b, axis, j]
        torch.add(rows[:, axis, :, None], cols[:, axis, None, :], out=grid[..., axis])
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


class AffineWarp(Augmentation):
    """An augmentation that is a per-sample linear map of pixel positions around the centre."""

    @abc.abstractmethod
    def matrix(self, params: Params) -> torch.Tensor:
        """The output -> input map of pixel offsets, float64 (B, 2, 2)."""

    def apply(self, images: torch.Tensor, params: Params) -> torch.Tensor:
        return warp(images, self.matrix(params))


class Rotate(AffineWarp):
    """Rotation by a uniform angle in [0, 360) degrees, then a left-right mirror with p = 1/2.

    params: ``angle`` (B,) degrees, counter-clockwise on a display with the origin at the bottom
    left (``torch.rot90(x, 1, dims=(-2, -1))`` is the angle 90); ``flip`` (B,) bool.
    """

    name = "rotate"

    @classmethod
    def from_config(cls, cfg: AugmentConfig, bands: Sequence[str], noise_levels: Sequence[float]) -> Rotate:
        return cls()

    def sample(self, images: torch.Tensor, generator: torch.Generator) -> Params:
        angle = uniform(0.0, 360.0, images, generator).to(torch.float64)
        flip = torch.rand(images.shape[0], generator=generator, device=generator.device) < 0.5
        return {"angle": angle, "flip": flip.to(images.device)}

    def matrix(self, params: Params) -> torch.Tensor:
        theta = torch.deg2rad(params["angle"].to(torch.float64))  # (B,)
        cos, sin = torch.cos(theta), torch.sin(theta)
        mirror = 1.0 - 2.0 * params["flip"].to(torch.float64)  # -1 flips x
        # R(theta) @ diag(mirror, 1): mirror first, then rotate
        return torch.stack([torch.stack([cos * mirror, -sin], -1), torch.stack([sin * mirror, cos], -1)], -2)


class Scale(AffineWarp):
    """Apparent size times a factor s ~ U(scale_range) around the stamp centre.

    Surface brightness is conserved: pixel values are resampled, not rescaled, so the total flux
    of a source changes by s^2. This is the same galaxy at a distance 1/s times the original
    (surface brightness does not depend on distance, cosmological dimming aside), and it leaves
    the sky noise per pixel unchanged, which a flux-conserving rescale (values / s^2) would not.
    params: ``factor`` (B,), > 1 enlarges.
    """

    name = "scale"

    def __init__(self, scale_range: tuple[float, float] = (0.9, 1.1)) -> None:
        if not 0 < scale_range[0] <= scale_range[1]:
            raise ValueError(f"scale: expected 0 < low <= high, found {scale_range}")
        self.scale_range = scale_range

    @classmethod
    def from_config(cls, cfg: AugmentConfig, bands: Sequence[str], noise_levels: Sequence[float]) -> Scale:
        return cls((cfg.scale_range[0], cfg.scale_range[1]))

    def sample(self, images: torch.Tensor, generator: torch.Generator) -> Params:
        return {"factor": uniform(*self.scale_range, images, generator).to(torch.float64)}

    def matrix(self, params: Params) -> torch.Tensor:
        inverse = 1.0 / params["factor"].to(torch.float64)  # (B,)
        return torch.diag_embed(torch.stack([inverse, inverse], -1))  # (B, 2, 2)

    def __repr__(self) -> str:
        return f"Scale(scale_range={self.scale_range})"


def crop(images: torch.Tensor, size: int, shift: torch.Tensor) -> torch.Tensor:
    """Square crops of side `size`, each centred `shift[b] = (dy, dx)` pixels off the stamp centre.

    images: (B, C, H, W); shift: (B, 2) integers. Returns (B, C, size, size), by indexing (one
    gather, no interpolation). The unshifted crop starts at ((H - size) // 2, (W - size) // 2).
    """
    b, c, h, w = images.shape
    top = (h - size) // 2 + shift[:, 0].to(images.device, torch.int64)  # (B,)
    left = (w - size) // 2 + shift[:, 1].to(images.device, torch.int64)
    if b and (top.min() < 0 or left.min() < 0 or top.max() + size > h or left.max() + size > w):
        raise ValueError(f"crop: a {size}x{size} crop shifted by {shift.tolist()} leaves the {h}x{w} image")
    offsets = torch.arange(size, device=images.device)
    rows = top[:, None] + offsets  # (B, size)
    cols = left[:, None] + offsets
    flat = (rows[:, :, None] * w + cols[:, None, :]).reshape(b, 1, size * size)  # (B, 1, size^2)
    out = images.reshape(b, c, h * w).gather(2, flat.expand(b, c, size * size))
    return out.reshape(b, c, size, size)


def center_crop(images: torch.Tensor, size: int) -> torch.Tensor:
    """The central size x size crop of (B, C, H, W) (what embedding uses): (B, C, size, size)."""
    return crop(images, size, torch.zeros(images.shape[0], 2, dtype=torch.int64))


class JitterCrop(Augmentation):
    """A crop_size crop around the centre shifted by integers in [-jitter, jitter] per axis.

    SDSS (Hayat et al. 2021): 64x64 from 107x107 with shifts up to 7 pixels. The image must hold
    ``crop_size + 2 * jitter`` pixels per side. params: ``shift`` (B, 2) int64, (dy, dx).
    """

    name = "jitter_crop"

    def __init__(self, crop_size: int, jitter: int) -> None:
        self.crop_size, self.jitter = crop_size, jitter

    @classmethod
    def from_config(
        cls, cfg: AugmentConfig, bands: Sequence[str], noise_levels: Sequence[float]
    ) -> JitterCrop:
        return cls(cfg.crop_size, cfg.jitter)

    def check_size(self, height: int, width: int) -> None:
        """ConfigError unless a jittered crop fits an image of height x width pixels."""
        need = self.crop_size + 2 * self.jitter
        if need > min(height, width):
            raise ConfigError(
                f"augment.crop_size ({self.crop_size}) + 2 * augment.jitter ({self.jitter}) = {need} "
                f"pixels do not fit the survey's {height}x{width} cutouts; lower crop_size or jitter"
            )

    def output_size(self, size: int) -> int:
        self.check_size(size, size)
        return self.crop_size

    def sample(self, images: torch.Tensor, generator: torch.Generator) -> Params:
        j = self.jitter
        b = images.shape[0]
        shift = torch.randint(-j, j + 1, (b, 2), generator=generator, device=generator.device)
        return {"shift": shift.to(images.device)}

    def apply(self, images: torch.Tensor, params: Params) -> torch.Tensor:
        self.check_size(images.shape[-2], images.shape[-1])
        return crop(images, self.crop_size, params["shift"])

    def __repr__(self) -> str:
        return f"JitterCrop(crop_size={self.crop_size}, jitter={self.jitter})"
