"""`galexplore report`: a self-contained HTML report on an atlas, section by section."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from galexplore.atlas.files import AtlasWriter, open_atlas
from galexplore.cli import main
from galexplore.report.page import REPORT, SECTIONS, Section, SectionSkipped, figure, write_report

N = 600
ANOMALIES = (17, 33)


@pytest.fixture(scope="module")
def atlas_path(tmp_path_factory) -> Path:
    """An atlas written in the test with `AtlasWriter`, shaped as `build` writes one: four clusters
    on the map, spec-z for two (high trust) and votes for one, photo-z errors that grow as trust
    falls, two injected anomalies with the highest anomaly scores, and a manifest with stage
    timings and held-out probe metrics. (`build` itself takes a minute here: UMAP's JIT.)"""
    rng = np.random.default_rng(11)
    which = rng.integers(0, 4, N)
    centres = np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0], [5.0, 5.0]])
    xy = centres[which] + rng.normal(0, 0.8, (N, 2))
    z = 0.05 + 0.08 * which + rng.normal(0, 0.01, N)
    trust = np.where(which < 2, rng.uniform(0.3, 1, N), rng.uniform(0, 0.3, N))
    p = np.clip(0.2 + 0.2 * which + rng.normal(0, 0.05, N), 0, 1)
    labels = np.array(["spec-z", "spec-z+morphology", "none", "none"])[which]
    score = rng.uniform(0.9, 1.5, N)
    score[list(ANOMALIES)] = [9.0, 8.0]
    catalog = pd.DataFrame({
        "object_id": np.arange(N), "ra": rng.uniform(0, 360, N), "dec": rng.uniform(-60, 60, N),
        "z": z, "z_spec": np.where(which < 2, z, np.nan), "p_features": np.where(which == 1, p, np.nan),
        "is_anomaly": np.isin(np.arange(N), ANOMALIES),
        "umap_x": xy[:, 0].astype(np.float32), "umap_y": xy[:, 1].astype(np.float32),
        "trust_spec_z": trust.astype(np.float32), "trust_morphology": trust.astype(np.float32),
        "trust": trust.astype(np.float32), "anomaly_score": score.astype(np.float32),
        "label_availability": pd.Categorical(labels),
        "z_phot": (z + (1 + z) * (0.01 + 0.3 * (1 - trust) ** 3) * rng.standard_normal(N)).astype(np.float32),
        "p_features_pred": np.clip(p + 0.05 * rng.standard_normal(N), 0, 1).astype(np.float32),
    })
    folder = tmp_path_factory.mktemp("report") / "atlas"
    writer = AtlasWriter(folder, "report-test")
    writer.write_catalog(catalog)
    embeddings = rng.standard_normal((N, 8)).astype(np.float32)
    writer.write_array("embeddings.npy", embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True))
    writer.write_array("neighbors.npy", ((np.arange(N)[:, None] + np.arange(1, 6)) % N).astype(np.int32))
    for stage, seconds in (("embed", 3.2), ("neighbors", 0.4), ("project", 9.5), ("scores", 0.3)):
        writer.set_stage(stage, {"seconds": seconds, "detail": f"{stage} detail"})
    writer.set_stage("probes", {"seconds": 1.5, "held_out": {"seed": 0, "test_fraction": 0.3, "z_spec": {
        "kind": "redshift", "n_train": 210, "n_test": 90,
        "metrics": {"sigma_mad": 0.0123, "outlier_fraction": 0.05, "bias": 0.001, "n": 90}}, "p_features": {
        "kind": "morphology", "n_train": 105, "n_test": 45, "metrics": {"accuracy": 0.91, "roc_auc": 0.957, "n": 45}}}})
    return folder


@pytest.fixture(scope="module")
def report(atlas_path, tmp_path_factory) -> tuple[Path, str]:
    path = write_report(open_atlas(atlas_path), tmp_path_factory.mktemp("out") / "report")
    return path, path.read_text(encoding="utf-8")


def _captions(page: str) -> list[str]:
    return re.findall(r"<figcaption>(.*?)</figcaption>", page)


def test_report_figures_exist_are_pngs_and_are_embedded(report):
    path, page = report
    pngs = sorted(path.parent.glob("*.png"))
    assert {p.name for p in pngs} == {"map_redshift.png", "map_morphology.png", "map_labels.png", "photoz.png",
                                      "trust_validation.png"}
    embedded = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(embedded) == len(pngs) == len(_captions(page))
    for png in pngs:
        assert png.stat().st_size > 1000
        with Image.open(png) as image:
            assert image.format == "PNG" and min(image.size) > 200
        assert base64.b64encode(png.read_bytes()).decode() in embedded  # the HTML alone is enough
    assert not re.search(r"""src=["']?(https?:|//|file:)""", page)  # no external images
    assert "http" not in page


