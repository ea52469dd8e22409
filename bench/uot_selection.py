"""Benchmark of the selection library: time and peak memory, printed as JSON.

Runs ``uot_scores`` (the paper's settings, ``UotSelectionConfig``'s defaults) on random unit means
for 1,000 x 200 units (dim 512) and 2,000 x 1,000 units (dim 2048), and ``cluster_units`` on
100,000 x 128 random features to 2,000 clusters (k-means++ and random initialisation).

Usage: ``python bench/uot_selection.py [--skip-kmeans]``. Peak memory is the tracemalloc peak of
the call (numpy allocations included); ``max_rss_mib`` is the process high-water mark so far.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np

from ftsweep.methods.uot_selection import UotSelectionConfig
from ftsweep.selection import cluster_units, uot_scores


def _measure(fn: Callable[[], Any]) -> tuple[Any, dict[str, float]]:
    tracemalloc.start()
    start = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return out, {
        "seconds": round(seconds, 3),
        "peak_traced_mib": round(peak / 2**20, 1),
        "max_rss_mib": round(rss_kib / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-kmeans", action="store_true")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_avg_1m_at_start": round(os.getloadavg()[0], 2),
        }
    }
    defaults = {f.name: f.default for f in dataclasses.fields(UotSelectionConfig)}
    paper = {**{k: defaults[k] for k in ("eps", "tau1", "tau2", "eps_c")}, "cost": "cosine"}
    for num_source, num_target, dim in [(1000, 200, 512), (2000, 1000, 2048)]:
        source = rng.normal(size=(num_source, dim)).astype(np.float32)
        target = rng.normal(size=(num_target, dim)).astype(np.float32)
        scores, stats = _measure(lambda s=source, t=target: uot_scores(s, t, **paper))
        stats["finite"] = bool(np.all(np.isfinite(scores)))
        results[f"uot_scores_{num_source}x{num_target}_dim{dim}"] = stats
    if not args.skip_kmeans:
        feats = rng.normal(size=(100_000, 128)).astype(np.float32)
        for init in ("k-means++", "random"):
            (_, assign), stats = _measure(lambda i=init: cluster_units(feats, 2000, seed=0, init=i))
            stats["non_empty_clusters"] = int(np.unique(assign).size)
            results[f"cluster_units_100000x128_to_2000_{init}"] = stats
    results["machine"]["load_avg_1m_at_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
