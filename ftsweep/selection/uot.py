"""UOT selection: rank pre-training units by unbalanced optimal transport to the target set.

Implements Eq. 5 of "Improved Fine-Tuning by Better Leveraging Pre-Training Data"
(``/work/shared/papers/uot_selection.md``, Sec. 3.2):

    min_{P >= 0}  <P, C> - eps * h(P) + tau1 * KL(P 1, w_g) + tau2 * KL(P^T 1, w_f)

with rows = pre-training (source) units (classes or k-means clusters), columns = target classes,
unit weights ``w_g = 1`` and ``w_f = 1`` on both sides, and the cosine cost of Sec. 4.1
``C_ij = (1 - cos(b_i, a_j)) / eps_c``. A small ``tau1`` relaxes the source marginal and a large
``tau2`` forces every target class to be covered, so the source marginal ``P 1`` ranks the
source units by similarity to the target set; the top-k are selected.

The plan is computed by the generalised Sinkhorn iteration (Chizat et al. 2016; Peyre & Cuturi
2019, Sec. 10.2):

    u = (a / K v)^(tau1 / (tau1 + eps)),   v = (b / K^T u)^(tau2 / (tau2 + eps)),
    K = exp(-C / eps),   P = diag(u) K diag(v),

solved with POT's ``ot.unbalanced.sinkhorn_unbalanced`` (``reg_m=(tau1, tau2)``,
``reg_type="kl"``; with a = b = 1 the KL reference measure is the all-ones matrix, so
``eps * KL(P, 1) = -eps * h(P) + const`` and POT's update is exactly the one above), or, when
``exp(-C / eps)`` would underflow, by a log-domain version of the same iteration (POT 0.9.x has
no log-domain unbalanced Sinkhorn; its ``sinkhorn_stabilized`` absorbs only the global maximum
and stops at iteration 0 as soon as one row of K underflows to zero).

Scaling identity used for conditioning: replacing C by C - c for a scalar c multiplies the
optimal plan by exp(c / (eps + tau1 + tau2)) (from the first-order conditions
P_ij = exp((f_i + g_j - C_ij) / eps), f = -tau1 log(P 1 / a), g = -tau2 log(P^T 1 / b)).
We solve with ``C - min(C)`` and rescale, which changes nothing but the floating-point range.
"""

from __future__ import annotations

import math
import warnings
from typing import Literal

import numpy as np

from ftsweep.selection.greedy_ot import pairwise_cost

__all__ = ["cosine_cost", "uot_plan", "uot_scores"]

Solver = Literal["auto", "sinkhorn", "log"]

# Above this dynamic range of C / eps (after the shift by min(C)), exp(-C / eps) and the scaling
# vectors u, v (which grow like exp(range * tau / (tau + eps))) approach the float64 limits, so
# ``solver="auto"`` switches to the log-domain iteration.
_MAX_EXP_RANGE = 300.0


def _check_positive(name: str, value: float) -> None:
    if not (isinstance(value, int | float | np.floating | np.integer) and math.isfinite(value)):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")


def _check_means(name: str, means: np.ndarray) -> np.ndarray:
    arr = np.asarray(means)
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape (num_units, dim) but found shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} must be non-empty with shape (num_units, dim), got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"{name} must be a real-valued array, got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    if not np.all(np.isfinite(arr)):
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        raise ValueError(f"{name} must be finite, found {bad} NaN/inf entries")
    norms = np.linalg.norm(arr, axis=1)
    if np.any(norms == 0):
        rows = np.flatnonzero(norms == 0)[:5].tolist()
        raise ValueError(f"{name} rows must have non-zero L2 norm to be normalised; zero rows: {rows}")
    return arr


def cosine_cost(source_means: np.ndarray, target_means: np.ndarray, *, eps_c: float) -> np.ndarray:
    """Cosine cost matrix of Sec. 4.1, ``C_ij = (1 - cos(b_i, a_j)) / eps_c``.

    Args:
        source_means: Array with shape (num_source_units, dim): pre-training unit means b_i.
        target_means: Array with shape (num_target_units, dim): target class means a_j.
        eps_c: Cost temperature > 0 (0.01 in the paper's text, 0.1 in its public code).

    Returns:
        float64 array with shape (num_source_units, num_target_units), entries in
        [0, 2 / eps_c].

    Raises:
        ValueError: On empty, non-finite, zero-norm or dimension-mismatched inputs, or
            ``eps_c <= 0``.
    """
    _check_positive("eps_c", eps_c)
    src = _check_means("source_means", source_means)
    tgt = _check_means("target_means", target_means)
    if src.shape[1] != tgt.shape[1]:
        raise ValueError(
            "source_means and target_means must have the same feature dim but found "
            f"{src.shape[1]} and {tgt.shape[1]}"
        )
    src = src / np.linalg.norm(src, axis=1, keepdims=True)
    tgt = tgt / np.linalg.norm(tgt, axis=1, keepdims=True)
    cos = np.clip(src @ tgt.T, -1.0, 1.0)
    return (1.0 - cos) / eps_c


