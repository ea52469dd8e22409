"""Training images/s of each method with the real data pipeline ÷ the same step on GPU-resident
tensors (the aim: ≥ 0.9, i.e. the GPU, not the data, sets the pace), written as JSON as it goes.

The script makes its own synthetic JPEG image folder (``train/<class>/*.jpg``, ``test/…``,
500×375, decoded by PIL in the DataLoader workers), then for each backbone (ResNet-50 at 224 px,
batch 256, bf16; ViT-B/16 at 224 px) and each method builds the method's Ray-free class from
``ftsweep.methods`` on that folder (``num_workers: auto``, ``gpu_augment``/``precision``/
``channels_last`` at their CUDA defaults) and times:

- ``real``: ``--steps`` steps of the method's ``train_epoch`` (loader, decode, batched views on
  the GPU, forward, backward, optimiser) after one warm-up epoch;
- ``synthetic``: the same number of steps of the same ``training_step`` on one batch of the
  real stream kept on the GPU (no loading, no augmentation);

``ratio`` = synthetic time / real time, ``images_per_s`` = images forwarded per step × steps /
real time. Only the ``ftsweep`` library is imported (no Ray, MLflow, POT): run it with
``PYTHONPATH=.``. One run measures everything in about ``--budget-s`` seconds (default 330):
what does not fit is skipped and reported as such. On a machine without CUDA it prints one line
and exits 0, unless ``--smoke`` (a small CNN on small images, 2 steps, on CPU: checks the code
paths).

Usage: ``PYTHONPATH=. python bench/gpu_throughput.py [--out results/bench/gpu_throughput.json]
[--methods ce fixmatch] [--smoke]``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]

#: method → (module:class, extra config it needs)
METHODS: dict[str, tuple[str, dict[str, Any]]] = {
    "ce": ("ftsweep.methods.ce:CEMethod", {}),
    "scl": ("ftsweep.methods.scl:SclMethod", {}),
    "coin": ("ftsweep.methods.coin:CoinMethod", {}),
    "core_tuning": ("ftsweep.methods.core_tuning:CoreTuningMethod", {}),
    "schane": ("ftsweep.methods.schane:SchaneMethod", {}),
    "supervised": ("ftsweep.methods.supervised:SupervisedMethod", {"labels_per_class": 40}),
    "fixmatch": ("ftsweep.methods.fixmatch:FixMatchMethod", {"labels_per_class": 40, "mu": 2}),
    "uda": ("ftsweep.methods.uda:UDAMethod", {"labels_per_class": 40, "mu": 2}),
    "mean_teacher": ("ftsweep.methods.mean_teacher:MeanTeacherMethod", {"labels_per_class": 40, "mu": 2}),
}
BACKBONES = {
    "resnet50": {"backbone": "torchvision.resnet50", "batch_size": 256, "precision": "bf16"},
    "vit_b16": {"backbone": "vit_base_patch16_224", "batch_size": 128, "precision": "bf16"},
}
SMOKE = {"smoke_cnn": {"backbone": "small_cnn", "batch_size": 8, "precision": "fp32"}}


def make_jpegs(root: Path, *, classes: int, per_class: int, size: tuple[int, int]) -> Path:
    """A synthetic image folder ``root/{train,test}/<class>/*.jpg`` (smooth random colours)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    w, h = size
    for split, n in (("train", per_class), ("test", max(2, per_class // 10))):
        for c in range(classes):
            d = root / split / f"class{c:02d}"
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                small = rng.integers(0, 256, (h // 16 + 1, w // 16 + 1, 3), dtype=np.uint8)
                Image.fromarray(small).resize((w, h), Image.BILINEAR).save(d / f"{i:04d}.jpg", quality=90)
    return root


def _images_in(batch: Any) -> int:
    if isinstance(batch, torch.Tensor):
        return len(batch) if batch.dim() == 4 else 0
    if isinstance(batch, list | tuple):
        return sum(_images_in(b) for b in batch)
    return 0


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(name: str, base: dict[str, Any], data: Path, steps: int, labels_per_class: int) -> dict[str, Any]:
    from ftsweep.engine import epoch_seed, train_epoch

    path, extra = METHODS[name]
    module, cls_name = path.split(":")
    cls = getattr(importlib.import_module(module), cls_name)
    cfg = {"dataset": str(data), "pretrained": "none", "epochs": 100, "max_train_batches": steps}
    cfg |= {"iters_per_epoch": steps} if "labels_per_class" in extra else {}
    if "labels_per_class" in extra:  # a budget the folder can hold, the rest unlabeled
        extra = {**extra, "labels_per_class": min(extra["labels_per_class"], labels_per_class)}
    method = cls({**cfg, **base, **extra})
    dev = method.device

    t0 = time.perf_counter()
    method.train_epoch()  # warm-up: workers start, cuDNN picks its kernels
    _sync(dev)
    warm_s = time.perf_counter() - t0
    method.epoch += 1
    t0 = time.perf_counter()
    method.train_epoch()
    _sync(dev)
    real_s = time.perf_counter() - t0

    # one batch of the real stream, already on the device and augmented, reused for every step
    from ftsweep.data.gpu_views import DeviceBatches

    stream = method.train_batches(epoch_seed(method.cfg.seed, method.epoch))
    if method.batch_views is not None:
        stream = DeviceBatches(stream, method.batch_views, dev)
    batch = next(iter(stream))
    if method.batch_views is None:
        batch = DeviceBatches([batch], {}, dev).convert(batch)
    n_images = _images_in(batch)
    method.model.train()

    def synthetic() -> None:
        train_epoch(
            method.training_step,
            [batch] * steps,
            method.optimizer,
            method.scheduler,
            params=method.model.parameters(),
            grad_accum=method.cfg.grad_accum,
            after_step=method.after_optimizer_step,
            precision=method.precision,
            device=dev,
        )

    synthetic()
    _sync(dev)
    t0 = time.perf_counter()
    synthetic()
    _sync(dev)
    synth_s = time.perf_counter() - t0
    return {
        "steps": steps,
        "images_per_step": n_images,
        "num_workers": method.cfg.num_workers,
        "precision": method.precision,
        "channels_last": method.channels_last,
        "gpu_augment": method.batch_views is not None,
        "warmup_s": round(warm_s, 3),
        "real_s": round(real_s, 3),
        "synthetic_s": round(synth_s, 3),
        "images_per_s": round(n_images * steps / real_s, 1),
        "synthetic_images_per_s": round(n_images * steps / synth_s, 1),
        "ratio": round(synth_s / real_s, 3),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "results/bench/gpu_throughput.json"))
    ap.add_argument("--methods", nargs="*", default=list(METHODS))
    ap.add_argument("--backbones", nargs="*", default=list(BACKBONES))
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--budget-s", type=float, default=330.0)
    ap.add_argument("--smoke", action="store_true", help="CPU check of the code paths: small CNN, 2 steps")
    args = ap.parse_args()
    if not torch.cuda.is_available() and not args.smoke:
        print("no CUDA device: bench/gpu_throughput.py measures nothing here")
        return 0
    start = time.perf_counter()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.smoke:
        backbones = {
            k: {**v, "device": "cpu", "gpu_augment": True, "image_size": 32} for k, v in SMOKE.items()
        }
        steps, size, classes, per_class = 2, (48, 40), 4, 12
    else:
        backbones = {
            k: {**v, "device": "cuda", "image_size": 224} for k, v in BACKBONES.items() if k in args.backbones
        }
        steps, size, classes, per_class = args.steps, (500, 375), 10, 120
    report: dict[str, Any] = {
        "host": platform.node(),
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "smoke": args.smoke,
        "results": {},
        "skipped": [],
        "errors": {},
    }

    def save() -> None:
        out.write_text(json.dumps(report, indent=2))

    with tempfile.TemporaryDirectory() as tmp:
        data = make_jpegs(Path(tmp) / "jpegs", classes=classes, per_class=per_class, size=size)
        report["data"] = {
            "classes": classes,
            "train_per_class": per_class,
            "size": list(size),
            "format": "jpeg",
        }
        save()
        for bb, base in backbones.items():
            for name in args.methods:
                key = f"{bb}/{name}"
                if time.perf_counter() - start > args.budget_s:
                    report["skipped"].append(key)
                    save()
                    continue
                try:
                    report["results"][key] = measure(name, base, data, steps, max(1, per_class // 4))
                    r = report["results"][key]
                    print(f"{key}: {r['images_per_s']} images/s, ratio {r['ratio']}", flush=True)
                except Exception as e:  # a method that cannot run here is reported, the rest go on
                    report["errors"][key] = f"{type(e).__name__}: {e}"
                    print(f"{key}: ERROR {report['errors'][key]}", flush=True)
                save()
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
    report["elapsed_s"] = round(time.perf_counter() - start, 1)
    save()
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
