"""The atlas: one folder of plain files, the contract between the offline pipelines and the app.

Layout (names fixed)::

    manifest.json               schema, name, times, code version, provenance, files, stages, summary
    catalog.parquet             one row per object: object_id, ra, dec and the stages' columns
    embeddings.npy              (N, D) float32, L2-normalised
    embedding_center.npy        (D,) float32, optional: the mean representation the embed stage
                                subtracted before normalising (embed.center)
    embeddings_reduced.npy      (N, d) float32, optional
    neighbors.npy               (N, k) int32, best first, itself excluded
    similarities.npy            (N, k) float16
    *.npz, *.json               small side files (e.g. pca.npz)

Every file is data only: arrays are saved and loaded with ``allow_pickle=False``, so opening a
shared atlas can never run code. Every file is written under a temporary name and renamed into
place, and the manifest records each file's shape, dtype, byte size and `file_fingerprint`, so a
truncated, swapped or foreign file is caught by `open_atlas` with a message that names it.

The contract lives in three modules: `galexplore.atlas.manifest` (the names, the manifest's
entries, fingerprints and checks), `galexplore.atlas.reader` (`open_atlas`, `Atlas`) and
`galexplore.atlas.writer` (`AtlasWriter`, which writes the manifest after every change); this
module is their one door, so that ``from galexplore.atlas.files import ...`` names any of them.
"""

from galexplore.atlas.manifest import (
    CATALOG,
    EMBEDDING_CENTER,
    EMBEDDINGS,
    FINGERPRINT_SPAN,
    MANIFEST,
    NEIGHBORS,
    NPY_READ_ERRORS,
    REDUCED,
    REQUIRED_COLUMNS,
    SCHEMA,
    SIMILARITIES,
    code_version,
    file_fingerprint,
)
from galexplore.atlas.reader import Atlas, open_atlas
from galexplore.atlas.writer import AtlasWriter
from galexplore.errors import AtlasError

__all__ = [
    "CATALOG", "EMBEDDINGS", "EMBEDDING_CENTER", "FINGERPRINT_SPAN", "MANIFEST", "NEIGHBORS", "NPY_READ_ERRORS",
    "REDUCED", "REQUIRED_COLUMNS", "SCHEMA", "SIMILARITIES", "Atlas", "AtlasError", "AtlasWriter", "code_version",
    "file_fingerprint", "open_atlas",
]
