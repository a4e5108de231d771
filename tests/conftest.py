"""Shared fixtures: the real survey sets in ../shared/data (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of small real survey sets; tests using it skip on a user's machine."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real survey sets not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def survey_atlas(tmp_path_factory) -> tuple[Path, Path]:
    """A 6-galaxy simulated survey and an atlas that records it, as a build does, with its
    galaxies on a 3 x 2 grid of the map (umap_x, umap_y): (atlas folder, survey file)."""
    import dataclasses

    import numpy as np

    from galexplore.atlas.files import AtlasWriter, file_fingerprint
    from galexplore.config import absolute_paths, load_config, to_toml
    from galexplore.simulate import simulate_survey
    from galexplore.survey import open_path

    from .synthetic import PIPELINES

    folder = tmp_path_factory.mktemp("cutouts")
    config = load_config(PIPELINES / "tiny.toml")
    config = dataclasses.replace(config, survey=dataclasses.replace(config.survey, path=str(folder / "t.h5")))
    path = simulate_survey(config, folder / "t.h5", n=6, workers=1)
    with open_path(path) as survey:
        catalog = survey.catalog.copy()
        provenance = {"config": to_toml(absolute_paths(config)),
                      "survey": {"path": str(path), "source": "simulated", "bands": list(survey.bands),
                                 "pixel_scale": survey.pixel_scale, "shape": list(survey.shape),
                                 "fingerprint": file_fingerprint(path)}}
    catalog["umap_x"] = (np.arange(6) % 3).astype(np.float32)
    catalog["umap_y"] = (np.arange(6) // 3).astype(np.float32)
    writer = AtlasWriter(folder / "atlas", "tiny", provenance)
    writer.write_catalog(catalog)
    return folder / "atlas", path


@pytest.fixture(scope="module")
def one_torch_thread():
    """torch on one thread for a module: float sums reproducible bit for bit, and a shared
    2-core machine left to the others."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `gpu` skip, with a reason, on a machine without a CUDA device."""
    gpu_tests = [item for item in items if "gpu" in item.keywords]
    if not gpu_tests:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in gpu_tests:
        item.add_marker(skip)
