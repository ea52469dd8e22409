"""ftsweep.stats against hand computations and SciPy."""

from __future__ import annotations

import math

import pytest
from scipy import stats as sps

from ftsweep.stats import compare, holm, marker, paired_ttest, welch_ttest


def test_welch_matches_a_hand_computation_and_scipy() -> None:
    a, b = [97.1, 97.5, 97.3], [96.0, 96.8, 96.1, 96.5]
    ma, mb = sum(a) / 3, sum(b) / 4
    va = sum((x - ma) ** 2 for x in a) / 2 / 3
    vb = sum((x - mb) ** 2 for x in b) / 3 / 4
    t = (ma - mb) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / 2 + vb**2 / 3)
    got = welch_ttest(a, b)
    assert got.t == pytest.approx(t, rel=1e-12) and got.df == pytest.approx(df, rel=1e-12)
    assert got.diff == pytest.approx(ma - mb, rel=1e-12)
    ref = sps.ttest_ind(a, b, equal_var=False)
    assert got.p == pytest.approx(ref.pvalue, rel=1e-10)
    half = sps.t.ppf(0.975, df) * math.sqrt(va + vb)
    assert (got.ci_low, got.ci_high) == pytest.approx((ma - mb - half, ma - mb + half), rel=1e-12)
    assert got.test == "welch"


def test_paired_matches_scipy_and_compare_pairs_by_seed() -> None:
    a, b = [90.0, 92.5, 91.0, 93.0], [89.0, 92.0, 89.5, 92.9]
    got = paired_ttest(a, b)
    ref = sps.ttest_rel(a, b)
    assert got.t == pytest.approx(ref.statistic, rel=1e-12) and got.p == pytest.approx(ref.pvalue, rel=1e-10)
    assert got.df == 3
    # compare() pairs by seed whatever the order of the runs
    shuffled = compare(a, [b[2], b[0], b[3], b[1]], [0, 1, 2, 3], [2, 0, 3, 1])
    assert shuffled.test == "paired" and shuffled.p == pytest.approx(ref.pvalue, rel=1e-10)
    assert compare(a, b[:3], [0, 1, 2, 3], [0, 1, 2]).test == "welch"


def test_degenerate_cases() -> None:
    assert math.isnan(welch_ttest([1.0], [2.0, 3.0]).p)
    assert math.isnan(welch_ttest([1.0, 1.0], [1.0, 1.0]).p)
    assert welch_ttest([2.0, 2.0], [1.0, 1.0]).p == 0.0


def test_holm_by_hand() -> None:
    # sorted 0.01, 0.03, 0.04 (m = 3): 0.03, max(0.03, 0.06), max(0.06, 0.04) = 0.06
    assert holm([0.04, 0.01, float("nan"), 0.03]) == pytest.approx(
        [0.06, 0.03, float("nan"), 0.06], nan_ok=True
    )
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])
    assert marker(0.004) == "**" and marker(0.02) == "*" and marker(0.2) == "" and marker(float("nan")) == ""