def _solver_error(msg: str, eps: float, tau1: float, tau2: float, eps_c: float) -> RuntimeError:
    return RuntimeError(
        f"UOT solver failed ({msg}) for eps={eps}, tau1={tau1}, tau2={tau2}, eps_c={eps_c}; "
        "try a larger eps or eps_c, more iterations (max_iter) or a looser tol"
    )


def _sinkhorn_pot(
    cost: np.ndarray, eps: float, tau1: float, tau2: float, max_iter: int, tol: float
) -> tuple[np.ndarray, bool, str]:
    """POT's generalised Sinkhorn on unit weights. Returns (plan, converged, message)."""
    import ot  # lazy: keeps `import trainables` light

    a = np.ones(cost.shape[0], dtype=np.float64)
    b = np.ones(cost.shape[1], dtype=np.float64)
    with warnings.catch_warnings(record=True) as caught, np.errstate(all="ignore"):
        warnings.simplefilter("always")
        plan, log = ot.unbalanced.sinkhorn_unbalanced(
            a,
            b,
            cost,
            reg=eps,
            reg_m=(tau1, tau2),
            method="sinkhorn",
            reg_type="kl",
            numItermax=max_iter,
            stopThr=tol,
            log=True,
        )
    messages = [str(w.message) for w in caught]
    errs = log["err"]
    if any("Numerical errors" in m for m in messages):
        return plan, False, "numerical error in POT: " + "; ".join(messages)
    if not errs or not errs[-1] < tol:
        last = errs[-1] if errs else float("nan")
        return plan, False, f"no convergence after {len(errs)} iterations, last error {last:.3g}"
    return plan, True, ""


def _sinkhorn_log(
    cost: np.ndarray, eps: float, tau1: float, tau2: float, max_iter: int, tol: float
) -> tuple[np.ndarray, bool, str]:
    """Log-domain generalised Sinkhorn on unit weights (log a = log b = 0).

    f = log u, g = log v; f = -fi1 * LSE_j(g_j - C_ij / eps), g = -fi2 * LSE_i(f_i - C_ij / eps),
    fi = tau / (tau + eps). Stops when the largest change of f and g is below ``tol`` (the
    relative change of u and v, as in POT's criterion).
    """
    from scipy.special import logsumexp

    log_k = -cost / eps
    fi1 = tau1 / (tau1 + eps)
    fi2 = tau2 / (tau2 + eps)
    f = np.zeros(cost.shape[0])
    g = np.zeros(cost.shape[1])
    err = math.inf
    for _ in range(max_iter):
        f_new = -fi1 * logsumexp(log_k + g[None, :], axis=1)
        g_new = -fi2 * logsumexp(log_k + f_new[:, None], axis=0)
        err = max(float(np.max(np.abs(f_new - f))), float(np.max(np.abs(g_new - g))))
        f, g = f_new, g_new
        if not math.isfinite(err):
            break
        if err < tol:
            return np.exp(log_k + f[:, None] + g[None, :]), True, ""
    plan = np.exp(log_k + f[:, None] + g[None, :])
    return plan, False, f"no convergence after {max_iter} iterations, last error {err:.3g}"


