"""Top-k selection of scored units, shared by UOT (:mod:`~ftsweep.selection.uot`) and Greedy-OT
(:mod:`~ftsweep.selection.greedy_ot`)."""

from __future__ import annotations

import numpy as np

__all__ = ["select"]


def select(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the top-k units by descending score; ties keep the lower index first.

    Args:
        scores: Array with shape (num_units,), e.g. from :func:`~ftsweep.selection.uot.uot_scores`.
        k: Number of units to select, 1 <= k <= num_units.

    Returns:
        int64 array with shape (k,), unit indices ordered from highest to lowest score.

    Raises:
        ValueError: If scores is not 1-D, contains NaN, or k is out of range.
    """
    arr = np.asarray(scores)
    if arr.ndim != 1:
        raise ValueError(f"scores must have shape (num_units,) but found shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"scores must be numeric, got dtype {arr.dtype}")
    if np.any(np.isnan(arr)):
        raise ValueError("scores must not contain NaN")
    if isinstance(k, bool) or not isinstance(k, int | np.integer):
        raise ValueError(f"k must be an integer, got {k!r}")
    if not 1 <= k <= arr.shape[0]:
        raise ValueError(f"k must be in [1, num_units={arr.shape[0]}], got {k}")
    order = np.argsort(-arr.astype(np.float64), kind="stable")
    return order[:k].astype(np.int64)
