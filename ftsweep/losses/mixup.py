"""Feature mixup of Core-tuning (Zhang et al., 2021): hard pair generation (§4.2, "mixup-hard")
and the manifold-mixup ablation (Table 2, "mixup" row).

Randomness only comes from the ``generator`` argument (a ``torch.Generator``; the default CPU
generator when None), so a seeded generator gives identical pairs. Beta(alpha, alpha) is sampled
as ``X / (X + Y)`` with ``X, Y ~ Gamma(alpha)`` from ``torch._standard_gamma``
(``torch.distributions.Beta`` cannot take a generator).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ftsweep.losses._contrastive import Variant, check_variant


class HardPairs(NamedTuple):
    """Generated hard pairs of :func:`mixup_hard_pairs` (P hard positives, M hard negatives).

    Attributes:
        pos_features: (P, dim) hard positives ``lam * z_hp + (1 - lam) * z_hn``.
        pos_labels: (P,) int64, the label of the anchor that produced each hard positive.
        pos_soft_labels: (P, num_classes) label vectors of the hard positives: one-hot of
            ``pos_labels`` (paper) or ``lam * y_hp + (1 - lam) * y_hn`` (official).
        pos_anchor_index: (P,) int64, anchor i of each hard positive.
        pos_positive_index: (P,) int64, index of ``z_hp`` (the least similar positive).
        pos_negative_index: (P,) int64, index of ``z_hn`` (the most similar negative).
        pos_lambda: (P,) mixing coefficients of the hard positives.
        neg_features: (M, dim) hard negatives ``(1 - lam) * z_i + lam * z_n``.
        neg_soft_labels: (M, num_classes) soft labels ``(1 - lam) * y_i + lam * y_n``.
        neg_anchor_index: (M,) int64, anchor i of each hard negative.
        neg_partner_index: (M,) int64, index of the random partner ``z_n``.
        neg_lambda: (M,) mixing coefficients of the hard negatives.
    """

    pos_features: Tensor
    pos_labels: Tensor
    pos_soft_labels: Tensor
    pos_anchor_index: Tensor
    pos_positive_index: Tensor
    pos_negative_index: Tensor
    pos_lambda: Tensor
    neg_features: Tensor
    neg_soft_labels: Tensor
    neg_anchor_index: Tensor
    neg_partner_index: Tensor
    neg_lambda: Tensor


class MixedBatch(NamedTuple):
    """Output of :func:`manifold_mixup`.

    Attributes:
        features: (batch_size, dim) mixed features ``lam * x + (1 - lam) * x[index]``.
        soft_labels: (batch_size, num_classes) ``lam * y + (1 - lam) * y[index]``.
        lam: 0-dim Tensor, the mixing coefficient (one per batch).
        index: (batch_size,) int64, the partner permutation.
    """

    features: Tensor
    soft_labels: Tensor
    lam: Tensor
    index: Tensor


def _generator_device(generator: torch.Generator | None) -> torch.device:
    return generator.device if generator is not None else torch.device("cpu")


def sample_beta(alpha: float, n: int, *, generator: torch.Generator | None = None) -> Tensor:
    """Draw n samples of Beta(alpha, alpha) reproducibly from ``generator``.

    ``X / (X + Y)`` with ``X, Y ~ Gamma(alpha, 1)`` drawn by ``torch._standard_gamma``, the op
    behind ``torch.distributions.Gamma``, which (unlike ``torch.distributions.Beta``) takes a
    generator: one vectorised call, no Python rejection loop, no host sync. Its Gamma draws are
    clamped to the smallest positive float64, so ``X + Y > 0`` even for tiny ``alpha``.

    Args:
        alpha: concentration alpha > 0 of the symmetric Beta distribution.
        n: number of samples.
        generator: source of randomness (default CPU generator when None).

    Returns:
        float64 Tensor with shape (n,) on the generator's device, values in [0, 1].
    """
    assert alpha > 0, f"alpha must be positive but found {alpha}"
    device = _generator_device(generator)
    concentration = torch.full((2, n), alpha, dtype=torch.float64, device=device)
    x, y = torch._standard_gamma(concentration, generator=generator)
    return x / (x + y)


def _check_inputs(features: Tensor, labels: Tensor, num_classes: int) -> None:
    assert features.ndim == 2, f"features must have shape (batch_size, dim) but found {tuple(features.shape)}"
    assert labels.shape == (features.shape[0],), (
        f"labels must have shape ({features.shape[0]},) but found {tuple(labels.shape)}"
    )
    assert num_classes > 0, f"num_classes must be positive but found {num_classes}"


def _mixing_matrix(first: Tensor, second: Tensor, lam: Tensor, n: int) -> Tensor:
    """Row r mixes ``lam[r]`` of sample ``first[r]`` with ``1 - lam[r]`` of ``second[r]``.

    Args:
        first: int64 Tensor with shape (k,), values in [0, n).
        second: int64 Tensor with shape (k,), values in [0, n) (may equal ``first``).
        lam: Tensor with shape (k,), the mixing coefficients.
        n: batch size.

    Returns:
        Tensor ``m`` with shape (k, n) and the dtype of ``lam``: ``m @ x`` is
        ``lam * x[first] + (1 - lam) * x[second]`` for any ``x`` with n rows (features or
        one-hot labels), with one matrix product forward and one backward.
    """
    m = lam.new_zeros(lam.shape[0], n)
    index = torch.stack([first, second], dim=1)
    return m.scatter_add_(1, index, torch.stack([lam, 1 - lam], dim=1))


def _pair_masks(labels: Tensor) -> tuple[Tensor, Tensor]:
    """``(pos, neg)`` bool (n, n) masks: same label and not self; different label."""
    same = labels[:, None] == labels[None, :]
    neg = ~same
    return same.fill_diagonal_(False), neg


def mixup_hard_pairs(
    features: Tensor,
    labels: Tensor,
    num_classes: int,
    alpha: float,
    lambda_p: float,
    lambda_n: float,
    *,
    generator: torch.Generator | None = None,
    variant: Variant = "paper",
) -> HardPairs:
    """Generate Core-tuning's hard positive and hard negative pairs by feature mixup (§4.2).

    Hardness is measured by cosine similarity of ``features`` (computed without gradient);
    the mixed features keep their gradient to ``features``.

    ``variant="paper"``:
        * hard positive for anchor i: ``z_i^+ = lam * z_hp + (1 - lam) * z_hn`` with ``z_hp``
          the positive (same label, not i) of lowest cosine similarity to ``z_i`` and ``z_hn``
          the negative of highest similarity, ``lam = max(Beta(alpha, alpha), lambda_p)``;
          its label is ``y_i``. Anchors without a positive or without a negative in the batch
          produce no hard positive (they are skipped).
        * hard negative for anchor i: ``z_i^- = (1 - lam) * z_i + lam * z_n`` with ``z_n``
          drawn uniformly among the samples of another class,
          ``lam = max(Beta(alpha, alpha), lambda_n)``, soft label
          ``(1 - lam) * y_i + lam * y_n``. Anchors without a negative are skipped.
        * draws, in order: P + M Beta values (the first P for the hard positives), then one
          uniform key per (hard-negative anchor, sample); ``z_n`` is the negative with the
          largest key.

    ``variant="official"`` (Core-tuning's ``feature_mixup``): every anchor yields one pair of
    each kind, nothing is skipped.
        * hard negatives: partner ``z_n = z_perm(i)`` for a uniformly random permutation of the
          batch (so it may share the anchor's class, or be the anchor), ``lam`` clipped at
          ``lambda_n``; soft label as above.
        * hard positives: ``lam ~ Beta(alpha, alpha)`` is *not* clipped (``lambda_p`` is
          ignored); ``z_hp`` is the argmin over all columns of ``cos * positive_mask`` (zeros at
          non-positives and at the anchor itself), replaced by the anchor when that argmin is
          column 0, and ``z_hn`` is the argmax of ``cos * negative_mask``; ties resolve to the
          first index. The label is the soft mix ``lam * y_hp + (1 - lam) * y_hn``.
        * draws, in order: the permutation, then 2N Beta values (the first N for the hard
          negatives).

    Which anchors are skipped depends only on ``labels``, and that bookkeeping runs on
    ``labels.device``: pass the labels as they came from the data loader (host memory) with
    features on an accelerator, and the call needs no device-to-host sync.

    Args:
        features: Tensor with shape (batch_size, dim), encoder features z (not necessarily
            normalised).
        labels: int Tensor with shape (batch_size,), values in [0, num_classes); on any device.
        num_classes: number of classes C.
        alpha: Beta(alpha, alpha) concentration, > 0.
        lambda_p: lower clip of the hard-positive lambda (paper only).
        lambda_n: lower clip of the hard-negative lambda.
        generator: source of randomness.
        variant: ``"paper"`` or ``"official"``.

    Returns:
        :class:`HardPairs`; every tensor is on the device of ``features`` and the mixed
        features, soft labels and lambdas have its dtype.
    """
    check_variant(variant)
    _check_inputs(features, labels, num_classes)
    n = features.shape[0]
    device, dtype = features.device, features.dtype
    draw_device = _generator_device(generator)
    labels = labels.long()
    labels_dev = labels.to(device)
    onehot = F.one_hot(labels_dev, num_classes).to(dtype)
    pos, neg = _pair_masks(labels)
    with torch.no_grad():
        unit = F.normalize(features.detach(), dim=1)
        cos = unit @ unit.T

    if variant == "official":
        perm = torch.randperm(n, generator=generator, device=draw_device).to(device)
        lam = sample_beta(alpha, 2 * n, generator=generator).to(device, dtype)
        lam_n, lam_p = lam[:n].clamp_(min=lambda_n), lam[n:]  # views of lam
        arange = torch.arange(n, device=device)
        hn = torch.where(neg.to(device), cos, 0.0).argmax(dim=1)
        hp = torch.where(pos.to(device), cos, 0.0).argmin(dim=1)
        hp = torch.where(hp == 0, arange, hp)
        mix = _mixing_matrix(torch.cat([perm, hp]), torch.cat([arange, hn]), lam, n)
        mixed = mix @ features
        mixed_soft = mix @ onehot
        return HardPairs(
            pos_features=mixed[n:],
            pos_labels=labels_dev,
            pos_soft_labels=mixed_soft[n:],
            pos_anchor_index=arange,
            pos_positive_index=hp,
            pos_negative_index=hn,
            pos_lambda=lam_p,
            neg_features=mixed[:n],
            neg_soft_labels=mixed_soft[:n],
            neg_anchor_index=arange,
            neg_partner_index=perm,
            neg_lambda=lam_n,
        )

    has_neg = neg.any(dim=1)
    a_idx = (pos.any(dim=1) & has_neg).nonzero().squeeze(1)  # anchors of hard positives
    b_idx = has_neg.nonzero().squeeze(1)  # anchors of hard negatives
    n_p, n_n = a_idx.numel(), b_idx.numel()
    lam = sample_beta(alpha, n_p + n_n, generator=generator).to(device, dtype)
    lam_p, lam_n = lam[:n_p].clamp_(min=lambda_p), lam[n_p:].clamp_(min=lambda_n)  # views of lam
    # partner uniformly among the anchor's negatives: the negative with the largest iid key
    keys = torch.rand(n_n, n, generator=generator, dtype=torch.float64, device=draw_device)
    partner = torch.where(neg[b_idx], keys.to(labels.device), -1.0).argmax(dim=1).to(device)
    a_idx, b_idx = a_idx.to(device), b_idx.to(device)
    hp = torch.where(pos.to(device), cos, float("inf")).argmin(dim=1)[a_idx]
    hn = torch.where(neg.to(device), cos, float("-inf")).argmax(dim=1)[a_idx]
    mix = _mixing_matrix(torch.cat([hp, partner]), torch.cat([hn, b_idx]), lam, n)
    mixed = mix @ features
    return HardPairs(
        pos_features=mixed[:n_p],
        pos_labels=labels_dev[a_idx],
        pos_soft_labels=onehot[a_idx],
        pos_anchor_index=a_idx,
        pos_positive_index=hp,
        pos_negative_index=hn,
        pos_lambda=lam_p,
        neg_features=mixed[n_p:],
        neg_soft_labels=mix[n_p:] @ onehot,
        neg_anchor_index=b_idx,
        neg_partner_index=partner,
        neg_lambda=lam_n,
    )


def contrastive_set(
    features: Tensor,
    labels: Tensor,
    pairs: HardPairs,
    num_classes: int,
    *,
    variant: Variant = "paper",
) -> tuple[Tensor, Tensor]:
    """Stack the originals and the generated pairs into Core-tuning's contrastive set (§4.3).

    ``variant="paper"``: ``[z, B^+, B^-]`` with labels ``[y, y_anchor, soft]``, all
    differentiable. ``variant="official"``: ``[z.detach(), B^-, B^+]`` (the public code adds
    the original features to the set detached from the encoder, so the encoder only receives
    gradients through the mixed features) with labels ``[y, soft^-, soft^+]``. The public code
    also trains the classifier on this whole set with :func:`soft_cross_entropy`, whereas the
    paper's ``L_ce^m`` (§4.4) is CE on the originals plus soft CE on ``B^-`` only.

    Args:
        features: Tensor with shape (batch_size, dim), the encoder features given to
            :func:`mixup_hard_pairs`.
        labels: int Tensor with shape (batch_size,).
        pairs: the output of :func:`mixup_hard_pairs` for these features.
        num_classes: number of classes C.
        variant: ``"paper"`` or ``"official"``.

    Returns:
        ``(set_features, set_labels)`` with shapes (batch_size + P + M, dim) and
        (batch_size + P + M, num_classes); positives for the (focal) contrastive loss follow
        from ``soft_label_positive_mask(set_labels, set_labels, variant=variant)``.
    """
    check_variant(variant)
    _check_inputs(features, labels, num_classes)
    onehot = F.one_hot(labels.to(features.device).long(), num_classes).to(features.dtype)
    if variant == "official":
        feats = [features.detach(), pairs.neg_features, pairs.pos_features]
        soft = [onehot, pairs.neg_soft_labels, pairs.pos_soft_labels]
    else:
        feats = [features, pairs.pos_features, pairs.neg_features]
        soft = [onehot, pairs.pos_soft_labels, pairs.neg_soft_labels]
    return torch.cat(feats, dim=0), torch.cat([s.to(features.dtype) for s in soft], dim=0)


def soft_label_positive_mask(
    soft_labels_a: Tensor, soft_labels_b: Tensor | None = None, *, variant: Variant = "paper"
) -> Tensor:
    """Which samples are positives of each other, given (soft) label vectors.

    ``variant="paper"``: i and j are positives when their dominant labels agree,
    ``argmax(q_i) == argmax(q_j)`` (ties resolve to the first class). With
    ``lambda_n > 0.5`` a hard negative's dominant label is its partner's class.
    ``variant="official"``: positives only on exact equality of the whole label vectors (the
    public code encodes each label vector as one number and compares those), so a mixed
    sample is a positive only of samples mixed with exactly the same classes and weights.

    The diagonal is not cleared; the losses ignore it.

    Args:
        soft_labels_a: Tensor with shape (n_a, num_classes).
        soft_labels_b: Tensor with shape (n_b, num_classes); ``soft_labels_a`` when None.
        variant: ``"paper"`` or ``"official"``.

    Returns:
        bool Tensor with shape (n_a, n_b).
    """
    check_variant(variant)
    b = soft_labels_a if soft_labels_b is None else soft_labels_b
    assert soft_labels_a.ndim == 2 and b.ndim == 2 and soft_labels_a.shape[1] == b.shape[1], (
        f"soft labels must have shapes (n_a, C) and (n_b, C) but found "
        f"{tuple(soft_labels_a.shape)} and {tuple(b.shape)}"
    )
    if variant == "paper":
        dominant_a = soft_labels_a.argmax(dim=1)
        dominant_b = dominant_a if soft_labels_b is None else b.argmax(dim=1)
        return dominant_a[:, None] == dominant_b[None, :]
    both = torch.cat([soft_labels_a, b.to(soft_labels_a)], dim=0)
    _, ids = torch.unique(both, dim=0, return_inverse=True)
    n_a = soft_labels_a.shape[0]
    return ids[:n_a, None] == ids[None, n_a:]


def manifold_mixup(
    features: Tensor,
    labels_onehot: Tensor,
    alpha: float,
    *,
    generator: torch.Generator | None = None,
) -> MixedBatch:
    """Mix random pairs of features (manifold mixup, Verma et al., 2019; Core-tuning Table 2).

    One ``lam ~ Beta(alpha, alpha)`` per batch and a uniformly random permutation ``index``:
    ``x~ = lam * x + (1 - lam) * x[index]``, ``y~ = lam * y + (1 - lam) * y[index]``
    (draws in order: lam, then the permutation).

    Args:
        features: Tensor with shape (batch_size, dim), hidden features at the chosen layer.
        labels_onehot: Tensor with shape (batch_size, num_classes), one-hot or soft labels.
        alpha: Beta(alpha, alpha) concentration, > 0.
        generator: source of randomness.

    Returns:
        :class:`MixedBatch` (unpacks as ``features, soft_labels, lam, index``).
    """
    assert features.ndim == 2, f"features must have shape (batch_size, dim) but found {tuple(features.shape)}"
    assert labels_onehot.ndim == 2 and labels_onehot.shape[0] == features.shape[0], (
        f"labels_onehot must have shape ({features.shape[0]}, num_classes) "
        f"but found {tuple(labels_onehot.shape)}"
    )
    n = features.shape[0]
    lam = sample_beta(alpha, 1, generator=generator)[0].to(features.device, features.dtype)
    index = torch.randperm(n, generator=generator, device=_generator_device(generator))
    index = index.to(features.device)
    y = labels_onehot.to(features.dtype)
    return MixedBatch(
        features=lam * features + (1 - lam) * features[index],
        soft_labels=lam * y + (1 - lam) * y[index],
        lam=lam,
        index=index,
    )
