"""What `galexplore inspect` says about a survey or an atlas: size, bands, files, columns, labels
and value ranges.

`summarize_survey` and `summarize_atlas` return plain JSON-able data; `format_summary` and
`format_atlas_summary` render it for a terminal.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from galexplore.errors import SurveyError
from galexplore.survey.normalize import sky_statistics
from galexplore.survey.base import Survey

if TYPE_CHECKING:
    from galexplore.atlas.files import Atlas

#: label columns a survey may carry, and what each one labels
LABEL_COLUMNS = {"z_spec": "spectroscopic redshift", "p_features": "morphology votes",
                 "p_edge_on": "edge-on votes"}
#: catalog columns of an atlas whose value ranges `inspect` reports
ATLAS_RANGE_COLUMNS = ("umap_x", "umap_y", "trust", "anomaly_score")
#: at most this many cutouts are read to estimate pixel statistics
PIXEL_SAMPLE = 256


def summarize_survey(survey: Survey, seed: int = 0) -> dict[str, Any]:
    """A JSON-able summary of `survey`; pixel statistics from a seeded sample of cutouts."""
    n = len(survey)
    c, h, w = survey.shape
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n, size=min(n, PIXEL_SAMPLE), replace=False)) if n else np.array([], int)
    pixels = survey.read(sample) if sample.size else np.zeros((0, c, h, w), np.float32)
    noise = _noise(survey, seed)
    bands = {}
    for b, name in enumerate(survey.bands):
        values = pixels[:, b].reshape(-1)
        bands[name] = {
            "min": _num(values.min()) if values.size else None,
            "p01": _num(np.percentile(values, 1)) if values.size else None,
            "median": _num(np.median(values)) if values.size else None,
            "p99": _num(np.percentile(values, 99)) if values.size else None,
            "max": _num(values.max()) if values.size else None,
            # the sky noise the input normalisation uses (sigma_MAD of the outskirts)
            "noise_mad": _num(noise[b]) if noise is not None else None,
        }
    cat = survey.catalog
    return {
        "kind": "survey",
        "path": survey.source,
        "reader": type(survey).__name__,
        "n_objects": n,
        "bands": list(survey.bands),
        "cutout_shape": [c, h, w],
        "pixel_scale_arcsec": survey.pixel_scale,
        "pixel_sample": int(sample.size),
        "pixels": bands,
        "nonfinite_masked": survey.nonfinite_masked,
        "labels": _labels(cat),
        "columns": {str(col): _column(cat[col]) for col in cat.columns},
    }


def _noise(survey: Survey, seed: int) -> np.ndarray | None:
    """Per-band sky noise as `Normalization` measures it, or None where it cannot be measured."""
    try:
        return sky_statistics(survey, n_sample=PIXEL_SAMPLE, seed=seed)[1]
    except SurveyError:
        return None  # an empty survey, tiny cutouts or a noiseless band: nothing to report


def _labels(cat: pd.DataFrame) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for col, what in LABEL_COLUMNS.items():
        if col in cat.columns:
            out[col] = {"labels": what, "count": int(pd.to_numeric(cat[col], errors="coerce").notna().sum())}
    if "label_availability" in cat.columns:
        out["label_availability"] = {str(k): int(v) for k, v in cat["label_availability"].value_counts().items()}
    return out


def _column(values: pd.Series) -> dict[str, Any]:
    if pd.api.types.is_bool_dtype(values):
        return {"dtype": "bool", "true": int(values.sum()), "false": int((~values).sum())}
    if pd.api.types.is_numeric_dtype(values):
        finite = values[np.isfinite(values.to_numpy(dtype=np.float64))]
        return {
            "dtype": str(values.dtype),
            "min": _num(finite.min()) if len(finite) else None,
            "max": _num(finite.max()) if len(finite) else None,
            "missing": int(len(values) - len(finite)),
        }
    counts = values.astype(str).value_counts()
    return {
        "dtype": "string",
        "distinct": int(len(counts)),
        "top": {str(k): int(v) for k, v in counts.head(8).items()},
    }


def _num(x: Any) -> float | int:
    x = x.item() if hasattr(x, "item") else x
    return round(x, 6) if isinstance(x, float) else x


def format_summary(summary: dict[str, Any]) -> str:
    """A terminal rendering of `summarize_survey`'s output."""
    c, h, w = summary["cutout_shape"]
    scale = summary["pixel_scale_arcsec"]
    lines = [
        f"{summary['path']}  ({summary['reader']})",
        f"  objects      {summary['n_objects']:,}",
        f"  cutouts      {c} x {h} x {w}  bands {','.join(summary['bands'])}"
        + (f"  {scale:g}\"/pixel" if scale else ""),
    ]
    if summary["labels"]:
        lines.append("  labels")
        for key, info in summary["labels"].items():
            if key == "label_availability":
                lines.append("    label_availability  " + ", ".join(f"{k}: {v:,}" for k, v in info.items()))
            else:
                lines.append(f"    {key:<18}  {info['count']:,} ({info['labels']})")
    lines.append(f"  pixels (sample of {summary['pixel_sample']} cutouts)")
    lines.append(f"    {'band':<6}{'min':>11}{'p01':>11}{'median':>11}{'p99':>11}{'max':>11}{'noise':>11}")
    for band, s in summary["pixels"].items():
        cells = [s[k] for k in ("min", "p01", "median", "p99", "max", "noise_mad")]
        lines.append(f"    {band:<6}" + "".join(f"{v:>11.4g}" if v is not None else f"{'-':>11}" for v in cells))
    lines.append(f"  catalog columns ({len(summary['columns'])})")
    for name, info in summary["columns"].items():
        if info["dtype"] == "string":
            top = ", ".join(f"{k}: {v:,}" for k, v in list(info["top"].items())[:5])
            lines.append(f"    {name:<20} string, {info['distinct']:,} distinct  ({top})")
        elif info["dtype"] == "bool":
            lines.append(f"    {name:<20} bool, {info['true']:,} true")
        else:
            rng = f"{info['min']:.6g} .. {info['max']:.6g}" if info["min"] is not None else "all missing"
            miss = f", {info['missing']:,} missing" if info["missing"] else ""
            lines.append(f"    {name:<20} {info['dtype']:<8} {rng}{miss}")
    return "\n".join(lines)


