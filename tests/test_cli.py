"""The command line: simulate -> inspect --json -> montage, fast help, one-line user errors."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from galexplore.cli import main

PIPELINES = Path(__file__).resolve().parents[1] / "pipelines"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "galexplore.cli", *args], capture_output=True, text=True, timeout=300
    )


def test_help_is_fast_and_imports_nothing_heavy() -> None:
    code = (
        "import sys, contextlib, io\n"
        "from galexplore.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try: main(['--help'])\n"
        "    except SystemExit: pass\n"
        "print(sorted(m for m in ('numpy', 'torch', 'galsim', 'h5py', 'pandas', 'astropy') if m in sys.modules))"
    )
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - start
    assert out.stdout.strip() == "[]"
    assert seconds < 1.0


def test_simulate_inspect_montage_round_trip(tmp_path: Path) -> None:
    survey = tmp_path / "tiny.h5"
    sim = run_cli("simulate", str(PIPELINES / "tiny.toml"), "--out", str(survey), "--n", "24")
    assert sim.returncode == 0, sim.stderr
    assert "24 galaxies" in sim.stdout
    assert (tmp_path / "tiny.config.toml").exists()

    inspect = run_cli("inspect", str(survey), "--json")
    assert inspect.returncode == 0, inspect.stderr
    summary = json.loads(inspect.stdout)
    assert summary["n_objects"] == 24
    assert summary["bands"] == ["u", "g", "r", "i", "z"]
    assert summary["cutout_shape"] == [5, 32, 32]
    for column in ("object_id", "ra", "dec", "z", "type", "z_spec", "label_availability"):
        assert column in summary["columns"]
    availability = summary["labels"]["label_availability"]
    assert sum(availability.values()) == 24
    assert summary["labels"]["z_spec"]["count"] == availability.get("spec-z", 0) + availability.get(
        "spec-z+morphology", 0
    )
    with h5py.File(survey) as f:
        assert summary["columns"]["z"]["max"] == pytest.approx(float(np.max(f["z"][()])), abs=1e-6)

    png = tmp_path / "montage.png"
    montage = run_cli("montage", str(survey), "--out", str(png), "--n", "8", "--columns", "4")
    assert montage.returncode == 0, montage.stderr
    with Image.open(png) as image:
        width, height = image.size
    assert width > height > 0  # 4 tiles across, 2 rows


def test_inspect_prints_a_readable_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    survey = tmp_path / "s.h5"
    rng = np.random.default_rng(1)
    with h5py.File(survey, "w") as f:
        f["images"] = rng.normal(size=(6, 2, 16, 16)).astype(np.float32)
        f["ra"] = np.linspace(10, 11, 6)
        f["dec"] = np.linspace(-1, 1, 6)
        f["z_spec"] = np.array([0.1, np.nan, 0.2, np.nan, np.nan, 0.05])
        f.attrs["bands"] = ["g", "r"]
    assert main(["inspect", str(survey)]) == 0
    text = capsys.readouterr().out
    assert "objects      6" in text
    assert "2 x 16 x 16" in text
    assert "z_spec" in text and "3 (spectroscopic redshift)" in text


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["inspect", "does/not/exist.h5"], "no such file"),
        (["inspect", "{cfg}"], "unknown survey format '.toml'"),
        (["simulate", "{bad}", "--out", "{tmp}/x.h5"], "simulate.nn"),
        (["simulate", "{cfg}", "--out", "{tmp}/x.h5", "--n", "0"], "--n 0"),
        (["montage", "{tmp}/missing.h5", "--out", "{tmp}/m.png"], "missing.h5"),
        (["evaluate", "{tmp}/no-run"], "checkpoint not found"),
        (["train", "{bad}"], "simulate.nn"),
    ],
)
def test_user_errors_exit_nonzero_with_one_line_and_no_traceback(
    tmp_path: Path, args: list[str], expected: str
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[simulate]\nnn = 10\n")
    fill = {"cfg": str(PIPELINES / "tiny.toml"), "bad": str(bad), "tmp": str(tmp_path)}
    result = run_cli(*[a.format(**fill) for a in args])
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.h5").exists()
