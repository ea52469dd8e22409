"""MLflow tracking: one experiment per sweep, one run per trial, logged from the Tune driver.

:class:`MLflowTrialLogger` is a ``tune.Callback`` (driver side, so trials on remote nodes need
no MLflow access and only one process writes the store). Per trial it creates a run with every
config value as a param, tags (sweep, method, dataset, seed, git commit, trial id), per-epoch
metrics at ``step = training_iteration`` and, at the end, the final reported metrics — whose
``test/*`` are the selected epoch's — and status FINISHED or FAILED with the error as the tag
``error``. After a trial is restored from a checkpoint, steps already logged are skipped, so a
recovery never duplicates metric steps; a driver restart finds the trial's run by its tag.

One store, many writers. Several ``ftsweep run`` processes may open the same SQLite store at once:
:func:`open_experiment` creates the schema (MLflow does it at a client's first use of a sqlite
URI) and the experiment under an exclusive ``fcntl`` lock on ``<db>.lock`` beside the database
file, so concurrent first opens neither race on ``CREATE TABLE`` nor create the experiment twice.
An MLflow server needs no lock; there an "already exists" from a concurrent create is answered
by looking the experiment up again. Every write of the logger goes through one retry helper: on
a transient error (an ``MlflowException`` other than a client error such as an invalid or
duplicate value, ``sqlalchemy`` ``OperationalError``, a ``requests`` ``ConnectionError``, an
``OSError``) it waits with exponential back-off (``retry_base_s`` doubling to ``retry_max_s``)
and tries again. Metrics that a result's or a checkpoint's flush cannot write stay buffered
and are retried at a later flush without blocking the driver; a trial's end and the experiment's
end retry until written or until ``deadline_s`` passes, then raise :class:`TrackingWriteError`
naming each run and how many of its metrics were not written, so no metric is dropped silently.

Runs a researcher can browse. A sweep version has a parent run (tag ``ftsweep.kind = sweep``),
each job a child run under it (``ftsweep.kind = job``) and each trial its run under its job's
(MLflow nests by the tag ``mlflow.parentRunId``); every run carries ``sweep_version``. A trial's
params are every field of its method's resolved config dataclass, defaults included, under
their flat names; its name says what differs (``scl τ=0.1 λ=0.5 seed=0``); the experiment's
description is the spec's. :meth:`MLflowTrialLogger.reconcile` ends every run of the version
from Tune's final state — FINISHED, FAILED or KILLED (tag ``status``) — so none stays RUNNING.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import math
import os
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ray import tune

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

__all__ = [
    "DEFAULT_TRACKING_URI",
    "JobInfo",
    "MLflowTrialLogger",
    "TrackingWriteError",
    "flatten",
    "git_commit",
    "job_info",
    "open_experiment",
    "result_metrics",
    "sqlite_path",
    "store_lock",
    "tracking_uri",
]

_log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
from ftsweep.methods.base import INTERNAL_KEYS, JOB_KEY, resolve_trial_config  # noqa: E402

#: short names of common hyperparameters in run names
SYMBOLS = {"temperature": "τ", "lambda_": "λ", "alpha": "α", "eta": "η", "eps": "ε", "tau": "τ"}


@dataclass(frozen=True)
class JobInfo:
    """What the logger knows of a job: names, the config class, and the swept keys."""

    name: str
    method: str
    label: str
    dataset: str
    config_cls: type | None
    swept: tuple[str, ...]


def job_info(job: Any) -> JobInfo:
    """The :class:`JobInfo` of a ``ftsweep.config.spec.Job``."""
    from ftsweep.config.space import domain_values

    swept = tuple(k for k, v in job.space.items() if domain_values(v) is not None)
    return JobInfo(job.name, job.method, job.label, job.dataset, job.config_cls, swept)


def run_name(info: JobInfo | None, config: Mapping[str, Any], seed: Any) -> str:
    """``<label> <k>=<v> … seed=<s>`` over the job's swept keys."""
    if info is None:
        return f"trial seed={seed}"
    parts = [info.label]
    for k in info.swept:
        v = config.get(k)
        parts.append(f"{SYMBOLS.get(k, k)}={v:g}" if isinstance(v, float) else f"{SYMBOLS.get(k, k)}={v}")
    return " ".join([*parts, f"seed={seed}"])


