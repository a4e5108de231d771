"""A self-contained HTML report on an atlas: maps, photo-z, whether trust works, anomalies, tables.

The report is a list of sections. A section is a function ``(atlas, folder) -> Section`` that
writes its figures (PNG) into `folder` with `figure` and returns its title, its HTML and the
figure files; one whose inputs the atlas lacks raises `SectionSkipped` with the reason, and the
report shows the title with that note. Add a section by appending to `SECTIONS` or by passing
``sections=`` to `write_report`. Every figure is also embedded as base64, so ``report.html`` alone
is enough to share.

Maps are rasterised with datashader (one pass over the points, so 10^6 cost about as much as
10^4); the other figures are matplotlib, drawn on `matplotlib.figure.Figure` (no pyplot state).
"""

from __future__ import annotations

import base64
import datetime
import html
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from galexplore.atlas.files import Atlas
from galexplore.io import atomic_write_text

REPORT = "report.html"
#: size of the rasterised maps, pixels
MAP_PIXELS = 600
#: galaxies in the anomaly gallery, and tiles per row
GALLERY_N, GALLERY_COLUMNS = 24, 6
#: the categorical map's colours, by label_availability value (others cycle through the rest)
LABEL_COLOURS = {"none": "#bbbbbb", "spec-z": "#1f77b4", "morphology": "#2ca02c", "spec-z+morphology": "#d62728"}
_MORE_COLOURS = ("#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22")


class Section(NamedTuple):
    title: str
    html: str
    figures: list[Path]


class SectionSkipped(Exception):
    """A section's inputs are not in the atlas; the message says which."""


SectionFunction = Callable[[Atlas, Path], Section]


# ---------------------------------------------------------------- building blocks

def figure(folder: Path, name: str, png: bytes, caption: str) -> tuple[Path, str]:
    """Write `png` as ``folder/name`` and return it with its HTML: the image embedded as base64
    under a one-line caption."""
    path = Path(folder) / name
    path.write_bytes(png)
    data = base64.b64encode(png).decode("ascii")
    text = html.escape(caption)
    return path, (f'<figure><img src="data:image/png;base64,{data}" alt="{text}">'
                  f"<figcaption>{text}</figcaption></figure>")


def table(frame: pd.DataFrame, float_format: str = "{:.4g}") -> str:
    """An HTML table of `frame` (values escaped, floats to 4 significant figures)."""
    return frame.to_html(index=False, border=0, classes="data", float_format=float_format.format, na_rep="")


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def _new_figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _numeric(catalog: pd.DataFrame, name: str) -> np.ndarray:
    return pd.to_numeric(catalog[name], errors="coerce").to_numpy(dtype=np.float64)


def _first_column(catalog: pd.DataFrame, names: Sequence[str]) -> str | None:
    """The first of `names` that the catalog has with at least one finite value."""
    for name in names:
        if name in catalog.columns and np.isfinite(_numeric(catalog, name)).any():
            return name
    return None


def _raster(catalog: pd.DataFrame, column: str, categorical: bool, span: tuple[float, float] | None = None,
            cmap: list[str] | None = None, colours: dict[str, str] | None = None) -> tuple[np.ndarray, tuple]:
    """The map rasterised by datashader: (H, W, 4) uint8 RGBA, row 0 at the lowest umap_y, and
    the extent (x0, x1, y0, y1)."""
    import datashader as ds
    import datashader.transfer_functions as tf

    x, y = _numeric(catalog, "umap_x"), _numeric(catalog, "umap_y")
    pad_x, pad_y = 0.02 * (np.nanmax(x) - np.nanmin(x) or 1), 0.02 * (np.nanmax(y) - np.nanmin(y) or 1)
    extent = (np.nanmin(x) - pad_x, np.nanmax(x) + pad_x, np.nanmin(y) - pad_y, np.nanmax(y) + pad_y)
    canvas = ds.Canvas(plot_width=MAP_PIXELS, plot_height=MAP_PIXELS, x_range=extent[:2], y_range=extent[2:])
    if categorical:
        frame = pd.DataFrame({"x": x, "y": y, "c": catalog[column].astype(str).astype("category")})
        agg = canvas.points(frame, "x", "y", agg=ds.count_cat("c"))
        image = tf.shade(agg, color_key=colours, how="eq_hist", min_alpha=180)
    else:
        frame = pd.DataFrame({"x": x, "y": y, "v": _numeric(catalog, column)}).dropna()
        agg = canvas.points(frame, "x", "y", agg=ds.mean("v"))
        image = tf.shade(agg, cmap=cmap, how="linear", span=span)
    image = tf.dynspread(image, threshold=0.5, max_px=3)
    rgba = np.ascontiguousarray(image.data).view(np.uint8).reshape(MAP_PIXELS, MAP_PIXELS, 4)
    return rgba, extent


