"""Writing a simulated survey: parallel, resumable, byte-for-byte reproducible.

Objects are drawn in chunks of `simulate.chunk_size` by a pool of worker processes. Each finished
chunk is written atomically to ``<out>.partial/chunk_NNNNNN.npz`` (plain arrays, no pickles), so
an interrupted run keeps its finished chunks and a rerun skips them. The partial folder carries a
fingerprint of everything that decides its contents (resolved config, seed, N, code version);
chunks of another configuration are discarded rather than mixed in. When every chunk is there, the
HDF5 survey is assembled under a temporary name, its config written beside it, the survey renamed
into place and, last, the partial folder removed (a temporary left by a killed assembly is
removed by the next one).

Every object depends only on (seed, index) and datasets are written without timestamps, so the
same config gives the same file bytes whatever the number of workers, the chunking or the
interruptions. Workers are started with 'spawn' (no inherited locks or threads from the caller,
e.g. torch) and single-threaded BLAS/OpenMP, since the parallelism is across objects.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import hashlib
import multiprocessing
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import h5py
import numpy as np

import galexplore
from galexplore.config import Config, to_toml
from galexplore.errors import GalexploreError
from galexplore.io import atomic_path, atomic_write_text, remove_partials
from galexplore.simulate.objects import COLUMNS, empty_columns, simulate_object, simulation_context
from galexplore.simulate.photometry import BANDS
from galexplore.survey.hdf5 import SIMULATED_MARK, write_catalog_column

FINGERPRINT_FILE = "fingerprint.txt"
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def simulate_survey(
    config: Config,
    out: Path,
    n: int | None = None,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Simulate `n` objects (default config.simulate.n) into the HDF5 survey `out`; return `out`.

    `workers` processes (default config.simulate.workers) draw the chunks; `progress(done, n)` is
    called as objects finish. Also writes the resolved config as ``<out stem>.config.toml``.
    """
    out = Path(out)
    sim = config.simulate
    n = sim.n if n is None else int(n)
    if n < 1:
        raise ValueError(f"n = {n}; expected at least one object")
    _check_replaceable(out)
    workers = sim.workers if workers is None else int(workers)
    # The resolved config records N; the worker count is how it ran, not what it made.
    resolved = dataclasses.replace(config, simulate=dataclasses.replace(sim, n=n))
    toml = to_toml(resolved)

    partial = partial_folder(out)
    _prepare_partial(partial, _fingerprint(toml))
    chunks = [(start, min(start + sim.chunk_size, n)) for start in range(0, n, sim.chunk_size)]
    todo = [k for k in range(len(chunks)) if not _chunk_path(partial, k).exists()]
    done = n - sum(chunks[k][1] - chunks[k][0] for k in todo)
    if progress is not None:
        progress(done, n)
    for k in _run_chunks(resolved, partial, chunks, todo, workers):
        done += chunks[k][1] - chunks[k][0]
        if progress is not None:
            progress(done, n)

    sidecar = out.with_name(out.stem + ".config.toml")
    for name in (out.name, sidecar.name):
        remove_partials(out.parent, name)  # an assembly killed before left its temporary (survey-sized)
    with atomic_path(out) as tmp:
        _assemble(tmp, partial, chunks, resolved, toml)
        # The config before the survey, so a survey in place always has its own beside it; the
        # chunks last, so a kill before then leaves a rerun only the assembly to redo.
        atomic_write_text(sidecar, toml)
    shutil.rmtree(partial)
    return out


def partial_folder(out: Path) -> Path:
    """The folder of finished chunks of the survey `out` while it is being simulated."""
    return out.with_name(out.name + ".partial")


def _run_chunks(config: Config, partial: Path, chunks: list[tuple[int, int]], todo: list[int],
                workers: int) -> Iterator[int]:
    """Draw the chunks numbered in `todo` into `partial`, yielding each number when it is on disk."""
    if workers <= 1 or len(todo) <= 1:
        for k in todo:
            _write_chunk(config, partial, k, *chunks[k])
            yield k
        return
    context = multiprocessing.get_context("spawn")
    with _single_threaded_children():
        executor = concurrent.futures.ProcessPoolExecutor(min(workers, len(todo)), mp_context=context)
    # A worker that dies raises BrokenProcessPool here instead of hanging; leaving early (an
    # error, an interrupt) cancels the chunks not started, and the ones running still finish.
    with executor:
        futures = [executor.submit(_write_chunk, config, partial, k, *chunks[k]) for k in todo]
        try:
            for future in concurrent.futures.as_completed(futures):
                future.result()
                yield todo[futures.index(future)]
        finally:
            for future in futures:
                future.cancel()


