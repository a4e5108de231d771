"""Encoders: torchvision ResNets adapted to C survey bands and small cutouts.

A ResNet's stem was made for 224x224 RGB photographs: a 7x7 stride-2 convolution and a stride-2
max-pool shrink the image 4x before the first residual block. That suits large cutouts (the
Legacy Survey setup of Stein et al. 2021, 96x96 crops). For 64x64 SDSS crops, where a galaxy spans
a few pixels, the "small" stem (3x3 stride-1 convolution, no max-pool) keeps full resolution into
the first block, as ResNets for CIFAR-sized images do. The classifier is replaced by the identity,
so an encoder maps (B, C, H, W) images to (B, D) representations.
"""

from __future__ import annotations

from torch import nn

from galexplore.config import RESNET_REPRESENTATION_DIMS, ModelConfig
from galexplore.errors import ConfigError

__all__ = ["build_encoder"]

STEM_WIDTH = 64  # the channels of every torchvision ResNet's first convolution


def build_encoder(cfg: ModelConfig, in_channels: int) -> nn.Module:
    """A randomly initialised ResNet mapping (B, in_channels, H, W) to (B, D) representations.

    D is `cfg.representation_dim`, which must be the arch's width (512 for resnet18, 2048 for
    resnet50); a mismatch raises `ConfigError`. Nothing is downloaded (weights=None).
    """
    import torchvision  # heavy: imported only when a model is built

    if in_channels < 1:
        raise ValueError(f"in_channels must be >= 1, found {in_channels}")
    expected = RESNET_REPRESENTATION_DIMS[cfg.arch]
    if cfg.representation_dim != expected:
        raise ConfigError(
            f"model.representation_dim = {cfg.representation_dim} does not match "
            f"model.arch = {cfg.arch!r}: expected {expected}, found {cfg.representation_dim}"
        )
    net = getattr(torchvision.models, cfg.arch)(weights=None)
    if cfg.stem == "small":
        net.conv1 = nn.Conv2d(in_channels, STEM_WIDTH, 3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
    else:
        net.conv1 = nn.Conv2d(in_channels, STEM_WIDTH, 7, stride=2, padding=3, bias=False)
    # the same initialisation torchvision gives its own convolutions
    nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
    found = net.fc.in_features
    if found != cfg.representation_dim:  # a torchvision change, not a user's mistake
        raise RuntimeError(f"{cfg.arch} pools {found} features, expected {cfg.representation_dim}")
    net.fc = nn.Identity()
    return net
