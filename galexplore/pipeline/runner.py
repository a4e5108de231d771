"""How every stage of `galexplore build` runs: declared once (`Stage`), run by `run_stage`.

A stage is a plain function of the build's state (`BuildState`), declared with the parts of its
fingerprint (`key`: constants, config tables and keys, the fingerprints of earlier stages and of
the build's input files), the files it writes and when it is not needed. `run_stage` computes the
fingerprint, skips the stage when the manifest records that fingerprint and its outputs are on
disk as recorded, else runs it under its progress bar, records it in the manifest (`StageRecord`)
and reports what it did (`StageReport`). A stage that is not needed has its files removed, but
keeps a fingerprint: the stages after it hash it (a change of `embed.pca_dim` to 0 reruns the
graph).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from galexplore.config import Config
from galexplore.training.distributed import Distributed

if TYPE_CHECKING:
    from galexplore.atlas.files import AtlasWriter
    from galexplore.pipeline.given import Given
    from galexplore.survey.base import Survey

Progress = Callable[[str, int], Callable[[int], None]]  # (stage, total) -> update(done increment)


def fingerprint(*parts: Any) -> str:
    """A short, stable hash of JSON-able parts (config tables, upstream fingerprints).

    >>> fingerprint({"k": 50}, "abc") == fingerprint({"k": 50}, "abc") != fingerprint({"k": 51}, "abc")
    True
    """
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


# -- what a stage's fingerprint hashes ----------------------------------------------------------


class Term(ABC):
    """A part of a stage's key that is read from the build: the config tables and keys it reads,
    the earlier stages and input files whose fingerprints it takes."""

    reads: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()

    @abstractmethod
    def value(self, config: Config, state: BuildState) -> Any:
        """The JSON-able value hashed."""


@dataclass(frozen=True)
class Table(Term):
    """A whole config table, e.g. ``[neighbors]``."""

    name: str

    @property
    def reads(self) -> tuple[str, ...]:
        return (self.name,)

    def value(self, config: Config, state: BuildState) -> Any:
        return dataclasses.asdict(getattr(config, self.name))


@dataclass(frozen=True)
class Tables(Term):
    """Several config tables, as one mapping of table name to table."""

    names: tuple[str, ...]

    @property
    def reads(self) -> tuple[str, ...]:
        return self.names

    def value(self, config: Config, state: BuildState) -> Any:
        return {name: dataclasses.asdict(getattr(config, name)) for name in self.names}


@dataclass(frozen=True)
class Key(Term):
    """One config key, e.g. ``embed.pca_dim`` or ``seed``."""

    path: str

    @property
    def reads(self) -> tuple[str, ...]:
        return (self.path,)

    def value(self, config: Config, state: BuildState) -> Any:
        return functools.reduce(getattr, self.path.split("."), config)


@dataclass(frozen=True)
class Input(Term):
    """The fingerprint of an earlier stage or of an input file of the build (None when the build
    has none, e.g. no training from given embeddings); with `when_needed`, None also when that
    stage was not needed."""

    name: str
    when_needed: bool = False

    @property
    def inputs(self) -> tuple[str, ...]:
        return (self.name,)

    def value(self, config: Config, state: BuildState) -> Any:
        if self.when_needed and self.name in state.not_needed:
            return None
        return state.fingerprints.get(self.name)


@dataclass(frozen=True)
class Provenance(Term):
    """What the atlas manifest's provenance records under `name` (None when nothing)."""

    name: str

    @property
    def inputs(self) -> tuple[str, ...]:
        return (f"provenance.{self.name}",)

    def value(self, config: Config, state: BuildState) -> Any:
        return (state.writer.manifest.get("provenance", {}) if state.writer is not None else {}).get(self.name)


@dataclass(frozen=True)
class Derived(Term):
    """A value computed from the config and the build, for what the other terms cannot say."""

    compute: Callable[[Config, BuildState], Any]
    reads: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()

    def value(self, config: Config, state: BuildState) -> Any:
        return self.compute(config, state)


SEED = Key("seed")


