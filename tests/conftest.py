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
