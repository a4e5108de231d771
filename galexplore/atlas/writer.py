"""Writing an atlas: `AtlasWriter` writes each file under a temporary name, renames it into
place and records it in the manifest before returning.

What is on disk and what the manifest says never disagree by more than the one file being
renamed, and a writer reopened after a crash drops the entries it cannot verify (and the stages
that listed them as ``outputs``), so they are redone. One writer at a time per atlas.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from galexplore.atlas.manifest import (
    CATALOG,
    MANIFEST,
    REQUIRED_COLUMNS,
    SCHEMA,
    check_file,
    code_version,
    count_rows,
    file_entry,
    plain,
    read_manifest,
    utc_now,
    valid_name,
)
from galexplore.atlas.reader import Atlas
from galexplore.errors import AtlasError, reason
from galexplore.io import atomic_path, atomic_write_text, make_folder, remove_partials

#: manifest keys that only the writer itself sets
_RESERVED = ("schema", "created", "updated", "code_version", "n_objects", "files", "stages", "summary")


class AtlasWriter:
    """Writes the files of the atlas at `folder` and keeps its manifest in step with them.

    Each ``write_*``, ``create_array``, ``remove`` and ``set*`` writes the manifest before returning.
    Reopening an existing atlas keeps its files, stages and creation time, and rewrites nothing
    until something changes; entries whose file is missing or no longer matches (a crash between
    a rename and the manifest) are dropped and listed in `dropped`, with the stages whose
    ``outputs`` named them.

    Files of one row per object (`per_object`, the default for ``.npy`` and the catalog) must all
    have the same number of rows, which becomes ``n_objects``; a file that disagrees is refused
    before it is written. To change N, `remove` the stale files first.
    """

    def __init__(self, folder: str | Path, name: str, provenance: dict[str, Any] | None = None) -> None:
        self.path = make_folder(folder)
        self._code_version = code_version()
        self.dropped: list[str] = []
        recorded = None
        if (self.path / MANIFEST).exists():
            self.manifest = read_manifest(self.path)
            recorded = json.dumps(self.manifest, sort_keys=True)
            for file, entry in list(self.manifest["files"].items()):
                try:
                    check_file(self.path, file, entry)
                except AtlasError:
                    self._forget(file)
                    self.dropped.append(file)
        else:
            now = utc_now()
            self.manifest = {
                "schema": SCHEMA, "name": name, "created": now, "updated": now,
                "code_version": self._code_version, "n_objects": None, "provenance": {},
                "files": {}, "stages": {}, "summary": {},
            }
        self.manifest["name"] = name
        self.manifest["provenance"].update(plain(provenance or {}))
        remove_partials(self.path)  # left by a writer that was killed mid-write
        if json.dumps(self.manifest, sort_keys=True) != recorded:
            self.commit()  # an atlas opened and left as it was is not rewritten

    @property
    def files(self) -> dict[str, dict[str, Any]]:
        """The manifest's file entries, by file name."""
        return self.manifest["files"]

    def has(self, name: str) -> bool:
        """Whether the manifest lists `name`."""
        return name in self.manifest["files"]

    def is_valid(self, name: str) -> bool:
        """Whether the manifest lists `name` and the file on disk still is the one it describes."""
        if name not in self.manifest["files"]:
            return False
        try:
            check_file(self.path, name, self.manifest["files"][name])
        except AtlasError:
            return False
        return True

    def reader(self) -> Atlas:
        """The atlas as written so far, for a stage that reads what an earlier one wrote."""
        return Atlas(self.path, json.loads(json.dumps(self.manifest)))

    def write_array(self, name: str, array: np.ndarray, *, per_object: bool = True) -> Path:
        """Save `array` as ``.npy`` file `name`; returns its path."""
        _check_name(name, ".npy")
        array = np.asarray(array)
        _check_storable(self.path, name, array.dtype)
        if per_object:
            self._check_rows(name, array.shape)
        path = self.path / name
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, array, allow_pickle=False)
                _sync(f)
            entry = file_entry(tmp, array.shape, str(array.dtype), per_object)
        return self._record(name, entry)

    @contextlib.contextmanager
    def create_array(
        self, name: str, shape: Iterable[int], dtype: Any, *, per_object: bool = True
    ) -> Iterator[np.memmap]:
        """A writable memory-mapped ``.npy`` of `shape` to fill in place (chunk by chunk when it
        is larger than memory); it takes the name `name` only when the block ends without error."""
        _check_name(name, ".npy")
        dtype = np.dtype(dtype)
        shape = tuple(int(s) for s in shape)
        _check_storable(self.path, name, dtype)
        if per_object:
            self._check_rows(name, shape)
        with atomic_path(self.path / name) as tmp:
            array = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
            yield array
            array.flush()
            entry = file_entry(tmp, shape, str(dtype), per_object)
        self._record(name, entry)

    def write_catalog(self, table: pd.DataFrame) -> Path:
        """Save the one-row-per-object catalog (its index is not kept); returns its path."""
        for column in REQUIRED_COLUMNS:
            if column not in table.columns:
                raise AtlasError(f"atlas {self.path}: {CATALOG}: the catalog has no column {column!r}; "
                                 f"an atlas catalog needs {', '.join(REQUIRED_COLUMNS)}")
        bad = [c for c in table.columns if not isinstance(c, str)]
        if bad:
            raise AtlasError(f"atlas {self.path}: {CATALOG}: column name {bad[0]!r} is not a string")
        repeated = table["object_id"].duplicated()
        if repeated.any():
            example = table["object_id"][repeated].iloc[0]
            example = example.item() if isinstance(example, np.generic) else example
            raise AtlasError(f"atlas {self.path}: {CATALOG}: column 'object_id' is not unique: "
                             f"{example!r} appears more than once ({int(repeated.sum())} repeats in all)")
        self._check_rows(CATALOG, (len(table),))
        path = self.path / CATALOG
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                try:
                    table.to_parquet(f, engine="pyarrow", index=False)
                except pa.ArrowException as exc:  # e.g. a column of mixed Python objects
                    raise AtlasError(f"atlas {self.path}: {CATALOG}: cannot store the catalog ({reason(exc)})") from None
                _sync(f)
            entry = file_entry(tmp, (len(table), len(table.columns)), "parquet", True)
            entry["columns"] = list(table.columns)
        return self._record(CATALOG, entry)

    def write_npz(self, name: str, **arrays: np.ndarray) -> Path:
        """Save a few small arrays together as ``.npz`` file `name` (uncompressed, no pickles)."""
        _check_name(name, ".npz")
        arrays = {key: np.asarray(value) for key, value in arrays.items()}
        for key, value in arrays.items():
            _check_storable(self.path, f"{name}[{key}]", value.dtype)
        with atomic_path(self.path / name) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
                _sync(f)
            entry = file_entry(tmp, None, "npz", False)
            entry["arrays"] = {key: {"shape": list(v.shape), "dtype": str(v.dtype)} for key, v in arrays.items()}
        return self._record(name, entry)

    def write_json(self, name: str, obj: Any) -> Path:
        """Save JSON data (numpy scalars and arrays, paths and tuples converted; NaN as null)."""
        _check_name(name, ".json")
        text = json.dumps(plain(obj), indent=2, allow_nan=False) + "\n"
        with atomic_path(self.path / name) as tmp:
            tmp.write_text(text, encoding="utf-8")
            entry = file_entry(tmp, None, "json", False)
        return self._record(name, entry)

    def remove(self, name: str) -> None:
        """Delete file `name` and its entry (and the stages that list it as an output)."""
        self._forget(name)
        (self.path / name).unlink(missing_ok=True)
        self.commit()

    def set_stage(self, stage: str, info: dict[str, Any]) -> None:
        """Record that `stage` finished, with what the pipeline wants to remember (fingerprint,
        seconds, ...). An ``outputs`` list of file names ties the stage to those files. The code
        version that ran it is added (the manifest's own is that of the latest writer)."""
        self.manifest["stages"][stage] = {"code_version": self._code_version, **plain(info)}
        self.commit()

    def set_summary(self, values: dict[str, Any]) -> None:
        """Merge `values` into the manifest's summary."""
        self.manifest["summary"].update(plain(values))
        self.commit()

    def set(self, key: str, value: Any) -> None:
        """Set a top-level manifest field such as ``name`` or ``provenance``."""
        if key in _RESERVED:
            raise ValueError(f"manifest key {key!r} is kept by the writer itself")
        self.manifest[key] = plain(value)
        self.commit()

    def commit(self) -> Path:
        """Write manifest.json (atomically) after checking every per-object file has N rows."""
        self.manifest["n_objects"] = count_rows(self.path, self.manifest["files"])
        self.manifest["updated"] = utc_now()
        self.manifest["code_version"] = self._code_version
        return atomic_write_text(self.path / MANIFEST, json.dumps(self.manifest, indent=2, allow_nan=False) + "\n")

    def _check_rows(self, name: str, shape: tuple[int, ...]) -> None:
        if len(shape) == 0:
            raise AtlasError(f"atlas {self.path}: {name}: a per-object file needs one row per object, got a scalar")
        others = {file: entry for file, entry in self.manifest["files"].items() if file != name}
        count_rows(self.path, {**others, name: {"shape": list(shape), "per_object": True}})

    def _record(self, name: str, entry: dict[str, Any]) -> Path:
        self.manifest["files"][name] = entry
        self.commit()
        return self.path / name

    def _forget(self, name: str) -> None:
        self.manifest["files"].pop(name, None)
        stages = self.manifest["stages"]
        for stage in [s for s, info in stages.items() if isinstance(info, dict) and name in (info.get("outputs") or ())]:
            del stages[stage]


def _check_storable(folder: Path, name: str, dtype: np.dtype) -> None:
    """Refuse a dtype of Python objects: an atlas holds data only, never pickles."""
    if dtype.hasobject:
        raise AtlasError(f"atlas {folder}: {name}: dtype {dtype} holds Python objects, which an "
                         f"atlas never stores (they need pickle); convert to numbers or strings first")


def _check_name(name: str, suffix: str | None) -> None:
    if not valid_name(name):
        raise ValueError(f"{name!r}: an atlas file name is a plain name such as 'embeddings.npy'")
    if suffix is not None and not name.endswith(suffix):
        raise ValueError(f"{name!r}: expected a name ending in {suffix}")


def _sync(f: Any) -> None:
    # on disk before the rename, so a power cut cannot leave a complete name over empty blocks
    f.flush()
    os.fsync(f.fileno())