def _map_png(catalog: pd.DataFrame, column: str, label: str) -> bytes:
    """A datashaded UMAP map coloured by `column`, with a colour bar or a legend."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize, to_hex
    from matplotlib.patches import Patch

    fig = _new_figure(6.4, 5.6)
    ax = fig.add_subplot()
    categorical = not pd.api.types.is_numeric_dtype(catalog[column])
    if categorical:
        values = sorted(catalog[column].astype(str).unique())
        spare = iter(_MORE_COLOURS * (1 + len(values) // len(_MORE_COLOURS)))
        colours = {v: LABEL_COLOURS.get(v) or next(spare) for v in values}
        rgba, extent = _raster(catalog, column, True, colours=colours)
        counts = catalog[column].astype(str).value_counts()
        ax.legend(handles=[Patch(color=colours[v], label=f"{v} ({counts[v]:,})") for v in values],
                  loc="best", fontsize=8, framealpha=0.8)
    else:
        values = _numeric(catalog, column)
        lo, hi = np.nanpercentile(values, [1, 99])
        hi = hi if hi > lo else lo + 1e-6
        cmap = colormaps["viridis"]
        rgba, extent = _raster(catalog, column, False, span=(lo, hi),
                               cmap=[to_hex(c) for c in cmap(np.linspace(0, 1, 256))])
        fig.colorbar(ScalarMappable(Normalize(lo, hi), cmap), ax=ax, label=f"{label} (mean per pixel)", shrink=0.8)
    ax.imshow(rgba, origin="lower", extent=extent, aspect="auto", interpolation="nearest")
    ax.set_xlabel("umap_x")
    ax.set_ylabel("umap_y")
    return _png(fig)


# ---------------------------------------------------------------- sections

def overview_section(atlas: Atlas, folder: Path) -> Section:
    """Counts (galaxies, labels, injected anomalies) and each build stage's time."""
    catalog = atlas.catalog
    counts = [("galaxies", f"{atlas.n_objects:,}")]
    for name, label in (("z_spec", "with a spectroscopic redshift"), ("p_features", "with morphology votes")):
        if name in catalog.columns:
            counts.append((label, f"{int(np.isfinite(_numeric(catalog, name)).sum()):,}"))
    if "label_availability" in catalog.columns:
        for value, n in catalog["label_availability"].astype(str).value_counts().items():
            counts.append((f"label_availability = {value}", f"{n:,}"))
    if "is_anomaly" in catalog.columns:
        counts.append(("injected anomalies (truth)", f"{int(catalog['is_anomaly'].astype(bool).sum()):,}"))
    counts.append(("catalog columns", str(len(catalog.columns))))
    parts = ["<h3>Counts</h3>", table(pd.DataFrame(counts, columns=["what", "count"]))]
    stages = [(name, info.get("seconds"), info.get("peak_mb"), info.get("detail", ""))
              for name, info in atlas.stages.items() if isinstance(info, dict)]
    if stages:
        frame = pd.DataFrame(stages, columns=["stage", "seconds", "peak MB", "detail"])
        total = pd.DataFrame([("total", frame["seconds"].sum(), None, "")], columns=frame.columns)
        parts += ["<h3>Build stages</h3>", table(pd.concat([frame, total], ignore_index=True), "{:.1f}")]
    else:
        parts.append("<p class='note'>The manifest records no build stages.</p>")
    return Section("Atlas", "\n".join(parts), [])


