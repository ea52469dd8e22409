"""Table renderer on a hand-written DataFrame: validation-based selection, mean ± std, bold, Δ."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ftsweep.tables import format_table, repeated_runs, summarize, write_table

ROWS = [
    # method, dataset, seed, lr, best/val/acc, test/acc
    ("ce", "a", 0, 0.1, 50, 60),
    ("ce", "a", 1, 0.1, 52, 62),
    ("ce", "a", 0, 0.2, 40, 90),  # higher test but worse validation: must not be picked
    ("ce", "a", 1, 0.2, 41, 91),
    ("scl", "a", 0, 0.1, 55, 70),
    ("scl", "a", 1, 0.1, 57, 74),
    ("ce", "b", 0, 0.1, 10, 20),
    ("scl", "b", 0, 0.1, 11, 25),
]


@pytest.fixture
def runs() -> pd.DataFrame:
    cols = ["method", "dataset", "seed", "lr", "best/val/acc", "test/acc"]
    df = pd.DataFrame(ROWS, columns=cols)
    # Tune's own result fields differ per run and must not split seeds into configurations
    df["time_total_s"] = [float(i) for i in range(len(df))]
    df["training_iteration"] = [3 + i for i in range(len(df))]
    return df


def test_summary_selects_on_validation(runs: pd.DataFrame) -> None:
    mean, std, n = summarize(runs)
    assert mean.loc["ce", "a"] == 61.0  # lr 0.1 (val 51) beats lr 0.2 (val 40.5)
    assert std.loc["ce", "a"] == pytest.approx(2**0.5)  # sample std of 60, 62
    assert mean.loc["scl", "a"] == 72.0 and std.loc["scl", "a"] == pytest.approx(2 * 2**0.5)
    assert n.loc["ce", "b"] == 1 and std.loc["ce", "b"] == 0.0
    assert list(mean.index) == ["ce", "scl"]


def test_param_columns_from_mlflow_define_configurations(runs: pd.DataFrame) -> None:
    runs["note"] = [f"n{i}" for i in range(len(runs))]  # not a param: ignored when attrs say so
    runs.attrs["params"] = ["lr", "method", "dataset"]
    mean, _, n = summarize(runs)
    assert mean.loc["ce", "a"] == 61.0 and n.loc["ce", "a"] == 2


def test_a_cell_never_pools_methods_or_datasets(runs: pd.DataFrame) -> None:
    # rows lr: the cell (lr 0.1, a) held ce's and scl's runs and showed scl's 72 unnamed
    with pytest.raises(ValueError, match=r"cell lr=0.1 dataset=a holds the runs of 2 methods \(ce, scl\)"):
        summarize(runs, rows="lr")
    with pytest.raises(ValueError, match=r"holds the runs of 2 datasets \(a, b\): put dataset in"):
        summarize(runs, rows="method", cols="lr")
    # one method on one dataset per cell: the same selection as rows method, cols dataset
    one = runs[runs["method"] == "ce"]
    mean, _, n = summarize(one, rows="lr", cols="dataset")
    assert mean.loc[0.1, "a"] == 61.0 and mean.loc[0.2, "a"] == 90.5 and n.loc[0.1, "b"] == 1
    jobs = runs.assign(job=runs["method"] + "-" + runs["dataset"])
    mean, _, _ = summarize(jobs, rows="job", cols="lr")
    assert mean.loc["scl-a", 0.1] == 72.0 and mean.loc["ce-a", 0.2] == 90.5


def test_repeated_runs_are_one_configuration_dataset_and_seed_under_another_label() -> None:
    cols = ["method", "job", "dataset", "seed", "lambda_n", "lambda_p", "data_root", "test/acc"]
    df = pd.DataFrame(
        [
            ("ct_n", "ct_n-a", "a", 0, 0.8, 0.8, "/x", 90.0),
            ("ct_n", "ct_n-a", "a", 1, 0.8, 0.8, "/x", 91.0),  # another seed: not a repeat
            ("ct_n", "ct_n-b", "b", 0, 0.8, 0.8, "/x", 70.0),  # another dataset: not a repeat
            ("ct_p", "ct_p-a", "a", 0, 0.8, 0.8, "/y", 90.5),  # ct_n's seed 0 again (a place differs)
            ("ct_p", "ct_p-a", "a", 0, 0.8, 0.6, "/y", 80.0),  # another λ_p: not a repeat
        ],
        columns=cols,
    )
    df.attrs["params"] = ["data_root", "dataset", "lambda_n", "lambda_p"]
    assert repeated_runs(df).tolist() == [False, False, False, True, False]


def test_markdown_bold_and_delta(runs: pd.DataFrame) -> None:
    mean, std, _ = summarize(runs)
    text = format_table(mean, std, baseline="ce")
    lines = text.splitlines()
    assert lines[0] == "|  | a | b |"
    assert lines[2] == "| ce | 61.00 ± 1.41 | 20.00 ± 0.00 |"
    assert lines[3] == "| scl | **72.00 ± 2.83** | **25.00 ± 0.00** |"
    assert lines[4] == "| Δ vs ce | +11.00 | +5.00 |"


def test_a_column_of_runs_without_the_value_is_none_not_nan(runs: pd.DataFrame) -> None:
    runs["stage1.objective"] = ["byol" if d == "a" else np.nan for d in runs["dataset"]]
    mean, std, _ = summarize(runs, cols="stage1.objective")
    lines = format_table(mean, std).splitlines()
    assert lines[0] == "|  | byol | none |"
    assert lines[2] == "| ce | 61.00 ± 1.41 | 20.00 ± 0.00 |"


def test_latex_and_csv(runs: pd.DataFrame) -> None:
    mean, std, _ = summarize(runs)
    tex = format_table(mean, std, fmt="latex")
    assert "\\textbf{72.00 $\\pm$ 2.83}" in tex and tex.startswith("\\begin{tabular}{lcc}")
    csv = format_table(mean, std, fmt="csv")
    assert csv.splitlines()[1] == "ce,61.00 ± 1.41,20.00 ± 0.00"


def test_parquet_round_trip(runs: pd.DataFrame, tmp_path) -> None:
    mean, std, n = summarize(runs)
    p = write_table(mean, std, n, tmp_path / "t.parquet")
    back = pd.read_parquet(p)
    row = back[(back.row == "scl") & (back.col == "a")].iloc[0]
    assert (row["mean"], row["n"]) == (72.0, 2)


def test_unknown_baseline_and_metric(runs: pd.DataFrame) -> None:
    mean, std, _ = summarize(runs)
    with pytest.raises(KeyError, match="baseline 'mlp' is not a row"):
        format_table(mean, std, baseline="mlp")
    with pytest.raises(KeyError, match="no column 'test/top5'"):
        summarize(runs, metric="test/top5")


# ---- ours | paper | Δ with significance --------------------------------------------------------
def _paper_runs():
    import pandas as pd

    rows = []
    for seed, (ce, coin) in enumerate([(90.0, 93.0), (92.0, 95.5), (91.0, 94.0)]):
        rows += [
            {"method": "ce", "dataset": "cifar10", "seed": seed, "best/val/acc": 1.0, "test/acc": ce},
            {"method": "coin", "dataset": "cifar10", "seed": seed, "best/val/acc": 1.0, "test/acc": coin},
        ]
    return pd.DataFrame(rows)


def test_paper_cells_by_hand() -> None:
    import math

    from scipy import stats as sps

    from ftsweep.tables import PaperTable, paper_cell, paper_comparison, paper_frame, with_paper

    assert paper_cell(94.1666, 1.2583, 3, 97.88) == "94.17 ± 1.26 (n=3) | 97.88 | -3.71"
    assert paper_cell(float("nan"), float("nan"), 0, 97.88) == "– | 97.88 | –"
    table = PaperTable({("ce", "cifar10"): 97.26, ("coin", "cifar10"): 97.88}, baseline="ce")

    @with_paper(table)
    def layout(df):
        return df

    long = paper_comparison(_paper_runs(), table)
    coin = long.set_index("row").loc["coin"]
    ref = sps.ttest_rel([93.0, 95.5, 94.0], [90.0, 92.0, 91.0])
    assert coin["p"] == pytest.approx(ref.pvalue, rel=1e-10) and coin["test"] == "paired"
    assert coin["p_holm"] == pytest.approx(ref.pvalue, rel=1e-10)  # one comparison: Holm = raw
    assert coin["delta"] == pytest.approx((93.0 + 95.5 + 94.0) / 3 - 97.88)
    assert math.isnan(long.set_index("row").loc["ce", "p"])
    md = paper_frame(_paper_runs(), layout, "md")
    std = float(np.std([93.0, 95.5, 94.0], ddof=1))
    mark = "**" if ref.pvalue < 0.01 else "*" if ref.pvalue < 0.05 else ""
    assert md.loc["coin", "cifar10"] == f"94.17 ± {std:.2f} (n=3){mark} \\| 97.88 \\| -3.71"
    assert md.loc["ce", "cifar10"] == "91.00 ± 1.00 (n=3) \\| 97.26 \\| -6.26"
    csv = paper_frame(_paper_runs(), layout, "csv")
    assert {"p", "p_holm", "ci_low", "ci_high", "paper", "delta"} <= set(csv.columns)


def test_coin_table1_paper_numbers_are_the_papers() -> None:
    """A few numbers of analysis.coin's PAPER_TABLE1 read back from coin.md's Table 1."""
    from pathlib import Path

    from analysis.coin import PAPER_TABLE1, table1

    text = (Path(__file__).resolve().parents[2] / "shared" / "papers" / "coin.md").read_text()
    table1_text = text[text.index("Table 1:") : text.index("Table 2:")]
    lines = {line.split("\t")[0]: line.split("\t")[1:] for line in table1_text.splitlines() if "\t" in line}
    cols = [
        "imagenet20",
        "cifar10",
        "cifar100",
        "dtd",
        "cars",
        "pets",
        "flowers102",
        "caltech101",
        "aircraft",
    ]

    def num(cell: str) -> float:
        return float(cell.replace("<b>", "").replace("</b>", "").split(" ")[0])

    for row, label in [("ce", "CE-Tuning"), ("scl_star", "SCL* [21]"), ("core_tuning", "Core-Tuning* [13]"),
                       ("coin", "COIN (ours)")]:  # fmt: skip
        for col, cell in zip(cols, lines[label], strict=False):
            assert PAPER_TABLE1[(row, col)] == num(cell), (row, col)
    assert table1.paper.values is PAPER_TABLE1


def _paper_lines(paper: str, start: str, end: str) -> list[list[str]]:
    """Tab-separated lines of ``../shared/papers/<paper>`` between ``start`` and ``end``."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "shared" / "papers" / paper).read_text()
    text = text[text.index(start) : text.index(end)] if start else text
    return [line.split("\t") for line in text.splitlines() if "\t" in line]


