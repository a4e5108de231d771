"""Models: ResNet encoders for C survey bands and the MoCo v2 contrastive model around them.

`distributed` (batch shuffling across processes) is imported on its own by the trainer.
"""

from galexplore.models.encoder import build_encoder
from galexplore.models.losses import info_nce
from galexplore.models.moco import MoCo, ProjectionHead

__all__ = ["MoCo", "ProjectionHead", "build_encoder", "info_nce"]
