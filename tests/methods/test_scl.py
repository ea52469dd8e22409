"""scl: the training loss is Gunel et al.'s (1 − λ)·CE + λ·SupCon, checked independently."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ftsweep.methods.scl import SCLConfig, SclMethod


def _supcon_loop(z: torch.Tensor, y: torch.Tensor, tau: float) -> float:
    n, total, anchors = len(y), 0.0, 0
    for i in range(n):
        pos = [j for j in range(n) if j != i and y[j] == y[i]]
        if not pos:
            continue
        denom = sum(math.exp(float(z[i] @ z[k]) / tau) for k in range(n) if k != i)
        total += -sum(float(z[i] @ z[j]) / tau - math.log(denom) for j in pos) / len(pos)
        anchors += 1
    return total / anchors


@pytest.mark.parametrize("lam", [0.0, 0.3, 1.0])
def test_training_step_matches_formula(lam: float) -> None:
    t = SclMethod(
        {
            "pretrained": "none",
            "labels_per_class": 3,
            "lambda_": lam,
            "temperature": 0.2,
            "device": "cpu",
        }
    )
    t.model.double()
    x = torch.randn(12, 3, 32, 32, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 3] * 3)
    t.model.eval()  # fixed BatchNorm statistics so both computations see the same features
    loss, logs = t.training_step((x, y, torch.arange(12)))
    with torch.no_grad():
        feats = t.model["backbone"](x)
        ce = F.cross_entropy(t.model["classifier"](feats), y).item()
        sc = _supcon_loop(F.normalize(feats, dim=1), y, 0.2)
    assert loss.item() == pytest.approx((1 - lam) * ce + lam * sc, rel=1e-9)
    assert float(logs["ce"].detach()) == pytest.approx(ce, rel=1e-9)


def test_lambda_out_of_range_is_rejected() -> None:
    from ftsweep.config import ConfigError

    with pytest.raises(ConfigError, match=r"lambda_: 1.5 — must be in \[0, 1\]"):
        SCLConfig.from_dict({"lambda_": 1.5})
