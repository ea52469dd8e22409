"""UOT paper layouts on a hand-written runs DataFrame (values chosen so each cell is hand-checked)."""

from __future__ import annotations

import pandas as pd

from analysis import uot_selection as U


def _run(method: str, dataset: str, seed: int, val: float, acc: float, **kw: object) -> dict:
    row = {
        "method": method,
        "dataset": dataset,
        "seed": seed,
        "status": "FINISHED",
        "selection": {"Fine-Tune": "none", "GOT-l2": "greedy_ot"}.get(method, "uot"),
        "lr": 0.01,
        "lambda_": 1.0,
        "k": 100,
        "subsample": None,
        "eps_c": 0.01,
        "best/val/acc": val,
        "test/acc": acc,
        "test/mpa": acc - 10.0,  # distinguishable from top-1
        "selection/recall": float("nan"),
        "time_total_s": 10.0 + seed,  # a Ray result column: differs per seed, not a config field
    }
    row.update(kw)
    return row


def test_table1_selects_on_validation_and_uses_mpa_where_the_paper_does() -> None:
    rows = [
        # Fine-Tune: one config
        _run("Fine-Tune", "cub200", 0, 60, 70.0),
        _run("Fine-Tune", "cub200", 1, 60, 72.0),
        _run("Fine-Tune", "pets", 0, 80, 90.0),
        _run("Fine-Tune", "pets", 1, 80, 92.0),
        # UOT on CUB: lr 0.01 (val 61) beats lr 0.1 (val 50) although its test acc is lower
        _run("UOT", "cub200", 0, 61, 74.0),
        _run("UOT", "cub200", 1, 61, 76.0),
        _run("UOT", "cub200", 0, 50, 99.0, lr=0.1),
        _run("UOT", "cub200", 1, 50, 99.0, lr=0.1),
        _run("UOT", "pets", 0, 81, 95.0),
        _run("UOT", "pets", 1, 81, 97.0),
    ]
    out = U.table1(pd.DataFrame(rows))
    assert list(out.index) == ["Fine-Tune", "UOT"]
    assert list(out.columns) == ["CUB", "Pets", "Avg."]
    # std over seeds with ddof=1: |a-b|/sqrt(2) = 1.41 for a 2-point gap
    assert out.loc["Fine-Tune", "CUB"] == "71.00 ± 1.41"
    assert out.loc["UOT", "CUB"] == "75.00 ± 1.41"
    assert out.loc["Fine-Tune", "Pets"] == "81.00 ± 1.41"  # test/mpa = acc - 10
    assert out.loc["UOT", "Pets"] == "86.00 ± 1.41"
    assert out.loc["Fine-Tune", "Avg."] == "76.00"
    assert out.loc["UOT", "Avg."] == "80.50"


def test_table4_recall_in_percent_and_accuracy() -> None:
    rows = [
        _run("GOT-l2", "cub200", 0, 60, 76.0, **{"selection/recall": 0.8}),
        _run("GOT-l2", "cub200", 1, 60, 78.0, **{"selection/recall": 0.9}),
        _run("UOT-cos", "cub200", 0, 62, 77.0, **{"selection/recall": 1.0}),
        _run("UOT-cos", "cub200", 1, 62, 77.0, **{"selection/recall": 1.0}),
    ]
    out = U.table4(pd.DataFrame(rows))
    assert list(out.columns) == ["Rec.", "Acc."]
    assert out.loc["GOT-l2", "Rec."] == "85.00 ± 7.07"
    assert out.loc["GOT-l2", "Acc."] == "77.00 ± 1.41"
    assert out.loc["UOT-cos", "Rec."] == "100.00 ± 0.00"


def test_fig3a_gap_to_fine_tune() -> None:
    rows = []
    for s, (ft, uot) in {0.2: (50.0, 56.0), 1.0: (75.0, 76.0)}.items():
        rows += [
            _run("Fine-Tune", "cub200", 0, 1, ft, subsample=s),
            _run("UOT", "cub200", 0, 1, uot, subsample=s),
        ]
    out = U.fig3a(pd.DataFrame(rows))
    assert list(out.index) == ["CUB 20%", "CUB 100%"]
    assert out.loc["CUB 20%", "UOT − Fine-Tune"] == "+6.00"
    assert out.loc["CUB 100%", "UOT − Fine-Tune"] == "+1.00"
    assert out.loc["CUB 20%", "Fine-Tune"] == "50.00 ± 0.00"


def test_fig3b_rows_by_k_columns_by_selection() -> None:
    rows = [
        _run("UOT k=50", "cub200", 0, 1, 77.0, k=50, selection="uot"),
        _run("UOT k=100", "cub200", 0, 1, 78.0, k=100, selection="uot"),
        _run("Random k=50", "cub200", 0, 1, 75.0, k=50, selection="random"),
        _run("Random k=100", "cub200", 0, 1, 74.0, k=100, selection="random"),
    ]
    out = U.fig3b(pd.DataFrame(rows))
    assert list(out.columns) == ["Random", "UOT"]
    assert out.loc["CUB k=100", "UOT"] == "78.00 ± 0.00"
    assert out.loc["CUB k=50", "Random"] == "75.00 ± 0.00"


