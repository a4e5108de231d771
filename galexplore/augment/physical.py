"""Physical augmentations: what changes between two observations of the same galaxy.

They act on fluxes, before normalisation, in the order light meets them:

- `Redden`: Galactic dust, fluxes times 10^(-0.4 R_b dE(B-V)) per band b;
- `PsfBlur`: worse seeing, a Gaussian of extra width (pixels) convolved with the stamp;
- `Noise`: a noisier exposure, Gaussian noise of sigma = s * noise_b added to band b.

Per-sample draws: dE(B-V), blur width and noise multiple s are each one number per galaxy,
shared by its bands (dust and seeing affect all bands of one observation together).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from galexplore.augment.base import Augmentation, Params, check_bands, uniform

if TYPE_CHECKING:
    from collections.abc import Sequence

    from galexplore.config import AugmentConfig

__all__ = ["Noise", "PsfBlur", "Redden", "discrete_gaussian", "gaussian_blur"]

_MIN_SIGMA = 1e-6  # pixels; narrower kernels are a delta (avoids log(0) at sigma = 0)


class Redden(Augmentation):
    """Galactic reddening: band b times 10^(-0.4 R_b ebv), ebv ~ U(ebv_range) per galaxy.

    `extinction`: R_b = A_b / E(B-V) per band (SDSS ugriz: `galexplore.config.SDSS_EXTINCTION`).
    params: ``ebv`` (B,), the drawn dE(B-V) in magnitudes.
    """

    name = "redden"

    def __init__(self, extinction: Sequence[float], ebv_range: tuple[float, float] = (0.0, 0.5)) -> None:
        self.extinction = tuple(float(r) for r in extinction)
        self.ebv_range = ebv_range

    @classmethod
    def from_config(cls, cfg: AugmentConfig, bands: Sequence[str], noise_levels: Sequence[float]) -> Redden:
        return cls(cfg.extinction, (cfg.ebv_range[0], cfg.ebv_range[1]))

    def sample(self, images: torch.Tensor, generator: torch.Generator) -> Params:
        return {"ebv": uniform(*self.ebv_range, images, generator)}

    def factors(self, ebv: torch.Tensor) -> torch.Tensor:
        """Flux factors 10^(-0.4 R_b ebv), float64 (B, C), for ebv (B,)."""
        r = torch.tensor(self.extinction, dtype=torch.float64, device=ebv.device)  # (C,)
        return 10.0 ** (-0.4 * r[None, :] * ebv.to(torch.float64)[:, None])

    def apply(self, images: torch.Tensor, params: Params) -> torch.Tensor:
        return self.apply_(images.clone(), params)

    def apply_(self, images: torch.Tensor, params: Params) -> torch.Tensor:
        check_bands(images, len(self.extinction), self.name)
        factor = self.factors(params["ebv"]).to(images.dtype)  # (B, C)
        return images.mul_(factor[:, :, None, None])

    def __repr__(self) -> str:
        return f"Redden(extinction={self.extinction}, ebv_range={self.ebv_range})"


def discrete_gaussian(sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """Discrete Gaussian kernels T(n) = exp(-t) I_n(t), t = sigma^2, n = -radius..radius: (B, 2r+1).

    Lindeberg's (1990) discrete analogue of the Gaussian: its variance is exactly sigma^2 for any
    width, also below a pixel where a sampled exp(-n^2 / 2 sigma^2) is too narrow (a sampled
    Gaussian of sigma 0.5 has variance 0.21, not 0.25), and widths add in quadrature under
    convolution. Normalised to sum 1 after truncation. sigma: (B,) pixels, float64.
    """
    t = sigma.to(torch.float64).clamp_min(_MIN_SIGMA)[:, None, None] ** 2  # (B, 1, 1)
    n = torch.arange(-radius, radius + 1, device=sigma.device).abs().to(torch.float64)[None, :, None]
    k = torch.arange(math.ceil(2 * float(t.max()) + 30), device=sigma.device, dtype=torch.float64)
    k = k[None, None, :]  # series I_n(t) = sum_k (t/2)^(2k+n) / (k! (k+n)!), summed in logs
    log_terms = (2 * k + n) * torch.log(t / 2) - torch.lgamma(k + 1) - torch.lgamma(k + n + 1) - t
    kernel = torch.exp(log_terms).sum(-1)  # (B, 2r+1)
    return kernel / kernel.sum(1, keepdim=True)


def gaussian_blur(images: torch.Tensor, sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """Convolve each image with a normalised (discrete) Gaussian of its own width, all bands alike.

    images: (B, C, H, W); sigma: (B,) pixels; kernels are (2 radius + 1) wide, separable, and sum
    to 1. The stamp is padded by reflection, so the total flux of a source well inside the stamp
    is conserved and the sky at the border is not darkened. Returns (B, C, H, W).
    """
    b, c, h, w = images.shape
    if radius >= min(h, w):
        raise ValueError(f"psf_blur: a kernel radius of {radius} pixels needs a stamp wider than {h}x{w}")
    if radius == 0:
        return images
    kernel = discrete_gaussian(sigma.to(images.device), radius)  # (B, K)
    kernel = kernel.to(images.dtype).repeat_interleave(c, 0)  # (B*C, K)
    k = 2 * radius + 1
    # one group per (image, band): a per-sample kernel in a single grouped convolution
    x = F.pad(images.reshape(1, b * c, h, w), (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, kernel.view(b * c, 1, k, 1), groups=b * c)  # (1, B*C, H, W + 2r)
    x = F.conv2d(x, kernel.view(b * c, 1, 1, k), groups=b * c)  # (1, B*C, H, W)
    return x.reshape(b, c, h, w)


class PsfBlur(Augmentation):
    """Extra seeing: a Gaussian of width sigma ~ U(psf_sigma) pixels per galaxy, flux-conserving.

    The stamp's PSF of width s0 becomes one of width sqrt(s0^2 + sigma^2) (`discrete_gaussian`
    makes this exact also for sub-pixel sigma). Kernels are truncated at 4 sigma of the widest
    allowed, 1 pixel at least. params: ``sigma`` (B,) pixels.
    """

    name = "psf_blur"

    def __init__(self, psf_sigma: tuple[float, float] = (0.0, 1.0)) -> None:
        self.psf_sigma = psf_sigma
        self.radius = math.ceil(4 * psf_sigma[1]) if psf_sigma[1] > 0 else 0

    @classmethod
    def from_config(cls, cfg: AugmentConfig, bands: Sequence[str], noise_levels: Sequence[float]) -> PsfBlur:
        return cls((cfg.psf_sigma[0], cfg.psf_sigma[1]))

    def sample(self, images: torch.Tensor, generator: torch.Generator) -> Params:
        return {"sigma": uniform(*self.psf_sigma, images, generator)}

    def apply(self, images: torch.Tensor, params: Params) -> torch.Tensor:
        return gaussian_blur(images, params["sigma"], self.radius)

    def __repr__(self) -> str:
        return f"PsfBlur(psf_sigma={self.psf_sigma})"


class Noise(Augmentation):
    """Additive Gaussian noise: sigma_b = s * noise_b in band b, s ~ U(noise_scale) per galaxy.

    `noise_levels`: each band's sky noise (C,), in flux units, measured on the survey itself
    (`galexplore.survey.normalize.estimate_noise`). params: ``scale`` (B,) the multiple s, and ``field``
    (B, C, H, W) the unit normal draws.
    """

    name = "noise"

    def __init__(self, noise_levels: Sequence[float], noise_scale: tuple[float, float] = (1.0, 25.0)) -> None:
        self.noise_levels = tuple(float(v) for v in noise_levels)
        if not all(math.isfinite(v) and v > 0 for v in self.noise_levels):
            raise ValueError(f"noise: expected positive noise levels, found {self.noise_levels}")
        self.noise_scale = noise_scale

    @classmethod
    def from_config(cls, cfg: AugmentConfig, bands: Sequence[str], noise_levels: Sequence[float]) -> Noise:
        return cls(noise_levels, (cfg.noise_scale[0], cfg.noise_scale[1]))

    def sample(self, images: torch.Tensor, generator: torch.Generator) -> Params:
        scale = uniform(*self.noise_scale, images, generator)
        field = torch.randn(images.shape, generator=generator, device=generator.device, dtype=images.dtype)
        return {"scale": scale, "field": field.to(images.device)}

    def sigma(self, scale: torch.Tensor) -> torch.Tensor:
        """The added noise's standard deviation per galaxy and band, (B, C), for scale (B,)."""
        levels = torch.tensor(self.noise_levels, dtype=scale.dtype, device=scale.device)  # (C,)
        return scale[:, None] * levels[None, :]

    def apply(self, images: torch.Tensor, params: Params) -> torch.Tensor:
        return self.apply_(images.clone(), params)

    def apply_(self, images: torch.Tensor, params: Params) -> torch.Tensor:
        check_bands(images, len(self.noise_levels), self.name)
        sigma = self.sigma(params["scale"]).to(images.dtype)  # (B, C)
        return images.addcmul_(params["field"], sigma[:, :, None, None])

    def __repr__(self) -> str:
        return f"Noise(noise_levels={self.noise_levels}, noise_scale={self.noise_scale})"
