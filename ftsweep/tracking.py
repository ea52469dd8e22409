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
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ray import tune

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

__all__ = [
    "DEFAULT_TRACKING_URI",
    "MLflowTrialLogger",
    "TrackingWriteError",
    "flatten",
    "git_commit",
    "open_experiment",
    "tracking_uri",
]

_log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
INTERNAL_KEYS = ("__trial_index__", "_seeds")
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
    """The current git commit (``unknown`` outside a checkout, e.g. a Ray job working dir)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return os.environ.get("FTSWEEP_GIT_COMMIT", "unknown")


def _sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (``None`` for other stores and in-memory ones)."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        return None
    path = uri[len(prefix) :].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


@contextlib.contextmanager
def _store_lock(uri: str) -> Iterator[None]:
    """An exclusive ``fcntl`` lock on ``<db>.lock`` beside a SQLite store; nothing for others."""
    db = _sqlite_path(uri)
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


def _experiment_id(client: MlflowClient, experiment: str) -> str:
    from mlflow.exceptions import MlflowException

    exp = client.get_experiment_by_name(experiment)
    if exp is not None:
        return exp.experiment_id
    try:
        return client.create_experiment(experiment)
    except MlflowException as e:
        # another process created it between the look-up and the create (an MLflow server)
        if e.error_code != "RESOURCE_ALREADY_EXISTS" and "already exists" not in str(e):
            raise
        exp = client.get_experiment_by_name(experiment)
        if exp is None:
            raise
        return exp.experiment_id


def open_experiment(experiment: str, uri: str | None = None) -> tuple[MlflowClient, str]:
    """A client of the tracking store and the id of ``experiment`` (created when missing).

    Opening a new SQLite store creates its schema, which takes seconds: ``run_sweep`` does this
    in a thread while Ray starts and the first trial actor imports its modules. Safe for any
    number of processes at once (see the module docstring): on SQLite the schema and the
    experiment are created under a lock on ``<db>.lock``.
    """
    from mlflow.tracking import MlflowClient

    uri = tracking_uri(uri)
    with _store_lock(uri):
        client = MlflowClient(uri)  # the first client of a sqlite URI creates/upgrades the schema
        return client, _experiment_id(client, experiment)


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


def _metrics(result: Mapping[str, Any]) -> dict[str, float]:
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
        # future and a client are not state: an unpickled logger reopens the store at first use
        return {**self.__dict__, "_store": None, "_opened": None}

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

    def _find_or_create_run(self, trial: Any) -> str:
        from mlflow.entities import Param

        tid = trial.trial_id
        config = dict(trial.config)
        seed = config.get("seed")
        if "__trial_index__" in config and "_seeds" in config:
            seed = list(config["_seeds"])[int(config["__trial_index__"])]
            config["seed"] = seed
        found = self.client.search_runs(
            [self.experiment_id], filter_string=f"tags.trial_id = '{tid}'", max_results=1
        )
        if found:
            run_id = found[0].info.run_id
            hist = [m.step for m in self.client.get_metric_history(run_id, "training_iteration")]
            self.last_step[tid] = max(hist, default=0)
            self.client.update_run(run_id, "RUNNING")
            if found[0].data.params:
                return run_id
        else:
            tags = {
                **self.tags,
                "trial_id": tid,
                "seed": str(seed),
                "dataset": str(config.get("dataset", "")),
                "mlflow.runName": f"{self.tags.get('job', 'trial')}-{tid}",
            }
            run_id = self.client.create_run(self.experiment_id, tags=tags).info.run_id
            self.last_step[tid] = 0
        # params (also on a found run without any: its creation's params were not written)
        items = [Param(k, v) for k, v in flatten(config).items()]
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
        ts = int(float(result.get("timestamp", 0)) * 1000)
        self.pending.setdefault(run_id, []).extend(
            Metric(k, v, ts, step) for k, v in _metrics(result).items()
        )
        self.last_step[trial.trial_id] = step
        if time.monotonic() - self.last_flush >= max(self.flush_seconds, self._backoff):
            self.flush(wait=False)

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
            for k, v in {**tags, "status": status}.items():
                self._write(lambda k=k, v=v: self.client.set_tag(run_id, k, v), deadline, "set_tag")
            self._write(lambda: self.client.set_terminated(run_id, status), deadline, "set_terminated")
        except Exception as e:
            if not _transient(e):
                raise
            raise TrackingWriteError(
                f"could not mark run {run_id} {status} in {self.uri} within {self.deadline_s:g} s "
                f"(its metrics are written): {type(e).__name__}: {e}"
            ) from e

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._end(trial, "FINISHED", {})

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._end(trial, "FAILED", {"error": _error_text(trial)[:5000]})


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
