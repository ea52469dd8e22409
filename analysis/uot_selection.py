"""The UOT data-reuse paper's tables (uot_selection.md) from :func:`ftsweep.runs.load_runs`.

Every accuracy cell is ``mean ± std`` over seeds of the configuration selected on validation
(:func:`ftsweep.tables.summarize`). The paper reports the mean per-class accuracy (``test/mpa``)
on Pets, Aircraft and Caltech-101 and top-1 (``test/acc``) elsewhere (appendix A); the dataset
tables follow that. Recall cells are ``selection/recall`` in percent (Table 4, Fig. 4a).

- :func:`table1`, :func:`table2`, :func:`table3`: rows = the spec's method labels, columns = the
  paper's datasets in its order + ``Avg.`` (of the means over the datasets present).
- :func:`table4`: rows = method labels (GOT-l2, GOT-cos, UOT-cos …), columns ``Rec.`` and
  ``Acc.``, one pair per dataset when several.
- :func:`fig3a`: rows = (dataset, fraction of training data), columns = method labels and the
  gap of every other row to ``Fine-Tune`` (the paper metric of each dataset, as the tables).
- :func:`fig3b`: rows = (dataset, number of selected classes k), columns = selection methods.
- :func:`fig4a`: rows = ε_c, columns = datasets, recall in percent.
- :func:`digits`: the digits pair: rows = method labels, columns test accuracy, recall and
  precision of the selection.

Beside the paper's numbers (``ftsweep table --layout … --paper``): :func:`table1a`,
:func:`table1b`, :func:`table2` and :func:`table3` compare every printed dataset column, each on
its paper metric (``PaperTable.col_metrics``: ``test/mpa`` on Pets, Aircraft, Caltech), not the
``Avg.`` column (a mean of means, nothing per seed to test); :func:`table4a` / :func:`table4b`
compare ``Rec.`` (``selection/recall`` × 100) and ``Acc.``. Fig. 3a, 3b and 4a print curves, no
numbers: their layouts render ours only. :func:`table1` (either half) and :func:`digits` (not a
paper table) carry none.
"""

from __future__ import annotations

import pandas as pd

from ftsweep.methods.uot_selection import UotSelectionConfig
from ftsweep.runs import setting
from ftsweep.tables import (
    PaperTable,
    fill_missing_params,
    paper_cells,
    paper_order,
    pm_cell,
    summarize,
    with_paper,
)

__all__ = [
    "DATASET_NAMES",
    "MPA_DATASETS",
    "PAPER_METRIC",
    "PAPER_TABLE1A",
    "PAPER_TABLE1B",
    "PAPER_TABLE2",
    "PAPER_TABLE3",
    "PAPER_TABLE4A",
    "PAPER_TABLE4B",
    "PAPER_TABLE4_RECALL",
    "digits",
    "fig3a",
    "fig3b",
    "fig4a",
    "table1",
    "table1a",
    "table1b",
    "table2",
    "table3",
    "table4",
    "table4a",
    "table4b",
]

#: dataset key → the paper's column name, in the paper's order (Table 1)
DATASET_NAMES = {
    "dogs": "Dogs",
    "cars": "Cars",
    "cub200": "CUB",
    "pets": "Pets",
    "sun397": "SUN",
    "aircraft": "Aircraft",
    "dtd": "DTD",
    "caltech101": "Caltech",
    "digits_target": "Digits 0-4",
}
#: datasets whose paper metric is the mean per-class accuracy (appendix A)
MPA_DATASETS = ("pets", "aircraft", "caltech101")
SELECTION_NAMES = {
    "none": "Fine-Tune",
    "random": "Random",
    "greedy_ot": "Greedy-OT",
    "uot": "UOT",
    "label": "Label",
}


