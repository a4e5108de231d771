"""Supervised baseline and fine-tuning: label-efficiency arithmetic, reproducibility, the starting weights, ranges."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from galexplore.evaluate.finetune import (
    SupervisedConfig,
    label_efficiency,
    predict_supervised,
    supervised_sweep,
    train_supervised,
)
from galexplore.models import build_encoder
from galexplore.survey.normalize import Normalization
from galexplore.evaluate.probes import Z_MAX, evaluate_probes
from tests.synthetic import tiny_config, tiny_survey

#: a handful of steps: enough to see the loss fall on 64 blobs, seconds on one CPU thread
FEW = SupervisedConfig(epochs=3, min_steps=0, batch_size=16, lr=3e-3, seed=0)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny():
    survey = tiny_survey()
    return survey, tiny_config(), Normalization.fit(survey, seed=0)


def _train(tiny, task="redshift", column="z_spec", sup=FEW, init=None, losses=None):
    survey, config, norm = tiny
    rows = np.arange(len(survey))
    return train_supervised(survey, rows, survey.catalog[column].to_numpy(), task, config=config,
                            normalization=norm, init_backbone=init, sup=sup, losses=losses)


def _params(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.named_parameters()}


# --- label efficiency: closed forms on hand-made curves ---------------------------------------

def test_label_efficiency_interpolates_in_log_n():
    # sigma 0.05 at 100 and 0.03 at 1000: 0.04 is halfway in log n, at sqrt(100 * 1000)
    [entry] = label_efficiency([(100, 0.04)], [(100, 0.05), (1000, 0.03)])
    assert entry["n_needed"] == pytest.approx(math.sqrt(1e5), abs=0.05)
    assert entry["factor"] == pytest.approx(math.sqrt(10), abs=1e-4)
    assert entry["reason"] is None


def test_label_efficiency_reaching_a_point_exactly_and_higher_is_better():
    [exact] = label_efficiency([(300, 0.03)], [(100, 0.05), (1000, 0.03)])
    assert exact["n_needed"] == pytest.approx(1000.0) and exact["factor"] == pytest.approx(1000 / 300, abs=1e-4)
    # accuracy 0.7 at 100, 0.9 at 1000 (higher is better): 0.8 needs sqrt(1e5) labels
    [acc] = label_efficiency([(100, 0.8)], [(100, 0.7), (1000, 0.9)], lower_is_better=False)
    assert acc["factor"] == pytest.approx(math.sqrt(10), abs=1e-4)


def test_label_efficiency_uses_the_monotone_envelope():
    # the worse point at 300 counts as the best so far (0.05), so 0.04 lies between 300 and 1000
    [entry] = label_efficiency([(100, 0.04)], [(100, 0.05), (300, 0.06), (1000, 0.03)])
    assert entry["n_needed"] == pytest.approx(math.sqrt(300 * 1000), abs=0.05)


def test_label_efficiency_none_when_unreachable_or_already_reached():
    never, already, missing = label_efficiency([(100, 0.02), (100, 0.06), (100, None)],
                                               [(100, 0.05), (1000, 0.03)])
    assert never["n_needed"] is None and never["factor"] is None and "never reaches" in never["reason"]
    assert already["factor"] is None and "smallest n=100" in already["reason"]
    assert missing["factor"] is None and missing["reason"]


def test_label_efficiency_rejects_an_empty_curve():
    with pytest.raises(ValueError, match="empty"):
        label_efficiency([(100, 0.04)], [])


# --- training on the tiny survey ----------------------------------------------------------------

@pytest.fixture(scope="module")
def redshift_run(tiny):
    losses: list[float] = []
    model = _train(tiny, losses=losses)
    return model, losses


def test_train_supervised_is_reproducible_and_its_loss_falls(tiny, redshift_run):
    model, losses = redshift_run
    assert len(losses) == 3 * (64 // 16)
    # starts near the uniform pdf's cross-entropy log(180) = 5.19 and falls
    assert losses[0] == pytest.approx(math.log(180), abs=1.0)
    assert np.mean(losses[-3:]) < np.mean(losses[:3]) - 0.5
    again = _train(tiny)
    for (name, a), b in zip(model.state_dict().items(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    other = _train(tiny, sup=dataclasses.replace(FEW, seed=1))
    assert not torch.equal(model.head.weight, other.head.weight)  # the seed matters


def test_finetuning_starts_from_a_copy_of_the_given_backbone(tiny):
    _, config, _ = tiny
    torch.manual_seed(123)
    init = build_encoder(config.model, in_channels=5)
    before = {k: v.clone() for k, v in init.state_dict().items()}
    # backbone learning rate 0: its parameters stay exactly those it started from
    frozen = _train(tiny, sup=dataclasses.replace(FEW, backbone_lr_scale=0.0, epochs=1), init=init)
    start = _params(frozen.backbone)
    assert all(torch.equal(start[k], v) for k, v in _params(init).items())
    scratch = _train(tiny, sup=dataclasses.replace(FEW, epochs=1))
    assert not torch.equal(scratch.backbone.conv1.weight, init.conv1.weight)  # from scratch: other weights
    # a real fine-tune moves the copy's weights and leaves the original (parameters and BN buffers) alone
    tuned = _train(tiny, sup=dataclasses.replace(FEW, epochs=1), init=init)
    assert tuned.backbone is not init
    assert not torch.equal(tuned.backbone.conv1.weight, init.conv1.weight)
    assert all(torch.equal(before[k], v) for k, v in init.state_dict().items())


def test_predictions_are_finite_and_in_range(tiny, redshift_run):
    survey, config, norm = tiny
    rows = np.arange(0, 64, 3)
    z = predict_supervised(redshift_run[0], survey, rows, "redshift", norm, config.augment.crop_size)
    assert z.shape == (len(rows),) and np.isfinite(z).all()
    assert z.min() >= 0.0 and z.max() <= Z_MAX
    morph = _train(tiny, task="morphology", column="p_features", sup=dataclasses.replace(FEW, epochs=1))
    p = predict_supervised(morph, survey, rows, "morphology", norm, config.augment.crop_size, batch_size=8)
    assert p.shape == (len(rows),) and np.isfinite(p).all()
    assert p.min() >= 0.0 and p.max() <= 1.0
    with pytest.raises(ValueError, match="trained for 'morphology'"):
        predict_supervised(morph, survey, rows, "redshift", norm, config.augment.crop_size)


def test_sweep_scores_the_probes_test_rows_with_their_label_counts(tiny):
    survey, config, norm = tiny
    counts = [16, 32, 1000]  # 1000 exceeds the 45 train rows: skipped, as the probes skip it
    sweep = supervised_sweep(survey, survey.catalog, "redshift", counts, config=config, normalization=norm,
                             sup=dataclasses.replace(FEW, epochs=1, min_steps=1))
    probes = evaluate_probes(np.random.default_rng(0).normal(size=(64, 4)), survey.catalog,
                             label_counts=counts)["z_spec"]
    assert [e["n_train"] for e in sweep] == [e["n_train"] for e in probes["sweep"]] == [16, 32]
    assert all(e["metrics"]["n"] == probes["n_test"] == 19 for e in sweep)
