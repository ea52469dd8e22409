"""Search efficiency against the papers' grids, on digits: how much of a full grid's compute each
searcher needs to find the grid's best configuration. JSON, resumable, ``--quick``.

Grids (the papers' own, on digits with the small CNN): SCHaNe λ × τ (7 × 4, App. A.2),
Core-tuning η × α (3 × 3, §5.1), COIN α × τ (5 × 5, Sec. 4.2/5.1). ``--quick``: the first 2 × 2
of each, 3 epochs, random init — a check that everything runs, in minutes.

1. **The grid, once**: every point is trained for ``--epochs`` epochs with the Ray-free method
   class (``ftsweep.methods.<m>``, one training seed), one process per point (``--workers``),
   and its per-epoch ``best/val/acc``, ``test/acc`` and ``sched/epoch`` are written to the JSON
   as soon as it finishes. The validation split is half the digits train part (~720 images:
   one image is 0.14 points).
2. **Each searcher replays the grid's curves**: an epoch of a configuration gives the same
   result whichever searcher asks for it (an epoch's randomness depends only on (seed, epoch)),
   so a searcher is driven on the recorded curves, one trial at a time, through the runner's own
   classes — ``ftsweep.optuna_search.GridOptunaSearch`` (Tune's ``OptunaSearch`` with the grid
   axes as ordered indices and no cell run twice, as ``searcher: optuna`` builds it: ``tpe`` is
   Optuna's TPE with its 10 random start-up trials, ``gp`` Optuna's GP with axes + 1 = 3) and the
   runner's ASHA (``ftsweep.runner.job_scheduler`` with grace 1, reduction factor 3, time
   ``sched/epoch``; ``on_trial_add`` / ``on_trial_result`` / ``on_trial_complete`` with stub
   trials, as Ray's scheduler tests do). ``random`` is the grid in a random order. Each searcher
   gets as many trials as the grid has points. Searchers: random, asha (random order + ASHA),
   asha-g5 (grace period 5 epochs: the runner's default of a quarter of 20 epochs), tpe,
   tpe+asha, tpe+asha-g5, gp, gp+asha-g5; each at ``--searcher-seeds`` seeds, without and with
   ``points_to_evaluate`` = the paper's default configuration (``seeded``).
3. **HyperBand and BOHB run in Ray Tune itself** on the same curves (:func:`tune_replay`): a
   function trainable replays a configuration's recorded epochs (its checkpoint is the epoch
   reached, so a trial HyperBand pauses resumes where it stopped and pays no epoch twice) on a
   local Ray instance with one CPU, i.e. one trial at a time as in 2. ``hyperband``: the random
   order of 2 + Tune's ``HyperBandScheduler``; ``bohb``: ``TuneBOHB`` + ``HyperBandForBOHB``
   (both with time ``sched/epoch``, reduction factor 3, ``max_t`` = the epochs). BOHB needs
   ``pip install hpbandster ConfigSpace statsmodels`` (not in requirements.txt); without them it
   is skipped with a line saying so. ``tests/test_search_efficiency_bench.py`` checks that ASHA
   replayed in Tune pays exactly the epochs :func:`simulate` counts.

Reported per grid and searcher (mean over seeds): ``frac_to_target`` — epochs run until some
trial's ``best/val/acc`` is within 1 point of the grid's best, ÷ the grid's epochs (None where a
seed never got there; ``reached`` counts the seeds that did); ``frac_total`` — the whole search's
epochs ÷ the grid's; ``pick_test`` / ``pick_val`` — test / validation accuracy of the trial the
searcher picks at the end (best ``best/val/acc`` it saw); ``at_20pct_test`` — the same for the
pick after 20 % of the grid's epochs.

4. **Several training seeds** (``--train-seeds 0 1 2``): the grid is also trained at the other
   seeds, and the searchers of 2 (not HyperBand / BOHB) replay every configuration once per
   seed, as a spec's ``seeds: [0, 1, 2]`` runs it (:func:`simulate`); the grid's best, the target
   and the picks are on the seeds' mean (``summary_seeds`` in the JSON). Training seed 0 is
   always the first. The searchers of 2 also replay each other seed's grid alone, one training
   seed per configuration as in 2 (``seed_curves.<t>.runs``): one seed's grid is one draw of
   its noise, and ``summary_single`` pools the one-seed runs of every seed's grid, each against
   its own grid's best.

5. **Configurations at once** (``--concurrency 1 4``): the searchers of 2 also replay with 4
   configurations running at once (a cluster's trial slots; :func:`simulate`), keyed
   ``<searcher>|c=4|seed=<s>`` in the JSON; a searcher is then asked for the next configuration
   while the others still run, and ASHA compares configurations that reach a rung together.

Usage: ``python bench/search_efficiency.py [--quick] [--out FILE] [--workers 1] [--train-seeds 0 1 2]
[--concurrency 1 4]``;
rerunning resumes (finished grid points and searcher runs are kept while the settings are
unchanged).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
METRIC, MODE = "best/val/acc", "max"
TARGET_GAP = 1.0  # points
BUDGET_FRAC = 0.2
#: bump when :func:`simulate` changes: the searcher runs are redone, the grid's curves kept
SIM_VERSION = 3

#: name → (method, axes, the paper's default configuration, fixed method values)
GRIDS: dict[str, tuple[str, dict[str, list[float]], dict[str, float], dict[str, Any]]] = {
    "schane_lambda_tau": (
        "schane",
        {"lambda_": [0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0], "temperature": [0.1, 0.3, 0.5, 0.7]},
        {"lambda_": 0.9, "temperature": 0.5},
        {"optimizer": "sgd", "weight_decay": 5e-4},  # as measured: SGD like the other two grids
    ),
    "core_tuning_eta_alpha": (
        "core_tuning",
        {"eta": [0.1, 1.0, 10.0], "mixup_alpha": [0.1, 1.0, 10.0]},
        {"eta": 1.0, "mixup_alpha": 1.0},
        {"lambda_p": 0.8, "lambda_n": 0.8, "temperature": 0.07},
    ),
    "coin_alpha_tau": (
        "coin",
        {"alpha": [0.1, 0.3, 0.5, 0.7, 0.9], "temperature": [0.07, 0.1, 0.3, 0.5, 0.7]},
        {"alpha": 0.7, "temperature": 0.3},
        {},
    ),
}
SEARCHERS = ("random", "asha", "asha-g5", "tpe", "tpe+asha", "tpe+asha-g5", "gp", "gp+asha-g5")
#: run through Ray Tune's own loop (pausing schedulers): :func:`tune_replay`
TUNE_SEARCHERS = ("hyperband", "bohb")


def settings(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "epochs": args.epochs,
        "labels_per_class": args.labels_per_class,
        "val_fraction": 0.5,
        "batch_size": 32,
        "lr": 0.05,
        "seed": 0,
        "pretrained": "none" if args.quick else "auto",
        "keep": 2 if args.quick else None,
    }


def grid_axes(name: str, keep: int | None) -> dict[str, list[float]]:
    """The grid's axes; with ``keep`` (``--quick``) the first values and the default's."""
    _, axes, default, _ = GRIDS[name]
    if not keep:
        return {k: list(v) for k, v in axes.items()}
    out = {}
    for k, v in axes.items():
        vals = [x for x in v[:keep] if x != default[k]][: keep - 1] + [default[k]]
        out[k] = sorted(vals)
    return out


def grid_points(axes: dict[str, list[float]]) -> list[dict[str, float]]:
    keys = list(axes)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*axes.values())]


def point_key(point: dict[str, Any]) -> str:
    """A grid point's key in the curves: the runner's key of a configuration."""
    from ftsweep.schedulers import group_key

    return group_key(point)


# ---- 1. the grid ----------------------------------------------------------------------------
def train_point(method: str, config: dict[str, Any]) -> list[dict[str, float | None]]:
    """Train one grid point; its per-epoch curve."""
    import torch

    torch.set_num_threads(1)
    from ftsweep.registry import methods

    m = methods()[method].trainable.method_cls(config)
    curve = []
    for _ in range(config["epochs"]):
        r = m.step()
        test = r.get("test/acc")
        curve.append(
            {"sched": r["sched/epoch"], "val": r[METRIC], "test": None if test is None else float(test)}
        )
    return curve


def pretrained_path(kind: str) -> str:
    if kind == "none":
        return "none"
    from ftsweep.pretrain import SimCLRConfig, pretrain_simclr

    return str(
        pretrain_simclr(
            SimCLRConfig(dataset="digits", backbone="small_cnn"), root=ROOT / "results/pretrained"
        )
    )


def run_grid(name: str, state: dict[str, Any], s: dict[str, Any], workers: int, save: Any) -> None:
    method, _, _, fixed = GRIDS[name]
    points = grid_points(grid_axes(name, s["keep"]))
    todo = [p for p in points if point_key(p) not in state["curves"]]
    if not todo:
        return
    base = {
        "dataset": "digits",
        "backbone": "small_cnn",
        "pretrained": pretrained_path(s["pretrained"]),
        "device": "cpu",
        "data_root": str(ROOT / "data"),
        "num_workers": 0,
        **{k: s[k] for k in ("epochs", "labels_per_class", "val_fraction", "batch_size", "lr", "seed")},
        **fixed,
    }
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(train_point, method, {**base, **p}): p for p in todo}
        for fut in as_completed(futures):
            p = futures[fut]
            state["curves"][point_key(p)] = fut.result()
            save()
            print(f"  {name}: {len(state['curves'])}/{len(points)} points", file=sys.stderr, flush=True)
    state["train_s"] = state.get("train_s", 0.0) + time.perf_counter() - t0
    save()


# ---- 2. searchers on the recorded curves ----------------------------------------------------
def _scheduler(method: str, epochs: int, kind: str = "asha", grace: int = 1, seeds: int = 1) -> Any:
    """The runner's scheduler (``job_scheduler``) for a spec with ``seeds`` seeds: ASHA with
    ``asha: {grace_period: grace}`` (with several seeds the runner's ``SeedGroupASHA``, which ranks
    configurations), or HyperBand."""
    from ftsweep.config.spec import parse_spec
    from ftsweep.runner import job_scheduler

    raw = {"name": "bench", "method": method, "dataset": "digits", "pretrained": "none",
           "config": {"epochs": epochs}, "scheduler": kind, "seeds": list(range(seeds))}  # fmt: skip
    if kind == "asha":
        raw["asha"] = {"grace_period": min(grace, epochs)}  # --quick: 3 epochs
    sched = job_scheduler(parse_spec(raw))
    sched.set_search_properties(METRIC, MODE)
    return sched


class _Order:
    """Random search: the grid in a random order (the seeded default first)."""

    def __init__(self, points: list[dict[str, Any]], seed: int, first: dict[str, Any] | None) -> None:
        import numpy as np

        rest = [p for p in points if first is None or point_key(p) != point_key(first)]
        order = np.random.default_rng(seed).permutation(len(rest))
        self.queue = ([first] if first else []) + [rest[i] for i in order]

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        return self.queue.pop(0) if self.queue else None

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        pass


def _optuna(axes: dict[str, list[float]], seed: int, first: dict[str, Any] | None, sampler: str) -> Any:
    """The runner's Optuna searcher (``ftsweep.optuna_search``, as ``searcher: optuna`` with
    ``optuna: {sampler: ...}`` builds it): ordered grid axes, no cell twice."""
    import logging
    import warnings

    import optuna

    from ftsweep.optuna_search import GridOptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("ray.tune.search.optuna").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    space = {k: {"grid_search": list(v)} for k, v in axes.items()}
    return GridOptunaSearch(space, METRIC, MODE, seed=seed, sampler=sampler, points=[first] if first else ())


def asha_grace(searcher: str) -> int:
    """ASHA's grace period in a searcher's name: ``asha-g5`` → 5 epochs, ``asha`` → 1 (Tune's
    default)."""
    return int(searcher.rsplit("-g", 1)[1]) if "asha-g" in searcher else 1


Curves = dict[str, list[dict[str, Any]]]


def seed_mean(curves: list[Curves], key: str, epoch: int) -> dict[str, float | None]:
    """``val`` and ``test`` of point ``key`` at ``epoch``, averaged over the training seeds'
    curves (``test`` None where a seed has none)."""
    at = [c[key][epoch] for c in curves]
    tests = [x["test"] for x in at]
    return {
        "val": sum(x["val"] for x in at) / len(at),
        "test": None if None in tests else sum(tests) / len(tests),
    }


def mean_finals(curves: list[Curves]) -> dict[str, dict[str, float | None]]:
    """Each point's last epoch, averaged over the training seeds' curves (:func:`seed_mean`)."""
    return {k: seed_mean(curves, k, -1) for k in curves[0]}


def grid_target(curves: list[Curves]) -> float:
    """The value a searcher must reach: the grid's best final ``best/val/acc`` (on the training
    seeds' mean) less :data:`TARGET_GAP`."""
    return max(f["val"] for f in mean_finals(curves).values()) - TARGET_GAP


