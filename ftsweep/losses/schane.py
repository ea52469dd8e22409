"""SCHaNe: supervised contrastive loss with hard negative weighting (SCHaNe Eq. 1, 3, 4).

Notation: ``s_ij = z_i . z_j / tau``; for anchor i, ``P_i = {p != i : y_p = y_i}`` (positives)
and ``N_i = {k : y_k != y_i}`` (negatives). Eq. 3 weights every negative by
``beta_ik = exp(s_ik) * |N_i| / sum_{k' in N_i} exp(s_ik')`` (the weights of one anchor average
to 1, so ``beta == 1`` recovers unweighted negatives).

Eq. 4 is typeset as ``sum_i log (-1/|P_i|) * (sum_p exp(s_ip)) / (sum_p exp(s_ip) +
sum_k beta exp(s_ik))``, which is not well formed (a log of a negative number, a sum over p in
the numerator with no matching per-positive term). ``variant="paper"`` reads it as the
supervised contrastive loss of Khosla et al. (``L_out``, the loss SCHaNe says it extends) with
beta-weighted negatives in the denominator:

    D_i = sum_{p' in P_i} exp(s_ip') + sum_{k in N_i} beta_ik exp(s_ik),
    l_i = -1/|P_i| sum_{p in P_i} log( exp(s_ip) / D_i ),

so that ``beta == 1`` gives back COIN Eq. 1. The anchor sum of Eq. 4 is replaced by a mean over
anchors with ``|P_i| > 0`` (a rescaling by the batch size).

``variant="official"`` follows SCHaNe's public code as described to us (the anonymous code link
could not be retrieved): positives are averaged inside a single log per anchor,

    pos_i = 1/|P_i| sum_{p in P_i} exp(s_ip),
    l_i = -log( pos_i / (pos_i + sum_{k in N_i} beta_ik exp(s_ik)) ),

mean over anchors with ``|P_i| > 0``.

beta as a constant: Eq. 3 calls beta a "weight factor" that gives "more emphasis to the hard
negatives", i.e. a per-negative importance weight computed from the current embeddings, so the
paper variant treats it as a constant (``beta`` is detached and each negative's gradient is scaled
by it). The official variant keeps the gradient through beta (what a direct implementation of
the formula computes); ``detach_beta`` overrides either default.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ftsweep.losses._contrastive import (
    Variant,
    check_features,
    check_variant,
    graph_zero,
    masked_logsumexp,
    mean_over_valid,
)


def scln_loss(
    features: Tensor,
    labels: Tensor,
    temperature: float,
    *,
    variant: Variant = "paper",
    detach_beta: bool | None = None,
) -> Tensor:
    """SCLN: supervised contrastive loss with hard-negative weights, SCHaNe Eq. 3 and 4.

    See the module docstring for the exact formulas of both variants and the reading of Eq. 4.
    Anchors without a positive are skipped; ``features.sum() * 0`` if no anchor has one. An
    anchor without negatives (single-class batch) keeps only its positives in the denominator
    (loss 0 in the official variant).

    Args:
        features: Tensor with shape (batch_size, dim), L2-normalised (float32 or float64).
        labels: int Tensor with shape (batch_size,).
        temperature: the temperature tau > 0.
        variant: ``"paper"`` or ``"official"``.
        detach_beta: treat the Eq. 3 weights as constants; None means the variant's default
            (True for ``"paper"``, False for ``"official"``).

    Returns:
        Scalar Tensor.
    """
    check_variant(variant)
    check_features(features, temperature)
    n = features.shape[0]
    assert labels.shape == (n,), f"labels must have shape ({n},) but found {tuple(labels.shape)}"
    if detach_beta is None:
        detach_beta = variant == "paper"
    if n < 2:
        return graph_zero(features)
    labels = labels.to(features.device)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(n, dtype=torch.bool, device=features.device)
    pos = same & ~eye
    neg = ~same
    logits = features @ features.T / temperature

    # log beta_ik = s_ik + log|N_i| - log sum_{k' in N_i} exp(s_ik')   (Eq. 3)
    n_neg = neg.sum(dim=1)
    lse_neg, has_neg = masked_logsumexp(logits, neg)
    log_n_neg = n_neg.clamp(min=1).to(features.dtype).log()
    log_beta = logits + (log_n_neg - lse_neg)[:, None]
    if detach_beta:
        log_beta = log_beta.detach()
    weighted_neg = logits + log_beta  # log(beta_ik * exp(s_ik))

    n_pos = pos.sum(dim=1)
    if variant == "paper":
        denom_terms = torch.where(pos, logits, weighted_neg)
        log_denom, _ = masked_logsumexp(denom_terms, pos | neg)
        log_prob = logits - log_denom[:, None]
        summed = torch.where(pos, log_prob, torch.zeros_like(log_prob)).sum(dim=1)
        per_anchor = -summed / n_pos.clamp(min=1).to(features.dtype)
    else:
        lse_pos, _ = masked_logsumexp(logits, pos)
        log_pos = lse_pos - n_pos.clamp(min=1).to(features.dtype).log()
        lse_wneg, _ = masked_logsumexp(weighted_neg, neg)
        per_anchor = torch.logaddexp(log_pos, lse_wneg) - log_pos
        per_anchor = torch.where(has_neg, per_anchor, torch.zeros_like(per_anchor))
    return mean_over_valid(per_anchor, n_pos > 0)


def schane_loss(
    logits: Tensor,
    features: Tensor,
    labels: Tensor,
    lam: float,
    temperature: float,
    *,
    variant: Variant = "paper",
    detach_beta: bool | None = None,
) -> Tensor:
    """SCHaNe objective, Eq. 1: ``(1 - lam) * CE(logits, labels) + lam * SCLN``.

    ``CE`` is the mean multi-class cross-entropy of Eq. 2 and ``SCLN`` is :func:`scln_loss`.

    Args:
        logits: Tensor with shape (batch_size, num_classes), classifier outputs.
        features: Tensor with shape (batch_size, dim), L2-normalised embeddings.
        labels: int Tensor with shape (batch_size,).
        lam: weight lambda in [0, 1] of the contrastive term.
        temperature: the temperature tau > 0.
        variant: ``"paper"`` or ``"official"``, forwarded to :func:`scln_loss`.
        detach_beta: forwarded to :func:`scln_loss`.

    Returns:
        Scalar Tensor.
    """
    assert 0.0 <= lam <= 1.0, f"lam must be in [0, 1] but found {lam}"
    assert logits.ndim == 2 and logits.shape[0] == features.shape[0], (
        f"logits must have shape (batch_size, num_classes) with batch_size "
        f"{features.shape[0]} but found {tuple(logits.shape)}"
    )
    ce = F.cross_entropy(logits, labels.to(logits.device))
    scln = scln_loss(features, labels, temperature, variant=variant, detach_beta=detach_beta)
    return (1 - lam) * ce + lam * scln
