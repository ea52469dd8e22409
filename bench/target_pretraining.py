"""Benchmark of the target pretraining pipeline on digits / small CNN, printed as JSON.

1. Step times at one batch size B on the same backbone: a stage-1 step (BYOL, MoCo v2; two
   batched views of B images) and a stage-2 step of each learner (supervised: B labeled images;
   FixMatch / UDA: B labeled + μB weak + μB strong; Mean Teacher: B + μB student, μB teacher),
   each including its data pipeline, all relative to the supervised step. Also the stage-1 epoch
   time (one pass over the digits pool).
2. The build-once cache on a sweep of N stage-2 trials (supervised, one short epoch each) naming
   the same stage-1 config: wall time with the shared cache ÷ wall time when every trial builds
   its own stage 1 (a fresh cache directory per trial, i.e. what per-trial pretraining costs).

Usage: ``python bench/target_pretraining.py [--batch 32] [--mu 7] [--steps 10] [--trials 4]``.
Runs on one CPU thread (``torch.set_num_threads(1)``), as a Ray trial with ``cpu: 1`` does.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from typing import Any

import torch

from ftsweep.methods.fixmatch import FixMatchMethod
from ftsweep.methods.mean_teacher import MeanTeacherMethod
from ftsweep.methods.supervised import SupervisedMethod
from ftsweep.methods.uda import UDAMethod
from ftsweep.pretrain import TargetPretrainConfig, TargetPretrainer


def stage2_step_s(method: str, batch: int, mu: int, steps: int) -> float:
    """Mean wall time of one optimiser step (data pipeline included) of ``method``."""
    cfg = {
        "pretrained": "none",
        "device": "cpu",
        "labels_per_class": 10,
        "batch_size": batch,
        "iters_per_epoch": steps,
        "epochs": 2,
    }
    if method != "supervised":
        cfg["mu"] = mu
    t = STAGE2[method](cfg)
    t.train_epoch()  # warm-up (allocations, first RandAugment calls)
    t.epoch += 1
    start = time.perf_counter()
    t.train_epoch()
    return (time.perf_counter() - start) / steps


def _stage1_common(batch: int) -> dict[str, Any]:
    """Stage-1 heads sized for the 128-d small CNN (the paper's 4096-wide MLPs would dominate)."""
    return {"batch_size": batch, "device": "cpu", "proj_hidden": 512, "pred_hidden": 512, "moco_queue": 4096}


def stage1_times(objective: str, batch: int, steps: int) -> dict[str, float]:
    cfg = TargetPretrainConfig(
        objective=objective,
        batch_size=batch,
        epochs=3,
        device="cpu",
        max_train_batches=steps,
        moco_queue=4096,
    )
    trainer = TargetPretrainer(cfg)
    trainer.train_epoch()  # warm-up
    start = time.perf_counter()
    trainer.train_epoch()
    step = (time.perf_counter() - start) / steps
    full = TargetPretrainer(
        TargetPretrainConfig(objective=objective, batch_size=batch, epochs=1, device="cpu")
    )
    start = time.perf_counter()
    full.train_epoch()
    return {"step_s": step, "epoch_s": time.perf_counter() - start, "steps_per_epoch": len(full.batches)}


def cache_saving(trials: int, stage1: dict[str, Any]) -> dict[str, float]:
    base = {
        "pretrained": "none",
        "device": "cpu",
        "labels_per_class": 4,
        "batch_size": 16,
        "iters_per_epoch": 3,
        "epochs": 1,
        "stage1": stage1,
    }

    def sweep(shared: bool) -> float:
        with tempfile.TemporaryDirectory() as root:
            start = time.perf_counter()
            for seed in range(trials):
                cache = root if shared else f"{root}/trial{seed}"
                t = SupervisedMethod({**base, "seed": seed, "cache_dir": cache})
                t.step()
            return time.perf_counter() - start

    with_cache, without = sweep(True), sweep(False)
    return {
        "trials": trials,
        "with_cache_s": round(with_cache, 2),
        "without_cache_s": round(without, 2),
        "ratio_with_over_without": round(with_cache / without, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--mu", type=int, default=7)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--stage1-epochs", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)

    stage2 = {m: stage2_step_s(m, args.batch, args.mu, args.steps) for m in STAGE2}
    sup = stage2["supervised"]
    stage1 = {o: stage1_times(o, args.batch, args.steps) for o in ("byol", "moco_v2")}
    recipe = {
        "objective": "byol",
        "epochs": args.stage1_epochs,
        "batch_size": 128,
        "proj_hidden": 512,
        "pred_hidden": 512,
    }
    out = {
        "setup": {
            "dataset": "digits",
            "backbone": "small_cnn",
            "batch": args.batch,
            "mu": args.mu,
            "timed_steps": args.steps,
            "torch_threads": 1,
            "stage1_heads": "proj/pred hidden 512",
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
        "stage2_step_s": {m: round(v, 4) for m, v in stage2.items()},
        "stage2_step_vs_supervised": {m: round(v / sup, 2) for m, v in stage2.items()},
        "stage1_step_s": {o: round(v["step_s"], 4) for o, v in stage1.items()},
        "stage1_step_vs_supervised": {o: round(v["step_s"] / sup, 2) for o, v in stage1.items()},
        "stage1_epoch_s": {o: round(v["epoch_s"], 3) for o, v in stage1.items()},
        "stage1_steps_per_epoch": {o: v["steps_per_epoch"] for o, v in stage1.items()},
        "cache": {"stage1": recipe, **cache_saving(args.trials, recipe)},
    }
    print(json.dumps(out, indent=2))


STAGE2 = {
    "supervised": SupervisedMethod,
    "fixmatch": FixMatchMethod,
    "uda": UDAMethod,
    "mean_teacher": MeanTeacherMethod,
}

if __name__ == "__main__":
    main()
