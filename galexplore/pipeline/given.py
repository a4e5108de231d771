"""A build from given embeddings and their catalog (`--embeddings`, `--catalog`): the two files
read and checked, and the copy of the embeddings into the atlas, which stands in for training
and embedding. No images are read.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from galexplore.atlas.files import NPY_READ_ERRORS, file_fingerprint
from galexplore.config import Config
from galexplore.errors import GalexploreError, reason
from galexplore.io import check_regular_file
from galexplore.pipeline.runner import BuildState, StageResult


@dataclass(frozen=True)
class Given:
    """The given files and the embeddings (N, D), memory-mapped."""

    embeddings: Path
    catalog: Path
    array: np.ndarray

    @cached_property
    def fingerprints(self) -> list[str]:
        """What the embed stage's fingerprint takes of them: each file's own."""
        return [file_fingerprint(self.embeddings), file_fingerprint(self.catalog)]

    def provenance(self) -> dict[str, Any]:
        """What the atlas manifest records of where the embeddings came from."""
        return {"path": str(self.embeddings.resolve()), "catalog": str(self.catalog.resolve()),
                "fingerprint": self.fingerprints}


def open_given(embeddings: Path, catalog: Path, config: Config) -> tuple[Given, pd.DataFrame]:
    """The given embeddings and their catalog, refused unless each is readable and they have
    one catalog row per embedding."""
    array = open_embeddings(embeddings)
    table = given_catalog(catalog, config)
    if len(table) != len(array):
        raise GalexploreError(
            f"{catalog}: {len(table):,} catalog rows but {embeddings} has {len(array):,} embeddings; "
            f"expected one catalog row per embedding, in the same order"
        )
    return Given(embeddings, catalog, array), table


def given_catalog(path: Path, config: Config) -> pd.DataFrame:
    """A catalog file given with embeddings: CSV, FITS or Parquet, with object_id/ra/dec."""
    from galexplore.survey.base import check_catalog
    from galexplore.survey.catalogs import catalog_positions, read_catalog_file, table_to_frame

    table = table_to_frame(read_catalog_file(path), config.survey.bands)
    table = catalog_positions(table, config.survey, str(path))
    return check_catalog(table, len(table), str(path), config.survey.positions)


def open_embeddings(path: Path) -> np.ndarray:
    """A .npy file of N x D floats, memory-mapped; never a pickle."""
    if not path.exists():
        raise GalexploreError(f"{path}: embeddings file not found")
    check_regular_file(path, "a .npy array of N objects x D dimensions")
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except NPY_READ_ERRORS as exc:
        if "object" in str(exc).lower():  # numpy's refusal of an object array: unpickling could run code
            raise GalexploreError(f"{path}: holds Python objects (a pickle), which galexplore never loads; "
                                  f"expected a float array of N objects x D dimensions") from None
        raise GalexploreError(f"{path}: not a readable .npy array ({reason(exc)})") from None
    if not isinstance(array, np.ndarray):  # np.load opens an .npz archive too
        array.close()
        raise GalexploreError(f"{path}: an .npz archive of arrays; expected one .npy array of N objects x D dimensions")
    if array.ndim != 2 or array.shape[1] < 2 or array.dtype.kind != "f":
        raise GalexploreError(
            f"{path}: embeddings of shape {array.shape} and dtype {array.dtype}; expected a 2-D "
            f"float array (N objects, D >= 2 dimensions)"
        )
    return array


def unit_length_rows(block: np.ndarray, source: Path, start: int) -> np.ndarray:
    """Rows `start`... of given embeddings scaled to unit length, float32.

    Each row is divided by its largest absolute value before its norm is taken, so a row of
    values near float32's limit (1e38, whose squares overflow) keeps its direction, and one of
    tiny values (whose squares underflow) is not taken for zeros.

    >>> unit_length_rows(np.array([[1.5e38, 2e38], [3e-40, -4e-40]], np.float32), Path("e.npy"), 0).astype(float).round(4).tolist()
    [[0.6, 0.8], [0.6, -0.8]]
    """
    block = np.asarray(block)
    bad = ~np.isfinite(block).all(axis=1)
    if bad.any():
        raise GalexploreError(f"{source}: row {start + int(np.flatnonzero(bad)[0])} has NaN or infinite values")
    scale = np.abs(block).max(axis=1, keepdims=True).astype(np.float64)  # (B, 1)
    if (scale == 0).any():
        raise GalexploreError(f"{source}: row {start + int(np.flatnonzero(scale[:, 0] == 0)[0])} is all zeros")
    scaled = block / scale  # float64, every value in [-1, 1]
    return (scaled / np.linalg.norm(scaled, axis=1, keepdims=True)).astype(np.float32)


def copy_embeddings(state: BuildState) -> StageResult:
    """The embed stage of a build from given embeddings: each row scaled to unit length."""
    given, n, chunk_rows = state.given, state.n, state.config.embed.chunk_rows
    update = state.progress(n)
    with state.writer.create_array("embeddings.npy", given.array.shape, np.float32) as target:
        for start in range(0, n, chunk_rows):
            stop = min(start + chunk_rows, n)
            target[start:stop] = unit_length_rows(given.array[start:stop], given.embeddings, start)
            update(stop - start)
    dim = int(given.array.shape[1])
    return StageResult(f"{n:,} x {dim} from {given.embeddings.name}", {"dim": dim})
