"""Tune harness overhead and ce/scl training throughput (issue 2's benchmark; not a test).

1. Overhead: the wall time of a small sweep through ``ftsweep run`` (Ray start, Tune, MLflow,
   checkpoints, the table; trials one at a time with all cores, like the bare loop) ÷ the wall
   time of the same trials run by a bare Python loop in its own ``python`` process (Trainable
   instantiated and stepped in-process). Both sides pay their interpreter start and imports.
2. Throughput: training images/s of ``ce`` and ``scl`` on the same backbone and batch.

Usage: ``python bench/harness_overhead.py [--trials 4] [--epochs 30] [--repeats 3] [--fresh-store]`` — prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def _lambdas(trials: int) -> list[float]:
    return [round(0.1 + 0.8 * i / max(1, trials - 1), 3) for i in range(trials)]


def _fixed(epochs: int) -> dict:
    """The trials' fixed config, shared by both ways of running them."""
    return {"epochs": epochs, "lr": 0.05, "temperature": 0.1, "seed": 0}


def _spec(epochs: int, trials: int, name: str = "bench_overhead") -> str:
    import yaml

    fixed = {k: v for k, v in _fixed(epochs).items() if k != "seed"}
    return yaml.safe_dump(
        {
            "name": name,
            "method": "scl",
            "dataset": "digits",
            "backbone": "small_cnn",
            "pretrained": "none",
            "config": fixed,
            "search_space": {"lambda_": _lambdas(trials)},
            "seeds": [0],
            "resources": {"cpu": os.cpu_count(), "gpu": 0},
            "max_concurrent_trials": 1,
        }
    )


_BARE = """
import json, os, sys, time
t0 = time.perf_counter()
import torch
from ftsweep.methods.scl import SclMethod
torch.set_num_threads(os.cpu_count() or 1)
t1 = time.perf_counter()
steps = 0.0
for lam in {lambdas!r}:
    t = SclMethod({{"pretrained": "none", **{fixed!r}, "lambda_": lam}})
    for _ in range({epochs}):
        s0 = time.perf_counter()
        t.step()
        steps += time.perf_counter() - s0
print(json.dumps({{"imports_s": t1 - t0, "loop_s": time.perf_counter() - t1, "steps_s": steps}}))
"""


def bare_loop(epochs: int, trials: int) -> dict[str, float]:
    """The trials in a plain ``python`` process (its imports included, as ``ftsweep run``'s are):
    the process's wall time, and the loop's alone."""
    code = _BARE.format(lambdas=_lambdas(trials), fixed=_fixed(epochs), epochs=epochs)
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    inner = json.loads(out.stdout.strip().splitlines()[-1])
    return {"wall_s": wall, **inner}


