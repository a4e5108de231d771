"""Augmentations: each transform checked against a closed form, on tiny seeded batches."""

from __future__ import annotations

import pytest
import torch

from galexplore.augment import (
    AUGMENTATION_NAMES,
    Augmentations,
    JitterCrop,
    Noise,
    PsfBlur,
    Redden,
    Rotate,
    Scale,
    augmentation_class,
    build_augmentations,
    center_crop,
    crop,
    warp,
    warp_crop,
)
from galexplore.config import SDSS_EXTINCTION, AugmentConfig, config_from_dict
from galexplore.errors import ConfigError
from galexplore.survey.normalize import Normalization

BANDS = ("u", "g", "r", "i", "z")
NOISE_LEVELS = (0.5, 1.0, 2.0, 4.0, 8.0)


def grid(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel offsets (y, x) from the stamp centre, each (size, size), float64."""
    t = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    return torch.meshgrid(t, t, indexing="ij")


def gaussian_source(size: int, sigma: float, batch: int = 1, bands: int = 5) -> torch.Tensor:
    """A round Gaussian galaxy of unit peak at the stamp centre: (batch, bands, size, size) float32."""
    y, x = grid(size)
    image = torch.exp(-(x**2 + y**2) / (2 * sigma**2))
    return image.to(torch.float32).expand(batch, bands, size, size).clone()


def pinwheel(size: int) -> torch.Tensor:
    """A chiral source, unchanged by rotations of 90 degrees but not by a mirror: (1, 5, size, size)."""
    y, x = grid(size)
    r, phi = torch.hypot(x, y), torch.atan2(y, x)
    image = torch.exp(-(r**2) / (2 * 6.0**2)) * (1.5 + torch.cos(4 * phi + 0.4 * r))
    return image.to(torch.float32).expand(1, 5, size, size).clone()


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_every_name_is_registered_to_its_class() -> None:
    assert set(AUGMENTATION_NAMES) == {"rotate", "scale", "jitter_crop", "redden", "psf_blur", "noise"}
    for name in AUGMENTATION_NAMES:
        assert augmentation_class(name).name == name


@pytest.mark.parametrize("angle", [90.0, 180.0, 270.0])
def test_rotating_a_fourfold_symmetric_source_by_quarter_turns_reproduces_it(angle: float) -> None:
    source = pinwheel(33)
    params = {"angle": torch.tensor([angle], dtype=torch.float64), "flip": torch.tensor([False])}
    rotated = Rotate().apply(source, params)
    assert (rotated - source).abs().max() < 1e-4 * source.max()
    # the test can fail: the mirror image of the chiral source is not the source
    mirror = {"angle": torch.tensor([0.0], dtype=torch.float64), "flip": torch.tensor([True])}
    mirrored = Rotate().apply(source, mirror)
    assert (mirrored - source).abs().max() > 0.1 * source.max()


def test_rotation_by_90_degrees_is_rot90_and_flip_is_a_mirror() -> None:
    images = torch.randn(3, 5, 16, 16, generator=generator(0))
    quarter = {"angle": torch.full((3,), 90.0, dtype=torch.float64), "flip": torch.zeros(3, dtype=torch.bool)}
    assert torch.allclose(Rotate().apply(images, quarter), torch.rot90(images, 1, dims=(-2, -1)), atol=1e-4)
    mirror = {"angle": torch.zeros(3, dtype=torch.float64), "flip": torch.ones(3, dtype=torch.bool)}
    assert torch.allclose(Rotate().apply(images, mirror), torch.flip(images, dims=(-1,)), atol=1e-4)


def test_rotate_draws_angles_over_the_full_circle_and_flips_half() -> None:
    params = Rotate().sample(torch.zeros(4000, 1, 8, 8), generator(1))
    angle = params["angle"]
    assert 0.0 <= float(angle.min()) < 1.0 and 359.0 < float(angle.max()) < 360.0
    assert abs(float(params["flip"].float().mean()) - 0.5) < 0.03  # 4000 draws: sd 0.008


def test_scale_conserves_surface_brightness() -> None:
    source = gaussian_source(65, sigma=4.0)  # odd: the centre is a pixel, of value 1
    for factor in (0.9, 1.1):
        scaled = Scale().apply(source, {"factor": torch.tensor([factor], dtype=torch.float64)})
        # the same surface brightness over factor^2 the area: total flux times factor^2
        assert float(scaled.sum() / source.sum()) == pytest.approx(factor**2, rel=0.01)
        assert float(scaled[0, 0, 32, 32]) == pytest.approx(1.0, abs=1e-5)


def test_jitter_crop_sizes_and_bounds_for_sdss() -> None:
    # each pixel holds its own flat index, so a crop tells where it was taken
    b, size, crop, jitter = 512, 107, 64, 7
    images = torch.arange(size * size, dtype=torch.float32).reshape(1, 1, size, size)
    images = images.expand(b, 5, size, size)
    aug = JitterCrop(crop, jitter)
    params = aug.sample(images, generator(2))
    out = aug.apply(images, params)
    assert out.shape == (b, 5, crop, crop)
    top, left = out[:, 0, 0, 0].long() // size, out[:, 0, 0, 0].long() % size
    centred = (size - crop) // 2  # 21
    assert torch.equal(top - centred, params["shift"][:, 0])
    assert torch.equal(left - centred, params["shift"][:, 1])
    assert int(params["shift"].min()) == -jitter and int(params["shift"].max()) == jitter
    assert int(top.min()) >= 0 and int(top.max()) + crop <= size
    for i in (0, 1, b - 1):  # the crop is a contiguous window of the image, in every band
        t, l = int(top[i]), int(left[i])
        assert torch.equal(out[i], images[i, :, t : t + crop, l : l + crop])


def test_a_crop_that_does_not_fit_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"crop_size \(64\) \+ 2 \* augment.jitter \(7\) = 78.*64x64"):
        JitterCrop(64, 7)(torch.zeros(2, 5, 64, 64), generator(0))
    with pytest.raises(ConfigError, match=r"= 78 pixels do not fit the survey's 70x70"):
        build_augmentations(AugmentConfig(), BANDS, NOISE_LEVELS, image_size=70)


def test_noise_has_the_target_sigma_in_every_band() -> None:
    zeros = torch.zeros(16, 5, 64, 64)
    noisy = Noise(NOISE_LEVELS, (3.0, 3.0))(zeros, generator(3))
    std = noisy.std(dim=(0, 2, 3))  # 65536 pixels per band: sd of the estimate 0.3%
    target = 3.0 * torch.tensor(NOISE_LEVELS)
    assert torch.allclose(std, target, rtol=0.05)
    assert bool((noisy.mean(dim=(0, 2, 3)).abs() < 0.02 * target).all())  # sd 0.4% of target


def test_noise_sigma_is_drawn_per_galaxy_in_units_of_band_noise() -> None:
    zeros = torch.zeros(8, 5, 64, 64)
    aug = Noise(NOISE_LEVELS, (1.0, 25.0))
    params = aug.sample(zeros, generator(4))
    std = aug.apply(zeros, params).std(dim=(2, 3))  # (B, C), 4096 pixels each: sd 1.1%
    target = params["scale"][:, None] * torch.tensor(NOISE_LEVELS)[None, :]
    assert torch.allclose(std, target, rtol=0.05)
    assert float(params["scale"].min()) >= 1.0 and float(params["scale"].max()) <= 25.0


def test_redden_scales_each_band_by_the_exact_extinction_factor() -> None:
    images = 1.0 + torch.rand(4, 5, 8, 8, generator=generator(5))
    fixed = Redden(SDSS_EXTINCTION, (0.2, 0.2))(images, generator(6))
    expected = torch.tensor([10 ** (-0.4 * r * 0.2) for r in SDSS_EXTINCTION])  # u: 0.676, z: 0.890
    assert torch.allclose(fixed, images * expected[None, :, None, None], rtol=1e-6, atol=0)
    aug = Redden(SDSS_EXTINCTION, (0.0, 0.5))
    params = aug.sample(images, generator(7))
    assert float(params["ebv"].min()) >= 0.0 and float(params["ebv"].max()) <= 0.5
    ratio = (aug.apply(images, params) / images).mean(dim=(2, 3))  # (B, C)
    ebv = params["ebv"].to(torch.float64)
    expected = 10 ** (-0.4 * torch.tensor(SDSS_EXTINCTION, dtype=torch.float64)[None, :] * ebv[:, None])
    assert torch.allclose(ratio.to(torch.float64), expected, rtol=1e-6, atol=0)


def test_psf_blur_conserves_flux_and_adds_width_in_quadrature() -> None:
    source = gaussian_source(48, sigma=2.0, batch=6)
    aug = PsfBlur((0.0, 2.0))
    params = aug.sample(source, generator(8))
    params["sigma"][0] = 0.0  # no extra blur: the identity
    blurred = aug.apply(source, params)
    flux_in, flux_out = source.sum(dim=(2, 3)).double(), blurred.sum(dim=(2, 3)).double()
    assert torch.allclose(flux_out, flux_in, rtol=1e-5, atol=0)
    assert torch.allclose(blurred[0], source[0], atol=1e-6)
    y, x = grid(48)
    variance = ((x**2 + y**2) * blurred[:, 2].double()).sum(dim=(1, 2)) / (2 * flux_out[:, 2])
    # a Gaussian of width 2 convolved with one of width s has width sqrt(4 + s^2), for any s
    assert torch.allclose(variance, 4.0 + params["sigma"].double() ** 2, rtol=1e-3)


def test_the_pipeline_outputs_crop_size_with_or_without_jitter_crop() -> None:
    images = torch.randn(4, 5, 107, 107, generator=generator(9))
    full = build_augmentations(AugmentConfig(), BANDS, NOISE_LEVELS, image_size=107)
    assert full.names == ("rotate", "scale", "jitter_crop", "redden", "psf_blur", "noise")
    assert full(images, generator(0)).shape == (4, 5, 64, 64)
    no_crop = build_augmentations(AugmentConfig(order=("rotate", "noise")), BANDS, NOISE_LEVELS)
    assert no_crop(images, generator(0)).shape == (4, 5, 64, 64)
    nothing = build_augmentations(AugmentConfig(order=()), BANDS, NOISE_LEVELS)
    assert torch.equal(nothing(images, generator(0)), images[:, :, 21:85, 21:85])
    assert torch.equal(center_crop(images, 64), images[:, :, 21:85, 21:85])


def test_consecutive_warps_compose_into_one_resampling() -> None:
    source = gaussian_source(64, sigma=6.0, batch=8) * torch.linspace(1, 2, 64)  # smooth, asymmetric
    pipeline = Augmentations([Rotate(), Scale((0.8, 1.2))], crop_size=64)
    fused = pipeline(source, generator(10))
    g = generator(10)  # the same draws, applied one after the other
    step = Rotate().apply(source, Rotate().sample(source, g))
    step = Scale((0.8, 1.2)).apply(step, Scale((0.8, 1.2)).sample(step, g))
    # equal, away from the border (padded differently), up to the sequential path's second
    # interpolation: a smoothing of about a pixel^2 / 8 on a source of width 6, under 1%
    assert (fused - step)[..., 8:56, 8:56].abs().max() < 0.015 * source.max()


def test_same_seed_same_views_and_different_seeds_differ() -> None:
    images = torch.randn(8, 5, 107, 107, generator=generator(11))
    aug = build_augmentations(AugmentConfig(), BANDS, NOISE_LEVELS)
    assert torch.equal(aug(images, generator(0)), aug(images, generator(0)))
    assert not torch.allclose(aug(images, generator(0)), aug(images, generator(1)))
    query, key = aug.view_pair(images, generator(0))
    assert query.shape == key.shape == (8, 5, 64, 64)
    assert not torch.allclose(query, key)


def test_build_rejects_a_config_that_does_not_fit_the_survey() -> None:
    with pytest.raises(ConfigError, match=r"augment.extinction has 5 values but the survey has 3 bands"):
        build_augmentations(AugmentConfig(), ("g", "r", "z"), (1.0, 1.0, 1.0))
    with pytest.raises(ConfigError, match="'rotat' is not an augmentation"):
        build_augmentations(AugmentConfig(order=("rotat",)), BANDS, NOISE_LEVELS)


@pytest.mark.parametrize(
    ("augment", "expected"),
    [
        ({"order": ["rotate", "blurr"]}, ["augment.order[1]", "'blurr'", "rotate, scale, jitter_crop"]),
        ({"order": ["rotat"]}, ["augment.order[0]", "'rotat'", "did you mean 'rotate'"]),
        ({"order": ["noise", "noise"]}, ["augment.order", "'noise' twice"]),
        ({"ebv_range": [0.3, 0.1]}, ["augment.ebv_range", "[0.3, 0.1]", "0 <= low <= high"]),
        ({"psf_sigma": [-1.0, 1.0]}, ["augment.psf_sigma", "0 <= low <= high"]),
        ({"scale_range": [0.0, 1.1]}, ["augment.scale_range", "low > 0"]),
        ({"crop_size": 100}, ["augment.crop_size (100)", "= 114", "survey.image_size (107)"]),
    ],
)
def test_a_bad_augment_table_is_a_config_error_at_load(augment: dict, expected: list[str]) -> None:
    raw = {"survey": {"image_size": 107}, "augment": augment}
    with pytest.raises(ConfigError) as info:
        config_from_dict(raw, source="sdss.toml")
    message = str(info.value)
    assert message.startswith("sdss.toml: ")
    for part in expected:
        assert part in message


def test_an_ablation_is_a_config_change() -> None:
    cfg = config_from_dict({"augment": {"order": ["jitter_crop"], "crop_size": 16, "jitter": 2}}).augment
    aug = build_augmentations(cfg, BANDS, NOISE_LEVELS, image_size=24)
    assert aug.names == ("jitter_crop",)
    images = torch.randn(2, 5, 24, 24, generator=generator(12))
    out = aug(images, generator(13))
    # no rotation, no noise: each view is a window of its image, pixel for pixel
    windows = [images[0, :, t : t + 16, l : l + 16] for t in range(1, 6) for l in range(1, 6)]
    assert any(torch.equal(out[0], w) for w in windows)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_augmentations_run_on_the_device_with_a_device_generator() -> None:
    images = torch.randn(16, 5, 107, 107, device="cuda")
    aug = build_augmentations(AugmentConfig(), BANDS, NOISE_LEVELS)
    g = torch.Generator(device="cuda")
    out_a = aug(images, g.manual_seed(0))
    out_b = aug(images, g.manual_seed(0))
    assert out_a.device.type == "cuda" and out_a.shape == (16, 5, 64, 64)
    assert torch.equal(out_a, out_b)


# The fused geometry: warps then the crop as one resampling of the crop's pixels (`warp_crop`).


def quarter_turns(angles: list[float]) -> torch.Tensor:
    """Rotate's output -> input matrices (B, 2, 2), float64, for `angles` in degrees, no flip."""
    n = len(angles)
    return Rotate().matrix({"angle": torch.tensor(angles, dtype=torch.float64), "flip": torch.zeros(n, dtype=torch.bool)})


def test_warp_crop_with_identity_matrices_is_the_plain_crop() -> None:
    images = torch.randn(3, 5, 107, 107, generator=generator(20))
    shift = torch.tensor([[0, 0], [-7, 7], [3, -2]])
    assert torch.equal(warp_crop(images, quarter_turns([0.0, 0.0, 0.0]), 64, shift), crop(images, 64, shift))
    # through the resampling (one sample's turn keeps the batch off the indexing path): the
    # identity samples land on pixel centres, so bilinear weights are 0 and 1 to float32 rounding
    resampled = warp_crop(images, quarter_turns([0.0, 0.0, 90.0]), 64, shift)
    assert (resampled[:2] - crop(images, 64, shift)[:2]).abs().max() < 1e-4


def test_warp_crop_by_a_quarter_turn_is_the_crop_of_rot90() -> None:
    images = torch.randn(4, 5, 107, 107, generator=generator(21))
    shift = torch.tensor([[0, 0], [5, -7], [-7, 2], [7, 7]])
    turned = warp_crop(images, quarter_turns([90.0] * 4), 64, shift)
    assert turned.shape == (4, 5, 64, 64) and turned.dtype == torch.float32
    assert (turned - crop(torch.rot90(images, 1, dims=(-2, -1)), 64, shift)).abs().max() < 1e-4
    # not rot90 of the centre crop: 107 - 64 is odd, so that crop is off the stamp's centre by
    # half a pixel and does not commute with the turn (this check can fail)
    assert not torch.allclose(turned[:1], torch.rot90(center_crop(images[:1], 64), 1, dims=(-2, -1)), atol=1e-4)
    centred = warp_crop(images[:1, :, :105, :105], quarter_turns([90.0]), 65, shift[:1])  # 105 - 65 even
    assert (centred - torch.rot90(center_crop(images[:1, :, :105, :105], 65), 1, dims=(-2, -1))).abs().max() < 1e-4


@pytest.mark.parametrize("size", [(107, 107), (100, 90)])
def test_warp_crop_equals_warping_the_whole_stamp_then_cropping(size: tuple[int, int]) -> None:
    images = torch.randn(16, 5, *size, generator=generator(22))
    g = generator(23)
    rotate, scale, jitter = Rotate(), Scale((0.8, 1.2)), JitterCrop(64, 7)
    matrix = rotate.matrix(rotate.sample(images, g)) @ scale.matrix(scale.sample(images, g))
    shift = jitter.sample(images, g)["shift"]
    unfused = crop(warp(images, matrix), 64, shift)  # the old path: 107^2 samples, then indexing
    # the sample positions differ by float32 rounding (1e-5 pixels); neighbours differ by O(5)
    assert (warp_crop(images, matrix, 64, shift) - unfused).abs().max() < 5e-4


def test_the_fused_pipeline_matches_the_step_by_step_composition() -> None:
    images = 10.0 + torch.randn(8, 5, 107, 107, generator=generator(24))
    pipeline = build_augmentations(AugmentConfig(), BANDS, NOISE_LEVELS, image_size=107)
    fused = pipeline(images, generator(25))
    g = generator(25)  # the same draws, in the same order, through each step's own apply
    rotate, scale, jitter, *physical = pipeline.steps
    matrix = rotate.matrix(rotate.sample(images, g)) @ scale.matrix(scale.sample(images, g))
    x = jitter.apply(warp(images, matrix), jitter.sample(images, g))
    for step in physical:
        x = step(x, g)
    assert fused.shape == (8, 5, 64, 64) and fused.dtype == torch.float32
    assert (fused - x).abs().max() < 1e-3  # noise up to 25 x 8 = 200: 1e-3 is float32 rounding


def test_an_order_with_the_crop_before_the_warp_is_applied_as_written() -> None:
    cfg = AugmentConfig(order=("jitter_crop", "rotate"), crop_size=16, jitter=2)
    pipeline = build_augmentations(cfg, BANDS, NOISE_LEVELS, image_size=24)
    images = torch.randn(4, 5, 24, 24, generator=generator(26))
    g = generator(27)
    jitter, rotate = pipeline.steps
    x = jitter.apply(images, jitter.sample(images, g))
    expected = rotate.apply(x, rotate.sample(x, g))  # the turn reflects at the crop's border
    assert (pipeline(images, generator(27)) - expected).abs().max() < 1e-4


@pytest.mark.parametrize("order", [AugmentConfig().order, ("noise", "redden", "psf_blur", "rotate")])
def test_the_pipeline_leaves_the_callers_batch_untouched(order: tuple[str, ...]) -> None:
    images = torch.randn(4, 5, 107, 107, generator=generator(28))
    before = images.clone()
    out = build_augmentations(AugmentConfig(order=order), BANDS, NOISE_LEVELS)(images, generator(29))
    assert out.shape == (4, 5, 64, 64)
    assert torch.equal(images, before)
    for step in (Redden(SDSS_EXTINCTION), Noise(NOISE_LEVELS)):  # apply copies, apply_ overwrites
        x = images.clone()
        params = step.sample(x, generator(30))
        y = step.apply(x, params)
        assert torch.equal(x, images) and not torch.equal(y, x)
        assert step.apply_(x, params) is x and torch.equal(x, y)


def test_the_normalised_views_are_asinh_of_the_fluxes_in_float32() -> None:
    images = torch.randn(4, 5, 107, 107, generator=generator(31))
    stretch = Normalization(bands=BANDS, background=(0.1,) * 5, noise=NOISE_LEVELS)
    plain = build_augmentations(AugmentConfig(), BANDS, NOISE_LEVELS)
    normalised = build_augmentations(AugmentConfig(), BANDS, NOISE_LEVELS, normalization=stretch)
    fluxes, views = plain(images, generator(32)), normalised(images, generator(32))
    assert views.dtype == torch.float32 and views.shape == (4, 5, 64, 64)
    scale = torch.tensor(NOISE_LEVELS)[:, None, None] * stretch.softening
    expected = torch.asinh((fluxes.double() - 0.1) / scale.double())  # float64 closed form
    assert (views.double() - expected).abs().max() < 1e-5