def resolved_params(info: JobInfo | None, config: Mapping[str, Any]) -> dict[str, Any]:
    """Every field of the trial's resolved config dataclass (defaults included); the given
    values where the config does not build (the trial then fails and says why)."""
    cfg = resolve_trial_config(config)
    if info is not None and info.config_cls is not None:
        try:
            return info.config_cls.from_dict(cfg).to_dict()
        except Exception:  # noqa: BLE001 — logged as given; the trial reports the error
            pass
    return cfg


RESULT_SKIP = {
    "done",
    "trial_id",
    "timestamp",
    "pid",
    "node_ip",
    "iterations_since_restore",
}


def tracking_uri(uri: str | None = None) -> str:
    """``uri``, else ``$MLFLOW_TRACKING_URI``, else an absolute ``sqlite:///<cwd>/mlflow.db``.

    A relative sqlite path is made absolute against the current directory, so trials and
    drivers that change directory still write the same database.
    """
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri[len(prefix) :].startswith("/"):
        uri = prefix + str(Path(uri[len(prefix) :]).resolve())
    return uri


def git_commit(cwd: str | Path | None = None) -> str:
    """The commit of the code that runs: ``$FTSWEEP_GIT_COMMIT`` when set, else ``git rev-parse
    HEAD`` in ``cwd``, else what ``ftsweep stamp`` wrote to ``.ftsweep_commit`` in ``cwd`` (a
    ``ray job submit`` working dir has no ``.git``; ``<sha>-dirty`` with uncommitted changes),
    else ``unknown``."""
    if env := os.environ.get("FTSWEEP_GIT_COMMIT", "").strip():
        return env
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        from ftsweep.gitinfo import read_commit_file

        return read_commit_file(cwd) or "unknown"


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (``None`` for other stores and in-memory ones)."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        return None
    path = uri[len(prefix) :].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


