"""The target pretraining paper's tables and Fig. 5 in its layouts (target_pretraining.md).

Every function takes the runs DataFrame of :func:`ftsweep.runs.load_runs` and returns a frame of
ready-made ``mean ± std`` cells (over seeds; per cell, the configuration with the best mean
``best/val/acc`` is chosen by :func:`ftsweep.tables.summarize`). Rows are described by what the
runs ran, read from their config columns, not by the spec's entry names:

- *Pretrain*: ``pretrained`` — ``none`` → ``-``, a SimCLR checkpoint (ftsweep's ``auto``) →
  ``SimCLR``, any other checkpoint → ``IN Sup``;
- *Trg. Pre.*: the flattened ``stage1.*`` params (MLflow logs ``stage1: {objective: byol}`` as
  ``stage1.objective``); no ``stage1.*`` value → ``-``; the objective falls back to
  ``stage1_defaults.objective``, then BYOL (TargetPretrainConfig's default);
- *SSL*: the Trainable, from the entry name's first ``-``-separated token (``fixmatch-rand`` →
  FixMatch; ``supervised`` → ``-``);
- label budget: ``labels_per_class`` × the dataset's classes (``#40``), or ``all``.

Beside the paper's numbers (``ftsweep table --layout … --paper``): :func:`table1`, :func:`table2`
(rows :func:`pts_name` of each run, each BYOL row tested against the same row without target
pretraining), :func:`table8` (rows :func:`pt_name`, each Trg. Pre. row tested against ``-``),
:func:`table9` and :func:`table10` (no validation metric in stage 1: one configuration per cell,
no selection). Fig. 5 prints a curve, no numbers; :func:`digits` is
not a paper table: both render ours only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ftsweep.tables import PaperTable, paper_cells, pm_cell, save_figure, summarize, with_paper

__all__ = [
    "DATASET_NAMES",
    "OBJECTIVE_NAMES",
    "PAPER_TABLE1",
    "PAPER_TABLE2",
    "PAPER_TABLE8",
    "PAPER_TABLE9",
    "PAPER_TABLE10",
    "SSL_NAMES",
    "budget",
    "dataset_budget",
    "digits",
    "fig5",
    "fig5_plot",
    "pretrain_name",
    "pt_name",
    "pts_name",
    "ssl_column",
    "ssl_name",
    "stage1_dataset",
    "stage1_epochs",
    "table1",
    "table10",
    "table2",
    "table8",
    "table9",
    "trg_name",
]

DATASET_NAMES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "svhn": "SVHN", "digits": "Digits"}
OBJECTIVE_NAMES = {"byol": "BYOL", "moco_v2": "MoCo v2"}
SSL_NAMES = {"supervised": "-", "fixmatch": "FixMatch", "uda": "UDA", "mean_teacher": "MT"}
#: TargetPretrainConfig's defaults, used when neither stage1 nor stage1_defaults name the field
STAGE1_DEFAULT_OBJECTIVE = "byol"
STAGE1_DEFAULT_EPOCHS = 300
NONE = "-"


# ---- row descriptions -----------------------------------------------------------------------------
def _present(v: object) -> bool:
    return v is not None and not (isinstance(v, float) and np.isnan(v)) and v != "None"


def _stage1_value(row: pd.Series, key: str) -> object:
    """``stage1.<key>``, else ``stage1_defaults.<key>`` (None when neither is set)."""
    for col in (f"stage1.{key}", f"stage1_defaults.{key}"):
        if col in row.index and _present(row[col]):
            return row[col]
    return None


def _has_stage1(row: pd.Series) -> bool:
    return any(c.startswith("stage1.") and _present(row[c]) for c in row.index)


def pretrain_name(pretrained: object) -> str:
    """``-`` for random init, ``SimCLR`` for ftsweep's digits checkpoint, else ``IN Sup``."""
    if not _present(pretrained) or str(pretrained) in ("none", ""):
        return NONE
    return "SimCLR" if "simclr" in Path(str(pretrained)).name.lower() else "IN Sup"


