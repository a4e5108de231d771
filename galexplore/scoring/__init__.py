"""Scoring representations: photo-z and classification figures, kNN probes, the report card and
the health diagnostics; torch-free, so training, the build and the app all use it."""
