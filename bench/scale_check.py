"""The scale check: `galexplore build` from 1,000,000 synthetic embeddings (D=128) and a catalog.

    .venv/bin/python bench/scale_check.py [--n 1000000] [--work data/scale]

Writes seeded clustered embeddings and a catalog (3% with spec-z, 1% with morphology votes, as a
survey's labels are), then runs the build in a fresh process under /usr/bin/time and prints each
stage's time and the process's peak memory. Goal (issue 4): at most 20 minutes and 8 GB on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
CONFIG = """name = "scale"
seed = 0
[embed]
pca_dim = {pca_dim}
"""


def make_inputs(n: int, dim: int, folder: Path, seed: int = 0) -> tuple[Path, Path]:
    """Clustered unit vectors: 2,000 clusters of uneven size and width, plus 0.5% uniform outliers."""
    folder.mkdir(parents=True, exist_ok=True)
    emb, cat = folder / f"embeddings-{n}.npy", folder / f"catalog-{n}.parquet"
    if emb.exists() and cat.exists():
        return emb, cat
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((2000, dim)).astype(np.float32)
    weights = rng.pareto(1.5, 2000) + 1
    which = rng.choice(2000, n, p=weights / weights.sum())
    width = rng.uniform(0.3, 0.9, 2000).astype(np.float32)
    x = np.lib.format.open_memmap(emb, mode="w+", dtype=np.float32, shape=(n, dim))
    for start in range(0, n, 100_000):
        stop = min(start + 100_000, n)
        block = centres[which[start:stop]] + width[which[start:stop], None] * rng.standard_normal((stop - start, dim)).astype(np.float32)
        x[start:stop] = block / np.linalg.norm(block, axis=1, keepdims=True)
    outliers = rng.choice(n, n // 200, replace=False)
    x[outliers] = rng.standard_normal((len(outliers), dim)).astype(np.float32)
    x[outliers] /= np.linalg.norm(x[outliers], axis=1, keepdims=True)
    x.flush()
    del x
    z = np.clip(0.02 + 0.35 * (which % 97) / 97 + rng.normal(0, 0.01, n), 0.001, 0.6)
    spec = rng.random(n) < 0.03
    morph = spec & (rng.random(n) < 0.33)
    pd.DataFrame({
        "object_id": np.arange(n, dtype=np.int64),
        "ra": rng.uniform(0, 360, n), "dec": np.degrees(np.arcsin(rng.uniform(-1, 1, n))),
        "z": z, "z_spec": np.where(spec, z, np.nan),
        "p_features": np.where(morph, rng.uniform(0, 1, n), np.nan),
        "cluster": which.astype(np.int32), "is_anomaly": np.isin(np.arange(n), outliers),
        "mag_r": rng.uniform(14, 19, n),
    }).to_parquet(cat)
    return emb, cat


def build_scale_atlas(n: int, dim: int, work: Path) -> dict:
    """Make the inputs (kept when they exist) and run `galexplore build` on them in a fresh process.

    Returns the atlas's path, the build's wall time and peak memory, and each stage's time and
    detail as its manifest records them (stages already up to date keep an earlier build's time).
    Raises RuntimeError with the end of the build's output when it fails.
    """
    emb, cat = make_inputs(n, dim, work)
    config = work / "scale.toml"
    config.write_text(CONFIG.format(pca_dim=min(64, dim)), encoding="utf-8")
    atlas = work / f"atlas-{n}"
    before = _stages(atlas)
    command = ["/usr/bin/time", "-v", str(Path(sys.executable).with_name("galexplore")), "build", str(config),
               "--out", str(atlas), "--embeddings", str(emb), "--catalog", str(cat)]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(f"galexplore build of {atlas} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    peak_kb = next((int(line.split()[-1]) for line in done.stderr.splitlines() if "Maximum resident" in line), None)
    after = _stages(atlas)
    stages = {name: {k: info.get(k) for k in ("seconds", "peak_mb", "detail")} for name, info in after.items()}
    ran = [name for name, info in after.items() if before.get(name) != info]  # the others were up to date
    return {"atlas": str(atlas), "n": n, "dim": dim, "wall_s": round(wall, 1), "ran": ran,
            "peak_gb": round(peak_kb / 1024**2, 2) if peak_kb else None, "stages": stages, "output": done.stdout}


def _stages(atlas: Path) -> dict:
    manifest = atlas / "manifest.json"
    return json.loads(manifest.read_text())["stages"] if manifest.exists() else {}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--work", type=Path, default=ROOT / "data" / "scale")
    args = parser.parse_args()
    try:
        result = build_scale_atlas(args.n, args.dim, args.work)
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(result.pop("output"))
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
