"""Survey-aware augmentations for contrastive (MoCo v2) training, on whole batches.

After Hayat et al. 2021 (arXiv 2012.13083: rotation, jittered crop, Gaussian noise, Galactic
reddening) and Stein et al. 2021 (arXiv 2101.04293: plus PSF blur, noise fitted to the survey).
Each augmentation has a name used in ``augment.order``, so an ablation is a config change:

    ==============  ====================================================  =================
    name            what                                                  module
    ==============  ====================================================  =================
    rotate          any angle in [0, 360) and a mirror flip               geometric
    scale           apparent size x U(scale_range), surface brightness    geometric
    jitter_crop     crop_size crop, centre shifted <= jitter pixels       geometric
    redden          fluxes x 10^(-0.4 R_b dE(B-V)), dE ~ U(ebv_range)     physical
    psf_blur        Gaussian of U(psf_sigma) pixels, flux-conserving      physical
    noise           Gaussian, sigma = U(noise_scale) x band noise level   physical
    ==============  ====================================================  =================

`build_augmentations(cfg, bands, noise_levels)` makes the pipeline (see `pipeline` for the order
from raw fluxes to normalised crops); `galexplore.survey.normalize.estimate_noise(survey)` measures
the noise levels.

Only the name registry is imported eagerly (it is torch-free, so checking a config stays
instant); everything else is imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from galexplore.augment.registry import AUGMENTATION_NAMES, augmentation_class, check_order

if TYPE_CHECKING:
    from galexplore.augment.base import Augmentation, Params
    from galexplore.augment.geometric import JitterCrop, Rotate, Scale, center_crop, crop, warp, warp_crop
    from galexplore.augment.physical import Noise, PsfBlur, Redden, gaussian_blur
    from galexplore.augment.pipeline import Augmentations, build_augmentations

_LAZY = {
    "Augmentation": "galexplore.augment.base",
    "Params": "galexplore.augment.base",
    "JitterCrop": "galexplore.augment.geometric",
    "Rotate": "galexplore.augment.geometric",
    "Scale": "galexplore.augment.geometric",
    "center_crop": "galexplore.augment.geometric",
    "crop": "galexplore.augment.geometric",
    "warp": "galexplore.augment.geometric",
    "warp_crop": "galexplore.augment.geometric",
    "Noise": "galexplore.augment.physical",
    "PsfBlur": "galexplore.augment.physical",
    "Redden": "galexplore.augment.physical",
    "gaussian_blur": "galexplore.augment.physical",
    "Augmentations": "galexplore.augment.pipeline",
    "build_augmentations": "galexplore.augment.pipeline",
}

__all__ = ["AUGMENTATION_NAMES", "augmentation_class", "check_order", *_LAZY]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'galexplore.augment' has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)


def __dir__() -> list[str]:
    return sorted(__all__)
