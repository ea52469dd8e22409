"""Tests for ftsweep.engine.ema."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ftsweep.engine.ema import ModelEMA, byol_momentum, ema_update


def _tiny(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2)).double()


def _bump_buffers(model: nn.Module) -> None:
    model.train()
    model(torch.randn(8, 3, dtype=torch.float64))  # updates BN running stats and counter


def test_ema_update_matches_formula_and_copies_buffers() -> None:
    target, online = _tiny(0), _tiny(1)
    _bump_buffers(online)
    before = {k: v.detach().clone() for k, v in target.named_parameters()}
    m = 0.9
    ema_update(target, online, m)
    online_params = dict(online.named_parameters())
    for name, p in target.named_parameters():
        expected = m * before[name] + (1 - m) * online_params[name].detach()
        assert torch.allclose(p, expected, rtol=0, atol=1e-15), name
    online_buffers = dict(online.named_buffers())
    for name, b in target.named_buffers():
        assert torch.equal(b, online_buffers[name]), name
    assert target[1].num_batches_tracked.item() == 1


def test_ema_update_endpoints_and_no_grad() -> None:
    target, online = _tiny(0), _tiny(1)
    snapshot = [p.detach().clone() for p in target.parameters()]
    ema_update(target, online, 1.0)
    assert all(torch.equal(p, s) for p, s in zip(target.parameters(), snapshot, strict=True))
    ema_update(target, online, 0.0)
    assert all(torch.equal(p, o) for p, o in zip(target.parameters(), online.parameters(), strict=True))
    assert all(p.grad_fn is None for p in target.parameters())


def test_ema_update_rejects_bad_momentum_and_mismatched_modules() -> None:
    with pytest.raises(ValueError, match="1.5"):
        ema_update(_tiny(0), _tiny(1), 1.5)
    with pytest.raises(ValueError, match="names"):
        ema_update(nn.Linear(3, 4), nn.Sequential(nn.Linear(3, 4)), 0.5)


def test_byol_momentum_endpoints_and_midpoint() -> None:
    assert byol_momentum(0, 100) == pytest.approx(0.996, abs=1e-15)
    assert byol_momentum(100, 100) == pytest.approx(1.0, abs=1e-15)
    assert byol_momentum(50, 100) == pytest.approx(0.998, abs=1e-15)
    assert byol_momentum(25, 100, base=0.9) == pytest.approx(1 - 0.1 * (math.cos(math.pi / 4) + 1) / 2)
    values = [byol_momentum(k, 10) for k in range(11)]
    assert all(a < b for a, b in zip(values, values[1:], strict=False))


@pytest.mark.parametrize(("step", "total"), [(-1, 10), (11, 10), (0, 0)])
def test_byol_momentum_rejects_out_of_range(step: int, total: int) -> None:
    with pytest.raises(ValueError):
        byol_momentum(step, total)


def test_model_ema_copy_is_frozen_eval_and_independent() -> None:
    model = _tiny(0)
    ema = ModelEMA(model, decay=0.5)
    assert not ema.module.training
    assert all(not p.requires_grad for p in ema.module.parameters())
    assert all(p.requires_grad for p in model.parameters())
    with torch.no_grad():
        model[0].weight.add_(1.0)
    assert not torch.equal(ema.module[0].weight, model[0].weight)


def test_model_ema_update_uses_decay() -> None:
    model = _tiny(0)
    ema = ModelEMA(model, decay=0.75)
    old = ema.module[0].weight.detach().clone()
    with torch.no_grad():
        model[0].weight.add_(2.0)
    ema.update(model)
    assert torch.allclose(ema.module[0].weight, 0.75 * old + 0.25 * model[0].weight.detach())
    assert ema.num_updates == 1


def test_model_ema_warmup_ramp() -> None:
    ema = ModelEMA(_tiny(0), decay=0.99, warmup=True)
    decays = []
    for _ in range(3):
        decays.append(ema.current_decay())
        ema.update(_tiny(1))
    assert decays == pytest.approx([0.5, 2 / 3, 0.75])
    late = ModelEMA(_tiny(0), decay=0.99, warmup=True)
    late.num_updates = 10_000
    assert late.current_decay() == 0.99


def test_model_ema_state_round_trip() -> None:
    model = _tiny(0)
    ema = ModelEMA(model, decay=0.9, warmup=True)
    for seed in (1, 2):
        _bump_buffers(model)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(float(seed))
        ema.update(model)
    state = ema.state_dict()
    restored = ModelEMA(_tiny(5), decay=0.1)
    restored.load_state_dict(state)
    assert (restored.decay, restored.warmup, restored.num_updates) == (0.9, True, 2)
    for (name, a), (_, b) in zip(
        ema.module.state_dict().items(), restored.module.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    x = torch.randn(4, 3, dtype=torch.float64)
    assert torch.equal(ema.module(x), restored.module(x))
    # Both continue identically.
    ema.update(model)
    restored.update(model)
    assert torch.equal(ema.module[0].weight, restored.module[0].weight)
