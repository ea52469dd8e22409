"""The paper numbers of COIN Table 2, Core-tuning Table 6 and SCHaNe Tables 1 and 4, read back from the
paper texts (``../shared/papers/*.md``), and one ``--paper`` rendering each on hand-made runs."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import coin, core_tuning, schane
from ftsweep.tables import paper_comparison, paper_frame

PAPERS = Path(__file__).resolve().parents[3] / "shared" / "papers"


def _lines(paper: str, start: str, end: str) -> dict[str, list[str]]:
    """Tab-separated lines of ``paper`` between ``start`` and ``end``, keyed by their first cell
    (a later line with the same first cell overrides: pass a range holding one table)."""
    text = (PAPERS / paper).read_text()
    text = text[text.index(start) : text.index(end)]
    return {c[0]: c[1:] for c in (line.split("\t") for line in text.splitlines() if "\t" in line)}


def _num(cell: str) -> float:
    """The first number of a printed cell (``<b>0.47</b>``, ``83.68±0.80``)."""
    return float(re.search(r"\d+(\.\d+)?", cell).group())


# ---- numbers read back from the papers --------------------------------------------------------
def test_coin_table2_sdbw_and_time_are_the_papers() -> None:
    text = (PAPERS / "coin.md").read_text()
    t2 = text[text.index("Table 2:") : text.index("Table 2:") + 3000]
    first, second = t2.split("\nMethod\t")[1:3]
    labels = {
        "ce": "CE-Tuning",
        "scl_star": "SCL [21]",
        "core_tuning": "Core-Tuning [13]",
        "coin": "COIN (ours)",
    }
    blocks = [(first, ["imagenet20", "cifar10", "cifar100", "caltech101", "dtd"]),
              (second, ["aircraft", "cars", "pets", "flowers102"])]  # fmt: skip
    checked = 0
    for block, datasets in blocks:
        lines = {c[0]: c[1:] for c in (ln.split("\t") for ln in block.splitlines()) if len(c) > 2}
        for row, label in labels.items():
            cells = lines[label]
            for i, d in enumerate(datasets):
                assert coin.PAPER_TABLE2[(row, d)] == _num(cells[2 * i]), (row, d)
                assert coin.PAPER_TABLE2_TIME[(row, d)] == _num(cells[2 * i + 1]), (row, d)
                checked += 1
    assert checked == 36 == len(coin.PAPER_TABLE2)
    assert (
        coin.PAPER_TABLE2[("coin", "cifar10")] == 0.28
        and coin.PAPER_TABLE2_TIME[("core_tuning", "cifar10")] == 14.93
    )
    # attached: both halves, one "<dataset> S_Dbw" and one "<dataset> Time Cost (h)" column each
    t = coin.table2.paper
    for block, datasets in blocks:
        lines = {c[0]: c[1:] for c in (ln.split("\t") for ln in block.splitlines()) if len(c) > 2}
        for row, label in labels.items():
            for i, d in enumerate(datasets):
                assert t.values[(row, f"{d} S_Dbw")] == _num(lines[label][2 * i]), (row, d)
                assert t.values[(row, f"{d} Time Cost (h)")] == _num(lines[label][2 * i + 1]), (row, d)
    assert len(t.values) == 72 and t.baseline == "ce" and t.prepare is not None
    assert t.col_names["cifar10 Time Cost (h)"] == "CIFAR-10 Time Cost (h)"


def test_core_tuning_table6_thresholds_are_the_papers() -> None:
    lines = _lines("core_tuning.md", "Table 6.", "Table 7")
    thresholds = [float(x) for x in lines["Thresholds"]]
    neg = [_num(c) for c in lines["Negative pair threshold λ_n"]]
    pos = [_num(c) for c in lines["Positive pair threshold λ_p"]]
    for t, n, p in zip(thresholds, neg, pos, strict=True):
        assert core_tuning.PAPER_TABLE6[(0.8, t)] == n  # λ_n row: λ_p held at 0.8
        assert core_tuning.PAPER_TABLE6[(t, 0.8)] == p  # λ_p row: λ_n held at 0.8
    assert len(core_tuning.PAPER_TABLE6) == 9  # the shared (0.8, 0.8) cell once
    t = core_tuning.table6.paper
    assert t.values is core_tuning.PAPER_TABLE6 and (t.rows, t.cols) == ("lambda_p", "lambda_n")


def test_schane_table1_fewshot_are_the_papers() -> None:
    text = (PAPERS / "schane.md").read_text()
    text = text[: text.index("Table 1:")]  # a table's lines precede its caption
    rows = {c[1]: c[2:] for c in (ln.split("\t") for ln in text.splitlines()) if c[0] == "BEiT-3"}
    datasets = ["cifar_fs", "fc100", "mini_imagenet", "tiered_imagenet"]
    for method, label in [("ce", "CE"), ("schane", "SCHaNe")]:
        cells = rows[label]
        for i, d in enumerate(datasets):
            assert schane.PAPER_TABLE1[(method, d)] == _num(cells[2 * i]), (method, d)
            assert schane.PAPER_TABLE1_5SHOT[(method, d)] == _num(cells[2 * i + 1]), (method, d)
    assert schane.PAPER_TABLE1[("schane", "fc100")] == 69.87
    # attached: both halves, one "<dataset> <K>-shot" column each, as the layout's columns
    t = schane.table1.paper
    for method, label in [("ce", "CE"), ("schane", "SCHaNe")]:
        for i, d in enumerate(datasets):
            assert t.values[(method, f"{d} 1-shot")] == _num(rows[label][2 * i]), (method, d)
            assert t.values[(method, f"{d} 5-shot")] == _num(rows[label][2 * i + 1]), (method, d)
    assert len(t.values) == 16 and t.baseline == "ce"
    assert t.col_names["fc100 5-shot"] == "FC100 5-shot"
    # the paper's rows are BEiT-3, ours run MAE ViT-B/16: the labels say so
    assert all("BEiT-3" in n and "MAE ViT-B/16" in n for n in t.row_names.values())


def test_schane_table4_isotropy_is_the_papers() -> None:
    lines = _lines("schane.md", "Model\tiNaturalist2017", "Table 4:")
    assert lines["Model"] == ["iNaturalist2017", "Imagenet-1k", "Places365"]
    datasets = ["inat2017", "imagenet", "places365"]
    for method, label in [("ce", "BEiT3-CE"), ("schane", "BEiT3-SCHaNe")]:
        for d, cell in zip(datasets, lines[label], strict=True):
            assert schane.PAPER_TABLE4[(method, d)] == _num(cell), (method, d)
    assert schane.PAPER_TABLE4[("schane", "places365")] == 0.9338 and len(schane.PAPER_TABLE4) == 6
    t = schane.table4.paper
    assert t.values is schane.PAPER_TABLE4 and t.metric == "test/isotropy" and t.baseline == "ce"
    assert t.digits == 4 and all("BEiT-3" in n for n in t.row_names.values())


# ---- ours | paper | Δ on tiny hand-made runs ---------------------------------------------------
def _seed_runs(dataset: str, metric: str, by_method: dict[str, list[float]], val: float) -> pd.DataFrame:
    """One run per (method, seed): ``metric`` = ``by_method[method][seed]``, one configuration
    (``best/val/acc`` = ``val``)."""
    return pd.DataFrame(
        [
            {"method": m, "dataset": dataset, "seed": s, "best/val/acc": val, metric: v}
            for m, vals in by_method.items()
            for s, v in enumerate(vals)
        ]
    )


def test_coin_table2_paper_frame() -> None:
    runs = _seed_runs("cifar10", "val/s_dbw", {"ce": [0.50, 0.54], "coin": [0.30, 0.32]}, val=90.0)
    md = paper_frame(runs, coin.table2, "md")
    assert md.loc["COIN", "CIFAR-10 S_Dbw"].startswith("0.31 ± 0.01 (n=2)")
    assert md.loc["COIN", "CIFAR-10 S_Dbw"].endswith(" \\| 0.28 \\| +0.03")
    assert md.loc["CE-Tuning", "CIFAR-10 S_Dbw"] == "0.52 ± 0.03 (n=2) \\| 0.48 \\| +0.04"
    # paper cells without runs print "– | paper | –"
    assert md.loc["SCL [21]", "DTD S_Dbw"] == "– \\| 0.61 \\| –"


def test_core_tuning_table6_paper_frame() -> None:
    rows = []
    for s in (0, 1):
        rows += [
            {"method": "ct_lambda_n", "dataset": "imagenet20", "seed": s, "lambda_n": 0.0,
             "lambda_p": 0.8, "best/val/acc": 90.0, "test/acc": 91.0 + s},
            {"method": "ct_lambda_p", "dataset": "imagenet20", "seed": s, "lambda_n": 0.8,
             "lambda_p": 0.2, "best/val/acc": 90.0, "test/acc": 92.0},
        ]  # fmt: skip
    long = paper_comparison(pd.DataFrame(rows), core_tuning.table6.paper).set_index(["row", "col"])
    assert long.loc[(0.8, 0), "paper"] == 91.55 and long.loc[(0.8, 0), "mean"] == pytest.approx(91.5)
    assert long.loc[(0.2, 0.8), "delta"] == pytest.approx(92.0 - 92.68)
    md = paper_frame(pd.DataFrame(rows), core_tuning.table6, "md")
    assert md.loc["λ_p = 0.8 (row λ_n: λ_p held)", "λ_n = 0"] == "91.50 ± 0.71 (n=2) \\| 91.55 \\| -0.05"
    assert md.loc["λ_p = 0.2 (row λ_p: λ_n = 0.8)", "λ_n = 0.8"] == "92.00 ± 0.00 (n=2) \\| 92.68 \\| -0.68"
    assert md.loc["λ_p = 0.8 (row λ_n: λ_p held)", "λ_n = 0.8"] == "– \\| 92.59 \\| –"


def test_schane_table1_paper_frame() -> None:
    runs = _seed_runs(
        "cifar_fs", "fewshot/5way1shot", {"ce": [80.0, 82.0, 90.0], "schane": [85.0, 86.0, 87.0]}, val=80.0
    )
    md = paper_frame(runs, schane.table1, "md")
    ce = "BEiT-3 CE (paper) / MAE ViT-B/16 (ours)"
    # the paper's cell is the median of three runs: ours too (82, not the mean 84)
    sd = f"{np.std([80.0, 82.0, 90.0], ddof=1):.2f}"
    assert md.loc[ce, "CIFAR-FS 1-shot"] == f"82.00 ± {sd} (median of n=3) \\| 83.68 \\| -1.68"
    cell = md.loc["BEiT-3 SCHaNe (paper) / MAE ViT-B/16 (ours)", "CIFAR-FS 1-shot"]
    assert cell.startswith(f"86.00 ± {np.std([85.0, 86.0, 87.0], ddof=1):.2f} (median of n=3)")
    assert cell.endswith(" \\| 87.00 \\| -1.00")
    assert md.loc[ce, "FC100 1-shot"] == "– \\| 66.35 \\| –"


def _mark(after: list[float], before: list[float], comparisons: int) -> str:
    """The marker of a paired t-test of ``after`` against ``before``, Holm-adjusted as the
    smallest of ``comparisons`` p-values (the tests below make it the smallest)."""
    from scipy import stats as sps

    p = min(1.0, comparisons * sps.ttest_rel(after, before).pvalue)
    return "**" if p < 0.01 else "*" if p < 0.05 else ""


def test_coin_table2_paper_frame_time_cost() -> None:
    # hours = time_total_s / 3600: CE 2 h and 3 h, COIN 2.0 h and 2.1 h (seeds 0, 1)
    rows = [
        {"method": m, "dataset": "cifar10", "seed": s, "best/val/acc": 90.0, "val/s_dbw": v,
         "time_total_s": t, "time/epoch_s": 1.0, "epochs": 100}
        for m, cells in {"ce": [(0.50, 7200.0), (0.54, 10800.0)],
                         "coin": [(0.30, 7200.0), (0.32, 7560.0)]}.items()
        for s, (v, t) in enumerate(cells)
    ]  # fmt: skip
    md = paper_frame(pd.DataFrame(rows), coin.table2, "md")
    assert md.loc["CE-Tuning", "CIFAR-10 Time Cost (h)"] == "2.50 ± 0.71 (n=2) \\| 6.75 \\| -4.25"
    # COIN vs CE over seeds: hours diffs 0.0, -0.9 (p ≈ 0.5) and S_Dbw diffs -0.20, -0.22 (the
    # smaller p of Holm's two); S_Dbw's mark is the rendering's own, time has none
    mark = _mark([0.30, 0.32], [0.50, 0.54], 2)
    assert md.loc["COIN", "CIFAR-10 Time Cost (h)"] == "2.05 ± 0.07 (n=2) \\| 7.79 \\| -5.74"
    assert md.loc["COIN", "CIFAR-10 S_Dbw"] == f"0.31 ± 0.01 (n=2){mark} \\| 0.28 \\| +0.03"
    assert md.loc["SCL [21]", "DTD Time Cost (h)"] == "– \\| 0.51 \\| –"
    # the layout's own cells are the same hours
    assert coin.table2(pd.DataFrame(rows)).loc["COIN", "CIFAR-10 Time Cost (h)"] == "2.05 ± 0.07"
    long = paper_comparison(pd.DataFrame(rows), coin.table2.paper).set_index(["row", "col"])
    time = long.loc[("coin", "cifar10 Time Cost (h)")]
    assert time["diff_vs_baseline"] == pytest.approx(-0.45) and time["test"] == "paired"
    # paired diffs 0.0, -0.9: t = -0.45 / (0.636 / √2) = -1 on 1 df, p = 0.5; Holm: the larger
    # of the table's two p-values, max(2 × p_S_Dbw, 1 × 0.5) = 0.5
    assert time["p"] == pytest.approx(0.5) and time["p_holm"] == pytest.approx(0.5)


def test_coin_run_hours_prefers_tunes_total() -> None:
    runs = pd.DataFrame(
        {"time_total_s": [5400.0, np.nan, np.nan], "time/epoch_s": [10.0, 36.0, np.nan],
         "epochs": [100, 100, 100]}
    )  # fmt: skip
    # Tune's total (1.5 h) over the last epoch × epochs (0.28 h); 36 s × 100 = 1 h; nothing: NaN
    hours = coin.run_hours(runs)
    assert hours.iloc[0] == pytest.approx(1.5) and hours.iloc[1] == pytest.approx(1.0)
    assert np.isnan(hours.iloc[2])


def test_schane_table1_paper_frame_5shot() -> None:
    rows = [
        {"method": m, "dataset": "cifar_fs", "seed": s, "lr": lr, "best/val/acc": val,
         "fewshot/5way1shot": one, "fewshot/5way5shot": five}
        for m, lr, val, cells in [
            ("ce", 1e-4, 80.0, [(80.0, 90.0), (82.0, 92.0), (84.0, 91.0)]),
            ("ce", 1e-3, 70.0, [(99.0, 99.0), (99.0, 99.0), (99.0, 99.0)]),  # loses on validation
            ("schane", 1e-4, 80.0, [(85.0, 94.0), (86.0, 95.0), (87.0, 96.0)]),
        ]
        for s, (one, five) in enumerate(cells)
    ]  # fmt: skip
    md = paper_frame(pd.DataFrame(rows), schane.table1, "md")
    ce = "BEiT-3 CE (paper) / MAE ViT-B/16 (ours)"
    sch = "BEiT-3 SCHaNe (paper) / MAE ViT-B/16 (ours)"
    # CE 5-shot of lr 1e-4 (chosen on validation as for 1-shot): (90 + 92 + 91) / 3 = 91.00
    assert md.loc[ce, "CIFAR-FS 5-shot"] == "91.00 ± 1.00 (median of n=3) \\| 93.01 \\| -2.01"
    assert md.loc[ce, "CIFAR-FS 1-shot"] == "82.00 ± 2.00 (median of n=3) \\| 83.68 \\| -1.68"
    # SCHaNe vs CE paired on seeds, 5-shot diffs 4, 3, 5; Holm over the two shots' tests
    from scipy import stats as sps

    p5 = sps.ttest_rel([94.0, 95.0, 96.0], [90.0, 92.0, 91.0]).pvalue
    p1 = sps.ttest_rel([85.0, 86.0, 87.0], [80.0, 82.0, 84.0]).pvalue
    holm5 = min(1.0, 2 * p5) if p5 <= p1 else min(1.0, max(2 * p1, p5))
    mark = "**" if holm5 < 0.01 else "*" if holm5 < 0.05 else ""
    assert md.loc[sch, "CIFAR-FS 5-shot"] == f"95.00 ± 1.00 (median of n=3){mark} \\| 93.77 \\| +1.23"
    assert md.loc[sch, "tieredImageNet 5-shot"] == "– \\| 96.09 \\| –"
    # runs that logged no 5-shot accuracy leave the 5-shot cells empty
    one_only = pd.DataFrame(rows).drop(columns="fewshot/5way5shot")
    assert paper_frame(one_only, schane.table1, "md").loc[ce, "CIFAR-FS 5-shot"] == "– \\| 93.01 \\| –"


def test_schane_table4_paper_frame() -> None:
    runs = _seed_runs("inat2017", "test/isotropy", {"ce": [0.30, 0.34], "schane": [0.95, 0.97]}, val=60.0)
    md = paper_frame(runs, schane.table4, "md")
    ce = "BEiT-3 CE (paper) / MAE ViT-B/16 (ours)"
    # (0.30 + 0.34) / 2 = 0.3200, std 0.04 / √2 = 0.0283; paper 0.3230
    assert md.loc[ce, "iNat2017"] == "0.3200 ± 0.0283 (n=2) \\| 0.3230 \\| -0.0030"
    mark = _mark([0.95, 0.97], [0.30, 0.34], 1)
    cell = md.loc["BEiT-3 SCHaNe (paper) / MAE ViT-B/16 (ours)", "iNat2017"]
    assert cell == f"0.9600 ± 0.0141 (n=2){mark} \\| 0.9827 \\| -0.0227"
    assert md.loc[ce, "Places365"] == "– \\| 0.3404 \\| –"
