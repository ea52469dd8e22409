"""Paper-style tables: mean ± std over seeds, best per column in bold, Δ vs a baseline.

Model selection is by validation: for each (row, column) cell, among all configurations (every
param except the seed) the one with the highest mean ``select_by`` (``best/val/acc``) over seeds
is chosen, and the cell reports that configuration's ``metric`` (``test/acc`` — itself taken at
the epoch selected on validation).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "NON_CONFIG",
    "PaperTable",
    "paper_cell",
    "paper_cells",
    "paper_comparison",
    "paper_frame",
    "with_paper",
    "fill_missing_params",
    "format_table",
    "paper_order",
    "recorded_selections",
    "require_columns",
    "pm_cell",
    "pm_cells",
    "rename",
    "render_frame",
    "repeated_runs",
    "save_figure",
    "select_configs",
    "default_select_by",
    "summarize",
    "write_table",
]

#: columns that are not part of a configuration's identity (beside ``ftsweep.runs.PLACE_PARAMS``)
NON_CONFIG = {"run_id", "status", "seed", "error"}


#: Tune's own result fields (logged as metrics, never configuration)
TUNE_RESULT_KEYS = {
    "epoch", "training_iteration", "time_total_s", "time_this_iter_s", "time_since_restore",
    "iterations_since_restore", "timesteps_total", "episodes_total", "timesteps_since_restore",
}  # fmt: skip


def _config_columns(df: pd.DataFrame, keys: Sequence[str]) -> list[str]:
    """The configuration columns: MLflow params when known (``df.attrs["params"]``), else every
    column that is not a metric (``a/b`` names), a Tune result field or bookkeeping."""
    if "params" in df.attrs:
        cols = [c for c in df.attrs["params"] if c in df.columns]
    else:
        cols = [c for c in df.columns if "/" not in c and c not in TUNE_RESULT_KEYS]
    from ftsweep.runs import PLACE_PARAMS

    return [c for c in cols if c not in NON_CONFIG and c not in PLACE_PARAMS and c not in keys]


def _config_ids(df: pd.DataFrame, keys: Sequence[str]) -> pd.Series:
    """One string per run naming its configuration: its :func:`_config_columns` values as
    :func:`ftsweep.runs.setting` reads them (the rule of a trial's identity, so two runs the
    table treats as one configuration's seed are never two trials of one seed)."""
    from ftsweep.runs import setting

    cfg_cols = _config_columns(df, keys)
    if not cfg_cols:
        return pd.Series("", index=df.index)
    values = pd.DataFrame({c: [repr(setting(c, v)) for v in df[c]] for c in cfg_cols}, index=df.index)
    return values.agg("|".join, axis=1)


def repeated_runs(df: pd.DataFrame) -> pd.Series:
    """True for each run whose configuration, dataset and seed an earlier row already ran under
    another label: two jobs of one method whose searches share a point (Core-tuning's Table 6
    runs λ_n = λ_p = 0.8 in both of its rows). A cell that pooled both would count the seed twice."""
    keys = [c for c in ("dataset", "seed") if c in df.columns]
    same = _config_ids(df, [*keys, "method", "job"])  # the label is not the configuration
    return pd.concat([df[keys].astype(str), same.rename("_config")], axis=1).duplicated()


def require_columns(df: pd.DataFrame, names: Sequence[str]) -> None:
    """KeyError naming the first of ``names`` the runs lack, and the columns they have."""
    missing = [c for c in names if c not in df.columns]
    if missing:
        raise KeyError(f"runs have no column {missing[0]!r}; columns: {', '.join(map(str, df.columns))}")


#: the selections :func:`select_configs` records while :func:`recorded_selections` runs
_SELECTIONS: ContextVar[list | None] = ContextVar("ftsweep_selections", default=None)


@contextmanager
def recorded_selections() -> Iterator[list]:
    """Every :func:`select_configs` call made while the block runs, as ``(keys, select_by, mode,
    chosen)`` — the cells a paper layout selected (``ftsweep export --layout``)."""
    calls: list = []
    token = _SELECTIONS.set(calls)
    try:
        yield calls
    finally:
        _SELECTIONS.reset(token)


def select_configs(
    df: pd.DataFrame, keys: Sequence[str], select_by: str = "best/val/acc", mode: str = "max"
) -> pd.DataFrame:
    """Keep, for each value of ``keys``, the runs of the configuration with the best mean
    ``select_by`` over seeds (recorded under :func:`recorded_selections`). A cell never holds
    several methods or datasets (ValueError: :func:`_require_one_per_cell`)."""
    _require_one_per_cell(df, keys)
    chosen = df if df.empty else _select(df, keys, select_by, mode)
    log = _SELECTIONS.get()
    if log is not None:
        log.append((list(keys), select_by, mode, chosen))
    return chosen


def _select(df: pd.DataFrame, keys: Sequence[str], select_by: str, mode: str) -> pd.DataFrame:
    df = df.assign(_config=_config_ids(df, keys))
    means = df.groupby([*keys, "_config"], dropna=False)[select_by].mean().reset_index()
    best = (
        means.sort_values(select_by, ascending=(mode == "min"), kind="stable")
        .groupby(list(keys), dropna=False)
        .head(1)
    )
    keep = df.merge(best[[*keys, "_config"]], on=[*keys, "_config"])
    return keep.drop(columns="_config")


def default_select_by(df: pd.DataFrame) -> str | None:
    """What a table selects configurations by unless told: ``best/val/acc``, or nothing (None)
    for runs that have no validation split (stage 1 alone)."""
    return "best/val/acc" if "best/val/acc" in df.columns else None


def summarize(
    df: pd.DataFrame,
    rows: str | Sequence[str] = "method",
    cols: str | Sequence[str] = "dataset",
    metric: str = "test/acc",
    *,
    select_by: str | None = "best/val/acc",
    mode: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Mean, std (ddof=1; 0 for one seed) and seed count of ``metric`` per (rows, cols) cell,
    after validation-based configuration selection per cell. ``mode``: the best ``select_by``
    is its ``max`` or ``min``; default the way its name says it improves (a loss: ``min``,
    ``ftsweep.config.spec.metric_direction``), else ``max``. ``select_by`` None (runs with no
    validation split, such as stage 1's): no selection, and each cell must hold the runs of
    one configuration (ValueError naming the first that holds several)."""
    rows = [rows] if isinstance(rows, str) else list(rows)
    cols = [cols] if isinstance(cols, str) else list(cols)
    require_columns(df, [*rows, *cols, metric, *([select_by] if select_by else [])])
    if select_by is None:
        chosen = _single_configs(df, rows + cols)
    else:
        from ftsweep.config.spec import metric_direction

        chosen = select_configs(df, rows + cols, select_by, mode or metric_direction(select_by) or "max")
    g = chosen.groupby(rows + cols, dropna=False)[metric]
    stats = g.agg(["mean", "count"]).join(g.std(ddof=1).rename("std").fillna(0.0))
    order_rows = list(dict.fromkeys(map(tuple, df[rows].astype(object).values.tolist())))
    mean = stats["mean"].unstack(cols)
    std = stats["std"].unstack(cols)
    n = stats["count"].unstack(cols)
    if len(rows) == 1:
        idx = [r[0] for r in order_rows]
        mean, std, n = mean.reindex(idx), std.reindex(idx), n.reindex(idx)
    return mean, std, n


#: what :class:`PaperTable` sets beside a paper's number: its seeds' mean or median
STATISTICS = ("mean", "median")

#: run columns a table cell never pools: one method's runs on one dataset (``job`` is both)
CELL_PARTS = ("method", "dataset")


def _require_one_per_cell(df: pd.DataFrame, keys: Sequence[str]) -> None:
    """ValueError naming the first cell whose runs come from several methods or datasets: a
    cell's selection would pick one of them by its validation score and show its number under
    no name (a method, or another dataset's validation split, is not a configuration)."""
    if "job" in keys:
        return
    for part in CELL_PARTS:
        if part in keys or part not in df.columns:
            continue
        if not keys:
            counts = pd.Series([df[part].nunique(dropna=False)])
        else:
            counts = df.groupby(list(keys), dropna=False)[part].nunique(dropna=False)
        if (counts > 1).any():
            first = _as_tuple(counts[counts > 1].index[0]) if keys else ()
            where = "".join(f" {k}={_label(v)}" for k, v in zip(keys, first, strict=True))
            values = sorted(map(str, df[part].dropna().unique()))
            raise ValueError(
                f"a table cell{where} holds the runs of {len(values)} {part}s ({', '.join(values)}): "
                f"put {part} in the rows or cols: each cell is one method on one dataset"
            )


def _as_tuple(key: Any) -> tuple:
    return key if isinstance(key, tuple) else (key,)


def format_table(
    mean: pd.DataFrame,
    std: pd.DataFrame,
    *,
    baseline: str | None = None,
    fmt: str = "md",
    digits: int = 2,
    higher_is_better: bool = True,
    n: pd.DataFrame | None = None,
    expected: int | None = None,
) -> str | pd.DataFrame:
    """Render cells as ``mean ± std``, the best mean per column in bold, plus a
    ``Δ vs <baseline>`` row (best other row minus the baseline, per column).

    With ``n`` (seeds per cell) and ``expected`` (the seeds the spec asks for), a cell with fewer
    finished seeds is marked ``(n=k/expected)`` — an incomplete cell is never shown as complete.

    ``fmt``: ``md`` | ``latex`` | ``csv`` return text; ``frame`` returns the string DataFrame.
    """
    bold = (
        (lambda s: f"**{s}**")
        if fmt == "md"
        else ((lambda s: f"\\textbf{{{s}}}") if fmt == "latex" else (lambda s: s))
    )
    pm = " $\\pm$ " if fmt == "latex" else " ± "
    cells = pd.DataFrame(index=mean.index, columns=mean.columns, dtype=object)
    for c in mean.columns:
        col = mean[c]
        best = col.max() if higher_is_better else col.min()
        for r in mean.index:
            m = col.loc[r]
            if pd.isna(m):
                cells.loc[r, c] = "–"
                continue
            text = f"{m:.{digits}f}{pm}{std.loc[r, c]:.{digits}f}"
            text = bold(text) if np.isclose(m, best) and col.notna().sum() > 1 else text
            count = None if n is None else n.loc[r, c]
            if expected is not None and count is not None and not pd.isna(count) and count < expected:
                text += f" (n={int(count)}/{expected})"
            cells.loc[r, c] = text
    if baseline is not None:
        if baseline not in mean.index:
            raise KeyError(f"baseline {baseline!r} is not a row; rows: {', '.join(map(str, mean.index))}")
        others = mean.drop(index=baseline)
        best_other = others.max() if higher_is_better else others.min()
        delta = best_other - mean.loc[baseline]
        cells.loc[f"Δ vs {baseline}"] = [("–" if pd.isna(d) else f"{d:+.{digits}f}") for d in delta]
    cells.index = [_label(i) for i in cells.index]
    cells.columns = [_label(c) for c in cells.columns]
    if fmt == "frame":
        return cells
    return render_frame(cells, fmt)


def _label(key: Any) -> str:
    """A row / column key as printed: a run without the value (a job without ``stage1``) is
    ``none``, not ``nan``."""
    return "none" if key is None or (isinstance(key, float) and np.isnan(key)) else str(key)


def render_frame(cells: pd.DataFrame, fmt: str = "md") -> str:
    """Render a frame of ready-made cells (e.g. a paper layout's) as md, latex or csv."""
    cells = cells.copy()
    cells.index = [str(i) for i in cells.index]
    cells.columns = [str(c) for c in cells.columns]
    if fmt == "md":
        return _markdown(cells)
    if fmt == "latex":
        return _latex(cells)
    if fmt == "csv":
        return cells.to_csv()
    raise ValueError(f"format: {fmt!r} — must be md, latex or csv")


def _markdown(cells: pd.DataFrame) -> str:
    header = ["", *cells.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + [":---:"] * len(cells.columns)) + "|"]
    lines += [
        "| " + " | ".join([str(i), *map(str, row)]) + " |"
        for i, row in zip(cells.index, cells.values, strict=True)
    ]
    return "\n".join(lines)


def _latex(cells: pd.DataFrame) -> str:
    def esc(s: str) -> str:
        return s.replace("_", "\\_").replace("%", "\\%").replace("Δ", "$\\Delta$")

    lines = ["\\begin{tabular}{l" + "c" * len(cells.columns) + "}", "\\toprule"]
    lines.append(" & ".join(["", *map(esc, cells.columns)]) + " \\\\")
    lines.append("\\midrule")
    lines += [
        " & ".join([esc(str(i)), *map(str, row)]) + " \\\\"
        for i, row in zip(cells.index, cells.values, strict=True)
    ]
    lines += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(lines)


def write_table(
    mean: pd.DataFrame,
    std: pd.DataFrame,
    n: pd.DataFrame,
    path: str | Path,
    *,
    baseline: str | None = None,
    expected: int | None = None,
    higher_is_better: bool = True,
) -> Path:
    """Write a table by suffix: ``.md``/``.tex``/``.csv`` rendered text (:func:`format_table`),
    ``.parquet`` a long frame (row, col, mean, std, n) through pyarrow. Atomic (temp file +
    rename)."""
    import os

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    if path.suffix == ".parquet":
        long = pd.DataFrame(
            {
                "row": [str(r) for r in mean.index for _ in mean.columns],
                "col": [str(c) for _ in mean.index for c in mean.columns],
                "mean": mean.to_numpy().ravel(),
                "std": std.to_numpy().ravel(),
                "n": n.fillna(0).to_numpy().ravel().astype(int),
            }
        )
        long.to_parquet(tmp, engine="pyarrow", index=False)
    else:
        fmt = {".md": "md", ".tex": "latex", ".csv": "csv"}.get(path.suffix)
        if fmt is None:
            raise ValueError(f"table path {path}: suffix must be .md, .tex, .csv or .parquet")
        text = format_table(
            mean, std, baseline=baseline, fmt=fmt, n=n, expected=expected, higher_is_better=higher_is_better
        )
        tmp.write_text(str(text) + "\n")
    os.replace(tmp, path)
    return path


def save_figure(fig: object, path: str | Path) -> Path:
    """Save a matplotlib figure (tight layout) to ``path``, creating folders, and close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()  # type: ignore[attr-defined]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)  # type: ignore[attr-defined]
    plt.close(fig)  # type: ignore[arg-type]
    return path


# ---- helpers shared by the paper layouts (analysis/<paper>.py) ---------------------------------


def fill_missing_params(df: pd.DataFrame) -> pd.DataFrame:
    """Replace missing config values (a field another method does not have) by ``"None"``.

    Runs of several methods share one frame, so each method's own fields are NaN in the other
    methods' rows; the configuration identity used for selection must still be a string.
    Metric columns (names with ``/``) are left alone.
    """
    df = df.copy()
    for c in df.columns:
        if "/" not in str(c) and df[c].isna().any():
            df[c] = df[c].astype(object).where(df[c].notna(), "None")
    return df


def pm_cell(mean: float, std: float, digits: int = 2) -> str:
    """``mean ± std``; ``–`` for a cell without runs."""
    return "–" if pd.isna(mean) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def pm_cells(mean: pd.DataFrame, std: pd.DataFrame, digits: int = 2) -> pd.DataFrame:
    """:func:`pm_cell` of every cell of two aligned frames."""
    out = pd.DataFrame(index=mean.index, columns=mean.columns, dtype=object)
    for r in mean.index:
        for c in mean.columns:
            out.loc[r, c] = pm_cell(mean.loc[r, c], std.loc[r, c], digits)
    return out


def paper_order(keys: Sequence, order: Sequence) -> list:
    """The keys found in ``order`` in the paper's order, then any others in their given order."""
    known = [k for k in order if k in keys]
    return known + [k for k in keys if k not in order]


def rename(frame: pd.DataFrame, rows: dict | None = None, cols: dict | None = None) -> pd.DataFrame:
    """A copy with index / column labels mapped through ``rows`` / ``cols`` (others kept)."""
    frame = frame.copy()
    if rows:
        frame.index = [rows.get(r, r) for r in frame.index]
    if cols:
        frame.columns = [cols.get(c, c) for c in frame.columns]
    return frame


# ---- beside the papers' numbers ------------------------------------------------------------------
#: a :class:`PaperTable` axis: a runs column, or a function of one run (a row of the runs frame)
PaperAxis = str | Callable[[pd.Series], Any]


@dataclass(frozen=True)
class PaperTable:
    """The numbers a paper reports for the cells of one layout, and how to recompute ours.

    A cell of ours is keyed ``(row key, column key)``; its runs are those whose ``rows`` and
    ``cols`` keys are the cell's, and it reports ``metric`` (``col_metrics`` per column) of the
    configuration chosen by ``select_by`` (see :func:`paper_comparison`).

    Attributes:
        values: ``{(row key, column key): number}`` as the paper prints it (its own rounding),
            keyed by ftsweep's row / column keys (``method`` label, ``dataset`` key …).
        rows: the row key of a run: a runs column (``"method"``) or a function of one run (a
            row of the runs frame, e.g. ``"IN Sup / BYOL / FixMatch"`` from three columns).
        cols: the column key of a run, likewise; None: the columns are metrics — one column
            per ``col_metrics`` key, each filled by every run of its row (UOT Table 4's ``Rec.``
            and ``Acc.`` of the same runs; selection is then per row, so both columns report
            the same configuration).
        metric: what a cell reports.
        col_metrics: ``{column key: metric}`` overriding ``metric`` for those columns (UOT's
            ``test/mpa`` on Pets, Aircraft and Caltech); required when ``cols`` is None.
        baseline: the row every other row is tested against; or a function row key → that
            row's baseline row key (None: not tested), for tables whose claim is pairwise
            (Trg. Pre. BYOL vs none under the same Pretrain and SSL); None: no significance.
        row_names / col_names: key → the paper's label.
        digits: decimals of our cells (the paper's).
        scale: factor applied to a metric before comparing (100 for a fraction): one number
            for every metric, or ``{metric: factor}`` (other metrics 1).
        select_by / mode: the run metric whose best mean over seeds (``max`` | ``min``) picks a
            cell's configuration; None for runs without a validation metric: each cell must
            then hold a single configuration (its seeds), else :func:`paper_comparison` raises.
        prepare: runs → the frame the table reads (e.g. one record per (run, quantity) when a
            run fills several cells of one column, as Table 10's before / after rows); None:
            the runs as given. Its ``attrs["params"]`` default to the runs'.
        statistic: what of a cell's seeds is set beside the paper's number (``ours``, and Δ):
            ``mean``, or ``median`` where the paper reports the median run (SCHaNe's Tables 1
            and 3: "median Top-1 accuracy … across three runs"; the lower middle run of an even
            count).
    """

    values: Mapping[tuple[Any, Any], float]
    rows: PaperAxis = "method"
    cols: PaperAxis | None = "dataset"
    metric: str = "test/acc"
    baseline: Any = None
    row_names: Mapping[Any, str] = field(default_factory=dict)
    col_names: Mapping[Any, str] = field(default_factory=dict)
    digits: int = 2
    scale: float | Mapping[str, float] = 1.0
    col_metrics: Mapping[Any, str] = field(default_factory=dict)
    select_by: str | None = "best/val/acc"
    mode: str = "max"
    prepare: Callable[[pd.DataFrame], pd.DataFrame] | None = None
    statistic: str = "mean"

    def __post_init__(self) -> None:
        if self.statistic not in STATISTICS:
            raise ValueError(
                f"PaperTable: statistic {self.statistic!r} — must be one of {', '.join(STATISTICS)}"
            )
        if self.cols is None and not self.col_metrics:
            raise ValueError("PaperTable: cols=None (the columns are metrics) needs col_metrics")
        if self.mode not in ("max", "min"):
            raise ValueError(f"PaperTable: mode {self.mode!r} — must be max or min")

    def metric_of(self, col: Any) -> str:
        """The metric column ``col`` reports."""
        return self.col_metrics.get(col, self.metric)

    def scale_of(self, metric: str) -> float:
        """The factor ``metric`` is multiplied by before comparing."""
        if isinstance(self.scale, Mapping):
            return float(self.scale.get(metric, 1.0))
        return float(self.scale)

    def baseline_of(self, row: Any) -> Any:
        """The row ``row`` is tested against (None: not tested; never the row itself)."""
        b = self.baseline(row) if callable(self.baseline) else self.baseline
        return None if b is None or b == row else b


def paper_cells(
    rows: Mapping[Any, Sequence[Any]], cols: Sequence[Any], *, index: int | None = None
) -> dict[tuple[Any, Any], Any]:
    """A paper table typed row by row — ``{row: [one value per column, in cols order]}`` — as
    ``{(row, col): value}``; ``index`` picks one number of each value when a printed cell holds
    several (e.g. ``(S_Dbw, hours)``)."""
    return {
        (r, c): (v if index is None else v[index])
        for r, values in rows.items()
        for c, v in zip(cols, values, strict=True)
    }


def with_paper(table: PaperTable) -> Callable[[Callable], Callable]:
    """Decorator attaching ``table`` to a layout function as ``layout.paper`` (read by
    ``ftsweep table --layout … --paper``)."""

    def attach(fn: Callable) -> Callable:
        fn.paper = table  # type: ignore[attr-defined]
        return fn

    return attach


def _key(v: Any) -> Any:
    """Row / column values as the paper dict keys them (1.0 → 1, NaN → None)."""
    if isinstance(v, float):
        if np.isnan(v):
            return None
        if v.is_integer():
            return int(v)
    return v


def _axis_keys(runs: pd.DataFrame, axis: PaperAxis) -> pd.Series:
    """The key of every run on one :class:`PaperTable` axis."""
    if callable(axis):
        return runs.apply(axis, axis=1) if len(runs) else pd.Series([], index=runs.index, dtype=object)
    require_columns(runs, [axis])
    return runs[axis]


def _single_configs(df: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """``df`` unchanged when every ``keys`` cell holds one configuration (selection without a
    validation metric); else ValueError naming the first cell that holds several."""
    if df.empty:
        return df
    _require_one_per_cell(df, keys)
    counts = _config_ids(df, keys).groupby([df[k] for k in keys], dropna=False).nunique()
    several = counts[counts > 1]
    if len(several):
        raise ValueError(
            f"cell {several.index[0]!r} holds {int(several.iloc[0])} configurations and the table "
            "has no select_by metric to choose one: compare the runs of one configuration"
        )
    return df


def paper_comparison(df: pd.DataFrame, table: PaperTable) -> pd.DataFrame:
    """One row per cell (ours ∪ the paper's): ours (mean, std, n of the configuration selected
    on validation — ``table.select_by``; ``ours`` is ``table.statistic`` of its seeds, the mean or
    the median), the paper's number, Δ = ours − paper, and, for every
    row with a baseline (``table.baseline_of``), the test against the baseline row of the same
    column over seeds (:func:`ftsweep.stats.compare`: paired on shared seeds, else Welch), its
    95 % CI and p-value, and Holm's adjusted p-value across all comparisons of the table.

    Raises:
        KeyError: the runs lack an axis column, the selection metric or a reported metric.
        ValueError: ``select_by`` is None and a cell holds several configurations.
    """
    from ftsweep import stats

    runs = df if table.prepare is None else table.prepare(df)
    if "params" in df.attrs and "params" not in runs.attrs:
        runs.attrs["params"] = df.attrs["params"]
    if table.select_by is not None:
        require_columns(runs, [table.select_by])
    keys = ["_row"] if table.cols is None else ["_row", "_col"]
    axes = {"_row": _axis_keys(runs, table.rows)}
    if table.cols is not None:
        axes["_col"] = _axis_keys(runs, table.cols)
    runs = runs.assign(**axes)
    if table.select_by is None:
        chosen = _single_configs(runs, keys)
    else:
        chosen = select_configs(runs, keys, table.select_by, table.mode)
    groups: dict[tuple, tuple[list[float], list | None]] = {}
    for key, g in chosen.groupby(keys, dropna=False, sort=False):
        r = _key(key[0])
        cols = list(table.col_metrics) if table.cols is None else [_key(key[1])]
        for c in cols:
            metric = table.metric_of(c)
            if metric not in g.columns:
                raise KeyError(f"runs have no column {metric!r} (column {c!r} of the table)")
            h = g[g[metric].notna()]
            seeds = list(h["seed"]) if "seed" in h.columns else None
            groups[(r, c)] = (list(h[metric] * table.scale_of(metric)), seeds)
    cells = list(groups) + [k for k in table.values if k not in groups]
    out = []
    for r, c in cells:
        vals, seeds = groups.get((r, c), ([], None))
        mean = float(np.mean(vals)) if vals else np.nan
        std = float(np.std(vals, ddof=1)) if len(vals) > 1 else (0.0 if vals else np.nan)
        paper = table.values.get((r, c), np.nan)
        # the median run (the lower of the middle two for an even count), as the layouts show it
        ours = mean if table.statistic == "mean" or not vals else float(np.sort(vals)[(len(vals) - 1) // 2])
        row = {"row": r, "col": c, "mean": mean, "std": std, "n": len(vals), "paper": paper}
        row.update({"ours": ours, "statistic": table.statistic, "delta": ours - paper})
        cmp = None
        base = table.baseline_of(r)
        if base is not None and (base, c) in groups and vals:
            b_vals, b_seeds = groups[(base, c)]
            cmp = stats.compare(vals, b_vals, seeds, b_seeds)
        row.update(
            {
                "diff_vs_baseline": np.nan if cmp is None else cmp.diff,
                "ci_low": np.nan if cmp is None else cmp.ci_low,
                "ci_high": np.nan if cmp is None else cmp.ci_high,
                "p": np.nan if cmp is None else cmp.p,
                "test": "" if cmp is None else cmp.test,
            }
        )
        out.append(row)
    frame = pd.DataFrame(out)
    frame["p_holm"] = stats.holm(frame["p"].tolist()) if len(frame) else []
    return frame


def paper_frame(df: pd.DataFrame, layout: Callable, fmt: str = "md") -> pd.DataFrame:
    """``ftsweep table --layout … --paper``: every cell as ``ours (mean ± std, n) | paper | Δ``.

    ``md`` / ``latex``: a rows × columns frame of such strings, with ``*`` (Holm-adjusted p <
    0.05) or ``**`` (< 0.01) after ours where the row differs from the baseline row over seeds.
    ``csv`` / ``parquet``: the long frame of :func:`paper_comparison` (p-value, 95 % CI, Holm),
    with the paper's row / column labels.

    Raises:
        ConfigError: the layout carries no paper numbers (no ``@with_paper``).
    """
    from ftsweep.config import ConfigError

    table = getattr(layout, "paper", None)
    if not isinstance(table, PaperTable):
        raise ConfigError(
            "--paper", getattr(layout, "__name__", str(layout)), "this layout carries no paper numbers"
        )
    long = paper_comparison(df, table)
    long["row"] = [table.row_names.get(r, r) for r in long["row"]]
    long["col"] = [table.col_names.get(c, c) for c in long["col"]]
    if fmt in ("csv", "parquet"):
        return long
    d = table.digits
    pm = " $\\pm$ " if fmt == "latex" else " ± "
    sep = {"md": " \\| ", "latex": " $|$ "}.get(fmt, " | ")
    rows = list(dict.fromkeys(long["row"]))
    cols = list(dict.fromkeys(long["col"]))
    cells = pd.DataFrame("–", index=rows, columns=cols, dtype=object)
    for rec in long.itertuples(index=False):
        cells.loc[rec.row, rec.col] = paper_cell(
            rec.ours,
            rec.std,
            rec.n,
            rec.paper,
            digits=d,
            mark=stats_marker(rec.p_holm),
            pm=pm,
            sep=sep,
            statistic=rec.statistic,
        )
    return cells


def stats_marker(p: float) -> str:
    """The significance marker of a Holm-adjusted p-value (see :func:`ftsweep.stats.marker`)."""
    from ftsweep.stats import marker

    return marker(p)


def paper_cell(
    value: float,
    std: float,
    n: int,
    paper: float,
    *,
    digits: int = 2,
    mark: str = "",
    pm: str = " ± ",
    sep: str = " | ",
    statistic: str = "mean",
) -> str:
    """``"<value> ± <std> (n=<n>)<mark> | <paper> | <Δ>"``; a missing side prints ``–``
    (``sep`` is ``" \\| "`` inside a Markdown table, ``" $|$ "`` in LaTeX). ``statistic``
    ``median``: ``value`` is the seeds' median run, shown as ``(median of n=<n>)``; else their mean."""
    count = f"median of n={n}" if statistic == "median" else f"n={n}"
    ours = "–" if n == 0 or pd.isna(value) else f"{value:.{digits}f}{pm}{std:.{digits}f} ({count}){mark}"
    theirs = "–" if pd.isna(paper) else f"{paper:.{digits}f}"
    delta = "–" if n == 0 or pd.isna(value) or pd.isna(paper) else f"{value - paper:+.{digits}f}"
    return f"{ours}{sep}{theirs}{sep}{delta}"
