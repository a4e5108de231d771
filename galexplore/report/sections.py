"""The sections of the report that read the atlas itself: its counts, the report card, the
probes' held-out metrics, the maps (coloured, and drawn as galaxies), photo-z, whether trust works and the most anomalous galaxies.

Each is a function ``(atlas, folder) -> Section`` (`galexplore.report.blocks`); `galexplore.report.page`
puts them in order on the page.
"""

from __future__ import annotations

import html
import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from galexplore.atlas.files import Atlas
from galexplore.report.blocks import (
    Section,
    SectionSkipped,
    figure,
    first_column,
    map_png,
    new_figure,
    numeric,
    table,
    to_png,
)

#: galaxies in the anomaly gallery, and tiles per row
GALLERY_N, GALLERY_COLUMNS = 24, 6
#: cells along the longer side of the galaxy map, and pixels a tile
TILE_CELLS, TILE_PIXELS = 24, 48


def overview_section(atlas: Atlas, folder: Path) -> Section:
    """Counts (galaxies, labels, injected anomalies) and each build stage's time."""
    catalog = atlas.catalog
    counts = [("galaxies", f"{atlas.n_objects:,}")]
    for name, label in (("z_spec", "with a spectroscopic redshift"), ("p_features", "with morphology votes")):
        if name in catalog.columns:
            counts.append((label, f"{int(np.isfinite(numeric(catalog, name)).sum()):,}"))
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
    z = first_column(catalog, ("z_phot", "z_spec"))
    if z is not None:
        which = "the photo-z probe's z_phot" if z == "z_phot" else "z_spec (labelled galaxies only)"
        maps.append(("map_redshift.png", z, f"The UMAP map of {n} galaxies coloured by {which}, mean per pixel."))
    p = first_column(catalog, ("p_features_pred", "p_features"))
    if p is not None:
        which = "the probe's p_features_pred" if p == "p_features_pred" else "the vote fraction p_features"
        maps.append(("map_morphology.png", p,
                     f"The UMAP map coloured by {which} (1 = featured/disk, 0 = smooth), mean per pixel."))
    if "label_availability" in catalog.columns:
        maps.append(("map_labels.png", "label_availability", "The UMAP map coloured by which labels each galaxy "
                      "has: where labelled galaxies are, predictions can be trusted."))
    files, parts = [], []
    for name, column, caption in maps:
        path, fig_html = figure(folder, name, map_png(catalog, column, column), caption)
        files.append(path)
        parts.append(fig_html)
    if not parts:
        raise SectionSkipped("the catalog has no z_phot, z_spec, p_features or label_availability to colour by")
    return Section("Maps of the representation space", "\n".join(parts), files)


def galaxy_map_section(atlas: Atlas, folder: Path) -> Section:
    """The map tiled with the galaxies themselves: the cutout of the galaxy nearest each cell's
    centre, over the whole map (the explorer's "galaxies on the map" toggle, for a paper)."""
    from PIL import Image

    from galexplore.explorer.cutouts import CutoutSource
    from galexplore.explorer.queries import MapIndex
    from galexplore.explorer.tiles import TileGrid, mosaic

    catalog = atlas.catalog
    if not {"umap_x", "umap_y"} <= set(catalog.columns):
        raise SectionSkipped("the catalog has no umap_x, umap_y (the project stage has not run)")
    x, y = numeric(catalog, "umap_x"), numeric(catalog, "umap_y")
    finite = np.isfinite(x) & np.isfinite(y)
    if not finite.any():
        raise SectionSkipped("no galaxy has map coordinates")
    (x0, x1), (y0, y1) = np.percentile(x[finite], [0.5, 99.5]), np.percentile(y[finite], [0.5, 99.5])
    pad_x, pad_y = 0.05 * (x1 - x0) + 1e-9, 0.05 * (y1 - y0) + 1e-9  # the outermost galaxies inside their cells
    grid = TileGrid.over((x0 - pad_x, x1 + pad_x, y0 - pad_y, y1 + pad_y), cells=TILE_CELLS)
    galaxies = grid.galaxies(MapIndex(x, y, np.full(len(x), np.nan), np.full(len(x), np.nan)))
    source = CutoutSource(atlas, cache_size=int((galaxies >= 0).sum()) + 1)
    try:
        image = mosaic(galaxies, source.rgb_arrays, TILE_PIXELS)
    finally:
        source.close()
    if image is None:
        raise SectionSkipped(f"no cutouts: {source.reason}")
    sheet = Image.new("RGB", image.shape[1::-1], "white")
    sheet.paste(Image.fromarray(image[..., :3]), mask=Image.fromarray(image[..., 3]))
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    path, fig_html = figure(folder, "map_galaxies.png", buffer.getvalue(),
                            f"The UMAP map of {len(catalog):,} galaxies drawn as galaxies: in each of "
                            f"{grid.columns} x {grid.rows} cells, the galaxy nearest the cell's centre "
                            f"({int((galaxies >= 0).sum()):,} cells hold one; the central 99% of the map).")
    return Section("Galaxies on the map", fig_html, [path])


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
    z_phot, z_spec = numeric(catalog, "z_phot"), numeric(catalog, "z_spec")
    labelled = np.isfinite(z_spec) & np.isfinite(z_phot)
    if labelled.sum() < 2:
        raise SectionSkipped("fewer than two galaxies have both z_phot and z_spec")
    scheme = ((atlas.stages.get("probes") or {}).get("labelled_predictions") or {}).get("z_spec")
    how = scheme or "in-sample"  # atlases built before cross-fitting record none: their probe saw these labels
    panels = [(z_spec[labelled], z_phot[labelled], "z_spec", f"labelled galaxies ({how}), n={labelled.sum():,}")]
    if "z" in catalog.columns:
        z = numeric(catalog, "z")
        unlabelled = ~np.isfinite(z_spec) & np.isfinite(z) & np.isfinite(z_phot)
        if unlabelled.sum() >= 2:
            panels.append((z[unlabelled], z_phot[unlabelled], "true z",
                           f"unlabelled galaxies vs truth, n={unlabelled.sum():,}"))
    fig = new_figure(5.2 * len(panels), 4.6)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    rows = []
    for ax, (ref, pred, xlabel, title) in zip(axes, panels):
        _photoz_panel(ax, ref, pred, xlabel, title)
        rows.append({"against": xlabel, "galaxies": title.split(",")[0], **photoz_metrics(pred, ref)})
    caption = ("z_phot against z_spec" + (" and against the true z" if len(panels) > 1 else "")
               + ": 2-D histogram (log colour), the 1:1 line and |dz| = 0.15 (dashed).")
    path, fig_html = figure(folder, "photoz.png", to_png(fig), caption)
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
    fig = new_figure(4.6 * len(panels), 4.2)
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
    path, fig_html = figure(folder, "trust_validation.png", to_png(fig), caption)
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
    score = numeric(catalog, "anomaly_score")
    rows = np.argsort(-np.nan_to_num(score, nan=-np.inf), kind="stable")[:GALLERY_N]
    sky = ("ra", "dec") if np.isfinite(numeric(catalog, "ra")).any() else ()  # none: survey.positions = "none"
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
