"""Cross-entropy against soft targets (Core-tuning's ``L_ce^m`` on mixed samples, §4.4)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def soft_cross_entropy(logits: Tensor, soft_targets: Tensor) -> Tensor:
    """Mean over the batch of ``-sum_c q_c log softmax(logits)_c``.

    This is the second term of Core-tuning's ``L_ce^m`` (§4.4), applied to the mixed hard
    negatives ``B^-`` with their soft labels; with one-hot targets it equals the usual
    cross-entropy.

    Args:
        logits: Tensor with shape (batch_size, num_classes).
        soft_targets: Tensor with shape (batch_size, num_classes); each row a probability
            vector (non-negative, summing to 1); not differentiated through if it does not
            require grad.

    Returns:
        Scalar Tensor; ``logits.sum() * 0`` for an empty batch (e.g. when no mixed sample
        could be generated).
    """
    assert logits.ndim == 2, (
        f"logits must have shape (batch_size, num_classes) but found {tuple(logits.shape)}"
    )
    assert logits.shape == soft_targets.shape, (
        f"logits and soft_targets must have same shape but found {tuple(logits.shape)} "
        f"and {tuple(soft_targets.shape)}"
    )
    if logits.shape[0] == 0:
        return logits.sum() * 0
    log_q = F.log_softmax(logits, dim=1)
    return -(soft_targets.to(log_q.dtype) * log_q).sum(dim=1).mean()
