"""Optimisers and learning-rate schedules."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import torch
from torch import nn

__all__ = ["build_optimizer", "build_scheduler", "lr_factor", "param_groups"]

_NORM_TYPES = (
    nn.modules.batchnorm._NormBase,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.modules.instancenorm._InstanceNorm,
)


def _no_decay_names(module: nn.Module) -> set[str]:
    """Biases, normalisation parameters, and what a model itself exempts through timm's
    ``no_weight_decay()`` (a ViT's ``cls_token`` and ``pos_embed``, as BEiT, MAE and timm's
    training scripts do)."""
    names = set()
    for mod_name, mod in module.named_modules():
        prefix = f"{mod_name}." if mod_name else ""
        for p_name, _ in mod.named_parameters(recurse=False):
            if isinstance(mod, _NORM_TYPES) or p_name == "bias" or p_name.endswith("bias"):
                names.add(prefix + p_name)
        exempt = getattr(mod, "no_weight_decay", None)
        if callable(exempt):
            names.update(prefix + n for n in exempt())
    return names


def param_groups(
    modules: Mapping[str, nn.Module],
    *,
    lr: float,
    weight_decay: float,
    lr_mult: Mapping[str, float] | None = None,
    decay_norm_bias: bool = False,
) -> list[dict]:
    """Parameter groups with weight decay excluded from biases and normalisation layers
    (unless ``decay_norm_bias``: Core-tuning's code decays every parameter).

    Args:
        modules: named parts of the model (``backbone``, ``classifier`` …).
        lr: base learning rate.
        weight_decay: decay applied to the remaining weights.
        lr_mult: per-part multiplier of ``lr`` (default 1).
        decay_norm_bias: decay biases and normalisation parameters too (one group per part).

    Returns:
        Groups carrying ``lr``, ``weight_decay`` and ``name``; frozen parameters are skipped.
    """
    groups = []
    for name, module in modules.items():
        mult = (lr_mult or {}).get(name, 1.0)
        skip = set() if decay_norm_bias else _no_decay_names(module)
        decay, no_decay = [], []
        for p_name, p in module.named_parameters():
            if p.requires_grad:
                (no_decay if p_name in skip else decay).append(p)
        for params, wd, suffix in ((decay, weight_decay, ""), (no_decay, 0.0, "/no_decay")):
            if params:
                groups.append({"params": params, "lr": lr * mult, "weight_decay": wd, "name": name + suffix})
    return groups


def build_optimizer(
    groups: Iterable[dict], *, name: str, lr: float, momentum: float = 0.9, nesterov: bool = True
) -> torch.optim.Optimizer:
    """SGD (Nesterov), Adam, AdamW or LARS (timm's) over ``groups``."""
    groups = list(groups)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=nesterov and momentum > 0)
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    if name == "lars":
        from timm.optim import Lars

        return Lars(groups, lr=lr, momentum=momentum, nesterov=nesterov)
    raise ValueError(f"optimizer: {name!r} — must be one of sgd, adam, adamw, lars")


def lr_factor(
    step: int,
    *,
    total_steps: int,
    warmup_steps: int = 0,
    schedule: str = "cosine",
    milestones: Iterable[int] = (),
    gamma: float = 0.1,
) -> float:
    """Multiplier of the base learning rate at optimiser step ``step`` (0-based).

    Linear warm-up over ``warmup_steps``; then cosine decay to 0 over the remaining steps,
    step decay by ``gamma`` at each of ``milestones`` (in steps), or constant.
    """
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "cosine":
        span = max(1, total_steps - warmup_steps)
        t = min(1.0, (step - warmup_steps) / span)
        return 0.5 * (1.0 + math.cos(math.pi * t))
    if schedule == "step":
        return gamma ** sum(step >= m for m in milestones)
    if schedule == "constant":
        return 1.0
    raise ValueError(f"schedule: {schedule!r} — must be one of cosine, step, constant")


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    *,
    schedule: str,
    epochs: int,
    steps_per_epoch: int,
    warmup_epochs: int = 0,
    milestones: Iterable[int] = (),
    gamma: float = 0.1,
) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step ``LambdaLR`` following :func:`lr_factor` (milestones given in epochs)."""
    total = epochs * steps_per_epoch
    ms = [m * steps_per_epoch for m in milestones]
    warm = warmup_epochs * steps_per_epoch

    def factor(step: int) -> float:
        return lr_factor(
            step,
            total_steps=total,
            warmup_steps=warm,
            schedule=schedule,
            milestones=ms,
            gamma=gamma,
        )

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