def probes_section(atlas: Atlas, folder: Path) -> Section:
    """The probes' metrics on held-out labelled galaxies, from the manifest."""
    held_out = (atlas.stages.get("probes") or {}).get("held_out")
    if not isinstance(held_out, dict):
        raise SectionSkipped("the manifest has no held-out probe metrics (the probes stage has not run)")
    rows = []
    for column, entry in held_out.items():
        if isinstance(entry, dict) and isinstance(entry.get("metrics"), dict):
            metrics = {k: v for k, v in entry["metrics"].items() if k != "n"}
            rows.append({"label": column, "kind": entry.get("kind", ""), "n_train": entry.get("n_train"),
                         "n_test": entry.get("n_test"), **metrics})
    if not rows:
        raise SectionSkipped("the probes stage recorded no held-out metrics")
    classes = ("; classes (a multinomial logistic): accuracy and balanced_accuracy, the mean recall over "
               "the classes (balanced accuracy: 1 / n_classes for a probe that always says the commonest)"
               if any(row["kind"] == "categorical" for row in rows) else "")
    note = (f"<p>Linear probes on the representations, fitted on {1 - held_out.get('test_fraction', 0.3):.0%} of "
            f"each label's galaxies and scored on the rest (seed {held_out.get('seed')}). Redshift: sigma_mad, "
            "outlier_fraction (|dz| &gt; 0.05) and bias of dz = (z_phot - z_spec)/(1 + z_spec); morphology: "
            f"accuracy and ROC AUC of the majority vote{classes}.</p>")
    return Section("Held-out probe metrics", note + table(pd.DataFrame(rows)), [])


def card_section(atlas: Atlas, folder: Path) -> Section:
    """The report card: each label scored on the encoder's representations, raw pixels and the
    untrained network, with the representations' health."""
    from galexplore.scoring.atlas_card import card_frame, summary_lines

    result = (atlas.stages.get("card") or {}).get("card")
    if not isinstance(result, dict):
        raise SectionSkipped("the manifest has no report card (the card stage has not run, or card.rows = 0)")
    protocol = result["protocol"]
    parts = ["<ul class='verdict'>" + "".join(f"<li>{html.escape(line)}</li>" for line in summary_lines(result)) + "</ul>",
             f"<p class='note'>kNN: k = {protocol['k']} by cosine similarity, stratified {protocol['folds']}-fold over "
             f"{protocol['rows']:,} labelled galaxies (seed {protocol['seed']}), the same galaxies and folds in every "
             f"space; linear: a logistic (classes, vote fractions over 0.5) or ridge (redshift) probe on the same folds; "
             f"p@10: the share of a galaxy's 10 most similar labelled galaxies in its class.</p>"]
    if result.get("baselines_note"):
        parts.append(f"<p class='note'>No baselines: {html.escape(result['baselines_note'])}.</p>")
    for column, entry in result["labels"].items():
        if "note" in entry:
            continue
        parts.append(f"<h3>{html.escape(column)} ({html.escape(entry['kind'])}, {entry['n']:,} labelled)</h3>")
        parts.append(table(card_frame(result, column).rename_axis("space").reset_index(), "{:.3f}"))
    rows = [{"space": name, "random pair cosine": h["random_cosine"]["mean"], "nearest cosine": h["neighbour_cosine"]["first"],
             "effective rank": h["effective_rank"], "dims": h["dim"], "uniformity": h["uniformity"],
             "flags": "; ".join(h["flags"]) or "none"} for name, h in result.get("health", {}).items()]
    if rows:
        parts.append("<h3>Health</h3>" + table(pd.DataFrame(rows), "{:.3f}"))
    return Section("Report card: the encoder against pixels", "\n".join(parts), [])


