"""Throughput of the view recipes and of the loader, written as JSON as it goes.

For every view of ``ftsweep.data.VIEWS`` at output side 32 and 224 px, from synthetic 32×32 and
500×375 RGB sources (PIL images made here):

- ``per_image``: images/s on one core of the per-image recipe (``build_view``, PIL in, what a
  DataLoader worker runs), and its cost relative to ``strong`` (the issue's aim: ≤ 2×);
- ``batched_cpu``: images/s on one core of the batched recipe (``gpu_views.BatchView``) on CPU
  tensors, from the uint8 squares ``prepare_transform`` makes (that step, the CPU worker's part of
  the batched path, is timed as the view ``prepare``);
- ``batched_cuda`` (when CUDA is present): images/s of the batched recipe on the GPU, batch 256
  (aim: ≥ 20,000 at 224 px);
- ``loader``: images/s of ``make_loader`` over a synthetic 500×375 data set with the ``strong``
  per-image view and with the ``prepare`` transform, for 0, 1, 2, … workers (up to the CPUs
  minus one), in steady state (persistent workers, after one untimed pass).

Usage: ``PYTHONPATH=. python bench/data_pipeline.py [--quick] [--out results/bench/data_pipeline.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ftsweep.data import VIEWS, ViewDataset, build_view, resolve_info  # noqa: E402
from ftsweep.data.gpu_views import BatchView, prepare_transform  # noqa: E402
from ftsweep.engine import make_loader, trial_cpus  # noqa: E402

SOURCES = {"32x32": (32, 32), "500x375": (500, 375)}
SIZES = (32, 224)


def _pil(w: int, h: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
    img = Image.fromarray(base).resize((w, h), Image.BILINEAR)  # smooth, photo-like statistics
    return img


class _PilSet(torch.utils.data.Dataset):
    def __init__(self, n: int, w: int, h: int) -> None:
        self.images = [_pil(w, h, i) for i in range(min(n, 64))]
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[Image.Image, int]:
        return self.images[i % len(self.images)], i % 10


def _rate(fn: Any, n: int, min_s: float) -> float:
    """Items/s of ``fn()`` (which handles ``n`` items), repeated for at least ``min_s`` seconds."""
    fn()  # warm-up
    done, t0 = 0, time.perf_counter()
    while True:
        fn()
        done += n
        dt = time.perf_counter() - t0
        if dt >= min_s:
            return done / dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a short run (fewer images, shorter timings)")
    ap.add_argument("--out", default=str(ROOT / "results/bench/data_pipeline.json"))
    ap.add_argument("--views", nargs="*", default=list(VIEWS))
    args = ap.parse_args()
    n_img, batch, min_s = (4, 8, 0.3) if args.quick else (16, 32, 2.0)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "host": {"machine": platform.machine(), "cpus": os.cpu_count(), "trial_cpus": trial_cpus()},
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "quick": args.quick,
        "per_image": {},
        "batched_cpu": {},
        "batched_cuda": {},
        "loader": {},
    }

    def save() -> None:
        out.write_text(json.dumps(report, indent=2))

    torch.set_num_threads(1)
    for src, (w, h) in SOURCES.items():
        pils = [_pil(w, h, i) for i in range(n_img)]
        for size in SIZES:
            info = resolve_info("cifar10", size)
            key = f"{src}->{size}"
            prep = prepare_transform(info)
            prepared = torch.stack([prep(pils[i % n_img]) for i in range(batch)])
            per: dict[str, float] = {
                "prepare": _rate(lambda p=prep, ims=pils: [p(im) for im in ims], n_img, min_s)
            }
            bat: dict[str, float] = {}
            for name in args.views:
                view = build_view(info, name)
                per[name] = _rate(lambda v=view, ims=pils: [v(im) for im in ims], n_img, min_s)
                bv = BatchView(info, name)
                bat[name] = _rate(lambda b=bv, x=prepared: b(x, seed=0), batch, min_s)
                print(
                    f"{key:>14} {name:>12}: per-image {per[name]:8.0f}/s   batched cpu {bat[name]:8.0f}/s",
                    flush=True,
                )
                report["per_image"][key], report["batched_cpu"][key] = per, bat
                save()
            if "strong" in per:
                report["per_image"][key + "/cost_vs_strong"] = {
                    n: round(per["strong"] / r, 2) for n, r in per.items() if n != "prepare"
                }
            save()
            if torch.cuda.is_available():
                gb = 256
                x = prepared.repeat(gb // batch + 1, 1, 1, 1)[:gb].cuda()
                cuda: dict[str, float] = {}
                for name in args.views:
                    bv = BatchView(info, name)

                    def run(b: BatchView = bv, xs: torch.Tensor = x) -> None:
                        b(xs, seed=0)
                        torch.cuda.synchronize()

                    cuda[name] = _rate(run, gb, min_s)
                    report["batched_cuda"][key] = cuda
                    save()

    torch.set_num_threads(max(1, trial_cpus()))
    info = resolve_info("cifar10", 224)
    w, h = SOURCES["500x375"]
    n = 64 if args.quick else 512
    max_workers = max(0, trial_cpus() - 1)
    for label, transform in (("strong", build_view(info, "strong")), ("prepare", prepare_transform(info))):
        ds = ViewDataset(_PilSet(n, w, h), np.arange(n), transform)
        rates: dict[str, float] = {}
        counts = sorted({0, 1, 2, max_workers, *range(4, max_workers + 1, 2)})
        for workers in [c for c in counts if c <= max_workers]:
            loader = make_loader(
                ds, batch_size=32, shuffle=True, seed=0, num_workers=workers, persistent_workers=workers > 0
            )
            sum(len(b[1]) for b in loader)  # warm-up pass: workers start, first-call costs paid
            t0 = time.perf_counter()
            seen = sum(len(b[1]) for b in loader)
            rates[str(workers)] = seen / (time.perf_counter() - t0)
            print(f"loader {label:>8} workers={workers}: {rates[str(workers)]:8.0f} images/s", flush=True)
            report["loader"][f"500x375->224/{label}"] = rates
            save()
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
