"""How close to invariant are the representations? One augmentation at a time.

For each augmentation, two independently augmented views of the same galaxies are embedded; the
mean cosine similarity of a galaxy's two views ("same") is compared with that of two different
galaxies' views ("different"). A representation invariant to an augmentation has same near 1
while different stays well below it (Hayat et al. 2021).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch import nn

from galexplore.augment import build_augmentations
from galexplore.config import Config
from galexplore.survey.normalize import Normalization
from galexplore.survey.base import Survey


@torch.inference_mode()
def invariance(
    backbone: nn.Module,
    config: Config,
    normalization: Normalization,
    survey: Survey,
    device: torch.device,
    n: int = 512,
    batch_size: int = 128,
) -> dict[str, dict[str, float]]:
    """{augmentation: {"same": mean cos of a galaxy's two views, "different": of two galaxies'}}.

    Includes "all" (the whole configured pipeline) and "none" (centre crops: same = 1).
    """
    rng = np.random.default_rng([config.seed, 0x1A7])
    rows = np.sort(rng.choice(len(survey), size=min(n, len(survey)), replace=False))
    backbone.eval()
    names = ["none", *config.augment.order, "all"]
    out = {}
    for name in names:
        order = () if name == "none" else tuple(config.augment.order) if name == "all" else (name,)
        augment = build_augmentations(
            dataclasses.replace(config.augment, order=order), survey.bands, normalization.noise,
            image_size=survey.shape[1], normalization=normalization,
        )
        gen = torch.Generator(device=device)
        gen.manual_seed(config.seed)
        first, second = [], []
        for start in range(0, len(rows), batch_size):
            images = torch.from_numpy(survey.read(rows[start : start + batch_size])).to(device)
            a, b = augment.view_pair(images, gen)
            first.append(torch.nn.functional.normalize(backbone(a).float(), dim=1))
            second.append(torch.nn.functional.normalize(backbone(b).float(), dim=1))
        u, v = torch.cat(first), torch.cat(second)  # (n, D) each
        sim = u @ v.T  # (n, n): diagonal = same galaxy
        same = sim.diagonal().mean()
        different = (sim.sum() - sim.diagonal().sum()) / (len(u) * (len(u) - 1))
        out[name] = {"same": float(same), "different": float(different)}
    return out