def _num(cell: str) -> float:
    """The first number of a printed cell (``<b>97.85</b>``, ``83.68±0.80``, ``94.60 (+5.00)``)."""
    import re

    return float(re.search(r"\d+(\.\d+)?", cell).group())


def test_coin_tables_3_and_4_paper_numbers_are_the_papers() -> None:
    from analysis.coin import PAPER_TABLE3, PAPER_TABLE4, table3, table4

    # in coin.md a table's lines follow its caption
    tau, acc3 = _paper_lines("coin.md", "Table 3:", "Table 4:")
    alpha, acc4 = _paper_lines("coin.md", "Table 4:", "Table 5:")
    assert tau[0] == "$\\tau$" and alpha[0] == "$\\alpha$" and acc3[0] == acc4[0] == "Acc. (%)"
    # the last column is Avg.
    assert {
        ("cifar10", float(t)): _num(c) for t, c in zip(tau[1:-1], acc3[1:-1], strict=True)
    } == PAPER_TABLE3
    assert {
        ("cifar10", float(a)): _num(c) for a, c in zip(alpha[1:-1], acc4[1:-1], strict=True)
    } == PAPER_TABLE4
    assert table3.paper.values is PAPER_TABLE3 and table4.paper.values is PAPER_TABLE4


def test_core_tuning_tables_1_and_2_paper_numbers_are_the_papers() -> None:
    from analysis.core_tuning import DATASET_NAMES, PAPER_TABLE1, PAPER_TABLE2, table1, table2

    lines = _paper_lines("core_tuning.md", "", "")
    rows: dict[str, list[str]] = {}
    for cells in lines:  # the first table that prints a row label is Table 1
        rows.setdefault(cells[0], cells[1:])
    for key, label in [
        ("ce", "CE-tuning"),
        ("scl", "SCL (Gunel et al., 2021)"),
        ("core_tuning", "Core-tuning (ours)"),
    ]:
        for d, cell in zip(DATASET_NAMES, rows[label], strict=False):
            assert PAPER_TABLE1[(key, d)] == _num(cell), (key, d)
    # Table 2: rows of ✓ marks in five component columns, then the nine datasets
    header = next(i for i, c in enumerate(lines) if c[0] == "\\mathcal{L}_{ce}")
    for key, cells in zip(
        ["ce", "ct_con", "ct_mixup", "ct_con_mixuphard", "core_tuning"],
        lines[header + 1 : header + 6],
        strict=True,
    ):
        assert cells[0] == "✓"
        for d, cell in zip(DATASET_NAMES, cells[5:], strict=False):
            assert PAPER_TABLE2[(key, d)] == _num(cell), (key, d)
    assert table1.paper.values is PAPER_TABLE1 and table2.paper.values is PAPER_TABLE2
    assert table1.paper.baseline == table2.paper.baseline == "ce"


