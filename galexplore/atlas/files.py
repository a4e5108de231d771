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

`AtlasWriter` writes the manifest after every change: what is on disk and what the manifest says
never disagree by more than the one file being renamed, and a writer reopened after a crash drops
the entries it cannot verify (and the stages that listed them as ``outputs``), so they are redone.
One writer at a time per atlas.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import hashlib
import json
import math
import os
import subprocess
import tokenize
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

import galexplore
from galexplore.errors import GalexploreError, reason
from galexplore.io import atomic_path, atomic_write_text, make_folder, remove_partials, special_file

SCHEMA = "galexplore-atlas/1"
MANIFEST = "manifest.json"
CATALOG = "catalog.parquet"
EMBEDDINGS = "embeddings.npy"
EMBEDDING_CENTER = "embedding_center.npy"
REDUCED = "embeddings_reduced.npy"
NEIGHBORS = "neighbors.npy"
SIMILARITIES = "similarities.npy"
REQUIRED_COLUMNS = ("object_id", "ra", "dec")
#: a fingerprint hashes the size and this many bytes from each end of a file
FINGERPRINT_SPAN = 1 << 20
#: manifest keys that only the writer itself sets
_RESERVED = ("schema", "created", "updated", "code_version", "n_objects", "files", "stages", "summary")


class AtlasError(GalexploreError):
    """An atlas folder is missing, inconsistent, foreign or cannot hold what was asked of it."""


def file_fingerprint(path: str | Path) -> str:
    """sha256 of a file's size, first MiB and last MiB: cheap at any size, and it catches a
    truncated, swapped or foreign file (not a change confined to the middle of a large one)."""
    path = Path(path)
    size = path.stat().st_size
    digest = hashlib.sha256(f"{size}\n".encode())
    with open(path, "rb") as f:
        digest.update(f.read(FINGERPRINT_SPAN))
        if size > FINGERPRINT_SPAN:
            f.seek(max(FINGERPRINT_SPAN, size - FINGERPRINT_SPAN))
            digest.update(f.read(FINGERPRINT_SPAN))
    return digest.hexdigest()