#: the paper's row order (labels of the specs); other labels follow in their given order
ROW_ORDER = [
    "Fine-Tune",
    "Fine-Tuning",
    "Random",
    "Greedy-OT",
    "UOT",
    "Random (w/ labels)",
    "Greedy-OT (w/ labels)",
    "UOT (w/ labels)",
    "Random (w/o labels)",
    "Greedy-OT (w/o labels)",
    "UOT (w/o labels)",
    "K=1000",
    "K=2000",
    "GOT-l2",
    "GOT-cos",
    "UOT-l2",
    "UOT-cos",
    "Label",
    "Label (59 birds)",
]
#: non-config columns kept beside the config fields and the metrics
_KEEP = {"method", "dataset", "seed", "status", "run_id"}


def _fill(df: pd.DataFrame) -> pd.DataFrame:
    """Keep config fields, metrics (names with ``/``) and run identity; missing config values →
    ``"None"``. Ray's own result columns (``time_total_s``, ``training_iteration`` …) have no
    ``/`` and would otherwise count as configuration and split seeds apart."""
    fields = set(UotSelectionConfig.field_names())
    return fill_missing_params(df[[c for c in df.columns if "/" in str(c) or c in fields or c in _KEEP]])


def _dataset_table(df: pd.DataFrame) -> pd.DataFrame:
    df = _fill(df)
    rows = paper_order(list(dict.fromkeys(df["method"])), ROW_ORDER)
    datasets = paper_order(list(dict.fromkeys(df["dataset"])), list(DATASET_NAMES))
    out = pd.DataFrame(index=rows, dtype=object)
    means = pd.DataFrame(index=rows, dtype=float)
    for d in datasets:
        metric = "test/mpa" if d in MPA_DATASETS else "test/acc"
        sub = df[df["dataset"] == d]
        mean, std, _ = summarize(sub, "method", "dataset", metric)
        name = DATASET_NAMES.get(d, d)
        means[name] = mean[d].reindex(rows)
        out[name] = [pm_cell(mean[d].get(r), std[d].get(r)) for r in rows]
    out["Avg."] = [pm_cell(v, 0.0).split(" ± ")[0] for v in means.mean(axis=1, skipna=False)]
    return out


# ---- the paper's numbers (uot_selection.md), keyed by (spec method label, dataset key) -------------
_T1_COLS = ["dogs", "cars", "cub200", "pets", "sun397", "aircraft", "dtd", "caltech101"]