def test_schane_tables_2_and_3_paper_numbers_are_the_papers() -> None:
    from analysis.schane import PAPER_TABLE2, PAPER_TABLE3, table2, table3

    lines = _paper_lines("schane.md", "Table 1:", "Table 2:")  # a table's lines precede its caption
    header = next(c for c in lines if c[:3] == ["Model", "Method", "CIFAR-100"])
    names = {"CIFAR-100": "cifar100", "CUB-200-2011": "cub200", "Caltech-256": "caltech256",
             "Oxford 102 Flowers": "flowers102", "Oxford-IIIT Pet": "pets", "iNat2017": "inat2017",
             "Places365": "places365", "ImageNet-1k": "imagenet"}  # fmt: skip
    cols = [names[h] for h in header[2:]]
    rows = {("MAE", "CE"): "ce", ("BEiT-3", "SCHaNe"): "schane"}  # CE: the specs' MAE backbone
    checked = 0
    for cells in lines:
        if tuple(cells[:2]) in rows and len(cells) == 10:
            key = rows[tuple(cells[:2])]
            for d, cell in zip(cols, cells[2:], strict=True):
                assert PAPER_TABLE2[(key, d)] == _num(cell), (key, d)
                checked += 1
    assert checked == 16 == len(PAPER_TABLE2)
    ablation = {c[1]: c[4] for c in _paper_lines("schane.md", "Table 2:", "Table 3:") if c[0] == "BEiT-3"}
    for key, label in [
        ("ce", "CE"),
        ("ce_simclr", "CE + SimCLR"),
        ("ce_supcon", "CE + SupCon"),
        ("schane", "SCHaNe"),
    ]:
        assert PAPER_TABLE3[(key, "cifar_fs")] == _num(ablation[label])
    assert table2.paper.values is PAPER_TABLE2 and table3.paper.values is PAPER_TABLE3


