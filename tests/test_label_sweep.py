"""The label-efficiency sweep: tasks x methods x seeds on the tiny survey, its summary and its JSON layouts."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from galexplore.evaluate.finetune import SupervisedConfig, label_efficiency
from galexplore.evaluate.label_sweep import label_sweep, read_label_sweep, summarise_repeats
from galexplore.models import build_encoder
from galexplore.survey.normalize import Normalization
from galexplore.evaluate.probes import evaluate_probes
from tests.synthetic import tiny_config, tiny_survey

#: two optimiser steps a run: the sweep's bookkeeping, not the networks' quality, is under test
TINY = SupervisedConfig(epochs=1, min_steps=2, batch_size=16, lr=3e-3)
COUNTS = [16, 32, 1000]  # 1000 exceeds the 45 train rows: skipped

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def sweep():
    survey, config = tiny_survey(), tiny_config()
    norm = Normalization.fit(survey, seed=0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        backbone = build_encoder(config.model, in_channels=5)
    embeddings = np.random.default_rng(0).normal(size=(len(survey), 4)).astype(np.float32)
    embeddings[:, 0] += 40 * survey.catalog["z_spec"].to_numpy()  # the probe can read z from it
    calls = []
    result = label_sweep(survey, embeddings, COUNTS, config=config, normalization=norm, sup=TINY, backbone=backbone,
                         seeds=(0, 1), progress=lambda *a: calls.append(a[:3]))
    return result, survey, embeddings, calls


def test_every_task_method_and_count_has_the_mean_std_and_repeats_of_each_seed(sweep):
    result, _, _, calls = sweep
    assert set(result["curves"]) == {"redshift", "morphology"}
    assert result["n_test"] == {"redshift": 19, "morphology": 19}
    assert len(calls) == 2 * 3 * 2 and calls[0] == ("redshift", "scratch", 0)
    for task, metrics in (("redshift", {"sigma_mad", "outlier_fraction", "bias"}), ("morphology", {"accuracy", "roc_auc"})):
        assert list(result["curves"][task]) == ["scratch", "finetune", "probe"]
        for method, curve in result["curves"][task].items():
            assert [e["n_train"] for e in curve] == [16, 32]
            for entry in curve:
                assert [r["seed"] for r in entry["repeats"]] == [0, 1]
                assert set(entry["std"]) == metrics and entry["metrics"]["n"] == 19
                for name in metrics:
                    values = np.array([r["metrics"][name] for r in entry["repeats"]])
                    assert entry["metrics"][name] == pytest.approx(values.mean(), rel=1e-12)
                    assert entry["std"][name] == pytest.approx(values.std(ddof=1), rel=1e-9, abs=1e-15)
            if method != "probe":
                assert [e["steps"] for e in curve] == [2, 2]
    json.dumps(result, allow_nan=False)  # JSON-able, strictly


def test_seeds_vary_the_runs_and_seed_zero_is_the_one_seed_sweep(sweep):
    result, survey, embeddings, _ = sweep
    scratch = result["curves"]["redshift"]["scratch"][0]["repeats"]
    assert scratch[0]["metrics"]["sigma_mad"] != scratch[1]["metrics"]["sigma_mad"]  # another training seed
    # the probe's seed 0 is evaluate_probes' sweep: same test rows, same subsets
    one_seed = evaluate_probes(embeddings, survey.catalog, seed=0, label_counts=COUNTS)["z_spec"]["sweep"]
    assert [e["repeats"][0]["metrics"] for e in result["curves"]["redshift"]["probe"]] == [e["metrics"] for e in one_seed]
    probe = result["curves"]["redshift"]["probe"][0]["repeats"]
    assert probe[0]["metrics"] != probe[1]["metrics"]  # seed 1: another draw of 16 labels


def test_label_efficiency_is_read_on_the_mean_curves_with_each_metrics_direction(sweep):
    result, _, _, _ = sweep
    factors = result["label_efficiency"]
    assert set(factors["redshift"]) == {f"{m}_vs_scratch_{k}" for m in ("probe", "finetune")
                                        for k in ("sigma_mad", "outlier_fraction")}
    assert {"probe_vs_scratch_accuracy", "finetune_vs_scratch_accuracy"} <= set(factors["morphology"])
    curves = result["curves"]["morphology"]
    expected = label_efficiency([(e["n_train"], e["metrics"]["accuracy"]) for e in curves["probe"]],
                                [(e["n_train"], e["metrics"]["accuracy"]) for e in curves["scratch"]],
                                lower_is_better=False)
    assert factors["morphology"]["probe_vs_scratch_accuracy"] == expected


def test_bad_arguments_are_rejected_before_any_training():
    survey, config = tiny_survey(), tiny_config()
    x = np.zeros((len(survey), 2), np.float32)
    common = dict(config=config, normalization=None, sup=TINY)
    with pytest.raises(ValueError, match="unknown task or method"):
        label_sweep(survey, x, [16], tasks=["colour"], **common)
    with pytest.raises(ValueError, match="needs the MoCo backbone"):
        label_sweep(survey, x, [16], methods=["finetune"], **common)
    with pytest.raises(ValueError, match="rows"):
        label_sweep(survey, x[:5], [16], methods=["probe"], **common)


def test_summary_of_one_seed_has_no_std_and_skips_missing_values():
    mean, std = summarise_repeats([{"sigma_mad": 0.03, "roc_auc": None, "n": 7}])
    assert mean == {"sigma_mad": 0.03, "roc_auc": None, "n": 7} and std == {"sigma_mad": None, "roc_auc": None}
    with pytest.raises(ValueError, match="no repeats"):
        summarise_repeats([])


def test_reader_accepts_the_new_layout_and_the_earlier_photoz_only_one():
    entry = [{"n_train": 10, "metrics": {"sigma_mad": 0.1}}]
    old = {"curves": {"scratch": entry, "probe": entry}, "label_efficiency": {"probe_vs_scratch_sigma_mad": []}}
    assert read_label_sweep(old) == ({"redshift": {"scratch": entry, "probe": entry}},
                                     {"redshift": {"probe_vs_scratch_sigma_mad": []}})
    new = {"curves": {"redshift": {"probe": entry}, "morphology": {"probe": entry}}, "label_efficiency": {}}
    assert read_label_sweep(new) == (new["curves"], {})
    with pytest.raises(ValueError, match="expected an object"):
        read_label_sweep({"curves": [entry]})
