"""Several people at once on one served explorer (bench/load_test.py, small): no errors, no cross-talk."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_browser import CHROMIUM, browser_atlas

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def test_concurrent_sessions_see_only_their_own_selection_and_query(tmp_path):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found")
    atlas = browser_atlas(tmp_path)
    out = tmp_path / "load.json"
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "load_test.py"), str(atlas),
                           "--sessions", "4", "--seconds", "40", "--out", str(out)],
                          capture_output=True, text=True, timeout=900)
    result = json.loads(out.read_text())
    assert done.returncode == 0, (result["errors"], result["crosstalk"], done.stderr[-2000:])
    assert result["errors"] == [] and result["crosstalk"] == []
    latencies = result["latencies"]
    assert latencies["find"]["count"] > 0 and latencies["colour"]["count"] > 0  # the sessions did things
    assert result["memory"]["growth_while_running_mb"] < 300
    assert 0 < result["cpu"]["server_cpu_s"] <= result["cpu"]["machine_cpu_s"]  # who used the cores
