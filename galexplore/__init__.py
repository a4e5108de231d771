"""galexplore: see and search what a self-supervised model learned from galaxy images."""

__version__ = "0.1.0"
