"""Downstream science on an atlas's representations: the linear probes (`probes`), the label sweep
and label efficiency (`label_sweep`, `finetune`), the ablation, the baselines (raw pixels, the
untrained network), trust validation, invariance and the atlas quality checks."""