def summarize_atlas(atlas: Atlas) -> dict[str, Any]:
    """A JSON-able summary of `atlas`: its manifest, files, catalog columns, label counts and the
    ranges of the map and score columns (one streaming pass over those few columns)."""
    from galexplore.atlas.files import CATALOG  # Parquet is needed only for an atlas

    manifest = atlas.manifest
    columns = atlas.catalog_dtypes() if atlas.has(CATALOG) else {}
    ranges, labels = _atlas_columns(atlas, columns)
    return {
        "kind": "atlas",
        "path": str(atlas.path),
        "name": atlas.name,
        "schema": manifest["schema"],
        "n_objects": atlas.n_objects,
        "created": manifest.get("created"),
        "updated": manifest.get("updated"),
        "code_version": manifest.get("code_version"),
        "provenance": manifest["provenance"],
        "files": {name: {"shape": entry.get("shape"), "dtype": entry.get("dtype"), "bytes": entry["bytes"]}
                  for name, entry in atlas.files.items()},
        "columns": columns,
        "labels": labels,
        "ranges": ranges,
        "stages": manifest["stages"],
        "summary": manifest["summary"],
    }


def _atlas_columns(atlas: Atlas, columns: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(ranges of ATLAS_RANGE_COLUMNS, label_availability counts), batch by batch."""
    ranged = [c for c in ATLAS_RANGE_COLUMNS if c in columns]
    labelled = "label_availability" in columns
    if not ranged and not labelled:
        return {}, {}
    low = dict.fromkeys(ranged, np.inf)
    high = dict.fromkeys(ranged, -np.inf)
    missing = dict.fromkeys(ranged, 0)
    counts: Counter[str] = Counter()
    for batch in atlas.iter_catalog(ranged + ["label_availability"] * labelled):
        for c in ranged:
            values = pd.to_numeric(batch[c], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            finite = values[np.isfinite(values)]
            missing[c] += int(values.size - finite.size)
            if finite.size:
                low[c], high[c] = min(low[c], finite.min()), max(high[c], finite.max())
        if labelled:
            for key, count in batch["label_availability"].value_counts(dropna=False).items():
                counts["missing" if pd.isna(key) else str(key)] += int(count)
    ranges = {
        c: {"min": _num(low[c]) if np.isfinite(low[c]) else None,
            "max": _num(high[c]) if np.isfinite(high[c]) else None, "missing": missing[c]}
        for c in ranged
    }
    labels = {"label_availability": dict(counts.most_common())} if labelled else {}
    return ranges, labels


def format_atlas_summary(summary: dict[str, Any]) -> str:
    """A terminal rendering of `summarize_atlas`'s output."""
    lines = [
        f"{summary['path']}  (atlas, {summary['schema']})",
        f"  name         {summary['name']}",
        f"  objects      {summary['n_objects']:,}",
        f"  created      {summary['created']}  updated {summary['updated']}",
        f"  code         {summary['code_version']}",
    ]
    if summary["provenance"]:
        lines.append("  provenance")
        for key, value in summary["provenance"].items():
            lines.append(f"    {key:<18}  {_brief(value)}")
    lines.append(f"  files ({len(summary['files'])})")
    for name, info in summary["files"].items():
        shape = " x ".join(f"{s:,}" for s in info["shape"]) if info["shape"] is not None else "-"
        lines.append(f"    {name:<26} {shape:<18} {info['dtype']:<9} {_size(info['bytes']):>10}")
    if summary["columns"]:
        lines.append(f"  catalog columns ({len(summary['columns'])})")
        for name, dtype in summary["columns"].items():
            lines.append(f"    {name:<26} {dtype}")
    for key, counts in summary["labels"].items():
        lines.append(f"  {key}  " + ", ".join(f"{k}: {v:,}" for k, v in counts.items()))
    if summary["ranges"]:
        lines.append("  ranges")
        for name, info in summary["ranges"].items():
            span = f"{info['min']:.6g} .. {info['max']:.6g}" if info["min"] is not None else "all missing"
            miss = f", {info['missing']:,} missing" if info["missing"] else ""
            lines.append(f"    {name:<18} {span}{miss}")
    if summary["stages"]:
        lines.append("  stages")
        for stage, info in summary["stages"].items():
            seconds = info.get("seconds") if isinstance(info, dict) else None
            took = f"{seconds:10.1f} s" if isinstance(seconds, (int, float)) else f"{'-':>12}"
            lines.append(f"    {stage:<18}{took}")
    return "\n".join(lines)


def _brief(value: Any, width: int = 72) -> str:
    """One line for a provenance value: a config's text is shown by its length only."""
    if isinstance(value, str) and "\n" in value:
        return f"({len(value.splitlines())} lines of text)"
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"
