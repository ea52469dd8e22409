"""Feature mixup of Core-tuning (Zhang et al., 2021): hard pair generation (§4.2, "mixup-hard")
and the manifold-mixup ablation (Table 2, "mixup" row).

Randomness only comes from the ``generator`` argument (a ``torch.Generator``; the default CPU
generator when None), so a seeded generator gives identical pairs. Beta(alpha, alpha) is sampled
as ``X / (X + Y)`` with ``X, Y ~ Gamma(alpha)`` drawn by Marsaglia-Tsang rejection from
``torch.randn`` / ``torch.rand`` (``torch.distributions.Beta`` cannot take a generator).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ftsweep.losses.supcon import Variant, _check_variant


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


def _uniform_open0(n: int, generator: torch.Generator | None) -> Tensor:
    """Uniform draws in (0, 1], float64, shape (n,), on the generator's device."""
    device = _generator_device(generator)
    return 1.0 - torch.rand(n, generator=generator, dtype=torch.float64, device=device)


def _log_standard_gamma(shape: float, n: int, generator: torch.Generator | None) -> Tensor:
    """log of n Gamma(shape, 1) draws (Marsaglia & Tsang, 2000), float64, shape (n,)."""
    device = _generator_device(generator)
    boosted = shape < 1.0
    a = shape + 1.0 if boosted else shape
    d = a - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    out = torch.zeros(n, dtype=torch.float64, device=device)
    todo = torch.ones(n, dtype=torch.bool, device=device)
    while bool(todo.any()):
        idx = todo.nonzero().squeeze(1)
        x = torch.randn(idx.numel(), generator=generator, dtype=torch.float64, device=device)
        log_u = _uniform_open0(idx.numel(), generator).log()
        v = (1.0 + c * x) ** 3
        log_v = v.clamp(min=torch.finfo(torch.float64).tiny).log()
        accept = (v > 0) & (log_u < 0.5 * x * x + d - d * v + d * log_v)
        out[idx[accept]] = math.log(d) + log_v[accept]
        todo[idx[accept]] = False
    if boosted:  # Gamma(a) = Gamma(a + 1) * U^(1/a)
        out = out + _uniform_open0(n, generator).log() / shape
    return out


def sample_beta(alpha: float, n: int, *, generator: torch.Generator | None = None) -> Tensor:
    """Draw n samples of Beta(alpha, alpha) reproducibly from ``generator``.

    Args:
        alpha: concentration alpha > 0 of the symmetric Beta distribution.
        n: number of samples.
        generator: source of randomness (default CPU generator when None).

    Returns:
        float64 Tensor with shape (n,) on the generator's device, values in [0, 1].
    """
    assert alpha > 0, f"alpha must be positive but found {alpha}"
    log_x = _log_standard_gamma(alpha, n, generator)
    log_y = _log_standard_gamma(alpha, n, generator)
    return torch.sigmoid(log_x - log_y)