def maps_section(atlas: Atlas, folder: Path) -> Section:
    """The UMAP map coloured by redshift, by morphology and by which labels a galaxy has."""
    catalog = atlas.catalog
    if not {"umap_x", "umap_y"} <= set(catalog.columns):
        raise SectionSkipped("the catalog has no umap_x, umap_y (the project stage has not run)")
    n = f"{len(catalog):,}"
    maps = []  # (file, column, caption)
    z = _first_column(catalog, ("z_phot", "z_spec"))
    if z is not None:
        which = "the photo-z probe's z_phot" if z == "z_phot" else "z_spec (labelled galaxies only)"
        maps.append(("map_redshift.png", z, f"The UMAP map of {n} galaxies coloured by {which}, mean per pixel."))
    p = _first_column(catalog, ("p_features_pred", "p_features"))
    if p is not None:
        which = "the probe's p_features_pred" if p == "p_features_pred" else "the vote fraction p_features"
        maps.append(("map_morphology.png", p,
                     f"The UMAP map coloured by {which} (1 = featured/disk, 0 = smooth), mean per pixel."))
    if "label_availability" in catalog.columns:
        maps.append(("map_labels.png", "label_availability", "The UMAP map coloured by which labels each galaxy "
                      "has: where labelled galaxies are, predictions can be trusted."))
    files, parts = [], []
    for name, column, caption in maps:
        path, fig_html = figure(folder, name, _map_png(catalog, column, column), caption)
        files.append(path)
        parts.append(fig_html)
    if not parts:
        raise SectionSkipped("the catalog has no z_phot, z_spec, p_features or label_availability to colour by")
    return Section("Maps of the representation space", "\n".join(parts), files)


def _photoz_panel(ax: Any, z_ref: np.ndarray, z_phot: np.ndarray, xlabel: str, title: str) -> None:
    from matplotlib.colors import LogNorm

    top = float(np.nanpercentile(np.r_[z_ref, z_phot], 99.5)) * 1.05
    _, _, _, image = ax.hist2d(z_ref, z_phot, bins=60, range=[[0, top], [0, top]], norm=LogNorm(), cmap="viridis",
                               cmin=1)
    grid = np.linspace(0, top, 2)
    ax.plot(grid, grid, color="k", lw=0.8)
    for sign in (-1, 1):
        ax.plot(grid, grid + sign * 0.15 * (1 + grid), color="k", lw=0.6, ls="--")
    ax.set(xlabel=xlabel, ylabel="z_phot", title=title, xlim=(0, top), ylim=(0, top), aspect="equal")
    ax.figure.colorbar(image, ax=ax, label="galaxies", shrink=0.8)


def photoz_section(atlas: Atlas, folder: Path) -> Section:
    """z_phot against z_spec (and against the true z of a simulated survey)."""
    from galexplore.scoring.figures import photoz_metrics

    catalog = atlas.catalog
    if "z_phot" not in catalog.columns or "z_spec" not in catalog.columns:
        raise SectionSkipped("the catalog needs z_phot and z_spec")
    z_phot, z_spec = _numeric(catalog, "z_phot"), _numeric(catalog, "z_spec")
    labelled = np.isfinite(z_spec) & np.isfinite(z_phot)
    if labelled.sum() < 2:
        raise SectionSkipped("fewer than two galaxies have both z_phot and z_spec")
    scheme = ((atlas.stages.get("probes") or {}).get("labelled_predictions") or {}).get("z_spec")
    how = scheme or "in-sample"  # atlases built before cross-fitting record none: their probe saw these labels
    panels = [(z_spec[labelled], z_phot[labelled], "z_spec", f"labelled galaxies ({how}), n={labelled.sum():,}")]
    if "z" in catalog.columns:
        z = _numeric(catalog, "z")
        unlabelled = ~np.isfinite(z_spec) & np.isfinite(z) & np.isfinite(z_phot)
        if unlabelled.sum() >= 2:
            panels.append((z[unlabelled], z_phot[unlabelled], "true z",
                           f"unlabelled galaxies vs truth, n={unlabelled.sum():,}"))
    fig = _new_figure(5.2 * len(panels), 4.6)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    rows = []
    for ax, (ref, pred, xlabel, title) in zip(axes, panels):
        _photoz_panel(ax, ref, pred, xlabel, title)
        rows.append({"against": xlabel, "galaxies": title.split(",")[0], **photoz_metrics(pred, ref)})
    caption = ("z_phot against z_spec" + (" and against the true z" if len(panels) > 1 else "")
               + ": 2-D histogram (log colour), the 1:1 line and |dz| = 0.15 (dashed).")
    path, fig_html = figure(folder, "photoz.png", _png(fig), caption)
    if scheme:
        note = (f"<p class='note'>Labelled galaxies' z_phot is {html.escape(scheme)}: each was predicted by a probe "
                "fitted without its z_spec, so these are held-out errors; unlabelled ones by the probe of all labels.</p>")
    else:
        note = ("<p class='note'>Labelled galaxies' z_phot is in-sample (the probe was fitted to their z_spec); "
                "the held-out metrics are in the probe table.</p>")
    return Section("Photometric redshifts", fig_html + table(pd.DataFrame(rows)) + note, [path])