def test_report_has_every_section_caption_and_table(report):
    _, page = report
    for title in ("Atlas", "Held-out probe metrics", "Maps of the representation space", "Photometric redshifts",
                  "Does trust work?", "The most anomalous galaxies"):
        assert f"<h2>{title}</h2>" in page
    captions = _captions(page)
    assert any(c.startswith("The UMAP map of 600 galaxies coloured by the photo-z probe") for c in captions)
    assert all(c and "\n" not in c for c in captions)
    assert "<td>galaxies</td>" in page and "<td>600</td>" in page  # counts table
    assert "sigma_mad" in page and "roc_auc" in page  # held-out probe metrics from the manifest
    assert "0.0123" in page and "0.957" in page
    for stage in ("embed", "neighbors", "project", "scores", "probes"):
        assert f"<td>{stage}</td>" in page  # build timings
    assert re.search(r"<td>total</td>\s*<td>14.9</td>", page)  # 3.2 + 0.4 + 9.5 + 0.3 + 1.5
    # photo-z errors grow as trust falls here, and the verdict, computed from the numbers, says so
    assert "<p class='verdict'><b>low trust marks bad photo-z: AUC " in page


def test_anomaly_section_without_a_survey_says_so_and_lists_the_injected_ones(report):
    _, page = report
    section = page[page.index("<h2>The most anomalous galaxies</h2>"):]
    assert "No cutouts: the atlas was built from embeddings" in section
    # the two injected far-away objects rank first by anomaly score
    assert "Of these 24, 2 are injected anomalies" in section
    ranks = re.findall(r"<tr>\s*<td>(\d+)</td>\s*<td>(\d+)</td>", section)  # (rank, object_id)
    assert ranks[:2] == [("1", "17"), ("2", "33")] and len(ranks) == 24


def test_a_section_without_its_inputs_is_skipped_with_a_note(atlas_path, tmp_path):
    def needs_ablation(atlas, folder):
        """Ablation bars."""
        raise SectionSkipped("the atlas has no ablation.json")

    def extra(atlas, folder):
        path, html = figure(folder, "extra.png", _tiny_png(), "A one-pixel test figure.")
        return Section("Extra", html, [path])

    page = write_report(open_atlas(atlas_path), tmp_path, sections=[*SECTIONS[:1], needs_ablation, extra]).read_text()
    assert "Skipped (Ablation bars.): the atlas has no ablation.json." in page
    assert "<h2>Extra</h2>" in page and "<figcaption>A one-pixel test figure.</figcaption>" in page
    assert (tmp_path / "extra.png").read_bytes() == _tiny_png()


def _tiny_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (1, 1), "red").save(buffer, format="PNG")
    return buffer.getvalue()


