"""Per-band noise levels of a survey and the input normalisation every model sees.

One implementation for training, embedding and the app: cutouts are raw fluxes on disk, are
augmented as fluxes (see `galexplore.augment`), and only then pass through `Normalization`.

The stretch is an asinh ("luptitude") stretch in units of each band's sky noise::

    y_b = asinh((x_b - background_b) / (softening * noise_b))

- ``background_b``: the band's sky level, the median of the cutouts' outskirts (0 for
  sky-subtracted data, but some pipelines leave a pedestal that would push all pixels off the
  linear part of the stretch);
- ``noise_b``: the band's sky noise, a robust sigma_MAD of the outskirts (`estimate_noise`);
- ``softening = 2 b / noise`` with Lupton's optimal ``b = sqrt(2.5 log10 e) noise = 1.042 noise``
  (Lupton, Gunn & Szalay 1999, AJ 118, 1406): linear where the noise lives, logarithmic in
  bright cores, so a dynamic range of 10^4 in flux becomes about 10 in ``y``.

Why noise units rather than percentiles: dividing by the noise puts every band, and every survey,
on the same scale of signal-to-noise (the sky noise is about +-0.5 in ``y`` in all bands), which
is what a network can compare between bands; a percentile scale depends on how many bright
galaxies the sample holds and on the cutout size, and changes when the survey grows.

Noise and background are measured on a seeded sample of cutouts, so fitting twice gives the same
numbers, and stored as plain JSON (`to_dict`) in checkpoints and atlases: never a pickle.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from galexplore.errors import GalexploreError, SurveyError

if TYPE_CHECKING:
    import torch

    from galexplore.survey.base import Survey

__all__ = ["LUPTON_SOFTENING", "Normalization", "estimate_noise", "sky_statistics"]

#: asinh softening in units of the sky noise: 2 b with b = sqrt(2.5 log10 e) sigma = 1.042 sigma,
#: the choice of Lupton, Gunn & Szalay (1999) that keeps the stretch linear across the noise.
LUPTON_SOFTENING = 2.0 * math.sqrt(2.5 * math.log10(math.e))
#: sigma of a Gaussian per unit median absolute deviation, 1 / Phi^-1(3/4)
MAD_TO_SIGMA = 1.482602218505602
#: the format written by `Normalization.to_dict`; bumped when its meaning changes
FORMAT = "asinh-noise/1"
_READ_CHUNK = 256  # cutouts read at a time while sampling

ArrayT = TypeVar("ArrayT", "np.ndarray", "torch.Tensor")


def sky_statistics(
    survey: Survey, n_sample: int = 1000, seed: int = 0, border: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """Per-band sky level and sky noise, measured on the outskirts of a sample of cutouts.

    For each of ``min(n_sample, len(survey))`` cutouts (drawn without replacement, seeded) and
    each band, take the pixels of the outer frame ``border`` pixels wide and subtract their
    median (the cutout's sky). The band's background is the median of those sky levels, and its
    noise the sigma_MAD = 1.4826 * median(|residual|) of all residuals pooled: a median is robust
    to neighbours reaching into the frame (they touch a few percent of its pixels), and pooling
    keeps a neighbour in many cutouts from biasing the estimate as a per-cutout MAD would.

    Quantised pixels (``survey.quantum``, e.g. 1/255 for 8-bit colour composites, whose sky noise
    is a few steps): each residual is dithered by a seeded U(-q/2, q/2) before the median, so
    the MAD is not stuck on a step, and the noise is at least the quantisation noise q / sqrt(12),
    so a composite whose sky was clipped to black still gets a positive noise level.

    Returns ``(background, noise)``, each float64 (C,), in the survey's flux units.
    Raises `SurveyError` for an empty survey, a frame that does not fit, or a band without noise.
    """
    n = len(survey)
    c, h, w = survey.shape
    if n == 0:
        raise SurveyError(f"{survey.source}: the survey has no cutouts; cannot measure its noise")
    if border < 1 or 2 * border >= min(h, w):
        raise SurveyError(
            f"{survey.source}: an outskirts frame {border} pixels wide does not fit a {h}x{w} "
            f"cutout; expected 1 <= border < {min(h, w) / 2}"
        )
    rng = np.random.default_rng(seed)
    indices = np.sort(rng.choice(n, size=min(n_sample, n), replace=False))
    quantum = getattr(survey, "quantum", None)
    frame = np.ones((h, w), dtype=bool)
    frame[border:-border, border:-border] = False
    sky, residuals = [], []
    for start in range(0, len(indices), _READ_CHUNK):
        pixels = survey.read(indices[start : start + _READ_CHUNK])[:, :, frame]  # (b, C, P)
        median = np.median(pixels, axis=2, keepdims=True)  # (b, C, 1)
        sky.append(median[:, :, 0])
        residual = pixels - median
        if quantum:
            residual = residual + rng.uniform(-quantum / 2, quantum / 2, residual.shape).astype(np.float32)
        residuals.append(np.abs(residual).transpose(1, 0, 2).reshape(c, -1))  # (C, b*P)
    background = np.median(np.concatenate(sky), axis=0).astype(np.float64)  # (C,)
    noise = MAD_TO_SIGMA * np.median(np.concatenate(residuals, axis=1), axis=1).astype(np.float64)
    if quantum:
        noise = np.maximum(noise, quantum / math.sqrt(12.0))
    flat = np.flatnonzero(~(noise > 0))
    if flat.size:
        band = survey.bands[flat[0]] if len(survey.bands) == c else str(flat[0])
        raise SurveyError(
            f"{survey.source}: band {band} has no measurable noise in the cutouts' outskirts "
            f"(sigma_MAD = {noise[flat[0]]!r} over {len(indices)} cutouts); expected a positive "
            f"sky noise in every band"
        )
    return background, noise


def estimate_noise(survey: Survey, n_sample: int = 1000, seed: int = 0, border: int = 4) -> np.ndarray:
    """Per-band sky noise (sigma_MAD of the cutouts' outskirts), float64 (C,). See `sky_statistics`."""
    return sky_statistics(survey, n_sample=n_sample, seed=seed, border=border)[1]


@dataclass(frozen=True)
class Normalization:
    """The asinh stretch in units of each band's sky noise (see the module docstring).

    Callable on a numpy array or a torch tensor of shape (..., C, H, W), e.g. (B, C, H, W) or one
    cutout (C, H, W); returns the same kind, float32 for numpy and the input's floating dtype (on
    its device) for torch. The two give the same numbers to float32 rounding.
    """

    bands: tuple[str, ...]
    background: tuple[float, ...]  # sky level per band, flux units
    noise: tuple[float, ...]  # sky noise (sigma_MAD) per band, flux units
    softening: float = LUPTON_SOFTENING  # asinh scale, in units of `noise`

    def __post_init__(self) -> None:
        c = len(self.bands)
        if len(self.background) != c or len(self.noise) != c:
            raise GalexploreError(
                f"normalization: {c} bands ({', '.join(self.bands)}) but {len(self.background)} "
                f"background and {len(self.noise)} noise values; expected one per band"
            )
        values = (*self.background, *self.noise, self.softening)
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
            raise GalexploreError(f"normalization: expected finite numbers, found {values}")
        if not all(v > 0 for v in (*self.noise, self.softening)):
            raise GalexploreError(
                f"normalization: noise {list(self.noise)} and softening {self.softening} must be > 0"
            )

    @classmethod
    def fit(
        cls,
        survey: Survey,
        n_sample: int = 1000,
        seed: int = 0,
        border: int = 4,
        softening: float = LUPTON_SOFTENING,
    ) -> Normalization:
        """Measure background and noise on a seeded sample of `survey`'s cutouts."""
        background, noise = sky_statistics(survey, n_sample=n_sample, seed=seed, border=border)
        return cls(
            bands=tuple(survey.bands),
            background=tuple(float(v) for v in background),
            noise=tuple(float(v) for v in noise),
            softening=float(softening),
        )

    def __call__(self, images: ArrayT, out: np.ndarray | None = None) -> ArrayT:
        """Stretched images, same shape (..., C, H, W): asinh((x - background) / (softening * noise)).

        For numpy, `out` (float32, the images' shape; may be `images` itself) receives the result
        with no temporary array: each step runs in place in float32, giving the same numbers as
        without `out`.
        """
        offset, scale = self._per_band(images)
        if isinstance(images, np.ndarray):
            if out is None:
                return np.arcsinh((images.astype(np.float32, copy=False) - offset) / scale)
            if out.dtype != np.float32 or out.shape != images.shape:
                raise GalexploreError(
                    f"normalization: out is {out.dtype} {out.shape}; expected float32 {images.shape}"
                )
            if images.dtype != np.float32:  # cast first, as astype does
                np.copyto(out, images, casting="unsafe")
                images = out
            np.subtract(images, offset, out=out)
            np.divide(out, scale, out=out)
            return np.arcsinh(out, out=out)
        if out is not None:
            raise GalexploreError("normalization: out is for numpy arrays; torch tensors are stretched on their device")
        return _torch_asinh(images, offset, scale)

    def invert(self, values: ArrayT) -> ArrayT:
        """Fluxes back from stretched values (..., C, H, W), for display: the inverse of `__call__`."""
        offset, scale = self._per_band(values)
        if isinstance(values, np.ndarray):
            return np.sinh(values.astype(np.float32, copy=False)) * scale + offset
        import torch

        o, s = (torch.as_tensor(a, dtype=values.dtype, device=values.device) for a in (offset, scale))
        return torch.sinh(values) * s + o

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form, stored in checkpoints and atlas manifests."""
        return {
            "format": FORMAT,
            "bands": list(self.bands),
            "background": list(self.background),
            "noise": list(self.noise),
            "softening": self.softening,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Normalization:
        """The inverse of `to_dict`; a malformed or foreign mapping is a `GalexploreError`."""
        keys = ("format", "bands", "background", "noise", "softening")
        if not isinstance(data, Mapping) or set(data) != set(keys):
            found = sorted(data) if isinstance(data, Mapping) else type(data).__name__
            raise GalexploreError(f"normalization: expected keys {list(keys)}, found {found}")
        if data["format"] != FORMAT:
            raise GalexploreError(
                f"normalization: format {data['format']!r} is not {FORMAT!r}; written by another "
                f"version of galexplore"
            )
        try:
            return cls(
                bands=tuple(str(b) for b in data["bands"]),
                background=tuple(float(v) for v in data["background"]),
                noise=tuple(float(v) for v in data["noise"]),
                softening=float(data["softening"]),
            )
        except (TypeError, ValueError) as exc:
            raise GalexploreError(f"normalization: malformed values ({exc})") from None

    def _per_band(self, images: Any) -> tuple[np.ndarray, np.ndarray]:
        """Background and asinh scale shaped (C, 1, 1) to broadcast over (..., C, H, W), float32."""
        c = len(self.bands)
        if images.ndim < 3 or images.shape[-3] != c:
            raise GalexploreError(
                f"normalization: images of shape {tuple(images.shape)} do not have the {c} bands "
                f"({', '.join(self.bands)}) on axis -3; expected (..., {c}, H, W)"
            )
        offset = np.asarray(self.background, dtype=np.float32).reshape(c, 1, 1)
        scale = (np.asarray(self.noise, dtype=np.float64) * self.softening).astype(np.float32)
        return offset, scale.reshape(c, 1, 1)


def _torch_asinh(images: torch.Tensor, offset: np.ndarray, scale: np.ndarray) -> torch.Tensor:
    """asinh((images - offset) / scale) on the images' device; offset, scale broadcastable."""
    import torch

    dtype = images.dtype if images.is_floating_point() else torch.float32
    o = torch.as_tensor(offset, dtype=dtype, device=images.device)
    s = torch.as_tensor(scale, dtype=dtype, device=images.device)
    x = (images.to(dtype) - o).div_(s)  # a new tensor, so stretched in place below
    if x.device.type == "cpu" and dtype in (torch.float32, torch.float64) and not x.requires_grad:
        # torch's CPU asinh is a scalar loop (about 25 ns a value: most of an augmented batch's
        # time); numpy's is vectorised, about 50x faster, and equal to float32 rounding
        values = x.numpy()
        np.arcsinh(values, out=values)
        return x
    return torch.asinh(x)