@contextlib.contextmanager
def store_lock(uri: str) -> Iterator[None]:
    """An exclusive ``fcntl`` lock on ``<db>.lock`` beside a SQLite store; nothing for others.
    Not reentrant: :func:`open_experiment` takes it, so a holder opens its store first."""
    db = sqlite_path(uri)
    if db is None:
        yield
        return
    db.parent.mkdir(parents=True, exist_ok=True)
    # the lock file is never removed: unlinking it would let two processes lock different files
    with open(f"{db}.lock", "a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def artifact_location(uri: str, artifacts: str | None = None) -> str | None:
    """Where a new experiment keeps its artifacts: ``artifacts`` if given (a shared path or
    URI), else ``mlartifacts/`` beside a SQLite store (MLflow's own default is ``./mlruns`` of the
    current directory — under ``ray job submit`` a temporary folder), else the server's."""
    if artifacts:
        return artifacts if "://" in artifacts else Path(artifacts).resolve().as_uri()
    db = sqlite_path(uri)
    return (db.parent / "mlartifacts").as_uri() if db is not None else None


def _experiment_id(client: MlflowClient, experiment: str, artifacts: str | None = None) -> str:
    from mlflow.exceptions import MlflowException

    exp = client.get_experiment_by_name(experiment)
    if exp is not None:
        return exp.experiment_id
    try:
        return client.create_experiment(experiment, artifact_location=artifacts)
    except MlflowException as e:
        # another process created it between the look-up and the create (an MLflow server)
        if e.error_code != "RESOURCE_ALREADY_EXISTS" and "already exists" not in str(e):
            raise
        exp = client.get_experiment_by_name(experiment)
        if exp is None:
            raise
        return exp.experiment_id


def open_experiment(
    experiment: str, uri: str | None = None, artifacts: str | None = None
) -> tuple[MlflowClient, str]:
    """A client of the tracking store and the id of ``experiment`` (created when missing).

    Opening a new SQLite store creates its schema, which takes seconds: ``run_sweep`` does this
    in a thread while Ray starts and the first trial actor imports its modules. Safe for any
    number of processes at once (see the module docstring): on SQLite the schema and the
    experiment are created under a lock on ``<db>.lock``.
    """
    from mlflow.tracking import MlflowClient

    uri = tracking_uri(uri)
    with store_lock(uri):
        client = MlflowClient(uri)  # the first client of a sqlite URI creates/upgrades the schema
        return client, _experiment_id(client, experiment, artifact_location(uri, artifacts))


class TrackingWriteError(RuntimeError):
    """Writes to the tracking store kept failing until the deadline; ``unwritten`` maps each run
    id to the number of its metrics that are not in the store."""

    def __init__(self, message: str, unwritten: Mapping[str, int] | None = None) -> None:
        super().__init__(message)
        self.unwritten = dict(unwritten or {})


# MlflowException codes that say the request itself is wrong: retrying cannot help
_PERMANENT_CODES = {
    "INVALID_PARAMETER_VALUE",
    "RESOURCE_ALREADY_EXISTS",
    "RESOURCE_DOES_NOT_EXIST",
    "INVALID_STATE",
    "PERMISSION_DENIED",
    "UNAUTHENTICATED",
}


def _transient(exc: BaseException) -> bool:
    """Whether a failed write may succeed later (store restarting, SQLite file locked …)."""
    import requests
    import sqlalchemy.exc
    from mlflow.exceptions import MlflowException

    if isinstance(exc, MlflowException):
        return exc.error_code not in _PERMANENT_CODES
    return isinstance(exc, sqlalchemy.exc.OperationalError | requests.ConnectionError | OSError)


def _retry(fn: Callable[[], T], deadline: float, base_s: float, max_s: float, what: str) -> T:
    """``fn()``, retried on transient errors with exponential back-off until ``deadline``
    (``time.monotonic``); then the last error is raised. A past deadline means one attempt."""
    wait = base_s
    while True:
        try:
            return fn()
        except Exception as e:
            left = deadline - time.monotonic()
            if not _transient(e) or left <= 0:
                raise
            _log.warning("MLflow %s failed (%s: %s); retrying in %.1f s", what, type(e).__name__, e, wait)
            time.sleep(min(wait, left))
            wait = min(2 * wait, max_s)


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config → ``{"a.b": "value"}`` strings (MLflow params)."""
    out: dict[str, str] = {}
    for k, v in config.items():
        if k in INTERNAL_KEYS:
            continue
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, key + "."))
        else:
            out[key] = str(v)[:6000]
    return out


def result_metrics(result: Mapping[str, Any]) -> dict[str, float]:
    """The MLflow metrics of one Tune result: its finite numbers, bookkeeping and flags aside."""
    out = {}
    for k, v in result.items():
        if k in RESULT_SKIP or k.startswith("config") or isinstance(v, bool):
            continue
        if isinstance(v, int | float) and math.isfinite(float(v)):
            out[k] = float(v)
    return out


class MLflowTrialLogger(tune.Callback):
    """Log each Tune trial as an MLflow run (see the module docstring).

    Args:
        experiment: MLflow experiment name (created when missing).
        uri: tracking URI (see :func:`tracking_uri`).
        tags: tags for every run (sweep name, spec path, git commit …).
        job_tags: extra tags per trial, e.g. method/dataset of the Tuner this callback serves.
        jobs: the sweep's jobs by name (a trial's config names its job under ``_job``): the
            parent run per job, the method's config class for the params, the run names.
        description: the experiment's description (the spec's).
        flush_seconds: buffered per-epoch metrics are written at most this often.
        store: a pending :func:`open_experiment` of the same experiment and URI (opened in a
            thread by the caller); the callback waits for it at its first use. Without it, the
            store is opened at the first use.
        deadline_s: how long a blocking write (a run's creation, a trial's or the experiment's
            end) retries a store that keeps failing before it raises :class:`TrackingWriteError`.
        retry_base_s, retry_max_s: the first and the longest wait between retries.
    """

    def __init__(
        self,
        experiment: str,
        uri: str | None = None,
        tags: Mapping[str, str] | None = None,
        job_tags: Mapping[str, str] | None = None,
        flush_seconds: float = 5.0,
        *,
        jobs: Mapping[str, JobInfo] | None = None,
        description: str = "",
        spec_text: str = "",
        store: Future[tuple[MlflowClient, str]] | None = None,
        deadline_s: float = 600.0,
        retry_base_s: float = 0.5,
        retry_max_s: float = 30.0,
    ) -> None:
        self.experiment = experiment
        self.uri = tracking_uri(uri)
        self._store = store
        self._opened: tuple[MlflowClient, str] | None = None
        self.tags = {**(tags or {}), **(job_tags or {})}
        self.jobs = dict(jobs or {})
        self.description = description
        self.spec_text = spec_text
        self.parent_ids: dict[str, str] = {}
        self.tagged: set[str] = set()
        #: trials Tune reported complete in this driver (finished, or stopped by the scheduler)
        self.completed: set[str] = set()
        self.run_ids: dict[str, str] = {}
        self.last_step: dict[str, int] = {}
        # per-epoch metrics are buffered and written in batches: one SQLite transaction per
        # result costs more than a small epoch; a trial's end, error or checkpoint flushes
        self.flush_seconds = flush_seconds
        self.pending: dict[str, list] = {}
        self.last_flush = time.monotonic()
        self.deadline_s = deadline_s
        self.retry_base_s = retry_base_s
        self.retry_max_s = retry_max_s
        # after a failed non-blocking flush, the next one waits this long (doubling)
        self._backoff = 0.0

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its run config (callbacks included) with the experiment state; a pending
        # future, a client and the ids it looked up are not state: an unpickled logger reopens
        # the store and finds its runs by their tags at first use
        return {
            **self.__dict__,
            "_store": None,
            "_opened": None,
            "run_ids": {},
            "parent_ids": {},
            "tagged": set(),
            "last_step": {},
            "pending": {},
        }

    def _open(self) -> tuple[MlflowClient, str]:
        if self._opened is None:
            if self._store is not None:
                try:
                    self._opened = self._store.result()
                except Exception:
                    self._store = None  # a retry opens the store afresh
                    raise
            else:
                self._opened = open_experiment(self.experiment, self.uri)
        return self._opened

    @property
    def client(self) -> MlflowClient:
        return self._open()[0]

    @property
    def experiment_id(self) -> str:
        return self._open()[1]

    def _deadline(self) -> float:
        return time.monotonic() + self.deadline_s

    def _write(self, fn: Callable[[], T], deadline: float, what: str) -> T:
        """The one retry helper every store access of the logger goes through."""
        return _retry(fn, deadline, self.retry_base_s, self.retry_max_s, what)

    def _run_id(self, trial: Any) -> str:
        tid = trial.trial_id
        if tid not in self.run_ids:
            try:
                # find-or-create is retried as one step: a create whose reply was lost is found
                self.run_ids[tid] = self._write(
                    lambda: self._find_or_create_run(trial), self._deadline(), "run creation"
                )
            except Exception as e:
                if not _transient(e):
                    raise
                raise TrackingWriteError(
                    f"could not create or find the MLflow run of trial {tid} in {self.uri} "
                    f"within {self.deadline_s:g} s: {type(e).__name__}: {e}"
                ) from e
        return self.run_ids[tid]

    def _version_filter(self) -> str:
        """The search clause of this version's runs: its number and its spec (``sweep``) — specs
        sharing an experiment number their versions each, and one's reconcile or interrupt must
        not end the other's runs."""
        v, sweep = self.tags.get("sweep_version"), self.tags.get("sweep")
        clause = f" and tags.sweep_version = '{v}'" if v is not None else ""
        return clause + (f" and tags.sweep = '{sweep}'" if v is not None and sweep is not None else "")

    def _parent_run(self, kind: str, name: str, parent: str | None, run_name: str) -> str:
        """The version's sweep run or a job's run (found by tags, created when missing)."""
        key = f"{kind}:{name}"
        if key in self.parent_ids:
            return self.parent_ids[key]

        def find_or_create() -> str:
            found = self.client.search_runs(
                [self.experiment_id],
                filter_string=f"tags.`ftsweep.kind` = '{kind}' and tags.`ftsweep.name` = '{name}'"
                + self._version_filter(),
                max_results=1,
            )
            if found:
                if found[0].info.status != "RUNNING":
                    self.client.update_run(found[0].info.run_id, "RUNNING")
                return found[0].info.run_id
            return self._create_parent(kind, name, parent, run_name)

        self.parent_ids[key] = self._write(find_or_create, self._deadline(), f"{kind} run")
        return self.parent_ids[key]

    def _create_parent(
        self, kind: str, name: str, parent: str | None, run_name: str, tags: Mapping[str, str] | None = None
    ) -> str:
        tags = {
            **self.tags,
            **(tags or {}),
            "ftsweep.kind": kind,
            "ftsweep.name": name,
            "mlflow.runName": run_name,
        }
        if parent is not None:
            tags["mlflow.parentRunId"] = parent
        if kind == "sweep" and self.description:
            tags["mlflow.note.content"] = self.description
            self.client.set_experiment_tag(self.experiment_id, "mlflow.note.content", self.description)
        run_id = self.client.create_run(self.experiment_id, tags=tags).info.run_id
        if kind == "sweep":
            self._log_sweep_files(run_id)
        return run_id

    def claim_version(self) -> bool:
        """Create this version's sweep run — its number (tag ``sweep_version``) is then taken in
        the store — and say whether it keeps the number: False, with the run deleted, where
        another driver's sweep run of the same spec and number was created before it or in the
        same millisecond (both then give the number up). Two drivers that numbered their versions
        from one read of the store (different results folders) so never share one; on a SQLite
        store the caller holds :func:`store_lock` from its read to here, and no rival appears."""
        import uuid

        sweep = self.tags.get("sweep", "sweep")
        token = uuid.uuid4().hex
        deadline = self._deadline()
        run_name = f"{sweep} v{self.tags.get('sweep_version', '')}"

        def create() -> str:
            # a create whose reply was lost is found by its token, not made twice
            found = self.client.search_runs(
                [self.experiment_id], filter_string=f"tags.`ftsweep.claim` = '{token}'", max_results=1
            )
            if found:
                return found[0].info.run_id
            return self._create_parent("sweep", sweep, None, run_name, {"ftsweep.claim": token})

        run_id = self._write(create, deadline, "sweep run")
        runs = self._write(
            lambda: self.client.search_runs(
                [self.experiment_id],
                filter_string=f"tags.`ftsweep.kind` = 'sweep' and tags.`ftsweep.name` = '{sweep}'"
                + self._version_filter(),
                max_results=1000,
            ),
            deadline,
            "search_runs",
        )
        start = self._write(lambda: self.client.get_run(run_id).info.start_time, deadline, "get_run")
        if any(r.info.run_id != run_id and r.info.start_time <= start for r in runs):
            self._write(lambda: self.client.delete_run(run_id), deadline, "delete_run")
            return False
        self.parent_ids[f"sweep:{sweep}"] = run_id
        return True

    def _log_sweep_files(self, run_id: str) -> None:
        """The spec as run (overrides applied) and the driver's environment, on the sweep run."""
        import json
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            files = {"environment.json": json.dumps(environment(), indent=2) + "\n"}
            if self.spec_text:
                files["spec.yaml"] = self.spec_text
            for name, text in files.items():
                (Path(tmp) / name).write_text(text)
                self.client.log_artifact(run_id, str(Path(tmp) / name))

    @property
    def sweep_run_id(self) -> str | None:
        return next((v for k, v in self.parent_ids.items() if k.startswith("sweep:")), None)

    def _job_run(self, info: JobInfo) -> str:
        version = self.tags.get("sweep_version", "")
        sweep = self._parent_run(
            "sweep", self.tags.get("sweep", "sweep"), None, f"{self.tags.get('sweep')} v{version}"
        )
        return self._parent_run("job", info.name, sweep, info.name)

    def _find_or_create_run(self, trial: Any) -> str:
        from mlflow.entities import Param

        tid = trial.trial_id
        config = dict(trial.config)
        info = self.jobs.get(config.get(JOB_KEY, ""))
        seed = config.get("seed")
        if "__trial_index__" in config and "_seeds" in config:
            seed = list(config["_seeds"])[int(config["__trial_index__"])]
            config["seed"] = seed
        found = self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.trial_id = '{tid}'" + self._version_filter(),
            max_results=1,
        )
        if found:
            run_id = found[0].info.run_id
            hist = [m.step for m in self.client.get_metric_history(run_id, "training_iteration")]
            self.last_step[tid] = max(hist, default=0)
            self.client.update_run(run_id, "RUNNING")
            self.client.set_tag(run_id, "status", "RUNNING")
            if found[0].data.params:
                return run_id
        else:
            tags = {
                **self.tags,
                "trial_id": tid,
                "seed": str(seed),
                "dataset": str(config.get("dataset", info.dataset if info else "")),
                "mlflow.runName": run_name(info, config, seed),
                "status": "RUNNING",
            }
            if info is not None:
                tags.update(
                    {
                        "job": info.name,
                        "method": info.method,
                        "label": info.label,
                        "mlflow.parentRunId": self._job_run(info),
                    }
                )
            run_id = self.client.create_run(self.experiment_id, tags=tags).info.run_id
            self.last_step[tid] = 0
        # params (also on a found run without any: its creation's params were not written)
        items = [Param(k, v) for k, v in flatten(resolved_params(info, config)).items()]
        for i in range(0, len(items), 100):
            self.client.log_batch(run_id, params=items[i : i + 100])
        return run_id

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._run_id(trial)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        from mlflow.entities import Metric

        run_id = self._run_id(trial)
        step = int(result.get("training_iteration", 0))
        if step <= self.last_step.get(trial.trial_id, 0):
            return  # already logged before a restore
        if trial.trial_id not in self.tagged:
            self._tag_system(run_id, trial, result)
        since = result.get("iterations_since_restore")
        if since is not None and int(since) == 1 and step > 1:
            # the first result after a restore from a checkpoint (a retry or a resume)
            restored = str(step - 1)
            self._write(
                lambda: self.client.set_tag(run_id, "restored_from_iteration", restored),
                self._deadline(),
                "set_tag",
            )
        ts = int(float(result.get("timestamp", 0)) * 1000)
        self.pending.setdefault(run_id, []).extend(
            Metric(k, v, ts, step) for k, v in result_metrics(result).items()
        )
        self.last_step[trial.trial_id] = step
        if time.monotonic() - self.last_flush >= max(self.flush_seconds, self._backoff):
            self.flush(wait=False)

    def _tag_system(self, run_id: str, trial: Any, result: Mapping[str, Any]) -> None:
        """Where the trial really ran: device (with the GPU's name), node, trial folder."""
        from ftsweep.trial import DEVICE_KEY

        tags = {
            "device": str(result.get(DEVICE_KEY, "unknown")),
            "node": f"{result.get('hostname', '?')} ({result.get('node_ip', '?')})",
            # the trial's folder in the sweep's storage (its checkpoints), not the driver's staging copy
            "trial_dir": str(getattr(trial, "path", "") or getattr(trial, "local_path", "") or ""),
        }
        for k, v in tags.items():
            self._write(lambda k=k, v=v: self.client.set_tag(run_id, k, v), self._deadline(), "set_tag")
        self.tagged.add(trial.trial_id)

    def flush(self, wait: bool = True, deadline: float | None = None) -> None:
        """Write every buffered metric (batches of at most 1000, MLflow's limit).

        With ``wait``, retry until written or until ``deadline`` (default: ``deadline_s`` from
        now), then raise :class:`TrackingWriteError`. Without, make one attempt: what is not
        written stays buffered for the next flush, which waits a back-off first.
        """
        if deadline is None:
            deadline = self._deadline() if wait else time.monotonic()
        error: Exception | None = None
        for run_id in list(self.pending):
            metrics = self.pending[run_id]
            while metrics:
                batch = metrics[:1000]
                try:
                    self._write(
                        lambda r=run_id, b=batch: self.client.log_batch(r, metrics=b), deadline, "log_batch"
                    )
                except Exception as e:
                    if not _transient(e):
                        raise
                    error = e
                    break
                del metrics[: len(batch)]  # written: never resent
            if not metrics:
                del self.pending[run_id]
            if error is not None:
                break
        self.last_flush = time.monotonic()
        if error is None:
            self._backoff = 0.0
            return
        self._backoff = min(max(2 * self._backoff, self.retry_base_s), self.retry_max_s)
        unwritten = {r: len(m) for r, m in self.pending.items()}
        if not wait:
            _log.warning(
                "MLflow unreachable (%s: %s): %d metrics stay buffered, retried in %.1f s",
                type(error).__name__,
                error,
                sum(unwritten.values()),
                self._backoff,
            )
            return
        runs = ", ".join(f"{n} metrics of run {r}" for r, n in unwritten.items())
        raise TrackingWriteError(
            f"could not write {runs} to {self.uri} within {self.deadline_s:g} s: "
            f"{type(error).__name__}: {error}",
            unwritten,
        ) from error

    def on_checkpoint(self, iteration: int, trials: list, trial: Any, checkpoint: Any, **info: Any) -> None:
        # what a restore would resume from is in MLflow before it is needed (one attempt: a
        # store that is down keeps the metrics buffered instead of blocking the driver)
        self.flush(wait=False)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self.flush()

    def _end(self, trial: Any, status: str, tags: Mapping[str, str]) -> None:
        run_id = self._run_id(trial)
        deadline = self._deadline()
        self.flush(deadline=deadline)
        try:
            self._terminate(run_id, status, tags, deadline)
        except Exception as e:
            if not _transient(e):
                raise
            raise TrackingWriteError(
                f"could not mark run {run_id} {status} in {self.uri} within {self.deadline_s:g} s "
                f"(its metrics are written): {type(e).__name__}: {e}"
            ) from e

    def _log_curves(self, trial: Any) -> None:
        """The trial's learning curves (train loss, validation accuracy and loss) as a plot."""
        import tempfile

        run_id = self._run_id(trial)
        try:
            series = {k: self.client.get_metric_history(run_id, k) for k in CURVES}
            with tempfile.TemporaryDirectory() as tmp:
                path = plot_curves(
                    {k: [(m.step, m.value) for m in v] for k, v in series.items() if v}, Path(tmp)
                )
                if path is not None:
                    self.client.log_artifact(run_id, str(path))
        except Exception:  # noqa: BLE001 — a plot is a convenience: never fail the trial's end for it
            _log.exception("learning curves of run %s not logged", run_id)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        from ftsweep.trial import FAILED_KEY, REASON_KEY

        self.flush()
        self._log_curves(trial)

        last = getattr(trial, "last_result", None) or {}
        wall = {"wall_time_s": f"{float(last.get('time_total_s', 0.0)):.1f}"}
        if last.get(FAILED_KEY):
            self._end(trial, "FAILED", {"error": str(last.get(REASON_KEY, "trial failed"))[:5000], **wall})
        else:
            self.completed.add(trial.trial_id)
            self._end(trial, "FINISHED", wall)

    def ended_trials(self) -> set[str]:
        """The trials that ended (FINISHED) though their last result is not Tune's final one: a
        trial a scheduler stopped while it was paused (HyperBand's bracket) reports no result at
        its end. Those Tune reported complete to this driver, and those whose run a driver before
        a resume already ended FINISHED (only a completion or a final result ends one so)."""
        finished = {
            r.data.tags.get("trial_id")
            for r in self._version_runs()
            if r.info.status == "FINISHED" and r.data.tags.get("ftsweep.kind", "trial") == "trial"
        }
        return self.completed | {t for t in finished if t}

    def trial_statuses(self) -> dict[str, str]:
        """trial id → the MLflow status of its run in this version (FINISHED, FAILED, KILLED,
        RUNNING); a trial with a run for each retry counts by its latest."""
        runs = [r for r in self._version_runs() if r.data.tags.get("ftsweep.kind", "trial") == "trial"]
        out: dict[str, str] = {}
        for r in sorted(runs, key=lambda r: r.info.start_time or 0):
            if tid := r.data.tags.get("trial_id"):
                out[tid] = r.info.status
        return out

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._end(trial, "FAILED", {"error": _error_text(trial)[:5000]})

    def _version_runs(self) -> list:
        return self._write(
            lambda: self.client.search_runs(
                [self.experiment_id],
                filter_string="tags.sweep_version != ''" + self._version_filter(),
                max_results=50_000,
            ),
            self._deadline(),
            "search_runs",
        )

    def reconcile(self, outcomes: Mapping[str, tuple[str, Any]]) -> None:
        """End every run of this version from Tune's final state.

        ``outcomes`` maps trial ids to ``(FINISHED | FAILED | KILLED, result)``. A finished trial
        whose end the store never saw (the driver was killed in between) gets its final metrics
        and FINISHED; a trial that did not end, and every other run still RUNNING, ends KILLED;
        the job and sweep runs end FINISHED when all their trials ended, else KILLED.
        """
        from mlflow.entities import Metric

        from ftsweep.trial import REASON_KEY

        deadline = self._deadline()
        self.flush(deadline=deadline)
        runs = self._version_runs()
        by_trial = {r.data.tags.get("trial_id"): r for r in runs if r.data.tags.get("trial_id")}
        open_trials = False
        for tid, (outcome, result) in outcomes.items():
            run = by_trial.get(tid)
            if run is None:
                continue
            if outcome == "KILLED":
                open_trials = True
            status = outcome
            if run.info.status == status and run.data.tags.get("status") == status:
                continue
            rid = run.info.run_id
            metrics = result.metrics or {}
            if outcome != "KILLED" and metrics:
                step = int(metrics.get("training_iteration", 0))
                ts = int(float(metrics.get("timestamp", time.time())) * 1000)
                have = {m.step for m in self.client.get_metric_history(rid, "training_iteration")}
                if step and step not in have:
                    self.pending.setdefault(rid, []).extend(
                        Metric(k, v, ts, step) for k, v in result_metrics(metrics).items()
                    )
                    self.flush(deadline=deadline)
            tags = {}
            if outcome == "FAILED" and "error" not in run.data.tags:
                reason = metrics.get(REASON_KEY) or str(getattr(result, "error", "") or "trial failed")
                tags["error"] = str(reason)[:5000]
            self._terminate(rid, status, tags, deadline)
        self.kill_open_runs(finished=not open_trials)

    def kill_open_runs(self, finished: bool = False) -> int:
        """Every run of this version still RUNNING ends KILLED (tag ``status=KILLED``); with
        ``finished`` (every trial ended) the job and sweep runs end FINISHED instead — those an
        interrupted driver ended KILLED included: a resume that continues runs already made
        does not reopen their parents. Returns how many runs it ended KILLED."""
        killed = 0
        deadline = self._deadline()
        try:
            self.flush(deadline=deadline)
        except TrackingWriteError:
            _log.exception("metrics left unwritten while the sweep stops")
        for run in self._version_runs():
            parent = run.data.tags.get("ftsweep.kind") in ("sweep", "job")
            if finished and parent:
                if run.info.status != "FINISHED" or run.data.tags.get("status", "FINISHED") != "FINISHED":
                    self._terminate(run.info.run_id, "FINISHED", {}, deadline)
            elif run.info.status == "RUNNING":
                self._terminate(run.info.run_id, "KILLED", {}, deadline)
                killed += 1
        return killed

    def _terminate(self, run_id: str, status: str, tags: Mapping[str, str], deadline: float) -> None:
        """Tags, the tag ``status`` and the run's terminal status, each retried to ``deadline``. A
        run ending FINISHED that carries an ``error`` (its trial failed, then a retry finished it in
        the same run) keeps that text as ``error_before_retry``: ``error`` is a failed run's."""
        if status == "FINISHED":
            old = self._write(lambda: self.client.get_run(run_id).data.tags.get("error"), deadline, "get_run")
            if old is not None:
                tags = {"error_before_retry": old, **tags}
                self._write(lambda: self.client.delete_tag(run_id, "error"), deadline, "delete_tag")
        for k, v in {**tags, "status": status}.items():
            self._write(lambda k=k, v=v: self.client.set_tag(run_id, k, v), deadline, "set_tag")
        self._write(lambda: self.client.set_terminated(run_id, status), deadline, "set_terminated")


