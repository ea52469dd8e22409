"""Self-supervised losses for contrastive target pretraining.

Reference: Xu et al., "Revisiting Pretraining for Semi-Supervised Learning in the Low-Label
Regime" (target pretraining paper, ``/work/shared/papers/target_pretraining.md``). Eq. 1 is the
InfoNCE loss, Eq. 2 the BYOL cosine loss and Eq. 3 the BYOL objective with an L2 pull towards
the pre-trained backbone weights.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["byol_loss", "l2_to_init", "moco_infonce_loss", "nt_xent_loss"]


def _check_pair(a: Tensor, b: Tensor, name_a: str, name_b: str) -> None:
    assert a.dim() == 2, f"{name_a} must have shape (batch_size, dim) but found {tuple(a.shape)}"
    assert a.shape == b.shape, (
        f"{name_a} and {name_b} must have same shape but found {tuple(a.shape)} and {tuple(b.shape)}"
    )


def _check_temperature(temperature: float) -> None:
    if not temperature > 0.0:
        raise ValueError(f"temperature must be > 0, got {temperature}")


def nt_xent_loss(z1: Tensor, z2: Tensor, temperature: float) -> Tensor:
    """SimCLR NT-Xent loss over the 2N views of a batch (InfoNCE, Eq. 1).

    The two views are L2-normalised and stacked into 2N embeddings. For anchor ``i`` the
    positive is the other view of the same image and the denominator runs over all 2N - 1
    embeddings other than ``i`` (the positive included), with cosine similarities divided by
    ``temperature``. The loss is the mean over all 2N anchors.

    Args:
        z1: Tensor with shape (batch_size, dim), projections of the first view. Need not be
            normalised.
        z2: Tensor with shape (batch_size, dim), projections of the second view, row ``n`` the
            same image as row ``n`` of ``z1``.
        temperature: Softmax temperature tau > 0.

    Returns:
        Scalar tensor, the mean NT-Xent loss over the 2N anchors. With batch_size 1 the only
        other embedding is the positive and the loss is 0.

    Raises:
        ValueError: If ``temperature`` is not positive.
    """
    _check_pair(z1, z2, "z1", "z2")
    _check_temperature(temperature)
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2], dim=0), dim=1)
    logits = z @ z.T / temperature
    self_mask = torch.eye(2 * n, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    idx = torch.arange(n, device=z.device)
    targets = torch.cat([idx + n, idx])
    return F.cross_entropy(logits, targets)


def byol_loss(online_pred: Tensor, target_proj: Tensor) -> Tensor:
    """BYOL regression loss for one direction (Eq. 2 of the target pretraining paper).

    Per sample the loss is ``2 - 2 * cos(p, z)`` where ``p`` is the online predictor output
    q(E_1) and ``z`` the target projection E_2. Eq. 2 is ``-cos(p, z)``, so this equals
    ``2 + 2 * Eq. 2``: the same minimiser and gradients scaled by 2 (the form used by the BYOL
    paper). The target is detached here; no gradient reaches the target network.

    The symmetrised BYOL loss (view 1 predicting view 2 plus view 2 predicting view 1) is built
    by the caller with two calls, e.g. ``byol_loss(p1, z2) + byol_loss(p2, z1)``.

    Args:
        online_pred: Tensor with shape (batch_size, dim), online predictor outputs. Need not be
            normalised.
        target_proj: Tensor with shape (batch_size, dim), target-network projections of the
            other view. Need not be normalised.

    Returns:
        Scalar tensor, the mean over the batch of ``2 - 2 * cos``, in [0, 4].
    """
    _check_pair(online_pred, target_proj, "online_pred", "target_proj")
    p = F.normalize(online_pred, dim=1)
    z = F.normalize(target_proj.detach(), dim=1)
    return (2.0 - 2.0 * (p * z).sum(dim=1)).mean()


def moco_infonce_loss(q: Tensor, k: Tensor, queue: Tensor, temperature: float) -> Tensor:
    """MoCo v2 InfoNCE loss with a queue of negative keys (Eq. 1 with queue negatives).

    For query ``q_n`` the logits are ``[q_n . k_n, q_n . queue_1, ..., q_n . queue_K]`` divided
    by ``temperature``; the loss is cross-entropy with the positive (index 0) as target. All of
    ``q``, ``k`` and ``queue`` are L2-normalised here (a no-op for already normalised inputs).
    ``k`` and ``queue`` come from the momentum encoder and are detached.

    Args:
        q: Tensor with shape (batch_size, dim), query embeddings from the online encoder.
        k: Tensor with shape (batch_size, dim), key embeddings of the other view.
        queue: Tensor with shape (queue_size, dim), keys of earlier batches (negatives). Note
            the row layout: MoCo's public code stores the queue as (dim, queue_size).
        temperature: Softmax temperature tau > 0 (MoCo v2 uses 0.2).

    Returns:
        Scalar tensor, the mean InfoNCE loss over the batch. With an empty queue the loss is 0.

    Raises:
        ValueError: If ``temperature`` is not positive.
    """
    _check_pair(q, k, "q", "k")
    assert queue.dim() == 2 and queue.shape[1] == q.shape[1], (
        f"queue must have shape (queue_size, {q.shape[1]}) but found {tuple(queue.shape)}"
    )
    _check_temperature(temperature)
    q = F.normalize(q, dim=1)
    k = F.normalize(k.detach(), dim=1)
    queue = F.normalize(queue.detach(), dim=1)
    l_pos = (q * k).sum(dim=1, keepdim=True)
    l_neg = q @ queue.T
    logits = torch.cat([l_pos, l_neg], dim=1) / temperature
    targets = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)
    return F.cross_entropy(logits, targets)


def l2_to_init(params: Iterable[Tensor], init_params: Iterable[Tensor]) -> Tensor:
    """Squared L2 distance of the weights to their pre-trained values (Eq. 3 regulariser).

    Computes ``sum_i ||Phi_i - Phi_pre_i||_2^2`` over matching tensors. The caller multiplies
    by lambda (1e-2 in the paper). ``init_params`` is treated as a constant, so the gradient
    with respect to ``Phi_i`` is ``2 * (Phi_i - Phi_pre_i)``.

    Args:
        params: Current tensors Phi, e.g. ``backbone.parameters()``.
        init_params: Pre-trained tensors Phi_pre in the same order and with the same shapes,
            e.g. tensors saved from the backbone before target pretraining.

    Returns:
        Scalar tensor, the sum of squared differences.

    Raises:
        ValueError: If the two iterables have different lengths or are empty.
    """
    params = list(params)
    init_params = list(init_params)
    if len(params) != len(init_params):
        raise ValueError(
            f"params and init_params must have the same length, got {len(params)} and {len(init_params)}"
        )
    if not params:
        raise ValueError("params is empty")
    total = params[0].new_zeros(())
    for i, (p, p0) in enumerate(zip(params, init_params, strict=True)):
        assert p.shape == p0.shape, (
            f"params[{i}] and init_params[{i}] must have same shape but found "
            f"{tuple(p.shape)} and {tuple(p0.shape)}"
        )
        total = total + (p - p0.detach().to(p)).pow(2).sum()
    return total
