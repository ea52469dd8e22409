"""Focal contrastive loss of Core-tuning (Zhang et al., 2021, §4.3, ``L_con^f``)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ftsweep.losses._contrastive import (
    Variant,
    build_positive_mask,
    check_features,
    check_variant,
    graph_zero,
    mean_over_valid,
)


class _ScaledGram(torch.autograd.Function):
    """``scale * v @ v.T`` with the symmetric backward ``scale * (G + G^T) @ v``.

    One matrix product in the backward pass where autograd's ``mm`` backward needs two (one per
    operand); the gram matrix of the contrastive set is the largest product of the loss.
    """

    @staticmethod
    def forward(ctx: Any, v: Tensor, scale: float) -> Tensor:
        ctx.save_for_backward(v)
        ctx.scale = scale
        return torch.mm(v, v.T).mul_(scale)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        (v,) = ctx.saved_tensors
        return torch.mm(grad + grad.T, v).mul_(ctx.scale), None


def _log_prob_over_others(features: Tensor, temperature: float) -> Tensor:
    """``log p_ij = s_ij - log sum_{k != i} exp(s_ik)`` with ``s = features @ features.T / tau``.

    Args:
        features: Tensor with shape (n, dim), n >= 2.
        temperature: tau > 0.

    Returns:
        Tensor with shape (n, n); the diagonal (``k = i``, never a term of the loss) is -inf and
        receives no gradient.
    """
    logits = _ScaledGram.apply(features, 1.0 / temperature)
    return logits.fill_diagonal_(float("-inf")).log_softmax(dim=1)


def focal_supcon_loss(
    features: Tensor,
    labels: Tensor | None,
    temperature: float,
    *,
    variant: Variant = "paper",
    positive_mask: Tensor | None = None,
) -> Tensor:
    """Focal supervised contrastive loss, Core-tuning §4.3 (the unnumbered ``L_con^f`` equation).

    With ``s_ij = v_i . v_j / tau``, ``A_i = {k != i}`` and
    ``p_ij = exp(s_ij) / sum_{k in A_i} exp(s_ik)``, each positive term of the supervised
    contrastive loss is weighted by ``(1 - p_ij)``; the weight is *not* detached, so it is
    differentiated too (in the paper and in Core-tuning's public code alike).
    ``P_i = {j != i : j positive for i}`` never contains the anchor itself.

    ``variant="paper"``: ``l_i = -1/|P_i| sum_{j in P_i} (1 - p_ij) log p_ij``; the loss is the
    mean of ``l_i`` over anchors with ``|P_i| > 0``.

    ``variant="official"`` (Core-tuning's ``focal_SupConLoss``): the focal-weighted sum over
    positives is divided by the batch size N instead of ``|P_i|``,
    ``l_i = -1/N sum_{j in P_i} (1 - p_ij) log p_ij``, and the loss is the sum of ``l_i``
    divided by the number of anchors with ``|P_i| > 0`` (anchors without positives add 0).

    Both variants return ``features.sum() * 0`` when no anchor has a positive.

    In Core-tuning, ``features`` is the projected (N + generated) contrastive set and the
    positives of mixed samples come from their soft labels: pass
    ``positive_mask=soft_label_positive_mask(q, q, variant=...)`` (see ``mixup.py``).

    Args:
        features: Tensor with shape (batch_size, dim), L2-normalised (float32 or float64).
        labels: int Tensor with shape (batch_size,). May be None if ``positive_mask`` is given.
        temperature: the temperature tau > 0.
        variant: ``"paper"`` or ``"official"``, see above.
        positive_mask: optional bool Tensor with shape (batch_size, batch_size) overriding the
            positives derived from ``labels``; its diagonal is ignored.

    Returns:
        Scalar Tensor.
    """
    check_variant(variant)
    check_features(features, temperature)
    n = features.shape[0]
    pos = build_positive_mask(labels, positive_mask, n, features.device)
    if n < 2:
        return graph_zero(features)
    # only positive terms (never the -inf diagonal) reach exp, so the backward stays finite
    log_prob = torch.where(pos, _log_prob_over_others(features, temperature), 0.0)
    summed = (log_prob - log_prob.exp() * log_prob).sum(dim=1)  # sum_j (1 - p_ij) log p_ij
    n_pos = pos.sum(dim=1)
    if variant == "official":
        per_anchor = -summed / n
    else:
        per_anchor = -summed / n_pos.clamp(min=1).to(features.dtype)
    return mean_over_valid(per_anchor, n_pos > 0)
