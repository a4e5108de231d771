"""Benchmarks of galexplore against what a user would use instead (`make bench`, `python -m bench.suite`).

A package so that the suite's modules import each other (`python -m bench.suite`); the older
scripts here also still run on their own (`python bench/scale_check.py`).
"""
