"""What `galexplore inspect` says about a survey: size, bands, columns, labels and value ranges.

`summarize_survey` returns plain JSON-able data; `format_summary` renders it for a terminal.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from galexplore.errors import SurveyError
from galexplore.normalize import sky_statistics
from galexplore.survey.base import Survey

#: label columns a survey may carry, and what each one labels
LABEL_COLUMNS = {"z_spec": "spectroscopic redshift", "p_features": "morphology votes",
                 "p_edge_on": "edge-on votes"}
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
