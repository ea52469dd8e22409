"""Tests for ftsweep.losses.ssl against brute-force loops that share no code with it."""

from __future__ import annotations

import math

import pytest
import torch

from ftsweep.losses.ssl import byol_loss, l2_to_init, moco_infonce_loss, nt_xent_loss


def _cos(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def _logsumexp(xs: list[float]) -> float:
    m = max(xs)
    return m + math.log(sum(math.exp(x - m) for x in xs))


def _randn(*shape: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64)


# --------------------------------------------------------------------------- BYOL


def test_byol_loss_matches_per_sample_formula() -> None:
    p, z = _randn(5, 7, seed=0), _randn(5, 7, seed=1)
    expected = sum(2.0 - 2.0 * _cos(p[i].tolist(), z[i].tolist()) for i in range(5)) / 5
    assert byol_loss(p, z).item() == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_byol_loss_is_eq2_up_to_affine_constant() -> None:
    p, z = _randn(4, 3, seed=2), _randn(4, 3, seed=3)
    eq2_mean = sum(-_cos(p[i].tolist(), z[i].tolist()) for i in range(4)) / 4
    assert byol_loss(p, z).item() == pytest.approx(2.0 + 2.0 * eq2_mean, rel=1e-12)


def test_byol_loss_bounds_and_scale_invariance() -> None:
    p = _randn(3, 4, seed=4)
    assert byol_loss(p, 3.0 * p).item() == pytest.approx(0.0, abs=1e-12)
    assert byol_loss(p, -p).item() == pytest.approx(4.0, abs=1e-12)


def test_byol_loss_no_gradient_to_target() -> None:
    p = _randn(6, 5, seed=5).requires_grad_(True)
    z = _randn(6, 5, seed=6).requires_grad_(True)
    loss = byol_loss(p, z)
    assert not loss.isnan()
    loss.backward()
    assert z.grad is None
    assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


def test_byol_loss_shape_mismatch() -> None:
    with pytest.raises(AssertionError, match="same shape"):
        byol_loss(torch.zeros(3, 4), torch.zeros(3, 5))


# --------------------------------------------------------------------------- NT-Xent


def _nt_xent_brute(z1: torch.Tensor, z2: torch.Tensor, tau: float) -> float:
    views = [row.tolist() for row in z1] + [row.tolist() for row in z2]
    n = z1.shape[0]
    total = 0.0
    for i in range(2 * n):
        j = i + n if i < n else i - n
        others = [_cos(views[i], views[k]) / tau for k in range(2 * n) if k != i]
        total += -(_cos(views[i], views[j]) / tau) + _logsumexp(others)
    return total / (2 * n)


@pytest.mark.parametrize("tau", [0.1, 0.5, 1.0])
def test_nt_xent_matches_brute_force(tau: float) -> None:
    z1, z2 = _randn(5, 6, seed=7), _randn(5, 6, seed=8)
    expected = _nt_xent_brute(z1, z2, tau)
    assert nt_xent_loss(z1, z2, tau).item() == pytest.approx(expected, rel=1e-10)


def test_nt_xent_symmetric_in_views() -> None:
    z1, z2 = _randn(4, 3, seed=9), _randn(4, 3, seed=10)
    assert nt_xent_loss(z1, z2, 0.2).item() == pytest.approx(nt_xent_loss(z2, z1, 0.2).item(), rel=1e-12)


def test_nt_xent_single_pair_is_zero_with_finite_grad() -> None:
    z1 = _randn(1, 4, seed=11).requires_grad_(True)
    z2 = _randn(1, 4, seed=12).requires_grad_(True)
    loss = nt_xent_loss(z1, z2, 0.5)
    assert loss.item() == pytest.approx(0.0, abs=1e-12)
    loss.backward()
    assert torch.isfinite(z1.grad).all() and torch.isfinite(z2.grad).all()


def test_nt_xent_gradients_reach_both_views() -> None:
    z1 = _randn(4, 3, seed=13).requires_grad_(True)
    z2 = _randn(4, 3, seed=14).requires_grad_(True)
    nt_xent_loss(z1, z2, 0.5).backward()
    assert z1.grad.abs().sum() > 0 and z2.grad.abs().sum() > 0


def test_nt_xent_rejects_bad_temperature() -> None:
    with pytest.raises(ValueError, match="-0.1"):
        nt_xent_loss(torch.ones(2, 3), torch.ones(2, 3), -0.1)


# --------------------------------------------------------------------------- MoCo InfoNCE


def _infonce_brute(q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, tau: float) -> float:
    total = 0.0
    for n in range(q.shape[0]):
        qn = q[n].tolist()
        pos = _cos(qn, k[n].tolist()) / tau
        negs = [_cos(qn, queue[m].tolist()) / tau for m in range(queue.shape[0])]
        total += -pos + _logsumexp([pos, *negs])
    return total / q.shape[0]


def test_moco_infonce_matches_loop() -> None:
    q, k, queue = _randn(4, 5, seed=15), _randn(4, 5, seed=16), _randn(9, 5, seed=17)
    expected = _infonce_brute(q, k, queue, 0.2)
    assert moco_infonce_loss(q, k, queue, 0.2).item() == pytest.approx(expected, rel=1e-10)


def test_moco_infonce_gradient_only_to_query() -> None:
    q = _randn(3, 4, seed=18).requires_grad_(True)
    k = _randn(3, 4, seed=19).requires_grad_(True)
    queue = _randn(6, 4, seed=20).requires_grad_(True)
    moco_infonce_loss(q, k, queue, 0.07).backward()
    assert k.grad is None and queue.grad is None
    assert torch.isfinite(q.grad).all() and q.grad.abs().sum() > 0


def test_moco_infonce_empty_queue_is_zero() -> None:
    q, k = _randn(3, 4, seed=21), _randn(3, 4, seed=22)
    loss = moco_infonce_loss(q, k, torch.empty(0, 4, dtype=torch.float64), 0.2)
    assert loss.item() == pytest.approx(0.0, abs=1e-12)


def test_moco_infonce_queue_dim_mismatch() -> None:
    with pytest.raises(AssertionError, match="queue"):
        moco_infonce_loss(torch.ones(2, 4), torch.ones(2, 4), torch.ones(4, 3), 0.2)


# --------------------------------------------------------------------------- L2 to init


def test_l2_to_init_value_and_gradient() -> None:
    w = torch.tensor([[1.0, 2.0], [3.0, -1.0]], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([0.5, -0.5], dtype=torch.float64, requires_grad=True)
    w0 = torch.tensor([[0.0, 2.0], [1.0, 1.0]], dtype=torch.float64)
    b0 = torch.tensor([0.0, 0.5], dtype=torch.float64)
    loss = l2_to_init([w, b], [w0, b0])
    # w - w0 = [[1, 0], [2, -2]] -> 1 + 0 + 4 + 4 = 9; b - b0 = [0.5, -1] -> 0.25 + 1 = 1.25
    assert loss.item() == pytest.approx(10.25, abs=1e-12)
    loss.backward()
    assert torch.equal(w.grad, torch.tensor([[2.0, 0.0], [4.0, -4.0]], dtype=torch.float64))
    assert torch.equal(b.grad, torch.tensor([1.0, -2.0], dtype=torch.float64))


def test_l2_to_init_zero_at_init_and_init_gets_no_grad() -> None:
    w = _randn(3, 3, seed=23).requires_grad_(True)
    w0 = w.detach().clone().requires_grad_(True)
    loss = l2_to_init([w], [w0])
    assert loss.item() == 0.0
    loss.backward()
    assert w0.grad is None
    assert torch.equal(w.grad, torch.zeros_like(w))


def test_l2_to_init_on_module_parameters() -> None:
    model = torch.nn.Linear(3, 2)
    init = [p.detach().clone() for p in model.parameters()]
    with torch.no_grad():
        model.weight.add_(1.0)
    assert l2_to_init(model.parameters(), init).item() == pytest.approx(6.0, rel=1e-6)


def test_l2_to_init_length_mismatch() -> None:
    with pytest.raises(ValueError, match="same length"):
        l2_to_init([torch.ones(2)], [torch.ones(2), torch.ones(2)])
    with pytest.raises(ValueError, match="empty"):
        l2_to_init([], [])