def simulate(
    curves: Curves | list[Curves],
    axes: dict[str, list[float]],
    method: str,
    epochs: int,
    searcher: str,
    seed: int,
    default: dict[str, Any] | None,
    concurrency: int = 1,
) -> dict[str, Any]:
    """One searcher run on the recorded curves, ``concurrency`` configurations at a time.

    ``curves``: one training seed's curves, or a list of several seeds' — each configuration then
    runs once per seed, as the runner's ``Repeater`` suggests a configuration's seed trials
    together: the seeds' trials advance an epoch at a time in step, the runner's ASHA for several
    seeds (``ftsweep.schedulers.SeedGroupASHA``) ranks the configurations by their seeds' mean and
    stops a configuration's seeds together, the searcher is told the seeds' mean of their last
    ``best/val/acc``, and the
    target and the picks are on the seeds' mean (an epoch counts for them once every seed of the
    configuration has run it).

    ``concurrency``: configurations running at once (a cluster of ``concurrency × seeds``
    trial slots). The running configurations advance in lockstep, one epoch each per round, in
    the order they started (every epoch takes the same time); a configuration that ends frees
    its slot for the searcher's next suggestion at the next round, and the searcher is asked
    while the others still run (it has not heard their results yet). ``concurrency = 1`` is the
    sequential replay: each configuration ends before the next is suggested."""
    from types import SimpleNamespace

    from ray.tune.experiment import Trial
    from ray.tune.schedulers import TrialScheduler

    runs = curves if isinstance(curves, list) else [curves]
    n = len(runs)
    points = grid_points(axes)
    grid_epochs = len(points) * epochs * n
    target = grid_target(runs)
    sampler = searcher.split("+")[0]
    search = (
        _optuna(axes, seed, default, sampler) if sampler in ("tpe", "gp") else _Order(points, seed, default)
    )
    asha = _scheduler(method, epochs, "asha", asha_grace(searcher), n) if "asha" in searcher else None
    trials: list[Trial] = []
    controller = SimpleNamespace(get_trials=lambda: trials)
    spent, to_target, seen = 0, None, []  # seen: (val, test, epochs spent when seen)
    running: list[dict[str, Any]] = []  # the configurations running, in the order they started
    suggested = 0

    def start() -> bool:
        """Ask the searcher for the next configuration; False when it has none now."""
        nonlocal suggested
        if suggested >= len(points):
            return False
        i = suggested
        config = search.suggest(f"t{i}")
        if not isinstance(config, dict):  # FINISHED, or waiting for the running ones
            return False
        suggested += 1
        point = {k: config[k] for k in axes}
        group = [
            Trial("__fake", trial_id=f"t{i}s{j}", stub=True, config={**point, "seed": j}) for j in range(n)
        ]
        for trial in group:
            trials.append(trial)
            if asha is not None:
                asha.on_trial_add(controller, trial)
        running.append({"i": i, "key": point_key(point), "group": group, "alive": list(range(n)),
                        "last": [None] * n, "epoch": 0})  # fmt: skip
        return True

    def finish(c: dict[str, Any]) -> None:
        for j, trial in enumerate(c["group"]):
            if asha is not None:
                asha.on_trial_complete(controller, trial, c["last"][j])
            trial.status = Trial.TERMINATED
        # the Repeater's report: the seeds' mean of their last result
        search.on_trial_complete(f"t{c['i']}", result={METRIC: sum(x[METRIC] for x in c["last"]) / n})

    while True:
        while len(running) < concurrency and start():
            pass
        if not running:
            break
        for c in list(running):  # one round: every running configuration runs one epoch
            key, e, alive = c["key"], c["epoch"], c["alive"]
            every = len(alive) == n  # every seed runs this epoch
            for j in list(alive):
                r = runs[j][key][e]
                spent += 1
                c["last"][j] = {"sched/epoch": r["sched"], METRIC: r["val"], "test/acc": r["test"]}
                if (
                    asha is not None
                    and asha.on_trial_result(controller, c["group"][j], c["last"][j]) == TrialScheduler.STOP
                ):
                    alive.remove(j)
            sched = runs[0][key][e]["sched"]
            if every and sched > 0:  # a selection that can count (not COIN's stage 1, not warm-up)
                mean = seed_mean(runs, key, e)
                seen.append((mean["val"], mean["test"], spent))
                if to_target is None and mean["val"] >= target:
                    to_target = spent
            c["epoch"] += 1
            if not alive or c["epoch"] == epochs:
                running.remove(c)
                finish(c)

    return search_report(seen, spent, to_target, grid_epochs, len(trials))