def _write_chunk(config: Config, partial: Path, k: int, start: int, stop: int) -> None:
    """Simulate objects start..stop-1 and write them atomically as chunk `k`."""
    ctx = simulation_context(config.simulate)
    size = config.simulate.image_size
    images = np.empty((stop - start, len(BANDS), size, size), dtype=np.float32)
    columns = empty_columns(stop - start)
    for j, index in enumerate(range(start, stop)):
        images[j], row = simulate_object(index, config.seed, ctx)
        for name, value in row.items():
            columns[name][j] = value
    with atomic_path(_chunk_path(partial, k)) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, images=images, **{f"col_{name}": values for name, values in columns.items()})


def _assemble(out: Path, partial: Path, chunks: list[tuple[int, int]], config: Config, toml: str) -> None:
    """Write the HDF5 survey `out` (a temporary name) from the chunk files."""
    n = chunks[-1][1]
    size = config.simulate.image_size
    shape = (len(BANDS), size, size)
    columns = empty_columns(n)
    with h5py.File(out, "w") as f:
        # One object per HDF5 chunk: reading any one cutout touches one chunk.
        images = f.create_dataset("images", shape=(n, *shape), dtype="float32", chunks=(1, *shape),
                                  track_times=False)
        for k, (start, stop) in enumerate(chunks):
            with np.load(_chunk_path(partial, k), allow_pickle=False) as data:
                images[start:stop] = data["images"]
                for name in COLUMNS:
                    columns[name][start:stop] = data[f"col_{name}"]
        for name, values in columns.items():
            write_catalog_column(f, name, values)
        f.attrs["bands"] = list(BANDS)
        f.attrs["pixel_scale"] = config.simulate.pixel_scale
        f.attrs[SIMULATED_MARK] = True
        f.attrs["units"] = "nanomaggies per pixel"
        f.attrs["seed"] = config.seed
        f.attrs["galexplore_version"] = galexplore.__version__
        f.attrs["config"] = toml


def _check_replaceable(out: Path) -> None:
    """Refuse, before simulating, to replace anything at `out` but a survey simulated here."""
    if out.is_dir():
        raise GalexploreError(f"{out}: is a folder; expected the name of the .h5 survey file to write")
    if not out.exists():
        return
    try:
        with h5py.File(out, "r") as f:
            simulated = bool(f.attrs.get(SIMULATED_MARK, False))
    except OSError:
        simulated = False
    if not simulated:
        raise GalexploreError(
            f"{out}: exists and is not a survey that galexplore simulated; refusing to overwrite it "
            f"(move it, or give another --out)"
        )


def _fingerprint(toml: str) -> str:
    return hashlib.sha256(f"galexplore {galexplore.__version__}\n{toml}".encode()).hexdigest()


def _prepare_partial(partial: Path, fingerprint: str) -> None:
    """Keep `partial`'s chunks if they were made by this configuration; otherwise start it afresh."""
    marker = partial / FINGERPRINT_FILE
    if partial.is_dir() and marker.exists() and marker.read_text(encoding="utf-8").strip() == fingerprint:
        return
    if partial.is_dir():
        for stale in partial.glob("chunk_*.npz"):
            stale.unlink()
    partial.mkdir(parents=True, exist_ok=True)
    atomic_write_text(marker, fingerprint + "\n")


def _chunk_path(partial: Path, k: int) -> Path:
    return partial / f"chunk_{k:06d}.npz"


@contextlib.contextmanager
def _single_threaded_children() -> Iterator[None]:
    """Start child processes with one BLAS/OpenMP thread each (they inherit the environment)."""
    saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    os.environ.update({name: "1" for name in THREAD_VARIABLES})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
