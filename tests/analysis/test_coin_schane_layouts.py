"""COIN / SCHaNe paper layouts on hand-written runs DataFrames with hand-computed cells."""

from __future__ import annotations

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from analysis import coin, schane


def _runs(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows)


def test_coin_table1_selects_alpha_on_validation_and_adds_gain_row():
    rows = []
    for seed, (ce, scl, c_high) in enumerate([(90, 91, 93), (92, 93, 95)]):
        rows += [
            {
                "method": "ce",
                "dataset": "cifar10",
                "seed": seed,
                "alpha": None,
                "best/val/acc": 50,
                "test/acc": ce,
            },
            {
                "method": "scl",
                "dataset": "cifar10",
                "seed": seed,
                "alpha": None,
                "best/val/acc": 50,
                "test/acc": scl,
            },
            # α = 0.1 has the higher test accuracy but the lower validation accuracy: not selected
            {
                "method": "coin",
                "dataset": "cifar10",
                "seed": seed,
                "alpha": 0.1,
                "best/val/acc": 40,
                "test/acc": 99,
            },
            {
                "method": "coin",
                "dataset": "cifar10",
                "seed": seed,
                "alpha": 0.7,
                "best/val/acc": 60,
                "test/acc": c_high,
            },
        ]
    rows.append({"method": "ce", "dataset": "dtd", "seed": 0, "alpha": None, "best/val/acc": 1,
                 "test/acc": 70.0})  # fmt: skip
    t = coin.table1(_runs(rows))
    assert list(t.index) == ["CE-Tuning", "SCL", "COIN", "COIN − SCL"]
    assert list(t.columns) == ["CIFAR-10", "DTD", "Avg."]
    std = np.std([90, 92], ddof=1)
    assert t.loc["CE-Tuning", "CIFAR-10"] == f"91.00 ± {std:.2f}"
    assert t.loc["COIN", "CIFAR-10"] == f"94.00 ± {std:.2f}"
    assert t.loc["COIN − SCL", "CIFAR-10"] == "+2.00"
    assert t.loc["CE-Tuning", "DTD"] == "70.00 ± 0.00"
    assert t.loc["CE-Tuning", "Avg."] == "80.50"
    assert t.loc["COIN", "DTD"] == "–" and t.loc["COIN", "Avg."] == "–"


def test_coin_table4_alpha_columns_and_average():
    rows = [
        {"method": "coin", "dataset": "cifar10", "seed": s, "alpha": a, "temperature": 0.3,
         "best/val/acc": 0.0, "test/acc": acc}
        for a, accs in [(0.7, (97.0, 98.0)), (0.1, (96.0, 96.0))]
        for s, acc in enumerate(accs)
    ]  # fmt: skip
    t = coin.table4(_runs(rows))
    assert list(t.columns) == ["0.1", "0.7", "Avg."]
    assert list(t.index) == ["CIFAR-10"]
    assert t.loc["CIFAR-10", "0.1"] == "96.00 ± 0.00"
    assert t.loc["CIFAR-10", "0.7"] == f"97.50 ± {np.std([97, 98], ddof=1):.2f}"
    assert t.loc["CIFAR-10", "Avg."] == f"{(96 + 97.5) / 2:.2f}"


def test_coin_table3_temperature_columns():
    rows = [
        {"method": "coin", "dataset": "cifar10", "seed": 0, "alpha": 0.6, "temperature": t,
         "best/val/acc": 0.0, "test/acc": acc}
        for t, acc in [(0.07, 97.6), (0.3, 97.85)]
    ]  # fmt: skip
    t = coin.table3(_runs(rows))
    assert list(t.columns) == ["0.07", "0.3", "Avg."]
    assert t.loc["CIFAR-10", "0.3"] == "97.85 ± 0.00"


def test_coin_table2_only_runs_with_s_dbw():
    rows = [
        {"method": "coin", "dataset": "cifar10", "seed": 0, "best/val/acc": 1.0, "val/s_dbw": 0.28},
        {"method": "coin", "dataset": "cifar10", "seed": 1, "best/val/acc": 1.0, "val/s_dbw": 0.30},
        {"method": "ce", "dataset": "cifar10", "seed": 0, "best/val/acc": 1.0, "val/s_dbw": np.nan},
    ]
    t = coin.table2(_runs(rows))
    assert list(t.index) == ["COIN"]
    assert t.loc["COIN", "CIFAR-10 S_Dbw"] == f"0.29 ± {np.std([0.28, 0.30], ddof=1):.2f}"


def test_coin_table2_every_method_with_s_dbw_and_time_cost():
    rows = [
        {"method": m, "dataset": "cifar10", "seed": s, "best/val/acc": 1.0, "val/s_dbw": v,
         "time/epoch_s": t, "epochs": 100}
        for m, s, v, t in [("ce", 0, 0.5, 36.0), ("ce", 1, 0.7, 72.0), ("scl_star", 0, 0.4, 36.0),
                           ("core_tuning", 0, 0.45, 90.0), ("coin", 0, 0.3, 36.0)]
    ]  # fmt: skip
    t = coin.table2(_runs(rows))
    assert list(t.index) == ["CE-Tuning", "SCL*", "Core-Tuning", "COIN"]
    assert list(t.columns) == ["CIFAR-10 S_Dbw", "CIFAR-10 Time Cost (h)", "Avg. S_Dbw", "Avg. Time Cost (h)"]
    assert t.loc["CE-Tuning", "CIFAR-10 S_Dbw"] == f"0.60 ± {np.std([0.5, 0.7], ddof=1):.2f}"
    # 36 s/epoch × 100 epochs = 1 h, 72 s → 2 h: mean 1.5 h
    assert t.loc["CE-Tuning", "CIFAR-10 Time Cost (h)"] == f"1.50 ± {np.std([1.0, 2.0], ddof=1):.2f}"
    assert t.loc["Core-Tuning", "CIFAR-10 Time Cost (h)"].startswith("2.50")
    # the paper's "SCL [21]" S_Dbw are COIN's own runs of it, its SCL* (it had no run before)
    from ftsweep.tables import paper_comparison

    long = paper_comparison(_runs(rows), coin.table2.paper)
    paper = {(r.row, r.col): r.paper for r in long.itertuples()}
    assert paper[("scl_star", "cifar10 S_Dbw")] == 0.47 and paper[("core_tuning", "cifar10 S_Dbw")] == 0.38


