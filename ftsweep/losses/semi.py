"""Semi-supervised consistency losses: FixMatch, UDA and Mean Teacher.

Each is an instance of the pseudo-labelling loss L_PL of Eq. 4 in the target pretraining paper
(``/work/shared/papers/target_pretraining.md``): the labelled cross-entropy is added by the
caller, which also multiplies these losses by the unlabelled weight lambda. All losses are means
over *all* unlabelled samples in the batch, masked-out samples contributing 0.
"""

from __future__ import annotations

from typing import Literal, overload

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["fixmatch_loss", "mean_teacher_loss", "pseudo_label_mask", "uda_loss"]


def _check_logits(a: Tensor, b: Tensor, name_a: str, name_b: str) -> None:
    assert a.dim() == 2, f"{name_a} must have shape (batch_size, num_classes) but found {tuple(a.shape)}"
    assert a.shape == b.shape, (
        f"{name_a} and {name_b} must have same shape but found {tuple(a.shape)} and {tuple(b.shape)}"
    )


def _check_threshold(threshold: float) -> None:
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")


def _check_temperature(temperature: float) -> None:
    if not temperature > 0.0:
        raise ValueError(f"temperature must be > 0, got {temperature}")


def pseudo_label_mask(logits: Tensor, threshold: float, *, temperature: float = 1.0) -> tuple[Tensor, Tensor]:
    """Confidence mask and hard pseudo-labels from (weak-view) logits, without gradient.

    Args:
        logits: Tensor with shape (batch_size, num_classes).
        threshold: Confidence threshold tau in [0, 1].
        temperature: Temperature T > 0 of the softmax, ``softmax(logits / T)``.

    Returns:
        ``(mask, labels)``: mask is a float tensor with shape (batch_size,), 1 where
        ``max softmax(logits / T) >= threshold`` and 0 elsewhere; labels is a long tensor with
        shape (batch_size,), the argmax class.

    Raises:
        ValueError: If ``threshold`` is outside [0, 1] or ``temperature`` is not positive.
    """
    _check_threshold(threshold)
    _check_temperature(temperature)
    with torch.no_grad():
        probs = torch.softmax(logits.detach() / temperature, dim=-1)
        max_probs, labels = probs.max(dim=-1)
        mask = (max_probs >= threshold).to(probs.dtype)
    return mask, labels