#: Table 1(a), supervised ResNet-18 (the rows ftsweep runs; Co-Tuning is not run). Pets, Aircraft
#: and Caltech are mean per-class accuracy, the others top-1 (appendix A).
PAPER_TABLE1A = paper_cells(
    {
        "Fine-Tune": [82.65, 85.87, 75.49, 91.40, 58.03, 77.62, 70.64, 90.11],
        "Random": [83.29, 86.52, 75.54, 91.58, 58.18, 78.10, 70.69, 90.64],
        "Greedy-OT": [84.63, 86.79, 76.92, 91.66, 58.70, 78.43, 70.90, 90.67],
        "UOT": [84.67, 87.03, 77.21, 91.98, 59.06, 78.94, 71.17, 91.11],
    },
    _T1_COLS,
)
#: Table 1(b), MoCo-v2 ResNet-50: reuse with source labels and without (k-means clusters)
PAPER_TABLE1B = paper_cells(
    {
        "Fine-Tune": [78.64, 91.05, 77.44, 90.44, 61.12, 87.25, 75.80, 92.82],
        "Random (w/ labels)": [79.87, 90.85, 78.82, 91.48, 62.42, 88.60, 77.34, 93.26],
        "Greedy-OT (w/ labels)": [79.43, 90.89, 78.63, 91.27, 62.27, 89.40, 76.81, 93.36],
        "UOT (w/ labels)": [88.14, 90.89, 80.98, 93.05, 64.76, 89.28, 77.45, 93.45],
        "Random (w/o labels)": [79.77, 90.93, 77.96, 90.70, 62.26, 89.17, 76.97, 92.72],
        "Greedy-OT (w/o labels)": [81.16, 90.87, 78.63, 91.21, 63.41, 89.29, 77.29, 93.39],
        "UOT (w/o labels)": [81.47, 90.91, 78.96, 90.39, 63.68, 89.59, 77.07, 93.27],
    },
    _T1_COLS,
)
#: Table 2, cluster number K (MoCo-v2, UOT w/o labels)
PAPER_TABLE2 = paper_cells(
    {
        "K=1000": [81.02, 90.86, 78.48, 90.55, 63.65, 89.16, 77.50, 93.09],
        "K=2000": [81.47, 90.91, 78.96, 90.39, 63.68, 89.59, 77.07, 93.27],
    },
    _T1_COLS,
)
#: Table 3, long-tail targets (supervised ResNet-18)
PAPER_TABLE3 = paper_cells(
    {"Fine-Tuning": [52.73, 52.74, 73.96], "UOT": [57.27, 53.96, 78.20]}, ["cub200", "aircraft", "caltech101"]
)
_T4_ROWS = ["GOT-l2", "GOT-cos", "UOT-l2", "UOT-cos"]
#: Table 4, test accuracy on CUB (top-1): supervised ResNet-18 (a), MoCo-v2 ResNet-50 (b)
PAPER_TABLE4A = {(r, "cub200"): v for r, v in zip(_T4_ROWS, [76.92, 76.67, 77.08, 77.21], strict=True)}
PAPER_TABLE4B = {(r, "cub200"): v for r, v in zip(_T4_ROWS, [78.63, 79.32, 78.48, 80.98], strict=True)}
#: Table 4, recall (%) of the 59 bird classes: ``{"a" | "b": {(label, "cub200"): recall}}``; the
#: runs log it as ``selection/recall`` (a fraction, :func:`ftsweep.selection.recall_rate`)
PAPER_TABLE4_RECALL = {
    "a": {(r, "cub200"): v for r, v in zip(_T4_ROWS, [86.44, 94.92, 94.92, 98.31], strict=True)},
    "b": {(r, "cub200"): v for r, v in zip(_T4_ROWS, [16.95, 38.98, 16.95, 93.22], strict=True)},
}
#: the metric of each printed column of the dataset tables: MPA on Pets, Aircraft, Caltech
_DATASET_METRICS = {d: "test/mpa" for d in MPA_DATASETS}


def _dataset_paper(values: dict[tuple[str, str], float], baseline: str | None) -> PaperTable:
    """The PaperTable of a dataset table (Tables 1-3): every printed dataset column, each on the
    paper's metric (``test/mpa`` on :data:`MPA_DATASETS`, ``test/acc`` elsewhere; appendix A).
    The paper's ``Avg.`` column is not compared: it is a mean of cell means over datasets, not a
    per-run number with seeds to test (its Δ follows from the datasets' Δs)."""
    return PaperTable(values, baseline=baseline, col_names=DATASET_NAMES, col_metrics=_DATASET_METRICS)


def _cub200_runs(df: pd.DataFrame) -> pd.DataFrame:
    """Table 4 is CUB's: the runs on ``cub200``."""
    return df[df["dataset"] == "cub200"]


def _table4_paper(acc: dict[tuple[str, str], float], recall: dict[tuple[str, str], float]) -> PaperTable:
    """Table 4's two printed columns from the same runs: ``Rec.`` (``selection/recall`` × 100)
    and ``Acc.`` (``test/acc``, top-1 on CUB) of the configuration selected on validation per
    method label (one configuration per row, shared by both columns)."""
    return PaperTable(
        {**{(r, "Rec."): v for (r, _), v in recall.items()}, **{(r, "Acc."): v for (r, _), v in acc.items()}},
        cols=None,
        col_metrics={"Rec.": "selection/recall", "Acc.": "test/acc"},
        scale={"selection/recall": 100.0},
        prepare=_cub200_runs,
    )


def table1(df: pd.DataFrame) -> pd.DataFrame:
    """Table 1 (a) or (b): method rows × the 8 datasets + Avg. (no paper numbers: the two
    halves share row labels; see :func:`table1a` / :func:`table1b`)."""
    return _dataset_table(df)


@with_paper(_dataset_paper(PAPER_TABLE1A, "Fine-Tune"))
def table1a(df: pd.DataFrame) -> pd.DataFrame:
    """Table 1(a), supervised ResNet-18: Fine-Tune / Random / Greedy-OT / UOT × datasets + Avg."""
    return _dataset_table(df)


