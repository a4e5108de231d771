"""Scoring representations: kNN probes, photo-z metrics and the baselines they are compared with."""
