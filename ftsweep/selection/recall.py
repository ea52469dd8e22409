"""Recall rate of a selection (Sec. 4.4, Table 4 and Fig. 4a of the UOT paper)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

__all__ = ["recall_rate"]


def recall_rate(selected_units: Iterable[int], true_units: Iterable[int]) -> float:
    """Fraction of the true matching source units that are among the selected ones.

    On CUB this is (number of ImageNet bird classes in the top-100) / 59 (Table 4).

    Args:
        selected_units: Array-like with shape (k,), distinct selected unit indices (top-k).
        true_units: Array-like with shape (num_true,), distinct ground-truth matching units.

    Returns:
        ``|selected & true| / |true|`` in [0, 1].

    Raises:
        ValueError: If true_units is empty or either input repeats a unit.
    """
    sel = np.asarray(list(selected_units), dtype=np.int64).ravel()
    true = np.asarray(list(true_units), dtype=np.int64).ravel()
    if true.size == 0:
        raise ValueError("true_units must not be empty")
    for name, arr in (("selected_units", sel), ("true_units", true)):
        if np.unique(arr).size != arr.size:
            raise ValueError(f"{name} must not repeat a unit")
    return float(np.intersect1d(sel, true).size / true.size)
