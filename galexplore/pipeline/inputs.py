"""What `galexplore build` refuses before it writes anything.

- an output folder that would overwrite the build's own inputs (an --embeddings, --catalog or
  survey file inside --out), or that is a folder of other files rather than an atlas;
- a catalog that already has a column the build writes (umap_x, trust, ...), which would be
  overwritten silently;
- label and probe columns that the config names but the catalog lacks (a misspelling would
  build an atlas without labels), probe columns whose values are not in [0, 1], a text trust
  label that is not declared a class column, and a class column (probes.categorical) whose
  labelled rows hold fewer than 2 classes (there is nothing to tell apart).

Each refusal is one `GalexploreError` naming the file, the key or column and row, and what was
expected. The defaults of [trust] labels and [probes] morphology name the simulated survey's
columns; a catalog without them simply has no labels of that kind. What a config cannot do at
the survey's size (fewer galaxies than the neighbour graph needs, ...) is refused by
`galexplore.pipeline.preflight`.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from galexplore.labels import class_names
from galexplore.config import Config, ProbesConfig, TrustConfig
from galexplore.errors import GalexploreError
from galexplore.evaluate.probes import MORPHOLOGY_COLUMNS
from galexplore.maps.scores import column_name
from galexplore.pipeline.preflight import check_galaxy_count  # noqa: F401  (its home before preflight)

#: left in an atlas folder by the build itself before its manifest exists (an interrupted first write)
_OWN_LEFTOVERS = (".work",)


def check_out_folder(out: Path, inputs: Mapping[str, Path]) -> None:
    """Refuse `out` when it holds one of `inputs` (by what they are called: "--embeddings", ...),
    or is a non-empty folder without an atlas manifest."""
    from galexplore.atlas.files import MANIFEST

    where = _absolute(out)
    for what, path in inputs.items():
        target = _absolute(path)
        if target == where or where in target.parents:
            raise GalexploreError(
                f"{path}: the {what} is inside the output folder {out}, where the build writes its "
                f"files (and would overwrite it); expected --out to be another folder"
            )
    if out.is_dir() and not (out / MANIFEST).exists():
        others = sorted(p.name for p in out.iterdir()
                        if p.name not in _OWN_LEFTOVERS and not (p.name.startswith(".") and p.name.endswith(".partial")))
        if others:
            example = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
            raise GalexploreError(
                f"{out}: a folder of {len(others)} other file{'s' * (len(others) != 1)} ({example}) and no "
                f"{MANIFEST}, not an atlas; refusing to write an atlas into it. Expected --out to be a new "
                f"or empty folder, or an atlas to bring up to date"
            )


def _absolute(path: Path) -> Path:
    """`path` made absolute with symbolic links resolved (as far as it exists)."""
    return Path(os.path.realpath(Path(path).expanduser()))


def output_columns(config: Config) -> list[str]:
    """The catalog columns the build itself writes (besides label_availability, which it keeps
    when the survey has one)."""
    classes = [f"{column}_{part}" for column in config.probes.categorical for part in ("pred", "prob")]
    return ["umap_x", "umap_y", "anomaly_score", "trust", *(column_name(kind) for kind in config.trust.labels),
            "z_phot", "z_phot_width", *(f"{column}_pred" for column in config.probes.morphology), *classes]


def check_catalog_columns(catalog: pd.DataFrame, config: Config, source: str) -> None:
    """Refuse a catalog that has a column the build writes, lacks a label or probe column the
    config names (other than the defaults), holds probe values outside [0, 1], a text trust label
    not declared in probes.categorical, or a class column of fewer than 2 classes."""
    columns = [str(c) for c in catalog.columns]
    taken = [c for c in output_columns(config) if c in columns]
    if taken:
        raise GalexploreError(
            f"{source}: the catalog already has a column {taken[0]!r}, which the build writes (and would "
            f"overwrite); expected a catalog without it: drop it, or keep it under another name with "
            f"survey.rename = {{{taken[0]} = \"{taken[0]}_in\"}}"
        )
    _check_class_columns(catalog, config.probes, columns, source)  # first: a trust label may name one
    default_labels = set(TrustConfig().labels.values())
    for kind, column in config.trust.labels.items():
        if column not in columns:
            if column not in default_labels:
                raise GalexploreError(f"{source}: trust.labels names column {column!r} (label kind {kind!r}), "
                                      f"which the catalog lacks{_near(column, columns)}")
            continue
        values = catalog[column]
        numeric = pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)
        if not numeric and column not in config.probes.categorical:
            raise GalexploreError(f"{source}: trust.labels column {column!r} (label kind {kind!r}) holds "
                                  f"{values.dtype} values; expected numbers, finite where a galaxy is labelled, "
                                  f"or a class column: list it in probes.categorical")
    default_probes = set(ProbesConfig().morphology) | set(MORPHOLOGY_COLUMNS)
    for i, column in enumerate(config.probes.morphology):
        if column not in columns:
            if column not in default_probes:
                raise GalexploreError(f"{source}: probes.morphology[{i}] names column {column!r}, which the "
                                      f"catalog lacks{_near(column, columns)}")
            continue
        values = pd.to_numeric(catalog[column], errors="coerce").to_numpy(dtype=np.float64)
        text = catalog[column].notna().to_numpy() & np.isnan(values)
        outside = np.isfinite(values) & ((values < 0) | (values > 1))
        bad = np.flatnonzero(text | outside)
        if bad.size:
            row = int(bad[0])
            value = catalog[column].iloc[row]
            value = value.item() if isinstance(value, np.generic) else value
            raise GalexploreError(
                f"{source}: probes.morphology[{i}] column {column!r} row {row} is {value!r}; "
                f"expected a value in [0, 1] (a vote fraction or a 0/1 flag) or a missing value"
            )


def _check_class_columns(catalog: pd.DataFrame, probes: ProbesConfig, columns: list[str], source: str) -> None:
    """Refuse a probes.categorical column the catalog lacks, or whose labelled rows (a value not
    empty and not one of probes.unlabelled) hold fewer than 2 classes."""
    for i, column in enumerate(probes.categorical):
        if column not in columns:
            raise GalexploreError(f"{source}: probes.categorical[{i}] names column {column!r}, which the "
                                  f"catalog lacks{_near(column, columns)}")
        classes = class_names(catalog[column], probes.unlabelled)
        if len(classes) < 2:
            found = f"only the class {classes[0]!r}" if classes else "no labelled row"
            skipped = f" (probes.unlabelled = {list(probes.unlabelled)})" if probes.unlabelled else ""
            raise GalexploreError(
                f"{source}: probes.categorical[{i}] column {column!r} has {found} once empty values and "
                f"the unlabelled ones{skipped} are left out; expected at least 2 classes to tell apart"
            )


def _near(column: str, columns: list[str]) -> str:
    close = difflib.get_close_matches(column, columns, n=1)
    return f" (did you mean {close[0]!r}?)" if close else f"; found columns: {', '.join(columns[:20])}" + \
        (", ..." if len(columns) > 20 else "")
