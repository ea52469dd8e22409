"""Tests for ftsweep.losses.supcon against brute-force loops that share no code with it."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ftsweep.losses.supcon import supcon_loss

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no GPU"))]  # fmt: skip


def _unit(n: int, d: int, seed: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n, d, generator=g, dtype=dtype), dim=1)


def _dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def _brute(
    x: torch.Tensor,
    labels: list[int],
    tau: float,
    variant: str,
    pos: list[list[bool]] | None = None,
) -> float:
    """Eq. 1 of COIN (paper) or COIN's public code (official), one anchor/positive at a time."""
    v = x.tolist()
    n = len(v)
    if pos is None:
        pos = [[labels[i] == labels[j] for j in range(n)] for i in range(n)]
    losses = []
    for i in range(n):
        denom = sum(math.exp(_dot(v[i], v[k]) / tau) for k in range(n) if k != i)
        if variant == "paper":
            positives = [j for j in range(n) if j != i and pos[i][j]]
            if not positives:
                continue
            total = 0.0
            for j in positives:
                total += math.log(math.exp(_dot(v[i], v[j]) / tau) / denom)
            losses.append(-total / len(positives))
        else:
            positives = [j for j in range(n) if j == i or pos[i][j]]
            total = 0.0
            for j in positives:
                total += math.log(math.exp(_dot(v[i], v[j]) / tau) / denom)
            losses.append(-total / n)
    return sum(losses) / len(losses) if losses else 0.0


LABELS = [
    [0, 0, 1, 1, 2, 2, 3, 3],
    [0, 1, 0, 2, 1, 0, 3, 4, 4],  # classes 2 and 3 have no positive
    [5, 5, 5, 5, 5],  # single class
    [0, 1],  # N = 2, no positive
    [1, 1],  # N = 2, one pair
    [0, 1, 2, 3],  # no positive pair anywhere
]


@pytest.mark.parametrize("variant", ["paper", "official"])
@pytest.mark.parametrize("labels", LABELS)
@pytest.mark.parametrize("tau", [0.07, 0.5])
def test_matches_brute_force(labels: list[int], variant: str, tau: float) -> None:
    x = _unit(len(labels), 6, seed=len(labels))
    got = supcon_loss(x, torch.tensor(labels), tau, variant=variant)
    want = _brute(x, labels, tau, variant)
    assert got.item() == pytest.approx(want, rel=1e-10, abs=1e-12)


def test_paper_no_positive_is_zero_with_finite_backward() -> None:
    x = _unit(4, 3, seed=0).requires_grad_()
    loss = supcon_loss(x, torch.tensor([0, 1, 2, 3]), 0.1)
    loss.backward()
    assert loss.item() == 0.0
    assert x.grad is not None and torch.all(x.grad == 0)


def test_official_no_positive_counts_self_pairs() -> None:
    x = _unit(4, 3, seed=0)
    loss = supcon_loss(x, torch.tensor([0, 1, 2, 3]), 0.1, variant="official")
    # the self term exp(s_ii) / sum_{k != i} exp(s_ik) exceeds 1 here, so the loss is negative
    assert loss.item() < 0


@pytest.mark.parametrize("variant", ["paper", "official"])
def test_single_sample_is_zero(variant: str) -> None:
    x = _unit(1, 3, seed=0).requires_grad_()
    loss = supcon_loss(x, torch.tensor([0]), 0.1, variant=variant)
    loss.backward()
    assert loss.item() == 0.0 and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("variant", ["paper", "official"])
