"""MLflow tracking: one experiment per sweep, one run per trial, logged from the Tune driver.

:class:`MLflowTrialLogger` is a ``tune.Callback`` (driver side, so trials on remote nodes need
no MLflow access and only one process writes the store). Per trial it creates a run with every
config value as a param, tags (sweep, method, dataset, seed, git commit, trial id), per-epoch
metrics at ``step = training_iteration`` and, at the end, the final reported metrics — whose
``test/*`` are the selected epoch's — and status FINISHED or FAILED with the error as the tag
``error``. After a trial is restored from a checkpoint, steps already logged are skipped, so a
recovery never duplicates metric steps; a driver restart finds the trial's run by its tag.
"""

from __future__ import annotations

import math
import os
import subprocess
import time
from collections.abc import Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ray import tune

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

__all__ = [
    "DEFAULT_TRACKING_URI",
    "MLflowTrialLogger",
    "flatten",
    "git_commit",
    "open_experiment",
    "tracking_uri",
]

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


def open_experiment(experiment: str, uri: str | None = None) -> tuple[MlflowClient, str]:
    """A client of the tracking store and the id of ``experiment`` (created when missing).

    Opening a new SQLite store creates its schema, which takes seconds: ``run_sweep`` does this
    in a thread while Ray starts and the first trial actor imports its modules.
    """
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri(uri))
    exp = client.get_experiment_by_name(experiment)
    return client, (exp.experiment_id if exp else client.create_experiment(experiment))


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
        store: a pending :func:`open_experiment` of the same experiment and URI (opened in a
            thread by the caller); the callback waits for it at its first use. Without it, the
            store is opened at the first use.
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

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its run config (callbacks included) with the experiment state; a pending
        # future and a client are not state: an unpickled logger reopens the store at first use
        return {**self.__dict__, "_store": None, "_opened": None}

    def _open(self) -> tuple[MlflowClient, str]:
        if self._opened is None:
            self._opened = self._store.result() if self._store else open_experiment(self.experiment, self.uri)
        return self._opened

    @property
    def client(self) -> MlflowClient:
        return self._open()[0]

    @property
    def experiment_id(self) -> str:
        return self._open()[1]

    def _run_id(self, trial: Any) -> str:
        tid = trial.trial_id
        if tid in self.run_ids:
            return self.run_ids[tid]
        found = self.client.search_runs(
            [self.experiment_id], filter_string=f"tags.trial_id = '{tid}'", max_results=1
        )
        if found:
            run_id = found[0].info.run_id
            hist = [m.step for m in self.client.get_metric_history(run_id, "training_iteration")]
            self.last_step[tid] = max(hist, default=0)
            self.client.update_run(run_id, "RUNNING")
        else:
            config = dict(trial.config)
            seed = config.get("seed")
            if "__trial_index__" in config and "_seeds" in config:
                seed = list(config["_seeds"])[int(config["__trial_index__"])]
                config["seed"] = seed
            tags = {
                **self.tags,
                "trial_id": tid,
                "seed": str(seed),
                "dataset": str(config.get("dataset", "")),
                "mlflow.runName": f"{self.tags.get('job', 'trial')}-{tid}",
            }
            run = self.client.create_run(self.experiment_id, tags=tags)
            run_id = run.info.run_id
            params = flatten(config)
            from mlflow.entities import Param

            items = [Param(k, v) for k, v in params.items()]
            for i in range(0, len(items), 100):
                self.client.log_batch(run_id, params=items[i : i + 100])
            self.last_step[tid] = 0
        self.run_ids[tid] = run_id
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
        if time.monotonic() - self.last_flush >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        """Write every buffered metric (batches of at most 1000, MLflow's limit)."""
        for run_id, metrics in self.pending.items():
            for i in range(0, len(metrics), 1000):
                self.client.log_batch(run_id, metrics=metrics[i : i + 1000])
        self.pending = {}
        self.last_flush = time.monotonic()

    def on_checkpoint(self, iteration: int, trials: list, trial: Any, checkpoint: Any, **info: Any) -> None:
        self.flush()  # what a restore would resume from is in MLflow before it is needed

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self.flush()

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        run_id = self._run_id(trial)
        self.flush()
        self.client.set_tag(run_id, "status", "FINISHED")
        self.client.set_terminated(run_id, "FINISHED")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        run_id = self._run_id(trial)
        self.flush()
        self.client.set_tag(run_id, "error", _error_text(trial)[:5000])
        self.client.set_tag(run_id, "status", "FAILED")
        self.client.set_terminated(run_id, "FAILED")


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
