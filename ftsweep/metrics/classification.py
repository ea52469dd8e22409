"""Classification accuracies: top-1, top-k and mean per-class accuracy.

All functions accept numpy arrays or torch tensors and return Python floats. The two private
helpers at the top (array conversion and argument checks) are shared by the other metric
modules of this package.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

ArrayLike = np.ndarray | torch.Tensor


def _to_numpy(x: Any, name: str, *, ndim: int | None = None) -> np.ndarray:
    """Convert a numpy array, torch tensor or sequence to a non-empty numpy array.

    Args:
        x: the input.
        name: argument name used in error messages.
        ndim: required number of dimensions, or None for any.

    Raises:
        ValueError: if ``x`` is empty or has the wrong number of dimensions.
    """
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        if x.dtype in (torch.bfloat16, torch.float16):
            x = x.float()  # numpy has no bfloat16; float16 sums would lose precision
        x = x.numpy()
    arr = np.asarray(x)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-d array but has shape {arr.shape} ({arr.ndim} dimensions)")
    if arr.size == 0:
        raise ValueError(f"{name} must be non-empty but has shape {arr.shape}")
    return arr


def _check_same_length(a: np.ndarray, a_name: str, b: np.ndarray, b_name: str) -> None:
    """Raise ValueError unless ``a`` and ``b`` have the same first dimension."""
    if a.shape[0] != b.shape[0]:
        raise ValueError(
            f"{a_name} and {b_name} must have the same length but found "
            f"{a_name}: {a.shape[0]} and {b_name}: {b.shape[0]}"
        )


def top1_accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Fraction of samples whose predicted label equals the true label.

    Args:
        y_true: labels with shape (num_samples,).
        y_pred: predicted labels with shape (num_samples,).

    Returns:
        Accuracy in [0, 1].
    """
    t = _to_numpy(y_true, "y_true", ndim=1)
    p = _to_numpy(y_pred, "y_pred", ndim=1)
    _check_same_length(t, "y_true", p, "y_pred")
    return float(np.mean(t == p))


def mean_per_class_accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean over the classes present in ``y_true`` of the per-class recall.

    ``(1 / |C|) * sum_{c in C} |{i : y_true_i = c, y_pred_i = c}| / |{i : y_true_i = c}|`` with
    ``C`` the set of labels that occur in ``y_true`` (labels only predicted are ignored).

    Args:
        y_true: labels with shape (num_samples,).
        y_pred: predicted labels with shape (num_samples,).

    Returns:
        Mean per-class accuracy in [0, 1].
    """
    t = _to_numpy(y_true, "y_true", ndim=1)
    p = _to_numpy(y_pred, "y_pred", ndim=1)
    _check_same_length(t, "y_true", p, "y_pred")
    classes, class_index = np.unique(t, return_inverse=True)
    correct = np.bincount(class_index, weights=(t == p).astype(np.float64), minlength=len(classes))
    counts = np.bincount(class_index, minlength=len(classes))
    return float(np.mean(correct / counts))


def topk_accuracy(logits: ArrayLike, y_true: ArrayLike, k: int) -> float:
    """Fraction of samples whose true label is among the ``k`` highest-scoring classes.

    Ties at the k-th score are broken by ``np.argpartition`` (i.e. arbitrarily).

    Args:
        logits: class scores with shape (num_samples, num_classes).
        y_true: integer labels in [0, num_classes) with shape (num_samples,).
        k: number of top classes counted as correct, 1 <= k <= num_classes.

    Returns:
        Top-k accuracy in [0, 1].
    """
    scores = _to_numpy(logits, "logits", ndim=2)
    t = _to_numpy(y_true, "y_true", ndim=1)
    _check_same_length(scores, "logits", t, "y_true")
    num_classes = scores.shape[1]
    if not 1 <= k <= num_classes:
        raise ValueError(f"k must be in [1, num_classes={num_classes}] but is {k}")
    if not np.issubdtype(t.dtype, np.integer) or t.min() < 0 or t.max() >= num_classes:
        raise ValueError(
            f"y_true must hold integer labels in [0, {num_classes}) but has dtype {t.dtype} "
            f"and range [{t.min()}, {t.max()}]"
        )
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    return float(np.mean(np.any(top == t[:, None], axis=1)))