def _bin_labels(bins: list[dict[str, Any]]) -> list[str]:
    """Each bin's upper trust bound over its share of the galaxies."""
    return [f"<={b['trust_max']:.2g}\n{b['share']:.0%}" for b in bins]


def trust_section(atlas: Atlas, folder: Path) -> Section:
    """Does low trust mark bad predictions? Error by trust decile and the outlier ROC AUC."""
    from galexplore.evaluate.trust_validation import CATASTROPHIC_DZ, OUTLIER_DZ, validate_trust

    result = validate_trust(atlas.catalog, labelled=(atlas.stages.get("probes") or {}).get("labelled_predictions"))
    photoz, morphology = result["photoz"], result["morphology"]
    if not photoz["available"] and not morphology["available"]:
        raise SectionSkipped(f"{photoz['note']}; {morphology['note']}")
    panels = [("photoz", photoz)] * 2 * photoz["available"] + [("morphology", morphology)] * morphology["available"]
    fig = _new_figure(4.6 * len(panels), 4.2)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    parts = [f"<p class='verdict'><b>{html.escape(result['verdict'])}</b></p>"]
    for k, (ax, (what, res)) in enumerate(zip(axes, panels)):
        position = np.arange(len(res["bins"]))
        if what == "photoz" and k == 0:
            ax.bar(position, [b["median_error"] for b in res["bins"]], color="#1f77b4")
            ax.set(ylabel="median |dz|", title=f"photo-z vs {res['reference']}, n={res['n']:,}")
        elif what == "photoz":
            ax.plot(position, [b["outlier_fraction"] for b in res["bins"]], "o-", label=f"|dz| > {OUTLIER_DZ}")
            ax.plot(position, [b["catastrophic_fraction"] for b in res["bins"]], "s-",
                    label=f"|dz| > {CATASTROPHIC_DZ}")
            ax.set(ylabel="outlier fraction", title="photo-z outliers", ylim=(0, None))
            ax.legend(fontsize=8)
        else:
            ax.bar(position, [b["median_error"] for b in res["bins"]], color="#2ca02c")
            ax.set(ylabel="median |p_features_pred - p_features|", title=f"morphology, n={res['n']:,}")
        ax.set_xticks(position, _bin_labels(res["bins"]), fontsize=7)
        ax.set_xlabel(f"{res['trust_column']} bin (upper bound, share), lowest first")
    caption = ("Prediction error by trust decile (tied trust values share a bin), lowest trust on the left: "
               "if trust works, the bars fall from left to right.")
    path, fig_html = figure(folder, "trust_validation.png", _png(fig), caption)
    parts.append(fig_html)
    for res in (photoz, morphology):
        parts.append(f"<h3>{res['what']}</h3><p class='note'>{html.escape(res['note'])}</p>")
        if res["available"]:
            if "auc" in res:
                aucs = ", ".join(f"|dz| &gt; {res['thresholds'][k]}: "
                                 + ("undefined (one class)" if v is None else f"{v:.3f}") for k, v in res["auc"].items())
                parts.append(f"<p>ROC AUC of (1 - trust_spec_z) for outliers: {aucs}.</p>")
            parts.append(table(pd.DataFrame(res["bins"])))
    return Section("Does trust work?", "\n".join(parts), [path])