def trg_name(row: pd.Series) -> str:
    """The Trg. Pre. column: the stage-1 objective's paper name or ``-``."""
    if not _has_stage1(row):
        return NONE
    obj = _stage1_value(row, "objective") or STAGE1_DEFAULT_OBJECTIVE
    return OBJECTIVE_NAMES.get(str(obj), str(obj))


def stage1_dataset(row: pd.Series) -> str:
    """Table 9's row: the dataset stage 1 ran on (the stage-2 dataset unless overridden)."""
    if not _has_stage1(row):
        return NONE
    d = _stage1_value(row, "dataset") or row["dataset"]
    return DATASET_NAMES.get(str(d), str(d))


def stage1_epochs(row: pd.Series) -> int:
    """Fig. 5's x: stage-1 epochs, 0 without stage 1."""
    if not _has_stage1(row):
        return 0
    return int(_stage1_value(row, "epochs") or STAGE1_DEFAULT_EPOCHS)


def ssl_name(label: str) -> str:
    """The SSL column from a spec entry name (``fixmatch-rand`` → ``FixMatch``)."""
    key = str(label).split("-")[0]
    return SSL_NAMES.get(key, key)


def budget(row: pd.Series) -> str:
    """``#N`` labels in all, or ``all`` without a budget."""
    from ftsweep.data import get_dataset_info

    n = row.get("num_labels")
    if not _present(n):
        lpc = row.get("labels_per_class")
        if not _present(lpc):
            return "all"
        n = int(lpc) * get_dataset_info(str(row["dataset"])).num_classes
    return f"#{int(n)}"


def _budget_key(name: str) -> float:
    return float("inf") if name == "all" else float(name.lstrip("#"))