def test_fig3a_reads_mpa_on_caltech_and_top1_on_cub() -> None:
    rows = []
    for seed, (ft, uot) in enumerate([(80.0, 83.0), (82.0, 85.0)]):
        rows += [
            _run("Fine-Tune", "caltech101", seed, 1, ft, subsample=0.2),
            _run("UOT", "caltech101", seed, 1, uot, subsample=0.2),
            _run("Fine-Tune", "cub200", seed, 1, ft - 20, subsample=0.2),
            _run("UOT", "cub200", seed, 1, uot - 20, subsample=0.2),
        ]
    out = U.fig3a(pd.DataFrame(rows))
    assert out.loc["Caltech 20%", "Fine-Tune"] == "71.00 ± 1.41"  # test/mpa = acc - 10
    assert out.loc["Caltech 20%", "UOT"] == "74.00 ± 1.41"
    assert out.loc["Caltech 20%", "UOT − Fine-Tune"] == "+3.00"
    assert out.loc["CUB 20%", "Fine-Tune"] == "61.00 ± 1.41"  # top-1
    assert out.loc["CUB 20%", "UOT"] == "64.00 ± 1.41"


def test_fig3b_reads_mpa_on_caltech_and_selects_the_head_lr_ratio_on_validation() -> None:
    rows = [
        # Caltech, UOT k=50: head_lr_mult 10 wins on validation (val 70 > 60) although its test is lower
        _run("UOT k=50", "caltech101", 0, 70, 86.0, k=50, selection="uot", head_lr_mult=10.0),
        _run("UOT k=50", "caltech101", 0, 60, 99.0, k=50, selection="uot", head_lr_mult=1.0),
        _run("Random k=50", "caltech101", 0, 50, 84.0, k=50, selection="random", head_lr_mult=0.1),
        _run("UOT k=50", "cub200", 0, 1, 77.0, k=50, selection="uot", head_lr_mult=1.0),
    ]
    out = U.fig3b(pd.DataFrame(rows))
    assert out.loc["Caltech k=50", "UOT"] == "76.00 ± 0.00"  # MPA of the head_lr_mult = 10 run
    assert out.loc["Caltech k=50", "Random"] == "74.00 ± 0.00"
    assert out.loc["CUB k=50", "UOT"] == "77.00 ± 0.00"  # top-1


def test_fig4a_recall_per_eps_c() -> None:
    rows = [
        _run("uot_selection", "cub200", 0, 1, 1.0, eps_c=0.1, **{"selection/recall": 0.5}),
        _run("uot_selection", "cub200", 0, 1, 1.0, eps_c=0.01, **{"selection/recall": 0.75}),
    ]
    out = U.fig4a(pd.DataFrame(rows))
    assert list(out.index) == ["0.01", "0.1"]
    assert out.loc["0.01", "CUB"] == "75.0 ± 0.0"
    assert out.loc["0.1", "CUB"] == "50.0 ± 0.0"
    # the MoCo-v2 curve run into the same experiment: two curves, not one pick per ε_c
    moco = [
        _run(
            "uot_selection", "cub200", 0, 1, 1.0, eps_c=e, pretrained="/w/moco.pth", **{"selection/recall": r}
        )
        for e, r in ((0.1, 0.25), (0.01, 0.5))
    ]
    sup = [{**r, "pretrained": "/w/sup.pth"} for r in rows]
    both = U.fig4a(pd.DataFrame(sup + moco))
    assert list(both.index) == ["moco.pth 0.01", "moco.pth 0.1", "sup.pth 0.01", "sup.pth 0.1"]
    assert (
        both.loc["moco.pth 0.01", "CUB"] == "50.0 ± 0.0" and both.loc["sup.pth 0.01", "CUB"] == "75.0 ± 0.0"
    )


def test_digits_layout() -> None:
    rows = [
        _run("Fine-Tune", "digits_target", 0, 1, 80.0),
        _run("Fine-Tune", "digits_target", 1, 1, 84.0),
        _run("UOT", "digits_target", 0, 1, 90.0, **{"selection/recall": 1.0, "selection/precision": 1.0}),
        _run("UOT", "digits_target", 1, 1, 92.0, **{"selection/recall": 0.8, "selection/precision": 0.8}),
    ]
    out = U.digits(pd.DataFrame(rows))
    assert out.loc["Fine-Tune", "Test acc."] == "82.00 ± 2.83"
    assert out.loc["Fine-Tune", "Recall"] == "–"
    assert out.loc["UOT", "Recall"] == "90.0 ± 14.1"
    assert out.loc["UOT", "Seeds"] == "2"
