"""Index splits of a train part: validation, label budget, unlabeled rest, subsampling, long tail.

All functions are pure: targets in, index arrays out, determined by ``seed``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SplitError", "Splits", "long_tail_counts", "make_splits"]


class SplitError(ValueError):
    """A split request that the data cannot satisfy (names the field, value and what is allowed)."""


@dataclass(frozen=True)
class Splits:
    """Indices into the train part.

    Attributes:
        labeled: indices used with their labels.
        unlabeled: the rest of the pool (labels must not be used).
        val: validation indices (model selection only).
    """

    labeled: np.ndarray
    unlabeled: np.ndarray
    val: np.ndarray


def long_tail_counts(max_count: int, num_classes: int, ratio: float) -> np.ndarray:
    """Pareto/exponential long-tail profile n_c = n_max · ratio^(−c/(C−1)), so n_0/n_{C−1} = ratio."""
    if ratio < 1:
        raise SplitError(f"long_tail_ratio: {ratio} — must be >= 1 (max/min class ratio)")
    if num_classes == 1:
        return np.array([max_count])
    c = np.arange(num_classes)
    return np.maximum(1, np.floor(max_count * ratio ** (-c / (num_classes - 1)))).astype(int)


def _per_class(targets: np.ndarray, idx: np.ndarray) -> dict[int, np.ndarray]:
    return {int(c): idx[targets[idx] == c] for c in np.unique(targets[idx])}


def make_splits(
    targets: np.ndarray,
    *,
    seed: int,
    val_fraction: float = 0.1,
    labels_per_class: int | None = None,
    num_labels: int | None = None,
    subsample: float | None = None,
    long_tail_ratio: float | None = None,
) -> Splits:
    """Split a train part's indices.

    Order: a stratified validation split of ``val_fraction`` per class is carved first; the
    rest is the pool; ``subsample`` keeps that fraction of each class of the pool; a long-tail
    profile (``long_tail_ratio`` = max/min class size, class order permuted by ``seed``) is
    applied next; finally a balanced label budget (``labels_per_class`` or ``num_labels``, which
    must divide evenly across classes) is drawn and the rest of the pool is unlabeled. Without
    a budget every pool index is labeled and ``unlabeled`` is empty.

    Args:
        targets: int array with shape (N,), the train part's labels.
        seed: controls every random choice.

    Raises:
        SplitError: naming the field, the value and what the data allows.
    """
    targets = np.asarray(targets)
    rng = np.random.default_rng(seed)
    classes = np.unique(targets)
    n_cls = len(classes)
    if not 0.0 <= val_fraction < 1.0:
        raise SplitError(f"val_fraction: {val_fraction} — must be in [0, 1)")
    if labels_per_class is not None and num_labels is not None:
        raise SplitError("labels_per_class and num_labels: give at most one of them")
    if num_labels is not None:
        if num_labels <= 0 or num_labels % n_cls:
            raise SplitError(
                f"num_labels: {num_labels} — must be a positive multiple of the "
                f"{n_cls} classes for a balanced budget"
            )
        labels_per_class = num_labels // n_cls
    if labels_per_class is not None and labels_per_class <= 0:
        raise SplitError(f"labels_per_class: {labels_per_class} — must be >= 1")
    if subsample is not None and not 0.0 < subsample <= 1.0:
        raise SplitError(f"subsample: {subsample} — must be in (0, 1]")

    val, pool = [], []
    for c in classes:
        idx = rng.permutation(np.flatnonzero(targets == c))
        n_val = int(round(val_fraction * len(idx)))
        if val_fraction > 0 and len(idx) > 1:
            n_val = max(1, min(n_val, len(idx) - 1))
        val.append(idx[:n_val])
        pool.append(idx[n_val:])
    if subsample is not None:
        pool = [p[: max(1, int(round(subsample * len(p))))] for p in pool]
    if long_tail_ratio is not None:
        order = rng.permutation(n_cls)
        counts = long_tail_counts(min(len(p) for p in pool), n_cls, long_tail_ratio)
        pool = [pool[k][: counts[rank]] for rank, k in enumerate(order)]

    labeled, unlabeled = [], []
    for c, p in zip(classes, pool, strict=True):
        if labels_per_class is None:
            labeled.append(p)
            continue
        if labels_per_class > len(p):
            total = labels_per_class * n_cls
            raise SplitError(
                f"label budget: {labels_per_class} per class ({total} in all) — class {c} "
                f"has only {len(p)} training images after the validation split; "
                f"allowed: at most {min(len(q) for q in pool)} per class"
            )
        labeled.append(p[:labels_per_class])
        unlabeled.append(p[labels_per_class:])

    def cat(parts: list[np.ndarray]) -> np.ndarray:
        return np.sort(np.concatenate(parts)) if parts else np.empty(0, dtype=np.int64)

    return Splits(labeled=cat(labeled), unlabeled=cat(unlabeled), val=cat(val))
