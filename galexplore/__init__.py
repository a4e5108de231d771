"""galexplore: see and search what a self-supervised model learned from galaxy images."""

__version__ = "0.1.0"

__all__ = ["Atlas", "open_atlas"]


def __getattr__(name: str) -> object:
    # the notebook API (galexplore.api), imported on first use: `import galexplore` stays instant
    if name in __all__:
        from galexplore import api

        return getattr(api, name)
    raise AttributeError(f"module 'galexplore' has no attribute {name!r}")
