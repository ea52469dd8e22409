"""MLflow runs → one pandas row per trial."""

from __future__ import annotations

import pandas as pd

__all__ = ["load_runs", "parse_param"]


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


def load_runs(
    experiment: str, tracking_uri: str | None = None, *, status: str | None = "FINISHED"
) -> pd.DataFrame:
    """One row per run of ``experiment``.

    ``df.attrs["params"]`` lists the param (configuration) columns. Columns: ``run_id``, ``status``, ``method`` (the spec label), ``dataset``, ``seed``, every
    param (config field) by name, every final metric by name (``test/acc`` = the selected
    epoch's), and ``error`` for failed runs.

    Args:
        experiment: MLflow experiment name (the sweep's name).
        tracking_uri: defaults as in :func:`ftsweep.tracking.tracking_uri`.
        status: keep only runs with this status (None keeps all).

    Raises:
        KeyError: the experiment does not exist (the message lists the ones that do).
    """
    from mlflow.tracking import MlflowClient

    from ftsweep.tracking import tracking_uri as resolve

    client = MlflowClient(resolve(tracking_uri))
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        names = sorted(e.name for e in client.search_experiments())
        raise KeyError(f"no MLflow experiment {experiment!r}; known: {', '.join(names) or 'none'}")
    rows = []
    params: set[str] = set()
    for run in client.search_runs([exp.experiment_id], max_results=50_000):
        params.update(run.data.params)
        row: dict[str, object] = {k: parse_param(v) for k, v in run.data.params.items()}
        row.update(run.data.metrics)
        row["run_id"] = run.info.run_id
        row["status"] = run.info.status
        row["method"] = run.data.tags.get("label", run.data.tags.get("method", row.get("method")))
        row["dataset"] = run.data.tags.get("dataset", row.get("dataset"))
        row["seed"] = parse_param(run.data.tags.get("seed", str(row.get("seed"))))
        row["error"] = run.data.tags.get("error", "").split("\n")[0]
        rows.append(row)
    df = pd.DataFrame(rows)
    if status is not None and len(df):
        df = df[df["status"] == status]
    df = df.reset_index(drop=True)
    df.attrs["params"] = sorted(params - {"seed"})
    return df