#: the metrics plotted as a trial's learning curves
CURVES = ("train/loss", "val/loss", "val/acc")


def plot_curves(series: Mapping[str, list[tuple[int, float]]], folder: Path) -> Path | None:
    """``learning_curves.png`` in ``folder``: one panel per metric over epochs."""
    if not series:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(series), figsize=(4 * len(series), 3), squeeze=False)
    for ax, (name, points) in zip(axes[0], series.items(), strict=True):
        ax.plot([p[0] for p in points], [p[1] for p in points], marker=".")
        ax.set_xlabel("epoch")
        ax.set_title(name)
    fig.tight_layout()
    path = folder / "learning_curves.png"
    fig.savefig(path)
    plt.close(fig)
    return path


def environment() -> dict[str, Any]:
    """Package versions, Python, CUDA and the GPUs the driver sees."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    packages = {}
    for name in ("ftsweep", "torch", "torchvision", "timm", "ray", "mlflow", "optuna", "pot", "numpy"):
        try:
            packages[name] = version(name)
        except PackageNotFoundError:
            packages[name] = None
    import torch

    cuda = torch.cuda.is_available()
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": packages,
        "cuda": torch.version.cuda if cuda else None,
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else [],
        "git_commit": git_commit(),
    }


def log_files(uri: str, run_id: str, paths: list[Path]) -> None:
    """Attach files (a version's tables) to a run."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri(uri))
    for p in paths:
        if p.is_file():
            client.log_artifact(run_id, str(p))


def _error_text(trial: Any) -> str:
    """The last line naming the exception in the trial's error file (its reason)."""
    path = getattr(trial, "error_file", None)
    try:
        text = Path(path).read_text() if path else ""
    except OSError:
        text = ""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    reasons = [ln for ln in lines if "Error" in ln.split(":")[0] or "Exception" in ln.split(":")[0]]
    return (reasons[-1] if reasons else (lines[-1] if lines else "trial failed")) + (
        "\n\n" + text if text else ""
    )