# -- a stage, what it returns, what the manifest and the summary keep ----------------------------


@dataclass(frozen=True)
class StageResult:
    """What a stage's function returns: a line for the summary, what the manifest keeps of it
    besides the runner's own record, and the files it wrote when fewer than it declares."""

    detail: str = ""
    fields: dict[str, Any] = field(default_factory=dict)
    outputs: tuple[str, ...] | None = None


@dataclass(frozen=True)
class StageRecord:
    """A stage's entry in the atlas manifest (``stages.<name>``): the runner's part, then the
    stage's own `fields` (the graph's method, the score columns, ...)."""

    fingerprint: str
    seconds: float
    peak_mb: float | None
    outputs: tuple[str, ...]
    detail: str = ""
    fields: dict[str, Any] = field(default_factory=dict)

    _OWN = ("fingerprint", "seconds", "peak_mb", "outputs", "detail", "code_version")

    def to_manifest(self) -> dict[str, Any]:
        return {"fingerprint": self.fingerprint, "seconds": round(self.seconds, 3), "peak_mb": self.peak_mb,
                "outputs": list(self.outputs), **self.fields, "detail": self.detail}

    @classmethod
    def from_manifest(cls, entry: dict[str, Any]) -> StageRecord:
        return cls(entry.get("fingerprint", ""), entry.get("seconds", 0.0), entry.get("peak_mb"),
                   tuple(entry.get("outputs") or ()), entry.get("detail", ""),
                   {key: value for key, value in entry.items() if key not in cls._OWN})


@dataclass
class StageReport:
    """What one stage did: ran, skipped (up to date), or nothing to do."""

    name: str
    status: str  # "ran", "skipped", "not needed"
    seconds: float = 0.0
    detail: str = ""
    peak_mb: float | None = None  # the process's peak memory (RSS) so far, when it ran


@dataclass(frozen=True)
class Stage:
    """One step of the build: the function that runs it and what the runner needs to know of it.

    `key`: what the fingerprint hashes after the stage's name, in this order (constants and
    `Term`s; the order is that of the atlases built so far, which stay up to date). `outputs`: the
    files it writes (its result may say it wrote fewer). `needed`: why it is not needed, when it
    is not. `fresh`: its own test of being up to date, for the stage whose record is not in the
    atlas (the simulation's is the config beside the survey): the detail to report when it is.
    """

    name: str
    run: Callable[[BuildState], StageResult]
    key: tuple[Any, ...]
    outputs: tuple[str, ...] = ()
    needed: Callable[[BuildState], str | None] | None = None
    fresh: Callable[[BuildState, Stage], str | None] | None = None

    @property
    def reads(self) -> tuple[str, ...]:
        """The config tables and keys its fingerprint reads."""
        return tuple(name for part in self.key if isinstance(part, Term) for name in part.reads)

    @property
    def inputs(self) -> tuple[str, ...]:
        """The earlier stages and input files whose fingerprints it takes."""
        return tuple(name for part in self.key if isinstance(part, Term) for name in part.inputs)


# -- the build's state and the runner -------------------------------------------------------------


def _ignore(value: Any) -> None:
    """The progress update where no bar is shown, and the log of a build that logs nothing."""