@with_paper(_dataset_paper(PAPER_TABLE1B, "Fine-Tune"))
def table1b(df: pd.DataFrame) -> pd.DataFrame:
    """Table 1(b), MoCo-v2 ResNet-50: reuse with / without source labels × datasets + Avg."""
    return _dataset_table(df)


@with_paper(_dataset_paper(PAPER_TABLE2, None))
def table2(df: pd.DataFrame) -> pd.DataFrame:
    """Table 2: K = 1000 / 2000 rows × datasets + Avg."""
    return _dataset_table(df)


@with_paper(_dataset_paper(PAPER_TABLE3, "Fine-Tuning"))
def table3(df: pd.DataFrame) -> pd.DataFrame:
    """Table 3: Fine-Tuning / UOT on long-tail CUB, Aircraft, Caltech."""
    return _dataset_table(df)


def table4(df: pd.DataFrame) -> pd.DataFrame:
    """Table 4: recall (%) of the true source classes and accuracy, per method label."""
    df = _fill(df)
    rows = paper_order(list(dict.fromkeys(df["method"])), ROW_ORDER)
    datasets = paper_order(list(dict.fromkeys(df["dataset"])), list(DATASET_NAMES))
    out = pd.DataFrame(index=rows, dtype=object)
    for d in datasets:
        sub = df[df["dataset"] == d].assign(
            **{"selection/recall_pct": lambda x: 100.0 * x["selection/recall"]}
        )
        metric = "test/mpa" if d in MPA_DATASETS else "test/acc"
        rec, rec_std, _ = summarize(sub, "method", "dataset", "selection/recall_pct")
        acc, acc_std, _ = summarize(sub, "method", "dataset", metric)
        suffix = f" ({DATASET_NAMES.get(d, d)})" if len(datasets) > 1 else ""
        out[f"Rec.{suffix}"] = [pm_cell(rec[d].get(r), rec_std[d].get(r)) for r in rows]
        out[f"Acc.{suffix}"] = [pm_cell(acc[d].get(r), acc_std[d].get(r)) for r in rows]
    return out


@with_paper(_table4_paper(PAPER_TABLE4A, PAPER_TABLE4_RECALL["a"]))
def table4a(df: pd.DataFrame) -> pd.DataFrame:
    """Table 4, supervised ResNet-18 (sweeps/uot_selection_table4a.yaml); paper: Rec. and Acc."""
    return table4(df)


@with_paper(_table4_paper(PAPER_TABLE4B, PAPER_TABLE4_RECALL["b"]))
def table4b(df: pd.DataFrame) -> pd.DataFrame:
    """Table 4, MoCo-v2 ResNet-50 (sweeps/uot_selection_table4b.yaml); paper: Rec. and Acc."""
    return table4(df)


#: the column :func:`fig3a` and :func:`fig3b` summarise: each row's paper metric
PAPER_METRIC = "test/paper_metric"


