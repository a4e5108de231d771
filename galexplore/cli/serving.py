"""`galexplore serve`: the explorer served by `panel serve` on the app folder inside the package."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from galexplore.atlas.locations import atlas_folder


#: how long a session whose page was served may wait for its browser to connect (ms). Bokeh's 15 s
#: default discards the sessions of pages that a busy browser or server opens slowly; the websocket
#: then makes a new session that the page was not rendered from (and whose styles come from a CDN).
UNUSED_SESSION_LIFETIME_MS = 120_000


def serve_command(atlas: Path, port: int = 5006, address: str = "127.0.0.1", origins: list[str] | None = None,
                  show: bool = False, overlays: list[str] | None = None) -> list[str]:
    """The `panel serve app/` command line that serves `atlas` (for `galexplore serve` and the tests)."""
    from galexplore.errors import GalexploreError

    app = Path(__file__).resolve().parents[1] / "explorer" / "app"  # the served app's folder, in the package
    if not (atlas / "manifest.json").exists():
        raise GalexploreError(f"{atlas}: not an atlas (no manifest.json); build one with `galexplore build CONFIG --out {atlas}`")
    command = [sys.executable, "-m", "panel", "serve", str(app), "--port", str(port), "--address", address,
               "--num-procs", "1", "--setup", str(app / "setup.py"),
               "--unused-session-lifetime", str(UNUSED_SESSION_LIFETIME_MS)]
    for origin in origins or [f"{host}:{port}" for host in ("localhost", "127.0.0.1")]:
        command += ["--allow-websocket-origin", origin]
    if show:
        command.append("--show")
    from galexplore.explorer.overlay import split_overlay

    extra = []
    for text in overlays or []:
        file, name = split_overlay(text)
        if not file.is_file():
            raise GalexploreError(f"--overlay {text}: no such file {file}; expected FILE[:NAME], a CSV, FITS, "
                                  f"VOTable or Parquet catalogue")
        extra += ["--overlay", f"{file.resolve()}:{name}" if name else str(file.resolve())]
    return command + ["--args", "--atlas", str(atlas), *extra]


def do_serve(args: argparse.Namespace) -> int:
    import os

    from galexplore.errors import GalexploreError

    if not 1 <= args.port <= 65535:
        raise GalexploreError(f"--port {args.port}: expected a TCP port number from 1 to 65535")
    atlas = (args.atlas or atlas_folder()).resolve()
    command = serve_command(atlas, args.port, args.address, args.allow_websocket_origin, args.show, args.overlay)
    print(f"serving {atlas} at http://{args.address}:{args.port}/app", flush=True)
    os.execv(sys.executable, command)
    return 0  # not reached
