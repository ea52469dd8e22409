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
"""

from __future__ import annotations

import pandas as pd

from ftsweep.methods.uot_selection import UotSelectionConfig
from ftsweep.tables import fill_missing_params, paper_order, pm_cell, summarize

__all__ = [
    "DATASET_NAMES",
    "MPA_DATASETS",
    "PAPER_METRIC",
    "digits",
    "fig3a",
    "fig3b",
    "fig4a",
    "table1",
    "table2",
    "table3",
    "table4",
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


def table1(df: pd.DataFrame) -> pd.DataFrame:
    """Table 1 (a) or (b): method rows × the 8 datasets + Avg."""
    return _dataset_table(df)


def table2(df: pd.DataFrame) -> pd.DataFrame:
    """Table 2: K = 1000 / 2000 rows × datasets + Avg."""
    return _dataset_table(df)


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
    """Fig. 4a: recall (%) per ε_c, one column per dataset."""
    df = _fill(df)
    df = df.assign(
        eps_c=df["eps_c"].astype(float), **{"selection/recall_pct": 100.0 * df["selection/recall"]}
    )
    mean, std, _ = summarize(df, "eps_c", "dataset", "selection/recall_pct")
    mean, std = mean.sort_index(), std.sort_index()
    out = pd.DataFrame(index=[f"{e:g}" for e in mean.index], dtype=object)
    for d in mean.columns:
        out[DATASET_NAMES.get(d, d)] = [pm_cell(a, b, 1) for a, b in zip(mean[d], std[d], strict=True)]
    out.index.name = "eps_c"
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
