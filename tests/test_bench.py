"""The benchmark suite (bench/): its outputs, its per-image reference pipeline, the GPU script's dry run."""

from __future__ import annotations

import dataclasses
import doctest
import json
import math
from pathlib import Path

import numpy as np
import pytest

from bench import augment_reference, inputs, measure, results, search_rows, suite
from bench.augment_reference import ReferenceAugment
from bench.measure import Goal, Row
from galexplore.config import SDSS_EXTINCTION, AugmentConfig

ROW_KEYS = {"group", "name", "unit", "ours", "ours_label", "anchor", "anchor_label", "ratio", "goal", "met",
            "n", "d", "notes", "machine"}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory, one_torch_thread):
    """The suite in --quick mode on two groups, into a temporary folder: (document, status, out folder)."""
    root = tmp_path_factory.mktemp("bench")
    ctx = suite.Context(suite.QUICK, root / "work", root / "demo", quick=True)
    doc, status = suite.run(ctx, ["query", "augment"], root / "out", log=lambda line: None)
    return doc, status, root / "out"


def test_quick_run_writes_json_and_markdown(quick_run):
    doc, status, out = quick_run
    assert status == 0
    stem = results.result_stem(doc["date"], doc["machine"]["host"])
    saved = json.loads((out / f"{stem}.json").read_text())
    assert saved["schema"] == results.SCHEMA and saved["quick"] is True
    assert {"cpu", "cores", "torch", "gpu"} <= set(saved["machine"])
    assert set(saved["groups"]) == {"query", "augment"} and not any(g["error"] for g in saved["groups"].values())
    # 2 sizes x 2 batch sizes x (FAISS, numpy), and one augmentation row
    assert [row["group"] for row in saved["rows"]] == ["query"] * 8 + ["augment"]
    for row in saved["rows"]:
        assert set(row) == ROW_KEYS
        for key in ("ours", "anchor", "ratio"):
            assert math.isfinite(row[key]) and row[key] > 0, (row["name"], key)
        assert row["ratio"] == pytest.approx(row["ours"] / row["anchor"], rel=1e-12)
        assert row["n"] > 0
    goals = [row for row in saved["rows"] if row["goal"]]
    assert {row["goal"] for row in goals} == {"<= 1.0x", "<= 0.2x"}
    assert all(isinstance(row["met"], bool) for row in goals)
    # the exact index finds what FAISS's flat search finds
    assert all(row["notes"]["recall@k"] == 1.0 for row in saved["rows"] if "recall@k" in row["notes"])
    table = (out / f"{stem}.md").read_text()
    assert (out / "latest.md").read_text() == table
    lines = [line for line in table.splitlines() if line.startswith("| ")]
    assert lines[0] == "| " + " | ".join(results.COLUMNS) + " |"
    assert sum(line.startswith("| similarity query") for line in lines) == 8
    assert sum(line.startswith("| augmentation") for line in lines) == 1


def test_goal_and_ratio():
    row = Row("g", "r", "s", ours=2e-3, ours_label="ours", anchor=4e-3, anchor_label="them", goal=Goal("ratio", "<=", 1.0))
    assert row.ratio == pytest.approx(0.5) and row.met is True
    assert dataclasses.replace(row, goal=Goal("ours", "<=", 1e-3)).met is False
    assert dataclasses.replace(row, goal=Goal("ratio", ">=", 0.9)).met is False
    assert dataclasses.replace(row, anchor=None).ratio is None
    assert dataclasses.replace(row, anchor=None).met is None  # no anchor: a ratio goal cannot be judged
    with pytest.raises(ValueError, match="goal on"):
        Goal("time", "<=", 1.0)


def test_settings_change_a_size_and_reject_unknown_fields():
    assert suite.with_settings(suite.QUICK, ["umap_n=500"]).umap_n == 500
    with pytest.raises(SystemExit, match="umap_size"):
        suite.with_settings(suite.QUICK, ["umap_size=500"])


