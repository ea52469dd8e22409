"""Tests for ftsweep.losses.mixup: hard pair generation (Core-tuning §4.2) and manifold mixup."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ftsweep.losses.mixup import (
    contrastive_set,
    manifold_mixup,
    mixup_hard_pairs,
    sample_beta,
    soft_label_positive_mask,
)

C = 5
# class 4 has a single sample (no positive); every sample has negatives
LABELS = [0, 0, 1, 1, 1, 2, 2, 3, 3, 0, 4]


def _feats(n: int, d: int = 6, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64)


def _cos(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def _pairs(variant: str, seed: int = 0, lambda_p: float = 0.8, lambda_n: float = 0.8):
    z = _feats(len(LABELS))
    g = torch.Generator().manual_seed(seed)
    return z, mixup_hard_pairs(
        z, torch.tensor(LABELS), C, 1.0, lambda_p, lambda_n, generator=g, variant=variant
    )


def test_paper_lambdas_are_clipped() -> None:
    _, p = _pairs("paper", lambda_p=0.6, lambda_n=0.7)
    assert p.pos_lambda.numel() > 0 and p.neg_lambda.numel() > 0
    assert all(lam >= 0.6 for lam in p.pos_lambda.tolist())
    assert all(lam >= 0.7 for lam in p.neg_lambda.tolist())
    assert all(lam <= 1.0 for lam in p.pos_lambda.tolist() + p.neg_lambda.tolist())


def test_paper_hardest_positive_and_negative_by_loop() -> None:
    z, p = _pairs("paper")
    v = z.tolist()
    n = len(LABELS)
    expected_anchors = [i for i in range(n) if any(LABELS[j] == LABELS[i] for j in range(n) if j != i)]
    assert p.pos_anchor_index.tolist() == expected_anchors  # the lone class-4 sample is skipped
    for r, i in enumerate(p.pos_anchor_index.tolist()):
        best_pos, best_neg = None, None
        for j in range(n):
            c = _cos(v[i], v[j])
            if j != i and LABELS[j] == LABELS[i] and (best_pos is None or c < best_pos[0]):
                best_pos = (c, j)
            if LABELS[j] != LABELS[i] and (best_neg is None or c > best_neg[0]):
                best_neg = (c, j)
        assert p.pos_positive_index[r].item() == best_pos[1]
        assert p.pos_negative_index[r].item() == best_neg[1]
        lam = p.pos_lambda[r].item()
        want = [lam * a + (1 - lam) * b for a, b in zip(v[best_pos[1]], v[best_neg[1]], strict=True)]
        assert p.pos_features[r].tolist() == pytest.approx(want, rel=1e-12)
        assert p.pos_labels[r].item() == LABELS[i]
        assert p.pos_soft_labels[r].tolist() == [float(c == LABELS[i]) for c in range(C)]


def test_paper_hard_negatives_mix_a_sample_of_another_class() -> None:
    z, p = _pairs("paper")
    v = z.tolist()
    assert p.neg_anchor_index.tolist() == list(range(len(LABELS)))
    for r in range(p.neg_anchor_index.numel()):
        i, k = p.neg_anchor_index[r].item(), p.neg_partner_index[r].item()
        lam = p.neg_lambda[r].item()
        assert LABELS[k] != LABELS[i]
        want = [(1 - lam) * a + lam * b for a, b in zip(v[i], v[k], strict=True)]
        assert p.neg_features[r].tolist() == pytest.approx(want, rel=1e-12)
        soft = [(1 - lam) * (c == LABELS[i]) + lam * (c == LABELS[k]) for c in range(C)]
        assert p.neg_soft_labels[r].tolist() == pytest.approx(soft, rel=1e-12)


@pytest.mark.parametrize("variant", ["paper", "official"])
def test_soft_labels_are_distributions(variant: str) -> None:
    _, p = _pairs(variant)
    for soft in (p.neg_soft_labels, p.pos_soft_labels):
        assert all(s == pytest.approx(1.0, abs=1e-12) for s in soft.sum(dim=1).tolist())
        assert bool((soft >= 0).all())


@pytest.mark.parametrize("variant", ["paper", "official"])
def test_reproducible_under_the_same_generator(variant: str) -> None:
    _, a = _pairs(variant, seed=3)
    _, b = _pairs(variant, seed=3)
    _, c = _pairs(variant, seed=4)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a.neg_lambda, c.neg_lambda)


def test_paper_skips_anchors_without_negatives_or_positives() -> None:
    z = _feats(4)
    p = mixup_hard_pairs(z, torch.zeros(4, dtype=torch.long), C, 1.0, 0.8, 0.8)
    assert p.pos_features.shape == (0, 6) and p.neg_features.shape == (0, 6)
    assert p.neg_soft_labels.shape == (0, C) and p.pos_anchor_index.numel() == 0
    q = mixup_hard_pairs(z, torch.arange(4), C, 1.0, 0.8, 0.8)  # no positives
    assert q.pos_features.shape == (0, 6) and q.neg_features.shape == (4, 6)


def test_official_pairs_follow_the_public_code() -> None:
    z, p = _pairs("official", lambda_p=0.99)
    v = z.tolist()
    n = len(LABELS)
    assert p.pos_anchor_index.tolist() == list(range(n))
    assert sorted(p.neg_partner_index.tolist()) == list(range(n))  # a permutation
    assert all(lam >= 0.8 for lam in p.neg_lambda.tolist())
    for i in range(n):
        # argmin / argmax over cos * mask, zeros included, first index on ties; 0 -> anchor
        pos_row = [_cos(v[i], v[j]) if (j != i and LABELS[j] == LABELS[i]) else 0.0 for j in range(n)]
        neg_row = [_cos(v[i], v[j]) if LABELS[j] != LABELS[i] else 0.0 for j in range(n)]
        hp = min(range(n), key=lambda j: (pos_row[j], j))
        hp = i if hp == 0 else hp
        hn = max(range(n), key=lambda j: (neg_row[j], -j))
        assert p.pos_positive_index[i].item() == hp
        assert p.pos_negative_index[i].item() == hn
        lam = p.pos_lambda[i].item()
        soft = [lam * (c == LABELS[hp]) + (1 - lam) * (c == LABELS[hn]) for c in range(C)]
        assert p.pos_soft_labels[i].tolist() == pytest.approx(soft, rel=1e-12)


def test_official_ignores_lambda_p() -> None:
    _, a = _pairs("official", seed=5, lambda_p=0.0)
    _, b = _pairs("official", seed=5, lambda_p=0.99)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_mixed_features_keep_gradient() -> None:
    z = _feats(len(LABELS)).requires_grad_()
    p = mixup_hard_pairs(z, torch.tensor(LABELS), C, 1.0, 0.8, 0.8)
    (p.pos_features.sum() + p.neg_features.sum()).backward()
    assert z.grad is not None and torch.isfinite(z.grad).all() and bool((z.grad != 0).any())


@pytest.mark.parametrize("variant", ["paper", "official"])
def test_contrastive_set_detaches_originals_only_in_official(variant: str) -> None:
    z = _feats(len(LABELS)).requires_grad_()
    labels = torch.tensor(LABELS)
    p = mixup_hard_pairs(z, labels, C, 1.0, 0.8, 0.8, variant=variant)
    feats, soft = contrastive_set(z, labels, p, C, variant=variant)
    n = len(LABELS)
    assert feats.shape[0] == soft.shape[0] == n + p.pos_features.shape[0] + p.neg_features.shape[0]
    (grad,) = torch.autograd.grad(feats[:n].sum(), z, allow_unused=True, materialize_grads=True)
    assert bool((grad == 0).all()) == (variant == "official")


def test_soft_label_positive_mask_by_loop() -> None:
    q = torch.tensor(
        [[1.0, 0.0, 0.0], [0.2, 0.8, 0.0], [0.2, 0.8, 0.0], [0.0, 0.9, 0.1], [0.0, 1.0, 0.0]],
        dtype=torch.float64,
    )
    rows = q.tolist()
    paper = soft_label_positive_mask(q, variant="paper")
    official = soft_label_positive_mask(q, q, variant="official")
    for i, a in enumerate(rows):
        for j, b in enumerate(rows):
            assert paper[i, j].item() == (a.index(max(a)) == b.index(max(b)))
            assert official[i, j].item() == (a == b)


def test_sample_beta_moments_and_range() -> None:
    g = torch.Generator().manual_seed(0)
    for alpha in (0.1, 1.0, 5.0):
        x = sample_beta(alpha, 20000, generator=g)
        assert bool(((x >= 0) & (x <= 1)).all())
        var = 1.0 / (4.0 * (2.0 * alpha + 1.0))
        assert x.mean().item() == pytest.approx(0.5, abs=4 * math.sqrt(var / 20000))
        assert x.var().item() == pytest.approx(var, rel=0.05)


def test_manifold_mixup() -> None:
    z = _feats(6)
    y = F.one_hot(torch.tensor([0, 1, 2, 0, 1, 2]), 3).to(torch.float64)
    out = manifold_mixup(z, y, 1.0, generator=torch.Generator().manual_seed(1))
    again = manifold_mixup(z, y, 1.0, generator=torch.Generator().manual_seed(1))
    assert torch.equal(out.features, again.features) and torch.equal(out.index, again.index)
    lam = out.lam.item()
    assert 0.0 <= lam <= 1.0 and sorted(out.index.tolist()) == list(range(6))
    v, idx = z.tolist(), out.index.tolist()
    for i in range(6):
        want = [lam * a + (1 - lam) * b for a, b in zip(v[i], v[idx[i]], strict=True)]
        assert out.features[i].tolist() == pytest.approx(want, rel=1e-12)
    assert all(s == pytest.approx(1.0) for s in out.soft_labels.sum(dim=1).tolist())
    features, soft_labels, _, _ = out
    assert features.shape == z.shape and soft_labels.shape == y.shape


def test_sample_beta_tiny_alpha_is_finite_and_reproducible() -> None:
    x = sample_beta(0.01, 4000, generator=torch.Generator().manual_seed(0))
    again = sample_beta(0.01, 4000, generator=torch.Generator().manual_seed(0))
    assert torch.equal(x, again)
    assert bool(torch.isfinite(x).all()) and bool(((x >= 0) & (x <= 1)).all())
    # Beta(0.01, 0.01) puts almost all mass near 0 and 1, about half at each end
    assert ((x < 0.01) | (x > 0.99)).double().mean().item() > 0.9
    assert (x < 0.5).double().mean().item() == pytest.approx(0.5, abs=0.05)


def test_paper_partner_is_uniform_over_the_negatives() -> None:
    labels = torch.tensor([0, 0, 1, 1, 1, 2])  # negatives of anchor 0: samples 2, 3, 4, 5
    z = _feats(6)
    g = torch.Generator().manual_seed(0)
    draws = 2000
    counts = [0] * 6
    for _ in range(draws):
        p = mixup_hard_pairs(z, labels, 3, 1.0, 0.8, 0.8, generator=g)
        counts[p.neg_partner_index[0].item()] += 1
    assert counts[:2] == [0, 0]
    sd = math.sqrt(draws * 0.25 * 0.75)
    assert all(abs(c - draws / 4) < 4 * sd for c in counts[2:])


def test_official_mixed_values_by_loop_including_fixed_points() -> None:
    labels = [0, 1, 0]
    z = _feats(3)
    v = z.tolist()
    fixed_points = 0
    for seed in range(12):
        g = torch.Generator().manual_seed(seed)
        p = mixup_hard_pairs(z, torch.tensor(labels), 2, 1.0, 0.8, 0.5, generator=g, variant="official")
        for i in range(3):
            k, lam = p.neg_partner_index[i].item(), p.neg_lambda[i].item()
            fixed_points += k == i
            want = [(1 - lam) * a + lam * b for a, b in zip(v[i], v[k], strict=True)]
            assert p.neg_features[i].tolist() == pytest.approx(want, rel=1e-12)
            soft = [(1 - lam) * (c == labels[i]) + lam * (c == labels[k]) for c in range(2)]
            assert p.neg_soft_labels[i].tolist() == pytest.approx(soft, rel=1e-12, abs=1e-15)
            hp, hn, mu = (
                p.pos_positive_index[i].item(),
                p.pos_negative_index[i].item(),
                p.pos_lambda[i].item(),
            )
            want = [mu * a + (1 - mu) * b for a, b in zip(v[hp], v[hn], strict=True)]
            assert p.pos_features[i].tolist() == pytest.approx(want, rel=1e-12)
    assert fixed_points > 0  # the permutation partner can be the anchor itself


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("variant", ["paper", "official"])
def test_float32_features_keep_dtype_and_labels_may_be_int32(variant: str) -> None:
    z = _feats(len(LABELS)).float()
    p = mixup_hard_pairs(z, torch.tensor(LABELS, dtype=torch.int32), C, 1.0, 0.8, 0.8, variant=variant)
    assert all(t.dtype == torch.float32 for t in (p.pos_features, p.neg_features, p.neg_soft_labels))
    assert all(t.dtype == torch.float32 for t in (p.pos_lambda, p.neg_lambda, p.pos_soft_labels))
    assert p.pos_labels.dtype == torch.int64
    ref = mixup_hard_pairs(
        z.double(), torch.tensor(LABELS), C, 1.0, 0.8, 0.8, variant=variant, generator=_gen()
    )
    again = mixup_hard_pairs(
        z, torch.tensor(LABELS, dtype=torch.int32), C, 1.0, 0.8, 0.8, variant=variant, generator=_gen()
    )
    assert torch.equal(ref.neg_partner_index, again.neg_partner_index)
    assert torch.allclose(ref.neg_features.float(), again.neg_features, atol=1e-6)


def test_soft_label_positive_mask_paper_between_two_sets_by_loop() -> None:
    a = torch.tensor([[0.7, 0.3, 0.0], [0.2, 0.0, 0.8], [0.5, 0.5, 0.0]], dtype=torch.float64)
    b = torch.tensor(
        [[0.0, 1.0, 0.0], [0.6, 0.4, 0.0], [0.1, 0.2, 0.7], [1.0, 0.0, 0.0]], dtype=torch.float64
    )
    got = soft_label_positive_mask(a, b, variant="paper")
    assert got.shape == (3, 4)
    for i, qa in enumerate(a.tolist()):
        for j, qb in enumerate(b.tolist()):
            assert got[i, j].item() == (qa.index(max(qa)) == qb.index(max(qb)))  # ties: first class