def search_report(
    seen: list[tuple[float, float | None, int]],
    spent: int,
    to_target: int | None,
    grid_epochs: int,
    trials: int,
) -> dict[str, Any]:
    """A searcher run's figures from ``seen`` — (validation, test, epochs paid by then) of every
    epoch whose selection counts — and the epochs paid in all and until the target."""

    def pick(until: float) -> tuple[float | None, float | None]:
        """The best validation seen by epoch ``until`` and the test accuracy of that epoch."""
        got = [(v, t) for v, t, e in seen if e <= until]
        return max(got, key=lambda vt: vt[0]) if got else (None, None)

    pick_val, pick_test = pick(math.inf)
    return {
        "epochs": spent,
        "frac_total": spent / grid_epochs,
        "frac_to_target": None if to_target is None else to_target / grid_epochs,
        "pick_val": pick_val,
        "pick_test": pick_test,
        "at_20pct_test": pick(BUDGET_FRAC * grid_epochs)[1],
        "trials": trials,
    }


def _replay(config: dict[str, Any], curves: dict[str, list[dict[str, Any]]], keys: list[str]) -> None:
    """Function trainable: report a configuration's recorded epochs from where its checkpoint
    (the epoch reached) left off."""
    import tempfile

    from ray import tune

    start, ck = 0, tune.get_checkpoint()
    if ck is not None:
        with ck.as_directory() as d:
            start = int(Path(d, "epoch").read_text())
    curve = curves[point_key({k: config[k] for k in keys})]
    for e in range(start, len(curve)):
        r = curve[e]
        with tempfile.TemporaryDirectory() as d:
            Path(d, "epoch").write_text(str(e + 1))
            metrics = {
                "sched/epoch": r["sched"],
                METRIC: r["val"],
                "test/acc": r["test"],
                "replay/epoch": e + 1,
            }
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(d))


