"""Supervised contrastive loss (Khosla et al., 2020), the COIN loss (COIN Eq. 1).

The same loss is Core-tuning's ``L_con`` (Core-tuning Eq. 1, the ``L_con`` rows of its Table 2).
Its helpers (masks, log-softmax, checks) live in ``_contrastive.py``, shared with
``focal_supcon.py``, ``schane.py`` and ``mixup.py``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ftsweep.losses._contrastive import Variant, graph_zero, mean_over_valid, validated_log_prob


def supcon_loss(
    features: Tensor,
    labels: Tensor | None,
    temperature: float,
    *,
    variant: Variant = "paper",
    positive_mask: Tensor | None = None,
    num_anchors: int | None = None,
) -> Tensor:
    """Supervised contrastive loss, COIN Eq. 1 (= Core-tuning Eq. 1, Khosla et al. ``L_out``).

    With ``s_ij = v_i . v_j / tau`` and ``A_i = {k != i}``:

    ``variant="paper"``: for every anchor i with a non-empty positive set
    ``P_i = {j != i : y_j = y_i}``,
    ``l_i = -1/|P_i| sum_{j in P_i} log(exp(s_ij) / sum_{k in A_i} exp(s_ik))``;
    the loss is the mean of ``l_i`` over those anchors, and ``features.sum() * 0`` when there
    is none.

    ``variant="official"`` (COIN's public ``focal_SupConLoss`` with its focal weight set to 1):
    the anchor counts as its own positive, ``P'_i = {j : y_j = y_i}`` (self included, the
    denominator still excludes k = i, so the self term is ``s_ii - log sum_{k != i} exp(s_ik)``),
    and the sum over positives is divided by the batch size N rather than ``|P'_i|``:
    ``l_i = -1/N sum_{j in P'_i} log(exp(s_ij) / sum_{k in A_i} exp(s_ik))``; the loss is the
    mean over all N anchors (every anchor has itself as positive). Hence the official loss is
    not zero when no two samples share a label. A batch of one sample gives zero (the public
    code returns -inf there: its denominator is an empty sum, and its NaN guard does not fire).

    Args:
        features: Tensor with shape (batch_size, dim), L2-normalised (float32 or float64).
        labels: int Tensor with shape (batch_size,). May be None if ``positive_mask`` is given.
        temperature: the temperature tau > 0.
        variant: ``"paper"`` or ``"official"``, see above.
        positive_mask: optional bool Tensor with shape (batch_size, batch_size) overriding the
            positives derived from ``labels`` (e.g. from
            :func:`ftsweep.losses.mixup.soft_label_positive_mask` for mixed samples); its
            diagonal is ignored (self is a positive only in the official variant).
        num_anchors: only the first ``num_anchors`` rows are anchors; every row stays in the
            positive and full pair sets (Core-tuning's Eq. 1 over an enlarged set sums over its
            n originals). None = all rows. Paper variant only.

    Returns:
        Scalar Tensor.
    """
    prepared = validated_log_prob(features, labels, temperature, variant, positive_mask)
    if prepared is None:
        return graph_zero(features)
    pos, log_prob = prepared
    n = features.shape[0]
    if variant == "official":
        eye = torch.eye(n, dtype=torch.bool, device=features.device)
        pos_with_self = pos | eye
        per_anchor = -torch.where(pos_with_self, log_prob, torch.zeros_like(log_prob)).sum(1) / n
        return per_anchor.mean()
    n_pos = pos.sum(dim=1)
    summed = torch.where(pos, log_prob, torch.zeros_like(log_prob)).sum(dim=1)
    per_anchor = -summed / n_pos.clamp(min=1).to(features.dtype)
    valid = n_pos > 0
    if num_anchors is not None:
        assert 1 <= num_anchors <= n, f"num_anchors must be in [1, {n}] but found {num_anchors}"
        per_anchor, valid = per_anchor[:num_anchors], valid[:num_anchors]
    return mean_over_valid(per_anchor, valid)
