"""Supervised contrastive loss (Khosla et al., 2020), the COIN loss (COIN Eq. 1).

The same loss is Core-tuning's ``L_con`` (Core-tuning Eq. 1, the ``L_con`` rows of its Table 2).
``focal_supcon.py`` and ``schane.py`` reuse the masking helpers defined here.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

Variant = Literal["paper", "official"]
VARIANTS: tuple[str, ...] = ("paper", "official")


def _check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS} but found {variant!r}")


def _check_features(features: Tensor, temperature: float) -> None:
    assert features.ndim == 2, f"features must have shape (batch_size, dim) but found {tuple(features.shape)}"
    assert features.is_floating_point(), f"features must be floating point, found {features.dtype}"
    assert temperature > 0, f"temperature must be positive but found {temperature}"


def _positive_mask(
    labels: Tensor | None, positive_mask: Tensor | None, batch_size: int, device: torch.device
) -> Tensor:
    """Boolean (batch_size, batch_size) positive mask with a False diagonal.

    ``positive_mask`` wins over ``labels`` when both are given.
    """
    if positive_mask is not None:
        assert positive_mask.shape == (batch_size, batch_size), (
            f"positive_mask must have shape ({batch_size}, {batch_size}) "
            f"but found {tuple(positive_mask.shape)}"
        )
        mask = positive_mask.to(device=device, dtype=torch.bool)
    else:
        assert labels is not None, "labels or positive_mask must be given"
        assert labels.shape == (batch_size,), (
            f"labels must have shape ({batch_size},) but found {tuple(labels.shape)}"
        )
        labels = labels.to(device)
        mask = labels[:, None] == labels[None, :]
    eye = torch.eye(batch_size, dtype=torch.bool, device=device)
    return mask & ~eye


def _masked_logsumexp(x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Row-wise log-sum-exp of ``x`` over the True entries of ``mask``.

    Args:
        x: Tensor with shape (n, m).
        mask: bool Tensor with shape (n, m).

    Returns:
        ``(lse, has_any)``, both with shape (n,). Rows without a True entry get ``lse = 0``
        (a finite placeholder, so that gradients stay finite); callers must mask them out
        with ``has_any``.
    """
    has_any = mask.any(dim=1)
    filled = x.masked_fill(~mask, float("-inf"))
    safe = torch.where(has_any[:, None], filled, torch.zeros_like(x))
    lse = torch.logsumexp(safe, dim=1)
    return torch.where(has_any, lse, torch.zeros_like(lse)), has_any


def _log_prob(features: Tensor, temperature: float) -> Tensor:
    """log p_ij = s_ij - log sum_{k != i} exp(s_ik), s = features @ features.T / temperature.

    Returns a (N, N) Tensor; rows of a batch of one sample are a finite placeholder.
    """
    n = features.shape[0]
    logits = features @ features.T / temperature
    not_self = ~torch.eye(n, dtype=torch.bool, device=features.device)
    lse, _ = _masked_logsumexp(logits, not_self)
    return logits - lse[:, None]


def _zero(features: Tensor) -> Tensor:
    """A zero that is still connected to the graph (finite, zero gradient)."""
    return features.sum() * 0


def _validated_log_prob(
    features: Tensor,
    labels: Tensor | None,
    temperature: float,
    variant: str,
    positive_mask: Tensor | None,
) -> tuple[Tensor, Tensor] | None:
    """Shared prologue of the SupCon-family losses: check the inputs and return the positive
    mask and the (N, N) log-softmax over k != i, or None when the batch has fewer than 2 rows."""
    _check_variant(variant)
    _check_features(features, temperature)
    n = features.shape[0]
    pos = _positive_mask(labels, positive_mask, n, features.device)
    if n < 2:
        return None
    return pos, _log_prob(features, temperature)


def supcon_loss(
    features: Tensor,
    labels: Tensor | None,
    temperature: float,
    *,
    variant: Variant = "paper",
    positive_mask: Tensor | None = None,
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
    code produces NaN there and replaces it by zero).

    Args:
        features: Tensor with shape (batch_size, dim), L2-normalised (float32 or float64).
        labels: int Tensor with shape (batch_size,). May be None if ``positive_mask`` is given.
        temperature: the temperature tau > 0.
        variant: ``"paper"`` or ``"official"``, see above.
        positive_mask: optional bool Tensor with shape (batch_size, batch_size) overriding the
            positives derived from ``labels`` (e.g. from
            :func:`ftsweep.losses.mixup.soft_label_positive_mask` for mixed samples); its
            diagonal is ignored (self is a positive only in the official variant).

    Returns:
        Scalar Tensor.
    """
    prepared = _validated_log_prob(features, labels, temperature, variant, positive_mask)
    if prepared is None:
        return _zero(features)
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
    return _mean_over_valid(per_anchor, n_pos > 0)


def _mean_over_valid(per_anchor: Tensor, valid: Tensor) -> Tensor:
    """Mean of ``per_anchor`` (N,) over the True entries of ``valid`` (N,); 0 if none.

    Branch-free (no host sync); ``per_anchor`` must be finite everywhere.
    """
    weights = valid.to(per_anchor.dtype)
    return (per_anchor * weights).sum() / weights.sum().clamp(min=1)
