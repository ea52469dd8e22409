"""``ftsweep export``: the weights of each table cell's selected run, ready to load.

A cell's run is chosen as the tables choose (:func:`ftsweep.tables.select_configs`): the
configuration with the best mean ``best/val/acc`` over seeds, then, within it, the seed run with
the best ``best/val/acc``. Its weights are those of its selected epoch (``best/epoch``), which
every checkpoint keeps beside ``state.pt`` as ``best_model.pt`` (``FineTuner.keep_best_model``);
a checkpoint written before that existed only has the latest epoch's weights, which are exported
instead and said so (``"weights": "last_epoch"`` in ``config.json``).

Each cell is written to ``<out>/<row>__<col>/`` (keys sanitised to ``[A-Za-z0-9._=+-]``; cells
whose keys sanitise alike get ``<row>__<col>-<hash8>/`` each, ``hash8`` from their unsanitised
keys). An export writes every cell or none, and never overwrites a folder already there
(:func:`export_runs`):

- ``model.pt`` — the state_dict of the method's ``nn.ModuleDict`` (``backbone`` + heads), loadable
  with ``torch.load(path, weights_only=True)``;
- ``config.json`` — ``config`` (every field of the method's resolved config dataclass, ready for
  ``<Method>(config)``), ``method``, ``label``, ``dataset``, ``seed``, ``run_id``, ``metrics`` (the
  run's final metrics), where the weights come from;
- ``load.txt`` — how to load it with ftsweep and with plain torch.
"""

from __future__ import annotations

import ast
import json
import math
import os
import re
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = [
    "CELL_FILES",
    "ExportedCell",
    "checkpoint_dir",
    "decode_params",
    "export_runs",
    "is_exported_cell",
    "layout_cells",
    "select_cells",
]


@dataclass(frozen=True)
class ExportedCell:
    """One exported cell: its keys, its folder and the run its weights come from."""

    row: Any
    col: Any
    path: Path
    run_id: str
    method: str
    seed: Any
    weights: str  # "selected_epoch" | "last_epoch"
    epoch: int


# ---- which run per cell ---------------------------------------------------------------------------
def _best_seed(chosen: pd.DataFrame, select_by: str, mode: str) -> pd.Series | None:
    runs = chosen[chosen[select_by].notna()]
    if runs.empty:
        return None
    pos = runs[select_by].to_numpy().argmin() if mode == "min" else runs[select_by].to_numpy().argmax()
    return runs.iloc[int(pos)]


