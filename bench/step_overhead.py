"""Training-step overhead of every registered method relative to CE-tuning, printed as JSON.

For each fine-tuning method of ``ftsweep.registry.methods()`` (or ``--methods``; stage-1
``target_pretrain`` has no training step to compare and is left to
``bench/target_pretraining.py``) and each ``--backbone``, a fresh subprocess builds the
method (digits data, random init, CPU unless ``--device``) at its last epoch (COIN's
stage 2), takes the first batch of its own training stream once, resizes its images
to ``--image-size`` and runs ``training_step`` + backward + optimiser step
(+ ``after_optimizer_step``) on that fixed batch. The same process builds ``ce`` with a batch of
as many images as the method forwards per step (one view per image for coin/core_tuning; both
views for schane, so CE runs on 2× the images). After ``--warmup`` untimed steps of each, the two
steps alternate ``--repeats`` times (so load from other processes hits both alike) and
``time_ratio`` = median method step / median CE step.

Memory: on CPU, ``step_mem_mib`` is the growth of the process's resident set during the method's
warm-up steps (``ru_maxrss`` after them minus the resident set before the first: activations,
gradients, optimiser state), measured before CE is built; CE's figure on the same number of
images comes from a separate subprocess. On CUDA, ``torch.cuda.max_memory_allocated`` minus the
memory allocated before the first step. ``mem_ratio`` = method / CE.

Usage: ``python bench/step_overhead.py [--backbone small_cnn --backbone torchvision.resnet50]
[--batch-size 32] [--image-size 64] [--methods ce scl core_tuning]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _images(obj: Any) -> list:
    """Every image tensor (4-D floating point) in a batch structure."""
    import torch

    if isinstance(obj, torch.Tensor):
        return [obj] if obj.ndim == 4 and obj.is_floating_point() else []
    if isinstance(obj, list | tuple):
        return [t for o in obj for t in _images(o)]
    if isinstance(obj, dict):
        return [t for o in obj.values() for t in _images(o)]
    return []


def _resize(obj: Any, size: int) -> Any:
    import torch
    import torch.nn.functional as F

    if isinstance(obj, torch.Tensor):
        if obj.ndim == 4 and obj.is_floating_point() and obj.shape[-1] != size:
            return F.interpolate(obj, size=(size, size), mode="bilinear", align_corners=False)
        return obj
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(_resize(o, size) for o in obj))
    if isinstance(obj, list | tuple):
        return type(obj)(_resize(o, size) for o in obj)
    if isinstance(obj, dict):
        return {k: _resize(v, size) for k, v in obj.items()}
    return obj


def _rss_now_kib() -> float:
    with open("/proc/self/statm") as f:
        resident_pages = int(f.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 1024


def _build(method: str, backbone: str, batch_size: int, args: argparse.Namespace):  # noqa: ANN202
    """A method at its last epoch, its fixed (resized) first batch and one timed-step function."""
    import torch

    from ftsweep.registry import methods

    record = methods()[method]
    config = {
        **record.smoke,
        "dataset": "digits",
        "backbone": backbone,
        "pretrained": "none",
        "device": args.device,
        "batch_size": batch_size,
        "optimizer": "sgd",  # one optimiser for all (SCHaNe's default is AdamW): the loss's cost
        "epochs": 2,
        "seed": 0,
        "cache_dir": args.cache_dir,
    }
    t = record.trainable.method_cls(config)
    t.epoch = t.cfg.epochs - 1  # last epoch: COIN's stage 2, ramps at their end
    batch = _resize(next(iter(t.train_batches(0))), args.image_size)
    n_images = sum(int(x.shape[0]) for x in _images(batch))
    t.model.train()
    cuda = t.device.type == "cuda"

    def one_step() -> float:
        start = time.perf_counter()
        loss, _ = t.training_step(batch)
        t.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        t.optimizer.step()
        t.after_optimizer_step()
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - start

    return t, n_images, one_step


def worker(args: argparse.Namespace) -> dict[str, Any]:
    """Memory of ``args.worker``'s steps, then (unless ``--memory-only``) its step time
    interleaved with CE's on the same number of images; returns the figures."""
    import torch

    torch.set_num_threads(args.threads)
    backbone = args.backbone[0]
    t, n_images, step = _build(args.worker, backbone, args.batch_size, args)
    cuda = t.device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        mem_before = torch.cuda.memory_allocated()
    rss_before = _rss_now_kib()
    for _ in range(args.warmup):
        step()
    if cuda:
        step_mem = (torch.cuda.max_memory_allocated() - mem_before) / 2**20
    else:
        step_mem = max(0.0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    out: dict[str, Any] = {"images_per_step": n_images, "step_mem_mib": round(step_mem, 1)}
    if args.memory_only:
        return out
    _, ce_images, ce_step = _build("ce", backbone, n_images, args)
    assert ce_images == n_images, f"CE batch has {ce_images} images, expected {n_images}"
    for _ in range(args.warmup):
        ce_step()
    times, ce_times = [], []
    for _ in range(args.repeats):  # interleaved: load changes hit both alike
        times.append(step())
        ce_times.append(ce_step())
    med, ce_med = statistics.median(times), statistics.median(ce_times)
    out.update(
        {
            "step_ms": round(1000 * med, 2),
            "ce_step_ms": round(1000 * ce_med, 2),
            "time_ratio": round(med / ce_med, 3),
            "time_ratio_of_mins": round(min(times) / min(ce_times), 3),
        }
    )
    return out


def _run_worker(
    method: str, backbone: str, batch_size: int, args: argparse.Namespace, *, memory_only: bool = False
) -> dict[str, Any]:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker", method,
        "--backbone", backbone,
        "--batch-size", str(batch_size),
        "--image-size", str(args.image_size),
        "--warmup", str(args.warmup),
        "--repeats", str(args.repeats),
        "--threads", str(args.threads),
        "--device", args.device,
        "--cache-dir", args.cache_dir,
    ] + (["--memory-only"] if memory_only else [])  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        err = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": err}
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", action="append", help="repeatable (default small_cnn, resnet50)")
    parser.add_argument("--methods", nargs="*", help="default: every registered method")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cache-dir", default="/tmp/ftsweep_bench_cache")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--memory-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return

    sys.path.insert(0, str(ROOT))
    from ftsweep.methods import FineTuner
    from ftsweep.registry import methods as registered

    # a training step to compare with CE's: the fine-tuning methods (stage-1 target
    # pretraining has none; bench/target_pretraining.py measures its BYOL / MoCo steps)
    stepped = sorted(m for m, r in registered().items() if issubclass(r.trainable.method_cls, FineTuner))
    skipped = sorted(set(registered()) - set(stepped))
    if args.methods:
        bad = [m for m in args.methods if m not in stepped]
        if bad:
            parser.error(f"--methods: {', '.join(bad)} — allowed: {', '.join(stepped)}")
    methods = args.methods or stepped
    backbones = args.backbone or ["small_cnn", "torchvision.resnet50"]
    out: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "threads": args.threads,
            "device": args.device,
            "python": platform.python_version(),
            "load_avg_1m_at_start": round(os.getloadavg()[0], 2),
        },
        "settings": {
            "batch_size": args.batch_size,
            "image_size": args.image_size,
            "warmup": args.warmup,
            "repeats": args.repeats,
            "data": "digits (first batch of each method's own stream, resized)",
        },
        "not_stepped": {m: "not a FineTuner: no training_step to compare" for m in skipped},
        "results": {},
    }
    for backbone in backbones:
        res: dict[str, Any] = {}
        ce_mem: dict[int, float] = {}
        for method in methods:
            r = _run_worker(method, backbone, args.batch_size, args)
            if "error" not in r:
                n = r["images_per_step"]
                if n not in ce_mem:  # CE's step memory on the same number of images
                    ce = _run_worker("ce", backbone, n, args, memory_only=True)
                    ce_mem[n] = ce.get("step_mem_mib", float("nan"))
                r["ce_step_mem_mib"] = ce_mem[n]
                r["mem_ratio"] = round(r["step_mem_mib"] / ce_mem[n], 3) if ce_mem[n] > 0 else None
            res[method] = r
            print(f"{backbone} {method}: {r}", file=sys.stderr)
        out["results"][backbone] = res
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