def _paper_metric(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with :data:`PAPER_METRIC` = ``test/mpa`` on Pets, Aircraft and Caltech
    (:data:`MPA_DATASETS`, appendix A) and ``test/acc`` elsewhere."""
    mpa = df["dataset"].isin(MPA_DATASETS)
    if mpa.any() and "test/mpa" not in df.columns:
        raise KeyError(f"runs on {sorted(set(df.loc[mpa, 'dataset']))} have no test/mpa metric")
    values = df["test/acc"].where(~mpa, df["test/mpa"] if "test/mpa" in df.columns else None)
    return df.assign(**{PAPER_METRIC: values})


def fig3a(df: pd.DataFrame) -> pd.DataFrame:
    """Fig. 3a: accuracy (MPA on Caltech, top-1 on CUB) per fraction of training data and the gap
    to Fine-Tune."""
    df = _paper_metric(_fill(df))
    df = df.assign(subsample=df["subsample"].replace("None", 1.0).astype(float))
    methods = list(dict.fromkeys(df["method"]))
    mean, std, _ = summarize(df, ["dataset", "subsample"], "method", PAPER_METRIC)
    mean, std = mean.sort_index(), std.sort_index()
    out = pd.DataFrame(index=mean.index, dtype=object)
    for m in methods:
        out[m] = [pm_cell(a, b) for a, b in zip(mean[m], std[m], strict=True)]
    if "Fine-Tune" in methods:
        for m in methods:
            if m != "Fine-Tune":
                gap = mean[m] - mean["Fine-Tune"]
                out[f"{m} − Fine-Tune"] = ["–" if pd.isna(g) else f"{g:+.2f}" for g in gap]
    out.index = [f"{DATASET_NAMES.get(d, d)} {100 * s:.0f}%" for d, s in mean.index]
    return out


def fig3b(df: pd.DataFrame) -> pd.DataFrame:
    """Fig. 3b: accuracy (MPA on Caltech, top-1 on CUB) per number of selected classes k, one
    column per selection method."""
    df = _paper_metric(_fill(df))
    df = df.assign(k=df["k"].astype(int), sel=df["selection"].map(lambda s: SELECTION_NAMES.get(s, s)))
    mean, std, _ = summarize(df, ["dataset", "k"], "sel", PAPER_METRIC)
    mean, std = mean.sort_index(), std.sort_index()
    out = pd.DataFrame(index=mean.index, dtype=object)
    for c in paper_order(list(mean.columns), list(SELECTION_NAMES.values())):
        out[c] = [pm_cell(a, b) for a, b in zip(mean[c], std[c], strict=True)]
    out.index = [f"{DATASET_NAMES.get(d, d)} k={k}" for d, k in mean.index]
    return out


def fig4a(df: pd.DataFrame) -> pd.DataFrame:
    """Fig. 4a: recall (%) per ε_c, one column per dataset; with runs of several checkpoints
    (the supervised and the MoCo-v2 curve in one experiment), one curve each: rows
    ``<checkpoint file> <ε_c>`` (pooled, validation would keep one checkpoint per ε_c)."""
    df = _fill(df)
    df = df.assign(
        eps_c=df["eps_c"].astype(float), **{"selection/recall_pct": 100.0 * df["selection/recall"]}
    )
    curves = "pretrained" in df.columns and df["pretrained"].nunique() > 1
    if curves:
        df = df.assign(checkpoint=[setting("pretrained", p) for p in df["pretrained"]])  # its file name
    rows = ["checkpoint", "eps_c"] if curves else "eps_c"
    mean, std, _ = summarize(df, rows, "dataset", "selection/recall_pct")
    mean, std = mean.sort_index(), std.sort_index()
    names = [f"{k[0]} {k[1]:g}" for k in mean.index] if curves else [f"{e:g}" for e in mean.index]
    out = pd.DataFrame(index=names, dtype=object)
    for d in mean.columns:
        out[DATASET_NAMES.get(d, d)] = [pm_cell(a, b, 1) for a, b in zip(mean[d], std[d], strict=True)]
    out.index.name = "checkpoint eps_c" if curves else "eps_c"
    return out


def digits(df: pd.DataFrame) -> pd.DataFrame:
    """The digits pair: test accuracy, and recall / precision (%) of the selected source data."""
    df = _fill(df)
    rows = paper_order(list(dict.fromkeys(df["method"])), ROW_ORDER)
    out = pd.DataFrame(index=rows, dtype=object)
    acc, acc_std, n = summarize(df, "method", "dataset", "test/acc")
    d = acc.columns[0]
    out["Test acc."] = [pm_cell(acc[d].get(r), acc_std[d].get(r)) for r in rows]
    for col, name in (("selection/recall", "Recall"), ("selection/precision", "Precision")):
        if col in df.columns:
            sub = df.assign(**{"pct/value": 100.0 * df[col]})  # a metric-like name (has "/")
            m, s, _ = summarize(sub, "method", "dataset", "pct/value")
            out[name] = [pm_cell(m[d].get(r), s[d].get(r), 1) for r in rows]
    out["Seeds"] = [str(int(n[d].get(r))) if not pd.isna(n[d].get(r)) else "0" for r in rows]
    return out
