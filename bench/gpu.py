"""The GPU benchmark (issue 7): one run on one CUDA GPU, under 8 minutes, that prints one JSON object.

    bash bench/gpu.sh                        # what to run on a GPU machine
    python -m bench.gpu [--out FILE] [...]   # the same, without gpu.sh's checks
    python -m bench.gpu --dry-run            # every step on the CPU, tiny sizes: checks the script

On the sdss preset (ResNet-50, small stem, 64x64 crops from 107x107 ugriz cutouts, bf16 autocast,
channels_last), with synthetic cutouts written to an HDF5 survey first:

- training images/s of the full MoCo v2 step (`galexplore.training.trainer._step`), eager and
  under torch.compile, fed three ways: a batch resident on the GPU (the model and the batched
  augmentations alone), the trainer's loader reading the HDF5 file (workers, pinned memory), and
  the per-image CPU pipeline of the original papers (`bench.augment_reference`, in the loader's
  workers) feeding the same model; goals: loader >= 0.9x resident, loader >= 3x per-image CPU;
- the augmentations' share of a step (both views, timed alone on the resident batch);
- embedding images/s of `galexplore.training.embed.represent` against a bare ``model(x)`` loop;
- the all-pairs top-50 neighbour graph of 1,000,000 x 128 on the GPU (`knn_graph` with a torch
  device; FAISS's GPU index too when the faiss build has one);
- model FLOP utilisation: FLOPs of one training step counted by `torch.utils.flop_counter`
  (forward and backward), per image, times images/s, over the bf16 dense peak (--peak-tflops;
  989 for an H100/H200 SXM).

The HDF5 survey holds one epoch of (warm-up + timed) steps, so each measurement runs inside one
epoch (a new epoch restarts the loader's workers, as the trainer does); it is read from the page
cache (it is written just before), so the loader figure is an upper bound for a survey on a slow disk.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
H200_BF16_DENSE_TFLOPS = 989.0  # NVIDIA's H100/H200 SXM datasheet, dense (no sparsity)


@dataclasses.dataclass(frozen=True)
class Plan:
    """Sizes of one run of the script."""

    steps: int = 40  # timed training steps per measurement
    warmup: int = 8  # untimed steps first (compilation, the loader's start)
    graph_n: int = 1_000_000
    graph_dim: int = 128
    graph_k: int = 50
    compile_backend: str = "inductor"


DRY_RUN = Plan(steps=2, warmup=1, graph_n=2000, graph_dim=16, compile_backend="eager")


class PrecomputedViews:
    """The augmentations' stand-in when the loader already made both views: (2, B, C, h, w) -> the two."""

    def view_pair(self, views: Any, generator: Any) -> tuple[Any, Any]:
        return views[0], views[1]


class ReferenceViews:
    """Batches of two views (2, B, C, crop, crop) made one image at a time by the per-image CPU
    pipeline, in the loader's worker processes (a torch map-style dataset of whole batches)."""

    def __init__(self, survey: Any, reference: Any, seed: int = 0) -> None:
        self.survey, self.reference, self.seed = survey, reference, seed

    def __len__(self) -> int:
        return len(self.survey)

    def __getitem__(self, positions: list[int]) -> Any:
        import torch

        images = self.survey.read(np.asarray(positions))  # (B, C, H, W)
        rng = np.random.default_rng([self.seed, int(positions[0])])
        return torch.from_numpy(np.stack([self.reference.batch(images, rng), self.reference.batch(images, rng)]))


def endless(loader_for_epoch: Any) -> Iterator[Any]:
    """The batches of epoch 0, 1, 2, ... of `loader_for_epoch(epoch)`, without end."""
    for epoch in itertools.count():
        yield from loader_for_epoch(epoch)


