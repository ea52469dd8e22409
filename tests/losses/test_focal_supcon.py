"""Tests for ftsweep.losses.focal_supcon against brute-force loops that share no code with it."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ftsweep.losses.focal_supcon import focal_supcon_loss


def _unit(n: int, d: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n, d, generator=g, dtype=torch.float64), dim=1)


def _brute(x: torch.Tensor, pos: list[list[bool]], tau: float, variant: str) -> float:
    """Core-tuning §4.3 (paper) or its public focal_SupConLoss (official), term by term."""
    v = x.tolist()
    n = len(v)
    total, anchors = 0.0, 0
    for i in range(n):
        positives = [j for j in range(n) if j != i and pos[i][j]]
        if not positives:
            continue
        denom = 0.0
        for k in range(n):
            if k != i:
                denom += math.exp(sum(a * b for a, b in zip(v[i], v[k], strict=True)) / tau)
        acc = 0.0
        for j in positives:
            p = math.exp(sum(a * b for a, b in zip(v[i], v[j], strict=True)) / tau) / denom
            acc += (1.0 - p) * math.log(p)
        total += -acc / (len(positives) if variant == "paper" else n)
        anchors += 1
    return total / anchors if anchors else 0.0


def _brute_torch(x: torch.Tensor, pos: list[list[bool]], tau: float, detach_weight: bool) -> torch.Tensor:
    """Paper variant with scalar autograd ops, optionally detaching the focal weight."""
    n = x.shape[0]
    terms = []
    for i in range(n):
        positives = [j for j in range(n) if j != i and pos[i][j]]
        if not positives:
            continue
        denom = sum(torch.exp(torch.dot(x[i], x[k]) / tau) for k in range(n) if k != i)
        acc = x.new_zeros(())
        for j in positives:
            p = torch.exp(torch.dot(x[i], x[j]) / tau) / denom
            w = (1 - p).detach() if detach_weight else 1 - p
            acc = acc + w * torch.log(p)
        terms.append(-acc / len(positives))
    return torch.stack(terms).mean()


def _label_mask(labels: list[int]) -> list[list[bool]]:
    return [[a == b for b in labels] for a in labels]


LABELS = [
    [0, 0, 1, 1, 2, 2, 3, 3],
    [0, 1, 0, 2, 1, 0, 3, 4, 4],
    [2, 2, 2, 2],
    [0, 1],
    [1, 1],
    [0, 1, 2, 3],
]


@pytest.mark.parametrize("variant", ["paper", "official"])
@pytest.mark.parametrize("labels", LABELS)
@pytest.mark.parametrize("tau", [0.07, 0.5])
def test_matches_brute_force(labels: list[int], variant: str, tau: float) -> None:
    x = _unit(len(labels), 5, seed=len(labels))
    got = focal_supcon_loss(x, torch.tensor(labels), tau, variant=variant)
    want = _brute(x, _label_mask(labels), tau, variant)
    assert got.item() == pytest.approx(want, rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("variant", ["paper", "official"])
def test_soft_label_positive_mask_override(variant: str) -> None:
    # rows 0-2 one-hot class 0/1, rows 3-5 mixed; 3 and 4 share the exact same soft label
    soft = [[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.2, 0.8], [0.2, 0.8], [0.1, 0.9]]
    pos = [[a == b for b in soft] for a in soft]
    x = _unit(6, 4, seed=9)
    got = focal_supcon_loss(x, None, 0.1, variant=variant, positive_mask=torch.tensor(pos))
    assert got.item() == pytest.approx(_brute(x, pos, 0.1, variant), rel=1e-10)


@pytest.mark.parametrize("variant", ["paper", "official"])
def test_no_positive_is_zero_with_finite_backward(variant: str) -> None:
    x = _unit(5, 3, seed=1).requires_grad_()
    loss = focal_supcon_loss(x, torch.arange(5), 0.1, variant=variant)
    loss.backward()
    assert loss.item() == 0.0 and torch.all(x.grad == 0)


def test_focal_weight_is_differentiated() -> None:
    x = _unit(7, 4, seed=2)
    labels = [0, 0, 0, 1, 1, 2, 2]
    pos = _label_mask(labels)
    xa = x.clone().requires_grad_()
    focal_supcon_loss(xa, torch.tensor(labels), 0.2).backward()
    xb = x.clone().requires_grad_()
    _brute_torch(xb, pos, 0.2, detach_weight=False).backward()
    xc = x.clone().requires_grad_()
    _brute_torch(xc, pos, 0.2, detach_weight=True).backward()
    torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-10, atol=1e-12)
    assert not torch.allclose(xa.grad, xc.grad, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("variant", ["paper", "official"])
def test_gradient_matches_finite_differences(variant: str) -> None:
    raw = torch.randn(6, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    labels = torch.tensor([0, 0, 1, 1, 1, 2])

    def fn(r: torch.Tensor) -> torch.Tensor:
        return focal_supcon_loss(F.normalize(r, dim=1), labels, 0.3, variant=variant)

    assert torch.autograd.gradcheck(fn, (raw.requires_grad_(),))


@pytest.mark.parametrize("variant", ["paper", "official"])
def test_permutation_invariant(variant: str) -> None:
    x = _unit(9, 5, seed=4)
    labels = torch.tensor([0, 1, 0, 2, 1, 0, 3, 4, 4])
    perm = torch.randperm(9, generator=torch.Generator().manual_seed(0))
    a = focal_supcon_loss(x, labels, 0.2, variant=variant)
    b = focal_supcon_loss(x[perm], labels[perm], 0.2, variant=variant)
    assert a.item() == pytest.approx(b.item(), rel=1e-12)


def test_float32_small_temperature_is_finite() -> None:
    x = _unit(16, 8, seed=6).float().requires_grad_()
    loss = focal_supcon_loss(x, torch.arange(16) % 4, 0.005)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()


def test_scaled_gram_backward_matches_autograd_mm() -> None:
    from ftsweep.losses._contrastive import _ScaledGram

    v = torch.randn(7, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    upstream = torch.randn(
        7, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(4)
    )  # not symmetric
    a = v.clone().requires_grad_()
    (_ScaledGram.apply(a, 2.5) * upstream).sum().backward()
    b = v.clone().requires_grad_()
    ((b @ b.T * 2.5) * upstream).sum().backward()
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-12, atol=1e-12)
    assert torch.autograd.gradcheck(lambda x: _ScaledGram.apply(x, 0.3), (v.clone().requires_grad_(),))


@pytest.mark.parametrize("variant", ["paper", "official"])
def test_dominant_self_similarity_is_excluded(variant: str) -> None:
    # unnormalised rows with large norms: s_ii dwarfs every s_ik, yet never enters the loss
    x = _unit(6, 3, seed=5) * torch.tensor([[6.0], [1.0], [5.0], [1.0], [1.0], [4.0]], dtype=torch.float64)
    labels = [0, 0, 1, 1, 2, 2]
    xr = x.clone().requires_grad_()
    loss = focal_supcon_loss(xr, torch.tensor(labels), 0.5, variant=variant)
    loss.backward()
    assert loss.item() == pytest.approx(_brute(x, _label_mask(labels), 0.5, variant), rel=1e-10)
    assert torch.isfinite(xr.grad).all()


def _brute_anchors(x: torch.Tensor, pos: list[list[bool]], tau: float, num_anchors: int) -> float:
    """Core-tuning §4.3 over an enlarged set: anchors i = 1..n (the originals), P_i and A_i
    over every row (originals and generated pairs), float64 scalar loops."""
    v = x.tolist()
    rows = len(v)
    total, anchors = 0.0, 0
    for i in range(num_anchors):
        positives = [j for j in range(rows) if j != i and pos[i][j]]
        if not positives:
            continue
        denom = sum(
            math.exp(sum(a * b for a, b in zip(v[i], v[k], strict=True)) / tau) for k in range(rows) if k != i
        )
        acc = 0.0
        for j in positives:
            p = math.exp(sum(a * b for a, b in zip(v[i], v[j], strict=True)) / tau) / denom
            acc += (1.0 - p) * math.log(p)
        total += -acc / len(positives)
        anchors += 1
    return total / anchors if anchors else 0.0


@pytest.mark.parametrize("num_anchors", [1, 3, 5, 8])
@pytest.mark.parametrize("tau", [0.07, 0.5])
def test_num_anchors_sums_over_the_originals_only(num_anchors: int, tau: float) -> None:
    labels = [0, 1, 0, 2, 1, 0, 2, 1]  # rows >= num_anchors play the generated pairs
    x = _unit(len(labels), 6, seed=11)
    got = focal_supcon_loss(x, torch.tensor(labels), tau, num_anchors=num_anchors)
    want = _brute_anchors(x, _label_mask(labels), tau, num_anchors)
    assert got.item() == pytest.approx(want, rel=1e-10, abs=1e-12)
    if num_anchors == len(labels):
        assert got.item() == pytest.approx(focal_supcon_loss(x, torch.tensor(labels), tau).item(), rel=1e-12)


def test_num_anchors_gradient_reaches_generated_rows() -> None:
    x = _unit(6, 4, seed=3).requires_grad_(True)
    loss = focal_supcon_loss(x, torch.tensor([0, 1, 0, 1, 0, 1]), 0.1, num_anchors=2)
    loss.backward()
    assert torch.isfinite(x.grad).all() and x.grad[2:].abs().sum() > 0