# ---- cells --------------------------------------------------------------------------------------------
def _grid(df: pd.DataFrame, row: pd.Series, col: pd.Series, metric: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """mean / std of ``metric`` per (row, col) key, after per-cell validation selection."""
    if df.empty:
        raise KeyError("no finished runs")
    runs = df.assign(_row=row.values, _col=col.values)
    # config fields some runs lack (NaN: ``mu`` of supervised runs, ``stage1.*`` without stage 1)
    # become "None" so that they form one configuration
    fill = [c for c in runs.columns if "/" not in c and runs[c].isna().any()]
    if fill:
        runs = runs.assign(**{c: runs[c].astype(object).where(runs[c].notna(), "None") for c in fill})
    mean, std, _ = summarize(runs, "_row", "_col", metric)
    return mean, std


def _frame(
    mean: pd.DataFrame, std: pd.DataFrame, rows: Sequence, cols: Sequence, titles: dict | None = None
) -> pd.DataFrame:
    rows = [r for r in rows if r in mean.index]
    cols = [c for c in cols if c in mean.columns]
    out = pd.DataFrame(index=rows, columns=[str((titles or {}).get(c, c)) for c in cols], dtype=object)
    for r in rows:
        out.loc[r] = [pm_cell(mean.loc[r, c], std.loc[r, c]) for c in cols]
    return out


def _apply(df: pd.DataFrame, fn) -> pd.Series:  # noqa: ANN001
    return df.apply(fn, axis=1) if len(df) else pd.Series([], dtype=object)


def pts_name(row: pd.Series) -> str:
    """Tables 1-2's row of a run: ``Pretrain / Trg. Pre. / SSL`` (``IN Sup / BYOL / FixMatch``)."""
    return f"{pretrain_name(row.get('pretrained'))} / {trg_name(row)} / {ssl_name(row['method'])}"


def pt_name(row: pd.Series) -> str:
    """Table 8's row of a run: ``Pretrain / Trg. Pre.`` (``IN Sup / MoCo v2``)."""
    return f"{pretrain_name(row.get('pretrained'))} / {trg_name(row)}"


def ssl_column(row: pd.Series) -> str:
    """Table 8's column of a run: its SSL learner (:func:`ssl_name` of the entry name)."""
    return ssl_name(row["method"])


def dataset_budget(row: pd.Series) -> str:
    """Table 2's column of a run: ``<dataset> #<labels>`` (``CIFAR-100 #400``)."""
    return f"{DATASET_NAMES.get(row['dataset'], row['dataset'])} {budget(row)}"


def _rows_pts(df: pd.DataFrame) -> pd.Series:
    """``Pretrain / Trg. Pre. / SSL`` per run."""
    return _apply(df, pts_name)


def _without_trg(name: str) -> str | None:
    """The row a ``… / <Trg. Pre.> / …`` row is tested against: the same row without target
    pretraining (``IN Sup / BYOL / FixMatch`` → ``IN Sup / - / FixMatch``); None for a row
    without it."""
    parts = str(name).split(" / ")
    if len(parts) < 2 or parts[1] == NONE:
        return None
    return " / ".join([parts[0], NONE, *parts[2:]])


def _paper_row_order(names: Sequence[str]) -> list[str]:
    """Tables 1-2's order: supervised rows first, then each SSL; within, Pretrain then Trg."""
    ssl_rank = {v: i for i, v in enumerate(SSL_NAMES.values())}
    pre_rank = {NONE: 0, "SimCLR": 1, "IN Sup": 2}

    def key(name: str) -> tuple:
        pre, trg, ssl = name.split(" / ")
        return (ssl_rank.get(ssl, 99), ssl, pre_rank.get(pre, 3), trg != NONE, trg)

    return sorted(names, key=key)


# ---- the paper's numbers (target_pretraining.md) -----------------------------------------------------
_T1_ROWS = {
    "- / - / -": [18.45, 29.82, 45.05],
    "- / BYOL / -": [49.58, 66.43, 75.36],
    "IN Sup / - / -": [49.74, 77.59, 85.60],
    "IN Sup / BYOL / -": [65.32, 82.19, 87.86],
    "- / - / FixMatch": [60.83, 91.48, 93.04],
    "- / BYOL / FixMatch": [75.60, 91.75, 94.37],
    "IN Sup / - / FixMatch": [75.33, 94.46, 95.92],
    "IN Sup / BYOL / FixMatch": [90.21, 95.10, 95.51],
}
#: Table 1 (CIFAR-10), keyed by :func:`table1`'s row / column names (the rows ftsweep runs: no
#: MT, VAT or Self-Tuning)
PAPER_TABLE1 = paper_cells(_T1_ROWS, ["#40", "#250", "#1000"])
_T2_ROWS = {
    "- / - / -": [8.67, 21.69, 10.47],
    "- / BYOL / -": [15.18, 35.20, 18.25],
    "IN Sup / - / -": [30.85, 57.36, 16.92],
    "IN Sup / BYOL / -": [34.63, 58.65, 35.82],
    "- / - / FixMatch": [29.85, 59.12, 32.76],
    "- / BYOL / FixMatch": [40.41, 63.34, 36.94],
    "IN Sup / - / FixMatch": [44.34, 71.81, 79.89],
    "IN Sup / BYOL / FixMatch": [46.23, 72.19, 92.97],
}
#: Table 2 (CIFAR-100 #400 #2500, SVHN #40), keyed by :func:`table2`'s names (the rows of
#: :data:`PAPER_TABLE1`)
PAPER_TABLE2 = paper_cells(_T2_ROWS, ["CIFAR-100 #400", "CIFAR-100 #2500", "SVHN #40"])
#: Table 8 (CIFAR-10 #40), keyed by :func:`table8`'s names: rows :func:`pt_name`
#: (``IN Sup / <Trg. Pre.>``), columns :func:`ssl_column` (``-`` = supervised, FixMatch, UDA, MT)
PAPER_TABLE8 = paper_cells(
    {
        "IN Sup / -": [49.69, 75.28, 62.94, 48.98],
        "IN Sup / BYOL": [65.13, 90.06, 78.43, 61.55],
        "IN Sup / MoCo v2": [71.13, 90.37, 87.04, 69.02],
    },
    ["-", "FixMatch", "UDA", "MT"],
)
#: Table 9 (IN Sup, 4 labels per class): rows the spec's ``trg-<stage-1 dataset>`` labels, cols dataset
PAPER_TABLE9 = paper_cells(
    {
        "trg-none": [49.69, 30.85, 16.92],
        "trg-cifar10": [65.13, 29.51, 19.71],
        "trg-cifar100": [49.46, 34.63, 20.06],
        "trg-svhn": [24.91, 12.12, 35.82],
    },
    ["cifar10", "cifar100", "svhn"],
)
#: Table 10 clustering accuracy (%) ``(train, test)`` per (Trg. Pre. row, dataset), IN Sup weights
#: (attached to :func:`table10` split into ``<dataset> train`` / ``<dataset> test`` columns)
PAPER_TABLE10 = paper_cells(
    {
        NONE: [(46.31, 45.66), (6.40, 6.74), (12.96, 12.64)],
        "BYOL": [(47.17, 48.02), (7.91, 7.44), (15.96, 16.23)],
    },
    ["cifar10", "cifar100", "svhn"],
)


#: Table 10's cluster metrics of a ``target_pretrain`` run
_T10_METRICS = [
    "cluster/train_acc",
    "cluster/test_acc",
    "cluster/train_acc_before",
    "cluster/test_acc_before",
]
#: the one metric of :func:`_table10_records`
_T10_METRIC = "cluster/acc"
_SPLITS = ("train", "test")


def _objective(df: pd.DataFrame) -> pd.Series:
    """The stage-1 objective of ``target_pretrain`` runs (TargetPretrainConfig's default if unset)."""
    if "objective" in df.columns:
        return df["objective"]
    return pd.Series(STAGE1_DEFAULT_OBJECTIVE, index=df.index)


def _require_cluster_metrics(df: pd.DataFrame) -> None:
    missing = [c for c in _T10_METRICS if c not in df.columns]
    if missing:
        raise KeyError(f"runs have no column {missing[0]!r} (Table 10 reads target_pretrain runs)")


def _table10_records(df: pd.DataFrame) -> pd.DataFrame:
    """Four records per ``target_pretrain`` run: Trg. Pre. (``-`` = the ``_before`` metrics, the
    weights stage 1 starts from; else the objective's name) × split (train / test), each with its
    clustering accuracy as :data:`_T10_METRIC`, the row key ``_t10_row`` =
    ``<Pretrain> / <Trg. Pre.>`` and the column key ``_t10_col`` = ``<dataset> <split>``."""
    _require_cluster_metrics(df)
    pre = (
        df["pretrained"].map(pretrain_name) if "pretrained" in df.columns else pd.Series(NONE, index=df.index)
    )
    after = _objective(df).map(lambda o: OBJECTIVE_NAMES.get(str(o), str(o)))
    base = df.drop(columns=_T10_METRICS)
    parts = [
        base.assign(
            _t10_row=pre + " / " + trg,
            _t10_col=df["dataset"].astype(str) + f" {split}",
            **{_T10_METRIC: df[f"cluster/{split}_acc{suffix}"]},
        )
        for trg, suffix in ((pd.Series(NONE, index=df.index), "_before"), (after, ""))
        for split in _SPLITS
    ]
    out = pd.concat(parts, ignore_index=True)
    out.attrs = dict(df.attrs)
    return out


_T10_PAPER = {
    (f"IN Sup / {r}", f"{d} {split}"): v[i]
    for (r, d), v in PAPER_TABLE10.items()
    for i, split in enumerate(_SPLITS)
}


# ---- layouts ----------------------------------------------------------------------------------------
@with_paper(PaperTable(PAPER_TABLE1, rows=pts_name, cols=budget, baseline=_without_trg))
def table1(df: pd.DataFrame, metric: str = "test/acc") -> pd.DataFrame:
    """Table 1: rows ``Pretrain / Trg. Pre. / SSL``, columns the label budgets (#40 #250 #1000).

    ``--paper``: the paper's eight rows ftsweep runs (its MT, VAT and Self-Tuning rows are not
    run); ours is ``test/acc`` — with the spec's ``select: median_last_k``, FixMatch's median of
    the last 20 epochs — of the configuration (``lr``) chosen on ``best/val/acc`` per cell. Each
    BYOL row is tested against the same Pretrain / SSL row without target pretraining (the
    paper's claim, observation i), over seeds.
    """
    cols = _apply(df, budget)
    mean, std = _grid(df, _rows_pts(df), cols, metric)
    return _frame(mean, std, _paper_row_order(list(mean.index)), sorted(mean.columns, key=_budget_key))


@with_paper(PaperTable(PAPER_TABLE2, rows=pts_name, cols=dataset_budget, baseline=_without_trg))
def table2(df: pd.DataFrame, metric: str = "test/acc") -> pd.DataFrame:
    """Table 2: rows as Table 1, columns ``<dataset> #<labels>`` (CIFAR-100 #400 #2500, SVHN #40).

    ``--paper``: as :func:`table1` (the runs of both Table 2 specs, experiment ``tp_table2``).
    """
    cols = _apply(df, dataset_budget)
    mean, std = _grid(df, _rows_pts(df), cols, metric)
    order = list(DATASET_NAMES.values())

    def col_key(c: str) -> tuple:
        name, _, b = c.rpartition(" ")
        return (order.index(name) if name in order else len(order), name, _budget_key(b))

    return _frame(mean, std, _paper_row_order(list(mean.index)), sorted(mean.columns, key=col_key))


@with_paper(PaperTable(PAPER_TABLE8, rows=pt_name, cols=ssl_column, baseline=_without_trg))
def table8(df: pd.DataFrame, metric: str = "test/acc") -> pd.DataFrame:
    """Table 8: rows ``Pretrain / Trg. Pre.`` (-, BYOL, MoCo v2), columns the SSL learner.

    ``--paper``: rows :func:`pt_name` and columns :func:`ssl_column` of each run, as here (the
    objective falls back to ``stage1_defaults.objective`` as :func:`trg_name` says); each target
    pretraining row is tested against ``IN Sup / -`` of the same learner, over seeds.
    """
    rows = _apply(df, pt_name)
    cols = _apply(df, ssl_column)
    mean, std = _grid(df, rows, cols, metric)
    trg_rank = {NONE: 0, **{v: i + 1 for i, v in enumerate(OBJECTIVE_NAMES.values())}}
    row_order = sorted(mean.index, key=lambda n: (n.split(" / ")[0], trg_rank.get(n.split(" / ")[1], 9)))
    col_order = [c for c in SSL_NAMES.values() if c in mean.columns] + sorted(
        c for c in mean.columns if c not in SSL_NAMES.values()
    )
    return _frame(mean, std, row_order, col_order)


@with_paper(
    PaperTable(
        PAPER_TABLE9,
        baseline="trg-none",
        row_names={"trg-none": NONE, **{f"trg-{d}": n for d, n in DATASET_NAMES.items()}},
        col_names=DATASET_NAMES,
    )
)
def table9(df: pd.DataFrame, metric: str = "test/acc") -> pd.DataFrame:
    """Table 9: rows the stage-1 dataset (``-`` = none), columns the fine-tuning dataset."""
    rows = _apply(df, stage1_dataset)
    mean, std = _grid(df, rows, df["dataset"], metric)
    order = [NONE, *DATASET_NAMES.values()]
    row_order = sorted(mean.index, key=lambda n: (order.index(n) if n in order else len(order), n))
    col_order = sorted(
        mean.columns, key=lambda d: (list(DATASET_NAMES).index(d) if d in DATASET_NAMES else 99, d)
    )
    return _frame(mean, std, row_order, col_order, DATASET_NAMES)


@with_paper(
    PaperTable(
        _T10_PAPER,
        rows="_t10_row",
        cols="_t10_col",
        metric=_T10_METRIC,
        baseline=_without_trg,
        col_names={f"{d} {s}": f"{n} {s}" for d, n in DATASET_NAMES.items() for s in _SPLITS},
        select_by=None,
        prepare=_table10_records,
    )
)
def table10(df: pd.DataFrame) -> pd.DataFrame:
    """Table 10: clustering accuracy ``train / test`` (mean ± std over seeds) of the backbone
    before (``-``) and after stage 1 (the objective's name), columns the datasets.

    Reads the ``target_pretrain`` runs' ``cluster/{train,test}_acc_before`` and
    ``cluster/{train,test}_acc``; the before row pools every run of a dataset (same initial
    weights), the after rows are split by ``objective``.

    ``--paper``: rows ``<Pretrain> / <Trg. Pre.>`` (the paper's ``IN Sup / -`` and
    ``IN Sup / BYOL``), one column per dataset and split (``CIFAR-10 train`` …). Stage 1 has no
    validation split, so no configuration is selected: each cell must hold the runs of one
    configuration (sweeps/target_pretraining_table10.yaml is one; a sweep over several
    objectives or settings is compared one configuration at a time, else ``--paper`` raises
    rather than pool or pick on a training number). The ``-`` cell of a run is its
    ``_before`` metric, so the BYOL row is tested against it paired on seeds (the same runs).
    """
    _require_cluster_metrics(df)
    datasets = sorted(
        df["dataset"].unique(), key=lambda d: (list(DATASET_NAMES).index(d) if d in DATASET_NAMES else 99, d)
    )
    objective = _objective(df)

    def both(runs: pd.DataFrame, suffix: str) -> str:
        tr, te = runs[f"cluster/train_acc{suffix}"], runs[f"cluster/test_acc{suffix}"]
        sd = lambda s: s.std(ddof=1) if len(s) > 1 else 0.0  # noqa: E731
        return f"{tr.mean():.2f} ± {sd(tr):.2f} / {te.mean():.2f} ± {sd(te):.2f}"

    rows: dict[str, dict[str, str]] = {NONE: {}}
    for d in datasets:
        runs = df[df["dataset"] == d]
        # a seed's start is one network whatever objective follows: each seed once (not per objective)
        rows[NONE][DATASET_NAMES.get(d, d)] = both(runs.drop_duplicates("seed"), "_before")
        for obj in sorted(objective[runs.index].unique()):
            name = OBJECTIVE_NAMES.get(obj, obj)
            rows.setdefault(name, {})[DATASET_NAMES.get(d, d)] = both(runs[objective[runs.index] == obj], "")
    cols = [DATASET_NAMES.get(d, d) for d in datasets]
    return pd.DataFrame.from_dict(rows, orient="index", dtype=object).reindex(columns=cols).fillna("–")


def _fig5_stats(df: pd.DataFrame, metric: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    mean, std = _grid(df, _apply(df, budget), _apply(df, stage1_epochs), metric)
    rows = sorted(mean.index, key=_budget_key)
    cols = sorted(mean.columns)
    return mean.loc[rows, cols], std.loc[rows, cols]


def fig5(df: pd.DataFrame, metric: str = "test/acc") -> pd.DataFrame:
    """Fig. 5 as a table: rows the label budget, columns stage-1 epochs (0 = no stage 1)."""
    mean, std = _fig5_stats(df, metric)
    return _frame(mean, std, list(mean.index), list(mean.columns), {c: f"{c} ep" for c in mean.columns})


def fig5_plot(df: pd.DataFrame, path: str | Path, metric: str = "test/acc") -> Path:
    """Fig. 5: accuracy (mean ± std) against stage-1 epochs, one curve per label budget."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mean, std = _fig5_stats(df, metric)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    x = np.asarray(mean.columns, dtype=float)
    for b in mean.index:
        ax.errorbar(x, mean.loc[b], yerr=std.loc[b], marker="o", capsize=3, label=b)
    ax.set_xlabel("target pretraining epochs")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(title="labels")
    return save_figure(fig, path)


def digits(df: pd.DataFrame, metric: str = "test/acc") -> pd.DataFrame:
    """sweeps/target_pretraining_digits.yaml: rows ``Pretrain / SSL``, columns Trg. Pre. (``-`` / BYOL), plus
    ``Δ`` = the stage-1 column minus ``-`` (difference of the means)."""
    rows = _apply(df, lambda r: f"{pretrain_name(r.get('pretrained'))} / {ssl_name(r['method'])}")
    mean, std = _grid(df, rows, _apply(df, trg_name), metric)
    ssl_rank = {v: i for i, v in enumerate(SSL_NAMES.values())}
    row_order = sorted(mean.index, key=lambda n: (ssl_rank.get(n.split(" / ")[1], 9), n))
    col_order = [NONE] + sorted(c for c in mean.columns if c != NONE)
    out = _frame(mean, std, row_order, col_order)
    for c in col_order[1:]:
        if NONE in mean.columns:
            out[f"Δ {c}"] = [f"{mean.loc[r, c] - mean.loc[r, NONE]:+.2f}" for r in out.index]
    return out
