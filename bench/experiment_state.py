"""The driver's cost of saving Tune's experiment state after every event
(``TUNE_GLOBAL_CHECKPOINT_S=0``, the runner's default) against Tune's own throttled default
(``auto``: every ≥ 10 s), on trivial trials so that nothing but the driver's bookkeeping counts.

The runner saves after every event so that a resume after a killed driver never names a trial
checkpoint Tune has already deleted (docs/design.md, "Resume"). A save writes the state of every
trial of the experiment, so its cost grows with the trials and the whole sweep's with their square:
this script measures it for ``--trials`` grid trials of ``--results`` reports each, each setting
in its own process (a fresh local Ray instance with 2 CPUs). JSON on stdout.

Usage: ``python bench/experiment_state.py [--trials 300 600] [--results 5]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

CHILD = r"""
import os, sys, tempfile, time
os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
import ray
from ray import tune
trials, results = int(sys.argv[1]), int(sys.argv[2])
def trainable(config):
    for i in range(results):
        tune.report({"v": config["x"] + i})
ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
t0 = time.perf_counter()
tune.Tuner(trainable, param_space={"x": tune.grid_search(list(range(trials)))},
           tune_config=tune.TuneConfig(reuse_actors=True),
           run_config=tune.RunConfig(storage_path=tempfile.mkdtemp(), verbose=0)).fit()
print(time.perf_counter() - t0)
"""


def run(period: str, trials: int, results: int) -> float:
    env = {k: v for k, v in os.environ.items() if k != "TUNE_GLOBAL_CHECKPOINT_S"}
    if period != "auto":
        env["TUNE_GLOBAL_CHECKPOINT_S"] = period
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(trials), str(results)],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return float(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, nargs="+", default=[300, 600])
    ap.add_argument("--results", type=int, default=5)
    args = ap.parse_args(argv)
    report = {"date": time.strftime("%Y-%m-%d"), "results_per_trial": args.results, "rows": []}
    for n in args.trials:
        row = {"trials": n}
        for period in ("auto", "0"):
            row[f"fit_s_{period}"] = round(run(period, n, args.results), 1)
        row["extra_s"] = round(row["fit_s_0"] - row["fit_s_auto"], 1)
        report["rows"].append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