@overload
def fixmatch_loss(
    logits_weak: Tensor,
    logits_strong: Tensor,
    threshold: float,
    *,
    temperature: float = ...,
    return_mask: Literal[False] = ...,
) -> Tensor: ...
@overload
def fixmatch_loss(
    logits_weak: Tensor,
    logits_strong: Tensor,
    threshold: float,
    *,
    temperature: float = ...,
    return_mask: Literal[True],
) -> tuple[Tensor, Tensor]: ...
def fixmatch_loss(
    logits_weak: Tensor,
    logits_strong: Tensor,
    threshold: float,
    *,
    temperature: float = 1.0,
    return_mask: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """FixMatch unlabelled loss (Sohn et al., 2020), an instance of L_PL in Eq. 4.

    ``l_u = 1/B_u * sum_b 1[max q_b >= tau] * CE(argmax q_b, logits_strong_b)`` with
    ``q_b = softmax(logits_weak_b / T)`` computed without gradient.

    Args:
        logits_weak: Tensor with shape (batch_size, num_classes), logits of the weakly
            augmented view (detached here).
        logits_strong: Tensor with shape (batch_size, num_classes), logits of the strongly
            augmented view.
        threshold: Confidence threshold tau in [0, 1] (0.95 in the paper).
        temperature: Temperature T > 0 of the pseudo-label softmax; 1 is FixMatch's default.
        return_mask: Also return the confidence mask (shape (batch_size,), as
            :func:`pseudo_label_mask` gives it), e.g. to log the mask rate.

    Returns:
        Scalar tensor, the masked cross-entropy averaged over all batch_size samples; with
        ``return_mask``, ``(loss, mask)``.

    Raises:
        ValueError: If ``threshold`` is outside [0, 1] or ``temperature`` is not positive.
    """
    _check_logits(logits_weak, logits_strong, "logits_weak", "logits_strong")
    mask, labels = pseudo_label_mask(logits_weak, threshold, temperature=temperature)
    ce = F.cross_entropy(logits_strong, labels, reduction="none")
    loss = (ce * mask.to(ce.dtype)).mean()
    return (loss, mask) if return_mask else loss


@overload
def uda_loss(
    logits_weak: Tensor,
    logits_strong: Tensor,
    *,
    threshold: float,
    temperature: float,
    return_mask: Literal[False] = ...,
) -> Tensor: ...
@overload
def uda_loss(
    logits_weak: Tensor,
    logits_strong: Tensor,
    *,
    threshold: float,
    temperature: float,
    return_mask: Literal[True],
) -> tuple[Tensor, Tensor]: ...
def uda_loss(
    logits_weak: Tensor,
    logits_strong: Tensor,
    *,
    threshold: float,
    temperature: float,
    return_mask: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """UDA consistency loss with sharpening and confidence masking (Xie et al., 2020).

    Per sample ``KL(p_tgt || softmax(logits_strong))`` where the target
    ``p_tgt = softmax(logits_weak / T)`` is sharpened and detached. The mask is
    ``max softmax(logits_weak) >= threshold`` on the un-sharpened weak prediction. The loss is
    the mean over all samples, masked ones contributing 0.

    Args:
        logits_weak: Tensor with shape (batch_size, num_classes), logits of the original
            (weakly augmented) view, detached here.
        logits_strong: Tensor with shape (batch_size, num_classes), logits of the
            strongly augmented view.
        threshold: Confidence threshold beta in [0, 1]; 0 disables masking (the default of a
            run is ``UDAConfig.threshold``).
        temperature: Sharpening temperature T > 0; 1 disables sharpening
            (``UDAConfig.temperature``).
        return_mask: Also return the confidence mask (shape (batch_size,)).

    Returns:
        Scalar tensor, the masked KL divergence averaged over all batch_size samples; with
        ``return_mask``, ``(loss, mask)``.

    Raises:
        ValueError: If ``threshold`` is outside [0, 1] or ``temperature`` is not positive.
    """
    _check_logits(logits_weak, logits_strong, "logits_weak", "logits_strong")
    _check_temperature(temperature)
    mask, _ = pseudo_label_mask(logits_weak, threshold)
    target_logits = logits_weak.detach() / temperature
    log_p_tgt = F.log_softmax(target_logits, dim=-1)
    log_q = F.log_softmax(logits_strong, dim=-1)
    kl = (log_p_tgt.exp() * (log_p_tgt - log_q)).sum(dim=-1)
    loss = (kl * mask.to(kl.dtype)).mean()
    return (loss, mask) if return_mask else loss


def mean_teacher_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    *,
    variant: Literal["paper", "official"] = "paper",
) -> Tensor:
    """Mean Teacher consistency cost (Tarvainen & Valpola, 2017), an instance of L_PL in Eq. 4.

    ``J = 1/B * sum_b ||softmax(student_b) - softmax(teacher_b)||_2^2``: squared L2 distance
    between the class-probability vectors, summed over classes and averaged over the batch, as
    in the paper's definition of J. The teacher is detached.

    Args:
        student_logits: Tensor with shape (batch_size, num_classes).
        teacher_logits: Tensor with shape (batch_size, num_classes), logits of the EMA teacher.
        variant: ``"paper"`` sums over classes; ``"official"`` divides that by num_classes, as
            the authors' PyTorch code does (mean over batch and classes), see
            ``docs/deviations.md``.

    Returns:
        Scalar tensor, the consistency cost.

    Raises:
        ValueError: If ``variant`` is unknown.
    """
    _check_logits(student_logits, teacher_logits, "student_logits", "teacher_logits")
    if variant not in ("paper", "official"):
        raise ValueError(f"variant must be 'paper' or 'official', got {variant!r}")
    diff = torch.softmax(student_logits, dim=-1) - torch.softmax(teacher_logits.detach(), dim=-1)
    per_sample = diff.pow(2).sum(dim=-1)
    if variant == "official":
        per_sample = per_sample / student_logits.shape[-1]
    return per_sample.mean()
