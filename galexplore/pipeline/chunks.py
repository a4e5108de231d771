"""The embedding's resumable chunks: a work folder of finished row blocks inside the atlas.

The embed stage computes its rows in chunks of `embed.chunk_rows`, each written atomically to
`<atlas>/.work/embed/chunk-NNNNNN.npy`, so a killed build loses at most one chunk. Under torchrun
each process computes every world_size-th chunk; rank 0 then assembles them into the atlas array.
The folder is stamped with the fingerprint of what made its chunks: another one empties it.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from galexplore.atlas.files import AtlasWriter
from galexplore.errors import GalexploreError
from galexplore.io import atomic_path
from galexplore.training.distributed import Distributed

WORK = ".work"  # inside the atlas: resumable chunks of unfinished stages (removed when done)


def prepare_work(work: Path, fp: str) -> None:
    """A work folder for chunks made with fingerprint `fp`: kept when it matches, else emptied."""
    stamp = work / "fingerprint.txt"
    if work.exists() and (not stamp.exists() or stamp.read_text(encoding="utf-8") != fp):
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    if not stamp.exists():
        stamp.write_text(fp, encoding="utf-8")


def _chunk(work: Path, index: int) -> Path:
    return work / f"chunk-{index:06d}.npy"


def run_chunks(work: Path, n: int, chunk_rows: int, compute: Callable[[int, int], np.ndarray],
               dist: Distributed, update: Callable[[int], None]) -> None:
    """Compute this rank's missing chunks (every world_size-th), each written atomically."""
    for index in range(dist.rank, -(-n // chunk_rows), dist.world_size):
        start, stop = index * chunk_rows, min((index + 1) * chunk_rows, n)
        path = _chunk(work, index)
        if not path.exists():
            values = compute(start, stop)
            with atomic_path(path) as tmp, open(tmp, "wb") as fh:
                np.save(fh, values)
        update(stop - start)


def assemble(work: Path, writer: AtlasWriter, name: str, n: int, chunk_rows: int, dtype: Any,
             center: np.ndarray | None = None) -> int:
    """Concatenate the work folder's chunks into the atlas array `name`; return its width.

    With `center` (D,), each row is written as unit(row - center) (`center_rows`)."""
    from galexplore.training.embed import center_rows

    chunks = list(iter_chunks(work, n, chunk_rows))
    width = chunks[0][1].shape[1]
    with writer.create_array(name, (n, width), dtype) as target:
        for start, values in chunks:
            target[start : start + len(values)] = values if center is None else center_rows(values, center)
    return width


def chunk_mean(work: Path, n: int, chunk_rows: int) -> np.ndarray:
    """The mean row (D,) float32 of the work folder's chunks, accumulated in float64."""
    total = None
    for _, values in iter_chunks(work, n, chunk_rows):
        part = np.asarray(values, dtype=np.float64).sum(axis=0)
        total = part if total is None else total + part
    assert total is not None
    return (total / n).astype(np.float32)


def iter_chunks(work: Path, n: int, chunk_rows: int) -> Iterator[tuple[int, np.ndarray]]:
    """(first row, rows) of each chunk in order, memory-mapped."""
    for index in range(-(-n // chunk_rows)):
        path = _chunk(work, index)
        if not path.exists():
            raise GalexploreError(f"{path}: embedding chunk missing after every process finished; rerun to resume")
        yield index * chunk_rows, np.load(path, mmap_mode="r", allow_pickle=False)
