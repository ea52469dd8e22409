"""Run a validated sweep spec with Ray Tune: one ``tune.Tuner`` per (method, dataset) job."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftsweep.config import ConfigError
from ftsweep.config.spec import Job, SweepSpec

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

__all__ = ["SweepResult", "init_ray", "prepare_paths", "run_sweep"]

PATH_FIELDS = ("data_root", "cache_dir")


@dataclass
class SweepResult:
    """What a sweep produced: trial counts per job and where things went."""

    experiment: str
    storage: Path
    trials: int
    errors: int
    seconds: float
    jobs: dict[str, tuple[int, int]]


def prepare_paths(spec: SweepSpec, jobs: list[Job], results_dir: Path) -> list[Job]:
    """Make path fields absolute (Tune runs trials in their own directories) and resolve
    ``pretrained: auto`` to ftsweep's SimCLR checkpoint, building it once when missing."""
    from ftsweep.pretrain import SimCLRConfig, pretrain_simclr

    out = []
    for job in jobs:
        fixed = dict(job.fixed)
        for k in PATH_FIELDS:
            if k in fixed or k == "cache_dir":
                default = "data" if k == "data_root" else str(results_dir / "cache")
                fixed[k] = str(Path(fixed.get(k, default)).resolve())
        fixed.setdefault("data_root", str(Path("data").resolve()))
        pre = job.value("pretrained")
        if pre == "auto":
            fixed["pretrained"] = str(
                pretrain_simclr(
                    SimCLRConfig(dataset=auto_pretrain_dataset(job.dataset), backbone=job.value("backbone")),
                    root=results_dir / "pretrained",
                )
            )
        elif pre not in ("none", ""):
            fixed["pretrained"] = str(Path(pre).resolve())
        out.append(replace(job, fixed=fixed))
    return out


def auto_pretrain_dataset(dataset: str) -> str | None:
    """The pool ``pretrained: auto`` pretrains on: digits for digits and datasets built from it
    (``digits_source`` / ``digits_target`` hold digits train images; their test images are the
    digits test split, which pretraining never sees); None where no own recipe exists."""
    return "digits" if dataset == "digits" or dataset.startswith("digits_") else None


def check_pretrained(jobs: list[Job]) -> None:
    """``auto`` needs ftsweep's own recipe (digits + small_cnn); a path must exist."""
    for job in jobs:
        pre = job.value("pretrained")
        src = job.source.get("pretrained", "pretrained")
        if pre == "auto" and (
            auto_pretrain_dataset(job.dataset) is None or job.value("backbone") != "small_cnn"
        ):
            raise ConfigError(
                src if src != "spec" else "pretrained",
                pre,
                "auto builds ftsweep's SimCLR checkpoint for digits + small_cnn only; give a checkpoint path or none",
            )
        if pre not in ("auto", "none", "") and not Path(pre).is_file():
            raise ConfigError(
                src if src != "spec" else "pretrained",
                pre,
                "must be an existing checkpoint file, auto or none",
            )


