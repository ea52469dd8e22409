"""Helpers shared by the SupCon-family losses (``supcon``, ``focal_supcon``, ``schane``) and the
Core-tuning mixup: input checks, the positive mask, masked log-sum-exp and the log-softmax over
the other samples, and a branch-free mean over valid anchors."""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor

Variant = Literal["paper", "official"]
VARIANTS: tuple[str, ...] = ("paper", "official")


def check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS} but found {variant!r}")


def check_features(features: Tensor, temperature: float) -> None:
    assert features.ndim == 2, f"features must have shape (batch_size, dim) but found {tuple(features.shape)}"
    assert features.is_floating_point(), f"features must be floating point, found {features.dtype}"
    assert temperature > 0, f"temperature must be positive but found {temperature}"


def build_positive_mask(
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


def masked_logsumexp(x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
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


class _ScaledGram(torch.autograd.Function):
    """``scale * v @ v.T`` with the symmetric backward ``scale * (G + G^T) @ v``.

    One matrix product in the backward pass where autograd's ``mm`` backward needs two (one per
    operand); the gram matrix of the contrastive set is the largest product of these losses.
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


def log_softmax_over_others(features: Tensor, temperature: float) -> Tensor:
    """``log p_ij = s_ij - log sum_{k != i} exp(s_ik)`` with ``s = features @ features.T / tau``.

    Args:
        features: Tensor with shape (n, dim), n >= 2.
        temperature: tau > 0.

    Returns:
        Tensor with shape (n, n). The diagonal is the same expression for j = i (the self term
        of the official SupCon variant); callers that exclude self mask it out before any
        ``exp``, since ``s_ii`` is the largest similarity and may overflow.
    """
    logits = _ScaledGram.apply(features, 1.0 / temperature)
    not_self = ~torch.eye(features.shape[0], dtype=torch.bool, device=features.device)
    lse = logits.masked_fill(~not_self, float("-inf")).logsumexp(dim=1, keepdim=True)
    return logits - lse


def graph_zero(features: Tensor) -> Tensor:
    """A zero that is still connected to the graph (finite, zero gradient)."""
    return features.sum() * 0


def validated_log_prob(
    features: Tensor,
    labels: Tensor | None,
    temperature: float,
    variant: str,
    positive_mask: Tensor | None,
) -> tuple[Tensor, Tensor] | None:
    """Shared prologue of the SupCon-family losses: check the inputs and return the positive
    mask and the (N, N) log-softmax over k != i, or None when the batch has fewer than 2 rows."""
    check_variant(variant)
    check_features(features, temperature)
    n = features.shape[0]
    pos = build_positive_mask(labels, positive_mask, n, features.device)
    if n < 2:
        return None
    return pos, log_softmax_over_others(features, temperature)


def mean_over_valid(per_anchor: Tensor, valid: Tensor) -> Tensor:
    """Mean of ``per_anchor`` (N,) over the True entries of ``valid`` (N,); 0 if none.

    Branch-free (no host sync); ``per_anchor`` must be finite everywhere.
    """
    weights = valid.to(per_anchor.dtype)
    return (per_anchor * weights).sum() / weights.sum().clamp(min=1)
