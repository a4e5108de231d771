"""The stages of `galexplore build`, in order, each declared once: the function that runs it,
what its fingerprint hashes, the files it writes and when it is not needed.

    simulate -> train -> embed -> reduce -> neighbors -> project -> scores -> probes -> catalog -> card

A stage's fingerprint is a hash of its name and its key: config tables and keys, and the
fingerprints of the stages and input files it reads (a file's is its size plus its first and
last MiB). So a change reruns exactly the stages downstream of it: `project.min_dist` reruns the
map and the catalog, `neighbors.k` the graph and everything after it. The keys are those of the
atlases built before the stages were declared here, part for part, so those stay up to date.

The build's input files: ``survey`` (the survey file or folder) or ``given`` (the --embeddings and
--catalog files); ``provenance.embeddings`` is where given embeddings came from.
"""

from __future__ import annotations

import dataclasses

from galexplore.atlas.files import EMBEDDING_CENTER
from galexplore.config import Config
from galexplore.evaluate.probes import CROSS_FIT_FOLDS
from galexplore.pipeline.card import card_not_needed, run_card, uses_baselines
from galexplore.pipeline.given import copy_embeddings
from galexplore.pipeline.map_stages import (
    reduce_not_needed,
    run_catalog,
    run_neighbors,
    run_probes,
    run_project,
    run_reduce,
    run_scores,
)
from galexplore.pipeline.runner import SEED, BuildState, Derived, Input, Key, Provenance, Stage, Table, Tables, fingerprint
from galexplore.pipeline.survey_stages import (
    run_embed,
    run_simulate,
    run_train,
    simulation_not_needed,
    simulation_up_to_date,
)


def _labelled_by(config: Config, state: BuildState) -> str:
    """What decides which rows are labelled: the embedding, the trust labels, and the class keys
    only when set, so that an atlas built before class columns existed stays up to date."""
    parts = [state.fingerprints["embed"], dataclasses.asdict(config.trust)]
    if config.probes.categorical:
        parts.append({"categorical": config.probes.categorical, "unlabelled": config.probes.unlabelled})
    return fingerprint(*parts)


LABELLED = Derived(_labelled_by, reads=("trust", "probes.categorical", "probes.unlabelled"), inputs=("embed",))
BASELINES = Derived(uses_baselines, reads=("card.baselines",))

#: before the survey is opened: it makes the survey (its record is the config written beside it)
SIMULATE = Stage("simulate", run_simulate, key=(Table("simulate"), SEED),
                 needed=simulation_not_needed, fresh=simulation_up_to_date)

#: with the survey open, on every process of a torchrun job
TRAIN = Stage("train", run_train, key=(Tables(("survey", "augment", "model", "train")), SEED, Input("survey")),
              outputs=("encoder.npz", "encoder.json"))
EMBED = Stage("embed", run_embed,
              key=(Input("train"), Key("embed.batch_size"), Key("embed.chunk_rows"), Key("embed.crop_size"),
                   Key("embed.center"), Input("survey")),
              outputs=("embeddings.npy", EMBEDDING_CENTER))
FROM_SURVEY = (TRAIN, EMBED)

#: instead, from given embeddings and their catalog
FROM_EMBEDDINGS = (Stage("embed", copy_embeddings, key=(Input("given"),), outputs=("embeddings.npy",)),)

#: after the embedding, on rank 0
MAPS = (
    Stage("reduce", run_reduce, key=(Input("embed"), Key("embed.pca_dim"), Key("embed.pca_sample"), SEED),
          outputs=("embeddings_reduced.npy", "pca.npz"), needed=reduce_not_needed),
    Stage("neighbors", run_neighbors, key=(Input("reduce"), Table("neighbors"), SEED),
          outputs=("neighbors.npy", "similarities.npy")),
    Stage("project", run_project, key=(Input("neighbors"), Table("project"), SEED), outputs=("umap.npy",)),
    Stage("scores", run_scores, key=(Input("neighbors"), LABELLED, Table("anomaly")), outputs=("scores.npy",)),
    # the folds are in the key: an atlas whose labelled predictions were in-sample reruns
    Stage("probes", run_probes, key=(Input("embed"), LABELLED, SEED, {"folds": CROSS_FIT_FOLDS}, Table("probes")),
          outputs=("probes.npy",)),
    Stage("catalog", run_catalog,
          key=(Input("project"), Input("scores"), Input("probes"), Input("train"), Provenance("embeddings")),
          outputs=("catalog.parquet",)),
    Stage("card", run_card,
          key=(Input("embed"), Input("reduce", when_needed=True), Table("card"), Table("probes"), SEED, BASELINES),
          needed=card_not_needed),
)

STAGES = tuple(stage.name for stage in (SIMULATE, *FROM_SURVEY, *MAPS))
