"""The config's schema: one frozen dataclass per table, with each key's type, default and range.

A key's type hint and `_range` metadata are all that `galexplore.config.fields` checks a TOML
value against; docs/config.md lists the same types and defaults (`tests/test_docs.py` compares).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

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

    `redshift` names the column of spectroscopic redshifts, probed into ``z_phot``.
    `morphology` lists columns of values in [0, 1], Galaxy Zoo vote fractions or 0/1 flags such
    as a ring label, each probed with a logistic into ``<column>_pred``.
    `categorical` lists class columns (strings or integers, e.g. Galaxy Zoo 1's ``gz1_type``),
    each probed with a multinomial logistic into ``<column>_pred`` and ``<column>_prob``; a row
    whose value is empty or one of `unlabelled` has no label.
    """

    redshift: str = "z_spec"
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
