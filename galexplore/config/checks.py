"""The checks across keys and tables (a range is one key's: `galexplore.config.fields`): what
one value allows of another, refused when the config is read rather than hours into a run."""

from __future__ import annotations

from galexplore.augment.registry import check_order
from galexplore.config.schema import MAX_WIDTH, RESNET_REPRESENTATION_DIMS, Config, ModelConfig, SurveyConfig, TrainConfig
from galexplore.errors import ConfigError


def check_config(cfg: Config, source: str) -> None:
    """Check the keys of `cfg` against each other; raise `ConfigError` at the first conflict."""
    if not _plain_name(cfg.name):
        raise ConfigError(
            f"{source}: name = {cfg.name!r}: expected a one-line name of at most {MAX_NAME} characters "
            f"without control characters or path separators (it names the atlas folder, data/atlas/<name>)"
        )
    _check_simulate(cfg, source)
    if (cfg.survey.center_crop or cfg.survey.resize) and cfg.survey.source != "images":
        raise ConfigError(
            f"{source}: survey.center_crop / survey.resize resample 8-bit image folders on read; "
            f"survey.source = {cfg.survey.source!r} holds fluxes, which are read as stored"
        )
    _check_positions(cfg.survey, source)
    _check_augment(cfg, source)
    check_model(cfg.model, cfg.train, source)
    _check_probes(cfg, source)
    for key, value in (("project.n_neighbors", cfg.project.n_neighbors - 1), ("anomaly.k", cfg.anomaly.k)):
        if value > cfg.neighbors.k:
            raise ConfigError(
                f"{source}: {key} = {value + (key == 'project.n_neighbors')} needs neighbors.k >= {value} "
                f"(it reads the neighbour graph), found neighbors.k = {cfg.neighbors.k}"
            )


def _check_simulate(cfg: Config, source: str) -> None:
    """The simulated ranges run from low to high."""
    if cfg.simulate.z_min >= cfg.simulate.z_max:
        raise ConfigError(
            f"{source}: simulate.z_min ({cfg.simulate.z_min}) must be below "
            f"simulate.z_max ({cfg.simulate.z_max})"
        )
    if cfg.simulate.mag_r_min >= cfg.simulate.mag_r_max:
        raise ConfigError(
            f"{source}: simulate.mag_r_min ({cfg.simulate.mag_r_min}) must be below "
            f"simulate.mag_r_max ({cfg.simulate.mag_r_max})"
        )


def _check_augment(cfg: Config, source: str) -> None:
    """The augmentations fit the survey: fluxes to redden, one R_b per band, ranges [low, high],
    names the registry knows, and a crop with its jitter inside the cutout."""
    if "redden" in cfg.augment.order and cfg.survey.source == "images":
        # E(B-V) dims fluxes by 10^(-0.4 R_b E); an 8-bit composite's values went through a
        # non-linear stretch and clipping, so the same factor would not be the same dust
        raise ConfigError(
            f"{source}: augment.order lists 'redden' but survey.source = \"images\": 8-bit colour "
            f"composites are already stretched, not fluxes, so physical reddening is meaningless "
            f"for them; remove 'redden' from augment.order"
        )
    if "redden" in cfg.augment.order and len(cfg.augment.extinction) != len(cfg.survey.bands):
        raise ConfigError(
            f"{source}: augment.extinction has {len(cfg.augment.extinction)} values but "
            f"survey.bands has {len(cfg.survey.bands)} ({', '.join(cfg.survey.bands)}); "
            f"expected one R_b per band"
        )
    for key in ("noise_scale", "ebv_range", "psf_sigma", "scale_range"):
        lo_hi = getattr(cfg.augment, key)
        if len(lo_hi) != 2 or lo_hi[0] > lo_hi[1] or lo_hi[0] < 0:
            raise ConfigError(
                f"{source}: augment.{key} = {list(lo_hi)}: expected [low, high] with 0 <= low <= high"
            )
    if cfg.augment.scale_range[0] == 0:
        raise ConfigError(f"{source}: augment.scale_range = {list(cfg.augment.scale_range)}: expected low > 0")
    problem = check_order(cfg.augment.order)
    if problem:
        raise ConfigError(f"{source}: {problem}")
    need = cfg.augment.crop_size + 2 * cfg.augment.jitter
    if cfg.survey.image_size and need > cfg.survey.image_size:
        # image_size 0 (unknown until the file is opened) is checked by build_augmentations
        raise ConfigError(
            f"{source}: augment.crop_size ({cfg.augment.crop_size}) + 2 * augment.jitter "
            f"({cfg.augment.jitter}) = {need} exceeds survey.image_size ({cfg.survey.image_size})"
        )