def tracking_store(root: str, *, create: bool = True) -> str:
    """The MLflow store (a SQLite file in the existing folder ``root``) ``ftsweep run`` logs
    to, by default created before any timing: a researcher's sweeps share one ``mlflow.db``,
    and creating its schema (~3 s, once per store) is not a cost of each sweep.
    ``create=False`` leaves that to the timed run (a first sweep)."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{root}/mlflow.db"
    if create:
        MlflowClient(uri).search_experiments()
    return uri


def through_ftsweep(epochs: int, trials: int, uri: str, name: str) -> dict[str, float]:
    """``ftsweep run`` of the same trials (its own experiment ``name`` in the shared store
    ``uri``): wall time, and the trials' own time as Tune measured it (``time_total_s``, read
    back from MLflow) — the rest is the harness."""
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "bench.yaml"
        spec.write_text(_spec(epochs, trials, name))
        env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "ftsweep", "run", str(spec), "--results", f"{tmp}/results"],
            check=True, env=env, cwd=ROOT, capture_output=True,
        )  # fmt: skip
        wall = time.perf_counter() - t0
        from mlflow.tracking import MlflowClient

        client = MlflowClient(uri)
        exp = client.get_experiment_by_name(name)
        runs = client.search_runs([exp.experiment_id])
        trials_s = sum(r.data.metrics["time_total_s"] for r in runs)
        return {"wall_s": wall, "trials_total_s": trials_s}


def throughput(method: str, steps: int = 30, batch: int = 64) -> float:
    from ftsweep.registry import methods

    t = methods()[method].trainable.method_cls({"pretrained": "none", "batch_size": batch, "seed": 0})
    x = torch.randn(batch, 3, 32, 32)
    y = torch.arange(batch) % 10
    t.model.train()

    def one() -> None:
        loss, _ = t.training_step((x, y, torch.arange(batch)))
        t.optimizer.zero_grad()
        loss.backward()
        t.optimizer.step()

    for _ in range(5):
        one()
    t0 = time.perf_counter()
    for _ in range(steps):
        one()
    return steps * batch / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=4)
    ap.add_argument(
        "--repeats", type=int, default=3, help="interleaved bare/ftsweep pairs, ABBA order (medians)"
    )
    ap.add_argument(
        "--epochs",
        type=int,
        default=30,
        help="epochs per trial (full digits train part: ~20 s a trial on 2 fast cores; pick the epochs that give ~20 s on yours)",
    )
    ap.add_argument(
        "--fresh-store",
        action="store_true",
        help="each ftsweep run creates its own MLflow store (a first sweep)",
    )
    args = ap.parse_args()
    # interleaved repeats; medians (the machine's load drifts between runs)
    bares, tuneds = [], []
    with tempfile.TemporaryDirectory() as store:
        uri = tracking_store(store, create=not args.fresh_store)
        for i in range(args.repeats):
            if args.fresh_store:  # a store of its own per run, created inside the timed run
                uri = tracking_store(tempfile.mkdtemp(dir=store), create=False)
            pair = [
                lambda: bares.append(bare_loop(args.epochs, args.trials)),
                lambda i=i, uri=uri: tuneds.append(
                    through_ftsweep(args.epochs, args.trials, uri, f"bench_overhead_{i}")
                ),
            ]
            # ABBA order (bare first in even pairs, ftsweep first in odd ones): a drift in the
            # machine's speed during a pair does not favour either side
            for run in pair[::-1] if i % 2 else pair:
                run()

    def med(runs: list[dict[str, float]], key: str) -> float:
        return round(statistics.median(r[key] for r in runs), 1)

    steps = statistics.median([b["steps_s"] for b in bares] + [t["trials_total_s"] for t in tuneds])

    out = {
        "trials": args.trials,
        "epochs_per_trial": args.epochs,
        "repeats": args.repeats,
        "mlflow_store": "fresh per run" if args.fresh_store else "existing",
        "bare_loop_process_s": med(bares, "wall_s"),
        "bare_loop_imports_s": med(bares, "imports_s"),
        "bare_loop_trials_s": med(bares, "loop_s"),
        "bare_loop_steps_s": med(bares, "steps_s"),
        "ftsweep_run_s": med(tuneds, "wall_s"),
        "ftsweep_trials_s": med(tuneds, "trials_total_s"),
        "harness_s": round(statistics.median(r["wall_s"] - r["trials_total_s"] for r in tuneds), 1),
        "overhead_ratio": round(med(tuneds, "wall_s") / med(bares, "wall_s"), 3),
        "pair_ratios": [round(t["wall_s"] / b["wall_s"], 3) for b, t in zip(bares, tuneds, strict=True)],
        # the same ratio with the training steps' own time (noisy by ±10 % here, and equal on
        # both sides on average) replaced by their median over all runs of both sides
        "step_adjusted_ratio": round(
            (steps + statistics.median(t["wall_s"] - t["trials_total_s"] for t in tuneds))
            / (steps + statistics.median(b["wall_s"] - b["steps_s"] for b in bares)),
            3,
        ),
        "runs_s": {
            "bare": [round(r["wall_s"], 1) for r in bares],
            "ftsweep": [round(r["wall_s"], 1) for r in tuneds],
        },
        "throughput_img_s": {m: round(throughput(m), 1) for m in ("ce", "scl")},
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