def tune_replay(
    curves: Curves,
    axes: dict[str, list[float]],
    method: str,
    epochs: int,
    searcher: str,
    seed: int,
    default: dict[str, Any] | None,
    storage: Path,
) -> dict[str, Any]:
    """One searcher run in Ray Tune on the recorded curves (``hyperband``, ``bohb``; ``asha`` for
    the cross-check with :func:`simulate`), one trial at a time; the same report as
    :func:`simulate` (each trial asks for every CPU of the running Ray instance)."""
    import ray
    from ray import tune
    from ray.tune.schedulers import HyperBandForBOHB

    from ftsweep.routing import VariantSearcher

    points = grid_points(axes)
    grid_epochs = len(points) * epochs
    target = grid_target([curves])
    param_space: dict[str, Any] = {}
    if searcher == "bohb":
        from ray.tune.search.bohb import TuneBOHB

        param_space = {k: tune.choice(v) for k, v in axes.items()}
        search = TuneBOHB(
            metric=METRIC, mode=MODE, seed=seed, points_to_evaluate=[default] if default else None
        )
        # BOHB's own HyperBand, with the runner's HyperBand settings
        sched = HyperBandForBOHB(
            time_attr="sched/epoch", max_t=epochs, reduction_factor=3, metric=METRIC, mode=MODE
        )
    else:
        search = VariantSearcher(_Order(points, seed, default).queue, METRIC, MODE)
        kind = "asha" if "asha" in searcher else "hyperband"
        sched = _scheduler(method, epochs, kind, asha_grace(searcher))
    log: list[tuple[float, float | None, float]] = []  # (sched, val, test) of every epoch paid
    reached: dict[str, int] = {}  # trial → epochs replayed

    class Count(tune.Callback):
        def on_trial_result(
            self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
        ) -> None:
            log.append((result["sched/epoch"], result[METRIC], result.get("test/acc")))
            # a paused trial resumes at its next epoch: every epoch is paid once
            if result["replay/epoch"] != reached.get(trial.trial_id, 0) + 1:
                raise RuntimeError(
                    f"{trial} replayed epoch {result['replay/epoch']} after {reached.get(trial.trial_id)}"
                )
            reached[trial.trial_id] = result["replay/epoch"]

    tuner = tune.Tuner(
        # every CPU of the instance per trial: one trial at a time, as in :func:`simulate`
        tune.with_resources(
            tune.with_parameters(_replay, curves=curves, keys=list(axes)),
            {"cpu": ray.cluster_resources().get("CPU", 1)},
        ),
        param_space=param_space,
        tune_config=tune.TuneConfig(
            search_alg=search,
            scheduler=sched,
            num_samples=len(points),
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(storage_path=str(storage), verbose=0, callbacks=[Count()]),
    )
    grid = tuner.fit()
    seen = [(v, t, i + 1) for i, (sched_e, v, t) in enumerate(log) if sched_e > 0]
    to_target = next((e for v, _, e in seen if v >= target), None)
    return search_report(seen, len(log), to_target, grid_epochs, len(grid))


def searcher_runs(
    searchers: tuple[str, ...], seeds: list[int], default: dict[str, Any], axes: dict[str, list[float]]
) -> list[tuple[str, str, int, dict[str, Any] | None]]:
    """Every searcher run to replay, unseeded and seeded with the paper's default, at every
    searcher seed: ``(key in the JSON, searcher, seed, points_to_evaluate's point or None)``."""
    return [
        (
            f"{s}{'+default' if seeded else ''}|seed={seed}",
            s,
            seed,
            {k: default[k] for k in axes} if seeded else None,
        )
        for s, seeded, seed in itertools.product(searchers, (False, True), seeds)
    ]


def at_concurrency(key: str, concurrency: int) -> str:
    """A searcher run's key in the JSON at ``concurrency`` configurations at once:
    ``asha|seed=0`` → ``asha|c=4|seed=0`` (unchanged at 1, the sequential replay)."""
    if concurrency == 1:
        return key
    label, seed = key.rsplit("|seed=", 1)
    return f"{label}|c={concurrency}|seed={seed}"


def replay_all(
    runs: dict[str, Any],
    curves: Curves | list[Curves],
    axes: dict[str, list[float]],
    method: str,
    epochs: int,
    searcher_seeds: list[int],
    default: dict[str, Any],
    concurrency: Iterable[int],
    save: Any,
) -> None:
    """Every :data:`SEARCHERS` run (:func:`searcher_runs`) at every ``concurrency`` that ``runs``
    lacks, replayed by :func:`simulate` on ``curves`` and saved as it finishes."""
    for c, (key, searcher, seed, first) in itertools.product(
        concurrency, searcher_runs(SEARCHERS, searcher_seeds, default, axes)
    ):
        if at_concurrency(key, c) not in runs:
            runs[at_concurrency(key, c)] = simulate(curves, axes, method, epochs, searcher, seed, first, c)
            save()


def bohb_available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("hpbandster", "ConfigSpace", "statsmodels"))


