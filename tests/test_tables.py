"""Table renderer on a hand-written DataFrame: validation-based selection, mean ± std, bold, Δ."""

from __future__ import annotations

import pandas as pd
import pytest

from ftsweep.tables import format_table, summarize, write_table

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


def test_markdown_bold_and_delta(runs: pd.DataFrame) -> None:
    mean, std, _ = summarize(runs)
    text = format_table(mean, std, baseline="ce")
    lines = text.splitlines()
    assert lines[0] == "|  | a | b |"
    assert lines[2] == "| ce | 61.00 ± 1.41 | 20.00 ± 0.00 |"
    assert lines[3] == "| scl | **72.00 ± 2.83** | **25.00 ± 0.00** |"
    assert lines[4] == "| Δ vs ce | +11.00 | +5.00 |"


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