def uot_plan(
    source_means: np.ndarray,
    target_means: np.ndarray,
    *,
    eps: float,
    tau1: float,
    tau2: float,
    eps_c: float,
    cost: str,
    solver: Solver = "auto",
    max_iter: int = 10_000,
    tol: float = 1e-9,
) -> np.ndarray:
    """Transport plan P of the UOT problem of Eq. 5 between source and target unit means.

    The paper's values of ``eps``, ``tau1``, ``tau2``, ``eps_c`` and ``cost`` are the defaults of
    :class:`ftsweep.methods.uot_selection.UotSelectionConfig`, their one home.

    Args:
        source_means: Array with shape (num_source_units, dim): mean feature of each
            pre-training class or cluster (b_j in the paper; need not be normalised).
        target_means: Array with shape (num_target_units, dim): mean feature of each target
            class (a_i in the paper; need not be normalised).
        eps: Entropic regularisation epsilon > 0 (1.0 in Sec. 4.1).
        tau1: KL weight > 0 on the source marginal P 1 (1.0 in Sec. 4.1; small relaxes it).
        tau2: KL weight > 0 on the target marginal P^T 1 (100.0 in Sec. 4.1; large covers
            every target class).
        eps_c: Cost temperature > 0 of ``C = (1 - cos) / eps_c`` (0.01 in the paper's text,
            0.1 in its public code).
        cost: ``"cosine"`` (Sec. 4.1) or ``"l2"`` — the Euclidean distance of the
            unnormalised means, ``C = ||b_j - a_i|| / eps_c``, the UOT-l2 row of Table 4.
        solver: ``"sinkhorn"`` (POT's generalised Sinkhorn), ``"log"`` (log-domain iteration)
            or ``"auto"``: POT unless ``(max C - min C) / eps`` exceeds 300, then log-domain.
        max_iter: Maximum number of Sinkhorn iterations.
        tol: Stopping threshold on the relative change of the scaling vectors u and v.

    Returns:
        float64 array with shape (num_source_units, num_target_units), the plan P >= 0.

    Raises:
        ValueError: On invalid parameters or inputs (non-positive eps/tau1/tau2/eps_c,
            empty, NaN or zero-norm means, mismatched feature dims, unknown solver).
        RuntimeError: If the solver does not converge within ``max_iter`` iterations or
            returns NaN/inf; the message names eps, tau1, tau2 and eps_c.
    """
    _check_positive("eps", eps)
    _check_positive("tau1", tau1)
    _check_positive("tau2", tau2)
    if solver not in ("auto", "sinkhorn", "log"):
        raise ValueError(f"solver must be one of 'auto', 'sinkhorn', 'log', got {solver!r}")
    if not (isinstance(max_iter, int | np.integer) and max_iter >= 1):
        raise ValueError(f"max_iter must be an integer >= 1, got {max_iter!r}")
    _check_positive("tol", tol)
    if cost == "cosine":
        cost_matrix = cosine_cost(source_means, target_means, eps_c=eps_c)
    elif cost == "l2":
        _check_positive("eps_c", eps_c)
        cost_matrix = pairwise_cost(source_means, target_means, metric="l2") / eps_c
    else:
        raise ValueError(f"cost must be 'cosine' or 'l2', got {cost!r}")

    shift = float(cost_matrix.min())
    shifted = cost_matrix - shift
    if solver == "auto":
        solver = "log" if float(shifted.max()) / eps > _MAX_EXP_RANGE else "sinkhorn"
    run = _sinkhorn_pot if solver == "sinkhorn" else _sinkhorn_log
    plan, converged, msg = run(shifted, float(eps), float(tau1), float(tau2), int(max_iter), tol)
    if not converged:
        raise _solver_error(msg, eps, tau1, tau2, eps_c)
    # Undo the shift of the cost: P(C) = P(C - shift) * exp(-shift / (eps + tau1 + tau2)).
    with np.errstate(all="ignore"):
        plan = plan * math.exp(-shift / (eps + tau1 + tau2))
    if not np.all(np.isfinite(plan)):
        raise _solver_error("plan contains NaN/inf", eps, tau1, tau2, eps_c)
    if not np.any(plan.sum(axis=1) > 0):
        raise _solver_error("plan underflowed to zero", eps, tau1, tau2, eps_c)
    return plan


def uot_scores(
    source_means: np.ndarray,
    target_means: np.ndarray,
    *,
    eps: float,
    tau1: float,
    tau2: float,
    eps_c: float,
    cost: str,
    solver: Solver = "auto",
    max_iter: int = 10_000,
    tol: float = 1e-9,
) -> np.ndarray:
    """UOT similarity of each pre-training unit to the target set: the source marginal P 1.

    Solves Eq. 5 (see :func:`uot_plan`, which documents every argument) and returns the row
    sums of the plan; a large ``[P 1]_j`` means unit j is similar to the target data (Sec. 3.2).

    Args:
        source_means: Array with shape (num_source_units, dim).
        target_means: Array with shape (num_target_units, dim).
        eps: Entropic regularisation epsilon > 0.
        tau1: KL weight > 0 on the source marginal.
        tau2: KL weight > 0 on the target marginal.
        eps_c: Cost temperature > 0.
        cost: ``"cosine"`` or ``"l2"`` ground cost.
        solver: ``"auto"``, ``"sinkhorn"`` or ``"log"``.
        max_iter: Maximum number of Sinkhorn iterations.
        tol: Stopping threshold.

    Returns:
        float64 array with shape (num_source_units,), one non-negative score per source unit.

    Raises:
        ValueError: On invalid parameters or inputs.
        RuntimeError: If the solver does not converge or returns NaN/inf.
    """
    plan = uot_plan(
        source_means,
        target_means,
        eps=eps,
        tau1=tau1,
        tau2=tau2,
        eps_c=eps_c,
        cost=cost,
        solver=solver,
        max_iter=max_iter,
        tol=tol,
    )
    return plan.sum(axis=1)
