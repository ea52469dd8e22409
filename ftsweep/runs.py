"""MLflow runs → one pandas row per trial."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

import pandas as pd

__all__ = [
    "PATH_PARAMS",
    "PLACE_PARAMS",
    "load_runs",
    "missing_store",
    "parse_param",
    "sweep_versions",
    "setting",
    "trial_identity",
]

#: params that name where a run read its files or ran, not what it computed: two runs that differ
#: only in them are the same trial (and one configuration of a table)
PLACE_PARAMS = ("data_root", "cache_dir", "device")
#: params that name a file: the same trial and configuration whatever folder holds it
PATH_PARAMS = ("pretrained",)


def setting(param: str, value: object) -> object:
    """What ``param``'s value says about the computation — the one rule of :func:`trial_identity`
    and of a table's configurations (``ftsweep.tables``): None for a :data:`PLACE_PARAMS` param,
    a :data:`PATH_PARAMS` path by its file name (``/ckpt/a.pt`` and ``ckpts/a.pt`` are one
    checkpoint, ``a.pt`` and ``b.pt`` two), anything else itself."""
    if param in PLACE_PARAMS:
        return None
    if param in PATH_PARAMS and isinstance(value, str):
        return value.rstrip("/").rsplit("/", 1)[-1]
    return value


def parse_param(value: str) -> object:
    """MLflow stores params as strings: turn numbers, booleans and None back into values."""
    if value in ("None", "none", ""):
        return None if value == "None" else value
    if value in ("True", "False"):
        return value == "True"
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


def trial_identity(row: pd.Series, params: list[str]) -> str:
    """What makes two runs the same trial: job, search point (params as :func:`setting` reads
    them: places left out, a checkpoint by its file name) and seed."""
    parts = [str(row.get("job")), str(row.get("method")), str(row.get("dataset")), str(row.get("seed"))]
    for p in params:
        if p not in PLACE_PARAMS:
            parts.append(f"{p}={setting(p, row.get(p))!r}")
    return "|".join(parts)


def missing_store(uri: str) -> Path | None:
    """The file (SQLite) or folder (MLflow's filesystem store) of the local store at the
    resolved ``uri`` when it does not exist; None when it does, and for servers and in-memory
    stores. Opening a missing local store would create it."""
    from ftsweep.tracking import sqlite_path

    parsed = urlparse(uri)
    if parsed.scheme == "sqlite":
        db = sqlite_path(uri)
        return db if db is not None and not db.is_file() else None
    if parsed.scheme in ("", "file"):
        folder = Path(unquote(parsed.path) if parsed.scheme else uri)
        return None if folder.is_dir() else folder
    return None


def _experiment(experiment: str, tracking_uri: str | None):  # noqa: ANN202 — (client, id) or None
    """The store's client and ``experiment``'s id, or None where the local store or the experiment
    does not exist (nothing is created)."""
    from mlflow.tracking import MlflowClient

    from ftsweep.tracking import tracking_uri as resolve

    uri = resolve(tracking_uri)
    if missing_store(uri) is not None:
        return None
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    return None if exp is None else (client, exp.experiment_id)


def sweep_versions(experiment: str, tracking_uri: str | None = None) -> dict[str, list[int]]:
    """Each spec's versions that logged to ``experiment``: the tag ``sweep`` (the spec's name) →
    the sorted ``sweep_version`` of its version runs; ``{}`` without the store or experiment.
    Every version that logged a trial has its version run."""
    found = _experiment(experiment, tracking_uri)
    if found is None:
        return {}
    client, exp_id = found
    out: dict[str, set[int]] = {}
    for run in client.search_runs([exp_id], "tags.`ftsweep.kind` = 'sweep'", max_results=50_000):
        tags = run.data.tags
        out.setdefault(tags.get("sweep", ""), set()).add(int(tags.get("sweep_version", "0") or 0))
    return {name: sorted(v) for name, v in out.items()}


def load_runs(
    experiment: str,
    tracking_uri: str | None = None,
    *,
    status: str | None = "FINISHED",
    version: int | str | None = "latest",
) -> pd.DataFrame:
    """One row per trial of ``experiment``: never one trial counted twice.

    Runs carry the tag ``sweep_version`` (runs from before versions existed: 0). ``version``
    ``"latest"`` keeps the runs of the newest version of each spec that logs to the experiment
    (versions are numbered per spec, ``results/<spec name>/vN``; two specs may share an
    ``experiment:``, as target pretraining's Table 2 halves do), an integer that version's,
    ``"all"`` (or None) every version; in every case a trial identity (:func:`trial_identity`)
    counts once — its latest run of the requested status.

    ``df.attrs["params"]`` lists the param (configuration) columns, ``df.attrs["select_by"]``
    the ``table.select_by`` the runs' specs named (their tag ``select_by``; empty where unset). Columns: ``run_id``, ``status``, ``method`` (the spec label), ``dataset``, ``seed``, every
    param (config field) by name, every final metric by name (``test/acc`` = the selected
    epoch's), and ``error`` for failed runs.

    Args:
        experiment: MLflow experiment name (the sweep's name).
        tracking_uri: defaults as in :func:`ftsweep.tracking.tracking_uri`.
        status: keep only runs with this status (None keeps all).

    Raises:
        KeyError: the experiment does not exist (the message lists the ones that do).
        FileNotFoundError: no local store at ``tracking_uri`` (it is not created).
    """
    from mlflow.tracking import MlflowClient

    from ftsweep.tracking import tracking_uri as resolve

    uri = resolve(tracking_uri)
    if (missing := missing_store(uri)) is not None:
        raise FileNotFoundError(f"no MLflow store there ({missing} does not exist)")
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        names = sorted(e.name for e in client.search_experiments())
        raise KeyError(f"no MLflow experiment {experiment!r}; known: {', '.join(names) or 'none'}")
    rows = []
    params: set[str] = set()
    for run in client.search_runs([exp.experiment_id], max_results=50_000):
        if run.data.tags.get("ftsweep.kind") in ("sweep", "job"):
            continue  # a version's and a job's parent runs, not trials
        params.update(run.data.params)
        row: dict[str, object] = {k: parse_param(v) for k, v in run.data.params.items()}
        # a metric named as a param never shadows it: params are the trial's identity
        row.update({k: v for k, v in run.data.metrics.items() if k not in run.data.params})
        row["run_id"] = run.info.run_id
        row["status"] = run.info.status
        row["method"] = run.data.tags.get("label", run.data.tags.get("method", row.get("method")))
        row["dataset"] = run.data.tags.get("dataset", row.get("dataset"))
        row["seed"] = parse_param(run.data.tags.get("seed", str(row.get("seed"))))
        row["error"] = run.data.tags.get("error", "").split("\n")[0]
        row["job"] = run.data.tags.get("job")
        row["sweep_version"] = int(run.data.tags.get("sweep_version", "0") or 0)
        row["sweep"] = run.data.tags.get("sweep", "")
        row["start_time"] = run.info.start_time or 0
        row["_select_by"] = run.data.tags.get("select_by", "")
        rows.append(row)
    df = pd.DataFrame(rows)
    names = sorted(params - {"seed"})
    if len(df):
        if version == "latest":  # each spec's newest version
            df = df[df["sweep_version"] == df.groupby("sweep")["sweep_version"].transform("max")]
        elif version not in (None, "all"):
            df = df[df["sweep_version"] == int(version)]
        if status is not None:
            df = df[df["status"] == status]
        ident = df.apply(trial_identity, axis=1, params=names) if len(df) else pd.Series(dtype=str)
        df = df.assign(_identity=ident).sort_values(["sweep_version", "start_time"], kind="stable")
        df = df.drop_duplicates("_identity", keep="last").drop(columns="_identity")
    selections = sorted(set(df["_select_by"]) - {""}) if len(df) else []
    df = df.drop(columns="_select_by", errors="ignore").reset_index(drop=True)
    df.attrs["params"] = names
    df.attrs["select_by"] = selections  # the specs' table.select_by (tag select_by), where set
    return df