@dataclass
class BuildState:
    """What the stages of one build share: the config, where things go, what earlier stages left."""

    config: Config
    out: Path
    run_folder: Path  # the training run's
    device: Any = None
    dist: Distributed = Distributed()
    show: Progress | None = None  # the caller's progress bars: (stage, total) -> update
    log: Callable[[str], None] = _ignore
    writer: AtlasWriter | None = None  # rank 0's, opened once the inputs are read and checked
    n: int = 0
    survey: Survey | None = None  # open during the stages that read the survey
    given: Given | None = None  # a build from given embeddings and catalog
    read_catalog: Callable[[], pd.DataFrame] | None = None
    fingerprints: dict[str, Any] = field(default_factory=dict)  # of the stages and input files so far
    not_needed: set[str] = field(default_factory=set)
    reports: list[StageReport] = field(default_factory=list)
    running: str = ""  # the stage running now, whose bar `progress` opens
    _read: dict[str, Any] = field(default_factory=dict)

    def progress(self, total: int) -> Callable[[int], None]:
        """update(done increment) of the running stage's progress bar of `total` units (rank 0's only)."""
        if self.show is None or not self.dist.is_main:
            return _ignore
        return self.show(self.running, total)

    def once(self, name: str, read: Callable[[], Any]) -> Any:
        """`read()` on first use only, then the same value (a DataFrame as a shallow copy, so a
        stage that adds columns does not change what the next stage reads)."""
        if name not in self._read:
            self._read[name] = read()
        value = self._read[name]
        return value.copy(deep=False) if isinstance(value, pd.DataFrame) else value

    def catalog(self) -> pd.DataFrame:
        """The source catalog (the survey's, or the one given with the embeddings), read once."""
        return self.once("catalog", self.read_catalog)

    def record(self, name: str) -> StageRecord | None:
        """The manifest's record of stage `name`, if any."""
        entry = self.writer.manifest.get("stages", {}).get(name) if self.writer is not None else None
        return StageRecord.from_manifest(entry) if isinstance(entry, dict) else None


def counting_up(update: Callable[[int], None]) -> Callable[[int], None]:
    """`update(increment)` called as a function of the count so far (a step, galaxies simulated)."""
    last = [0]

    def advance(done: int) -> None:
        update(done - last[0])
        last[0] = done

    return advance


def stage_fingerprint(stage: Stage, state: BuildState, config: Config | None = None) -> str:
    """The fingerprint of `stage` in `state`, with `config` (another one, e.g. a survey's own) or the build's."""
    config = config or state.config
    return fingerprint(stage.name, *(part.value(config, state) if isinstance(part, Term) else part
                                     for part in stage.key))


def run_stages(stages: tuple[Stage, ...], state: BuildState) -> None:
    for stage in stages:
        run_stage(stage, state)


def run_stage(stage: Stage, state: BuildState) -> None:
    """Run `stage` unless it is up to date or not needed; record and report what it did."""
    fp = stage_fingerprint(stage, state)
    state.fingerprints[stage.name] = fp
    why = stage.needed(state) if stage.needed is not None else None
    if why is not None:
        state.not_needed.add(stage.name)
        _set_aside(stage, state)
        state.reports.append(StageReport(stage.name, "not needed", detail=why))
        return
    fresh = _up_to_date(stage, state, fp)
    if fresh is not None:
        state.reports.append(StageReport(stage.name, "skipped", detail=fresh))
        return
    state.running = stage.name
    start = time.perf_counter()
    result = stage.run(state)
    seconds = time.perf_counter() - start
    peak = peak_memory_mb()
    if state.writer is not None and stage.fresh is None:
        outputs = stage.outputs if result.outputs is None else result.outputs
        state.writer.set_stage(stage.name, StageRecord(fp, seconds, peak, outputs, result.detail,
                                                       result.fields).to_manifest())
    state.reports.append(StageReport(stage.name, "ran", seconds, result.detail, peak))


def _up_to_date(stage: Stage, state: BuildState, fp: str) -> str | None:
    """"up to date" when the manifest records `fp` and the outputs it lists are the files on disk
    (rank 0 decides; every process of a torchrun job follows); a stage's own `fresh` otherwise."""
    if stage.fresh is not None:
        return stage.fresh(state, stage)
    fresh = False
    record = state.record(stage.name)
    if record is not None:
        fresh = record.fingerprint == fp and all(state.writer.is_valid(name) for name in record.outputs)
    return "up to date" if state.dist.from_main(fresh) else None


def _set_aside(stage: Stage, state: BuildState) -> None:
    """A stage not needed leaves no files and no record of an earlier run behind."""
    writer = state.writer
    if writer is None:
        return
    for name in stage.outputs:
        writer.remove(name)  # and the records that list it
    if writer.manifest["stages"].pop(stage.name, None) is not None:
        writer.commit()


def peak_memory_mb() -> float | None:
    """This process's peak resident memory so far, in MB (None where the OS does not say)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # Linux: kB
