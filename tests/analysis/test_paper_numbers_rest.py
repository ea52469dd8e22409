"""The paper numbers of COIN Table 2, Core-tuning Table 6 and SCHaNe Table 1, read back from the
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
    labels = {"ce": "CE-Tuning", "scl": "SCL [21]", "core_tuning": "Core-Tuning [13]", "coin": "COIN (ours)"}
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
    t = coin.table2.paper
    assert t.values is coin.PAPER_TABLE2 and t.metric == "val/s_dbw" and t.baseline == "ce"


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
    t = schane.table1.paper
    assert t.values is schane.PAPER_TABLE1 and t.metric == "fewshot/5way1shot" and t.baseline == "ce"
    # the paper's rows are BEiT-3, ours run MAE ViT-B/16: the labels say so
    assert all("BEiT-3" in n and "MAE ViT-B/16" in n for n in t.row_names.values())


# ---- ours | paper | Δ on tiny hand-made runs ---------------------------------------------------
def test_coin_table2_paper_frame() -> None:
    rows = [
        {"method": m, "dataset": "cifar10", "seed": s, "best/val/acc": 90.0, "val/s_dbw": v}
        for m, vals in {"ce": [0.50, 0.54], "coin": [0.30, 0.32]}.items()
        for s, v in enumerate(vals)
    ]
    md = paper_frame(pd.DataFrame(rows), coin.table2, "md")
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
    rows = [
        {"method": m, "dataset": "cifar_fs", "seed": s, "best/val/acc": 80.0, "fewshot/5way1shot": v}
        for m, vals in {"ce": [80.0, 82.0, 84.0], "schane": [85.0, 86.0, 87.0]}.items()
        for s, v in enumerate(vals)
    ]
    md = paper_frame(pd.DataFrame(rows), schane.table1, "md")
    ce = "BEiT-3 CE (paper) / MAE ViT-B/16 (ours)"
    assert md.loc[ce, "CIFAR-FS 1-shot"] == "82.00 ± 2.00 (n=3) \\| 83.68 \\| -1.68"
    cell = md.loc["BEiT-3 SCHaNe (paper) / MAE ViT-B/16 (ours)", "CIFAR-FS 1-shot"]
    assert cell.startswith(f"86.00 ± {np.std([85.0, 86.0, 87.0], ddof=1):.2f} (n=3)")
    assert cell.endswith(" \\| 87.00 \\| -1.00")
    assert md.loc[ce, "FC100 1-shot"] == "– \\| 66.35 \\| –"
