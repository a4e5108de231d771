"""The atlas's manifest: what `manifest.json` records of each file (shape, dtype, bytes,
`file_fingerprint`) and the checks that a file on disk is the one it describes.

The names of the atlas's files and the manifest's schema are fixed here; the reader
(`galexplore.atlas.reader`) and the writer (`galexplore.atlas.writer`) both check files by these
rules, so a truncated, swapped or foreign file is refused with a message that names it.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import json
import math
import os
import subprocess
import tokenize
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

import galexplore
from galexplore.errors import AtlasError, reason
from galexplore.io import special_file

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


def read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    _check_regular(folder, MANIFEST)
    try:
        manifest = parse_json(path.read_text(encoding="utf-8"))
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
        if not (valid_name(name) and isinstance(entry, dict) and _count(entry.get("bytes"))
                and isinstance(entry.get("fingerprint"), str)
                and (entry.get("shape") is None or isinstance(entry["shape"], list)
                     and all(_count(d) for d in entry["shape"]))
                and (entry.get("shape") or not entry.get("per_object"))):
            raise AtlasError(f"atlas {folder}: {MANIFEST}: the entry for {name!r} is malformed")
    return manifest


def parse_json(text: str) -> Any:
    """JSON data; a ValueError (as for bad JSON) for nesting too deep for the parser.

    >>> parse_json("[" * 100_000 + "]" * 100_000)
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


def check_file(folder: Path, name: str, entry: dict[str, Any]) -> None:
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
        array = load_npy(folder, name)
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


def count_rows(folder: Path, files: dict[str, dict[str, Any]]) -> int | None:
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


def load_npy(folder: Path, name: str) -> np.ndarray:
    """The .npy file `name`, memory-mapped read-only and never unpickled; AtlasError if unreadable."""
    try:
        return np.load(folder / name, mmap_mode="r", allow_pickle=False)
    except NPY_READ_ERRORS as exc:
        raise AtlasError(f"atlas {folder}: {name} is not a readable data-only .npy file ({reason(exc)})") from None


def file_entry(path: Path, shape: Iterable[int] | None, dtype: str, per_object: bool) -> dict[str, Any]:
    """The manifest's entry for the file written at `path`."""
    return {
        "shape": None if shape is None else [int(s) for s in shape],
        "dtype": dtype,
        "bytes": path.stat().st_size,
        "fingerprint": file_fingerprint(path),
        "per_object": per_object,
    }


def valid_name(name: Any) -> bool:
    # a plain, visible file name inside the folder: never a path, the manifest or a temporary file
    return isinstance(name, str) and bool(name) and name == Path(name).name and not name.startswith(".") \
        and name != MANIFEST and "\\" not in name


def plain(obj: Any) -> Any:
    """`obj` as JSON data: numpy values to Python, tuples to lists, paths to strings, NaN to None."""
    if isinstance(obj, dict):
        return {str(key): plain(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(value) for value in obj]
    if isinstance(obj, np.ndarray):
        return plain(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if obj is None or isinstance(obj, (str, int, float)):
        return obj
    raise TypeError(f"{type(obj).__name__} is not JSON data: {obj!r:.80}")


def utc_now() -> str:
    """The time of a manifest change, UTC to the second."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
