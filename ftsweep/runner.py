"""Run a validated sweep spec with Ray Tune: every (method, dataset) job in one experiment.

All jobs' trials share the cluster (``ftsweep.routing``: one Tune experiment, each job with its
own searcher and scheduler), under a version folder of the spec (``ftsweep.versions``). A run is
either new or the resumption of an unfinished version (``Tuner.restore``). SIGINT and SIGTERM
stop the whole sweep through Tune's own graceful stop, which saves what a resume needs; a second
signal leaves at once. Afterwards every MLflow run of the version is reconciled with Tune's
final state: FINISHED, FAILED, or KILLED for a trial that did not end.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from ftsweep.config import ConfigError
from ftsweep.config.spec import Job, SweepSpec
from ftsweep.versions import Version

__all__ = ["SweepResult", "check_address", "init_ray", "prepare_paths", "run_spec", "run_sweep"]

PATH_FIELDS = ("data_root", "cache_dir")


@dataclass
class SweepResult:
    """What a sweep (version) produced.

    Attributes:
        trials: the trials the spec asks for.
        finished / errors / interrupted: trials that ended well, failed, or did not end.
        failures: one line per failed trial (job, seed, reason).
        signal: ``SIGINT`` / ``SIGTERM`` when a signal stopped the sweep.
    """

    experiment: str
    storage: Path
    version: int
    trials: int
    finished: int
    errors: int
    interrupted: int
    seconds: float
    jobs: dict[str, tuple[int, int]]
    failures: list[str] = field(default_factory=list)
    signal: str | None = None
    sweep_run_id: str | None = None


def prepare_paths(spec: SweepSpec, jobs: list[Job], results_dir: Path) -> list[Job]:
    """Make path fields absolute (Tune runs trials in their own directories) and resolve
    ``pretrained: auto`` to ftsweep's SimCLR checkpoint, building it once when missing."""
    from ftsweep.backbones import is_named_weights
    from ftsweep.config.space import is_grid
    from ftsweep.pretrain import SimCLRConfig, pretrain_simclr

    out = []
    for job in jobs:
        fixed = dict(job.fixed)
        for k in PATH_FIELDS:
            if k in fixed or k == "cache_dir":
                default = "data" if k == "data_root" else str(results_dir / "cache")
                fixed[k] = str(Path(fixed.get(k, default)).resolve())
        fixed.setdefault("data_root", str(Path("data").resolve()))

        def checkpoint(pre: Any, job: Job = job) -> Any:
            if pre == "auto":
                return str(
                    pretrain_simclr(
                        SimCLRConfig(
                            dataset=auto_pretrain_dataset(job.dataset), backbone=job.value("backbone")
                        ),
                        root=results_dir / "pretrained",
                    )
                )
            if isinstance(pre, str) and pre not in ("none", "") and not is_named_weights(pre):
                return str(Path(pre).expanduser().resolve())
            return pre

        space, points = dict(job.space), [dict(p) for p in job.points]
        if "pretrained" in space:  # searched: each value, and no checkpoint for the default
            v = space["pretrained"]
            if is_grid(v):
                space["pretrained"] = {"grid_search": [checkpoint(x) for x in v["grid_search"]]}
            elif hasattr(v, "categories"):  # tune.choice
                from ray import tune

                space["pretrained"] = tune.choice([checkpoint(x) for x in v.categories])
        elif (pre := checkpoint(job.value("pretrained"))) != job.value("pretrained") or "pretrained" in fixed:
            fixed["pretrained"] = pre
        for p in (p for p in points if "pretrained" in p):
            p["pretrained"] = checkpoint(p["pretrained"])
        out.append(
            replace(
                job,
                fixed=_folders_absolute(fixed),
                space=_folders_absolute(space),
                points=tuple(_folders_absolute(p) for p in points),
            )
        )
    return out


