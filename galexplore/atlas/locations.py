"""Where atlases and runs live when no folder is given: one rule for `build`, `train`, `ablation`,
`serve`, the served app and the Python API.

Everything goes under one data folder: ``$GALEXPLORE_DATA`` when it is set, else ``data/`` in the
current folder (the checkout's own `data/` when run from its root, as the README does). In it:
``atlas/<name>`` for atlases (``atlas/demo`` when nothing names one), ``runs/<name>`` for training
runs and ``ablation/<name>`` for ablation studies, where ``<name>`` is the config's name.

>>> import os; os.environ["GALEXPLORE_DATA"] = "/surveys/galexplore"
>>> atlas_folder("sdss"), run_folder("sdss")
(PosixPath('/surveys/galexplore/atlas/sdss'), PosixPath('/surveys/galexplore/runs/sdss'))
>>> del os.environ["GALEXPLORE_DATA"]; atlas_folder()
PosixPath('data/atlas/demo')
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "GALEXPLORE_DATA"
DEFAULT_ATLAS_NAME = "demo"


def data_folder() -> Path:
    """``$GALEXPLORE_DATA``, else ``data`` in the current folder."""
    return Path(os.environ.get(DATA_ENV) or "data")


def atlas_folder(name: str = DEFAULT_ATLAS_NAME) -> Path:
    return data_folder() / "atlas" / name


def run_folder(name: str) -> Path:
    return data_folder() / "runs" / name


def ablation_folder(name: str) -> Path:
    return data_folder() / "ablation" / name
