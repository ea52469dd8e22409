"""Tests for ftsweep.losses.soft_ce against a brute-force loop that shares no code with it."""

from __future__ import annotations

import math

import pytest
import torch

from ftsweep.losses.soft_ce import soft_cross_entropy


def _brute(logits: torch.Tensor, targets: torch.Tensor) -> float:
    total = 0.0
    rows = logits.tolist()
    for row, q in zip(rows, targets.tolist(), strict=True):
        m = max(row)
        log_z = m + math.log(sum(math.exp(r - m) for r in row))
        total += -sum(qc * (r - log_z) for qc, r in zip(q, row, strict=True))
    return total / len(rows)


def test_matches_brute_force() -> None:
    g = torch.Generator().manual_seed(0)
    logits = 5 * torch.randn(6, 4, generator=g, dtype=torch.float64)
    targets = torch.softmax(torch.randn(6, 4, generator=g, dtype=torch.float64), dim=1)
    got = soft_cross_entropy(logits, targets)
    assert got.item() == pytest.approx(_brute(logits, targets), rel=1e-12)


def test_one_hot_targets_give_cross_entropy() -> None:
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(5, 3, generator=g, dtype=torch.float64)
    labels = torch.tensor([0, 2, 1, 1, 0])
    onehot = torch.eye(3, dtype=torch.float64)[labels]
    got = soft_cross_entropy(logits, onehot)
    assert got.item() == pytest.approx(_brute(logits, onehot), rel=1e-12)
    assert got.item() == pytest.approx(torch.nn.functional.cross_entropy(logits, labels).item())


def test_permutation_invariant_and_finite_gradient() -> None:
    g = torch.Generator().manual_seed(2)
    logits = (100 * torch.randn(6, 4, generator=g)).requires_grad_()  # float32, large logits
    targets = torch.softmax(torch.randn(6, 4, generator=g), dim=1)
    loss = soft_cross_entropy(logits, targets)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
    perm = torch.tensor([5, 3, 1, 0, 2, 4])
    assert soft_cross_entropy(logits[perm], targets[perm]).item() == pytest.approx(loss.item())


def test_empty_batch_is_zero() -> None:
    logits = torch.zeros(0, 3, requires_grad=True)
    loss = soft_cross_entropy(logits, torch.zeros(0, 3))
    loss.backward()
    assert loss.item() == 0.0


def test_rejects_shape_mismatch() -> None:
    with pytest.raises(AssertionError):
        soft_cross_entropy(torch.zeros(2, 3), torch.zeros(2, 4))
