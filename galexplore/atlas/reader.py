"""Reading an atlas: `open_atlas` checks the folder against its manifest and returns an
`Atlas`, whose arrays are memory-mapped read-only and whose catalog is read once."""

from __future__ import annotations

import functools
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from galexplore.atlas.manifest import (
    CATALOG,
    EMBEDDINGS,
    MANIFEST,
    NEIGHBORS,
    NPY_READ_ERRORS,
    REDUCED,
    SIMILARITIES,
    check_file,
    count_rows,
    load_npy,
    parse_json,
    read_manifest,
)
from galexplore.errors import AtlasError, reason

class Atlas:
    """A validated atlas, opened by `open_atlas`. Arrays are memory-mapped read-only; the catalog
    is read once and cached (share it, do not modify it)."""

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.path = path
        self.manifest = manifest
        self._arrays: dict[str, np.ndarray] = {}

    def __repr__(self) -> str:
        return f"Atlas({str(self.path)!r}, name={self.name!r}, n_objects={self.n_objects})"

    @property
    def name(self) -> str:
        return self.manifest["name"]

    @property
    def n_objects(self) -> int:
        """N, the number of objects (0 while the atlas has no per-object file)."""
        return self.manifest["n_objects"] or 0

    @property
    def files(self) -> dict[str, dict[str, Any]]:
        """The manifest's file entries (shape, dtype, bytes, fingerprint), by file name."""
        return self.manifest["files"]

    @property
    def stages(self) -> dict[str, dict[str, Any]]:
        return self.manifest["stages"]

    @property
    def embeddings(self) -> np.ndarray | None:
        """(N, D) float32, L2-normalised."""
        return self._optional(EMBEDDINGS)

    @property
    def reduced(self) -> np.ndarray | None:
        """(N, d) float32, the embeddings reduced for projection and search (optional)."""
        return self._optional(REDUCED)

    @property
    def neighbors(self) -> np.ndarray | None:
        """(N, k) int32, row i's most similar objects, best first, itself excluded."""
        return self._optional(NEIGHBORS)

    @property
    def similarities(self) -> np.ndarray | None:
        """(N, k) float16, the cosine similarity of each of `neighbors`."""
        return self._optional(SIMILARITIES)

    @functools.cached_property
    def catalog(self) -> pd.DataFrame:
        """The whole catalog, read once."""
        return self.read_catalog()

    @property
    def columns(self) -> list[str]:
        """The catalog's column names, from the manifest."""
        return list(self._entry(CATALOG).get("columns", []))

    def read_catalog(self, columns: Iterable[str] | None = None) -> pd.DataFrame:
        """The catalog, or only `columns` of it."""
        columns = None if columns is None else list(columns)
        self._entry(CATALOG)
        unknown = [c for c in columns or () if c not in self.columns]
        if unknown:
            raise AtlasError(f"atlas {self.path}: {CATALOG} has no column {unknown[0]!r}")
        try:
            return pd.read_parquet(self.path / CATALOG, columns=columns, engine="pyarrow")
        except (OSError, ValueError, TypeError, pa.ArrowException) as exc:  # damaged pages, a forged schema
            raise AtlasError(f"atlas {self.path}: {CATALOG} cannot be read ({reason(exc)})") from None

    def iter_catalog(self, columns: Iterable[str] | None = None, batch_rows: int = 1 << 20) -> Iterator[pd.DataFrame]:
        """The catalog in batches of at most `batch_rows` rows, for passes over very large atlases."""
        self._entry(CATALOG)
        columns = None if columns is None else list(columns)
        for batch in pq.ParquetFile(self.path / CATALOG).iter_batches(batch_size=batch_rows, columns=columns):
            yield batch.to_pandas()

    def catalog_dtypes(self) -> dict[str, str]:
        """Each catalog column's pandas dtype, from the Parquet schema alone."""
        self._entry(CATALOG)
        empty = pq.read_schema(self.path / CATALOG).empty_table().to_pandas()
        return {str(name): str(dtype) for name, dtype in empty.dtypes.items()}

    def has(self, name: str) -> bool:
        """Whether the atlas holds file `name`."""
        return name in self.manifest["files"]

    def array(self, name: str) -> np.ndarray:
        """The ``.npy`` file `name`, memory-mapped read-only."""
        if name not in self._arrays:
            self._entry(name)
            self._arrays[name] = load_npy(self.path, name)
        return self._arrays[name]

    def npz(self, name: str) -> dict[str, np.ndarray]:
        """The arrays of the ``.npz`` file `name`."""
        self._entry(name)
        try:
            with np.load(self.path / name, allow_pickle=False) as arrays:
                return {key: arrays[key] for key in arrays.files}
        except (*NPY_READ_ERRORS, KeyError, zipfile.BadZipFile, zlib.error) as exc:
            raise AtlasError(f"atlas {self.path}: {name} is not a readable data-only .npz file ({reason(exc)})") from None

    def json(self, name: str) -> Any:
        """The contents of the ``.json`` file `name`."""
        self._entry(name)
        try:
            return parse_json((self.path / name).read_text(encoding="utf-8"))
        except ValueError as exc:  # JSONDecodeError, not UTF-8, nested too deeply
            raise AtlasError(f"atlas {self.path}: {name} is not valid JSON ({reason(exc)})") from None

    def _optional(self, name: str) -> np.ndarray | None:
        return self.array(name) if self.has(name) else None

    def _entry(self, name: str) -> dict[str, Any]:
        if name not in self.manifest["files"]:
            listed = ", ".join(sorted(self.manifest["files"])) or "none"
            raise AtlasError(f"atlas {self.path}: no {name} (its files: {listed})")
        return self.manifest["files"][name]


def open_atlas(path: str | Path, require: Iterable[str] = (CATALOG, EMBEDDINGS, NEIGHBORS)) -> Atlas:
    """Open and validate the atlas at `path`: manifest schema, each file's size, fingerprint and
    shape, one row per object throughout, the catalog's required columns, the `require`d files."""
    folder = Path(path)
    if not folder.is_dir():
        raise AtlasError(f"atlas {folder}: {'not a folder' if folder.exists() else 'no such folder'}")
    manifest = read_manifest(folder)
    files = manifest["files"]
    for name in require:
        if name not in files:
            listed = ", ".join(sorted(files)) or "none"
            raise AtlasError(f"atlas {folder}: {name} is required but not in {MANIFEST} (its files: {listed}); "
                             f"has the stage that writes it run?")
    for name, entry in files.items():
        check_file(folder, name, entry)
    n = count_rows(folder, files)
    if n != manifest["n_objects"]:
        raise AtlasError(f"atlas {folder}: {MANIFEST} says n_objects {manifest['n_objects']} but its files have {n} rows")
    return Atlas(folder, manifest)