def _check_probes(cfg: Config, source: str) -> None:
    """Each label column is of one kind: the redshift, a fraction (morphology) or classes, listed once."""
    redshift = cfg.probes.redshift
    if not redshift:
        raise ConfigError(f"{source}: probes.redshift = '': expected the catalog column of spectroscopic "
                          f"redshifts (a catalog without it has no redshift probe)")
    for i, column in enumerate(cfg.probes.morphology):
        if not column or column == redshift or column in cfg.probes.morphology[:i]:
            raise ConfigError(
                f"{source}: probes.morphology[{i}] = {column!r}: expected a catalog column of values "
                f"in [0, 1], other than {redshift} (the redshift probe's) and listed once"
            )
    probed = [redshift, *cfg.probes.morphology]
    for i, column in enumerate(cfg.probes.categorical):
        if not column or column in probed or column in cfg.probes.categorical[:i]:
            raise ConfigError(
                f"{source}: probes.categorical[{i}] = {column!r}: expected a catalog column of "
                f"classes, not {redshift} or a probes.morphology column, and listed once"
            )


def check_model(model: ModelConfig, train: TrainConfig, source: str = "<config>") -> None:
    """Check the model settings against each other and against the batch size.

    The queue may be any length at least the batch (enqueueing wraps around); every BN sub-batch
    needs at least two samples.
    """
    expected = RESNET_REPRESENTATION_DIMS[model.arch]
    if model.representation_dim != expected:
        raise ConfigError(
            f"{source}: model.representation_dim = {model.representation_dim} does not match "
            f"model.arch = {model.arch!r}: expected {expected}, found {model.representation_dim}"
        )
    if not model.projection_dims or min(model.projection_dims) < 1 or max(model.projection_dims) > MAX_WIDTH:
        raise ConfigError(
            f"{source}: model.projection_dims = {list(model.projection_dims)}: expected a "
            f"non-empty list of widths >= 1 and <= {MAX_WIDTH} (a layer of width w holds w x the "
            f"previous width of weights, and the queue w floats per key)"
        )
    if model.queue < train.batch_size:
        raise ConfigError(
            f"{source}: model.queue = {model.queue} is smaller than train.batch_size = "
            f"{train.batch_size}: the queue must hold at least one batch of keys"
        )
    if train.batch_size < 2 * model.bn_splits:
        raise ConfigError(
            f"{source}: model.bn_splits = {model.bn_splits} needs train.batch_size >= "
            f"{2 * model.bn_splits} (two samples per BN sub-batch), found {train.batch_size}"
        )


def _check_positions(survey: SurveyConfig, source: str) -> None:
    """survey.positions = "none" rules out every key that says where the positions are."""
    if survey.positions != "none":
        return
    if survey.source == "simulated":
        raise ConfigError(f'{source}: survey.positions = "none", but a simulated survey always has sky positions; '
                          f'remove survey.positions')
    defaults = SurveyConfig()
    for key in ("ra_column", "dec_column", "name_column"):
        if getattr(survey, key) != getattr(defaults, key):
            raise ConfigError(
                f'{source}: survey.positions = "none" says the catalog has no sky positions, but '
                f"survey.{key} = {getattr(survey, key)!r} names where they are; remove one of the two"
            )


MAX_NAME = 200


def _plain_name(name: str) -> bool:
    """Whether `name` can name a folder: one line, printable, no path separators, not . or ..

    >>> _plain_name("sdss-dr7 run 2"), _plain_name("a\\nb"), _plain_name("../x"), _plain_name("  ")
    (True, False, False, False)
    """
    return (0 < len(name) <= MAX_NAME and name.strip() not in ("", ".", "..") and name.isprintable()
            and "/" not in name and "\\" not in name)
