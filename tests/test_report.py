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

from galexplore.atlas import AtlasWriter, open_atlas
from galexplore.cli import main
from galexplore.report import REPORT, SECTIONS, Section, SectionSkipped, figure, write_report

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

    from galexplore.atlas import AtlasWriter
    from galexplore.report import ablation_section, label_sweep_section

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