# ---- PaperTable: a metric per column, function keys, metric columns, no validation metric ---------
def _uot_like_runs() -> pd.DataFrame:
    """Two methods × two datasets × two seeds; ``ft`` has two lr, lr 0.1 wins on validation."""
    rows = []
    for seed in (0, 1):
        for lr, val, acc, mpa in ((0.1, 80.0, 60.0 + seed, 50.0 + 2 * seed), (0.01, 70.0, 99.0, 99.0)):
            rows.append({"method": "ft", "k": 100, "dataset": "cub", "seed": seed, "lr": lr,
                         "best/val/acc": val, "test/acc": acc, "test/mpa": mpa})  # fmt: skip
            rows.append({"method": "ft", "k": 100, "dataset": "pets", "seed": seed, "lr": lr,
                         "best/val/acc": val, "test/acc": acc + 10, "test/mpa": mpa + 10})  # fmt: skip
        for d, acc, mpa in (("cub", 64.0 + 3 * seed, 55.0), ("pets", 74.0, 66.0 + seed)):
            rows.append({"method": "uot", "k": 200, "dataset": d, "seed": seed, "lr": 0.1,
                         "best/val/acc": 1.0, "test/acc": acc, "test/mpa": mpa})  # fmt: skip
    return pd.DataFrame(rows)


