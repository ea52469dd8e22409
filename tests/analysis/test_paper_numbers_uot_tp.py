"""The paper numbers attached to analysis.uot_selection / analysis.target_pretraining layouts,
read back from the paper text (../shared/papers/*.md), and ``paper_frame`` renderings on hand-made runs."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
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
    # attached: every dataset column, MPA on Pets / Aircraft / Caltech (appendix A), top-1 elsewhere
    assert table1a.paper.values is PAPER_TABLE1A and table1b.paper.values is PAPER_TABLE1B
    # Dogs Cars CUB Pets SUN Aircraft DTD Caltech
    paper_metrics = ["test/acc"] * 3 + ["test/mpa", "test/acc", "test/mpa", "test/acc", "test/mpa"]
    for t in (table1a.paper, table1b.paper):
        assert [t.metric_of(c) for c in cols] == paper_metrics
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
    assert table2.paper.values is PAPER_TABLE2 and table3.paper.values is PAPER_TABLE3
    t3_metrics = [table3.paper.metric_of(c) for c in ("cub200", "aircraft", "caltech101")]
    assert t3_metrics == ["test/acc", "test/mpa", "test/mpa"]
    t4 = _lines("uot_selection.md", "Method\tMetric", "Table 4:")[1:]
    rows = ["GOT-l2", "GOT-cos", "UOT-l2", "UOT-cos"]
    for i, r in enumerate(rows):
        assert PAPER_TABLE4_RECALL["a"][(r, "cub200")] == _num(t4[0][2 + i])
        assert PAPER_TABLE4A[(r, "cub200")] == _num(t4[1][2 + i])
        assert PAPER_TABLE4_RECALL["b"][(r, "cub200")] == _num(t4[2][2 + i])
        assert PAPER_TABLE4B[(r, "cub200")] == _num(t4[3][2 + i])
    # attached: Rec. (selection/recall, a fraction, × 100) and Acc. of the same runs
    for layout, (rec, acc) in [(table4a, (t4[0], t4[1])), (table4b, (t4[2], t4[3]))]:
        for i, r in enumerate(rows):
            assert layout.paper.values[(r, "Rec.")] == _num(rec[2 + i])
            assert layout.paper.values[(r, "Acc.")] == _num(acc[2 + i])
        assert layout.paper.cols is None and layout.paper.metric_of("Rec.") == "selection/recall"
        assert layout.paper.scale_of("selection/recall") == 100.0 and layout.paper.scale_of("test/acc") == 1.0


def test_target_pretraining_numbers_are_the_papers() -> None:
    from analysis.target_pretraining import (
        PAPER_TABLE1,
        PAPER_TABLE2,
        PAPER_TABLE8,
        PAPER_TABLE9,
        PAPER_TABLE10,
        table1,
        table2,
        table8,
        table9,
        table10,
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
    # rows "<Pretrain> / <Trg. Pre.>", columns the learners, as printed without the citations
    t8 = _lines("target_pretraining.md", "Table 8:", "Table 9:")
    cite = lambda c: re.sub(r" \[\d+\]", "", c)  # noqa: E731
    header = [cite(c) for c in t8[1][2:]]
    assert header == ["-", "FixMatch", "UDA", "MT"]
    for ln in t8[2:]:
        for col, cell in zip(header, ln[2:], strict=True):
            assert PAPER_TABLE8[(f"{ln[0]} / {cite(ln[1])}", col)] == _num(cell), (ln[:2], col)
    assert len(PAPER_TABLE8) == 12 and PAPER_TABLE8[("IN Sup / MoCo v2", "UDA")] == 87.04
    assert table8.paper.values is PAPER_TABLE8
    t9 = {ln[1]: ln[2:] for ln in _lines("target_pretraining.md", "Table 9:", "Table 10:")[2:]}
    for m, label in [("trg-none", "-"), ("trg-cifar10", "CIFAR-10"), ("trg-cifar100", "CIFAR-100"),
                     ("trg-svhn", "SVHN")]:  # fmt: skip
        for d, cell in zip(["cifar10", "cifar100", "svhn"], t9[label], strict=True):
            assert PAPER_TABLE9[(m, d)] == _num(cell), (m, d)
    assert table9.paper.values is PAPER_TABLE9
    t10 = {ln[1]: ln[2:] for ln in _lines("target_pretraining.md", "Pretrain\tTrg. Pre.\tCifar-10", "\n\n")}
    assert PAPER_TABLE10[("BYOL", "svhn")] == tuple(float(x) for x in t10["BYOL"][2].split("/"))
    assert PAPER_TABLE10[("-", "cifar10")] == tuple(float(x) for x in t10["-"][0].split("/"))
    # attached: Tables 1 and 2 as stored; Table 10 one column per dataset and split, rows as printed
    assert table1.paper.values is PAPER_TABLE1 and table2.paper.values is PAPER_TABLE2
    t10_rows = {
        " / ".join(ln[:2]): ln[2:]
        for ln in _lines("target_pretraining.md", "Pretrain\tTrg. Pre.\tCifar-10", "\n\n")
    }
    for row in ["IN Sup / -", "IN Sup / BYOL"]:
        for d, cell in zip(["cifar10", "cifar100", "svhn"], t10_rows[row], strict=True):
            train, test = (float(x) for x in cell.split("/"))
            assert table10.paper.values[(row, f"{d} train")] == train, (row, d)
            assert table10.paper.values[(row, f"{d} test")] == test, (row, d)
    assert table10.paper.select_by is None


def test_paper_frame_renders_uot_and_tp_cells() -> None:
    from analysis.target_pretraining import table9
    from analysis.uot_selection import table4a
    from ftsweep.tables import paper_frame

    runs = pd.DataFrame(
        [
            {
                "method": m,
                "dataset": "cub200",
                "seed": s,
                "best/val/acc": 1.0,
                "test/acc": acc,
                "selection/recall": rec,
            }
            for m, cells in {
                "GOT-l2": [(76.0, 0.85), (77.0, 0.87)],
                "UOT-cos": [(78.0, 0.98), (79.0, 1.0)],
            }.items()
            for s, (acc, rec) in enumerate(cells)
        ]
    )
    md = paper_frame(runs, table4a, "md")
    assert md.loc["UOT-cos", "Acc."] == "78.50 ± 0.71 (n=2) \\| 77.21 \\| +1.29"
    # recall 100 · (0.98 + 1.0) / 2 = 99.00, std 100 · 0.0141 = 1.41; paper 98.31
    assert md.loc["UOT-cos", "Rec."] == "99.00 ± 1.41 (n=2) \\| 98.31 \\| +0.69"
    assert md.loc["GOT-l2", "Rec."] == "86.00 ± 1.41 (n=2) \\| 86.44 \\| -0.44"
    assert md.loc["GOT-cos", "Acc."] == "– \\| 76.67 \\| –"  # a paper cell no run filled
    # another dataset's runs are not Table 4's
    other = runs.assign(dataset="dogs", **{"test/acc": 0.0})
    assert paper_frame(pd.concat([runs, other]), table4a, "md").equals(md)
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


def test_paper_frame_uot_table1a_reads_mpa_on_pets() -> None:
    from scipy import stats as sps

    from analysis.uot_selection import table1a
    from ftsweep.tables import paper_frame

    # top-1 and MPA differ on purpose: Pets must read test/mpa, Dogs test/acc
    runs = pd.DataFrame(
        [
            {"method": m, "dataset": d, "seed": s, "best/val/acc": 1.0, "test/acc": acc, "test/mpa": mpa}
            for m, d, cells in [
                ("Fine-Tune", "pets", [(95.0, 91.0), (96.0, 92.0)]),
                ("UOT", "pets", [(97.0, 93.0), (97.5, 94.5)]),
                ("UOT", "dogs", [(85.0, 10.0), (84.0, 10.0)]),
            ]
            for s, (acc, mpa) in enumerate(cells)
        ]
    )
    md = paper_frame(runs, table1a, "md")
    # Fine-Tune Pets: MPA (91 + 92) / 2 = 91.50 vs 91.40
    assert md.loc["Fine-Tune", "Pets"] == "91.50 ± 0.71 (n=2) \\| 91.40 \\| +0.10"
    # UOT Pets: MPA 93.75 vs 91.98, tested (paired) against Fine-Tune's MPA: the only comparison
    ref = sps.ttest_rel([93.0, 94.5], [91.0, 92.0])
    mark = "**" if ref.pvalue < 0.01 else "*" if ref.pvalue < 0.05 else ""
    assert md.loc["UOT", "Pets"] == f"93.75 ± 1.06 (n=2){mark} \\| 91.98 \\| +1.77"
    assert md.loc["UOT", "Dogs"] == "84.50 ± 0.71 (n=2) \\| 84.67 \\| -0.17"
    assert md.loc["UOT", "Caltech"] == "– \\| 91.11 \\| –"


def _tp_run(
    method: str, pretrained: str, objective: object, lr: float, seed: int, val: float, acc: float
) -> dict:
    return {
        "method": method,
        "dataset": "cifar10",
        "labels_per_class": 4,
        "pretrained": pretrained,
        "stage1.objective": objective,
        "lr": lr,
        "seed": seed,
        "best/val/acc": val,
        "test/acc": acc,
    }


def test_paper_frame_tp_table1_rows_from_runs_and_pairwise_tests() -> None:
    from scipy import stats as sps

    from analysis.target_pretraining import table1
    from ftsweep.tables import paper_comparison, paper_frame

    seeds = [0, 1, 2]
    runs = pd.DataFrame(
        # IN Sup / - / FixMatch: lr 0.03 wins on validation (its test accuracies 75, 76, 77)
        [_tp_run("fixmatch", "resnet18_imagenet1k_v1", None, 0.03, s, 60.0, 75.0 + s) for s in seeds]
        + [_tp_run("fixmatch", "resnet18_imagenet1k_v1", None, 0.1, s, 50.0, 99.0) for s in seeds]
        # IN Sup / BYOL / FixMatch: 90, 92, 91
        + [
            _tp_run("fixmatch", "resnet18_imagenet1k_v1", "byol", 0.03, s, 60.0, a)
            for s, a in zip(seeds, [90.0, 92.0, 91.0], strict=True)
        ]
        # - / BYOL / - (no "- / - / -" row: untested)
        + [_tp_run("supervised-rand", "none", "byol", 0.03, s, 40.0, 50.0 + s) for s in seeds]
    )
    md = paper_frame(runs, table1, "md")
    ref = sps.ttest_rel([90.0, 92.0, 91.0], [75.0, 76.0, 77.0])
    mark = "**" if ref.pvalue < 0.01 else "*" if ref.pvalue < 0.05 else ""
    assert md.loc["IN Sup / - / FixMatch", "#40"] == "76.00 ± 1.00 (n=3) \\| 75.33 \\| +0.67"
    assert md.loc["IN Sup / BYOL / FixMatch", "#40"] == f"91.00 ± 1.00 (n=3){mark} \\| 90.21 \\| +0.79"
    assert md.loc["- / BYOL / -", "#40"] == "51.00 ± 1.00 (n=3) \\| 49.58 \\| +1.42"
    assert md.loc["IN Sup / BYOL / -", "#1000"] == "– \\| 87.86 \\| –"
    long = paper_comparison(runs, table1.paper).set_index(["row", "col"])
    byol = long.loc[("IN Sup / BYOL / FixMatch", "#40")]
    assert byol["test"] == "paired" and byol["p"] == pytest.approx(ref.pvalue, rel=1e-10)
    assert byol["diff_vs_baseline"] == pytest.approx(15.0)
    assert np.isnan(long.loc[("- / BYOL / -", "#40"), "p"])  # its "- / - / -" row has no runs


def test_paper_frame_tp_table10_before_and_after_of_the_same_runs() -> None:
    from scipy import stats as sps

    from analysis.target_pretraining import table10
    from ftsweep.tables import paper_frame

    before, after = [46.0, 45.0, 47.0], [48.0, 48.5, 50.0]
    runs = pd.DataFrame(
        [
            {
                "method": "target_pretrain",
                "dataset": "cifar10",
                "seed": s,
                "pretrained": "resnet18_imagenet1k_v1",
                "objective": "byol",
                "epochs": 300,
                "train/loss": 0.5 + s,
                "cluster/train_acc_before": b,
                "cluster/test_acc_before": b - 1.0,
                "cluster/train_acc": a,
                "cluster/test_acc": a + 1.0,
            }
            for s, (b, a) in enumerate(zip(before, after, strict=True))
        ]
    )
    md = paper_frame(runs, table10, "md")
    ref = sps.ttest_rel(after, before)  # test split: both shifted by ±1, the same paired diffs
    assert md.loc["IN Sup / -", "CIFAR-10 train"] == "46.00 ± 1.00 (n=3) \\| 46.31 \\| -0.31"
    assert md.loc["IN Sup / -", "CIFAR-10 test"] == "45.00 ± 1.00 (n=3) \\| 45.66 \\| -0.66"
    holm = min(1.0, 2 * ref.pvalue)  # two comparisons (train, test) with the same p-value
    mark = "**" if holm < 0.01 else "*" if holm < 0.05 else ""
    assert md.loc["IN Sup / BYOL", "CIFAR-10 train"] == f"48.83 ± 1.04 (n=3){mark} \\| 47.17 \\| +1.66"
    assert md.loc["IN Sup / BYOL", "CIFAR-10 test"] == f"49.83 ± 1.04 (n=3){mark} \\| 48.02 \\| +1.81"
    assert md.loc["IN Sup / BYOL", "SVHN test"] == "– \\| 16.23 \\| –"
    # no validation metric to choose between two stage-1 settings: --paper refuses
    two = pd.concat([runs, runs.assign(epochs=100)], ignore_index=True)
    with pytest.raises(ValueError, match="configurations"):
        paper_frame(two, table10, "md")


def test_paper_frame_tp_table8_rows_honour_stage1_defaults() -> None:
    from scipy import stats as sps

    from analysis.target_pretraining import table8
    from ftsweep.tables import paper_frame

    def r(method: str, seed: int, acc: float, **stage1: object) -> dict:
        return {"method": method, "dataset": "cifar10", "labels_per_class": 4, "seed": seed,
                "pretrained": "resnet18_imagenet1k_v1", "best/val/acc": 50.0, "test/acc": acc,
                **stage1}  # fmt: skip

    seeds = [0, 1, 2]
    runs = pd.DataFrame(
        [r("fixmatch", s, 74.0 + s) for s in seeds]
        # stage 1 set (its epochs) but its objective only in stage1_defaults: a MoCo v2 row, not "-"
        + [
            r("fixmatch", s, a, **{"stage1.epochs": 300, "stage1_defaults.objective": "moco_v2"})
            for s, a in zip(seeds, [90.0, 91.5, 92.0], strict=True)
        ]
        + [r("uda-insup", s, 80.0, **{"stage1.objective": "byol"}) for s in seeds]  # entry name → UDA
    )
    md = paper_frame(runs, table8, "md")
    ref = sps.ttest_rel([90.0, 91.5, 92.0], [74.0, 75.0, 76.0])
    mark = "**" if ref.pvalue < 0.01 else "*" if ref.pvalue < 0.05 else ""
    assert md.loc["IN Sup / -", "FixMatch"] == "75.00 ± 1.00 (n=3) \\| 75.28 \\| -0.28"
    # (90 + 91.5 + 92) / 3 = 91.17, std 1.04; paper 90.37
    assert md.loc["IN Sup / MoCo v2", "FixMatch"] == f"91.17 ± 1.04 (n=3){mark} \\| 90.37 \\| +0.80"
    assert md.loc["IN Sup / BYOL", "UDA"] == "80.00 ± 0.00 (n=3) \\| 78.43 \\| +1.57"  # no "-" UDA runs
    assert md.loc["IN Sup / BYOL", "FixMatch"] == "– \\| 90.06 \\| –"
