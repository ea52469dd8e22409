"""The paper numbers attached to analysis.uot_selection / analysis.target_pretraining layouts,
read back from the paper text (../shared/papers/*.md), and one ``paper_frame`` rendering."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

PAPERS = Path(__file__).resolve().parents[3] / "shared" / "papers"

pytestmark = pytest.mark.skipif(not PAPERS.is_dir(), reason="../shared/papers not present")


def _lines(paper: str, start: str, end: str) -> list[list[str]]:
    """Tab-separated lines of ``paper`` from ``start`` up to ``end`` (both substrings)."""
    text = (PAPERS / paper).read_text()
    i = text.index(start)
    text = text[i : text.index(end, i)]
    return [line.split("\t") for line in text.splitlines() if "\t" in line]


def _num(cell: str) -> float:
    return float(re.sub(r"</?[bu]>", "", cell).split("±")[0].split("/")[0].strip())


def test_uot_table1_numbers_are_the_papers() -> None:
    from analysis.uot_selection import PAPER_TABLE1A, PAPER_TABLE1B, table1a, table1b

    cols = ["dogs", "cars", "cub200", "pets", "sun397", "aircraft", "dtd", "caltech101"]
    a = {ln[1]: ln[2:] for ln in _lines("uot_selection.md", "(a) Supervised", "(b) Self-Supervised")}
    for row in ["Fine-Tune", "Random", "Greedy-OT", "UOT"]:
        for col, cell in zip(cols, a[row], strict=False):
            assert PAPER_TABLE1A[(row, col)] == _num(cell), (row, col)
    b = _lines("uot_selection.md", "(b) Self-Supervised", "Table 1:")[2:]  # after title and header
    labels = [
        "Fine-Tune",
        *(f"{m} ({w} labels)" for w in ("w/", "w/o") for m in ("Random", "Greedy-OT", "UOT")),
    ]
    assert [ln[1] for ln in b] == ["Fine-Tune", "Random", "Greedy-OT", "UOT", "Random", "Greedy-OT", "UOT"]
    for label, line in zip(labels, b, strict=True):
        for col, cell in zip(cols, line[2:], strict=False):
            assert PAPER_TABLE1B[(label, col)] == _num(cell), (label, col)
    # attached: the top-1 columns only (one metric per PaperTable; MPA on Pets/Aircraft/Caltech)
    assert table1a.paper.values[("UOT", "dogs")] == 84.67 and ("UOT", "pets") not in table1a.paper.values
    assert table1b.paper.values[("UOT (w/ labels)", "cub200")] == 80.98
    assert table1a.paper.baseline == table1b.paper.baseline == "Fine-Tune"


def test_uot_tables_2_3_4_numbers_are_the_papers() -> None:
    from analysis.uot_selection import (
        PAPER_TABLE2,
        PAPER_TABLE3,
        PAPER_TABLE4_RECALL,
        PAPER_TABLE4A,
        PAPER_TABLE4B,
        table2,
        table3,
        table4a,
        table4b,
    )

    t2 = {ln[0]: ln[1:] for ln in _lines("uot_selection.md", "K\tDogs", "Table 2:")}
    assert PAPER_TABLE2[("K=1000", "dogs")] == _num(t2["1000"][0])
    assert PAPER_TABLE2[("K=2000", "caltech101")] == _num(t2["2000"][7])
    assert table2.paper.values[("K=2000", "sun397")] == _num(t2["2000"][4])
    t3 = {ln[0]: ln[1:] for ln in _lines("uot_selection.md", "\tCUB\tAircraft\tCaltech", "Table 3:")}
    assert PAPER_TABLE3[("UOT", "cub200")] == _num(t3["UOT"][0])
    assert PAPER_TABLE3[("Fine-Tuning", "caltech101")] == _num(t3["Fine-Tuning"][2])
    assert table3.paper.values == {k: v for k, v in PAPER_TABLE3.items() if k[1] == "cub200"}
    t4 = _lines("uot_selection.md", "Method\tMetric", "Table 4:")[1:]
    rows = ["GOT-l2", "GOT-cos", "UOT-l2", "UOT-cos"]
    for i, r in enumerate(rows):
        assert PAPER_TABLE4_RECALL["a"][(r, "cub200")] == _num(t4[0][2 + i])
        assert PAPER_TABLE4A[(r, "cub200")] == _num(t4[1][2 + i])
        assert PAPER_TABLE4_RECALL["b"][(r, "cub200")] == _num(t4[2][2 + i])
        assert PAPER_TABLE4B[(r, "cub200")] == _num(t4[3][2 + i])
    assert table4a.paper.values is PAPER_TABLE4A and table4b.paper.values is PAPER_TABLE4B


def test_target_pretraining_numbers_are_the_papers() -> None:
    from analysis.target_pretraining import (
        PAPER_TABLE1,
        PAPER_TABLE2,
        PAPER_TABLE8,
        PAPER_TABLE9,
        PAPER_TABLE10,
        table8,
        table9,
    )

    def rows(start: str, end: str) -> dict[str, list[str]]:
        out = {}
        for ln in _lines("target_pretraining.md", start, end):
            out[" / ".join(ln[:3]).replace(" [3]", "")] = ln[3:]
        return out

    t1 = rows("Pretrain\tTrg. Pre.\tSSL\t#40", "Table 2:")
    assert PAPER_TABLE1[("IN Sup / BYOL / FixMatch", "#40")] == _num(t1["IN Sup / BYOL / FixMatch"][0])
    assert PAPER_TABLE1[("- / - / -", "#1000")] == _num(t1["- / - / -"][2])
    assert PAPER_TABLE1[("- / - / FixMatch", "#250")] == _num(t1["- / - / FixMatch"][1])
    t2 = rows("Pretrain\tTrg. Pre.\tSSL\tCIFAR-100", "Table 3:")
    assert PAPER_TABLE2[("IN Sup / BYOL / FixMatch", "SVHN #40")] == _num(t2["IN Sup / BYOL / FixMatch"][2])
    assert PAPER_TABLE2[("- / - / -", "CIFAR-100 #400")] == _num(t2["- / - / -"][0]) == 8.67
    t8 = {ln[1]: ln[2:] for ln in _lines("target_pretraining.md", "Table 8:", "Table 9:")[2:]}
    for obj, label in [(None, "-"), ("byol", "BYOL [10]"), ("moco_v2", "MoCo v2 [49]")]:
        for m, cell in zip(["supervised", "fixmatch", "uda", "mean_teacher"], t8[label], strict=True):
            assert PAPER_TABLE8[(obj, m)] == _num(cell), (obj, m)
    assert table8.paper.values is PAPER_TABLE8 and table8.paper.rows == "stage1.objective"
    t9 = {ln[1]: ln[2:] for ln in _lines("target_pretraining.md", "Table 9:", "Table 10:")[2:]}
    for m, label in [("trg-none", "-"), ("trg-cifar10", "CIFAR-10"), ("trg-cifar100", "CIFAR-100"),
                     ("trg-svhn", "SVHN")]:  # fmt: skip
        for d, cell in zip(["cifar10", "cifar100", "svhn"], t9[label], strict=True):
            assert PAPER_TABLE9[(m, d)] == _num(cell), (m, d)
    assert table9.paper.values is PAPER_TABLE9
    t10 = {ln[1]: ln[2:] for ln in _lines("target_pretraining.md", "Pretrain\tTrg. Pre.\tCifar-10", "\n\n")}
    assert PAPER_TABLE10[("BYOL", "svhn")] == tuple(float(x) for x in t10["BYOL"][2].split("/"))
    assert PAPER_TABLE10[("-", "cifar10")] == tuple(float(x) for x in t10["-"][0].split("/"))


def test_paper_frame_renders_uot_and_tp_cells() -> None:
    from analysis.target_pretraining import table9
    from analysis.uot_selection import table4a
    from ftsweep.tables import paper_frame

    runs = pd.DataFrame(
        [
            {"method": m, "dataset": "cub200", "seed": s, "best/val/acc": 1.0, "test/acc": acc}
            for m, accs in {"GOT-l2": [76.0, 77.0], "UOT-cos": [78.0, 79.0]}.items()
            for s, acc in enumerate(accs)
        ]
    )
    md = paper_frame(runs, table4a, "md")
    assert md.loc["UOT-cos", "CUB"] == "78.50 ± 0.71 (n=2) \\| 77.21 \\| +1.29"
    assert md.loc["GOT-cos", "CUB"] == "– \\| 76.67 \\| –"  # a paper cell no run filled
    tp = pd.DataFrame(
        [
            {"method": m, "dataset": "svhn", "seed": s, "best/val/acc": 1.0, "test/acc": acc}
            for m, accs in {"trg-none": [16.0, 18.0, 17.0], "trg-svhn": [35.0, 36.0, 37.0]}.items()
            for s, acc in enumerate(accs)
        ]
    )
    md = paper_frame(tp, table9, "md")
    assert md.loc["SVHN", "SVHN"].startswith("36.00 ± 1.00 (n=3)")
    assert md.loc["SVHN", "SVHN"].endswith(" \\| 35.82 \\| +0.18")
    assert md.loc["-", "CIFAR-10"] == "– \\| 49.69 \\| –"