def test_paper_table_metric_per_column_and_function_row_key() -> None:
    from ftsweep.tables import PaperTable, paper_comparison, paper_frame, with_paper

    table = PaperTable(
        {("ft k=100", "cub"): 61.0, ("uot k=200", "pets"): 65.0},
        rows=lambda r: f"{r['method']} k={r['k']}",
        col_metrics={"pets": "test/mpa"},
        baseline="ft k=100",
    )
    long = paper_comparison(_uot_like_runs(), table).set_index(["row", "col"])
    # cub reads test/acc, pets test/mpa; ft's lr 0.01 (test 99) loses on validation
    assert long.loc[("ft k=100", "cub"), "mean"] == pytest.approx(60.5)  # (60 + 61) / 2
    assert long.loc[("ft k=100", "pets"), "mean"] == pytest.approx(61.0)  # (60 + 62) / 2
    assert long.loc[("uot k=200", "cub"), "mean"] == pytest.approx(65.5)  # (64 + 67) / 2
    assert long.loc[("uot k=200", "pets"), "mean"] == pytest.approx(66.5)  # (66 + 67) / 2
    # paired on seeds: uot − ft per seed on pets: 66 − 60, 67 − 62 → mean 5.5
    assert long.loc[("uot k=200", "pets"), "diff_vs_baseline"] == pytest.approx(5.5)
    assert long.loc[("uot k=200", "pets"), "test"] == "paired"

    @with_paper(table)
    def layout(df: pd.DataFrame) -> pd.DataFrame:
        return df

    md = paper_frame(_uot_like_runs(), layout, "md")
    assert md.loc["ft k=100", "cub"] == "60.50 ± 0.71 (n=2) \\| 61.00 \\| -0.50"
    std = float(np.std([66.0, 67.0], ddof=1))
    assert md.loc["uot k=200", "pets"].startswith(f"66.50 ± {std:.2f} (n=2)")
    assert md.loc["uot k=200", "pets"].endswith(" \\| 65.00 \\| +1.50")
    # a column whose metric the runs lack names the metric
    with pytest.raises(KeyError, match="test/top5"):
        paper_comparison(_uot_like_runs(), PaperTable({}, col_metrics={"pets": "test/top5"}))


def test_paper_table_metric_columns_share_one_selected_configuration() -> None:
    from ftsweep.tables import PaperTable, paper_comparison

    runs = pd.DataFrame(
        [
            # method, seed, lr, val, recall (fraction), acc: lr 0.1 wins on validation
            {
                "method": m,
                "dataset": "cub",
                "seed": s,
                "lr": lr,
                "best/val/acc": val,
                "selection/recall": rec,
                "test/acc": acc,
            }
            for m, s, lr, val, rec, acc in [
                ("uot", 0, 0.1, 90.0, 0.95, 77.0),
                ("uot", 1, 0.1, 92.0, 0.97, 78.0),
                ("uot", 0, 0.3, 10.0, 0.10, 99.0),
                ("uot", 1, 0.3, 10.0, 0.10, 99.0),
                ("got", 0, 0.1, 50.0, 0.80, 70.0),
            ]
        ]
    )
    table = PaperTable(
        {("uot", "Rec."): 98.31, ("uot", "Acc."): 77.21},
        cols=None,
        col_metrics={"Rec.": "selection/recall", "Acc.": "test/acc"},
        scale={"selection/recall": 100.0},
    )
    long = paper_comparison(runs, table).set_index(["row", "col"])
    assert long.loc[("uot", "Rec."), "mean"] == pytest.approx(96.0)  # 100 · (0.95 + 0.97) / 2
    assert long.loc[("uot", "Rec."), "delta"] == pytest.approx(96.0 - 98.31)
    assert long.loc[("uot", "Acc."), "mean"] == pytest.approx(77.5)  # test/acc unscaled
    assert long.loc[("got", "Rec."), "mean"] == pytest.approx(80.0) and long.loc[("got", "Rec."), "n"] == 1
    with pytest.raises(ValueError, match="col_metrics"):
        PaperTable({}, cols=None)