def measure(plan: Plan, config: Path, device: Any, workers: int, peak_tflops: float, work: Path) -> dict[str, Any]:
    """Every figure of the script, as one JSON-able dict (see the module docstring)."""
    import torch
    from torch.utils.data import DataLoader
    from torch.utils.flop_counter import FlopCounterMode

    from bench.augment_reference import ReferenceAugment
    from bench.inputs import write_survey
    from bench.train_throughput import run_steps, trainee
    from galexplore.augment import build_augmentations
    from galexplore.config import load_config
    from galexplore.training.embed import prepare, represent
    from galexplore.survey.normalize import Normalization
    from galexplore.survey.hdf5 import HDF5Survey
    from galexplore.training.data import CutoutBatches, EpochBatches, batch_loader
    from galexplore.training.trainer import Distributed, _step

    cfg = load_config(config)
    if device.type == "cpu":
        cfg = _tiny(cfg)
    batch, bands = cfg.train.batch_size, cfg.survey.bands
    size = cfg.survey.image_size or 107
    out: dict[str, Any] = {"config": str(config), "device": str(device), "torch": torch.__version__,
                           "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
                           "arch": cfg.model.arch, "batch": batch, "stored": size, "crop": cfg.augment.crop_size,
                           "loader_workers": workers, "plan": dataclasses.asdict(plan), "seconds": {}}
    clock = _Clock(out["seconds"])

    n_images = (plan.warmup + plan.steps) * batch  # one epoch per measurement
    with clock("write survey"):
        survey = HDF5Survey(write_survey(work / f"gpu-cutouts-{n_images}x{size}.h5", n_images, size))
    normalization = Normalization(bands=tuple(bands), background=(0.0,) * len(bands), noise=(1.0,) * len(bands))
    augment = build_augmentations(cfg.augment, bands, normalization.noise, image_size=size, normalization=normalization)
    reference = ReferenceAugment.from_config(cfg.augment, normalization.noise, normalization)
    cuda = device.type == "cuda"
    resident = torch.from_numpy(survey.read(np.arange(batch))).to(device)  # (B, C, H, W)

    def loader(epoch: int) -> Any:
        return batch_loader(CutoutBatches(survey), EpochBatches(len(survey), batch, 0, epoch), workers, pin_memory=cuda)

    def cpu_loader(epoch: int) -> Any:
        return DataLoader(ReferenceViews(survey, reference, epoch), batch_size=None, sampler=EpochBatches(len(survey), batch, 0, epoch),
                          num_workers=workers, pin_memory=cuda, prefetch_factor=4 if workers else None)

    def images_per_s(t: Any, augment_: Any, batches: Iterator[Any]) -> float:
        run_steps(t, augment_, batches, plan.warmup)
        return plan.steps * batch / run_steps(t, augment_, batches, plan.steps, first=plan.warmup)

    training: dict[str, Any] = {}
    flops_per_image = float("nan")
    for mode in ("eager", "compiled"):
        with clock(f"train {mode}"):
            t = trainee(cfg, batch, device, compile=mode == "compiled", backend=plan.compile_backend)
            if mode == "compiled":
                with clock("compile (first steps)"):
                    run_steps(t, augment, itertools.repeat(resident), 2)
            figures = {"resident": images_per_s(t, augment, itertools.repeat(resident)),
                       "loader": images_per_s(t, augment, endless(loader))}
            if mode == "eager":
                figures["per_image_cpu"] = images_per_s(t, PrecomputedViews(), endless(cpu_loader))
                figures["augment_share_of_step"] = _augment_share(augment, resident, t, plan.steps)
                with FlopCounterMode(display=False) as counter:
                    _step(t.model, t.forward, t.optimizer, augment, resident, 0, Distributed(), 0, device)
                flops_per_image = counter.get_total_flops() / batch
                out["flops_per_image_training"] = flops_per_image
            training[mode] = figures
    out["training_images_per_s"] = training
    best = max(training["eager"]["loader"], training["compiled"]["loader"])
    best_resident = max(training["eager"]["resident"], training["compiled"]["resident"])
    out["mfu"] = {"peak_tflops": peak_tflops, "best_loader_images_per_s": best,
                  "model_flop_utilisation": flops_per_image * best / (peak_tflops * 1e12),
                  "model_flop_utilisation_resident": flops_per_image * best_resident / (peak_tflops * 1e12)}
    out["goals"] = {
        "loader_vs_resident": {mode: _goal(training[mode]["loader"] / training[mode]["resident"], ">=", 0.9)
                               for mode in training},
        "loader_vs_per_image_cpu": _goal(training["eager"]["loader"] / training["eager"]["per_image_cpu"], ">=", 3.0),
    }

    with clock("embed"):
        encoder = t.model.encoder
        rows = np.arange(len(survey))
        crop = cfg.embed.crop_size or cfg.augment.crop_size
        prepared = [prepare(torch.from_numpy(survey.read(rows[i : i + batch])).to(device), normalization, crop)
                    .contiguous(memory_format=torch.channels_last if cuda else torch.contiguous_format)
                    for i in range(0, len(rows), batch)]

        @torch.inference_mode()
        def bare() -> None:
            encoder.eval()
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
                for x in prepared:
                    encoder(x)
            if cuda:
                torch.cuda.synchronize(device)

        bare()
        bare_s = _seconds(bare)
        ours_s = _seconds(lambda: represent(encoder, survey, rows, normalization, crop, device, batch_size=batch, workers=workers))
        out["embedding_images_per_s"] = {"represent": len(rows) / ours_s, "bare_loop": len(rows) / bare_s,
                                         "ratio": _goal(bare_s / ours_s, ">=", 0.9)}

    with clock("neighbour graph"):
        out["neighbour_graph"] = _graph(plan, device)
    survey.close()
    return out