def test_faiss_graph_anchor_is_extrapolated_past_its_budget():
    x = np.random.default_rng(0).standard_normal((3000, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    seconds, rows = search_rows.faiss_exact_graph_seconds(x, k=10, budget_s=1e-9, calibrate=200)
    assert rows == 200 and seconds > 0
    seconds, rows = search_rows.faiss_exact_graph_seconds(x, k=10, budget_s=1e9, calibrate=200)
    assert rows == 3000


def _augment_config(**changes) -> AugmentConfig:
    return dataclasses.replace(AugmentConfig(), jitter=0, **changes)


def test_reference_reddening_is_the_closed_form():
    image = np.random.default_rng(0).uniform(1, 2, (5, 12, 12)).astype(np.float32)
    cfg = _augment_config(order=("redden",), crop_size=8, ebv_range=(0.2, 0.2))
    out = ReferenceAugment.from_config(cfg, [1.0] * 5)(image, np.random.default_rng(1))
    factor = 10.0 ** (-0.4 * np.asarray(SDSS_EXTINCTION) * 0.2)
    np.testing.assert_allclose(out, image[:, 2:10, 2:10] * factor[:, None, None].astype(np.float32), rtol=1e-6)


def test_reference_rotation_keeps_a_round_centred_source():
    yy, xx = np.mgrid[:33, :33] - 16.0
    blob = np.exp(-(xx**2 + yy**2) / (2 * 4.0**2)).astype(np.float32)
    image = np.stack([blob] * 5)
    cfg = _augment_config(order=("rotate", "scale", "jitter_crop"), crop_size=17, scale_range=(1.0, 1.0))
    reference = ReferenceAugment.from_config(cfg, [1.0] * 5)
    for seed in range(4):
        out = reference(image, np.random.default_rng(seed))
        assert out.shape == (5, 17, 17)
        # bilinear resampling between pixels lowers a 4-pixel Gaussian's peak by about 1%
        np.testing.assert_allclose(out, image[:, 8:25, 8:25], atol=0.02)


def test_reference_blur_conserves_flux_and_noise_has_its_sigma():
    yy, xx = np.mgrid[:32, :32] - 15.5
    image = np.stack([np.exp(-(xx**2 + yy**2) / 2.0)] * 5).astype(np.float32)
    blur = ReferenceAugment.from_config(_augment_config(order=("psf_blur",), crop_size=32, psf_sigma=(1.5, 1.5)), [1.0] * 5)
    blurred = blur(image, np.random.default_rng(0))
    np.testing.assert_allclose(blurred.sum(axis=(1, 2)), image.sum(axis=(1, 2)), rtol=1e-5)
    assert blurred.max() < 0.5 * image.max()
    noise = ReferenceAugment.from_config(_augment_config(order=("noise",), crop_size=64, noise_scale=(2.0, 2.0)), [1.0, 3.0, 1, 1, 1])
    out = noise(np.zeros((5, 64, 64), np.float32), np.random.default_rng(0))
    assert out[0].std() == pytest.approx(2.0, rel=0.05) and out[1].std() == pytest.approx(6.0, rel=0.05)


def test_reference_takes_the_sdss_list_and_refuses_physics_before_geometry():
    cfg = AugmentConfig()  # the sdss list: rotate, scale, jitter_crop, redden, psf_blur, noise
    batch = ReferenceAugment.from_config(cfg, [1.0] * 5).batch(inputs.cutouts(3, 107), np.random.default_rng(0))
    assert batch.shape == (3, 5, 64, 64) and batch.dtype == np.float32 and np.isfinite(batch).all()
    with pytest.raises(ValueError, match="geometry must come before physics"):
        ReferenceAugment.from_config(dataclasses.replace(cfg, order=("noise", "rotate")), [1.0] * 5)


@pytest.mark.parametrize("module", [augment_reference, inputs, measure, results, search_rows, suite])
def test_docstring_examples(module):
    failed, _ = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert failed == 0


@pytest.fixture
def gpu_script():
    from bench import gpu

    return gpu


def test_gpu_script_says_it_needs_cuda(gpu_script, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is visible here")
    assert gpu_script.main([]) == 2
    assert "no CUDA device" in capsys.readouterr().err


def test_gpu_script_dry_run_on_the_cpu(gpu_script, tmp_path, one_torch_thread):
    out = tmp_path / "gpu.json"
    assert gpu_script.main(["--dry-run", "--out", str(out), "--work", str(tmp_path)]) == 0
    result = json.loads(out.read_text())
    assert result["dry_run"] is True and result["device"] == "cpu"
    training = result["training_images_per_s"]
    for figure in ("resident", "loader", "per_image_cpu"):
        assert training["eager"][figure] > 0
    assert training["compiled"]["loader"] > 0
    assert 0 < training["eager"]["augment_share_of_step"] < 1
    assert result["flops_per_image_training"] > 1e8  # a ResNet-18 step on 16x16 crops: about 1e9
    assert result["mfu"]["model_flop_utilisation"] > 0
    assert set(result["goals"]) == {"loader_vs_resident", "loader_vs_per_image_cpu"}
    assert result["embedding_images_per_s"]["represent"] > 0 and result["neighbour_graph"]["torch_exact_s"] > 0


@pytest.mark.slow
def test_quick_run_of_every_group(tmp_path):
    """Every group at --quick sizes, the scale atlas, the app and the tiny build included (minutes)."""
    ctx = suite.Context(suite.QUICK, tmp_path / "work", tmp_path / "demo", quick=True)
    doc, status = suite.run(ctx, list(suite.BUDGETS), tmp_path / "out", log=lambda line: None)
    assert status == 0, {name: g["error"] for name, g in doc["groups"].items() if g["error"]}
    assert {row["group"] for row in doc["rows"]} == set(suite.BUDGETS)


def test_the_readme_shows_the_newest_full_run():
    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text(encoding="utf-8")
    shown = readme[readme.index(results.README_BEGIN) + len(results.README_BEGIN): readme.index(results.README_END)]
    runs = [json.loads(p.read_text()) for p in (root / "bench" / "results").glob("*.json")]
    full = [doc for doc in runs if suite.is_full_run(doc)]
    newest = max(full, key=lambda doc: doc["started"])
    assert shown.strip() == results.readme_table(newest).strip()
