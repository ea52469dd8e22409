"""Tests for ftsweep.losses.schane against brute-force loops that share no code with it."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ftsweep.losses.schane import schane_loss, scln_loss


def _unit(n: int, d: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n, d, generator=g, dtype=torch.float64), dim=1)


def _brute(x: torch.Tensor, labels: list[int], tau: float, variant: str) -> float:
    """SCHaNe Eq. 3 and our reading of Eq. 4 (paper) or the public-code formula (official)."""
    v = x.tolist()
    n = len(v)

    def e(i: int, j: int) -> float:
        return math.exp(sum(a * b for a, b in zip(v[i], v[j], strict=True)) / tau)

    losses = []
    for i in range(n):
        positives = [p for p in range(n) if p != i and labels[p] == labels[i]]
        negatives = [k for k in range(n) if labels[k] != labels[i]]
        if not positives:
            continue
        z_neg = sum(e(i, k) for k in negatives)
        beta = {k: e(i, k) * len(negatives) / z_neg for k in negatives}
        weighted_neg = sum(beta[k] * e(i, k) for k in negatives)
        if variant == "paper":
            denom = sum(e(i, p) for p in positives) + weighted_neg
            acc = 0.0
            for p in positives:
                acc += math.log(e(i, p) / denom)
            losses.append(-acc / len(positives))
        else:
            pos = sum(e(i, p) for p in positives) / len(positives)
            losses.append(-math.log(pos / (pos + weighted_neg)))
    return sum(losses) / len(losses) if losses else 0.0


def _brute_torch(x: torch.Tensor, labels: list[int], tau: float, detach_beta: bool) -> torch.Tensor:
    """Paper reading with scalar autograd ops; beta optionally computed from detached features."""
    n = x.shape[0]
    xb = x.detach() if detach_beta else x
    terms = []
    for i in range(n):
        positives = [p for p in range(n) if p != i and labels[p] == labels[i]]
        negatives = [k for k in range(n) if labels[k] != labels[i]]
        if not positives:
            continue
        z_neg = sum(torch.exp(torch.dot(xb[i], xb[k]) / tau) for k in negatives)
        denom = sum(torch.exp(torch.dot(x[i], x[p]) / tau) for p in positives)
        for k in negatives:
            beta = torch.exp(torch.dot(xb[i], xb[k]) / tau) * len(negatives) / z_neg
            denom = denom + beta * torch.exp(torch.dot(x[i], x[k]) / tau)
        acc = sum(torch.log(torch.exp(torch.dot(x[i], x[p]) / tau) / denom) for p in positives)
        terms.append(-acc / len(positives))
    return torch.stack(terms).mean()


LABELS = [
    [0, 0, 1, 1, 2, 2, 3, 3],
    [0, 1, 0, 2, 1, 0, 3, 4, 4],
    [2, 2, 2, 2],  # no negatives
    [0, 1],
    [1, 1],
    [0, 1, 2, 3],  # no positives
]


@pytest.mark.parametrize("variant", ["paper", "official"])
@pytest.mark.parametrize("labels", LABELS)
@pytest.mark.parametrize("tau", [0.1, 0.5])
def test_matches_brute_force(labels: list[int], variant: str, tau: float) -> None:
    x = _unit(len(labels), 5, seed=len(labels))
    got = scln_loss(x, torch.tensor(labels), tau, variant=variant)
    assert got.item() == pytest.approx(_brute(x, labels, tau, variant), rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("detach_beta", [True, False])
def test_beta_gradient_follows_detach_flag(detach_beta: bool) -> None:
    x = _unit(8, 4, seed=3)
    labels = [0, 0, 1, 1, 1, 2, 2, 3]
    xa = x.clone().requires_grad_()
    scln_loss(xa, torch.tensor(labels), 0.3, detach_beta=detach_beta).backward()
    xb = x.clone().requires_grad_()
    _brute_torch(xb, labels, 0.3, detach_beta=detach_beta).backward()
    torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-10, atol=1e-12)


def test_variant_defaults_for_beta() -> None:
    x = _unit(8, 4, seed=3)
    labels = torch.tensor([0, 0, 1, 1, 1, 2, 2, 3])
    grads = {}
    for variant, detach in [
        ("paper", None),
        ("paper", True),
        ("official", None),
        ("official", False),
    ]:
        xg = x.clone().requires_grad_()
        scln_loss(xg, labels, 0.3, variant=variant, detach_beta=detach).backward()  # type: ignore[arg-type]
        grads[(variant, detach)] = xg.grad
    assert torch.equal(grads[("paper", None)], grads[("paper", True)])
    assert torch.equal(grads[("official", None)], grads[("official", False)])


def test_official_gradient_matches_finite_differences() -> None:
    raw = torch.randn(6, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    labels = torch.tensor([0, 0, 1, 1, 1, 2])

    def fn(r: torch.Tensor) -> torch.Tensor:
        return scln_loss(F.normalize(r, dim=1), labels, 0.3, variant="official")

    assert torch.autograd.gradcheck(fn, (raw.requires_grad_(),))


@pytest.mark.parametrize("variant", ["paper", "official"])
def test_no_positive_is_zero_with_finite_backward(variant: str) -> None:
    x = _unit(4, 3, seed=1).requires_grad_()
    loss = scln_loss(x, torch.arange(4), 0.1, variant=variant)
    loss.backward()
    assert loss.item() == 0.0 and torch.all(x.grad == 0)


@pytest.mark.parametrize("variant", ["paper", "official"])
def test_single_class_batch_has_finite_gradient(variant: str) -> None:
    x = _unit(4, 3, seed=1).requires_grad_()
    loss = scln_loss(x, torch.zeros(4, dtype=torch.long), 0.1, variant=variant)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("variant", ["paper", "official"])
def test_permutation_invariant(variant: str) -> None:
    x = _unit(9, 5, seed=4)
    labels = torch.tensor([0, 1, 0, 2, 1, 0, 3, 4, 4])
    perm = torch.randperm(9, generator=torch.Generator().manual_seed(0))
    a = scln_loss(x, labels, 0.2, variant=variant)
    b = scln_loss(x[perm], labels[perm], 0.2, variant=variant)
    assert a.item() == pytest.approx(b.item(), rel=1e-12)


@pytest.mark.parametrize("variant", ["paper", "official"])
def test_float32_small_temperature_is_finite(variant: str) -> None:
    x = _unit(16, 8, seed=6).float().requires_grad_()
    loss = scln_loss(x, torch.arange(16) % 4, 0.005, variant=variant)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("lam", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("variant", ["paper", "official"])
def test_schane_combines_ce_and_scln(lam: float, variant: str) -> None:
    labels = [0, 0, 1, 1, 2, 2, 1]
    x = _unit(7, 4, seed=8)
    logits = torch.randn(7, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    ce = 0.0
    for row, y in zip(logits.tolist(), labels, strict=True):
        m = max(row)
        ce += -(row[y] - m - math.log(sum(math.exp(r - m) for r in row)))
    ce /= len(labels)
    want = (1 - lam) * ce + lam * _brute(x, labels, 0.5, variant)
    got = schane_loss(logits, x, torch.tensor(labels), lam, 0.5, variant=variant)
    assert got.item() == pytest.approx(want, rel=1e-10)


def test_schane_rejects_lambda_out_of_range() -> None:
    x = _unit(4, 3, seed=0)
    with pytest.raises(AssertionError):
        schane_loss(torch.zeros(4, 2, dtype=torch.float64), x, torch.tensor([0, 0, 1, 1]), 1.5, 0.5)