def test_paper_table_without_validation_metric_and_a_baseline_per_row() -> None:
    from ftsweep.tables import PaperTable, paper_comparison

    runs = pd.DataFrame(
        [
            {"pre": p, "trg": t, "dataset": "c10", "seed": s, "epochs": 300, "cluster/acc": v}
            for p, t, vals in [
                ("IN", "-", [46.0, 45.0, 47.0]),
                ("IN", "BYOL", [48.0, 48.5, 50.0]),
                ("none", "-", [10.0, 11.0, 12.0]),
            ]  # fmt: skip
            for s, v in enumerate(vals)
        ]
    )
    table = PaperTable(
        {("IN / BYOL", "c10"): 48.02},
        rows=lambda r: f"{r['pre']} / {r['trg']}",
        metric="cluster/acc",
        select_by=None,
        baseline=lambda row: row.replace("BYOL", "-") if "BYOL" in row else None,
    )
    long = paper_comparison(runs, table).set_index("row")
    assert long.loc["IN / BYOL", "mean"] == pytest.approx(48.833333333)  # (48 + 48.5 + 50) / 3
    # tested against its own baseline row, paired on seeds: diffs 2, 3.5, 3
    from scipy import stats as sps

    ref = sps.ttest_rel([48.0, 48.5, 50.0], [46.0, 45.0, 47.0])
    assert long.loc["IN / BYOL", "diff_vs_baseline"] == pytest.approx(17.0 / 6)
    assert long.loc["IN / BYOL", "p"] == pytest.approx(ref.pvalue, rel=1e-10)
    assert np.isnan(long.loc["IN / -", "p"]) and np.isnan(long.loc["none / -", "p"])  # no baseline
    # two configurations in one cell and nothing to select on: refuse rather than pool
    two = pd.concat([runs, runs.iloc[:1].assign(epochs=100)], ignore_index=True)
    with pytest.raises(ValueError, match="2 configurations"):
        paper_comparison(two, table)


def test_summarize_without_selection_needs_one_configuration_a_cell() -> None:
    """Stage-1 runs have no validation split: ``select_by=None`` selects nothing, pools a cell's
    seeds, and refuses a cell of two configurations rather than pool them."""
    runs = pd.DataFrame(
        {
            "method": ["target_pretrain"] * 3,
            "dataset": ["cifar10", "cifar10", "svhn"],
            "seed": [0, 1, 0],
            "epochs": [300, 300, 300],
            "cluster/test_acc": [40.0, 44.0, 20.0],
        }
    )
    mean, std, n = summarize(runs, "method", "dataset", "cluster/test_acc", select_by=None)
    assert mean.loc["target_pretrain"].tolist() == [42.0, 20.0]
    assert std.loc["target_pretrain", "cifar10"] == pytest.approx(np.std([40.0, 44.0], ddof=1))
    assert n.loc["target_pretrain"].tolist() == [2, 1]
    two = pd.concat([runs, runs.assign(epochs=100)], ignore_index=True)
    with pytest.raises(ValueError, match="holds 2 configurations and the table has no select_by"):
        summarize(two, "method", "dataset", "cluster/test_acc", select_by=None)
    with pytest.raises(KeyError, match="no column 'best/val/acc'"):
        summarize(runs, "method", "dataset", "cluster/test_acc")


def _store(uri: str, experiment: str, runs: list[dict]) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.create_experiment(experiment)
    for r in runs:
        d = r.get("dataset", "digits")
        tags = {"method": "ce", "label": "ce", "dataset": d, "job": f"ce-{d}", "sweep": r.get("sweep", "s")}
        run = client.create_run(exp, tags={**tags, "seed": str(r["seed"]), "sweep_version": str(r["v"])})
        for k in ("pretrained", "device", "data_root", *r.get("params", {})):
            client.log_param(run.info.run_id, k, r.get(k, r.get("params", {}).get(k)))
        client.log_metric(run.info.run_id, "best/val/acc", r["val"])
        client.log_metric(run.info.run_id, "test/acc", r["test"])
        for k, v in r.get("metrics", {}).items():
            client.log_metric(run.info.run_id, k, v)
        client.set_terminated(run.info.run_id, "FINISHED")


def test_latest_is_each_spec_s_newest_version(tmp_path) -> None:
    # target pretraining's Table 2 halves share one experiment and number their versions apart:
    # "latest" kept the higher number only, so CIFAR-100 at v2 hid SVHN at v1
    from ftsweep.runs import load_runs

    uri = f"sqlite:///{tmp_path}/m.db"
    row = {"device": "cpu", "data_root": "/data", "pretrained": "/ck/a.pt", "seed": 0}
    _store(uri, "shared", [
        {**row, "v": 1, "sweep": "c100", "dataset": "cifar100", "val": 1.0, "test": 60.0},
        {**row, "v": 2, "sweep": "c100", "dataset": "cifar100", "val": 1.0, "test": 62.0},
        {**row, "v": 1, "sweep": "svhn", "dataset": "svhn", "val": 1.0, "test": 90.0},
    ])  # fmt: skip
    runs = load_runs("shared", uri)
    assert sorted(zip(runs["dataset"], runs["sweep_version"], runs["test/acc"], strict=True)) == [
        ("cifar100", 2, 62.0),
        ("svhn", 1, 90.0),
    ]
    assert sorted(load_runs("shared", uri, version=1)["test/acc"]) == [60.0, 90.0]