def test_cli_report_writes_into_the_atlas_by_default(atlas_path, capsys):
    assert main(["report", str(atlas_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"wrote {atlas_path / 'report' / REPORT} in ") and out.count("\n") == 1
    assert (atlas_path / "report" / REPORT).stat().st_size > 10_000
    open_atlas(atlas_path)  # the report folder does not disturb the atlas


def test_cli_report_on_a_folder_that_is_not_an_atlas_exits_2_with_one_line(tmp_path, capsys):
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and "no manifest.json" in captured.err
    assert not (tmp_path / "r").exists()


def test_label_sweep_and_ablation_sections_draw_what_the_atlas_records(atlas_path, tmp_path):
    import shutil

    from galexplore.atlas.files import AtlasWriter
    from galexplore.report.page import ablation_section, label_sweep_section

    folder = tmp_path / "atlas"
    shutil.copytree(atlas_path, folder)
    writer = AtlasWriter(folder, name="report-test")
    curve = [{"n_train": n, "metrics": {"sigma_mad": s, "outlier_fraction": e, "bias": 0.0, "n": 60}}
             for n, s, e in ((50, 0.05, 0.3), (100, 0.04, 0.2))]
    writer.write_json("probe_sweep.json", {"z_spec": {"sweep": curve}})
    writer.write_json("ablation.json", {"variants": {
        name: {"probes": {"z_spec": {"metrics": {"sigma_mad": s, "outlier_fraction": 0.1}},
                          "p_features": {"metrics": {"accuracy": a}}}}
        for name, s, a in (("all", 0.03, 0.9), ("no noise", 0.04, 0.8))}})
    atlas = open_atlas(folder)
    out = tmp_path / "report"
    out.mkdir()
    sweep = label_sweep_section(atlas, out)
    ablation = ablation_section(atlas, out)
    for section, name in ((sweep, "label_sweep.png"), (ablation, "ablation.png")):
        with Image.open(out / name) as image:
            assert image.format == "PNG" and min(image.size) > 100
        assert "<figcaption>" in section.html
    assert "0.04" in sweep.html and "no noise" in ablation.html


def _sweep_atlas(atlas_path: Path, folder: Path, label_efficiency: dict) -> Path:
    import shutil

    shutil.copytree(atlas_path, folder)
    AtlasWriter(folder, name="report-test").write_json("label_efficiency.json", label_efficiency)
    return folder


def _tables(page: str) -> list[list[list[str]]]:
    """Each HTML table of `page` as rows of cell texts, the header row first."""
    return [[re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S) for row in re.findall(r"<tr[^>]*>(.*?)</tr>", t, re.S)]
            for t in re.findall(r"<table.*?</table>", page, re.S)]


def _entry(n: int, metrics: dict, seeds: int) -> dict:
    """A curve entry of `seeds` repeats around `metrics` (std 0.01 each; one seed: no std)."""
    repeats = [{"seed": s, "metrics": {k: None if v is None else v + 0.01 * (s - 1) for k, v in metrics.items()}}
               for s in range(seeds)]
    std = {k: None if v is None or seeds == 1 else 0.01 for k, v in metrics.items()}
    return {"n_train": n, "metrics": metrics, "std": std, "repeats": repeats}


def test_label_sweep_section_draws_both_tasks_with_error_bars_and_a_row_per_method_and_count(atlas_path, tmp_path):
    from galexplore.report.page import label_sweep_section

    counts = (100, 300, 1000)
    redshift = {m: [_entry(n, {"sigma_mad": 0.05 - 0.01 * k - d, "outlier_fraction": 0.2 - 0.05 * k, "bias": 0.001},
                           3) for k, n in enumerate(counts)]
                for m, d in (("scratch", 0.0), ("finetune", 0.004), ("probe", 0.002))}
    morphology = {m: [_entry(n, {"accuracy": 0.7 + 0.05 * k + d, "roc_auc": None if k == 0 else 0.8 + d}, 3)
                      for k, n in enumerate(counts)]
                  for m, d in (("scratch", 0.0), ("finetune", 0.03), ("probe", 0.01))}
    factor = {"n": 100, "metric": 0.74, "n_needed": 158.1, "factor": 1.581, "reason": None}
    data = {"seeds": [0, 1, 2], "curves": {"redshift": redshift, "morphology": morphology},
            "label_efficiency": {"redshift": {"probe_vs_scratch_sigma_mad": [factor]},
                                 "morphology": {"finetune_vs_scratch_accuracy": [factor]}}}
    atlas = open_atlas(_sweep_atlas(atlas_path, tmp_path / "atlas", data))
    out = tmp_path / "report"
    out.mkdir()
    section = label_sweep_section(atlas, out)
    assert [p.name for p in section.figures] == ["label_sweep.png", "label_sweep_morphology.png"]
    for path in section.figures:
        assert path.stat().st_size > 1000
        with Image.open(path) as image:
            assert image.format == "PNG" and min(image.size) > 100
    captions = _captions(section.html)
    assert len(captions) == 2 and all("\n" not in c and c.endswith("bars: ±1 std over seeds.") for c in captions)
    assert captions[1].startswith("Morphology on the same held-out galaxies")
    assert section.title == "Labels and photo-z and morphology"
    redshift_table, morphology_table, factors = _tables(section.html)
    assert redshift_table[0] == ["method", "labels", "seeds", "sigma_mad", "outlier_fraction", "bias"]
    assert morphology_table[0] == ["method", "labels", "seeds", "accuracy", "roc_auc"]
    rows = {(r[0], r[1]) for r in redshift_table[1:]}
    assert len(redshift_table) == len(morphology_table) == 1 + 3 * len(counts)  # every method at every count
    assert rows == {(name, str(n)) for name in ("supervised from scratch", "MoCo fine-tuned",
                                                "linear probe (frozen MoCo)") for n in counts}
    assert {r[2] for r in redshift_table[1:]} == {"3"}
    assert redshift_table[1][3:] == ["0.05 ± 0.01", "0.2 ± 0.01", "0.001 ± 0.01"]  # scratch at 100 labels
    assert morphology_table[-1][3:] == ["0.81 ± 0.01", "0.81 ± 0.01"]  # the probe at 1000
    assert [r[4] for r in morphology_table[1:]].count("") == 3  # no AUC at 100 labels: an empty cell, no crash
    assert [(r[0], r[4]) for r in factors[1:]] == [("redshift", "1.581"), ("morphology", "1.581")]
    assert "mean over seeds" in section.html


def test_label_sweep_section_reads_the_earlier_photoz_only_layout(atlas_path, tmp_path):
    from galexplore.report.page import label_sweep_section

    curve = [{"n_train": n, "steps": 80, "metrics": {"sigma_mad": s, "outlier_fraction": 0.1, "bias": 0.0, "n": 90}}
             for n, s in ((100, 0.0412), (300, 0.0301))]
    factor = {"n": 100, "metric": 0.03, "n_needed": None, "factor": None, "reason": "never reaches it"}
    data = {"n_test": 90, "curves": {"scratch": curve, "probe": curve},
            "label_efficiency": {"probe_vs_scratch_sigma_mad": [factor]}}
    atlas = open_atlas(_sweep_atlas(atlas_path, tmp_path / "atlas", data))
    out = tmp_path / "report"
    out.mkdir()
    section = label_sweep_section(atlas, out)
    assert [p.name for p in section.figures] == ["label_sweep.png"] and section.title == "Labels and photo-z"
    with Image.open(out / "label_sweep.png") as image:
        assert image.format == "PNG" and min(image.size) > 100
    [caption] = _captions(section.html)
    assert "std" not in caption and "±" not in section.html and "mean over seeds" not in section.html
    sweep, factors = _tables(section.html)
    assert [r[3] for r in sweep[1:]] == ["0.0412", "0.0301"] * 2 and {r[2] for r in sweep[1:]} == {"1"}
    assert factors[1][0] == "redshift" and factors[1][-1] == "never reaches it"


def test_photoz_section_says_whether_labelled_predictions_are_out_of_fold(atlas_path, tmp_path, report):
    import shutil

    from galexplore.report.page import photoz_section

    _, page = report
    assert "labelled galaxies (in-sample)" in page  # the fixture's manifest records no scheme: an older atlas
    folder = tmp_path / "atlas"
    shutil.copytree(atlas_path, folder)
    writer = AtlasWriter(folder, name="report-test")
    writer.set_stage("probes", {**writer.manifest["stages"]["probes"],
                                "labelled_predictions": {"z_spec": "5-fold out-of-fold"}})
    writer.commit()
    out = tmp_path / "report"
    out.mkdir()
    section = photoz_section(open_atlas(folder), out)
    assert "z_phot is 5-fold out-of-fold" in section.html and "in-sample" not in section.html


def test_the_galaxy_map_tiles_the_map_with_the_survey_cutouts(survey_atlas, tmp_path, monkeypatch):
    """With a survey, the map drawn as galaxies: each of the 3 x 2 grid's cells holds the
    colour cutout of the galaxy at its centre, top row first (the largest umap_y)."""
    from galexplore.explorer.cutouts import CutoutSource
    from galexplore.report.page import galaxy_map_section
    from galexplore.report import sections
    from galexplore.report.sections import TILE_PIXELS

    monkeypatch.setattr(sections, "TILE_CELLS", 3)  # one cell per galaxy of the 3 x 2 grid
    atlas = open_atlas(survey_atlas[0], require=())
    page = write_report(atlas, tmp_path, sections=[galaxy_map_section]).read_text()
    assert "<h2>Galaxies on the map</h2>" in page and "in each of 3 x 2 cells" in page and "(6 cells hold one" in page
    with Image.open(tmp_path / "map_galaxies.png") as image:
        sheet = np.asarray(image.convert("RGB"))
    assert sheet.shape == (2 * TILE_PIXELS, 3 * TILE_PIXELS, 3)
    tiles = CutoutSource(atlas).rgb_arrays(range(6), TILE_PIXELS)
    for row in range(6):  # galaxy `row` sits at (row % 3, row // 3): the bottom row holds 0, 1, 2
        r, c = 1 - row // 3, row % 3
        np.testing.assert_array_equal(sheet[r * TILE_PIXELS:(r + 1) * TILE_PIXELS, c * TILE_PIXELS:(c + 1) * TILE_PIXELS],
                                      tiles[row])
