"""galexplore as a user installs it: a wheel built from this checkout, installed into a fresh virtual
environment outside it, builds an atlas and serves the explorer from another folder.

The fresh environment gets only the wheel; the dependencies (torch, Panel, ...) come from the
project's `.venv` through a path file placed after the environment's own site-packages, so the
galexplore that runs is the installed wheel's, and a file missing from the wheel (the served app,
say) fails here as it would for a user.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(command: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{command}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def test_an_installed_wheel_builds_and_serves_from_another_folder(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet", "-w", str(wheels),
          str(ROOT)], tmp_path, dict(os.environ))
    (wheel,) = wheels.glob("galexplore-*.whl")
    assert "galexplore/explorer/app/main.py" in zipfile.ZipFile(wheel).namelist()

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], tmp_path, dict(os.environ))
    python = venv / "bin" / "python"
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     tmp_path, dict(os.environ)).strip())
    (site / "zz_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # after the wheel's own
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    _run([str(python), "-m", "pip", "install", "--no-deps", "--quiet", str(wheel)], tmp_path, env)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = _run([str(python), "-c", "import galexplore.explorer.server as s; print(s.__file__)"], elsewhere, env)
    assert Path(where.strip()).is_relative_to(site), where  # the wheel's copy, not the checkout's

    galexplore = str(venv / "bin" / "galexplore")
    _run([galexplore, "build", str(ROOT / "pipelines" / "tiny.toml"), "--out", "X"], elsewhere, env)
    assert json.loads((elsewhere / "X" / "manifest.json").read_text())["stages"]

    port = _free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        server = subprocess.Popen([galexplore, "serve", "X", "--port", str(port)], cwd=elsewhere, env=env,
                                  stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        page = None
        while "galexplore: tiny warm in" not in log.read_text():  # the packaged setup.py loaded the atlas
            try:
                page = page or urllib.request.urlopen(f"http://127.0.0.1:{port}/app", timeout=60).read().decode()
            except OSError:
                pass
            assert time.monotonic() < deadline and server.poll() is None, log.read_text()[-3000:]
            time.sleep(0.5)
        page = page or urllib.request.urlopen(f"http://127.0.0.1:{port}/app", timeout=60).read().decode()
    finally:
        server.terminate()
        server.wait(timeout=60)
    assert "<title>galexplore</title>" in page  # the packaged main.py made this session's page
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]