def _cells_of(chosen: pd.DataFrame, rows: list[str], cols: list[str], select_by: str, mode: str) -> list:
    out = []
    for key, group in chosen.groupby(rows + cols, dropna=False, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        best = _best_seed(group, select_by, mode)
        if best is None:
            continue
        r, c = key[: len(rows)], key[len(rows) :]
        out.append((r[0] if len(r) == 1 else r, c[0] if len(c) == 1 else c, best))
    return out


def select_cells(
    df: pd.DataFrame,
    rows: str | Sequence[str] = "method",
    cols: str | Sequence[str] = "dataset",
    *,
    select_by: str = "best/val/acc",
    mode: str = "max",
) -> list[tuple[Any, Any, pd.Series]]:
    """``(row, col, run)`` per cell: the tables' configuration (:func:`select_configs`), then its
    seed run with the best ``select_by``.

    Raises:
        KeyError: the runs lack a row / column key or ``select_by``.
    """
    from ftsweep.tables import require_columns, select_configs

    rows = [rows] if isinstance(rows, str) else list(rows)
    cols = [cols] if isinstance(cols, str) else list(cols)
    require_columns(df, [*rows, *cols, select_by])
    return _cells_of(select_configs(df, rows + cols, select_by, mode), rows, cols, select_by, mode)


def layout_cells(layout: Callable[[pd.DataFrame], Any], df: pd.DataFrame) -> list[tuple[Any, Any, pd.Series]]:
    """The cells of a paper layout (``analysis.<paper>:<table>``): it is rendered once and every
    configuration selection it makes is recorded; each selection's keys split into rows (all but
    the last) and the column (the last). A cell found by several selections over the same keys (a
    table with accuracy and time cost per cell) keeps the first; where selections use different
    keys, each row is named ``key=value`` (the cells of a λ_n row and a λ_p row are not one).

    Raises:
        KeyError: the layout made no selection from these runs.
    """
    from ftsweep.tables import recorded_selections

    with recorded_selections() as calls:
        layout(df)
    calls = [c for c in calls if "run_id" in c[3].columns and not c[3].empty]
    # selections over different keys are different cells even where their values agree (Core-
    # tuning's Table 6: a row of λ_n values and one of λ_p values): their rows name the keys
    named = len({tuple(keys) for keys, *_ in calls}) > 1
    seen: dict[tuple, tuple[Any, Any, pd.Series]] = {}
    for keys, select_by, mode, chosen in calls:
        rows, cols = keys[:-1] or keys, keys[-1:] if len(keys) > 1 else []
        for r, c, run in _cells_of(chosen, rows, cols, select_by, mode):
            if named:
                values = r if isinstance(r, tuple) else (r,)
                r = ",".join(f"{k}={v}" for k, v in zip(rows, values, strict=True))
            seen.setdefault((tuple(keys), repr(r), repr(c)), (r, c, run))
    if not seen:
        raise KeyError("the layout selected no configuration from these runs")
    return list(seen.values())


# ---- where the weights are ---------------------------------------------------------------------
def _checkpoints(folder: Path) -> list[Path]:
    found = [p for p in folder.glob("checkpoint_*") if (p / "state.pt").is_file()]
    return sorted(found, key=lambda p: int(re.sub(r"\D", "", p.name) or 0))


def checkpoint_dir(tags: dict[str, str], results: str | Path | None = "results") -> Path:
    """The latest checkpoint folder of a trial's run: under its ``trial_dir`` tag, else its
    trial folder ``<job>_<trial_id>`` under ``results`` (``<name>/v<N>/tune/`` or ``retry<k>/``;
    the tag can name a driver-side staging folder that holds no checkpoint).

    Raises:
        FileNotFoundError: no checkpoint found (the message lists where it looked).
    """
    looked = []
    if tags.get("trial_dir"):
        folder = Path(tags["trial_dir"])
        looked.append(str(folder))
        if found := _checkpoints(folder):
            return found[-1]
    name = f"{tags.get('job', 'trial')}_{tags.get('trial_id', '')}"
    if results is not None and tags.get("trial_id"):
        root = Path(results)
        version = tags.get("sweep_version", "*") or "*"
        for pattern in (f"*/v{version}/*/{name}", f"v{version}/*/{name}", f"*/{name}", name, f"**/{name}"):
            looked.append(str(root / pattern))
            for folder in sorted(root.glob(pattern)):
                if found := _checkpoints(folder):
                    return found[-1]
    raise FileNotFoundError(f"no checkpoint_*/state.pt of trial {name}; looked in: {', '.join(looked)}")


# ---- the run's config ------------------------------------------------------------------------------
def decode_params(params: dict[str, str], config_cls: type) -> dict[str, Any]:
    """MLflow's string params back to the fields of ``config_cls`` (each value as its field's
    type: ``(30, 60)`` → a tuple, ``None``, numbers, strings kept as written), checked by
    building the config."""
    from ftsweep.config.base import _coerce

    hints = typing.get_type_hints(config_cls)
    out: dict[str, Any] = {}
    for name in config_cls.field_names():
        if name not in params:
            continue
        raw = params[name]
        try:
            literal = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            literal = raw
        for candidate in (literal, raw):
            try:
                out[name] = _coerce(name, candidate, hints[name])
                break
            except Exception:  # noqa: BLE001 — try the next reading
                continue
        else:
            out[name] = raw
    return config_cls.from_dict(out).to_dict()


def _json_value(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if hasattr(v, "item"):
        return _json_value(v.item())
    return v


def _folder_name(row: Any, col: Any) -> str:
    def part(v: Any) -> str:
        v = "-".join(map(str, v)) if isinstance(v, tuple) else str(v)
        return re.sub(r"[^A-Za-z0-9._=+-]", "_", v) or "_"

    return f"{part(row)}__{part(col)}"


LOAD_TEXT = """\
{label} on {dataset} (seed {seed}, MLflow run {run_id}), {weights_note}.

With ftsweep (builds the method's data and model; the weights replace the initial ones):

    import json, torch
    from {module} import {cls}

    info = json.load(open("config.json"))
    config = {{**info["config"], "pretrained": "none"}}   # no initial checkpoint needed
    method = {cls}(config)
    method.model.load_state_dict(torch.load("model.pt", weights_only=True))
    method.model.eval()
    logits = method.model["classifier"](method.model["backbone"](images))  # images: (B, 3, H, W)

With plain torch (the backbone from ftsweep.backbones, the heads are nn modules of the keys):

    import torch
    from ftsweep.backbones import create_backbone

    state = torch.load("model.pt", weights_only=True)        # {{"backbone.<...>": tensor, "classifier.<...>": ...}}
    backbone = create_backbone("{backbone}")
    backbone.load_state_dict({{k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}})
    classifier = torch.nn.Linear(*state["classifier.weight"].shape[::-1])
    classifier.load_state_dict({{"weight": state["classifier.weight"], "bias": state["classifier.bias"]}})
    logits = classifier(backbone.eval()(images))

Inputs are normalised as ftsweep's eval view of {dataset} (ftsweep.data.transforms, "eval").
"""


@dataclass(frozen=True)
class _Planned:
    """One cell resolved and checked, nothing read from its checkpoint or written yet."""

    row: Any
    col: Any
    name: str  # its folder under the export's output
    run: Any  # the MLflow run
    seed: Any  # as the runs table has it
    method: str
    cls: type
    ckpt: Path
    config: dict[str, Any]


def _plan_one(row: Any, col: Any, run: pd.Series, client: Any, results: str | Path | None) -> _Planned:
    """Resolve a cell: its MLflow run, method, checkpoint folder and config (read, not written).

    Raises:
        FileNotFoundError: no checkpoint; KeyError: an unknown method; ConfigError: its params.
    """
    from ftsweep.trial import method_class

    r = client.get_run(str(run["run_id"]))
    tags = r.data.tags
    method = tags.get("method") or str(run.get("method"))
    cls = method_class(method)
    ckpt = checkpoint_dir(tags, results)
    config = decode_params(dict(r.data.params), cls.config_cls)
    return _Planned(row, col, _folder_name(row, col), r, run.get("seed"), method, cls, ckpt, config)


def _unique_names(planned: list[_Planned], out: Path) -> list[_Planned]:
    """Cells whose keys sanitise to one folder name get ``<name>-<hash8>`` (the first 8 hex of
    the sha1 of their unsanitised keys), the others keep their name.

    Raises:
        ConfigError: (``--output``) two cells still share a folder (keys that print alike).
    """
    import hashlib
    from collections import Counter
    from dataclasses import replace

    from ftsweep.config.errors import ConfigError

    def key(p: _Planned) -> str:
        as_list = lambda v: [str(x) for x in v] if isinstance(v, tuple) else [str(v)]  # noqa: E731
        return json.dumps([as_list(p.row), as_list(p.col)], ensure_ascii=False)

    counts = Counter(p.name for p in planned)
    renamed = [
        replace(p, name=f"{p.name}-{hashlib.sha1(key(p).encode()).hexdigest()[:8]}")
        if counts[p.name] > 1
        else p
        for p in planned
    ]
    seen: dict[str, _Planned] = {}
    for p in renamed:
        if (other := seen.setdefault(p.name, p)) is not p:
            raise ConfigError(
                "--output",
                str(out),
                f"cells ({other.row!r}, {other.col!r}) and ({p.row!r}, {p.col!r}) would both be exported to {p.name}/",
            )
    return renamed


def _write_one(p: _Planned, folder: Path) -> ExportedCell:
    """Write a planned cell into ``folder`` (an empty folder made for it).

    Raises:
        ConfigError: (``checkpoint``) its checkpoint files cannot be read.
    """
    import torch

    from ftsweep.config.errors import ConfigError

    def load(path: Path, weights_only: bool) -> Any:
        try:
            return torch.load(path, map_location="cpu", weights_only=weights_only)
        except Exception as e:  # noqa: BLE001 — a damaged / foreign file is bad input
            first = (str(e).strip().splitlines() or [""])[0]
            raise ConfigError(
                "checkpoint", str(path), f"cannot be read ({type(e).__name__}: {first})"
            ) from None

    r, cls, ckpt, config = p.run, p.cls, p.ckpt, p.config
    tags = r.data.tags
    state = load(ckpt / "state.pt", weights_only=False)
    best = ckpt / "best_model.pt"
    if not isinstance(state, dict) or (not best.is_file() and "model" not in state):
        raise ConfigError(
            "checkpoint", str(ckpt / "state.pt"), "holds no model weights (not a method checkpoint)"
        )
    tracker_epoch = int((state.get("tracker") or {}).get("epoch") or state.get("epoch") or 0)
    if best.is_file():
        weights, epoch = load(best, weights_only=True), "selected_epoch"
        at = tracker_epoch
    else:
        weights, at = state["model"], int(state.get("epoch") or 0)
        epoch = "selected_epoch" if at == tracker_epoch else "last_epoch"
    torch.save({k: v.detach().cpu().contiguous() for k, v in weights.items()}, folder / "model.pt")
    row, col, method = p.row, p.col, p.method
    info = {
        "row": _json_value(row if not isinstance(row, tuple) else list(row)),
        "col": _json_value(col if not isinstance(col, tuple) else list(col)),
        "method": method,
        "label": tags.get("label", method),
        "dataset": tags.get("dataset", config.get("dataset")),
        "seed": _json_value(p.seed),
        "run_id": r.info.run_id,
        "experiment_id": r.info.experiment_id,
        "sweep_version": tags.get("sweep_version"),
        "job": tags.get("job"),
        "trial_id": tags.get("trial_id"),
        "git_commit": tags.get("git_commit"),
        "method_class": f"{cls.__module__}.{cls.__qualname__}",
        "weights": epoch,
        "weights_epoch": at,
        "checkpoint": str(ckpt.resolve()),
        "metrics": {k: _json_value(v) for k, v in sorted(r.data.metrics.items())},
        "config": config,
    }
    (folder / "config.json").write_text(json.dumps(info, indent=2, default=str) + "\n")
    note = (
        f"weights of its selected epoch {at} (best/epoch)"
        if epoch == "selected_epoch"
        else f"weights of its LAST epoch {at}: the checkpoint predates best_model.pt, "
        f"the selected epoch was {tracker_epoch}"
    )
    (folder / "load.txt").write_text(
        LOAD_TEXT.format(
            label=info["label"],
            dataset=info["dataset"],
            seed=info["seed"],
            run_id=r.info.run_id,
            weights_note=note,
            module=cls.__module__,
            cls=cls.__name__,
            backbone=config.get("backbone"),
        )
    )
    return ExportedCell(row, col, folder, r.info.run_id, method, info["seed"], epoch, at)


def export_runs(
    df: pd.DataFrame,
    out: str | Path,
    *,
    rows: str | Sequence[str] = "method",
    cols: str | Sequence[str] = "dataset",
    layout: Callable[[pd.DataFrame], Any] | None = None,
    tracking_uri: str | None = None,
    results: str | Path | None = "results",
    select_by: str = "best/val/acc",
    force: bool = False,
) -> list[ExportedCell]:
    """Export every cell's selected run of ``df`` (:func:`ftsweep.runs.load_runs`) to ``out``:
    cells of ``layout`` when given (:func:`layout_cells`), else ``rows`` × ``cols``
    (:func:`select_cells`). ``results`` is where the sweeps' Tune folders are (``--results``
    of ``ftsweep run``), searched when a run's ``trial_dir`` holds no checkpoint.

    All or nothing: every cell is resolved and checked first (its run, its checkpoint, its
    folder), and only then is anything written; a failure while writing removes what this call
    wrote (the cell folders, and ``out`` and its parents when it made them). A cell folder that
    already exists under ``out`` is never overwritten (nor is anything else there); folders of
    cells this export does not write are left alone. ``force``: a cell folder an earlier export
    wrote (it holds :data:`CELL_FILES` and nothing else) is replaced — set aside first, removed
    once every cell is written, put back if the export fails; any other file or folder in the
    way is still refused, and so is a spare an interrupted export left. Cells whose keys
    sanitise to the same folder name each get ``<name>-<hash8>`` instead (see
    :func:`_unique_names`).

    Raises:
        KeyError: no cell can be selected; ValueError: a cell holds several methods or datasets;
        FileNotFoundError: a cell's checkpoint is missing;
        ConfigError: a cell's folder already exists under ``out`` (or, with ``force``, its
        spare), two cells would share a folder, or a checkpoint file cannot be read.
    """
    import shutil

    from mlflow.tracking import MlflowClient

    from ftsweep.config.errors import ConfigError
    from ftsweep.config.spec import metric_direction
    from ftsweep.tracking import tracking_uri as resolve

    cells = (
        layout_cells(layout, df)
        if layout is not None
        else select_cells(df, rows, cols, select_by=select_by, mode=metric_direction(select_by) or "max")
    )
    client = MlflowClient(resolve(tracking_uri))
    out = Path(out)
    planned = _unique_names([_plan_one(r, c, run, client, results) for r, c, run in cells], out)
    existing = [p.name for p in planned if (out / p.name).exists() or (out / p.name).is_symlink()]
    replace = [n for n in existing if force and is_exported_cell(out / n)]
    if len(replace) < len(existing):
        kept = [n for n in existing if n not in replace]
        raise ConfigError(
            "--output",
            str(out),
            f"already holds {', '.join(f'{n}/' for n in kept)} "
            + (
                "(not an exported cell: --force replaces only those); nothing is overwritten"
                if force
                else "(an earlier export?); nothing is overwritten: remove it, give another "
                "--output, or --force to replace earlier exported cells"
            ),
        )
    stale = [n for n in replace if (out / f".{n}.replaced").exists() or (out / f".{n}.replaced").is_symlink()]
    if stale:
        n = stale[0]
        raise ConfigError(
            "--output",
            str(out),
            f"holds .{n}.replaced/, the cell {n}/ as an earlier export set it aside before it was "
            f"interrupted; nothing is overwritten: remove it (or move it back to {n}/) and export again",
        )
    made = [d for d in (out, *out.parents) if not d.exists()]
    written: list[Path] = []
    aside: list[tuple[Path, Path]] = []  # (cell folder, where it waits until the export is done)
    try:
        out.mkdir(parents=True, exist_ok=True)
        for n in replace:
            spare = out / f".{n}.replaced"
            os.rename(out / n, spare)  # no spare is in the way (checked above)
            aside.append((out / n, spare))
        exported = []
        for p in planned:
            folder = out / p.name
            folder.mkdir()  # FileExistsError, never an overwrite, if it appeared meanwhile
            written.append(folder)  # made here: ours to remove on failure
            exported.append(_write_one(p, folder))
    except BaseException:
        for folder in written:
            if folder.is_dir() and not folder.is_symlink():
                shutil.rmtree(folder, ignore_errors=True)
        for folder, spare in aside:  # the earlier export back as it was
            os.rename(spare, folder)
        for d in made:  # innermost first; only if still empty
            try:
                d.rmdir()
            except OSError:
                break
        raise
    for _, spare in aside:
        shutil.rmtree(spare)
    return exported


#: what an exported cell folder holds (``model.pt``, ``config.json``, ``load.txt``)
CELL_FILES = frozenset({"model.pt", "config.json", "load.txt"})


def is_exported_cell(path: Path) -> bool:
    """``path`` is a folder (not a link) that holds an exported cell's files and nothing else."""
    if path.is_symlink() or not path.is_dir():
        return False
    names = {q.name for q in path.iterdir()}
    return names == CELL_FILES
