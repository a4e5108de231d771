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

The package: `schema` (the dataclasses), `fields` (one table checked against its dataclass),
`checks` (the checks across keys), `load` (TOML in) and `resolved` (TOML out).
"""

from __future__ import annotations

from galexplore.config.checks import check_model
from galexplore.config.load import config_from_dict, load_config
from galexplore.config.resolved import _toml_value, absolute_paths, to_toml, write_resolved
from galexplore.config.schema import (
    MAX_BATCH,
    MAX_CHUNK_ROWS,
    MAX_QUEUE,
    MAX_SEED,
    MAX_SIMULATED,
    MAX_WIDTH,
    RESNET_REPRESENTATION_DIMS,
    SDSS_BANDS,
    SDSS_EXTINCTION,
    AnomalyConfig,
    AugmentConfig,
    CardConfig,
    Config,
    EmbedConfig,
    ModelConfig,
    NeighborsConfig,
    ProbesConfig,
    ProjectConfig,
    SimulateConfig,
    SurveyConfig,
    TrainConfig,
    TrustConfig,
)

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