def test_schane_table1_median_run_with_its_ci():
    rows = []
    for method, accs in [("ce", [80.0, 85.0, 90.0]), ("schane", [88.0, 86.0, 87.0])]:
        for seed, acc in enumerate(accs):
            rows.append(
                {"method": method, "dataset": "cifar100", "seed": seed, "best/val/acc": 1.0,
                 "fewshot/5way1shot": acc, "fewshot/5way1shot_ci95": seed + 0.5,
                 "fewshot/5way5shot": acc + 5, "fewshot/5way5shot_ci95": 0.1}
            )  # fmt: skip
    t = schane.table1(_runs(rows))
    assert list(t.index) == ["CE", "SCHaNe"]
    assert list(t.columns) == ["CIFAR-100 1-shot", "CIFAR-100 5-shot"]
    assert t.loc["CE", "CIFAR-100 1-shot"] == "85.00 ± 1.50"  # seed 1 is the median
    assert t.loc["SCHaNe", "CIFAR-100 1-shot"] == "87.00 ± 2.50"  # seed 2 is the median
    assert t.loc["SCHaNe", "CIFAR-100 5-shot"] == "92.00 ± 0.10"


def test_schane_table2_and_table4():
    rows = [
        {"method": m, "dataset": d, "seed": s, "best/val/acc": 1.0, "test/acc": acc, "test/isotropy": iso}
        for m, d, s, acc, iso in [
            ("schane", "cub200", 0, 98.0, 0.9),
            ("ce", "cub200", 0, 97.0, 0.3),
            ("ce", "cifar100", 0, 92.0, 0.25),
        ]
    ]
    t = schane.table2(_runs(rows))
    assert list(t.index) == ["CE", "SCHaNe"]
    assert list(t.columns) == ["CIFAR-100", "CUB-200-2011"]
    assert t.loc["SCHaNe", "CUB-200-2011"] == "98.00 ± 0.00"
    assert t.loc["SCHaNe", "CIFAR-100"] == "–"
    iso = schane.table4(_runs(rows))
    assert iso.loc["CE", "CUB-200-2011"] == "0.3000 ± 0.0000"


def test_schane_table3_rows_and_marks():
    rows = [
        {"method": "schane", "dataset": "cifar100", "seed": 0, "objective": o, "best/val/acc": 1.0,
         "fewshot/5way1shot": acc}
        for o, acc in [("schane", 87.0), ("ce", 83.68), ("ce_supcon", 85.32), ("ce_simclr", 73.99)]
    ]  # fmt: skip
    t = schane.table3(_runs(rows))
    assert list(t.index) == ["CE", "CE + SimCLR", "CE + SupCon", "SCHaNe"]
    assert list(t.columns) == ["Label", "HNS", "CIFAR-100"]
    assert t.loc["SCHaNe", "HNS"] == "✓" and t.loc["CE + SimCLR", "Label"] == ""
    assert t.loc["CE + SupCon", "CIFAR-100"] == "85.32 ± 0.00"


def test_schane_fig2_table_and_plot(tmp_path):
    rows = [
        {"method": "schane", "dataset": "cifar100", "seed": s, "lambda_": lam, "temperature": 0.5,
         "best/val/acc": 1.0, "fewshot/5way1shot": 80 + 10 * lam + s}
        for lam in (0.9, 0.0, 1.0)
        for s in (0, 1)
    ]  # fmt: skip
    t = schane.fig2(_runs(rows))
    assert list(t.index) == ["0", "0.9", "1"]
    assert t.loc["0.9", "CIFAR-100"] == f"89.50 ± {np.std([89, 90], ddof=1):.2f}"
    path = schane.plot_fig2(_runs(rows), tmp_path / "fig2.png")
    assert path.is_file() and matplotlib.image.imread(path).ndim == 3


def test_missing_metric_raises():
    df = _runs([{"method": "ce", "dataset": "cifar10", "seed": 0, "best/val/acc": 1.0}])
    with pytest.raises(KeyError):
        coin.table1(df)
    with pytest.raises(KeyError, match="s_dbw"):
        coin.table2(df)


def test_schane_dataset_columns_are_registered_datasets():
    """Every column of SCHaNe's Tables 1-2 names a dataset of the registry (the few-shot
    benchmarks and iNat2017 / Places365 included), in the paper's order."""
    from ftsweep.data import DATASETS

    assert set(schane.DATASET_NAMES) <= set(DATASETS)
    assert list(schane.DATASET_NAMES)[:4] == ["cifar_fs", "fc100", "mini_imagenet", "tiered_imagenet"]
