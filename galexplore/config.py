"""Typed, frozen configuration loaded from TOML.

A config file has a few top-level keys and one table per concern::

    name = "demo"
    seed = 0
    [survey]      # where the cutouts and the catalog come from, and how to read them
    [simulate]    # the simulated survey (used when survey.source = "simulated")
    [augment]     # survey-aware augmentations for contrastive training
    [model]       # the encoder and the MoCo v2 head
    [train]       # the optimiser and the schedule
    [embed]       # representations of every galaxy, and the reduced copy for search
    [project]     # the 2D map (UMAP)
    [neighbors]   # the k most similar galaxies of every galaxy
    [trust]       # how near each galaxy sits to labelled galaxies
    [anomaly]     # how rare each galaxy is in representation space
    [probes]      # which catalog columns the linear probes predict

Every key is checked: an unknown or misspelled key, a wrong type or an out-of-range value raises
`ConfigError` naming the file, the key and the value. Relative paths in a config resolve against
the directory of the config file, so a config can be run from anywhere.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from galexplore.augment.registry import check_order
from galexplore.errors import ConfigError
from galexplore.io import check_regular_file

__all__ = [
    "AnomalyConfig",
    "AugmentConfig",
    "Config",
    "EmbedConfig",
    "ModelConfig",
    "NeighborsConfig",
    "ProbesConfig",
    "ProjectConfig",
    "SimulateConfig",
    "SurveyConfig",
    "TrainConfig",
    "TrustConfig",
    "check_model",
    "config_from_dict",
    "load_config",
    "to_toml",
    "write_resolved",
]

SDSS_BANDS = ("u", "g", "r", "i", "z")
# SDSS extinction coefficients A_b / E(B-V) for ugriz (Schlafly & Finkbeiner 2011, as used by
# Hayat et al. 2021 for their reddening augmentation).
SDSS_EXTINCTION = (4.239, 3.303, 2.285, 1.698, 1.263)


def _range(ge: float | None = None, le: float | None = None, gt: float | None = None, why: str = "") -> dict:
    """Field metadata for a numeric range check (inclusive ge/le, exclusive gt); `why` says what
    an upper bound protects, and is part of the message that refuses a value beyond it."""
    return {"ge": ge, "le": le, "gt": gt, "why": why}


#: sizes whose product is allocated at once have upper bounds, so a typo (a few zeros too many)
#: is refused when the config is read, not as an allocation error hours later
MAX_QUEUE = 1 << 20
MAX_WIDTH = 16_384
MAX_BATCH = 65_536
MAX_SIMULATED = 100_000_000
MAX_CHUNK_ROWS = 1 << 20
MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class SurveyConfig:
    """Where a survey's cutouts and catalog live and how to read them.

    `source` picks the reader: "simulated" (the HDF5 file that `galexplore simulate` writes at
    `path`), "hdf5", "fits" (one stacked cube, or a folder of one cube per object listed in the
    catalog), "images" (a folder of PNG/JPEG colour composites listed in a CSV catalog).
    """

    source: Literal["simulated", "hdf5", "fits", "images"] = "simulated"
    path: str = ""
    catalog: str = ""  # a separate FITS/CSV catalog (fits and images sources)
    bands: tuple[str, ...] = SDSS_BANDS
    pixel_scale: float = field(default=0.396, metadata=_range(gt=0))  # arcsec / pixel
    image_size: int = field(default=0, metadata=_range(ge=0, le=4096))  # 0: take the file's
    layout: Literal["channels_first", "channels_last"] = "channels_first"
    images_key: str = "images"
    id_column: str = "object_id"  # absent from the source: ids are the row numbers
    ra_column: str = "ra"
    dec_column: str = "dec"
    name_column: str = ""  # IAU names (J000411.19+020924.0) used when ra/dec are absent
    # "none": the catalog has no sky positions (no RA/Dec, no IAU names), as a Galaxy Zoo subset
    # may not; ra and dec are then NaN for every object. Explicit, so a lost column is never silent
    positions: Literal["catalog", "none"] = "catalog"
    file_column: str = "file"  # per-object file names (fits folder and images sources)
    rename: dict[str, str] = field(default_factory=dict)  # source column -> galexplore name
    nonfinite: Literal["reject", "mask"] = "reject"  # NaN/inf pixels: error, or set to 0
    # Image folders only: resample each composite on read to a working size. A Galaxy Zoo image
    # (212 or 424 px) shows the whole galaxy; a 64 px crop of its centre would show its core.
    center_crop: int = field(default=0, metadata=_range(ge=0, le=4096))  # stored px kept; 0: all
    resize: int = field(default=0, metadata=_range(ge=0, le=4096))  # working side, px; 0: as cropped


@dataclass(frozen=True)
class SimulateConfig:
    """The simulated survey: an SDSS-like ugriz survey drawn with GalSim, with truth."""

    n: int = field(default=2000, metadata=_range(
        ge=1, le=MAX_SIMULATED, why="each galaxy is a 5-band cutout on disk: 10^8 of 64x64 are 8 TB"))
    image_size: int = field(default=64, metadata=_range(ge=16, le=512))
    pixel_scale: float = field(default=0.396, metadata=_range(gt=0))  # SDSS, arcsec / pixel
    z_min: float = field(default=0.01, metadata=_range(gt=0, le=3))
    z_max: float = field(default=0.4, metadata=_range(gt=0, le=3))
    nz_z0: float = field(default=0.1, metadata=_range(gt=0, le=3))  # n(z) ∝ z^2 exp(-(z/z0)^1.5)
    mag_r_min: float = field(default=14.0, metadata=_range(ge=5, le=30))
    mag_r_max: float = field(default=19.0, metadata=_range(ge=5, le=30))
    spec_mag_limit: float = field(default=17.77, metadata=_range(ge=5, le=30))  # SDSS main sample
    spec_completeness: float = field(default=0.94, metadata=_range(ge=0, le=1))  # fibre collisions
    morphology_mag_limit: float = field(default=17.0, metadata=_range(ge=5, le=30))
    volunteers: int = field(default=40, metadata=_range(ge=1))  # Galaxy Zoo votes per galaxy, mean
    anomaly_rate: float = field(default=0.005, metadata=_range(ge=0, le=1))
    neighbour_rate: float = field(default=0.1, metadata=_range(ge=0, le=1))
    star_rate: float = field(default=0.05, metadata=_range(ge=0, le=1))
    ebv_median: float = field(default=0.03, metadata=_range(gt=0, le=1))  # lognormal median
    ebv_sigma_ln: float = field(default=0.6, metadata=_range(ge=0, le=3))  # lognormal width
    seeing_median: float = field(default=1.4, metadata=_range(gt=0, le=5))  # r FWHM, arcsec
    seeing_sigma_ln: float = field(default=0.15, metadata=_range(ge=0, le=2))  # lognormal width
    workers: int = field(default=2, metadata=_range(ge=1, le=256))
    chunk_size: int = field(default=256, metadata=_range(
        ge=1, le=MAX_BATCH, why="a chunk of cutouts is drawn and held in memory at once"))


@dataclass(frozen=True)
class AugmentConfig:
    """Survey-aware augmentations, applied in `order` to whole batches on the training device.

    Names in `order` are those of `galexplore.augment` (rotate, scale, jitter_crop, redden,
    psf_blur, noise); leaving one out is an ablation. The output is always crop_size x crop_size:
    without jitter_crop, a centre crop ends the pipeline. Ranges are [low, high], drawn uniformly
    once per galaxy.
    """

    # geometry first (the crop after the warps), then physics on fluxes in the order light meets it
    order: tuple[str, ...] = ("rotate", "scale", "jitter_crop", "redden", "psf_blur", "noise")
    crop_size: int = field(default=64, metadata=_range(ge=8, le=1024))  # output side, pixels
    jitter: int = field(default=7, metadata=_range(ge=0, le=256))  # max centre shift, pixels
    noise_scale: tuple[float, ...] = (1.0, 25.0)  # added sigma, in units of each band's noise
    ebv_range: tuple[float, ...] = (0.0, 0.5)  # dE(B-V), magnitudes
    extinction: tuple[float, ...] = SDSS_EXTINCTION  # R_b = A_b / E(B-V) per band
    psf_sigma: tuple[float, ...] = (0.0, 1.0)  # extra Gaussian blur, pixels
    scale_range: tuple[float, ...] = (0.9, 1.1)  # apparent size factor (> 0)


# The width of a torchvision ResNet's pooled features: the representation an encoder returns.
RESNET_REPRESENTATION_DIMS = {"resnet18": 512, "resnet50": 2048}


@dataclass(frozen=True)
class ModelConfig:
    """The encoder (a torchvision ResNet adapted to C bands) and its MoCo v2 head.

    `projection_dims` are the widths of the projection head after the representation
    (representation_dim -> projection_dims[0] -> ... -> projection_dims[-1]); the last one is the
    width of the keys and of the queue. `bn_splits` is the number of sub-batches each process
    normalises separately (shuffle-BN emulation, as MoCo's 8 GPUs on one device); 1 turns it off.
    """

    arch: Literal["resnet18", "resnet50"] = "resnet18"
    representation_dim: int = field(default=512, metadata=_range(ge=1))
    stem: Literal["imagenet", "small"] = "small"  # small: 3x3 stride-1 conv, no max-pool
    projection_dims: tuple[int, ...] = (512, 128)
    queue: int = field(default=65536, metadata=_range(
        ge=1, le=MAX_QUEUE, why="the queue holds queue x projection_dims[-1] float32 keys on the training device"))
    momentum: float = field(default=0.999, metadata=_range(gt=0, le=1))
    temperature: float = field(default=0.2, metadata=_range(gt=0))
    bn_splits: int = field(default=8, metadata=_range(ge=1, le=1024))


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


@dataclass(frozen=True)
class TrainConfig:
    """SGD with warm-up and a cosine schedule."""

    epochs: int = field(default=100, metadata=_range(ge=1))
    batch_size: int = field(default=256, metadata=_range(
        ge=2, le=MAX_BATCH, why="two augmented views of every crop of a batch are on the device at once"))
    lr: float = field(default=0.03, metadata=_range(gt=0))
    weight_decay: float = field(default=1e-4, metadata=_range(ge=0))
    warmup_epochs: int = field(default=5, metadata=_range(ge=0))
    checkpoint_every: int = field(default=500, metadata=_range(ge=1))  # optimiser steps
    loader_workers: int = field(default=2, metadata=_range(ge=0, le=64))  # DataLoader processes
    compile: bool = False  # torch.compile the model (GPU runs)


@dataclass(frozen=True)
class EmbedConfig:
    """Representations of every galaxy: the frozen backbone on centre crops, in resumable chunks.

    `pca_dim` > 0 also keeps a PCA-reduced, re-normalised copy (fitted on at most `pca_sample`
    galaxies) that the neighbours, the map, trust and anomalies are computed on: cheaper at 10^6
    galaxies and more. 0 (the default) uses the full representations everywhere: on the demo a
    PCA-64 copy kept only 91% of each galaxy's 10 most similar (the report card records this
    agreement wherever an atlas reduces). The backbone
    pools over space, so `crop_size` may exceed the training crop: the whole cutout is seen.
    """

    batch_size: int = field(default=256, metadata=_range(
        ge=1, le=MAX_BATCH, why="a batch of cutouts is on the device at once"))
    chunk_rows: int = field(default=8192, metadata=_range(  # a kill loses at most one chunk
        ge=1, le=MAX_CHUNK_ROWS, why="a chunk of chunk_rows x D representations is held in memory"))
    crop_size: int = field(default=0, metadata=_range(ge=0, le=4096))  # centre crop; 0: the training crop
    # Pooled ReLU features all lie in one orthant, so any two galaxies have a cosine similarity
    # near 1 (0.97 on average for the demo's encoder) and a gallery's similarities say nothing.
    # Centring (less the survey's mean representation) keeps every neighbour and spreads the
    # cosines over [-1, 1]: measured on gz1_dev, kNN scores within 0.01, random pairs 0.75 -> 0.01.
    center: bool = True
    pca_dim: int = field(default=0, metadata=_range(ge=0))
    pca_sample: int = field(default=200_000, metadata=_range(ge=2))


@dataclass(frozen=True)
class ProjectConfig:
    """The 2D map: UMAP (cosine), fitted on at most `fit_sample` galaxies, the rest transformed."""

    n_neighbors: int = field(default=15, metadata=_range(ge=2, le=200))
    min_dist: float = field(default=0.1, metadata=_range(ge=0, le=1))
    fit_sample: int = field(default=200_000, metadata=_range(ge=10))
    chunk_rows: int = field(default=100_000, metadata=_range(ge=1))  # rows per transform chunk


@dataclass(frozen=True)
class NeighborsConfig:
    """The k most similar galaxies of every galaxy (cosine similarity).

    method "exact" is a blocked brute-force search; "ivf" a FAISS inverted-file index (approximate,
    its recall measured on a sample and recorded in the manifest); "auto" is exact up to
    `exact_max` galaxies and ivf beyond, with `nprobe` doubled until a seeded sample of 1,000
    galaxies finds `recall_target` of its exact neighbours.
    """

    k: int = field(default=50, metadata=_range(ge=1, le=1000))
    method: Literal["auto", "exact", "ivf"] = "auto"
    exact_max: int = field(default=250_000, metadata=_range(ge=1))
    nlist: int = field(default=0, metadata=_range(ge=0))  # ivf cells; 0: about 4 sqrt(N)
    nprobe: int = field(default=16, metadata=_range(ge=1))  # ivf cells searched per query, at least
    recall_target: float = field(default=0.9, metadata=_range(ge=0, le=1))  # ivf: nprobe doubles until met


@dataclass(frozen=True)
class TrustConfig:
    """Trust: how close a galaxy sits to labelled galaxies, calibrated on the labelled ones.

    `labels` maps a label kind to the catalog column that holds it (a row is labelled where the
    value is finite); each kind gets a column `trust_<kind>`, and `trust` uses every labelled row.
    """

    k: int = field(default=10, metadata=_range(ge=1, le=1000))
    labels: dict[str, str] = field(default_factory=lambda: {"spec-z": "z_spec", "morphology": "p_features"})


@dataclass(frozen=True)
class AnomalyConfig:
    """Anomaly score from the neighbour graph (higher = rarer): "lof", the local outlier factor
    (a galaxy's kNN density against its neighbours'), or "knn", the mean cosine distance to the
    k nearest galaxies."""

    method: Literal["lof", "knn"] = "lof"
    k: int = field(default=10, metadata=_range(ge=1, le=1000))


@dataclass(frozen=True)
class ProbesConfig:
    """Which catalog columns the linear probes of the build predict (see `galexplore.evaluate.probes`).

    The spectroscopic redshift is always the column ``z_spec`` (map another name onto it with
    survey.rename). `morphology` lists columns of values in [0, 1], Galaxy Zoo vote fractions or
    0/1 flags such as a ring label, each probed with a logistic into ``<column>_pred``.
    `categorical` lists class columns (strings or integers, e.g. Galaxy Zoo 1's ``gz1_type``),
    each probed with a multinomial logistic into ``<column>_pred`` and ``<column>_prob``; a row
    whose value is empty or one of `unlabelled` has no label.
    """

    morphology: tuple[str, ...] = ("p_features", "p_edge_on")
    categorical: tuple[str, ...] = ()
    unlabelled: tuple[str, ...] = ()


@dataclass(frozen=True)
class CardConfig:
    """The report card (`galexplore.scoring.atlas_card`): every label column scored on the
    atlas's representations next to raw-pixel PCA and the same network untrained.

    `rows` labelled galaxies at most (a seeded sample) are scored, the same rows in every space;
    0 leaves the card out. `baselines` false scores the atlas's representations alone (no images
    are read again); `linear` false leaves out the linear probes (the kNN scores stay).
    """

    rows: int = field(default=5000, metadata=_range(ge=0, le=100_000, why="the kNN scores compare every pair of rows"))
    baselines: bool = True
    linear: bool = True


@dataclass(frozen=True)
class Config:
    """A whole run: the survey and every stage's settings."""

    name: str = "galexplore"
    seed: int = field(default=0, metadata=_range(ge=0, le=MAX_SEED, why="numpy, torch and UMAP take 32-bit seeds"))
    survey: SurveyConfig = field(default_factory=SurveyConfig)
    simulate: SimulateConfig = field(default_factory=SimulateConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    embed: EmbedConfig = field(default_factory=EmbedConfig)
    project: ProjectConfig = field(default_factory=ProjectConfig)
    neighbors: NeighborsConfig = field(default_factory=NeighborsConfig)
    trust: TrustConfig = field(default_factory=TrustConfig)
    anomaly: AnomalyConfig = field(default_factory=AnomalyConfig)
    probes: ProbesConfig = field(default_factory=ProbesConfig)
    card: CardConfig = field(default_factory=CardConfig)
    base_dir: str = field(default=".", metadata={"internal": True})  # the config file's folder

    def resolve(self, path: str) -> Path:
        """A path from this config, made absolute against the config file's folder."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else Path(os.path.normpath(Path(self.base_dir) / p))


def load_config(path: str | Path) -> Config:
    """Read and validate a TOML config. Raises `ConfigError` naming the file, key and value."""
    path = Path(path)
    check_regular_file(path, "a TOML config file")
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, expected a TOML config file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:  # tomllib parses nested arrays and inline tables recursively
        raise ConfigError(f"{path}: not a usable config: arrays or tables nested too deeply "
                          f"(a config nests at most a few levels)") from None
    cfg = config_from_dict(raw, source=str(path))
    return dataclasses.replace(cfg, base_dir=str(path.resolve().parent))


def config_from_dict(raw: dict[str, Any], source: str = "<config>") -> Config:
    """Build a `Config` from a parsed TOML mapping, checking every key."""
    cfg = _build(Config, raw, source, prefix="")
    if not _plain_name(cfg.name):
        raise ConfigError(
            f"{source}: name = {cfg.name!r}: expected a one-line name of at most {MAX_NAME} characters "
            f"without control characters or path separators (it names the atlas folder, data/atlas/<name>)"
        )
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
    if (cfg.survey.center_crop or cfg.survey.resize) and cfg.survey.source != "images":
        raise ConfigError(
            f"{source}: survey.center_crop / survey.resize resample 8-bit image folders on read; "
            f"survey.source = {cfg.survey.source!r} holds fluxes, which are read as stored"
        )
    _check_positions(cfg.survey, source)
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
    check_model(cfg.model, cfg.train, source)
    for i, column in enumerate(cfg.probes.morphology):
        if not column or column == "z_spec" or column in cfg.probes.morphology[:i]:
            raise ConfigError(
                f"{source}: probes.morphology[{i}] = {column!r}: expected a catalog column of values "
                f"in [0, 1], other than z_spec (the redshift probe's) and listed once"
            )
    probed = ["z_spec", *cfg.probes.morphology]
    for i, column in enumerate(cfg.probes.categorical):
        if not column or column in probed or column in cfg.probes.categorical[:i]:
            raise ConfigError(
                f"{source}: probes.categorical[{i}] = {column!r}: expected a catalog column of "
                f"classes, not z_spec or a probes.morphology column, and listed once"
            )
    for key, value in (("project.n_neighbors", cfg.project.n_neighbors - 1), ("anomaly.k", cfg.anomaly.k)):
        if value > cfg.neighbors.k:
            raise ConfigError(
                f"{source}: {key} = {value + (key == 'project.n_neighbors')} needs neighbors.k >= {value} "
                f"(it reads the neighbour graph), found neighbors.k = {cfg.neighbors.k}"
            )
    return cfg


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


def _build(cls: type, raw: Any, source: str, prefix: str) -> Any:
    """Recursively turn a TOML table into the dataclass `cls`, validating each key."""
    where = prefix.rstrip(".") or "top level"
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: [{where}] must be a table, found {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    unknown = [k for k in raw if k not in fields]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(key, list(fields), n=1)
        hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
        raise ConfigError(
            f"{source}: unknown key '{prefix}{key}'{hint}; known keys in [{where}]: "
            f"{', '.join(fields)}"
        )
    values = {}
    for name, value in raw.items():
        hint = hints[name]
        key = f"{prefix}{name}"
        if dataclasses.is_dataclass(hint):
            values[name] = _build(hint, value, source, prefix=f"{key}.")
        else:
            values[name] = _check(hint, value, source, key, fields[name].metadata)
    return cls(**values)


def _type_name(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    if origin is tuple:
        return f"a list of {typing.get_args(hint)[0].__name__}"
    if origin is dict:
        return "a table of strings"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}[hint]


def _check(hint: Any, value: Any, source: str, key: str, meta: Any) -> Any:
    """Check one value against its type hint and range; return it in the field's type."""

    def bad(expected: str) -> ConfigError:
        return ConfigError(f"{source}: {key} = {value!r}: expected {expected}")

    origin = typing.get_origin(hint)
    if origin is Literal:
        if value not in typing.get_args(hint):
            raise bad(_type_name(hint))
        return value
    if origin is tuple:
        item = typing.get_args(hint)[0]
        if not isinstance(value, list):
            raise bad(_type_name(hint))
        return tuple(_check(item, v, source, f"{key}[{i}]", {}) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise bad(_type_name(hint))
        return dict(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise bad(_type_name(hint))
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad(_type_name(hint))
    elif hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise bad("a finite number")
        value = float(value)
    elif hint is str:
        if not isinstance(value, str):
            raise bad(_type_name(hint))
        return value
    ge, le, gt = (meta.get("ge"), meta.get("le"), meta.get("gt")) if meta else (None, None, None)
    if (ge is not None and value < ge) or (le is not None and value > le) or (gt is not None and value <= gt):
        parts = [f">= {ge}" if ge is not None else "", f"> {gt}" if gt is not None else "",
                 f"<= {le}" if le is not None else ""]
        why = f" ({meta['why']})" if le is not None and value > le and meta.get("why") else ""
        raise bad("a value " + " and ".join(p for p in parts if p) + why)
    return value


def to_toml(cfg: Any) -> str:
    """Write a config dataclass back as TOML (the resolved config saved beside every output)."""
    top, tables = [], []
    for f in dataclasses.fields(cfg):
        if f.metadata.get("internal"):
            continue
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            body = "\n".join(
                f"{g.name} = {_toml_value(getattr(value, g.name))}" for g in dataclasses.fields(value)
            )
            tables.append(f"[{f.name}]\n{body}\n")
        else:
            top.append(f"{f.name} = {_toml_value(value)}")
    return "\n".join(top) + "\n\n" + "\n".join(tables)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + "".join(_TOML_ESCAPES.get(c) or (f"\\u{ord(c):04x}" if _toml_control(c) else c) for c in value) + '"'
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, (dict, types.MappingProxyType)):
        return "{" + ", ".join(f"{_toml_value(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


_TOML_ESCAPES = {"\\": "\\\\", '"': '\\"', "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _toml_control(c: str) -> bool:
    """A character a TOML basic string must escape (control characters and DEL).

    >>> tomllib.loads("x = " + _toml_value("a\\nb\\x7f\\"c")) == {"x": "a\\nb\\x7f\\"c"}
    True
    """
    return ord(c) < 0x20 or ord(c) == 0x7F


def write_resolved(cfg: Config, folder: str | Path) -> Path:
    """Write the resolved config as `config.toml` in `folder` (atomically) and return its path.

    Every default is spelled out and relative paths are made absolute, so the file reruns the
    same run from wherever it is read.
    """
    from galexplore.io import atomic_write_text

    return atomic_write_text(Path(folder) / "config.toml", to_toml(absolute_paths(cfg)))


def absolute_paths(cfg: Config) -> Config:
    """`cfg` with its survey paths made absolute against the config file's folder."""
    survey = dataclasses.replace(
        cfg.survey,
        path=str(cfg.resolve(cfg.survey.path)) if cfg.survey.path else "",
        catalog=str(cfg.resolve(cfg.survey.catalog)) if cfg.survey.catalog else "",
    )
    return dataclasses.replace(cfg, survey=survey)
