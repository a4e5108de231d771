"""What `galexplore build` refuses before any stage runs: a config that cannot make an atlas of
a survey of this size, or of cutouts of this shape.

These depend on the config and the survey's size alone, so they are known before hours of
simulation or training would end in them: for a simulated survey, `simulate.n` says the size
before it is simulated; a survey on disk says it (and its cutouts' shape) when opened; given
embeddings, by their rows. Each refusal names the key, what it is and what was expected.

Label counts are not refused here: a label kind with fewer than 20 labelled galaxies is left
unprobed with a note, and one with fewer labelled rows than folds is cross-fitted leave-one-out.
"""

from __future__ import annotations

from galexplore.config import Config
from galexplore.errors import GalexploreError


def check_galaxy_count(n: int, config: Config, source: str) -> None:
    """Refuse fewer galaxies than the neighbour graph needs (neighbors.k + 1)."""
    k = config.neighbors.k
    if n < k + 1:
        raise GalexploreError(
            f"{source}: {n:,} galaxies; expected at least neighbors.k + 1 = {k + 1} (every galaxy "
            f"needs {k} others as its neighbours)"
        )


def check_sizes(config: Config, n: int, source: str, world_size: int | None = None) -> None:
    """Refuse a config that cannot build an atlas of `n` galaxies: the neighbour graph and the
    UMAP map it needs and, where the build trains (`world_size` processes; None for given
    embeddings), at least one full batch per epoch. (That the graph is wide enough for UMAP and
    the anomaly score is the config's own check.)"""
    check_galaxy_count(n, config, source)
    project = config.project
    fitted = min(n, project.fit_sample)
    if fitted < project.n_neighbors + 1:
        what = f"{n:,} galaxies" if fitted == n else f"project.fit_sample = {fitted:,} galaxies"
        raise GalexploreError(
            f"{source}: {what} for project.n_neighbors = {project.n_neighbors}; expected at least "
            f"project.n_neighbors + 1 = {project.n_neighbors + 1} (lower project.n_neighbors or add galaxies)"
        )
    batch = config.train.batch_size
    if world_size is not None and n < batch * world_size:
        raise GalexploreError(
            f"{source}: {n:,} galaxies for train.batch_size = {batch} x {world_size} process"
            f"{'es' * (world_size != 1)}; expected at least one full batch per epoch (lower train.batch_size)"
        )


def check_cutouts(config: Config, shape: tuple[int, ...], source: str) -> None:
    """Refuse an embedding crop (embed.crop_size, else augment.crop_size) larger than the
    survey's (C, H, W) cutouts."""
    crop = config.embed.crop_size or config.augment.crop_size
    if crop > min(shape[1:]):
        key = "embed.crop_size" if config.embed.crop_size else "augment.crop_size (embed.crop_size = 0)"
        raise GalexploreError(
            f"{source}: {key} = {crop} exceeds the survey's {shape[1]}x{shape[2]} cutouts; expected "
            f"at most {min(shape[1:])}"
        )
