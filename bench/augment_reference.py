"""The anchor for augmentation: one cutout at a time on the CPU, as the original papers augment.

Hayat et al. 2021 (arXiv 2012.13083) and Stein et al. 2021 (georgestein/ssl-legacysurvey,
`decals_augmentations.py`) transform each cutout on its own in DataLoader workers: a rotation,
a jittered crop, Galactic reddening, Gaussian blur and Gaussian noise, with scikit-image and
numpy. scikit-image is not among this project's requirements (nor installed here), so this
version uses scipy.ndimage, which scikit-image's Gaussian filter calls itself.

Written to be fast rather than literal, so the comparison is not against a straw man: the
geometric steps (rotation, mirror, rescaling, jittered crop) are one bilinear resampling per
band that computes only the crop's pixels (`scipy.ndimage.affine_transform` with an output
shape), where the originals rotate the whole stamp and then crop it; the physical steps then
act on the crop, in ``augment.order``, as `galexplore.augment` does. The parameter ranges are the
config's, so the two pipelines draw from the same distributions (not the same numbers).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

if TYPE_CHECKING:
    from galexplore.config import AugmentConfig
    from galexplore.survey.normalize import Normalization

GEOMETRIC = ("rotate", "scale", "jitter_crop")
PHYSICAL = ("redden", "psf_blur", "noise")
BLUR_TRUNCATE = 4.0  # kernel half-width in sigmas, as galexplore.augment.PsfBlur


@dataclass(frozen=True)
class ReferenceAugment:
    """The [augment] list applied to one cutout (C, H, W) at a time, with numpy and scipy.ndimage."""

    order: tuple[str, ...]
    crop_size: int
    jitter: int
    scale_range: tuple[float, float]
    extinction: tuple[float, ...]  # R_b per band
    ebv_range: tuple[float, float]
    psf_sigma: tuple[float, float]  # pixels
    noise_scale: tuple[float, float]  # in units of each band's noise
    noise_levels: tuple[float, ...]  # each band's sky noise, flux units
    normalization: Normalization | None = None

    def __post_init__(self) -> None:
        unknown = [name for name in self.order if name not in GEOMETRIC + PHYSICAL]
        if unknown:
            raise ValueError(f"reference augmentations: unknown names {unknown}")
        physical_at = [i for i, name in enumerate(self.order) if name in PHYSICAL]
        if physical_at and any(name in GEOMETRIC for name in self.order[physical_at[0]:]):
            raise ValueError(f"reference augmentations: geometry must come before physics, found {self.order}")

    @classmethod
    def from_config(
        cls, cfg: AugmentConfig, noise_levels: Sequence[float], normalization: Normalization | None = None
    ) -> ReferenceAugment:
        return cls(
            order=tuple(cfg.order), crop_size=cfg.crop_size, jitter=cfg.jitter,
            scale_range=_pair(cfg.scale_range), extinction=tuple(float(r) for r in cfg.extinction),
            ebv_range=_pair(cfg.ebv_range), psf_sigma=_pair(cfg.psf_sigma), noise_scale=_pair(cfg.noise_scale),
            noise_levels=tuple(float(v) for v in noise_levels), normalization=normalization,
        )

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One augmented view (C, crop, crop) float32 of one cutout (C, H, W)."""
        out = self._geometry(np.asarray(image, dtype=np.float32), rng)  # (C, crop, crop)
        for name in self.order:
            if name == "redden":
                ebv = rng.uniform(*self.ebv_range)
                out *= (10.0 ** (-0.4 * np.asarray(self.extinction) * ebv)).astype(np.float32)[:, None, None]
            elif name == "psf_blur":
                sigma = rng.uniform(*self.psf_sigma)
                if sigma > 0:
                    out = ndimage.gaussian_filter(out, (0, sigma, sigma), mode="reflect", truncate=BLUR_TRUNCATE)
            elif name == "noise":
                sigma = rng.uniform(*self.noise_scale) * np.asarray(self.noise_levels, dtype=np.float32)  # (C,)
                out += rng.standard_normal(out.shape, dtype=np.float32) * sigma[:, None, None]
        return self.normalization(out) if self.normalization is not None else out

    def batch(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Each cutout of (B, C, H, W) on its own: (B, C, crop, crop) float32."""
        return np.stack([self(image, rng) for image in images])

    def _geometry(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Rotation, mirror, rescaling and the (jittered) crop as one resampling of the crop's pixels."""
        c, h, w = image.shape
        size = self.crop_size
        matrix = np.eye(2)  # output -> input map of (row, col) offsets from the stamp centre
        if "rotate" in self.order:
            theta = math.radians(rng.uniform(0.0, 360.0))
            mirror = np.diag([1.0, -1.0 if rng.random() < 0.5 else 1.0])
            matrix = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]]) @ mirror
        if "scale" in self.order:
            matrix = matrix / rng.uniform(*self.scale_range)
        shift = rng.integers(-self.jitter, self.jitter + 1, 2) if "jitter_crop" in self.order else np.zeros(2, int)
        top_left = np.array([(h - size) // 2, (w - size) // 2]) + shift
        if np.array_equal(matrix, np.eye(2)):
            return image[:, top_left[0] : top_left[0] + size, top_left[1] : top_left[1] + size].copy()
        centre = np.array([(h - 1) / 2, (w - 1) / 2])
        offset = centre + matrix @ (top_left - centre)  # input position of the crop's pixel (0, 0)
        out = np.empty((c, size, size), dtype=np.float32)
        for band in range(c):
            ndimage.affine_transform(image[band], matrix, offset, output_shape=(size, size), output=out[band],
                                     order=1, mode="reflect")
        return out


def _pair(values: Sequence[float]) -> tuple[float, float]:
    return float(values[0]), float(values[1])
