"""UOT selection (Eq. 5) against an independent generalised Sinkhorn written here in numpy."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ftsweep.methods.uot_selection import UotSelectionConfig
from ftsweep.selection import cosine_cost, select, uot_plan, uot_scores

#: the paper's UOT parameters (Sec. 4.1): the defaults of their one home, the method's config,
#: with UOT's cosine cost (what ``metric: auto`` resolves to for UOT)
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(UotSelectionConfig)}
PAPER = {**{k: _DEFAULTS[k] for k in ("eps", "tau1", "tau2", "eps_c")}, "cost": "cosine"}


def _uot_scores(source: np.ndarray, target: np.ndarray, **kw: object) -> np.ndarray:
    return uot_scores(source, target, **{**PAPER, **kw})


def _uot_plan(source: np.ndarray, target: np.ndarray, **kw: object) -> np.ndarray:
    return uot_plan(source, target, **{**PAPER, **kw})


def _reference_plan(
    source: np.ndarray,
    target: np.ndarray,
    *,
    eps: float,
    tau1: float,
    tau2: float,
    eps_c: float,
    iters: int = 5000,
) -> np.ndarray:
    """Plain scaling iterations, no shift, no POT: u = (a/Kv)^(t1/(t1+e)), v = (b/K^T u)^..."""
    s = source / np.sqrt((source**2).sum(axis=1, keepdims=True))
    t = target / np.sqrt((target**2).sum(axis=1, keepdims=True))
    cost = np.empty((s.shape[0], t.shape[0]))
    for i in range(s.shape[0]):
        for j in range(t.shape[0]):
            cost[i, j] = (1.0 - float(np.dot(s[i], t[j]))) / eps_c
    kernel = np.exp(-cost / eps)
    a = np.ones(s.shape[0])
    b = np.ones(t.shape[0])
    u, v = np.ones_like(a), np.ones_like(b)
    for _ in range(iters):
        u = (a / (kernel @ v)) ** (tau1 / (tau1 + eps))
        v = (b / (kernel.T @ u)) ** (tau2 / (tau2 + eps))
    return u[:, None] * kernel * v[None, :]


def _reference_plan_log(
    source: np.ndarray,
    target: np.ndarray,
    *,
    eps: float,
    tau1: float,
    tau2: float,
    eps_c: float,
    iters: int = 3000,
) -> np.ndarray:
    """Log-domain version of the same iteration for costs whose kernel underflows."""
    s = source / np.linalg.norm(source, axis=1, keepdims=True)
    t = target / np.linalg.norm(target, axis=1, keepdims=True)
    log_k = -(1.0 - s @ t.T) / eps_c / eps
    f = np.zeros(s.shape[0])
    g = np.zeros(t.shape[0])
    for _ in range(iters):
        f = -(tau1 / (tau1 + eps)) * np.logaddexp.reduce(log_k + g[None, :], axis=1)
        g = -(tau2 / (tau2 + eps)) * np.logaddexp.reduce(log_k + f[:, None], axis=0)
    return np.exp(log_k + f[:, None] + g[None, :])


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize(
    ("eps", "tau1", "tau2", "eps_c"),
    [(1.0, 1.0, 100.0, 0.1), (1.0, 1.0, 100.0, 0.05), (0.5, 2.0, 10.0, 0.2), (1.0, 0.3, 5.0, 0.1)],
)
@pytest.mark.parametrize("solver", ["sinkhorn", "log"])
def test_plan_matches_reference(
    seed: int, eps: float, tau1: float, tau2: float, eps_c: float, solver: str
) -> None:
    rng = np.random.default_rng(seed)
    source = rng.normal(size=(13, 6))
    target = rng.normal(size=(5, 6))
    kw = dict(eps=eps, tau1=tau1, tau2=tau2, eps_c=eps_c)
    plan = _uot_plan(source, target, solver=solver, tol=1e-12, **kw)
    ref = _reference_plan(source, target, **kw)
    np.testing.assert_allclose(plan, ref, rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(_uot_scores(source, target, **kw), ref.sum(axis=1), rtol=1e-6)


def test_paper_defaults_match_reference() -> None:
    rng = np.random.default_rng(3)
    source = rng.normal(size=(20, 8)) + 1.0
    target = rng.normal(size=(4, 8)) + 1.0
    scores = _uot_scores(source, target)  # eps=1, tau1=1, tau2=100, eps_c=0.01
    ref = _reference_plan(source, target, eps=1.0, tau1=1.0, tau2=100.0, eps_c=0.01)
    np.testing.assert_allclose(scores, ref.sum(axis=1), rtol=1e-6)


def test_large_tau2_covers_every_target_unit() -> None:
    rng = np.random.default_rng(0)
    source = rng.normal(size=(30, 8))
    target = rng.normal(size=(6, 8))
    plan = _uot_plan(source, target, tau1=1.0, tau2=1e4, eps_c=0.1)
    np.testing.assert_allclose(plan.sum(axis=0), np.ones(6), atol=2e-3)
    # The relaxed source marginal is far from the unit weights: 6 units of mass over 30 rows.
    assert plan.sum(axis=1).max() - plan.sum(axis=1).min() > 0.05
    loose = _uot_plan(source, target, tau1=1.0, tau2=1.0, eps_c=0.1)
    assert np.abs(loose.sum(axis=0) - 1).max() > np.abs(plan.sum(axis=0) - 1).max()


def test_ranking_puts_units_near_targets_first() -> None:
    rng = np.random.default_rng(1)
    dim, num_target = 32, 5
    target = rng.normal(size=(num_target, dim))
    near_ids = np.array([3, 11, 17, 24, 38, 40, 52])
    source = rng.normal(size=(60, dim))
    for n, idx in enumerate(near_ids):
        source[idx] = target[n % num_target] + 0.05 * rng.normal(size=dim)
    for eps_c in (0.1, 0.01):
        top = select(_uot_scores(source, target, eps_c=eps_c), len(near_ids))
        assert set(top.tolist()) == set(near_ids.tolist())


@pytest.mark.parametrize("eps_c", [1e-3, 1e-4])
def test_small_eps_c_stays_finite_and_matches_log_reference(eps_c: float) -> None:
    rng = np.random.default_rng(2)
    source = rng.normal(size=(15, 6))
    target = rng.normal(size=(4, 6))
    assert cosine_cost(source, target, eps_c=eps_c).max() > 300  # exp(-C) underflows here
    scores = _uot_scores(source, target, eps_c=eps_c, tol=1e-12)
    assert np.all(np.isfinite(scores)) and np.all(scores >= 0) and scores.max() > 0
    ref = _reference_plan_log(source, target, eps=1.0, tau1=1.0, tau2=100.0, eps_c=eps_c)
    np.testing.assert_allclose(scores, ref.sum(axis=1), rtol=1e-6, atol=1e-300)


def test_plain_pot_solver_failure_raises_runtime_error() -> None:
    rng = np.random.default_rng(2)
    source = rng.normal(size=(15, 6))
    target = rng.normal(size=(4, 6))
    with pytest.raises(RuntimeError, match=r"eps=1.0, tau1=1.0, tau2=100.0, eps_c=0.0001"):
        _uot_scores(source, target, eps_c=1e-4, solver="sinkhorn")


def test_non_convergence_raises_runtime_error() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(RuntimeError, match="no convergence.*eps=1.0, tau1=1.0"):
        _uot_scores(rng.normal(size=(10, 4)), rng.normal(size=(3, 4)), max_iter=2)
    with pytest.raises(RuntimeError, match="no convergence"):
        _uot_scores(rng.normal(size=(10, 4)), rng.normal(size=(3, 4)), max_iter=2, solver="log")


@pytest.mark.parametrize("name", ["eps", "tau1", "tau2", "eps_c"])
@pytest.mark.parametrize("value", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_parameters_raise(name: str, value: float) -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=name):
        _uot_scores(rng.normal(size=(4, 3)), rng.normal(size=(2, 3)), **{name: value})


@pytest.mark.parametrize(
    ("source", "target", "match"),
    [
        (np.ones((4, 3)), np.ones((2, 5)), "same feature dim"),
        (np.ones((0, 3)), np.ones((2, 3)), "source_means"),
        (np.ones((4, 3)), np.ones((0, 3)), "target_means"),
        (np.ones(3), np.ones((2, 3)), "source_means"),
        (np.array([[1.0, np.nan], [1.0, 0.0]]), np.ones((2, 2)), "source_means.*NaN"),
        (np.ones((2, 2)), np.array([[np.inf, 0.0]]), "target_means.*NaN"),
        (np.zeros((2, 2)), np.ones((2, 2)), "non-zero L2 norm"),
    ],
)
def test_bad_inputs_raise(source: np.ndarray, target: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _uot_scores(source, target)


def test_unknown_solver_raises() -> None:
    with pytest.raises(ValueError, match="solver"):
        _uot_scores(np.ones((2, 2)), np.ones((2, 2)), solver="newton")  # type: ignore[arg-type]


def test_select_descending_with_stable_ties() -> None:
    scores = np.array([0.1, 0.5, 0.3, 0.5, 0.0])
    np.testing.assert_array_equal(select(scores, 3), [1, 3, 2])
    np.testing.assert_array_equal(select(scores, 5), [1, 3, 2, 0, 4])
    assert select(scores, 1).dtype == np.int64


@pytest.mark.parametrize("k", [0, -1, 6])
def test_select_k_out_of_range(k: int) -> None:
    with pytest.raises(ValueError, match="k must be in"):
        select(np.arange(5.0), k)


def test_select_rejects_nan_and_2d() -> None:
    with pytest.raises(ValueError, match="NaN"):
        select(np.array([1.0, np.nan]), 1)
    with pytest.raises(ValueError, match="shape"):
        select(np.ones((2, 2)), 1)


def test_l2_cost_matches_scaling_iterations_on_euclidean_distances() -> None:
    """Table 4's UOT-l2: C_ij = ||b_j - a_i||_2 / eps_c on the unnormalised means."""
    rng = np.random.default_rng(5)
    source, target = rng.normal(size=(7, 4)), rng.normal(size=(3, 4))
    eps, tau1, tau2, eps_c = 1.0, 1.0, 100.0, 2.0
    cost = np.array([[np.sqrt(((s - t) ** 2).sum()) / eps_c for t in target] for s in source])
    kernel = np.exp(-cost / eps)
    u, v = np.ones(7), np.ones(3)
    for _ in range(5000):
        u = (1.0 / (kernel @ v)) ** (tau1 / (tau1 + eps))
        v = (1.0 / (kernel.T @ u)) ** (tau2 / (tau2 + eps))
    expected = u[:, None] * kernel * v[None, :]
    got = _uot_plan(source, target, eps=eps, tau1=tau1, tau2=tau2, eps_c=eps_c, cost="l2")
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    scores = _uot_scores(source, target, eps=eps, tau1=tau1, tau2=tau2, eps_c=eps_c, cost="l2")
    np.testing.assert_allclose(scores, expected.sum(axis=1), rtol=1e-6)
    # scaling the features changes the l2 plan but not the cosine one
    assert not np.allclose(
        _uot_scores(3 * source, target, eps_c=eps_c, cost="l2"),
        _uot_scores(source, target, eps_c=eps_c, cost="l2"),
    )
    with pytest.raises(ValueError, match="cost must be 'cosine' or 'l2'"):
        _uot_plan(source, target, cost="manhattan")
