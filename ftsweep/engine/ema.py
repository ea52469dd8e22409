"""Exponential moving averages of model weights.

Used by the BYOL target network (target pretraining paper, Sec. 3.1: the target network is a
parameter moving average of the online network), by FixMatch's EMA evaluation model and by the
Mean Teacher teacher.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn

__all__ = ["ModelEMA", "byol_momentum", "ema_update"]


def _check_unit_interval(value: float, name: str) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """Moves ``target`` towards ``online`` in place.

    Parameters: ``theta_t <- m * theta_t + (1 - m) * theta_o``. Buffers (e.g. BatchNorm running
    statistics and counters) are copied from ``online``. No gradient is recorded.

    Args:
        target: Module updated in place (the EMA / target / teacher network).
        online: Module with the same architecture, whose weights are being averaged.
        momentum: m in [0, 1]; 1 leaves the target unchanged, 0 copies the online weights.

    Raises:
        ValueError: If ``momentum`` is outside [0, 1] or the modules' parameter or buffer names
            differ.
    """
    _check_unit_interval(momentum, "momentum")
    t_params = dict(target.named_parameters())
    o_params = dict(online.named_parameters())
    t_buffers = dict(target.named_buffers())
    o_buffers = dict(online.named_buffers())
    if t_params.keys() != o_params.keys() or t_buffers.keys() != o_buffers.keys():
        raise ValueError("target and online must have the same parameter and buffer names")
    for name, t in t_params.items():
        o = o_params[name]
        assert t.shape == o.shape, (
            f"parameter {name} has shape {tuple(t.shape)} in target and {tuple(o.shape)} in online"
        )
        t.mul_(momentum).add_(o.detach().to(t), alpha=1.0 - momentum)
    for name, t in t_buffers.items():
        t.copy_(o_buffers[name])


def byol_momentum(step: int, total_steps: int, base: float = 0.996) -> float:
    """BYOL target-network momentum, rising from ``base`` to 1 along a cosine.

    ``m = 1 - (1 - base) * (cos(pi * step / total_steps) + 1) / 2``.

    Args:
        step: Current step k in [0, total_steps].
        total_steps: Total number of steps K > 0.
        base: Momentum at step 0, in [0, 1] (0.996 in BYOL).

    Returns:
        The momentum m for this step: ``base`` at step 0, 1 at ``total_steps``.

    Raises:
        ValueError: If ``total_steps`` is not positive, ``step`` is outside [0, total_steps] or
            ``base`` is outside [0, 1].
    """
    if total_steps <= 0:
        raise ValueError(f"total_steps must be > 0, got {total_steps}")
    if not 0 <= step <= total_steps:
        raise ValueError(f"step must be in [0, {total_steps}], got {step}")
    _check_unit_interval(base, "base")
    return 1.0 - (1.0 - base) * (math.cos(math.pi * step / total_steps) + 1.0) / 2.0


class ModelEMA:
    """An exponential-moving-average copy of a model, kept in eval mode.

    The copy is made with ``copy.deepcopy`` at construction, has ``requires_grad=False`` on
    all parameters and is updated with :func:`ema_update` (parameters averaged, buffers copied).

    With ``warmup=True`` the decay used at the n-th update is ``min(decay, 1 - 1 / (n + 1))``,
    the ramp of the Mean Teacher public code, so the early average is not dominated by the
    random initialisation; the default uses ``decay`` from the first update (FixMatch).

    Args:
        model: The model to average; it is copied, not referenced.
        decay: Decay in [0, 1] (FixMatch 0.999, Mean Teacher 0.99 / 0.999).
        warmup: Use the Mean Teacher decay ramp described above.

    Attributes:
        module: The averaged model; call ``ema.module(x)`` for predictions.
        decay: The decay.
        warmup: Whether the ramp is used.
        num_updates: Number of ``update`` calls so far.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999, *, warmup: bool = False) -> None:
        _check_unit_interval(decay, "decay")
        self.module: nn.Module = copy.deepcopy(model).eval()
        self.module.requires_grad_(False)
        self.decay = decay
        self.warmup = warmup
        self.num_updates = 0

    def current_decay(self) -> float:
        """Decay that the next ``update`` call will use."""
        if not self.warmup:
            return self.decay
        return min(self.decay, 1.0 - 1.0 / (self.num_updates + 2))

    def update(self, model: nn.Module) -> None:
        """Moves the average one step towards ``model``'s current weights.

        Args:
            model: Module with the same architecture as the averaged copy.
        """
        ema_update(self.module, model, self.current_decay())
        self.num_updates += 1

    def state_dict(self) -> dict[str, Any]:
        """State for checkpointing: the averaged weights, ``decay``, ``warmup``, ``num_updates``."""
        return {
            "module": self.module.state_dict(),
            "decay": self.decay,
            "warmup": self.warmup,
            "num_updates": self.num_updates,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restores a state produced by :meth:`state_dict`.

        Args:
            state_dict: Mapping with keys ``module``, ``decay``, ``warmup``, ``num_updates``.
        """
        self.module.load_state_dict(state_dict["module"])
        _check_unit_interval(state_dict["decay"], "decay")
        self.decay = float(state_dict["decay"])
        self.warmup = bool(state_dict["warmup"])
        self.num_updates = int(state_dict["num_updates"])
