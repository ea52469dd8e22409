"""Step-wise multipliers of the semi-supervised learners: FixMatch's learning-rate decay and the
consistency ramp-up of Mean Teacher (Laine & Aila)."""

from __future__ import annotations

import math

__all__ = ["fixmatch_lr_factor", "sigmoid_rampup"]


def fixmatch_lr_factor(
    step: int, *, total_steps: int, warmup_steps: int = 0, cycles: float = 7 / 16
) -> float:
    """FixMatch's learning-rate multiplier ``max(0, cos(π · cycles · k / K))`` after linear warm-up.

    With ``cycles = 7/16`` this is ``cos(7πk / 16K)`` of Sohn et al. (2020), which decays to
    cos(7π/16) ≈ 0.195 at the last step rather than to 0.

    Args:
        step: optimiser step k (0-based).
        total_steps: K > 0.
        warmup_steps: linear warm-up length (the progress k is counted after it).
        cycles: fraction of a half period covered by the K steps.
    """
    if total_steps <= 0:
        raise ValueError(f"total_steps must be > 0, got {total_steps}")
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return max(0.0, math.cos(math.pi * cycles * progress))


def sigmoid_rampup(step: int, length: int) -> float:
    """Consistency ramp-up ``exp(−5 (1 − t)²)``, ``t = min(1, step / length)`` (Laine & Aila, Mean Teacher).

    ``length = 0`` disables the ramp (returns 1).
    """
    if length <= 0:
        return 1.0
    t = min(1.0, max(0.0, step / length))
    return math.exp(-5.0 * (1.0 - t) ** 2)