def test_gradient_matches_finite_differences(variant: str) -> None:
    raw = torch.randn(7, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    labels = torch.tensor([0, 0, 1, 1, 1, 2, 3])

    def fn(r: torch.Tensor) -> torch.Tensor:
        return supcon_loss(F.normalize(r, dim=1), labels, 0.3, variant=variant)

    assert torch.autograd.gradcheck(fn, (raw.requires_grad_(),))


@pytest.mark.parametrize("variant", ["paper", "official"])
def test_permutation_invariant(variant: str) -> None:
    x = _unit(9, 5, seed=4)
    labels = torch.tensor([0, 1, 0, 2, 1, 0, 3, 4, 4])
    perm = torch.randperm(9, generator=torch.Generator().manual_seed(0))
    a = supcon_loss(x, labels, 0.2, variant=variant)
    b = supcon_loss(x[perm], labels[perm], 0.2, variant=variant)
    assert a.item() == pytest.approx(b.item(), rel=1e-12)


@pytest.mark.parametrize("variant", ["paper", "official"])
def test_positive_mask_override(variant: str) -> None:
    x = _unit(6, 4, seed=5)
    g = torch.Generator().manual_seed(1)
    mask = torch.rand(6, 6, generator=g) < 0.4
    mask = mask | mask.T
    got = supcon_loss(x, None, 0.2, variant=variant, positive_mask=mask)
    want = _brute(x, [0] * 6, 0.2, variant, pos=mask.tolist())
    assert got.item() == pytest.approx(want, rel=1e-10, abs=1e-12)
    labels = torch.tensor([0, 0, 1, 1, 2, 3])
    same = labels[:, None] == labels[None, :]
    by_mask = supcon_loss(x, labels, 0.2, variant=variant, positive_mask=same)
    by_labels = supcon_loss(x, labels, 0.2, variant=variant)
    assert by_mask.item() == pytest.approx(by_labels.item(), rel=1e-12)


@pytest.mark.parametrize("variant", ["paper", "official"])
def test_float32_and_small_temperature_are_stable(variant: str) -> None:
    x64 = _unit(16, 8, seed=6)
    labels = torch.arange(16) % 4
    x32 = x64.float().requires_grad_()
    loss32 = supcon_loss(x32, labels, 0.005, variant=variant)  # logits up to 200: exp overflows
    loss32.backward()
    loss64 = supcon_loss(x64, labels, 0.005, variant=variant)
    assert torch.isfinite(loss32) and torch.isfinite(x32.grad).all()
    assert loss32.dtype == torch.float32
    assert loss32.item() == pytest.approx(loss64.item(), rel=1e-4)


def test_rejects_bad_variant_and_shapes() -> None:
    x = _unit(4, 3, seed=0)
    with pytest.raises(ValueError):
        supcon_loss(x, torch.tensor([0, 0, 1, 1]), 0.1, variant="paperr")  # type: ignore[arg-type]
    with pytest.raises(AssertionError):
        supcon_loss(x, torch.tensor([0, 0, 1]), 0.1)


@pytest.mark.parametrize("device", DEVICES)
def test_runs_on_device(device: str) -> None:
    x = _unit(8, 4, seed=7).to(device).requires_grad_()
    labels = (torch.arange(8) % 3).to(device)
    loss = supcon_loss(x, labels, 0.1)
    loss.backward()
    assert loss.device.type == device and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("num_anchors", [1, 4, 7])
def test_num_anchors_restricts_the_anchors_not_the_pair_sets(num_anchors: int) -> None:
    labels = [0, 1, 0, 2, 1, 0, 2]
    g = torch.Generator().manual_seed(5)
    x = F.normalize(torch.randn(len(labels), 5, generator=g, dtype=torch.float64), dim=1)
    v = x.tolist()
    rows, tau = len(v), 0.2
    terms = []
    for i in range(num_anchors):  # brute force: anchors 0..num_anchors-1, P_i / A_i over all rows
        denom = sum(
            math.exp(sum(a * b for a, b in zip(v[i], v[k], strict=True)) / tau) for k in range(rows) if k != i
        )
        positives = [j for j in range(rows) if j != i and labels[j] == labels[i]]
        if positives:
            s = sum(
                math.log(math.exp(sum(a * b for a, b in zip(v[i], v[j], strict=True)) / tau) / denom)
                for j in positives
            )
            terms.append(-s / len(positives))
    want = sum(terms) / len(terms) if terms else 0.0
    got = supcon_loss(x, torch.tensor(labels), tau, num_anchors=num_anchors)
    assert got.item() == pytest.approx(want, rel=1e-10, abs=1e-12)
