"""Significance over seeds: Welch's and paired t-tests with 95 % confidence intervals, Holm's
step-down correction across the comparisons of one table.

All functions are pure (arrays in, numbers out). SciPy is imported inside the functions that
use it, so that importing ``ftsweep`` stays light (``tests/test_lazy.py``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Comparison", "compare", "holm", "marker", "paired_ttest", "welch_ttest"]


@dataclass(frozen=True)
class Comparison:
    """``a − b`` over seeds.

    Attributes:
        diff: mean(a) − mean(b) (paired: the mean of the per-seed differences, the same number).
        ci_low / ci_high: the 95 % confidence interval of ``diff`` (t distribution, ``df``).
        t: the t statistic; df: its degrees of freedom (Welch–Satterthwaite for Welch).
        p: two-sided p-value (NaN when undefined: fewer than 2 values a side, or zero variance
            with a zero difference).
        n_a / n_b: values compared per side.
        test: ``welch`` or ``paired``.
    """

    diff: float
    ci_low: float
    ci_high: float
    t: float
    df: float
    p: float
    n_a: int
    n_b: int
    test: str


def _from_t(diff: float, se: float, df: float, n_a: int, n_b: int, test: str) -> Comparison:
    from scipy import stats

    if not math.isfinite(df) or df <= 0:
        return Comparison(diff, math.nan, math.nan, math.nan, math.nan, math.nan, n_a, n_b, test)
    if se == 0:
        p = math.nan if diff == 0 else 0.0
        t = math.nan if diff == 0 else math.copysign(math.inf, diff)
        return Comparison(diff, diff, diff, t, df, p, n_a, n_b, test)
    t = diff / se
    half = float(stats.t.ppf(0.975, df)) * se
    p = float(2 * stats.t.sf(abs(t), df))
    return Comparison(diff, diff - half, diff + half, t, df, p, n_a, n_b, test)


def welch_ttest(a: Sequence[float], b: Sequence[float]) -> Comparison:
    """Welch's unequal-variance t-test of ``mean(a) − mean(b)``.

    ``t = (ā − b̄) / sqrt(s_a²/n_a + s_b²/n_b)`` with the Welch–Satterthwaite degrees of freedom
    ``(s_a²/n_a + s_b²/n_b)² / ((s_a²/n_a)²/(n_a − 1) + (s_b²/n_b)²/(n_b − 1))``.
    """
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    na, nb = len(x), len(y)
    diff = float(x.mean() - y.mean()) if na and nb else math.nan
    if na < 2 or nb < 2:
        return Comparison(diff, math.nan, math.nan, math.nan, math.nan, math.nan, na, nb, "welch")
    va, vb = x.var(ddof=1) / na, y.var(ddof=1) / nb
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (na - 1) + vb**2 / (nb - 1)) if se > 0 else float(na + nb - 2)
    return _from_t(diff, se, df, na, nb, "welch")


def paired_ttest(a: Sequence[float], b: Sequence[float]) -> Comparison:
    """Paired t-test of ``a − b`` (same length, position k of each side is one seed):
    ``t = d̄ / (s_d / sqrt(n))`` with ``n − 1`` degrees of freedom."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    assert x.shape == y.shape, f"a and b must have the same shape but found {x.shape} and {y.shape}"
    n = len(x)
    d = x - y
    diff = float(d.mean()) if n else math.nan
    if n < 2:
        return Comparison(diff, math.nan, math.nan, math.nan, math.nan, math.nan, n, n, "paired")
    return _from_t(diff, float(d.std(ddof=1)) / math.sqrt(n), float(n - 1), n, n, "paired")


def compare(
    a: Sequence[float],
    b: Sequence[float],
    seeds_a: Sequence | None = None,
    seeds_b: Sequence | None = None,
) -> Comparison:
    """A paired t-test on the seeds both sides share when the seeds pair the runs (both sides
    give seeds, the same set, at least two), Welch's t-test otherwise."""
    if seeds_a is not None and seeds_b is not None:
        sa, sb = list(seeds_a), list(seeds_b)
        if len(set(sa)) == len(sa) and len(set(sb)) == len(sb) and set(sa) == set(sb) and len(sa) >= 2:
            pos_b = {s: i for i, s in enumerate(sb)}
            order = [pos_b[s] for s in sa]
            return paired_ttest(list(a), [list(b)[i] for i in order])
    return welch_ttest(a, b)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error control across one table's
    comparisons): sort the m defined p-values ascending, ``p̃_(k) = max_{j ≤ k} min(1,
    (m − j + 1)·p_(j))``; NaN stays NaN and does not count in m."""
    p = [float(v) for v in pvalues]
    defined = sorted((v, i) for i, v in enumerate(p) if not math.isnan(v))
    m = len(defined)
    out = [math.nan] * len(p)
    running = 0.0
    for rank, (v, i) in enumerate(defined):
        running = max(running, min(1.0, (m - rank) * v))
        out[i] = running
    return out


def marker(p: float, levels: Sequence[tuple[float, str]] = ((0.01, "**"), (0.05, "*"))) -> str:
    """``**`` for p < 0.01, ``*`` for p < 0.05, ``""`` otherwise (or NaN)."""
    if p is None or math.isnan(p):
        return ""
    for level, sign in levels:
        if p < level:
            return sign
    return ""