def init_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Attach to a cluster (``address`` / ``$RAY_ADDRESS``, as under ``ray job submit``) or start a
    private local instance; one retry on a start-up timeout."""
    import ray

    if ray.is_initialized():
        return
    quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": "ERROR"}
    address = address or os.environ.get("RAY_ADDRESS")
    for attempt in range(2):
        try:
            if address:
                ray.init(address=address, **quiet)
            else:
                ray.init(
                    address="local", num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, **quiet
                )
            return
        except Exception:  # noqa: BLE001 — "node timed out during startup" happens on 2 cores
            if attempt:
                raise
            ray.shutdown()
            time.sleep(2)


def _param_space(spec: SweepSpec, job: Job) -> tuple[dict[str, Any], Any]:
    """The trial param space and the search algorithm."""
    from ray import tune
    from ray.tune.search import BasicVariantGenerator, Repeater
    from ray.tune.search.sample import Categorical

    space = {**job.fixed, **job.space}
    if spec.searcher in ("grid", "random"):
        space["seed"] = tune.grid_search(list(spec.seeds))
        return space, BasicVariantGenerator(constant_grid_search=True, random_state=spec.seeds[0])
    # optuna: grid axes become categorical; each suggestion is repeated once per seed
    from ray.tune.search.optuna import OptunaSearch

    for k, v in list(space.items()):
        if isinstance(v, Mapping) and set(v) == {"grid_search"}:
            space[k] = tune.choice(list(v["grid_search"]))
        elif isinstance(v, Categorical):
            space[k] = v
    space["_seeds"] = list(spec.seeds)
    searcher = OptunaSearch(seed=spec.seeds[0])
    return space, Repeater(searcher, repeat=len(spec.seeds), set_index=True)


def _scheduler(spec: SweepSpec) -> Any:
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    if spec.scheduler == "asha":
        opts = {"grace_period": 1, "reduction_factor": 3, **spec.asha}
        return ASHAScheduler(time_attr="training_iteration", **opts)
    return FIFOScheduler()


def run_sweep(
    spec: SweepSpec,
    *,
    results_dir: str | Path = "results",
    tracking_uri: str | None = None,
    address: str | None = None,
    num_cpus: int | None = None,
    log: bool = True,
) -> SweepResult:
    """Run every job of ``spec``; failing trials are recorded and the sweep goes on."""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    from ftsweep.tracking import git_commit, open_experiment
    from ftsweep.tracking import tracking_uri as resolve_uri

    t0 = time.perf_counter()
    results_dir = Path(results_dir).resolve()
    storage = results_dir / spec.name
    jobs = spec.jobs()
    check_pretrained(jobs)
    jobs = prepare_paths(spec, jobs, results_dir)
    uri = resolve_uri(tracking_uri)
    # the tracking store (a fresh SQLite schema takes seconds) is opened in a thread while Ray
    # starts and the first trial actor imports its modules; the loggers wait for it
    pool = ThreadPoolExecutor(max_workers=1)
    store = pool.submit(open_experiment, spec.experiment, uri)
    try:
        init_ray(address, num_cpus)
        base_tags = {
            "sweep": spec.name,
            "spec": str(spec.path or ""),
            "git_commit": git_commit(),
            "smoke": str(spec.smoke),
        }
        return _run_jobs(spec, jobs, storage, uri, store, base_tags, log=log, t0=t0)
    finally:
        pool.shutdown(wait=True)


def _run_jobs(
    spec: SweepSpec,
    jobs: list[Job],
    storage: Path,
    uri: str,
    store: Future[tuple[MlflowClient, str]],
    base_tags: dict[str, str],
    *,
    log: bool,
    t0: float,
) -> SweepResult:
    from ray import tune

    from ftsweep.registry import methods
    from ftsweep.tracking import MLflowTrialLogger

    total = errors = 0
    per_job: dict[str, tuple[int, int]] = {}
    for job in jobs:
        space, search_alg = _param_space(spec, job)
        logger = MLflowTrialLogger(
            spec.experiment,
            uri,
            base_tags,
            {"method": job.method, "label": job.label, "job": job.name},
            store=store,
        )
        resources = {"cpu": spec.resources.get("cpu", 1), "gpu": spec.resources.get("gpu", 0)}
        trainable = tune.with_resources(methods()[job.method].trainable, resources)
        num_samples = spec.num_samples * (len(spec.seeds) if spec.searcher == "optuna" else 1)
        tuner = tune.Tuner(
            trainable,
            param_space=space,
            tune_config=tune.TuneConfig(
                metric=spec.metric,
                mode=spec.mode,
                search_alg=search_alg,
                scheduler=_scheduler(spec),
                num_samples=num_samples,
                max_concurrent_trials=spec.max_concurrent_trials,
                reuse_actors=True,  # Trainables implement reset_config: no process start per trial
            ),
            run_config=tune.RunConfig(
                name=job.name,
                storage_path=str(storage),
                verbose=0,
                stop=spec.stop or None,
                callbacks=[logger],
                failure_config=tune.FailureConfig(max_failures=0),
                checkpoint_config=tune.CheckpointConfig(
                    checkpoint_frequency=spec.checkpoint_frequency, checkpoint_at_end=True, num_to_keep=1
                ),
            ),
        )
        if log:
            print(f"ftsweep: {job.name}: running {spec.searcher} search …", flush=True)
        grid = tuner.fit()
        n, bad = len(grid), sum(1 for r in grid if r.error is not None)
        per_job[job.name] = (n, bad)
        total, errors = total + n, errors + bad
        if log:
            print(f"ftsweep: {job.name}: {n} trials, {bad} failed", flush=True)
            for r in grid:
                if r.error is not None:
                    print(f"  failed trial: {str(r.error).strip().splitlines()[-1][:300]}", flush=True)
    return SweepResult(spec.experiment, storage, total, errors, time.perf_counter() - t0, per_job)
