"""The augmentation ablation: its variants, and a shortened run of two of them on tiny data."""

from __future__ import annotations

import json

import numpy as np
import pytest

from galexplore.evaluate.ablation import format_table, run_ablation, variants
from galexplore.errors import GalexploreError

from .synthetic import tiny_config, tiny_survey


def test_variants_leave_each_augmentation_out_and_keep_the_geometric_baseline():
    found = variants(("rotate", "jitter_crop", "redden", "noise"))
    assert found["all"] == ("rotate", "jitter_crop", "redden", "noise")
    assert found["no redden"] == ("rotate", "jitter_crop", "noise")
    assert found["rotate + jitter_crop only"] == ("rotate", "jitter_crop")
    assert len(found) == 6


def test_two_variants_train_embed_and_probe_into_their_own_runs(tmp_path):
    results = run_ablation(tiny_config(), tmp_path, only=["all", "no rotate"], max_steps=2, survey=tiny_survey())
    assert list(results["variants"]) == ["all", "no rotate"]
    runs = {info["run"] for info in results["variants"].values()}
    assert len(runs) == 2
    for info in results["variants"].values():
        metrics = info["probes"]["z_spec"]["metrics"]
        assert np.isfinite(metrics["sigma_mad"]) and metrics["n"] > 0
    assert results["variants"]["no rotate"]["order"] == [n for n in tiny_config().augment.order if n != "rotate"]
    assert json.loads((tmp_path / "ablation.json").read_text())["variants"].keys() == results["variants"].keys()
    table = format_table(results)
    assert "no rotate" in table and "sigma_MAD" in table


def test_an_unknown_variant_is_named(tmp_path):
    with pytest.raises(GalexploreError, match="unknown ablation variant 'no sharpen'"):
        run_ablation(tiny_config(), tmp_path, only=["no sharpen"], survey=tiny_survey())
