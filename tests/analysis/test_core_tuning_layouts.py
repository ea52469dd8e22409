"""Core-tuning's paper layouts on a synthetic runs frame with hand-computed cells."""

from __future__ import annotations

import itertools

import pandas as pd
import pytest

from analysis.core_tuning import fig3, fig3_plot, table1, table2, table6


def run(method: str, dataset: str, seed: int, test: float, val: float, **config) -> dict:
    return {
        "method": method,
        "dataset": dataset,
        "seed": seed,
        "test/acc": test,
        "best/val/acc": val,
        **config,
    }


CT = {"contrastive": "focal", "mixup": "hard", "lambda_p": 0.8, "lambda_n": 0.8, "mixup_alpha": 1.0}


def test_table1_selects_on_validation_and_orders_like_the_paper():
    rows = []
    for d, base in [("cifar10", 90.0), ("imagenet20", 80.0)]:
        rows += [run("ce", d, s, base + s, 50.0) for s in (0, 1)]
        # eta = 1 has the better validation mean but the worse test accuracy: it must be chosen
        rows += [run("core_tuning", d, s, base + 5 + 2 * s, 70.0, eta=1.0, **CT) for s in (0, 1)]
        rows += [run("core_tuning", d, s, base + 9, 60.0, eta=10.0, **CT) for s in (0, 1)]
    out = table1(pd.DataFrame(rows))
    assert list(out.columns) == ["ImageNet-20", "CIFAR10", "Avg."]
    assert list(out.index) == ["CE-tuning", "Core-tuning (ours)"]
    # ce: seeds 80, 81 → 80.50 ± 0.71 (ddof 1); core_tuning eta=1: 85, 87 → 86.00 ± 1.41
    assert out.loc["CE-tuning", "ImageNet-20"] == "80.50 ± 0.71"
    assert out.loc["Core-tuning (ours)", "ImageNet-20"] == "86.00 ± 1.41"
    assert out.loc["Core-tuning (ours)", "CIFAR10"] == "96.00 ± 1.41"
    assert out.loc["Core-tuning (ours)", "Avg."] == "91.00"
    assert out.loc["CE-tuning", "Avg."] == "85.50"


def test_table2_marks_components_from_the_config():
    rows = []
    spec = {
        "ce": {},
        "ct_con": {"contrastive": "plain", "mixup": "none", "eta": 1.0},
        "ct_mixup": {"contrastive": "focal", "mixup": "manifold", "eta": 0.0},
        "ct_con_mixuphard": {"contrastive": "plain", "mixup": "hard", "eta": 1.0},
        "core_tuning": {"contrastive": "focal", "mixup": "hard", "eta": 1.0},
    }
    for k, (label, cfg) in enumerate(reversed(spec.items())):  # shuffled input order
        rows += [run(label, "dtd", s, 70.0 + k, 60.0, **cfg) for s in (0, 1, 2)]
    out = table2(pd.DataFrame(rows))
    assert list(out.index) == ["ce", "ct_con", "ct_mixup", "ct_con_mixuphard", "core_tuning"]
    marks = out[["L_ce", "L_con", "L_con^f", "mixup", "mixup-hard"]].to_numpy().tolist()
    assert marks == [
        ["✓", "", "", "", ""],
        ["✓", "✓", "", "", ""],
        ["✓", "", "", "✓", ""],
        ["✓", "✓", "", "", "✓"],
        ["✓", "", "✓", "", "✓"],
    ]
    assert out.loc["core_tuning", "DTD"] == "70.00 ± 0.00"
    assert out.loc["ce", "DTD"] == "74.00 ± 0.00"


def fig3_frame() -> pd.DataFrame:
    rows = []
    for v, s in itertools.product([0.1, 0.5, 1.0, 5.0, 10.0], (0, 1)):
        rows.append(run("ct_eta", "imagenet20", s, 90.0 + v + s, 80.0, eta=v, **{**CT, "mixup_alpha": 5.0}))
        rows.append(run("ct_alpha", "imagenet20", s, 80.0 + v, 80.0, **{**CT, "eta": 0.5, "mixup_alpha": v}))
    return pd.DataFrame(rows)


def test_fig3_table_and_plot(tmp_path):
    df = fig3_frame()
    out = fig3(df)
    assert list(out.index) == ["η", "α"]
    assert list(out.columns) == ["0.1", "0.5", "1", "5", "10"]
    assert out.loc["η", "5"] == "95.50 ± 0.71"
    assert out.loc["α", "0.5"] == "80.50 ± 0.00"
    path = fig3_plot(df, tmp_path / "fig" / "fig3.png")
    assert path.exists() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_fig3_without_its_runs_raises():
    with pytest.raises(KeyError, match="ct_eta"):
        fig3(pd.DataFrame([run("core_tuning", "imagenet20", 0, 1.0, 1.0, eta=1.0, **CT)]))


@pytest.mark.parametrize("layout", ["one_at_a_time", "full_grid"])
def test_table6_rows_hold_the_other_threshold_at_0_8(layout):
    values = [0.0, 0.2, 0.4, 0.6, 0.8]
    rows = []

    def acc(ln: float, lp: float) -> float:
        return 90.0 + 10 * ln - lp  # distinct per cell, so a wrong slice shows

    if layout == "one_at_a_time":  # both rows' entries run (0.8, 0.8): each seed once in a cell
        for v, s in itertools.product(values, (0, 1)):
            rows.append(run("ct_lambda_n", "imagenet20", s, acc(v, 0.8) + s, 1.0, **{**CT, "lambda_n": v}))
            rows.append(run("ct_lambda_p", "imagenet20", s, acc(0.8, v) + s, 1.0, **{**CT, "lambda_p": v}))
    else:
        for ln, lp in itertools.product(values, values):
            rows.append(
                run(
                    "core_tuning", "imagenet20", 0, acc(ln, lp), 1.0, **{**CT, "lambda_n": ln, "lambda_p": lp}
                )
            )
    out = table6(pd.DataFrame(rows))
    assert list(out.index) == ["Negative pair threshold λ_n", "Positive pair threshold λ_p"]
    assert list(out.columns) == ["0", "0.2", "0.4", "0.6", "0.8"]
    if layout == "full_grid":
        assert out.loc["Negative pair threshold λ_n", "0.2"] == f"{acc(0.2, 0.8):.2f} ± 0.00"
        assert out.loc["Positive pair threshold λ_p", "0"] == f"{acc(0.8, 0.0):.2f} ± 0.00"
        assert out.loc["Positive pair threshold λ_p", "0.8"] == f"{acc(0.8, 0.8):.2f} ± 0.00"
    else:  # seeds a, a + 1: ± 0.71 (ddof 1); the 4 runs pooled gave ± 0.58
        for row in ("Negative pair threshold λ_n", "Positive pair threshold λ_p"):
            assert out.loc[row, "0.8"] == f"{acc(0.8, 0.8) + 0.5:.2f} ± 0.71"
        assert out.loc["Negative pair threshold λ_n", "0.2"] == f"{acc(0.2, 0.8) + 0.5:.2f} ± 0.71"