def summarize(
    name: str,
    g: dict[str, Any],
    axes: dict[str, list[float]],
    curves: list[Curves] | None = None,
    runs_key: str = "runs",
) -> dict[str, Any]:
    """A grid's figures: the grid's best (on the seeds' mean where ``curves`` lists several
    training seeds) and, per searcher, the means over searcher seeds of ``g[runs_key]``."""
    finals = mean_finals(curves or [g["curves"]])
    best_key = max(finals, key=lambda k: finals[k]["val"])
    out = {
        "grid_points": len(finals),
        "grid_best_val": finals[best_key]["val"],
        "grid_best_config": json.loads(best_key),
        "grid_best_test": finals[best_key]["test"],
        "default_val": finals.get(point_key(GRIDS[name][2]), {}).get("val"),
        "searchers": {},
    }
    runs: dict[str, list[dict[str, Any]]] = {}
    for key, r in g[runs_key].items():
        runs.setdefault(key.rsplit("|seed=", 1)[0], []).append(r)
    for label, rs in sorted(runs.items()):
        hit = [r["frac_to_target"] for r in rs if r["frac_to_target"] is not None]

        def mean(key: str, rs: list[dict[str, Any]] = rs) -> float | None:
            vals = [r[key] for r in rs if r[key] is not None]
            return sum(vals) / len(vals) if vals else None

        out["searchers"][label] = {
            "seeds": len(rs),
            "reached": len(hit),
            "frac_to_target": sum(hit) / len(hit) if len(hit) == len(rs) else None,
            "frac_to_target_max": max(hit) if len(hit) == len(rs) else None,
            "frac_total": mean("frac_total"),
            "pick_val": mean("pick_val"),
            "pick_test": mean("pick_test"),
            "at_20pct_test": mean("at_20pct_test"),
        }
    return out


