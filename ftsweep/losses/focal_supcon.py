"""Focal contrastive loss of Core-tuning (Zhang et al., 2021, §4.3, ``L_con^f``)."""

from __future__ import annotations

import torch
from torch import Tensor

from ftsweep.losses._contrastive import Variant, graph_zero, mean_over_valid, validated_log_prob


def focal_supcon_loss(
    features: Tensor,
    labels: Tensor | None,
    temperature: float,
    *,
    variant: Variant = "paper",
    positive_mask: Tensor | None = None,
    num_anchors: int | None = None,
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

    ``num_anchors`` restricts the anchors ``i`` to the first ``num_anchors`` rows while every
    row stays in ``A_i`` and ``P_i``: Core-tuning's equation sums over the n original samples
    (``sum_{i=1}^n``) whose pair sets "contain the generated hard pairs", so its ``paper`` form
    passes ``num_anchors=n`` for the set ``z ∪ B+ ∪ B-``. None = every row is an anchor (the
    public code, which contrasts the whole enlarged set).

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
        num_anchors: the first ``num_anchors`` rows are the anchors (1 ≤ num_anchors ≤
            batch_size); None = all rows.

    Returns:
        Scalar Tensor.
    """
    prepared = validated_log_prob(features, labels, temperature, variant, positive_mask)
    if prepared is None:
        return graph_zero(features)
    pos, log_prob = prepared
    n = features.shape[0]
    # only positive terms (never the diagonal, whose exp may overflow) reach exp
    log_prob = torch.where(pos, log_prob, 0.0)
    summed = (log_prob - log_prob.exp() * log_prob).sum(dim=1)  # sum_j (1 - p_ij) log p_ij
    n_pos = pos.sum(dim=1)
    if variant == "official":
        per_anchor = -summed / n
    else:
        per_anchor = -summed / n_pos.clamp(min=1).to(features.dtype)
    valid = n_pos > 0
    if num_anchors is not None:
        assert 1 <= num_anchors <= n, f"num_anchors must be in [1, {n}] but found {num_anchors}"
        per_anchor, valid = per_anchor[:num_anchors], valid[:num_anchors]
    return mean_over_valid(per_anchor, valid)