def _check_inputs(features: Tensor, labels: Tensor, num_classes: int) -> None:
    assert features.ndim == 2, f"features must have shape (batch_size, dim) but found {tuple(features.shape)}"
    assert labels.shape == (features.shape[0],), (
        f"labels must have shape ({features.shape[0]},) but found {tuple(labels.shape)}"
    )
    assert num_classes > 0, f"num_classes must be positive but found {num_classes}"


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
        * draws, in order: the hard-positive lambdas, the negative choices, the hard-negative
          lambdas.

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
        * draws, in order: the permutation, the hard-negative lambdas, the hard-positive
          lambdas.

    Args:
        features: Tensor with shape (batch_size, dim), encoder features z (not necessarily
            normalised).
        labels: int Tensor with shape (batch_size,), values in [0, num_classes).
        num_classes: number of classes C.
        alpha: Beta(alpha, alpha) concentration, > 0.
        lambda_p: lower clip of the hard-positive lambda (paper only).
        lambda_n: lower clip of the hard-negative lambda.
        generator: source of randomness.
        variant: ``"paper"`` or ``"official"``.

    Returns:
        :class:`HardPairs`; mixed features have the dtype and device of ``features``.
    """
    _check_variant(variant)
    _check_inputs(features, labels, num_classes)
    n = features.shape[0]
    device = features.device
    labels = labels.to(device)
    onehot = F.one_hot(labels.long(), num_classes).to(features.dtype)
    with torch.no_grad():
        unit = F.normalize(features.detach(), dim=1)
        cos = unit @ unit.T
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(n, dtype=torch.bool, device=device)
    pos = same & ~eye
    neg = ~same

    def beta(count: int) -> Tensor:
        return sample_beta(alpha, count, generator=generator).to(device, features.dtype)

    if variant == "official":
        perm = torch.randperm(n, generator=generator, device=_generator_device(generator))
        perm = perm.to(device)
        lam_n = beta(n).clamp(min=lambda_n)
        neg_features = (1 - lam_n)[:, None] * features + lam_n[:, None] * features[perm]
        neg_soft = (1 - lam_n)[:, None] * onehot + lam_n[:, None] * onehot[perm]
        hn = (cos * neg.to(cos.dtype)).argmax(dim=1)
        hp = (cos * pos.to(cos.dtype)).argmin(dim=1)
        arange = torch.arange(n, device=device)
        hp = torch.where(hp == 0, arange, hp)
        lam_p = beta(n)
        pos_features = lam_p[:, None] * features[hp] + (1 - lam_p)[:, None] * features[hn]
        pos_soft = lam_p[:, None] * onehot[hp] + (1 - lam_p)[:, None] * onehot[hn]
        return HardPairs(
            pos_features=pos_features,
            pos_labels=labels.long(),
            pos_soft_labels=pos_soft,
            pos_anchor_index=arange,
            pos_positive_index=hp,
            pos_negative_index=hn,
            pos_lambda=lam_p,
            neg_features=neg_features,
            neg_soft_labels=neg_soft,
            neg_anchor_index=arange,
            neg_partner_index=perm,
            neg_lambda=lam_n,
        )

    has_pos = pos.any(dim=1)
    has_neg = neg.any(dim=1)
    # hard positives
    a_idx = (has_pos & has_neg).nonzero().squeeze(1)
    hp = cos.masked_fill(~pos, float("inf")).argmin(dim=1)[a_idx]
    hn = cos.masked_fill(~neg, float("-inf")).argmax(dim=1)[a_idx]
    lam_p = beta(a_idx.numel()).clamp(min=lambda_p)
    pos_features = lam_p[:, None] * features[hp] + (1 - lam_p)[:, None] * features[hn]
    # hard negatives: partner uniformly among the anchor's negatives
    b_idx = has_neg.nonzero().squeeze(1)
    neg_b = neg[b_idx]
    count = neg_b.sum(dim=1)
    u = torch.rand(b_idx.numel(), generator=generator, dtype=torch.float64,
                   device=_generator_device(generator)).to(device)  # fmt: skip
    rank = torch.minimum((u * count.to(torch.float64)).floor().long(), count - 1)
    partner = (neg_b & (neg_b.long().cumsum(dim=1) - 1 == rank[:, None])).long().argmax(dim=1)
    lam_n = beta(b_idx.numel()).clamp(min=lambda_n)
    neg_features = (1 - lam_n)[:, None] * features[b_idx] + lam_n[:, None] * features[partner]
    neg_soft = (1 - lam_n)[:, None] * onehot[b_idx] + lam_n[:, None] * onehot[partner]
    return HardPairs(
        pos_features=pos_features,
        pos_labels=labels[a_idx].long(),
        pos_soft_labels=onehot[a_idx],
        pos_anchor_index=a_idx,
        pos_positive_index=hp,
        pos_negative_index=hn,
        pos_lambda=lam_p,
        neg_features=neg_features,
        neg_soft_labels=neg_soft,
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
    _check_variant(variant)
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
    _check_variant(variant)
    b = soft_labels_a if soft_labels_b is None else soft_labels_b
    assert soft_labels_a.ndim == 2 and b.ndim == 2 and soft_labels_a.shape[1] == b.shape[1], (
        f"soft labels must have shapes (n_a, C) and (n_b, C) but found "
        f"{tuple(soft_labels_a.shape)} and {tuple(b.shape)}"
    )
    if variant == "paper":
        return soft_labels_a.argmax(dim=1)[:, None] == b.argmax(dim=1)[None, :]
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