def searcher_of(key: str) -> str:
    """The searcher (the sampler, for ``tpe+asha…``) of a run's key in the JSON:
    ``gp+asha-g5+default|c=4|seed=0`` → ``gp``."""
    return key.split("+")[0].split("|")[0]


def replayed(runs: dict[str, Any]) -> dict[str, Any]:
    """The runs of ``runs`` that :func:`simulate` replayed (not HyperBand / BOHB's, in Tune)."""
    return {k: r for k, r in runs.items() if searcher_of(k) in SEARCHERS}


def summarize_single(
    name: str, grids: dict[int, tuple[Curves, dict[str, Any]]], axes: dict[str, list[float]]
) -> dict[str, Any]:
    """One training seed per configuration, on several training seeds' grids: ``grids`` maps a
    training seed to (its curves, the searcher runs replayed on them alone). Each seed's grid is
    a one-seed grid of its own, with its own best and target; a searcher's figures are the means
    over every (training seed, searcher seed) run (``seeds`` counts them), the grid's best and
    the paper's default the means over the training seeds (``grid_best_config``: one per seed),
    and ``per_train_seed`` has each seed's own :func:`summarize`."""
    own = {t: replayed(runs) for t, (_, runs) in grids.items()}
    per = {t: summarize(name, {"curves": c, "runs": own[t]}, axes) for t, (c, _) in grids.items()}
    pooled = {}  # every run, keyed apart by (training seed, searcher seed)
    for t, runs in own.items():
        for key, r in runs.items():
            label, seed = key.rsplit("|seed=", 1)
            pooled[f"{label}|seed={t}.{seed}"] = r
    out = summarize(name, {"curves": next(iter(grids.values()))[0], "runs": pooled}, axes)

    def mean(key: str) -> float | None:
        vals = [x[key] for x in per.values() if x[key] is not None]
        return sum(vals) / len(vals) if vals else None

    out.update(
        grid_best_val=mean("grid_best_val"),
        grid_best_test=mean("grid_best_test"),
        default_val=mean("default_val"),
        grid_best_config=[per[t]["grid_best_config"] for t in grids],
        train_seeds=list(grids),
        per_train_seed={str(t): x for t, x in per.items()},
    )
    return out


