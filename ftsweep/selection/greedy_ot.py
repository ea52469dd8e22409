"""Greedy-OT baseline: EMD domain similarity of Cui et al. (CVPR 2018), as used by the UOT paper.

Cui et al. ("Large Scale Fine-Grained Categorization and Domain-Specific Transfer Learning")
measure the similarity of a source domain S to a target domain T as

    sim(S, T) = exp(-gamma * EMD(S, T)),   gamma = 0.01,

where EMD is the exact optimal-transport cost between the class means of S and of T, each class
weighted by its share of the images, with the l2 distance between means as ground cost.

The UOT paper (Sec. 4.1, Sec. 4.4 / Table 4) uses this as its "Greedy-OT" baseline "with the same
setting as in the original paper where C_ij is the l2 distance" and ranks pre-training classes by
"EMD similarity", taking the top-k (k = 100). :func:`greedy_ot_scores` therefore returns, for each
source unit i, ``sim({i}, T)``: the EMD between the one-point measure at that unit's mean and the
target measure, computed with ``ot.emd2``. Table 4 also reports a cosine-distance variant
(GOT-cos), available as ``metric="cosine"``.

:func:`greedy_ot_select` with ``strategy="ranked"`` (the default) returns that top-k;
``strategy="forward"`` instead grows the selected set one unit at a time, each time adding the
unit that maximises ``sim(selected + {unit}, T)`` (greedy forward selection; k * num_units EMD
solves, so meant for small problems).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from ftsweep.selection.ranking import select

__all__ = ["emd_similarity", "greedy_ot_scores", "greedy_ot_select", "pairwise_cost"]

Metric = Literal["l2", "cosine"]
Strategy = Literal["ranked", "forward"]


def _check_means(name: str, means: np.ndarray) -> np.ndarray:
    arr = np.asarray(means)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} must have non-empty shape (num_units, dim), got {arr.shape}")
    arr = arr.astype(np.float64, copy=False)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, found NaN/inf entries")
    return arr


def _check_weights(name: str, weights: np.ndarray | None, num: int) -> np.ndarray:
    if weights is None:
        return np.full(num, 1.0 / num)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (num,):
        raise ValueError(f"{name} must have shape ({num},), got {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError(f"{name} must be finite, non-negative and not all zero")
    return w / w.sum()


def pairwise_cost(source_means: np.ndarray, target_means: np.ndarray, *, metric: Metric = "l2") -> np.ndarray:
    """Ground cost between unit means.

    Args:
        source_means: Array with shape (num_source_units, dim).
        target_means: Array with shape (num_target_units, dim).
        metric: ``"l2"`` (Euclidean distance, Cui et al.) or ``"cosine"`` (1 - cosine).

    Returns:
        float64 array with shape (num_source_units, num_target_units).

    Raises:
        ValueError: On empty/non-finite inputs, mismatched dims, zero rows with
            ``metric="cosine"`` or an unknown metric.
    """
    src = _check_means("source_means", source_means)
    tgt = _check_means("target_means", target_means)
    if src.shape[1] != tgt.shape[1]:
        raise ValueError(
            "source_means and target_means must have the same feature dim but found "
            f"{src.shape[1]} and {tgt.shape[1]}"
        )
    if metric == "l2":
        import ot  # lazy: keeps `import trainables` light

        return ot.dist(src, tgt, metric="euclidean")
    if metric == "cosine":
        ns = np.linalg.norm(src, axis=1, keepdims=True)
        nt = np.linalg.norm(tgt, axis=1, keepdims=True)
        if np.any(ns == 0) or np.any(nt == 0):
            raise ValueError("metric='cosine' needs rows with non-zero L2 norm")
        return 1.0 - np.clip((src / ns) @ (tgt / nt).T, -1.0, 1.0)
    raise ValueError(f"metric must be 'l2' or 'cosine', got {metric!r}")


def emd_similarity(
    cost: np.ndarray,
    source_weights: np.ndarray | None = None,
    target_weights: np.ndarray | None = None,
    *,
    gamma: float = 0.01,
) -> float:
    """Domain similarity ``exp(-gamma * EMD)`` of Cui et al. between two weighted unit sets.

    Args:
        cost: Array with shape (num_source_units, num_target_units), the ground cost.
        source_weights: Array with shape (num_source_units,) (e.g. image counts), normalised
            to sum 1; uniform if None.
        target_weights: Array with shape (num_target_units,), normalised likewise.
        gamma: Similarity temperature > 0 (0.01 in Cui et al.).

    Returns:
        The similarity in (0, 1].
    """
    if not (math.isfinite(gamma) and gamma > 0):
        raise ValueError(f"gamma must be a finite number > 0, got {gamma!r}")
    c = np.asarray(cost, dtype=np.float64)
    a = _check_weights("source_weights", source_weights, c.shape[0])
    b = _check_weights("target_weights", target_weights, c.shape[1])
    import ot  # lazy: keeps `import trainables` light

    return math.exp(-gamma * float(ot.emd2(a, b, c)))


def greedy_ot_scores(
    source_means: np.ndarray,
    target_means: np.ndarray,
    *,
    metric: Metric = "l2",
    target_weights: np.ndarray | None = None,
    gamma: float = 0.01,
) -> np.ndarray:
    """EMD similarity of each source unit, alone, to the target measure (Cui et al. 2018).

    Args:
        source_means: Array with shape (num_source_units, dim).
        target_means: Array with shape (num_target_units, dim).
        metric: Ground cost, ``"l2"`` (the paper's Greedy-OT) or ``"cosine"`` (GOT-cos).
        target_weights: Array with shape (num_target_units,), e.g. images per target class;
            uniform if None.
        gamma: Similarity temperature > 0.

    Returns:
        float64 array with shape (num_source_units,), ``exp(-gamma * EMD(delta_i, T))``.
    """
    cost = pairwise_cost(source_means, target_means, metric=metric)
    return np.array(
        [emd_similarity(cost[i : i + 1], None, target_weights, gamma=gamma) for i in range(cost.shape[0])]
    )


def greedy_ot_select(
    source_means: np.ndarray,
    target_means: np.ndarray,
    k: int,
    *,
    metric: Metric = "l2",
    strategy: Strategy = "ranked",
    source_weights: np.ndarray | None = None,
    target_weights: np.ndarray | None = None,
    gamma: float = 0.01,
) -> np.ndarray:
    """Select k source units with the Greedy-OT baseline.

    Args:
        source_means: Array with shape (num_source_units, dim).
        target_means: Array with shape (num_target_units, dim).
        k: Number of units to select, 1 <= k <= num_source_units.
        metric: ``"l2"`` or ``"cosine"``.
        strategy: ``"ranked"``: top-k of :func:`greedy_ot_scores` (the UOT paper's use);
            ``"forward"``: greedy forward selection maximising the similarity of the selected
            set (weighted by ``source_weights``) to the target.
        source_weights: Array with shape (num_source_units,), e.g. images per unit; only used
            by ``"forward"``; uniform if None.
        target_weights: Array with shape (num_target_units,); uniform if None.
        gamma: Similarity temperature > 0.

    Returns:
        int64 array with shape (k,), unit indices in selection order (ties: lower index first).
    """
    if strategy == "ranked":
        scores = greedy_ot_scores(
            source_means, target_means, metric=metric, target_weights=target_weights, gamma=gamma
        )
        return select(scores, k)
    if strategy != "forward":
        raise ValueError(f"strategy must be 'ranked' or 'forward', got {strategy!r}")
    cost = pairwise_cost(source_means, target_means, metric=metric)
    num = cost.shape[0]
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= num:
        raise ValueError(f"k must be an integer in [1, num_units={num}], got {k!r}")
    weights = _check_weights("source_weights", source_weights, num)
    if np.any(weights == 0):
        raise ValueError("source_weights must be > 0 for strategy='forward'")
    chosen: list[int] = []
    remaining = list(range(num))
    for _ in range(k):
        best, best_sim = remaining[0], -math.inf
        for cand in remaining:
            rows = [*chosen, cand]
            sim = emd_similarity(cost[rows], weights[rows], target_weights, gamma=gamma)
            if sim > best_sim:
                best, best_sim = cand, sim
        chosen.append(best)
        remaining.remove(best)
    return np.asarray(chosen, dtype=np.int64)
