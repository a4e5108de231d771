"""Self-supervised training: data loading, the MoCo v2 loop, checkpoints and the run log."""