def format_table(report: dict[str, Any]) -> str:
    """Markdown: one row per (grid, searcher); fractions of the grid's epochs in %."""

    def pct(x: float | None) -> str:
        return "—" if x is None else f"{100 * x:.0f} %"

    def acc(x: float | None) -> str:
        return "—" if x is None else f"{x:.2f}"

    lines = [
        "| grid | searcher | to best − 1 pt | reached | whole search | pick test | pick test at 20 % |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in report.items():
        lines.append(
            f"| {name} | grid ({r['grid_points']} points) | 100 % | | 100 % | {acc(r['grid_best_test'])} | |"
        )
        for label, x in r["searchers"].items():
            lines.append(
                f"| | {label} | {pct(x['frac_to_target'])} | {x['reached']}/{x['seeds']} | "
                f"{pct(x['frac_total'])} | {acc(x['pick_test'])} | {acc(x['at_20pct_test'])} |"
            )
    return "\n".join(lines)


def ray_once() -> None:
    """A local Ray instance with one CPU (one replayed trial at a time), started once."""
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, configure_logging=False)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="2 × 2 of each grid, 3 epochs, random init")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--workers", type=int, default=1, help="grid points trained at once")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--labels-per-class", type=int, default=None)
    ap.add_argument("--searcher-seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument(
        "--train-seeds",
        type=int,
        nargs="+",
        default=[0],
        help="training seeds per configuration: with several, the searchers also run on the seeds' mean",
    )
    ap.add_argument(
        "--concurrency",
        type=int,
        nargs="+",
        default=[1],
        help="configurations running at once in the replays (1: one at a time; HyperBand and BOHB at 1 only)",
    )
    ap.add_argument("--grids", nargs="+", default=list(GRIDS), choices=list(GRIDS))
    args = ap.parse_args(argv)
    args.epochs = args.epochs or (3 if args.quick else 20)
    args.labels_per_class = args.labels_per_class or (5 if args.quick else 10)
    out = args.out or ROOT / "results/bench" / (
        "search_efficiency_quick.json" if args.quick else "search_efficiency.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    s = settings(args)
    state = json.loads(out.read_text()) if out.is_file() else {}
    state.setdefault("grids", {})

    def save() -> None:
        tmp = out.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(state, indent=1))
        os.replace(tmp, out)

    for name in args.grids:
        method, _, default, fixed = GRIDS[name]
        axes = grid_axes(name, s["keep"])
        digest = hashlib.sha256(json.dumps([s, axes, fixed], sort_keys=True).encode()).hexdigest()[:12]
        g = state["grids"].get(name)
        if g is None or g.get("digest") != digest:  # new or changed settings: start the grid afresh
            g = state["grids"][name] = {
                "digest": digest,
                "settings": s,
                "axes": axes,
                "curves": {},
                "runs": {},
            }
        print(f"{name}: grid of {len(grid_points(axes))} points × {s['epochs']} epochs", file=sys.stderr)
        run_grid(name, g, s, args.workers, save)
        if g.get("sim") != SIM_VERSION:  # redo the replayed searchers; Tune's runs are kept
            keep = {k: r for k, r in g["runs"].items() if searcher_of(k) in TUNE_SEARCHERS}
            g["sim"], g["runs"] = SIM_VERSION, keep
        tune_searchers = [t for t in TUNE_SEARCHERS if t != "bohb" or bohb_available()]
        if "bohb" not in tune_searchers:
            print("  bohb skipped: pip install hpbandster ConfigSpace statsmodels", file=sys.stderr)
        for key, searcher, seed, first in searcher_runs(
            tuple(tune_searchers), args.searcher_seeds, default, axes
        ):
            if key not in g["runs"]:
                with tempfile.TemporaryDirectory() as storage:
                    ray_once()
                    g["runs"][key] = tune_replay(
                        g["curves"], axes, method, s["epochs"], searcher, seed, first, Path(storage)
                    )
                save()
        # one at a time always (the tables' reference), then the same searchers on a cluster
        at_once = (1, *(c for c in args.concurrency if c > 1))
        replay_all(
            g["runs"], g["curves"], axes, method, s["epochs"], args.searcher_seeds, default, at_once, save
        )
        g["summary"] = summarize(name, g, axes)
        save()
        extra = [t for t in args.train_seeds if t != s["seed"]]
        if extra:  # several training seeds: each configuration runs once per seed
            per_seed = g.setdefault("seed_curves", {})
            for t in extra:
                sub = per_seed.setdefault(str(t), {"curves": {}})
                print(f"{name}: training seed {t}", file=sys.stderr)
                run_grid(name, sub, {**s, "seed": t}, args.workers, save)
            curves = [g["curves"]] + [per_seed[str(t)]["curves"] for t in extra]
            # the seeds, and the version of this replay (2: the runner's ASHA ranks configurations)
            label = "+".join(str(t) for t in [s["seed"], *extra]) + "|v2"
            if g.get("seeds_label") != label:  # other training seeds: redo their searcher runs
                g["seeds_label"], g["runs_seeds"] = label, {}
            replay_all(
                g["runs_seeds"],
                curves,
                axes,
                method,
                s["epochs"],
                args.searcher_seeds,
                default,
                args.concurrency,
                save,
            )
            g["summary_seeds"] = summarize(name, g, axes, curves, "runs_seeds")
            # and one training seed per configuration again, on each other seed's grid alone
            for t in extra:
                sub = per_seed[str(t)]
                if sub.get("sim") != SIM_VERSION:
                    sub["sim"], sub["runs"] = SIM_VERSION, {}
                replay_all(
                    sub["runs"], sub["curves"], axes, method, s["epochs"], args.searcher_seeds, default,
                    at_once, save,
                )  # fmt: skip
            g["summary_single"] = summarize_single(
                name,
                {s["seed"]: (g["curves"], g["runs"])}
                | {t: (per_seed[str(t)]["curves"], per_seed[str(t)]["runs"]) for t in extra},
                axes,
            )
            save()
    report = {name: state["grids"][name]["summary"] for name in args.grids}
    print(json.dumps(report, indent=1))
    print(format_table(report), file=sys.stderr)
    if len(args.train_seeds) > 1:
        seeds = " ".join(map(str, args.train_seeds))
        single = {n: state["grids"][n]["summary_single"] for n in args.grids}
        print(f"\none training seed, on each of the grids of seeds {seeds}:", file=sys.stderr)
        print(format_table(single), file=sys.stderr)
        seeded_report = {n: state["grids"][n]["summary_seeds"] for n in args.grids}
        print(f"\ntraining seeds {seeds} (the seeds' mean):", file=sys.stderr)
        print(format_table(seeded_report), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
