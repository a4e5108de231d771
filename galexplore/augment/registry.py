"""Augmentation names, as written in ``augment.order``, and the classes they stand for.

Kept free of torch so that loading a config (which checks ``augment.order`` against these names)
stays instant; a class is imported only when a pipeline is built.
"""

from __future__ import annotations

import difflib
import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from galexplore.augment.base import Augmentation

__all__ = ["AUGMENTATIONS", "AUGMENTATION_NAMES", "augmentation_class", "check_order"]

#: name in ``augment.order`` -> "module:Class"
AUGMENTATIONS: dict[str, str] = {
    "rotate": "galexplore.augment.geometric:Rotate",
    "scale": "galexplore.augment.geometric:Scale",
    "jitter_crop": "galexplore.augment.geometric:JitterCrop",
    "redden": "galexplore.augment.physical:Redden",
    "psf_blur": "galexplore.augment.physical:PsfBlur",
    "noise": "galexplore.augment.physical:Noise",
}
AUGMENTATION_NAMES: tuple[str, ...] = tuple(AUGMENTATIONS)


def augmentation_class(name: str) -> type[Augmentation]:
    """The class registered as `name`; KeyError naming the known names otherwise."""
    if name not in AUGMENTATIONS:
        raise KeyError(f"unknown augmentation {name!r}; known: {', '.join(AUGMENTATION_NAMES)}")
    module, cls = AUGMENTATIONS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def check_order(order: tuple[str, ...]) -> str | None:
    """Why `order` (the value of ``augment.order``) is invalid, or None when it is valid."""
    for i, name in enumerate(order):
        if name not in AUGMENTATIONS:
            close = difflib.get_close_matches(name, AUGMENTATION_NAMES, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            return (
                f"augment.order[{i}] = {name!r} is not an augmentation{hint}; known: "
                f"{', '.join(AUGMENTATION_NAMES)}"
            )
        if name in order[:i]:
            return f"augment.order lists {name!r} twice; expected each augmentation at most once"
    return None