def _augment_share(augment: Any, resident: Any, t: Any, steps: int) -> float:
    """Seconds of both views' augmentations over seconds of whole steps, on the resident batch."""
    import torch

    from bench.train_throughput import run_steps
    from galexplore.training.trainer import step_generator

    def views() -> None:
        for step in range(steps):
            augment.view_pair(resident, step_generator(0, 0, step, t.device))
        if t.device.type == "cuda":
            torch.cuda.synchronize(t.device)

    views()
    augment_s = _seconds(views)
    step_s = run_steps(t, augment, itertools.repeat(resident), steps, first=10_000)
    return augment_s / step_s


def _graph(plan: Plan, device: Any) -> dict[str, Any]:
    """Seconds of the exact top-k graph of clustered unit vectors with torch on `device` (and faiss-gpu)."""
    import faiss
    import torch

    from galexplore.maps.neighbors import knn_graph

    generator = torch.Generator(device=device).manual_seed(0)
    centres = torch.randn(2000, plan.graph_dim, generator=generator, device=device)
    which = torch.randint(2000, (plan.graph_n,), generator=generator, device=device)
    x = centres[which] + 0.6 * torch.randn(plan.graph_n, plan.graph_dim, generator=generator, device=device)
    x = torch.nn.functional.normalize(x, dim=1).cpu().numpy()  # (N, D)
    result: dict[str, Any] = {"n": plan.graph_n, "d": plan.graph_dim, "k": plan.graph_k}
    result["torch_exact_s"] = _seconds(lambda: knn_graph(x, plan.graph_k, method="exact", device=device))
    if device.type == "cuda" and hasattr(faiss, "StandardGpuResources"):
        def faiss_gpu() -> None:
            index = faiss.GpuIndexFlatIP(faiss.StandardGpuResources(), plan.graph_dim)
            index.add(x)
            index.search(x, plan.graph_k + 1)

        result["faiss_gpu_exact_s"] = _seconds(faiss_gpu)
    else:
        result["faiss_gpu_exact_s"] = None  # this faiss build has no GPU index
    return result


def _tiny(cfg: Any) -> Any:
    """The sdss preset shrunk for a CPU dry run: ResNet-18, 24x24 stamps, 16x16 crops, batches of 8."""
    replace = dataclasses.replace
    return replace(
        cfg,
        survey=replace(cfg.survey, image_size=24),
        augment=replace(cfg.augment, crop_size=16, jitter=2),
        model=replace(cfg.model, arch="resnet18", representation_dim=512, projection_dims=(64, 32), queue=64, bn_splits=2),
        train=replace(cfg.train, batch_size=8),
        embed=replace(cfg.embed, batch_size=8),
    )


def _goal(ratio: float, op: str, value: float) -> dict[str, Any]:
    return {"ratio": ratio, "goal": f"{op} {value}x", "met": ratio >= value if op == ">=" else ratio <= value}


def _seconds(action: Any) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


class _Clock:
    """`with clock(name):` adds the block's wall seconds to `seconds[name]` and says so on stderr."""

    def __init__(self, seconds: dict[str, float]) -> None:
        self.seconds = seconds

    def __call__(self, name: str) -> Any:
        import contextlib

        @contextlib.contextmanager
        def block() -> Iterator[None]:
            start = time.perf_counter()
            yield
            self.seconds[name] = round(time.perf_counter() - start, 2)
            print(f"[gpu bench] {name}: {self.seconds[name]} s", file=sys.stderr, flush=True)

        return block()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "pipelines" / "sdss.toml")
    parser.add_argument("--dry-run", action="store_true", help="everything on the CPU at tiny sizes (checks the script)")
    parser.add_argument("--workers", type=int, default=max(1, min(14, (os.cpu_count() or 4) - 2)),
                        help="loader processes (default: the cores less two, at most 14)")
    parser.add_argument("--peak-tflops", type=float, default=H200_BF16_DENSE_TFLOPS, help="the GPU's bf16 dense peak")
    parser.add_argument("--work", type=Path, help="where the HDF5 survey is written (default: a temporary folder)")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)
    import torch

    if not args.dry_run and not torch.cuda.is_available():
        print(f"bench/gpu.py: no CUDA device is visible (torch {torch.__version__}, CUDA build "
              f"{torch.version.cuda or 'none'}); this benchmark needs one GPU. --dry-run checks the script on the CPU.",
              file=sys.stderr)
        return 2
    plan, device = (DRY_RUN, torch.device("cpu")) if args.dry_run else (Plan(), torch.device("cuda"))
    workers = 1 if args.dry_run else args.workers
    with tempfile.TemporaryDirectory() as tmp:
        result = measure(plan, args.config, device, workers, args.peak_tflops, args.work or Path(tmp))
    result["dry_run"] = args.dry_run
    text = json.dumps(result)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
