"""Optimiser groups and schedules against their formulas."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ftsweep.engine import build_optimizer, build_scheduler, lr_factor, param_groups


def test_weight_decay_excludes_biases_and_norms() -> None:
    model = nn.ModuleDict(
        {"backbone": nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)), "head": nn.Linear(4, 2)}
    )
    groups = param_groups(model, lr=0.1, weight_decay=5e-4, lr_mult={"head": 10.0})
    by_name = {g["name"]: g for g in groups}
    conv_w, bn_w, bn_b = model["backbone"][0].weight, model["backbone"][1].weight, model["backbone"][1].bias
    assert any(p is conv_w for p in by_name["backbone"]["params"])
    assert by_name["backbone"]["weight_decay"] == 5e-4
    nd = by_name["backbone/no_decay"]["params"]
    assert (
        any(p is bn_w for p in nd)
        and any(p is bn_b for p in nd)
        and any(p is model["backbone"][0].bias for p in nd)
    )
    assert by_name["backbone/no_decay"]["weight_decay"] == 0.0
    assert by_name["head"]["lr"] == pytest.approx(1.0) and by_name["head/no_decay"]["lr"] == pytest.approx(
        1.0
    )
    n_params = sum(len(g["params"]) for g in groups)
    assert n_params == len(list(model.parameters()))


def test_a_vit_s_tokens_are_not_decayed() -> None:
    # BEiT / MAE / timm exempt cls_token and pos_embed (timm's no_weight_decay()); they had
    # AdamW's 0.05 under SCHaNe. Inside a wrapper, the names keep the wrapper's prefix
    timm = pytest.importorskip("timm")
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0)
    wrapped = nn.Sequential(vit)
    for part in (vit, wrapped):
        groups = {g["name"]: g for g in param_groups({"backbone": part}, lr=0.1, weight_decay=0.05)}
        no_decay = {id(p) for p in groups["backbone/no_decay"]["params"]}
        assert id(vit.cls_token) in no_decay and id(vit.pos_embed) in no_decay
        assert id(vit.patch_embed.proj.weight) not in no_decay
    every = param_groups({"backbone": vit}, lr=0.1, weight_decay=0.05, decay_norm_bias=True)
    assert any(p is vit.cls_token for g in every if g["weight_decay"] == 0.05 for p in g["params"])


def test_lr_factor_formulas() -> None:
    # warm-up: linear to 1 over 4 steps
    assert [lr_factor(s, total_steps=20, warmup_steps=4) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    # cosine after warm-up: 0.5 (1 + cos(pi t))
    t = (10 - 4) / 16
    assert lr_factor(10, total_steps=20, warmup_steps=4) == pytest.approx(0.5 * (1 + math.cos(math.pi * t)))
    assert lr_factor(20, total_steps=20) == pytest.approx(0.0)
    # step decay at 60 and 80 (UOT recipe)
    f = [lr_factor(s, total_steps=100, schedule="step", milestones=[60, 80]) for s in (59, 60, 79, 80)]
    assert f == pytest.approx([1.0, 0.1, 0.1, 0.01])


def test_scheduler_steps_per_iteration() -> None:
    p = nn.Parameter(torch.zeros(1))
    opt = build_optimizer([{"params": [p], "lr": 0.1, "weight_decay": 0.0}], name="sgd", lr=0.1)
    sched = build_scheduler(opt, schedule="step", epochs=3, steps_per_epoch=2, milestones=[1, 2], gamma=0.5)
    lrs = []
    for _ in range(6):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025, 0.025])


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw", "lars"])
def test_optimizers_build_and_step(name: str) -> None:
    p = nn.Parameter(torch.ones(3))
    opt = build_optimizer([{"params": [p], "lr": 0.1, "weight_decay": 0.0}], name=name, lr=0.1)
    p.sum().backward()
    opt.step()
    assert torch.all(p < 1)