def _folders_absolute(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` (fixed config, search space or a point) with the image folders its dataset
    fields (``ftsweep.data.DATASET_FIELDS``) name made absolute, grid axes included: trials run in
    their own directories. Registered names stay as they are."""
    from ftsweep.config.space import is_grid
    from ftsweep.data import DATASET_FIELDS, is_folder_dataset

    def absolute(dataset: Any) -> Any:
        if isinstance(dataset, str) and is_folder_dataset(dataset):
            return str(Path(dataset).expanduser().resolve())
        return dataset

    out = dict(values)
    for key in (k for k in DATASET_FIELDS if k in out):
        v = out[key]
        out[key] = {"grid_search": [absolute(x) for x in v["grid_search"]]} if is_grid(v) else absolute(v)
    return out


def auto_pretrain_dataset(dataset: str) -> str | None:
    """The pool ``pretrained: auto`` pretrains on: digits for digits and datasets built from it
    (``digits_source`` / ``digits_target`` hold digits train images; their test images are the
    digits test split, which pretraining never sees); None where no own recipe exists."""
    return "digits" if dataset == "digits" or dataset.startswith("digits_") else None


def check_pretrained(jobs: list[Job], points: Mapping[str, list[dict[str, Any]]] | None = None) -> None:
    """``auto`` needs ftsweep's own recipe (digits + small_cnn); a path must exist. ``points``:
    job name → its trials' searched values (a searched ``pretrained``, ``backbone`` or
    ``dataset`` is checked per value); None: the fixed values."""
    from ftsweep.backbones import is_named_weights

    for job in jobs:
        src = job.source.get("pretrained", "pretrained").removeprefix("spec.")
        for point in (points or {}).get(job.name) or [{}]:
            pre = point.get("pretrained", job.value("pretrained"))
            backbone = point.get("backbone", job.value("backbone"))
            if pre == "auto" and (
                auto_pretrain_dataset(point.get("dataset", job.dataset)) is None or backbone != "small_cnn"
            ):
                raise ConfigError(
                    src,
                    pre,
                    "auto builds ftsweep's SimCLR checkpoint for digits + small_cnn only; give a checkpoint path or none",
                )
            if (
                pre not in ("auto", "none", "")
                and not is_named_weights(pre)
                and not Path(pre).expanduser().is_file()
            ):
                path = Path(pre).expanduser().absolute()
                where = f"{path} is a directory" if path.is_dir() else f"no file {path}"
                raise ConfigError(
                    src,
                    pre,
                    f"must be an existing checkpoint file, auto, none or named weights (ftsweep list): "
                    f"{where}{'' if Path(pre).expanduser().is_absolute() else ' (from the working directory)'}",
                )


def check_jobs(spec: SweepSpec) -> None:
    """Everything about the spec's jobs that would fail later on the cluster, before Ray starts,
    for every trial configuration (the fixed values with each distinct set of searched values:
    ``ftsweep.plan.trial_configs``): ``ftsweep.config.checks.check_job`` (the config's own
    validation, the dataset's files, a checkpoint that loads and fits the backbone, batches that
    can form positive pairs), after the backbone's name and :func:`check_pretrained`."""
    from ftsweep.config.checks import check_backbone_name, check_job
    from ftsweep.plan import distinct_points

    _check_grace_period(spec)
    jobs = spec.jobs()
    points = {job.name: distinct_points(spec, job) for job in jobs}
    passed: set = set()  # the name, file, split and checkpoint checks passed, by their arguments
    for job in jobs:  # a backbone's name before what its checkpoint must be
        for point in points[job.name]:
            backbone = point.get("backbone", job.value("backbone"))
            if ("backbone", backbone) not in passed:
                check_backbone_name(backbone, job.source)
                passed.add(("backbone", backbone))
            _check_gpu_device(spec, job, point)
    check_pretrained(jobs, points)
    logged: list[tuple[Job, frozenset[str]]] = []
    for job in jobs:
        for point in points[job.name]:
            cfg = check_job(job.config_cls, {**job.fixed, **point}, job.source, passed=passed)
            logged.append((job, _check_reported(spec, job, cfg)))
    _check_table_metrics(spec, logged)


def _check_grace_period(spec: SweepSpec) -> None:
    """ASHA's first rung is not past ``max_t`` (Tune's ASHA and ``SeedGroupASHA`` refuse it)."""
    opts = scheduler_options(spec)
    if spec.scheduler == "asha" and opts["grace_period"] > opts["max_t"]:
        of = "asha.max_t" if "max_t" in spec.asha else "the longest trial's epochs"
        raise ConfigError(
            "asha.grace_period", opts["grace_period"], f"must be <= max_t ({opts['max_t']}, {of})"
        )


def _check_reported(spec: SweepSpec, job: Job, cfg: Any) -> frozenset[str]:
    """The spec's ``metric`` and its ``val/``, ``best/`` and ``train/`` stop keys are among what
    every epoch of the configuration reports (``reported_metrics`` of its method): the trial
    fails on its first epoch without its metric, and Tune never stops on a key it lacks. Any
    other stop key is one the trials log (``logged_metrics``) or one Tune adds. Returns the
    configuration's ``logged_metrics``."""
    from ftsweep.trial import method_class

    cls = method_class(job.method)
    reported = cls.reported_metrics(cfg)
    wanted = [("metric", spec.metric)]
    wanted += [(f"stop.{k}", k) for k in spec.stop if k.startswith(("val/", "best/", "train/"))]
    for fld, key in wanted:
        if key not in reported:
            raise ConfigError(
                fld,
                key,
                f"is not reported in every epoch by {job.method} (job {job.name}); it reports "
                + ", ".join(sorted(reported)),
            )
    logged = cls.logged_metrics(cfg)
    for key in spec.stop:
        if key not in logged | TUNE_METRICS:
            raise ConfigError(
                f"stop.{key}",
                key,
                f"is never reported by {job.method} (job {job.name}), so it would stop no trial; it "
                "reports " + ", ".join(sorted(logged | TUNE_METRICS)),
            )
    return logged


#: what Tune adds to every result and the tracking logger keeps as metrics
TUNE_METRICS = frozenset({"training_iteration", "time_total_s", "time_this_iter_s", "time_since_restore"})


def _check_table_metrics(spec: SweepSpec, logged: list[tuple[Job, frozenset[str]]]) -> None:
    """The spec's ``table.metric`` is logged by some trial configuration (``logged_metrics`` of
    its method; a row without it shows "–"), and ``table.select_by`` by every one (a row
    without it could not select a configuration): the table is made only once the sweep has
    run. Tune's own result fields (:data:`TUNE_METRICS`) are in every run."""
    metric, select_by = spec.table.get("metric"), spec.table.get("select_by")
    tune = f"; or a field Tune adds ({', '.join(sorted(TUNE_METRICS))})"
    union = frozenset().union(*(names for _, names in logged))
    if metric is not None and metric not in union | TUNE_METRICS:
        raise ConfigError(
            "table.metric",
            metric,
            "is logged by no trial of the spec; they log " + ", ".join(sorted(union)) + tune,
        )
    for job, names in logged:
        if select_by is not None and select_by not in names | TUNE_METRICS:
            raise ConfigError(
                "table.select_by",
                select_by,
                f"is not logged by {job.method} (job {job.name}); it logs " + ", ".join(sorted(names)) + tune,
            )


def _check_gpu_device(spec: SweepSpec, job: Job, point: Mapping[str, Any]) -> None:
    """``device: cuda…`` needs a GPU per trial: with ``resources.gpu`` 0 Ray shows the trial none."""
    if "device" not in job.config_cls.field_names():
        return
    device = str(point.get("device", job.value("device")))
    gpus = spec.resources.get("gpu", 0)
    if device.startswith("cuda") and not gpus:
        raise ConfigError(
            job.source.get("device", "config.device"),
            device,
            "needs a GPU per trial: resources.gpu is 0, so Ray places the trial where no GPU is "
            "visible; set resources.gpu (e.g. 1) or device: auto / cpu",
        )
    visible = max(1, math.ceil(gpus))  # Ray shows a trial the GPUs it assigns, as cuda:0 …
    if device.startswith("cuda:") and int(device.split(":")[1]) >= visible:
        raise ConfigError(
            job.source.get("device", "config.device"),
            device,
            f"names a GPU the trial does not see: Ray shows it its {visible} GPU(s) as cuda:0"
            f"{f' … cuda:{visible - 1}' if visible > 1 else ''}; use device: cuda or auto",
        )


#: seconds :func:`check_address` waits for a Ray head to accept a connection
CONNECT_TIMEOUT_S = 5.0


def check_address(address: str | None, env: Mapping[str, str] | None = None) -> None:
    """The cluster a run attaches to (``address``, else ``$RAY_ADDRESS``) accepts connections:
    ``ray.init`` waits minutes on an address where no head answers, retrying, before it fails.
    ``auto`` / ``local`` (found or started by Ray) pass; ``host:port`` (the head's GCS, as
    ``ray start`` prints it) and ``ray://host:port`` (Ray Client) must accept a TCP connection
    within :data:`CONNECT_TIMEOUT_S`.

    Raises:
        ConfigError: on ``--address`` or ``RAY_ADDRESS``: an ``http(s)://`` address (the
            dashboard's, which ``ray job submit`` takes), no port, or no head answering there.
    """
    import socket
    from urllib.parse import urlsplit

    env = os.environ if env is None else env
    field = "--address" if address else "RAY_ADDRESS"
    value = address or env.get("RAY_ADDRESS") or ""
    if value in ("", "auto", "local"):
        return
    parts = urlsplit(value if "://" in value else f"gcs://{value}")
    if parts.scheme in ("http", "https"):
        raise ConfigError(
            field,
            value,
            "is a dashboard address (what `ray job submit --address` takes); a run attaches to the "
            "head's GCS address host:port (6379 unless `ray start --port` set another), ray://host:port "
            "or auto",
        )
    try:
        host, port = parts.hostname, parts.port
    except ValueError:  # a port that is not a number in range
        host, port = None, None
    if not host or port is None:
        raise ConfigError(
            field, value, "must be host:port (the head's GCS address), ray://host:port, auto or local"
        )
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as err:
        why = "timed out" if isinstance(err, TimeoutError) else (err.strerror or type(err).__name__)
        raise ConfigError(
            field,
            value,
            f"no Ray head answers at {host}:{port} ({why}); start one there (`ray start --head`), "
            "or give the address `ray start` printed",
        ) from None


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


def _tuner(
    spec: SweepSpec,
    trainable: Any,
    search: Any,
    scheduler: Any,
    total: int,
    storage: Path,
    name: str,
    logger: Any,
    log: bool,
) -> Any:
    """A new Tune experiment ``storage/name`` of ``total`` trials."""
    from ray import tune

    from ftsweep.progress import Progress
    from ftsweep.schedulers import ThresholdStopper

    return tune.Tuner(
        trainable,
        param_space={},
        tune_config=tune.TuneConfig(
            metric=spec.metric,
            mode=spec.mode,
            search_alg=search,
            scheduler=scheduler,
            num_samples=total,
            max_concurrent_trials=spec.max_concurrent_trials,
            reuse_actors=True,  # reset_config rebuilds the method: no process per trial
            trial_name_creator=trial_name,
            trial_dirname_creator=trial_dirname,
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=str(storage),
            verbose=0,
            stop=ThresholdStopper(spec.stop) if spec.stop else None,
            callbacks=[logger, *([Progress(total, spec.metric, spec.mode)] if log else [])],
            failure_config=tune.FailureConfig(max_failures=spec.max_failures),
            checkpoint_config=tune.CheckpointConfig(
                checkpoint_frequency=spec.checkpoint_frequency, checkpoint_at_end=True, num_to_keep=2
            ),
        ),
    )


def _build_artefacts(method: str, config: dict[str, Any]) -> str:
    """An upstream task: build one trial's method, and with it (through their locked build-once
    caches) the shared artefacts its dependants reuse; the method itself is discarded."""
    from ftsweep.trial import method_class

    cls = method_class(method)
    cls(config)
    return cls.upstream_key(config) or ""


def upstream_tasks(spec: SweepSpec, jobs: list[Job], search: Any) -> dict[str, tuple[str, dict[str, Any]]]:
    """Each distinct shared artefact (``FineTuner.upstream_key``) of the jobs' trials → the
    (method, trial config) that builds it. Grid and random jobs name every trial up front; an
    Optuna job's swept values are not known yet, so its fixed values stand for them (a trial that
    needs another artefact builds it itself, under the cache's lock)."""
    from ftsweep.methods.base import JOB_KEY
    from ftsweep.routing import VariantSearcher
    from ftsweep.trial import method_class

    todo: dict[str, tuple[str, dict[str, Any]]] = {}
    for job in jobs:
        cls = method_class(job.method)
        inner = search.searchers[job.name]
        configs = inner.configs if isinstance(inner, VariantSearcher) else [{"seed": spec.seeds[0]}]
        for c in configs:
            config = {**search.fixed[job.name], **c, JOB_KEY: job.name}
            try:
                key = cls.upstream_key(config)
            except Exception:  # noqa: BLE001 — a config error: the trial reports it
                continue
            if key is not None and key not in todo:
                todo[key] = (job.method, config)
    return todo


def build_upstream(
    spec: SweepSpec, jobs: list[Job], search: Any, resources: Mapping[str, float], *, log: bool
) -> None:
    """Build :func:`upstream_tasks` as Ray tasks with a trial's resources before Tune schedules
    any dependant, so no dependant holds a GPU while it waits. A failed build is reported; its
    dependants then fail with the reason the cache recorded."""
    import ray

    todo = upstream_tasks(spec, jobs, search)
    if not todo:
        return
    if log:
        print(f"ftsweep: building {len(todo)} shared artefact(s) before the trials that use them", flush=True)
    task = ray.remote(_build_artefacts).options(
        num_cpus=float(resources.get("cpu", 1)), num_gpus=float(resources.get("gpu", 0)), max_retries=1
    )
    refs = {task.remote(method, config): key for key, (method, config) in todo.items()}
    for ref, key in refs.items():
        try:
            ray.get(ref)
        except ray.exceptions.RayTaskError as e:
            print(f"ftsweep: building {key} failed: {str(e).strip().splitlines()[-1][:300]}", flush=True)


def job_searcher(spec: SweepSpec, job: Job) -> tuple[Any, int]:
    """The searcher of one job and how many trials it suggests."""
    from ray.tune.search import Repeater

    from ftsweep.config.space import search_axes
    from ftsweep.routing import VariantSearcher, variants

    axes = search_axes(job.space)
    if spec.searcher in ("grid", "random") or not axes:
        configs = variants(job.space, spec.seeds, spec.num_samples, spec.seeds[0], job.points)
        return VariantSearcher(configs, spec.metric, spec.mode), len(configs)
    from ftsweep.optuna_search import GridOptunaSearch

    # optuna: ordered grid axes as indices, no cell twice; each suggestion repeated once per seed
    optuna = GridOptunaSearch(
        axes,
        spec.metric,
        spec.mode,
        seed=spec.seeds[0],
        **spec.optuna,  # sampler, n_startup_trials
        points=job.points,
    )
    return Repeater(optuna, repeat=len(spec.seeds), set_index=True), job_trials(spec, job)


def job_trials(spec: SweepSpec, job: Job) -> int:
    """The number of trials of one job (``ftsweep.config.space.count_trials``)."""
    from ftsweep.config.space import count_trials

    return count_trials(job.space, spec.searcher, len(spec.seeds), spec.num_samples)


def scheduler_options(spec: SweepSpec) -> dict[str, Any]:
    """The arguments of the spec's ASHA / HyperBand (times in ``sched/epoch``): the runner's
    defaults, overridden by the spec's ``asha:`` / ``hyperband:``; ``{}`` for ``fifo``."""
    if spec.scheduler == "fifo":
        return {}
    # time = epochs in which the selection can move (FineTuner.schedulable_epochs); max_t defaults
    # to the longest trial (Tune's 100 would stop a 200-epoch trial at 100)
    max_t = max((_longest(job) for job in spec.jobs()), default=100)
    if spec.scheduler == "asha":
        # the grace period a quarter of max_t: at Tune's 1 epoch ASHA stopped the best
        # configuration of two of three paper grids on digits (bench/search_efficiency.py, README)
        return {"grace_period": max(1, max_t // 4), "reduction_factor": 3, "max_t": max_t, **spec.asha}
    return {"reduction_factor": 3, "max_t": max_t, **spec.hyperband}


def _longest(job: Job) -> int:
    """The most epochs a trial of ``job`` trains: its fixed ``epochs``, or the largest value of
    an ``epochs`` search axis (a range's upper end)."""
    from ftsweep.config.space import domain_values

    if "epochs" not in job.space:
        return int(job.value("epochs"))
    values = domain_values(job.space["epochs"])
    return int(max(values) if values is not None else job.space["epochs"])


def job_scheduler(spec: SweepSpec) -> Any:
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, HyperBandScheduler

    if spec.scheduler == "fifo":
        return FIFOScheduler()
    opts = scheduler_options(spec)
    if spec.scheduler == "asha":
        if len(spec.seeds) > 1:  # rank configurations (their seeds' mean), not seed trials
            from ftsweep.schedulers import SeedGroupASHA

            opts.pop("brackets", None)  # one bracket (checked at parse)
            return SeedGroupASHA(time_attr="sched/epoch", **opts)
        return ASHAScheduler(time_attr="sched/epoch", **opts)
    # hyperband: pauses a trial at each rung until its bracket has caught up, then resumes the
    # best from their checkpoints (Tune's HyperBandScheduler, synchronous successive halving)
    return HyperBandScheduler(time_attr="sched/epoch", **opts)


def build_search(spec: SweepSpec, jobs: list[Job]) -> tuple[Any, Any, int]:
    """Tune's ``search_alg`` and ``scheduler`` for all jobs, and the number of trials."""
    from ftsweep.config.space import search_axes
    from ftsweep.routing import JobScheduler, JobSearcher
    from ftsweep.trial import METHOD_KEY, METRIC_KEY

    searchers, fixed, budgets = {}, {}, {}
    for job in jobs:
        searchers[job.name], budgets[job.name] = job_searcher(spec, job)
        axes = search_axes(job.space)
        constants = {k: v for k, v in job.space.items() if k not in axes}
        fixed[job.name] = {**job.fixed, **constants, METHOD_KEY: job.method, METRIC_KEY: spec.metric}
        if spec.searcher == "optuna":
            fixed[job.name]["_seeds"] = list(spec.seeds)
    search = JobSearcher(searchers, fixed, spec.metric, spec.mode, budgets)
    return search, JobScheduler({job.name: job_scheduler(spec) for job in jobs}), sum(budgets.values())


@contextmanager
def stop_signals() -> Iterator[list[str]]:
    """SIGINT and SIGTERM (Ctrl-C, a scheduler's pre-emption notice) stop the whole sweep the way
    Tune stops on a signal of its own (``SIGUSR1``: finish the step, save the experiment state);
    a second signal raises ``KeyboardInterrupt`` at once. Yields the names of the signals
    caught."""
    caught: list[str] = []

    def handler(signum: int, frame: Any) -> None:
        caught.append(signal.Signals(signum).name)
        tune_stop = signal.getsignal(signal.SIGUSR1)
        if len(caught) > 1 or not callable(tune_stop):
            raise KeyboardInterrupt
        tune_stop(signal.SIGUSR1, frame)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    disabled = os.environ.get("TUNE_DISABLE_SIGINT_HANDLER")
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"  # SIGINT is ours; Tune keeps SIGUSR1
    try:
        yield caught
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        if disabled is None:
            os.environ.pop("TUNE_DISABLE_SIGINT_HANDLER", None)
        else:
            os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = disabled


def run_sweep(
    spec: SweepSpec,
    version: Version,
    *,
    resume: bool = False,
    retry_failed: bool = False,
    results_dir: str | Path = "results",
    tracking_uri: str | None = None,
    log: bool = True,
    artifacts: str | None = None,
) -> SweepResult:
    """Run (or resume) one version of ``spec`` on the Ray instance :func:`run_spec` connected to;
    failing trials are recorded and the sweep goes on. ``artifacts``: where a new MLflow experiment keeps its artifacts (default: beside a SQLite
    store, ``ftsweep.tracking.artifact_location``)."""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    # a trial that fails on its own ends with a report that may lack the selection metric
    # (it failed before its first epoch): ftsweep.trial, not a missing metric. The metric itself
    # is checked by the trial (METRIC_KEY): a method that does not report it fails its trial
    os.environ.setdefault("TUNE_DISABLE_STRICT_METRIC_CHECKING", "1")
    from ray import tune

    from ftsweep.tracking import open_experiment
    from ftsweep.tracking import tracking_uri as resolve_uri
    from ftsweep.trial import MethodTrainable

    t0 = time.perf_counter()
    results_dir = Path(results_dir).resolve()
    jobs = prepare_paths(spec, spec.jobs(), results_dir)
    uri = resolve_uri(tracking_uri)
    # the tracking store (a fresh SQLite schema takes seconds) is opened in a thread while Ray
    # starts; the logger waits for it at its first use
    pool = ThreadPoolExecutor(max_workers=1)
    store = pool.submit(open_experiment, spec.experiment, uri, artifacts)
    caught: list[str] = []
    env = ExitStack()
    try:
        resources = {"cpu": spec.resources.get("cpu", 1), "gpu": spec.resources.get("gpu", 0)}
        trainable = tune.with_resources(MethodTrainable, resources)
        search, scheduler, total = build_search(spec, jobs)
        env.enter_context(tune_environment(total))
        logger = sweep_logger(spec, uri, version.number, jobs=jobs, store=store)
        if resume:
            if log:
                print(f"ftsweep: resuming v{version.number} from {version.experiment_dir}", flush=True)
            tuner = tune.Tuner.restore(
                str(version.experiment_dir),
                trainable=trainable,
                resume_unfinished=True,
                resume_errored=False,
                restart_errored=retry_failed,
            )
        else:
            tuner = _tuner(spec, trainable, search, scheduler, total, version.path, "tune", logger, log)
        if not resume:
            build_upstream(spec, jobs, search, resources, log=log)
        if log:
            names = ", ".join(j.name for j in jobs)
            print(f"ftsweep: v{version.number}: {total} trials of {len(jobs)} jobs ({names})", flush=True)
        with stop_signals() as caught:
            try:
                grid = list(tuner.fit())
                if resume and not caught:
                    grid = _earlier_retries(version, grid, trainable, retry_failed, caught, log)
                if resume and retry_failed and not caught:
                    grid = _retry_failed(spec, version, grid, trainable, logger, log)
                # inside the handlers: a second signal while the runs are reconciled is this one
                return _summarize(spec, version, jobs, grid, logger, total, caught, time.perf_counter() - t0)
            except KeyboardInterrupt:  # a second signal: leave now, the state Tune saved stays
                logger.kill_open_runs()
                version.state, version.trials = "interrupted", total
                version.interrupted_by = caught[0] if caught else "SIGINT"
                version.save()
                seconds = time.perf_counter() - t0
                statuses = list(logger.trial_statuses().values())  # what ended before the signal
                done, failed = statuses.count("FINISHED"), statuses.count("FAILED")
                return SweepResult(
                    spec.experiment, version.path, version.number, total, done, failed,
                    total - done - failed, seconds, {}, [], version.interrupted_by,
                )  # fmt: skip
    finally:
        env.close()
        pool.shutdown(wait=True)


def sweep_logger(spec: SweepSpec, uri: str, number: int, jobs: Sequence[Job] = (), **kwargs: Any) -> Any:
    """The MLflow trial logger of version ``number`` of ``spec`` (``ftsweep.tracking``): the tags
    every run of the version carries, the experiment's description, the spec as run."""
    from ftsweep.tracking import MLflowTrialLogger, git_commit, job_info

    tags = {
        "sweep": spec.name,
        "spec": str(spec.path or ""),
        "git_commit": git_commit(),
        "smoke": str(spec.smoke),
        "overrides": "; ".join(spec.overrides),
        "sweep_version": str(number),
        # what `ftsweep table` / `export` select by, as the run's own table did
        **({"select_by": spec.table["select_by"]} if spec.table.get("select_by") else {}),
    }
    return MLflowTrialLogger(
        spec.experiment,
        uri,
        tags,
        jobs={job.name: job_info(job) for job in jobs},
        description=spec.description,
        spec_text=yaml.safe_dump(dict(spec.raw), sort_keys=False),
        **kwargs,
    )


def new_version(
    spec: SweepSpec, root: Path, digest: str, command: str, uri: str, spaces: dict[str, str] | None = None
) -> Version:
    """A new version of ``spec`` under ``root``, numbered after every version in ``root`` and
    every version of the spec its store holds (other results folders, removed ones), and its
    number claimed in the store at once: its sweep run is created before any trial runs
    (:meth:`ftsweep.tracking.MLflowTrialLogger.claim_version`). A driver whose claim meets an
    earlier one of the same number — another results folder's driver that read the store at the
    same moment — removes its folder and takes the next number. On a SQLite store the read and
    the claim happen under the store's lock, so they are one step for every driver on it."""
    from concurrent.futures import Future

    from ftsweep.runs import sweep_versions
    from ftsweep.tracking import open_experiment, store_lock
    from ftsweep.versions import create_version

    opened: Future = Future()
    opened.set_result(open_experiment(spec.experiment, uri))  # it takes the lock: before holding it
    with store_lock(uri):
        after = max(sweep_versions(spec.experiment, uri).get(spec.name, []), default=0)
        while True:
            version = create_version(root, digest, command, uri, after=after, spaces=spaces)
            if sweep_logger(spec, uri, version.number, store=opened).claim_version():
                return version
            shutil.rmtree(version.path)
            after = version.number


#: up to this many trials Tune saves the experiment state after every event (below)
STATE_EVERY_EVENT_MAX = 200


@contextmanager
def tune_environment(total: int) -> Iterator[dict[str, str]]:
    """Tune's settings for a sweep of ``total`` trials, set while it runs (a value the user set in
    the environment wins) and removed afterwards, so the next sweep of the process gets its own.

    - ``TUNE_MAX_PENDING_TRIALS_PG``: Tune lets a non-grid search algorithm (ours routes every
      job) keep only one trial pending at a time, so trials would start one by one; every ready
      trial may wait for resources, as with Tune's own grid search (its default: max(200, 1.1 ×
      CPUs)).
    - ``TUNE_GLOBAL_CHECKPOINT_S``: the experiment state names each trial's latest checkpoint and
      Tune deletes all but the newest ``num_to_keep`` (2) of them. Saved only every ≥ 10 s
      (``auto``), a state can name one that is already gone when a trial checkpoints twice in
      between (epochs under ~5 s), and a resume after a killed driver cannot restore that trial.
      Saved after every event (``0``), the one it names always exists — but each save writes
      every trial's state, so a sweep pays O(trials²) (``bench/experiment_state.py``: +104 s for
      600 trivial trials). ``0`` up to :data:`STATE_EVERY_EVENT_MAX` trials, ``auto`` above.
    """
    values = {
        "TUNE_MAX_PENDING_TRIALS_PG": str(max(200, min(total, 2000))),
        "TUNE_GLOBAL_CHECKPOINT_S": "0" if total <= STATE_EVERY_EVENT_MAX else "auto",
    }
    ours = {k: v for k, v in values.items() if k not in os.environ}
    os.environ.update(ours)
    try:
        yield {**values, **{k: os.environ[k] for k in values}}
    finally:
        for k in ours:
            os.environ.pop(k, None)


def run_spec(
    spec: SweepSpec,
    *,
    results_dir: str | Path = "results",
    resume: bool = False,
    new: bool = False,
    retry_failed: bool = False,
    allow_pending: bool = False,
    command: str = "",
    address: str | None = None,
    num_cpus: int | None = None,
    **kwargs: Any,
) -> SweepResult:
    """Everything that can refuse a run, then the run: the version to resume or to start
    (``ftsweep.versions``), Ray, the trial's resources against the cluster's nodes
    (:func:`check_resources`) — each a ``ConfigError`` before any result or run is written —;
    then a new version's folder, held while :func:`run_sweep` runs it."""
    from ftsweep.tracking import tracking_uri as resolve_uri
    from ftsweep.versions import choose_version, hold_latest, space_hashes, spec_hash

    results_dir = Path(results_dir).resolve()
    root, digest = results_dir / spec.folder, spec_hash(spec.raw, smoke=spec.smoke)
    spaces = space_hashes({job.name: job.space for job in spec.jobs()})
    label = str(spec.path or spec.name)
    # the latest version stays held from reading its state until this driver's version is held
    with hold_latest(root, label) as latest:
        version = choose_version(
            latest,
            digest,
            resume=resume,
            new=new,
            retry_failed=retry_failed,
            spec=label,
            root=root,
            spaces=spaces,
        )
        uri = resolve_uri(kwargs.get("tracking_uri"))
        if version is not None and version.tracking_uri and version.tracking_uri != uri:
            # Tune restores the version's trial logger with the store it was started with
            raise ConfigError(
                "--tracking-uri",
                uri,
                f"v{version.number} logs to {version.tracking_uri}: resume it with --tracking-uri "
                f"{version.tracking_uri} (or start a new version with --new)",
            )
        fetch_datasets(spec.jobs(), log=kwargs.get("log", True))
        init_ray(address, num_cpus)
        if not allow_pending:
            check_resources(spec.resources)
        resuming = version is not None
        if version is None:
            from ftsweep.tracking import MLflowTrialLogger

            abandoned = latest if new else None
            if abandoned is not None and abandoned.unfinished:  # its driver is dead: it is held here
                tags = {"sweep": spec.name, "sweep_version": str(abandoned.number)}
                ended = MLflowTrialLogger(spec.experiment, uri, tags).kill_open_runs()
                if ended and kwargs.get("log", True):
                    print(
                        f"ftsweep: v{abandoned.number}: {ended} run(s) its dead driver left RUNNING ended KILLED"
                    )
            version = new_version(spec, root, digest, command, uri, spaces)
        if resuming:
            version.announce()
        with nullcontext() if resuming else version.hold():  # a resumed version is held already
            return run_sweep(
                spec,
                version,
                resume=resuming,
                retry_failed=retry_failed,
                results_dir=results_dir,
                **kwargs,
            )


def fetch_datasets(jobs: list[Job], *, log: bool = True) -> None:
    """``download: true``: each registered dataset a job reads whose files are missing (or fail
    torchvision's checksums) is downloaded here, once, before Ray starts — not by every trial at
    once into one folder.

    Raises:
        ConfigError: a download that fails (no network, a refused URL), on the dataset's field.
    """
    from ftsweep.config.space import is_grid
    from ftsweep.data import DATASET_FIELDS, get_dataset_info, is_folder_dataset
    from ftsweep.data.catalog import corrupt_files
    from ftsweep.data.registry import load_dataset

    done: set[tuple[str, str]] = set()
    for job in jobs:
        if job.config_cls is None or "download" not in job.config_cls.field_names():
            continue
        if not job.value("download"):
            continue
        root = str(Path(job.value("data_root")).resolve())
        for key in (k for k in DATASET_FIELDS if k in job.config_cls.field_names()):
            axis = job.space.get(key)
            names = axis["grid_search"] if is_grid(axis) else [job.value(key)]
            for name in names:
                if (name, root) in done or not isinstance(name, str) or is_folder_dataset(name):
                    continue
                done.add((name, root))
                info = get_dataset_info(name)
                missing = [f for f in info.files if not os.path.exists(os.path.join(root, f))]
                if not info.downloadable or not (missing or corrupt_files(name, root)):
                    continue
                if log:
                    print(f"ftsweep: downloading {name} into {root} (once, before the trials)", flush=True)
                try:
                    load_dataset(name, root, download=True)
                except Exception as err:  # noqa: BLE001 — URLError, HTTP errors, a failed checksum
                    first = (str(err).strip().splitlines() or [type(err).__name__])[0]
                    raise ConfigError(
                        job.source.get(key, key).removeprefix("spec."),  # as the checks name it
                        name,
                        f"download into {root} failed ({type(err).__name__}: {first[:200]}); place "
                        f"its files there ({', '.join(info.files)}) or run once where the network "
                        "is reached",
                    ) from None


def check_resources(request: Mapping[str, float]) -> None:
    """A trial's ``{cpu, gpu}`` request must fit on one alive node of the connected cluster.

    Raises:
        ConfigError: no node can ever hold one trial (names the request and the nodes).
    """
    import ray

    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    need = {"CPU": float(request.get("cpu", 1)), "GPU": float(request.get("gpu", 0))}
    if any(all(res.get(k, 0.0) >= v for k, v in need.items()) for res in nodes):
        return
    have = "; ".join(f"{r.get('CPU', 0):g} CPU, {r.get('GPU', 0):g} GPU" for r in nodes) or "no alive node"
    raise ConfigError(
        "resources",
        dict(request),
        f"no node of the cluster can hold one trial (nodes: {have}); lower the request, add such a "
        "node, or pass --allow-pending on an autoscaling cluster",
    )


def _retry_dirs(version: Version) -> dict[int, Path]:
    """The version's ``retry<k>`` Tune experiments, ``k`` → folder, in ``k``'s order."""
    found = {int(p.name[5:]): p for p in version.path.glob("retry*") if p.name[5:].isdigit() and p.is_dir()}
    return dict(sorted(found.items()))


def _trial_key(config: Mapping[str, Any] | None) -> str:
    """A trial's identity in the version: its whole config (job and seed included), as canonical
    JSON; a retried trial has the config of the one it retries."""
    return json.dumps(dict(config or {}), sort_keys=True, default=str)


def _earlier_retries(
    version: Version, grid: list, trainable: Any, retry_failed: bool, caught: list[str], log: bool
) -> list:
    """A resume's view of the trials that earlier ``--retry-failed`` runs retried: each
    ``retry<k>`` experiment is restored in turn (a retry that was interrupted continues) and its
    results replace the ones of the trials it retried. Without this, a second ``--retry-failed``
    ran again the trials a first one had finished, and a resume reported them as failed."""
    from ray import tune

    for folder in _retry_dirs(version).values():
        if caught or not (folder / "tuner.pkl").exists():
            break
        if log:
            print(f"ftsweep: v{version.number}: restoring {folder.name}", flush=True)
        tuner = tune.Tuner.restore(
            str(folder),
            trainable=trainable,
            resume_unfinished=True,
            resume_errored=False,
            restart_errored=retry_failed,
        )
        latest = {_trial_key(r.config): r for r in tuner.fit()}
        grid = [latest.get(_trial_key(r.config), r) for r in grid]
    return grid


def _retry_failed(
    spec: SweepSpec, version: Version, grid: list, trainable: Any, logger: Any, log: bool
) -> list:
    """``--resume --retry-failed``: the trials that failed on their own (they ended at once,
    so Tune keeps them as finished) run again as new trials of a ``retry<k>`` experiment of the
    version; their old FAILED runs stay as they are (only FINISHED runs count in a table)."""
    from ray.tune.schedulers import FIFOScheduler

    from ftsweep.routing import JOB_KEY, JobScheduler, JobSearcher, VariantSearcher
    from ftsweep.trial import FAILED_KEY

    failed = [r for r in grid if (r.metrics or {}).get(FAILED_KEY)]
    if not failed:
        return grid
    by_job: dict[str, list] = {}
    for r in failed:
        by_job.setdefault(r.config[JOB_KEY], []).append({k: v for k, v in r.config.items() if k != JOB_KEY})
    searchers = {job: VariantSearcher(cfgs, spec.metric, spec.mode) for job, cfgs in by_job.items()}
    search = JobSearcher(searchers, dict.fromkeys(by_job, {}), spec.metric, spec.mode)
    scheduler = JobScheduler({job: FIFOScheduler() for job in by_job})
    name = f"retry{max(_retry_dirs(version), default=0) + 1}"
    if log:
        print(f"ftsweep: v{version.number}: retrying {len(failed)} failed trial(s) as {name}", flush=True)
    tuner = _tuner(spec, trainable, search, scheduler, len(failed), version.path, name, logger, log)
    return [r for r in grid if not (r.metrics or {}).get(FAILED_KEY)] + list(tuner.fit())


def trial_name(trial: Any) -> str:
    """``<job>_<trial id>``: Tune's trial folder and name."""
    from ftsweep.routing import JOB_KEY

    return f"{trial.config.get(JOB_KEY, 'trial')}_{trial.trial_id}"


def trial_dirname(trial: Any) -> str:
    """:func:`trial_name` as a folder name: a method label or a folder dataset's path may hold
    a path separator ("Random (w/ labels)", UOT Table 1b), which Tune refuses in a trial's
    folder (it becomes '-'), and the job part is cut to 160 characters (a file name ends at 255
    bytes; the trial id keeps it unique)."""
    from ftsweep.routing import JOB_KEY

    job = str(trial.config.get(JOB_KEY, "trial")).replace("/", "-").replace("\\", "-")
    return f"{job[:160]}_{trial.trial_id}"


def trial_outcome(result: Any) -> str:
    """``FINISHED``, ``FAILED`` or ``KILLED`` (did not end) for one Tune result."""
    from ftsweep.trial import FAILED_KEY

    metrics = result.metrics or {}
    if result.error is not None or metrics.get(FAILED_KEY):
        return "FAILED"
    return "FINISHED" if metrics.get("done") else "KILLED"


def _summarize(
    spec: SweepSpec,
    version: Version,
    jobs: list[Job],
    grid: Any,
    logger: Any,
    total: int,
    caught: list[str],
    seconds: float,
) -> SweepResult:
    from ftsweep.routing import JOB_KEY
    from ftsweep.trial import REASON_KEY

    per_job = {job.name: [0, 0] for job in jobs}
    finished = errors = 0
    failures = []
    outcomes = {}
    ended: set[str] | None = None  # asked of the store only when a trial looks KILLED
    for r in grid:
        outcome = trial_outcome(r)
        trial_id = (r.metrics or {}).get("trial_id")
        if outcome == "KILLED":
            ended = logger.ended_trials() if ended is None else ended
            if trial_id in ended:  # stopped by the scheduler while paused
                outcome = "FINISHED"
        if trial_id is not None:  # a trial that never reported has no run to reconcile
            outcomes[trial_id] = (outcome, r)
        job = (r.config or {}).get(JOB_KEY, "?")
        if outcome == "FINISHED":
            finished += 1
        elif outcome == "FAILED":
            errors += 1
            reason = (r.metrics or {}).get(REASON_KEY) or str(r.error).strip().splitlines()[-1]
            failures.append(f"{job} seed={(r.config or {}).get('seed')}: {str(reason)[:300]}")
        if job in per_job:
            per_job[job][0] += 1
            per_job[job][1] += outcome == "FAILED"
    logger.reconcile(outcomes)
    interrupted = total - finished - errors
    version.trials, version.failed = total, errors
    version.state = "finished" if interrupted == 0 else "interrupted"
    version.interrupted_by = caught[0] if caught else ""
    version.save()
    return SweepResult(
        spec.experiment,
        version.path,
        version.number,
        total,
        finished,
        errors,
        interrupted,
        seconds,
        {k: (n, bad) for k, (n, bad) in per_job.items()},
        failures,
        caught[0] if caught else None,
        logger.sweep_run_id,
    )