def _gallery_png(pngs: list[bytes], labels: list[str], size: int) -> bytes:
    from PIL import Image, ImageDraw

    rows = -(-len(pngs) // GALLERY_COLUMNS)
    label_h = 14
    sheet = Image.new("RGB", (GALLERY_COLUMNS * (size + 4), rows * (size + label_h + 4)), "white")
    draw = ImageDraw.Draw(sheet)
    for k, (png, label) in enumerate(zip(pngs, labels)):
        x, y = (k % GALLERY_COLUMNS) * (size + 4) + 2, (k // GALLERY_COLUMNS) * (size + label_h + 4) + 2
        sheet.paste(Image.open(io.BytesIO(png)).convert("RGB"), (x, y))
        draw.text((x + 1, y + size + 1), label, fill="black")
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    return buffer.getvalue()


def anomalies_section(atlas: Atlas, folder: Path) -> Section:
    """The most anomalous galaxies: a gallery of cutouts and their table."""
    from galexplore.explorer.cutouts import CutoutSource

    catalog = atlas.catalog
    if "anomaly_score" not in catalog.columns:
        raise SectionSkipped("the catalog has no anomaly_score (the scores stage has not run)")
    score = _numeric(catalog, "anomaly_score")
    rows = np.argsort(-np.nan_to_num(score, nan=-np.inf), kind="stable")[:GALLERY_N]
    sky = ("ra", "dec") if np.isfinite(_numeric(catalog, "ra")).any() else ()  # none: survey.positions = "none"
    columns = [c for c in ("object_id", *sky, "anomaly_score", "z_phot", "z_spec", "type", "is_anomaly",
                           "anomaly_type") if c in catalog.columns]
    top = catalog.iloc[rows][columns].reset_index(drop=True)
    top.insert(0, "rank", np.arange(1, len(rows) + 1))
    parts, files = [], []
    source = CutoutSource(atlas, cache_size=GALLERY_N)
    try:
        pngs = source.rgb_pngs(rows, 96)
    finally:
        source.close()
    if pngs is None:
        parts.append(f"<p class='note'>No cutouts: {html.escape(str(source.reason))}.</p>")
    else:
        labels = [f"#{k + 1} {score[r]:.2f}" for k, r in enumerate(rows)]
        path, fig_html = figure(folder, "anomalies.png", _gallery_png(pngs, labels, 96),
                                f"The {len(rows)} galaxies with the highest anomaly_score (rank and score under "
                                "each), most anomalous first.")
        files.append(path)
        parts.append(fig_html)
    if "is_anomaly" in catalog.columns:
        from galexplore.evaluate.quality import anomaly_precision

        precision = anomaly_precision(catalog)
        parts.append(f"<p>Of these {len(rows)}, {int(top['is_anomaly'].sum())} are injected anomalies. In the top 1% "
                     f"({precision['n_top']:,}), precision {precision['precision']:.2f} and recall "
                     f"{precision['recall']:.2f} against a base rate of {precision['base_rate']:.3f}.</p>")
    parts.append(table(top))
    return Section("The most anomalous galaxies", "\n".join(parts), files)


#: the label sweep's methods, as the report names them
_METHOD_NAMES = {"probe": "linear probe (frozen MoCo)", "finetune": "MoCo fine-tuned", "scratch": "supervised from scratch"}
#: per task: its name, its two panels (metric, axis label) and its table's metrics
_SWEEP_TASKS = {
    "redshift": ("photo-z", (("sigma_mad", "sigma_MAD"), ("outlier_fraction", "outlier fraction eta (|dz| > 0.05)")),
                 ("sigma_mad", "outlier_fraction", "bias")),
    "morphology": ("morphology", (("accuracy", "accuracy (p_features > 0.5)"), ("roc_auc", "ROC AUC")),
                   ("accuracy", "roc_auc")),
}


def _label_sweeps(atlas: Atlas) -> tuple[dict[str, dict[str, list]], dict[str, dict[str, list]]]:
    """(curves {task: {method: entries}}, factors {task: {comparison: entries}}) from
    label_efficiency.json (either layout), with the probe's curves of probe_sweep.json where
    label_efficiency.json has none."""
    from galexplore.evaluate.label_sweep import read_label_sweep
    from galexplore.evaluate.probes import DEFAULT_COLUMNS

    curves: dict[str, dict[str, list]] = {}
    factors: dict[str, dict[str, list]] = {}
    if atlas.has("label_efficiency.json"):
        curves, factors = read_label_sweep(atlas.json("label_efficiency.json"))
    if atlas.has("probe_sweep.json"):
        probe_sweep = atlas.json("probe_sweep.json")
        for task, column in DEFAULT_COLUMNS.items():
            sweep = probe_sweep.get(column, {}).get("sweep")
            if sweep and "probe" not in curves.get(task, {}):
                curves.setdefault(task, {})["probe"] = sweep
    return {task: curves[task] for task in _SWEEP_TASKS if curves.get(task)}, factors


def _with_std(mean: float | None, std: float | None) -> str:
    """The mean and std as text, as in "0.0274 ± 0.0012"; the mean alone without a std, "" without a mean."""
    if mean is None:
        return ""
    return f"{mean:.4g}" if std is None else f"{mean:.4g} ± {std:.2g}"


def _sweep_png(by_method: dict[str, list], panels: tuple, task: str) -> bytes:
    """Two panels of metric against labels (log axis), a line per method, ±1 std bars where recorded."""
    fig = _new_figure(9, 3.4)
    axes = fig.subplots(1, 2)
    for i, (key, points) in enumerate(by_method.items()):
        for ax, (metric, _) in zip(axes, panels):
            y = [np.nan if p["metrics"].get(metric) is None else p["metrics"][metric] for p in points]
            std = [(p.get("std") or {}).get(metric) for p in points]
            yerr = [0.0 if s is None else s for s in std] if any(s is not None for s in std) else None
            dodge = 1.04 ** (i - (len(by_method) - 1) / 2) if yerr else 1.0  # bars of one count side by side
            ax.errorbar([p["n_train"] * dodge for p in points], y, yerr=yerr, marker="o", capsize=3,
                        label=_METHOD_NAMES.get(key, key))
    for ax, (_, label) in zip(axes, panels):
        ax.set_xscale("log")
        ax.set_xlabel(f"{'spec-z' if task == 'redshift' else 'morphology'} labels used for training")
        ax.set_ylabel(label)
    axes[0].legend(fontsize=8)
    return _png(fig)


def label_sweep_section(atlas: Atlas, folder: Path) -> Section:
    """Photo-z and morphology against the number of labels: the linear probe (`galexplore probe`)
    and, when recorded, the supervised baseline and fine-tuning (bench/label_efficiency.py --save)."""
    curves, factors = _label_sweeps(atlas)
    if not curves:
        raise SectionSkipped("the atlas has no label sweep (run `galexplore probe ATLAS`)")
    parts, files, repeated = [], [], False
    for task, by_method in curves.items():
        what, panels, metrics = _SWEEP_TASKS[task]
        has_std = any(p.get("std") for points in by_method.values() for p in points)
        repeated |= has_std
        rows = []
        for key, points in by_method.items():
            for p in points:
                std = p.get("std") or {}
                rows.append({"method": _METHOD_NAMES.get(key, key), "labels": p["n_train"],
                             "seeds": len(p.get("repeats", [])) or 1,
                             **{m: _with_std(p["metrics"].get(m), std.get(m)) for m in metrics}})
        name = "label_sweep.png" if task == "redshift" else f"label_sweep_{task}.png"
        caption = (f"{what.capitalize()} on the same held-out galaxies against the number of training labels, per "
                   f"method{'; bars: ±1 std over seeds' if has_std else ''}.")
        path, fig_html = figure(folder, name, _sweep_png(by_method, panels, task), caption)
        files.append(path)
        parts += [f"<h3>{what.capitalize()}</h3>", fig_html, table(pd.DataFrame(rows))]
    if repeated:
        parts.insert(0, "<p class='note'>Each point is the mean over seeds (± the sample standard deviation): for "
                        "scratch and fine-tuning the training seed on the same labelled galaxies, for the probe the "
                        "draw of the labelled galaxies.</p>")
    lines = [{"task": task, "comparison": key, "labels": e["n"], "supervised labels needed": e["n_needed"],
              "factor": e["factor"], "why none": e.get("reason") or ""}
             for task, by_key in factors.items() for key, entries in by_key.items() for e in entries]
    if lines:
        parts += ["<h3>Label efficiency: how many labels the supervised baseline needs to match</h3>",
                  table(pd.DataFrame(lines))]
    title = "Labels and " + " and ".join(_SWEEP_TASKS[task][0] for task in curves)
    return Section(title, "\n".join(parts), files)


def ablation_section(atlas: Atlas, folder: Path) -> Section:
    """Which augmentations matter: the probes of encoders trained without each one
    (`galexplore ablation CONFIG --atlas ATLAS`)."""
    if not atlas.has("ablation.json"):
        raise SectionSkipped("the atlas has no ablation (run `galexplore ablation CONFIG --atlas ATLAS`)")
    variants = atlas.json("ablation.json")["variants"]
    rows = []
    for name, info in variants.items():
        probes = info["probes"]
        row = {"variant": name}
        if "z_spec" in probes:
            row["sigma_mad"] = probes["z_spec"]["metrics"]["sigma_mad"]
            row["outlier_fraction"] = probes["z_spec"]["metrics"]["outlier_fraction"]
        for column in ("p_features", "p_edge_on"):
            if column in probes:
                row[f"{column} accuracy"] = probes[column]["metrics"]["accuracy"]
        rows.append(row)
    frame = pd.DataFrame(rows)
    metrics = [c for c in ("sigma_mad", "outlier_fraction", "p_features accuracy") if c in frame]
    fig = _new_figure(3.2 * len(metrics), 0.45 * len(frame) + 1.2)
    axes = np.atleast_1d(fig.subplots(1, len(metrics), sharey=True))
    for ax, metric in zip(axes, metrics):
        ax.barh(frame["variant"], frame[metric], color="#4c72b0")
        ax.set_xlabel(metric)
        ax.invert_yaxis()
    _, fig_html = figure(folder, "ablation.png", _png(fig),
                         "Held-out probe metrics of encoders trained with each augmentation left out (same seed and steps).")
    return Section("Which augmentations matter", fig_html + table(frame), [folder / "ablation.png"])


#: the report's sections, in order; append to add one
SECTIONS: list[SectionFunction] = [overview_section, card_section, probes_section, maps_section, photoz_section, trust_section, label_sweep_section, ablation_section,
                                   anomalies_section]

_STYLE = """
body { font-family: sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 2em; }
figure { margin: 1em 0; } figure img { max-width: 100%; }
figcaption { color: #444; font-size: 0.9em; margin-top: 0.3em; }
table.data { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
table.data td, table.data th { padding: 2px 8px; border-bottom: 1px solid #eee; text-align: right; }
.note, .skipped { color: #666; } .verdict { font-size: 1.1em; }
"""


def write_report(atlas: Atlas, out: str | Path, sections: Sequence[SectionFunction] | None = None) -> Path:
    """Write ``report.html`` and its figure PNGs into the folder `out`; returns the HTML's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    body = []
    for make in SECTIONS if sections is None else sections:
        try:
            section = make(atlas, out)
        except SectionSkipped as skipped:
            title = (make.__doc__ or make.__name__).strip().splitlines()[0]
            body.append(f"<section><h2>{html.escape(make.__name__.removesuffix('_section').replace('_', ' ').capitalize())}"
                        f"</h2><p class='skipped'>Skipped ({html.escape(title)}): {html.escape(str(skipped))}.</p></section>")
            continue
        body.append(f"<section><h2>{html.escape(section.title)}</h2>\n{section.html}\n</section>")
    created = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    name = html.escape(atlas.name)
    page = (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>galexplore report: {name}</title>"
            f"<style>{_STYLE}</style></head><body>\n<h1>galexplore report: {name}</h1>\n"
            f"<p class='note'>Atlas {html.escape(str(atlas.path.resolve()))}, {atlas.n_objects:,} galaxies, built by "
            f"galexplore {html.escape(str(atlas.manifest.get('code_version', '?')))}; report written {created}.</p>\n"
            + "\n".join(body) + "\n</body></html>\n")
    return atomic_write_text(out / REPORT, page)