def test_a_metric_named_as_a_param_does_not_shadow_it(tmp_path) -> None:
    # stage 1 logged its final lr (0 on a cosine schedule) as "lr": two lr values were one trial
    from ftsweep.runs import load_runs

    uri = f"sqlite:///{tmp_path}/m.db"
    row = {"v": 1, "device": "cpu", "data_root": "/data", "pretrained": "/ck/a.pt", "seed": 0}
    _store(uri, "lr", [
        {**row, "params": {"lr": 0.3}, "metrics": {"lr": 0.0}, "val": 1.0, "test": 50.0},
        {**row, "params": {"lr": 0.1}, "metrics": {"lr": 0.0}, "val": 1.0, "test": 40.0},
    ])  # fmt: skip
    runs = load_runs("lr", uri)
    assert sorted(runs["lr"]) == [0.1, 0.3] and len(runs) == 2


def test_a_checkpoint_is_a_configuration_and_a_place_is_not(tmp_path) -> None:
    """Two checkpoints searched in one version are two configurations (before: pooled, each seed
    counted twice); the same trial rerun on another device or data folder in a later version is
    one trial under ``version="all"`` (before: two, pooled into one configuration)."""
    from ftsweep.runs import load_runs

    uri = f"sqlite:///{tmp_path}/m.db"
    row = {"v": 1, "device": "cpu", "data_root": "/data"}
    _store(uri, "ckpt", [
        {**row, "seed": 0, "pretrained": "/ck/a.pt", "val": 70.0, "test": 70.0},
        {**row, "seed": 1, "pretrained": "/ck/a.pt", "val": 71.0, "test": 71.0},
        {**row, "seed": 0, "pretrained": "/ck/b.pt", "val": 80.0, "test": 80.0},
        {**row, "seed": 1, "pretrained": "/ck/b.pt", "val": 81.0, "test": 81.0},
    ])  # fmt: skip
    mean, _, n = summarize(load_runs("ckpt", uri), "method", "dataset")
    assert mean.loc["ce", "digits"] == 80.5 and n.loc["ce", "digits"] == 2  # b.pt selected
    _store(uri, "moved", [
        {**row, "seed": 0, "pretrained": "/ck/a.pt", "val": 70.0, "test": 70.0},
        {**row, "seed": 1, "pretrained": "/ck/a.pt", "val": 71.0, "test": 71.0},
        {"v": 2, "device": "cuda", "data_root": "/scratch/d", "seed": 0, "pretrained": "ckpts/a.pt",
         "val": 72.0, "test": 72.0},
    ])  # fmt: skip
    runs = load_runs("moved", uri, version="all")
    assert len(runs) == 2  # seed 0's rerun replaces its first run
    mean, _, n = summarize(runs, "method", "dataset")
    assert mean.loc["ce", "digits"] == 71.5 and n.loc["ce", "digits"] == 2


def test_paper_table_median_is_the_median_run() -> None:
    from ftsweep.tables import PaperTable, paper_comparison

    runs = pd.DataFrame(
        {
            "method": "m",
            "dataset": "d",
            "seed": [0, 1, 2, 3],
            "best/val/acc": 1.0,
            "test/acc": [70.0, 71.0, 72.0, 99.0],
        }
    )
    mean = paper_comparison(runs, PaperTable({("m", "d"): 70.0})).iloc[0]
    med = paper_comparison(runs, PaperTable({("m", "d"): 70.0}, statistic="median")).iloc[0]
    assert mean["ours"] == mean["mean"] == 78.0 and mean["delta"] == 8.0
    assert med["ours"] == 71.0 and med["mean"] == 78.0 and med["delta"] == 1.0  # the lower middle run
    with pytest.raises(ValueError, match="statistic 'mode' — must be one of mean, median"):
        PaperTable({}, statistic="mode")
