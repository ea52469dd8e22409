"""train_epoch: non-finite losses stop the trial; accumulation equals a large batch; selection."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ftsweep.engine import BestTracker, NonFiniteLossError, train_epoch


def _step_fn(model: nn.Module):
    def step(batch):
        x, y = batch
        return nn.functional.mse_loss(model(x), y), {"n": float(len(x))}

    return step


def test_nan_loss_raises_before_update() -> None:
    model = nn.Linear(2, 1)
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    batches = [(torch.tensor([[float("nan"), 1.0]]), torch.zeros(1, 1))]
    with pytest.raises(NonFiniteLossError, match="non-finite training loss nan at batch 0"):
        train_epoch(_step_fn(model), batches, opt, None)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_gradient_accumulation_equals_one_large_batch() -> None:
    torch.manual_seed(0)
    x, y = torch.randn(8, 3), torch.randn(8, 1)
    a, b = nn.Linear(3, 1), nn.Linear(3, 1)
    b.load_state_dict(a.state_dict())
    opt_a, opt_b = torch.optim.SGD(a.parameters(), lr=0.1), torch.optim.SGD(b.parameters(), lr=0.1)
    train_epoch(_step_fn(a), [(x, y)], opt_a, None)
    train_epoch(_step_fn(b), [(x[:4], y[:4]), (x[4:], y[4:])], opt_b, None, grad_accum=2)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(pa, pb)


def test_logs_are_batch_means() -> None:
    model = nn.Linear(1, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    logs = train_epoch(
        _step_fn(model),
        [(torch.ones(2, 1), torch.ones(2, 1)), (torch.ones(4, 1), torch.ones(4, 1))],
        opt,
        None,
    )
    assert logs["n"] == 3.0


def test_best_tracker_keeps_earlier_epoch_on_ties() -> None:
    t = BestTracker("val/acc", "max")
    assert t.update(1, {"val/acc": 50.0})
    assert not t.update(2, {"val/acc": 50.0})
    assert t.update(3, {"val/acc": 60.0}) and t.epoch == 3
    s = t.state_dict()
    u = BestTracker()
    u.load_state_dict(s)
    assert (u.best, u.epoch) == (60.0, 3)


def test_early_stopping_on_a_hand_made_val_loss_sequence() -> None:
    from ftsweep.engine import EarlyStopping

    losses = [1.0, 0.8, 0.9, 0.8, 0.85, 0.7]  # best at epoch 2; epoch 4 only ties it
    stop = EarlyStopping(patience=3)
    decisions = [stop.update(e, {"val/loss": v}) for e, v in enumerate(losses, start=1)]
    assert decisions == [False, False, False, False, True, False]
    assert stop.tracker.epoch == 6  # a later improvement resets the count

    patient = EarlyStopping(patience=1)
    assert [patient.update(e, {"val/loss": v}) for e, v in enumerate([3.0, 2.0, 2.5], 1)] == [
        False,
        False,
        True,
    ]

    restored = EarlyStopping(patience=3)
    stop2 = EarlyStopping(patience=3)
    for e, v in enumerate(losses[:3], start=1):
        stop2.update(e, {"val/loss": v})
    restored.load_state_dict(stop2.state_dict())
    assert [restored.update(e, {"val/loss": v}) for e, v in ((4, 0.8), (5, 0.85))] == [False, True]