def code_version() -> str:
    """galexplore's version, plus the source tree's git commit (and ``-dirty``) when it has one."""
    root = Path(galexplore.__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return galexplore.__version__  # an installed package: no source tree to describe
    # `describe --dirty` refreshes the index under index.lock, which can break a commit made at the
    # same moment in this checkout; `status` with optional locks off asks the same without locking.
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
    try:
        run = functools.partial(subprocess.run, capture_output=True, text=True, timeout=10, env=env, check=True)
        commit = run(["git", "-C", str(root), "describe", "--always"]).stdout.strip()
        changed = run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"]).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return galexplore.__version__  # no git, not a repository, or one git refuses to read
    return f"{galexplore.__version__} ({commit}{'-dirty' if changed else ''})"


class AtlasWriter:
    """Writes the files of the atlas at `folder` and keeps its manifest in step with them.

    Each ``write_*``/``create_*``, ``remove`` and ``set*`` writes the manifest before returning.
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
            self.manifest = _read_manifest(self.path)
            recorded = json.dumps(self.manifest, sort_keys=True)
            for file, entry in list(self.manifest["files"].items()):
                try:
                    _check_file(self.path, file, entry)
                except AtlasError:
                    self._forget(file)
                    self.dropped.append(file)
        else:
            now = _now()
            self.manifest = {
                "schema": SCHEMA, "name": name, "created": now, "updated": now,
                "code_version": self._code_version, "n_objects": None, "provenance": {},
                "files": {}, "stages": {}, "summary": {},
            }
        self.manifest["name"] = name
        self.manifest["provenance"].update(_plain(provenance or {}))
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
            _check_file(self.path, name, self.manifest["files"][name])
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
        self._check_storable(name, array.dtype)
        if per_object:
            self._check_rows(name, array.shape)
        path = self.path / name
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, array, allow_pickle=False)
                _sync(f)
            entry = _entry(tmp, array.shape, str(array.dtype), per_object)
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
        self._check_storable(name, dtype)
        if per_object:
            self._check_rows(name, shape)
        with atomic_path(self.path / name) as tmp:
            array = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
            yield array
            array.flush()
            entry = _entry(tmp, shape, str(dtype), per_object)
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
            entry = _entry(tmp, (len(table), len(table.columns)), "parquet", True)
            entry["columns"] = list(table.columns)
        return self._record(CATALOG, entry)

    def write_npz(self, name: str, **arrays: np.ndarray) -> Path:
        """Save a few small arrays together as ``.npz`` file `name` (uncompressed, no pickles)."""
        _check_name(name, ".npz")
        arrays = {key: np.asarray(value) for key, value in arrays.items()}
        for key, value in arrays.items():
            self._check_storable(f"{name}[{key}]", value.dtype)
        with atomic_path(self.path / name) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
                _sync(f)
            entry = _entry(tmp, None, "npz", False)
            entry["arrays"] = {key: {"shape": list(v.shape), "dtype": str(v.dtype)} for key, v in arrays.items()}
        return self._record(name, entry)

    def write_json(self, name: str, obj: Any) -> Path:
        """Save JSON data (numpy scalars and arrays, paths and tuples converted; NaN as null)."""
        _check_name(name, ".json")
        text = json.dumps(_plain(obj), indent=2, allow_nan=False) + "\n"
        with atomic_path(self.path / name) as tmp:
            tmp.write_text(text, encoding="utf-8")
            entry = _entry(tmp, None, "json", False)
        return self._record(name, entry)

    @contextlib.contextmanager
    def create_file(self, name: str) -> Iterator[Path]:
        """A temporary path for a data file written by another library (e.g. a FAISS index); it
        takes the name `name`, and is recorded, only when the block ends without error."""
        _check_name(name, None)
        with atomic_path(self.path / name) as tmp:
            yield tmp
            entry = _entry(tmp, None, "file", False)
        self._record(name, entry)

    def remove(self, name: str) -> None:
        """Delete file `name` and its entry (and the stages that list it as an output)."""
        self._forget(name)
        (self.path / name).unlink(missing_ok=True)
        self.commit()

    def set_stage(self, stage: str, info: dict[str, Any]) -> None:
        """Record that `stage` finished, with what the pipeline wants to remember (fingerprint,
        seconds, ...). An ``outputs`` list of file names ties the stage to those files. The code
        version that ran it is added (the manifest's own is that of the latest writer)."""
        self.manifest["stages"][stage] = {"code_version": self._code_version, **_plain(info)}
        self.commit()

    def set_summary(self, values: dict[str, Any]) -> None:
        """Merge `values` into the manifest's summary."""
        self.manifest["summary"].update(_plain(values))
        self.commit()

    def set(self, key: str, value: Any) -> None:
        """Set a top-level manifest field such as ``name`` or ``provenance``."""
        if key in _RESERVED:
            raise ValueError(f"manifest key {key!r} is kept by the writer itself")
        self.manifest[key] = _plain(value)
        self.commit()

    def commit(self) -> Path:
        """Write manifest.json (atomically) after checking every per-object file has N rows."""
        self.manifest["n_objects"] = _count_rows(self.path, self.manifest["files"])
        self.manifest["updated"] = _now()
        self.manifest["code_version"] = self._code_version
        return atomic_write_text(self.path / MANIFEST, json.dumps(self.manifest, indent=2, allow_nan=False) + "\n")

    def _check_storable(self, name: str, dtype: np.dtype) -> None:
        if dtype.hasobject:
            raise AtlasError(f"atlas {self.path}: {name}: dtype {dtype} holds Python objects, which an "
                             f"atlas never stores (they need pickle); convert to numbers or strings first")

    def _check_rows(self, name: str, shape: tuple[int, ...]) -> None:
        if len(shape) == 0:
            raise AtlasError(f"atlas {self.path}: {name}: a per-object file needs one row per object, got a scalar")
        others = {file: entry for file, entry in self.manifest["files"].items() if file != name}
        _count_rows(self.path, {**others, name: {"shape": list(shape), "per_object": True}})

    def _record(self, name: str, entry: dict[str, Any]) -> Path:
        self.manifest["files"][name] = entry
        self.commit()
        return self.path / name

    def _forget(self, name: str) -> None:
        self.manifest["files"].pop(name, None)
        stages = self.manifest["stages"]
        for stage in [s for s, info in stages.items() if isinstance(info, dict) and name in (info.get("outputs") or ())]:
            del stages[stage]


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
            self._arrays[name] = _load_npy(self.path, name)
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
            return _parse_json((self.path / name).read_text(encoding="utf-8"))
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
    manifest = _read_manifest(folder)
    files = manifest["files"]
    for name in require:
        if name not in files:
            listed = ", ".join(sorted(files)) or "none"
            raise AtlasError(f"atlas {folder}: {name} is required but not in {MANIFEST} (its files: {listed}); "
                             f"has the stage that writes it run?")
    for name, entry in files.items():
        _check_file(folder, name, entry)
    n = _count_rows(folder, files)
    if n != manifest["n_objects"]:
        raise AtlasError(f"atlas {folder}: {MANIFEST} says n_objects {manifest['n_objects']} but its files have {n} rows")
    return Atlas(folder, manifest)


def _read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    _check_regular(folder, MANIFEST)
    try:
        manifest = _parse_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AtlasError(f"atlas {folder}: no {MANIFEST}; not an atlas, or no stage has finished yet") from None
    except OSError as exc:
        raise AtlasError(f"atlas {folder}: {MANIFEST}: cannot read it ({exc.strerror})") from None
    except ValueError as exc:  # JSONDecodeError, or bytes that are not UTF-8
        raise AtlasError(f"atlas {folder}: {MANIFEST} is not valid JSON ({reason(exc)})") from None
    schema = manifest.get("schema") if isinstance(manifest, dict) else None
    if schema != SCHEMA:
        ours = isinstance(schema, str) and schema.startswith(SCHEMA.split("/")[0] + "/")
        why = ("written by another version of galexplore; rebuild it with this one" if ours
               else "not a galexplore atlas")
        raise AtlasError(f"atlas {folder}: {MANIFEST} has schema {schema!r}, expected {SCHEMA!r}: {why}")
    for key, kind in (("name", str), ("files", dict), ("stages", dict), ("provenance", dict), ("summary", dict)):
        if not isinstance(manifest.get(key), kind):
            raise AtlasError(f"atlas {folder}: {MANIFEST}: {key!r} is missing or not a {kind.__name__}")
    if manifest.get("n_objects") is not None and not _count(manifest["n_objects"]):
        raise AtlasError(f"atlas {folder}: {MANIFEST}: 'n_objects' is not an integer")
    for name, entry in manifest["files"].items():
        if not (_valid_name(name) and isinstance(entry, dict) and _count(entry.get("bytes"))
                and isinstance(entry.get("fingerprint"), str)
                and (entry.get("shape") is None or isinstance(entry["shape"], list)
                     and all(_count(d) for d in entry["shape"]))
                and (entry.get("shape") or not entry.get("per_object"))):
            raise AtlasError(f"atlas {folder}: {MANIFEST}: the entry for {name!r} is malformed")
    return manifest


def _parse_json(text: str) -> Any:
    """JSON data; a ValueError (as for bad JSON) for nesting too deep for the parser.

    >>> _parse_json("[" * 100_000 + "]" * 100_000)
    Traceback (most recent call last):
    ValueError: arrays or objects nested too deeply to read
    """
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("arrays or objects nested too deeply to read") from None


def _count(value: Any) -> bool:
    """Whether a manifest value is a count: an int >= 0 (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_regular(folder: Path, name: str) -> None:
    # a FIFO would make the reader wait for a writer forever; a device could be endless
    what = special_file(folder / name)
    if what is not None:
        raise AtlasError(f"atlas {folder}: {name} is {what}, not a regular file")


def _check_file(folder: Path, name: str, entry: dict[str, Any]) -> None:
    """Raise AtlasError unless file `name` is the one its manifest entry describes."""
    path = folder / name
    _check_regular(folder, name)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise AtlasError(f"atlas {folder}: {name} is listed in {MANIFEST} but missing") from None
    if size != entry["bytes"]:
        raise AtlasError(f"atlas {folder}: {name} has {size:,} bytes, {MANIFEST} records {entry['bytes']:,} "
                         f"(truncated, or replaced after the manifest was written)")
    if file_fingerprint(path) != entry["fingerprint"]:
        raise AtlasError(f"atlas {folder}: {name} does not match its fingerprint in {MANIFEST}: "
                         f"the file was changed or swapped for another")
    if name.endswith(".npy"):
        array = _load_npy(folder, name)
        if list(array.shape) != entry.get("shape") or str(array.dtype) != entry.get("dtype"):
            raise AtlasError(f"atlas {folder}: {name} holds {array.dtype} {list(array.shape)}, "
                             f"{MANIFEST} records {entry.get('dtype')} {entry.get('shape')}")
    elif name == CATALOG:
        try:
            parquet = pq.ParquetFile(path)
        except (OSError, ValueError) as exc:  # pyarrow's ArrowIOError, ArrowInvalid
            raise AtlasError(f"atlas {folder}: {name} is not a readable Parquet file ({reason(exc)})") from None
        names = parquet.schema_arrow.names
        missing = [c for c in REQUIRED_COLUMNS if c not in names]
        if missing:
            raise AtlasError(f"atlas {folder}: {name} has no column {missing[0]!r}; "
                             f"an atlas catalog needs {', '.join(REQUIRED_COLUMNS)}")
        if [parquet.metadata.num_rows, len(names)] != entry.get("shape"):
            raise AtlasError(f"atlas {folder}: {name} has {parquet.metadata.num_rows:,} rows and {len(names)} "
                             f"columns, {MANIFEST} records {entry.get('shape')}")


def _count_rows(folder: Path, files: dict[str, dict[str, Any]]) -> int | None:
    """The common row count of the per-object files (None if there are none); AtlasError naming
    two files that disagree."""
    first: tuple[str, int] | None = None
    for name, entry in files.items():
        if not entry.get("per_object"):
            continue
        rows = entry["shape"][0]
        if first is None:
            first = (name, rows)
        elif rows != first[1]:
            raise AtlasError(f"atlas {folder}: {name} has {rows:,} rows but {first[0]} has {first[1]:,}; "
                             f"every per-object file needs one row per object (remove the stale one first)")
    return None if first is None else first[1]


#: what `np.load` raises on a damaged or foreign .npy file (a mangled header is tokenized as Python)
NPY_READ_ERRORS = (OSError, ValueError, EOFError, SyntaxError, TypeError, tokenize.TokenError)


def _load_npy(folder: Path, name: str) -> np.ndarray:
    try:
        return np.load(folder / name, mmap_mode="r", allow_pickle=False)
    except NPY_READ_ERRORS as exc:
        raise AtlasError(f"atlas {folder}: {name} is not a readable data-only .npy file ({reason(exc)})") from None


def _entry(path: Path, shape: Iterable[int] | None, dtype: str, per_object: bool) -> dict[str, Any]:
    return {
        "shape": None if shape is None else [int(s) for s in shape],
        "dtype": dtype,
        "bytes": path.stat().st_size,
        "fingerprint": file_fingerprint(path),
        "per_object": per_object,
    }


def _valid_name(name: Any) -> bool:
    # a plain, visible file name inside the folder: never a path, the manifest or a temporary file
    return isinstance(name, str) and bool(name) and name == Path(name).name and not name.startswith(".") \
        and name != MANIFEST and "\\" not in name


def _check_name(name: str, suffix: str | None) -> None:
    if not _valid_name(name):
        raise ValueError(f"{name!r}: an atlas file name is a plain name such as 'embeddings.npy'")
    if suffix is not None and not name.endswith(suffix):
        raise ValueError(f"{name!r}: expected a name ending in {suffix}")


def _plain(obj: Any) -> Any:
    """`obj` as JSON data: numpy values to Python, tuples to lists, paths to strings, NaN to None."""
    if isinstance(obj, dict):
        return {str(key): _plain(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(value) for value in obj]
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if obj is None or isinstance(obj, (str, int, float)):
        return obj
    raise TypeError(f"{type(obj).__name__} is not JSON data: {obj!r:.80}")


def _sync(f: Any) -> None:
    # on disk before the rename, so a power cut cannot leave a complete name over empty blocks
    f.flush()
    os.fsync(f.fileno())


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
